"""open_clip's image–text models asked in words (``--model openclip:NAME --prompt TEXT``), per
frame.

``NAME`` is one of ``open_clip.list_models()`` (``ViT-B-32``…) with a ViT image tower (open_clip's
own ``VisionTransformer``; towers built on timm or on a CNN are refused). Weights: ``--weights
FILE`` (a local checkpoint, read by ``open_clip.load_checkpoint`` with ``weights_only=True``),
``--weights TAG`` (an open_clip pretrained tag such as ``openai`` or ``laion2b_s34b_b79k``:
downloaded by open_clip, or from its cache) or ``none`` (random). The tokenizer
(``open_clip.get_tokenizer``), the input size, mean and std (``get_model_preprocess_cfg``),
``logit_scale`` and ``logit_bias`` are the model's own. A model with a ``logit_bias`` (SigLIP)
is scored with the sigmoid, any other with the softmax over prompts and negatives
(:mod:`videocam.models.prompting`).

Default layer, by the rule of ``hf:`` ViTs: with a class-token head (``pool_type`` ``tok``, no
attention pooler) the last block's first LayerNorm (``visual.transformer.resblocks.-1.ln_1``),
else the last block's output. Its tokens (batch-first) are the class token, then the (h, w)
patch grid.
"""

from __future__ import annotations

import difflib
from typing import Any

import torch
from torch import nn

from videocam.errors import ConfigError, ModelLoadError, first_line
from videocam.models.layers import PatchTokens, ReshapeFn
from videocam.models.optional import OPENCLIP_EXTRA, import_optional, quiet_hub
from videocam.models.preprocess import Preprocess
from videocam.models.prompting import PromptScorer, choose_negatives
from videocam.models.spec import Built, ModelInfo
from videocam.models.weights import WeightsSpec, parse_weights

__all__ = [
    "OPENCLIP_PREFIX",
    "OpenClipScorer",
    "build_openclip",
    "is_openclip_spec",
    "openclip_infos",
]

OPENCLIP_PREFIX = "openclip:"

_LAYER = "visual.transformer.resblocks.-1.ln_1 (class-token head), else resblocks.-1"


def is_openclip_spec(name: str) -> bool:
    """Whether a ``--model`` value names an open_clip model (``openclip:NAME``)."""
    return name.strip().lower().startswith(OPENCLIP_PREFIX)


def openclip_infos() -> list[ModelInfo]:
    """``videocam models`` row of the ``openclip:`` prefix (no open_clip import)."""
    return [
        ModelInfo(
            name="openclip:NAME",
            kind="frame",
            default_layer=_LAYER,
            weights=("TAG",),
            input_size=None,
            clip_len=None,
            source="open_clip",
            family="vit",
            note="asked in words (--prompt); class token, then the (h, w) patch grid",
        )
    ]


class OpenClipScorer(PromptScorer):
    """:class:`~videocam.models.prompting.PromptScorer` of an open_clip ``CLIP``: the image
    embedding is ``encode_image``."""

    def image_features(self, x: torch.Tensor) -> torch.Tensor:
        """``model.encode_image(x)``, (N, D), before normalisation."""
        model: Any = self.model
        features: torch.Tensor = model.encode_image(x)
        return features


def _open_clip() -> Any:
    return import_optional("open_clip", needed_for="--model openclip:…", extra=OPENCLIP_EXTRA)


