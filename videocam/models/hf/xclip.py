"""X-CLIP (``model_type`` ``xclip``) asked in words, on windows of frames.

X-CLIP's vision tower reads every frame of a window (with cross-frame message tokens inside its
blocks), its multi-frame integration transformer (``mit``) turns the frames' class-token
embeddings into one video embedding, and its prompt generator adds to each text embedding what
it reads from the window's patch tokens. :class:`XClipScorer` follows ``XCLIPModel.forward``
with the text tower's output computed once (the prompt generator, which depends on the window,
runs per window): the score is the softmax over prompts and negatives of ``logit_scale ·
cos(video, text)``.

The window length is the config's ``vision_config.num_frames`` (the message attention fixes
it). Default layer: the last block's input, the output of the block before it
(``vision_model.encoder.layers.-2``) — at the last block's output the patch tokens reach the
score only through the prompt generator, the class token through the video embedding; one block
earlier every token flows into the class token (the first LayerNorm of the last block, the rule
of ``hf:`` ViTs, also holds the message token). Its tokens: one row per frame, (N·T, 1 + h·w,
C), the class token first.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from videocam.errors import ConfigError, ModelLoadError
from videocam.models.hf.tokens import pair
from videocam.models.layers import PatchTokens, ReshapeFn
from videocam.models.prompting import PromptScorer

__all__ = ["XClipScorer", "xclip_layer", "xclip_reshape"]


class XClipScorer(PromptScorer):
    """:class:`~videocam.models.prompting.PromptScorer` of an ``XCLIPModel`` on windows
    (N, 3, T, H, W); ``text_embeds`` are the text tower's projected outputs, not normalised
    (the prompt generator adds to them first)."""

    def similarity(self, x: torch.Tensor) -> torch.Tensor:
        """``logit_scale · cos(video, text)`` with each window's prompted texts, (N, texts)."""
        model: Any = self.model
        frames = int(model.config.vision_config.num_frames)
        if x.ndim != 5 or x.shape[2] != frames:
            raise ConfigError(
                f"{self.model_name} takes windows of exactly {frames} frames (N, 3, {frames}, H, "
                f"W), got shape {tuple(x.shape)}: use --clip-len {frames}"
            )
        n, channels, t, height, width = x.shape
        pixels = x.transpose(1, 2).reshape(n * t, channels, height, width)
        vision = model.vision_model(pixel_values=pixels)
        video = model.visual_projection(vision.pooler_output).view(n, t, -1)
        video = model.mit(video).pooler_output
        patches = model.prompts_visual_layernorm(vision.last_hidden_state[:, 1:, :])
        patches = (patches @ model.prompts_visual_projection).view(n, t, -1, video.shape[-1])
        texts: torch.Tensor = self.text_embeds  # type: ignore[assignment]
        texts = texts.to(video.dtype).unsqueeze(0).expand(n, -1, -1)
        texts = texts + model.prompts_generator(texts, patches.mean(dim=1))
        video = video / video.norm(p=2, dim=-1, keepdim=True)
        texts = texts / texts.norm(p=2, dim=-1, keepdim=True)
        logits: torch.Tensor = torch.einsum("bd,bkd->bk", video, texts) * self.logit_scale()
        return logits


def xclip_layer(model: nn.Module, config: Any) -> tuple[str, str]:
    """The default layer (module docstring) and why, in words."""
    count = int(config.vision_config.num_hidden_layers)
    names = dict(model.named_modules())
    if count < 2 or f"vision_model.encoder.layers.{count - 2}" not in names:
        raise ModelLoadError(
            f"{type(model).__name__}: no block before the last one in its vision tower; pass "
            "--layer"
        )
    return f"vision_model.encoder.layers.{count - 2}", (
        "the input of the vision tower's last block (the class token is pooled; inside the "
        "last block the message token joins the frame's tokens)"
    )


def xclip_reshape(config: Any, name: str, fixed: tuple[int, int, int]) -> Any:
    """Token reshape for the vision tower's per-frame token layers (class token dropped); None
    elsewhere and inside a block before its message token is dropped again."""
    ph, pw = pair(config.vision_config.patch_size)

    def factory(_module: nn.Module, layer: str) -> ReshapeFn | None:
        parts = layer.split(".")
        in_block = parts[:3] == ["vision_model", "encoder", "layers"] and len(parts) >= 4
        if in_block and len(parts) > 4 and parts[4] in ("layer_norm1", "self_attn"):
            return None
        if not in_block and layer not in ("vision_model.embeddings",):
            return None
        return PatchTokens(
            (1, ph, pw),
            1,
            order="thw",
            layout="frames",
            description=f"{name} layer {layer}",
            expected_input=fixed,
        )

    return factory
