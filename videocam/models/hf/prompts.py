"""Asking in words: an ``hf:`` image–text dual encoder (CLIP, SigLIP; X-CLIP on windows,
:mod:`.xclip`) as a model whose "classes" are prompts, and building it
(:func:`build_prompt_model`).

The adapter (:class:`~videocam.models.prompting.PromptScorer`) runs the vision tower on each
frame and returns one score per prompt, the prompt's probability as the model defines it: CLIP's
softmax over prompts and negatives, SigLIP's sigmoid (see :mod:`videocam.models.prompting`).

The texts are tokenised with the model's own tokenizer and encoded once, when the model is
built (:func:`text_embeddings`); windows only run the vision tower. Since the adapter's outputs
are the scores, the CAM of a prompt is the CAM of its score, and the single pass, tracks,
keyframes, report and exports run unchanged. The default layer is the vision tower's, by the
rule of ``hf:`` ViTs: CLIP pools its class token, so the last block's first LayerNorm (at the
block's output no other token reaches the score); SigLIP pools every token through its
attention head, so the last block's output.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from videocam.errors import ConfigError, ModelLoadError, first_line
from videocam.models.hf.defaults import first_norm
from videocam.models.hf.processor import processor_stats
from videocam.models.hf.source import Source, from_config, pretrained, quiet_progress
from videocam.models.hf.tokens import pair
from videocam.models.hf.xclip import XClipScorer, xclip_layer, xclip_reshape
from videocam.models.layers import PatchTokens, ReshapeFn
from videocam.models.preprocess import Preprocess
from videocam.models.prompting import PromptScorer, choose_negatives
from videocam.models.spec import Built
from videocam.models.weights import WeightsSpec, apply_state_dict, load_state_dict_file

__all__ = ["PROMPT_FAMILIES", "PromptFamily", "build_prompt_model", "text_embeddings"]

#: Files one of which holds a tokenizer's vocabulary (fast, BPE, SentencePiece).
_VOCABULARY_FILES = ("tokenizer.json", "vocab.json", "spiece.model", "tokenizer.model")


@dataclass(frozen=True)
class PromptFamily:
    """What videocam knows about one image–text ``model_type``.

    Attributes:
        model_type: the config's ``model_type``.
        score: ``"softmax"`` (CLIP) or ``"sigmoid"`` (SigLIP).
        prefix: leading non-patch tokens of the vision tower (CLIP's class token).
        pooled: ``"token"`` (the class token is pooled) or ``"attention"`` (an attention
            head pools every token).
        pad_to_max: the text encoder reads texts padded to its full length without a mask
            (SigLIP was trained so), else padded to the longest with an attention mask.
        kind: ``"frame"`` (an image tower) or ``"video"`` (X-CLIP: windows of frames).
    """

    model_type: str
    score: str
    prefix: int
    pooled: str
    pad_to_max: bool
    kind: str = "frame"


PROMPT_FAMILIES: dict[str, PromptFamily] = {
    f.model_type: f
    for f in (
        PromptFamily("clip", "softmax", 1, "token", pad_to_max=False),
        PromptFamily("siglip", "sigmoid", 0, "attention", pad_to_max=True),
        PromptFamily("xclip", "softmax", 1, "token", pad_to_max=False, kind="video"),
    )
}


def _tokenizer(transformers: Any, source: Source) -> Any:
    """The model's own tokenizer; one line when its folder has none."""
    if source.local is not None and not any(
        (source.local / name).is_file() for name in _VOCABULARY_FILES
    ):
        raise ModelLoadError(
            f"{source.display}: {source.local} has no tokenizer (none of "
            f"{', '.join(_VOCABULARY_FILES)}); save the processor too: "
            "AutoProcessor.from_pretrained(ID).save_pretrained(DIR)"
        )
    try:
        with quiet_progress(transformers):
            tokenizer = transformers.AutoTokenizer.from_pretrained(
                source.ref, trust_remote_code=False
            )
    except (OSError, ValueError, TypeError, ImportError) as exc:
        raise ModelLoadError(
            f"cannot load the tokenizer of {source.display} ({type(exc).__name__}: "
            f"{first_line(exc)})"
        ) from exc
    if len(tokenizer.get_vocab()) < 3:
        raise ModelLoadError(f"{source.display}: its tokenizer has no vocabulary")
    return tokenizer


def text_embeddings(
    model: Any,
    tokenizer: Any,
    texts: tuple[str, ...],
    family: PromptFamily,
    name: str,
    *,
    normalize: bool = True,
) -> torch.Tensor:
    """Embeddings (len(texts), D) of ``texts`` by the model's text tower, float32, unit length
    unless not ``normalize``.

    Raises:
        ConfigError: a text longer than the text encoder reads.
    """
    max_len = int(model.config.text_config.max_position_embeddings)
    for text in texts:
        n_tokens = len(tokenizer(text)["input_ids"])
        if n_tokens > max_len:
            raise ConfigError(
                f"prompt {text!r} is {n_tokens} tokens; the text encoder of {name} reads at "
                f"most {max_len}: shorten it"
            )
    if family.pad_to_max:
        encoded = tokenizer(list(texts), padding="max_length", max_length=max_len)
        inputs = {"input_ids": torch.tensor(encoded["input_ids"])}
    else:
        encoded = tokenizer(list(texts), padding=True)
        inputs = {key: torch.tensor(encoded[key]) for key in ("input_ids", "attention_mask")}
    with torch.no_grad():
        embeds = model.get_text_features(**inputs).pooler_output.float()
    return embeds / embeds.norm(p=2, dim=-1, keepdim=True) if normalize else embeds


def _weighted(
    transformers: Any, config: Any, source: Source, weights: WeightsSpec
) -> tuple[nn.Module, str, str]:
    """(the dual encoder with its weights, the weights label, where they came from)."""
    auto = transformers.AutoModel
    if weights.kind == "default":
        model = pretrained(transformers, auto, config, source, what="image–text model")
        return model, "DEFAULT", f"{source.where} (from_pretrained)"
    model = from_config(auto, config, source)
    if weights.kind != "file":
        return model, "none", "none: random initialisation from the config"
    state = load_state_dict_file(weights.value)
    apply_state_dict(model, state, source=f"file {weights.value}", model_name=source.display)
    return model, str(weights.value), f"file {weights.value} (torch.load weights_only=True)"


def _default_layer(model: nn.Module, family: PromptFamily, config: Any) -> tuple[str, str]:
    """The vision tower's default layer by the ``hf:`` ViT rule, and why in words."""
    count = int(config.vision_config.num_hidden_layers)
    vision = dict(model.named_children()).get("vision_model")
    blocks = None
    if vision is not None:
        blocks = next(
            (
                f"vision_model.{name}"
                for name, module in vision.named_modules()
                if name and isinstance(module, nn.ModuleList) and len(module) == count > 0
            ),
            None,
        )
    if blocks is None:
        raise ModelLoadError(f"{type(model).__name__}: cannot find its vision blocks; pass --layer")
    last = f"{blocks}.{count - 1}"
    if family.pooled == "attention":
        return last, "the vision tower's last block output (its attention head pools every token)"
    block = dict(model.named_modules())[last]
    return first_norm(block, last), (
        "the vision tower's last block's first LayerNorm (the class token is pooled; at the "
        "block's output no other token reaches it)"
    )


def _reshape_factory(family: PromptFamily, config: Any, name: str, fixed: tuple[int, int]) -> Any:
    """Token reshape for layers of the vision tower (class token dropped), None elsewhere."""
    patch = pair(config.vision_config.patch_size)

    def factory(_module: nn.Module, layer: str) -> ReshapeFn | None:
        inside = layer.startswith(("vision_model.encoder", "vision_model.pre_layrnorm"))
        if not inside and layer not in ("vision_model.embeddings", "vision_model.post_layernorm"):
            return None
        return PatchTokens(
            patch,
            family.prefix,
            order="hw",
            description=f"{name} layer {layer}",
            expected_input=fixed,
        )

    return factory


def build_prompt_model(
    transformers: Any,
    config: Any,
    source: Source,
    weights: WeightsSpec,
    prompts: tuple[str, ...],
    negatives: tuple[str, ...] | None,
) -> Built:
    """An image–text ``config`` as a :class:`PromptScorer` over ``prompts`` (see the module)."""
    model_type = str(config.model_type)
    family = PROMPT_FAMILIES[model_type]
    name = source.display
    tokenizer = _tokenizer(transformers, source)
    model, label, weights_from = _weighted(transformers, config, source, weights)
    model.eval()
    if getattr(config.vision_config, "vision_use_head", True) is False:
        raise ModelLoadError(f"{name}: its vision tower has no head (vision_use_head false)")
    chosen, default = choose_negatives(family.score, prompts, negatives, name)
    video = family.kind == "video"
    texts = text_embeddings(
        model, tokenizer, (*prompts, *chosen), family, name, normalize=not video
    )
    image = pair(config.vision_config.image_size)
    frames = int(config.vision_config.num_frames) if video else None
    stats = processor_stats(transformers, source, model_type, family.kind)
    config_file = source.file_label("config.json")
    if frames is not None:
        fixed: tuple[int, ...] = (frames, *image)
        layer, why = xclip_layer(model, config)
        scorer: PromptScorer = XClipScorer(model, texts, len(prompts), family.score, name)
        reshape = xclip_reshape(config, name, (frames, *image))
    else:
        fixed = image
        layer, why = _default_layer(model, family, config)
        scorer = PromptScorer(model, texts, len(prompts), family.score, name)
        reshape = _reshape_factory(family, config, name, image)
    sources = {
        "family": f"{model_type} (image–text)",
        "weights": weights_from,
        "categories": "the prompts (--prompt)",
        "text": f"{source.where} tokenizer, encoded once when the model was built",
        "mean_std": stats.source,
        "input_size": f"{config_file} vision_config.image_size (the position embeddings fix it)",
        "resize": f"whole frame resized to {image[0]}x{image[1]} in the decoder; the "
        f"processor's own resizing ({stats.resize}) is not applied",
        "layer": f"family default: {why}",
        "tokens": "class token, then the (h, w) patch grid"
        if family.prefix
        else "the (h, w) patch grid",
    }
    if frames is not None:
        sources["clip_len"] = f"{config_file} vision_config.num_frames"
    return Built(
        module=scorer,
        kind=family.kind,
        weights=label,
        preprocess=Preprocess(size=image, mean=stats.mean, std=stats.std),
        categories=prompts,
        clip_len=frames,
        background_class=None,
        default_layer=layer,
        num_classes=len(prompts),
        reshape_factory=reshape,
        fixed_input=fixed,
        sources=sources,
        prompts=scorer.prompt_set(prompts, chosen, default),
    )