def _model_name(open_clip: Any, spec: str) -> str:
    name = spec.strip()[len(OPENCLIP_PREFIX) :].strip()
    known = list(open_clip.list_models())
    if name not in known:
        close = difflib.get_close_matches(name, known, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ModelLoadError(
            f"openclip:{name} is not an open_clip model (open_clip.list_models()){hint}"
        )
    return name


def _weighted(open_clip: Any, name: str, weights: WeightsSpec) -> tuple[nn.Module, str, str]:
    """(the model with its weights, the weights label, where they came from)."""
    display = f"{OPENCLIP_PREFIX}{name}"
    if weights.kind == "default":
        tags = ", ".join(open_clip.list_pretrained_tags_by_model(name)) or "none"
        raise ModelLoadError(
            f"{display} needs --weights: a local checkpoint file, an open_clip pretrained tag "
            f"({tags}) or none"
        )
    tag = weights.value if weights.kind == "name" else None
    try:
        with quiet_hub():
            model = open_clip.create_model(name, pretrained=tag, weights_only=True)
        if weights.kind == "file":
            open_clip.load_checkpoint(model, weights.value, strict=True, weights_only=True)
    except (OSError, RuntimeError, KeyError, ValueError) as exc:
        raise ModelLoadError(
            f"cannot load the weights {weights.value!r} of {display} ({type(exc).__name__}: "
            f"{first_line(exc)})"
        ) from exc
    model = model.float().eval()
    if weights.kind == "file":
        return model, weights.value, f"file {weights.value} (open_clip.load_checkpoint)"
    if tag is not None:
        return model, tag, f"open_clip pretrained tag {tag}"
    return model, "none", "none: random initialisation"


def _vision(open_clip: Any, model: nn.Module, display: str) -> Any:
    visual = getattr(model, "visual", None)
    if not isinstance(visual, open_clip.transformer.VisionTransformer):
        raise ModelLoadError(
            f"{display}: its image tower is a {type(visual).__name__}; videocam explains "
            "open_clip's ViT towers (VisionTransformer) only"
        )
    return visual


def _text_embeddings(
    model: Any, tokenizer: Any, texts: tuple[str, ...], display: str
) -> torch.Tensor:
    """Unit text embeddings (len(texts), D), refusing a text the tokenizer would truncate."""
    length = int(getattr(tokenizer, "context_length", 0) or 0)
    encode = getattr(tokenizer, "encode", None)
    for text in texts:
        if length and encode is not None:
            n_tokens = len(encode(text)) + 2  # start and end of text
            if n_tokens > length:
                raise ConfigError(
                    f"prompt {text!r} is {n_tokens} tokens; the text encoder of {display} reads "
                    f"at most {length}: shorten it"
                )
    with torch.no_grad():
        embeds = model.encode_text(tokenizer(list(texts))).float()
    return embeds / embeds.norm(p=2, dim=-1, keepdim=True)


def _layer(visual: Any) -> tuple[str, str]:
    last = len(visual.transformer.resblocks) - 1
    block = f"visual.transformer.resblocks.{last}"
    pooled = getattr(visual, "attn_pool", None) is not None or visual.pool_type != "tok"
    if pooled:
        return block, "the last block's output (the head pools every token)"
    return f"{block}.ln_1", (
        "the last block's first LayerNorm (the head reads the class token; at the block's "
        "output no other token reaches it)"
    )


def build_openclip(
    spec: str,
    weights: Any,
    num_classes: int | None,
    prompts: tuple[str, ...] | None,
    negatives: tuple[str, ...] | None,
) -> Built:
    """``openclip:NAME`` over ``prompts`` (see the module)."""
    if not prompts:
        raise ConfigError(
            f"{spec.strip()} is an image–text model: say what to look for with --prompt TEXT"
        )
    if num_classes is not None:
        raise ConfigError(f"{spec.strip()}: num_classes does not apply; its classes are prompts")
    open_clip = _open_clip()
    name = _model_name(open_clip, spec)
    display = f"{OPENCLIP_PREFIX}{name}"
    model, label, weights_from = _weighted(open_clip, name, parse_weights(weights))
    visual = _vision(open_clip, model, display)
    try:
        tokenizer = open_clip.get_tokenizer(name)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot load the tokenizer of {display} ({first_line(exc)})") from exc
    score = "sigmoid" if getattr(model, "logit_bias", None) is not None else "softmax"
    chosen, default = choose_negatives(score, prompts, negatives, display)
    texts = _text_embeddings(model, tokenizer, (*prompts, *chosen), display)
    config = open_clip.get_model_preprocess_cfg(model)
    size = (int(config["size"][0]), int(config["size"][1]))
    mean = tuple(float(v) for v in config["mean"])
    std = tuple(float(v) for v in config["std"])
    layer, why = _layer(visual)
    patch = tuple(int(v) for v in visual.patch_size)
    prefix = 0 if getattr(visual, "class_embedding", None) is None else 1

    def reshape(_module: nn.Module, layer_name: str) -> ReshapeFn | None:
        if not layer_name.startswith(("visual.transformer", "visual.ln_pre")):
            return None
        return PatchTokens(
            patch,
            prefix,
            order="hw",
            description=f"{display} layer {layer_name}",
            expected_input=size,
        )

    scorer = OpenClipScorer(model, texts, len(prompts), score, display)
    sources = {
        "family": "open_clip ViT (image–text)",
        "weights": weights_from,
        "categories": "the prompts (--prompt)",
        "text": f"open_clip.get_tokenizer({name!r}), encoded once when the model was built",
        "mean_std": "open_clip.get_model_preprocess_cfg",
        "input_size": "open_clip.get_model_preprocess_cfg (the position embeddings fix it)",
        "layer": f"family default: {why}",
        "tokens": "class token, then the (h, w) patch grid" if prefix else "the (h, w) grid",
    }
    return Built(
        module=scorer,
        kind="frame",
        weights=label,
        preprocess=Preprocess(size=size, mean=mean, std=std),  # type: ignore[arg-type]
        categories=prompts,
        clip_len=None,
        background_class=None,
        default_layer=layer,
        num_classes=len(prompts),
        reshape_factory=reshape,
        fixed_input=size,
        sources=sources,
        prompts=scorer.prompt_set(prompts, chosen, default),
    )
