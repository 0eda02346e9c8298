"""Each ``hf:`` family's default layer, found by the model's structure (transformers' names
differ between versions), and the layer right after the patch embedding."""

from __future__ import annotations

from typing import Any

from torch import nn

from videocam.errors import ModelLoadError
from videocam.models.hf.families import HFFamily

__all__ = ["base_prefix", "default_layer", "embedding_layer", "first_norm"]

_NORM_NAMES = ("layernorm_before", "norm1", "layer_norm1", "ln_1")


def base_prefix(model: nn.Module) -> str:
    """The name of the backbone among the model's top-level layers (``base_model_prefix``)."""
    prefix = str(getattr(model, "base_model_prefix", ""))
    if prefix and prefix in dict(model.named_children()):
        return prefix
    raise ModelLoadError(
        f"{type(model).__name__}: no backbone named {prefix!r} among its top-level layers"
    )


def _block_list(model: nn.Module, config: Any) -> str:
    """Dotted name of the ModuleList of encoder blocks (transformers' names vary by version:
    ``vit.encoder.layer`` before v5, ``vit.layers`` after)."""
    prefix = base_prefix(model)
    count = int(getattr(config, "num_hidden_layers", 0) or 0)
    backbone = dict(model.named_children())[prefix]
    for name, module in backbone.named_modules():
        if name and isinstance(module, nn.ModuleList) and len(module) == count > 0:
            return f"{prefix}.{name}"
    raise ModelLoadError(
        f"{type(model).__name__}: cannot find its {count} encoder blocks; pass --layer"
    )


def first_norm(block: nn.Module, block_name: str) -> str:
    """The dotted name of ``block``'s first LayerNorm (the input of its attention)."""
    children = dict(block.named_children())
    for name in _NORM_NAMES:
        if isinstance(children.get(name), nn.LayerNorm):
            return f"{block_name}.{name}"
    for name, child in children.items():
        if isinstance(child, nn.LayerNorm):
            return f"{block_name}.{name}"
    raise ModelLoadError(f"{block_name}: no LayerNorm before its attention; pass --layer")


def _mean_pooled(family: HFFamily, config: Any) -> bool:
    if family.head == "config":
        return bool(getattr(config, "use_mean_pooling", False))
    return family.head == "mean"


def default_layer(model: nn.Module, family: HFFamily, config: Any) -> tuple[str, str]:
    """The family's default layer (canonical dotted name) and why, in words.

    * CNNs: the last encoder stage, (N, C, H, W) before global pooling.
    * Mean-pooled heads (VideoMAE, BEiT by default): the last encoder block's output. Every
      token reaches the logits through the mean, so the gradient is the same at every position
      and Grad-CAM is the classic CAM of the tokens — the linear head read per position.
    * Heads that read one token (class token; VideoMAE without mean pooling reads the first
      patch): the last block's first LayerNorm, the input of its attention. At the block's
      output only that one token reaches the logits, so every other position would get a zero
      gradient and a zero map; one step earlier the attention still mixes every token into it.
    """
    if family.tokens == "maps":
        prefix = base_prefix(model)
        backbone = dict(model.named_children())[prefix]
        for name, module in backbone.named_modules():
            if name.endswith("stages") and isinstance(module, nn.ModuleList) and len(module):
                return f"{prefix}.{name}.{len(module) - 1}", "the last encoder stage"
        raise ModelLoadError(f"{type(model).__name__}: no encoder stages found; pass --layer")
    blocks = _block_list(model, config)
    last = f"{blocks}.{int(config.num_hidden_layers) - 1}"
    if _mean_pooled(family, config):
        return last, "the last encoder block's output (the head mean-pools every token)"
    block = dict(model.named_modules())[last]
    return first_norm(block, last), (
        "the last encoder block's first LayerNorm (the head reads one token; at the block's "
        "output no other position reaches it)"
    )


def embedding_layer(model: nn.Module) -> str:
    """The layer right after the patch embedding: ``<backbone>.embeddings`` (tokens with their
    class token and position embeddings)."""
    return f"{base_prefix(model)}.embeddings"
