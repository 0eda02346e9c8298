"""The transformers families ``hf:`` knows: one keyword row each (kind, token layout, head,
default layer in words), and the ``videocam models`` rows they give.

Imports neither torch nor transformers, so listing the families stays cheap.
"""

from __future__ import annotations

from dataclasses import dataclass

from videocam.models.spec import ModelInfo

__all__ = ["HF_FAMILIES", "HF_PREFIX", "PROMPT_ROWS", "HFFamily", "hf_infos", "is_hf_spec"]

HF_PREFIX = "hf:"


def is_hf_spec(name: str) -> bool:
    """Whether a ``--model`` value names a Hugging Face model (``hf:ID_OR_DIR``)."""
    return name.strip().lower().startswith(HF_PREFIX)


@dataclass(frozen=True, kw_only=True)
class HFFamily:
    """What videocam knows about one transformers ``model_type``.

    Attributes:
        model_type: the config's ``model_type``.
        kind: ``"video"`` or ``"frame"``.
        tokens: ``"tubelets"``, ``"divided"`` (TimeSformer), ``"patches"`` (image ViTs) or
            ``"maps"`` (CNNs: (N, C, H, W) stages, no reshape).
        head: ``"mean"`` (the classifier pools every token), ``"token"`` (it reads the first
            token), ``"config"`` (``use_mean_pooling`` decides) or ``"map"`` (CNNs).
        prefix: leading non-patch tokens (class, distillation); register tokens are added from
            the config.
        layer: the default layer, in words (``videocam models``).
        token_order: the layer outputs' layout, in words (``videocam models``, summary.json's
            ``model.sources.tokens``).
    """

    model_type: str
    kind: str
    tokens: str
    head: str
    prefix: int
    layer: str
    token_order: str


_MAPS = "(N, C, H, W) feature maps"

#: The families with a tested default layer and token geometry; ``layer`` as transformers 5
#: names it (the rule, not the name, is what videocam applies: names differ between versions).
HF_FAMILIES: dict[str, HFFamily] = {
    f.model_type: f
    for f in (
        HFFamily(
            model_type="videomae",
            kind="video",
            tokens="tubelets",
            head="config",
            prefix=0,
            layer="videomae.encoder.layer.-1 (mean-pooled head; else its layernorm_before)",
            token_order=(
                "tubelets t'×h'×w' (tubelet_size frames × patch²), (t, h, w) order, no class token"
            ),
        ),
        HFFamily(
            model_type="timesformer",
            kind="video",
            tokens="divided",
            head="token",
            prefix=1,
            layer="timesformer.encoder.layer.-1.layernorm_before",
            token_order="class token, then 1 frame × patch² tokens in (h, w, t) order",
        ),
        HFFamily(
            model_type="vivit",
            kind="video",
            tokens="tubelets",
            head="token",
            prefix=1,
            layer="vivit.layers.-1.layernorm_before",
            token_order="class token, then tubelets (tubelet_size), (t, h, w) order",
        ),
        HFFamily(
            model_type="vit",
            kind="frame",
            tokens="patches",
            head="token",
            prefix=1,
            layer="vit.layers.-1.layernorm_before",
            token_order="class token, then the (h, w) patch grid",
        ),
        HFFamily(
            model_type="deit",
            kind="frame",
            tokens="patches",
            head="token",
            prefix=2,
            layer="deit.layers.-1.layernorm_before",
            token_order="class and distillation tokens, then the (h, w) patch grid",
        ),
        HFFamily(
            model_type="dinov2",
            kind="frame",
            tokens="patches",
            head="token",
            prefix=1,
            layer="dinov2.encoder.layer.-1.norm1",
            token_order="class token, then the (h, w) patch grid",
        ),
        HFFamily(
            model_type="dinov2_with_registers",
            kind="frame",
            tokens="patches",
            head="token",
            prefix=1,
            layer="dinov2_with_registers.encoder.layer.-1.norm1",
            token_order="class and register tokens, then the (h, w) patch grid",
        ),
        HFFamily(
            model_type="beit",
            kind="frame",
            tokens="patches",
            head="config",
            prefix=1,
            layer="beit.layers.-1 (mean-pooled head; else its layernorm_before)",
            token_order="class token, then the (h, w) patch grid",
        ),
        HFFamily(
            model_type="convnext",
            kind="frame",
            tokens="maps",
            head="map",
            prefix=0,
            layer="convnext.encoder.stages.-1",
            token_order=_MAPS,
        ),
        HFFamily(
            model_type="resnet",
            kind="frame",
            tokens="maps",
            head="map",
            prefix=0,
            layer="resnet.encoder.stages.-1",
            token_order=_MAPS,
        ),
    )
}


#: The image–text families asked in words (``--prompt``, :mod:`videocam.models.hf.prompts`):
#: model_type -> (default layer, token layout), as ``videocam models`` lists them.
PROMPT_ROWS = {
    "clip": (
        "vision_model.encoder.layers.-1.layer_norm1",
        "asked in words (--prompt); class token, then the (h, w) patch grid",
    ),
    "siglip": (
        "vision_model.encoder.layers.-1 (attention-pooled head)",
        "asked in words (--prompt); the (h, w) patch grid",
    ),
    "xclip": (
        "vision_model.encoder.layers.-2 (the last block's input)",
        "asked in words (--prompt), on windows; per frame: class token, then the (h, w) grid",
    ),
}


def hf_infos() -> list[ModelInfo]:
    """``videocam models`` rows: one per ``hf:`` family (no transformers import)."""
    rows = [
        ModelInfo(
            name="hf:ID_OR_DIR",
            kind=family.kind,
            default_layer=family.layer,
            weights=("DEFAULT",),
            input_size=None,
            clip_len=None,
            source="transformers",
            family=family.model_type,
            note=family.token_order,
        )
        for family in HF_FAMILIES.values()
    ]
    return rows + [
        ModelInfo(
            name="hf:ID_OR_DIR",
            kind="video" if model_type == "xclip" else "frame",
            default_layer=layer,
            weights=("DEFAULT",),
            input_size=None,
            clip_len=None,
            source="transformers",
            family=model_type,
            note=note,
        )
        for model_type, (layer, note) in PROMPT_ROWS.items()
    ]
