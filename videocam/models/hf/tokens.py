"""Token geometry of the ``hf:`` transformers: each family's patch (tubelet) size, leading
tokens and token order, as the reshape of a layer's tokens to (N, C, *S).

* VideoMAE: tubelets of ``tubelet_size`` frames × ``patch_size``², a Conv3d flattened in
  (t, h, w) order, **no class token** (its classifier mean-pools every token, or, with
  ``use_mean_pooling=False``, reads the first *patch* token);
* ViViT: tubelets ``tubelet_size`` = (t, h, w), (t, h, w) order, one class token first;
* TimeSformer: one frame × ``patch_size``² per token, a class token first, then the patches in
  **(h, w, t)** order (space-major, time-minor). Inside its divided space-time blocks the spatial
  attention (``layernorm_before``, ``attention``) sees one row per frame, (N·T, 1 + h·w, C), and
  the temporal attention (``temporal_layernorm``, ``temporal_attention``) one row per patch,
  (N·h·w, T, C); each has its own reshape;
* image ViTs: a (h, w) patch grid after 1 class token (ViT, DINOv2, BEiT), class + distillation
  tokens (DeiT) or class + ``num_register_tokens`` register tokens (DINOv2 with registers).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from videocam.models.hf.defaults import base_prefix
from videocam.models.hf.families import HFFamily
from videocam.models.layers import PatchTokens, ReshapeFn

__all__ = ["hf_reshape", "pair"]


def pair(value: Any) -> tuple[int, int]:
    """A config's size (an int, or a list / tuple of two) as (H, W)."""
    if isinstance(value, (list, tuple)):
        return int(value[0]), int(value[-1])
    return int(value), int(value)


def _patch(family: HFFamily, config: Any) -> tuple[int, ...]:
    if family.model_type == "vivit":
        t, h, w = (int(v) for v in config.tubelet_size)
        return (t, h, w)
    ph, pw = pair(config.patch_size)
    if family.model_type == "videomae":
        return (int(config.tubelet_size), ph, pw)
    if family.model_type == "timesformer":
        return (1, ph, pw)
    return (ph, pw)


def _prefix(family: HFFamily, config: Any) -> int:
    if family.model_type == "dinov2_with_registers":
        return 1 + int(getattr(config, "num_register_tokens", 0))
    return family.prefix


def _timesformer_layout(relative: str, attention_type: str) -> tuple[str, int]:
    """(layout, prefix) of a TimeSformer layer, by its name under the backbone."""
    parts = relative.split(".")
    if parts[0] == "embeddings":
        sub = parts[1] if len(parts) > 1 else ""
        if sub == "patch_embeddings":
            return "frames", 0
        if sub == "pos_drop":
            return "frames", 1
        if sub == "time_drop":
            return "patches", 0
        return "sequence", 1
    if attention_type == "divided_space_time" and len(parts) >= 4 and parts[0] == "encoder":
        sub = parts[3]
        if sub in ("layernorm_before", "attention"):
            return "frames", 1
        if sub in ("temporal_layernorm", "temporal_attention"):
            return "patches", 0
        if sub == "temporal_dense":
            return "sequence", 0
    return "sequence", 1


def hf_reshape(
    model: nn.Module,
    family: HFFamily,
    config: Any,
    layer: str,
    *,
    name: str,
    expected_input: tuple[int, ...] | None,
) -> ReshapeFn | None:
    """The reshape a layer of an ``hf:`` model needs to give (N, C, *S); None for CNN maps and
    for layers outside the backbone (the head)."""
    if family.tokens == "maps":
        return None
    prefix_name = base_prefix(model)
    if layer != prefix_name and not layer.startswith(prefix_name + "."):
        return None
    relative = layer[len(prefix_name) + 1 :]
    patch = _patch(family, config)
    description = f"{name} layer {layer}"
    if family.model_type == "timesformer":
        layout, prefix = _timesformer_layout(relative, str(config.attention_type))
        return PatchTokens(
            patch,
            prefix,
            order="hwt",
            layout=layout,
            description=description,
            expected_input=expected_input,
        )
    order = "thw" if len(patch) == 3 else "hw"
    return PatchTokens(
        patch,
        _prefix(family, config),
        order=order,
        description=description,
        expected_input=expected_input,
    )
