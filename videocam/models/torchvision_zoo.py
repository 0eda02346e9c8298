"""torchvision classifiers: their default target layers, weights, preprocessing and reshapes.

Video classifiers (``torchvision.models.video``) take (N, 3, T, H, W); image classifiers are run
per frame on (N, 3, H, W). Weights come through torchvision's own ``get_model`` and weights enums
(which read the torch hub cache before downloading); class names and preprocessing come from the
enums' ``meta`` and ``transforms()``, which work offline. torchvision is imported lazily.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from videocam.errors import ModelLoadError, first_line
from videocam.models.layers import ChannelsLastToFirst, ConvGeometry, ReshapeFn, TokensToGrid
from videocam.models.preprocess import Preprocess
from videocam.models.spec import DEFAULT_CLIP_LEN, Built, ModelCard, ModelInfo
from videocam.models.weights import (
    apply_state_dict,
    file_hint,
    fit_head,
    load_state_dict_file,
    parse_weights,
)

logger = logging.getLogger(__name__)

__all__ = [
    "VIDEO_LAYERS",
    "build_torchvision",
    "describe_torchvision",
    "frame_default_layer",
    "image_model_names",
    "torchvision_infos",
    "torchvision_reshape",
    "video_model_names",
]

#: Default target layer of each torchvision video classifier: its last spatiotemporal feature map
#: before global pooling. Output at the default input (16 frames):
#: r3d_18 / r2plus1d_18 layer4 (512, 2, 7, 7) at 112²; mc3_18 layer4 (512, 16, 7, 7) at 112²
#: (mixed convolutions keep time); s3d features.15 (1024, 2, 7, 7) at 224²; mvit_* blocks.15
#: tokens → (768, 8, 7, 7) at 224²; swin3d_* features.6 channels-last → (768|1024, 8, 7, 7).
VIDEO_LAYERS: dict[str, str] = {
    "r3d_18": "layer4",
    "mc3_18": "layer4",
    "r2plus1d_18": "layer4",
    "s3d": "features.15",
    "mvit_v1_b": "blocks.15",
    "mvit_v2_s": "blocks.15",
    "swin3d_t": "features.6",
    "swin3d_s": "features.6",
    "swin3d_b": "features.6",
}

# Every torchvision video model runs on windows of DEFAULT_CLIP_LEN (16) frames. The
# R(2+1)D/R3D/MC3 and MViT weights were evaluated on 16-frame clips (MViT accepts nothing else);
# S3D and Swin3D were evaluated on longer clips (128 and 32 frames) but run on 16 (S3D needs at
# least 14) at a fraction of the cost.

# Image classifiers whose default layer is an index into ``features``: the last module before
# the final pooling (VGG/AlexNet: the last ReLU before the last MaxPool; the others: the last
# block of ``features``).
_FRAME_LAYERS: dict[str, str] = {
    "alexnet": "features.11",
    "vgg11": "features.19",
    "vgg11_bn": "features.27",
    "vgg13": "features.23",
    "vgg13_bn": "features.33",
    "vgg16": "features.29",
    "vgg16_bn": "features.42",
    "vgg19": "features.35",
    "vgg19_bn": "features.51",
    "mobilenet_v2": "features.18",
    "mobilenet_v3_large": "features.16",
    "mobilenet_v3_small": "features.12",
    "efficientnet_v2_s": "features.7",
    "vit_b_16": "encoder.layers.encoder_layer_11",
    "vit_b_32": "encoder.layers.encoder_layer_11",
    "vit_l_16": "encoder.layers.encoder_layer_23",
    "vit_l_32": "encoder.layers.encoder_layer_23",
    "vit_h_14": "encoder.layers.encoder_layer_31",
}

# Families whose default layer has one name for every member (prefix → layer).
_FRAME_FAMILIES: tuple[tuple[str, str], ...] = (
    ("resnet", "layer4"),
    ("resnext", "layer4"),
    ("wide_resnet", "layer4"),
    ("regnet", "trunk_output"),
    ("convnext", "features.7"),
    ("densenet", "features"),  # ends with norm5; the final ReLU is functional
    ("efficientnet", "features.8"),
    ("mnasnet", "layers.16"),
    ("shufflenet", "conv5"),
    ("squeezenet", "features.12"),
    ("googlenet", "inception5b"),
    ("inception", "Mixed_7c"),
    ("maxvit", "blocks.3"),
    ("swin", "features.7"),
)

_DENSENET_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$"
)


def _tvm() -> Any:
    """torchvision.models, imported on first use."""
    import torchvision.models

    return torchvision.models


def video_model_names() -> list[str]:
    """Names of torchvision's video classifiers."""
    tvm = _tvm()
    return sorted(tvm.list_models(module=tvm.video))


def image_model_names() -> list[str]:
    """Names of torchvision's image classifiers (run per frame)."""
    tvm = _tvm()
    return sorted(tvm.list_models(module=tvm))


def frame_default_layer(name: str) -> str | None:
    """The pinned default target layer of a torchvision image classifier, None if unknown."""
    if name in _FRAME_LAYERS:
        return _FRAME_LAYERS[name]
    for prefix, layer in _FRAME_FAMILIES:
        if name.startswith(prefix):
            return layer
    return None


def derive_default_layer(module: nn.Module) -> str | None:
    """Guess the last spatial feature map of an unknown classifier from its structure."""
    children = dict(module.named_children())
    for name in ("layer4", "trunk_output"):
        if name in children:
            return name
    encoder_layers = getattr(children.get("encoder"), "layers", None)
    if isinstance(encoder_layers, nn.Sequential) and len(encoder_layers) > 0:
        last = list(encoder_layers.named_children())[-1][0]
        return f"encoder.layers.{last}"
    for container in ("features", "layers", "blocks"):
        seq = children.get(container)
        if isinstance(seq, (nn.Sequential, nn.ModuleList)) and len(seq) > 0:
            names = [
                n
                for n, m in seq.named_children()
                if not isinstance(m, (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d))
            ]
            return f"{container}.{names[-1]}"
    return None


def _size2(size: Any) -> tuple[int, int]:
    values = [int(s) for s in size]
    return (values[0], values[0]) if len(values) == 1 else (values[0], values[1])


def _weights_preprocess(member: Any) -> Preprocess:
    transform = member.transforms()
    return Preprocess(
        size=_size2(transform.crop_size),
        mean=tuple(float(m) for m in transform.mean),  # type: ignore[arg-type]
        std=tuple(float(s) for s in transform.std),  # type: ignore[arg-type]
    )


def torchvision_infos() -> list[ModelInfo]:
    """``videocam models`` rows for every torchvision video and image classifier."""
    tvm = _tvm()
    rows = []
    for kind, names in (("video", video_model_names()), ("frame", image_model_names())):
        for name in names:
            enum = tvm.get_model_weights(name)
            default = enum.DEFAULT
            layer = VIDEO_LAYERS.get(name) if kind == "video" else frame_default_layer(name)
            rows.append(
                ModelInfo(
                    name=name,
                    kind=kind,
                    default_layer=layer or "(derived when loaded)",
                    weights=tuple(member.name for member in enum),
                    input_size=_weights_preprocess(default).size,
                    clip_len=DEFAULT_CLIP_LEN if kind == "video" else None,
                    source="torchvision",
                )
            )
    return rows


def describe_torchvision(info: ModelInfo, weights: str) -> ModelCard:
    """``videocam models NAME`` of a torchvision classifier or detector with a weights name
    (``DEFAULT``...), from its weights enum alone: nothing is built or downloaded."""
    enum = _tvm().get_model_weights(info.name)
    member = _resolve_member(info.name, enum, weights)
    # None for feature-extraction weights (vgg16 IMAGENET1K_FEATURES: no trained head).
    categories = member.meta["categories"]
    detection = info.task == "detection"
    return ModelCard(
        name=info.name,
        kind=info.kind,
        task=info.task,
        default_layer=info.default_layer,
        input_size=None if detection else _weights_preprocess(member).size,
        clip_len=info.clip_len,
        weights=member.name,
        weights_choices=info.weights,
        categories=tuple(categories) if categories else None,
        num_classes=len(categories) if categories else None,
        background_class=0 if detection else None,
        source="torchvision",
    )


def _resolve_member(name: str, enum: Any, requested: str) -> Any:
    """The weights enum member named ``requested`` (case-insensitive, optionally qualified)."""
    wanted = requested.split(".")[-1].upper() if "." in requested else requested.upper()
    if "." in requested and requested.split(".")[0].lower() != enum.__name__.lower():
        wanted = ""  # qualified with another enum's name
    if wanted == "DEFAULT":
        return enum.DEFAULT
    for member in enum:
        if member.name.upper() == wanted:
            return member
    valid = ", ".join(["DEFAULT", *(m.name for m in enum)])
    raise ModelLoadError(
        f"unknown weights {requested!r} for {name}; valid: {valid}, 'none', or a local "
        f"state-dict file{file_hint(requested)}"
    )


def _builder_kwargs(name: str, state: Mapping[str, torch.Tensor] | None) -> dict[str, Any]:
    """Architecture arguments that torchvision's own pretrained builders would set.

    ``state`` is the local file being loaded, or None for random initialisation.
    """
    kwargs: dict[str, Any] = {}
    if name in ("googlenet", "inception_v3"):
        aux_prefixes = ("aux1.", "aux2.", "AuxLogits.")
        if state is None:
            kwargs.update(aux_logits=False, init_weights=True)
        else:
            # Pretrained GoogLeNet/Inception expect ImageNet-normalised input and convert it.
            aux = any(k.startswith(aux_prefixes) for k in state)
            kwargs.update(transform_input=True, aux_logits=aux, init_weights=False)
    if name.startswith("vit_") and state is not None:
        pos = state.get("encoder.pos_embedding")
        proj = state.get("conv_proj.weight")
        if pos is not None and proj is not None and pos.ndim == 3 and proj.ndim == 4:
            side = math.isqrt(int(pos.shape[1]) - 1)
            kwargs["image_size"] = side * int(proj.shape[-1])
    return kwargs


def get_with_weights(
    tvm: Any, name: str, member: Any, n_classes: int, num_classes: int | None
) -> nn.Module:
    """torchvision's ``name`` with the weights ``member`` (its ``n_classes`` classes), from the
    torch hub cache or downloaded; one clear error offline. ``num_classes``, when given, must
    be the weights' own."""
    if num_classes is not None and num_classes != n_classes:
        raise ModelLoadError(
            f"{member.name} weights for {name} have {n_classes} classes, not "
            f"num_classes={num_classes}; use --weights none or a local state-dict file"
        )
    logger.info(
        "loading %s weights for %s (torch hub cache, else %s)", member.name, name, member.url
    )
    try:
        # progress=False: the library never writes to stderr itself; the CLI logs instead.
        module: nn.Module = tvm.get_model(name, weights=member, progress=False)
    except (OSError, RuntimeError) as exc:  # URLError is an OSError
        raise _download_error(name, member, exc) from exc
    return module


def _download_error(name: str, member: Any, exc: BaseException) -> ModelLoadError:
    url = str(member.url)
    filename = os.path.basename(url)
    cached = Path(torch.hub.get_dir()) / "checkpoints" / filename
    reason = first_line(exc)
    if isinstance(exc, OSError):
        what = f"could not download {member.name} weights for {name} (no network? {reason})"
    else:
        what = f"could not load {member.name} weights for {name} ({reason})"
    return ModelLoadError(
        f"{what}: download {url} elsewhere and pass --weights /path/to/{filename} "
        f"(or put it at {cached})"
    )


def build_torchvision(name: str, kind: str, weights: Any, num_classes: int | None) -> Built:
    """Build a torchvision classifier with ``weights`` (a name, a file, ``none``/None)."""
    tvm = _tvm()
    enum = tvm.get_model_weights(name)
    default = enum.DEFAULT
    default_classes = len(default.meta["categories"])
    spec = parse_weights(weights)
    meta_member = default  # whose preprocessing and categories apply
    if spec.kind == "none":
        kwargs = _builder_kwargs(name, None)
        if num_classes is not None:
            kwargs["num_classes"] = num_classes
        module = _get_model(tvm, name, None, kwargs)
        label = "none"
    elif spec.kind == "file":
        state = load_state_dict_file(spec.value)
        if name.startswith("densenet"):
            state = {_DENSENET_KEY.sub(r"\1\2", k): v for k, v in state.items()}
        kwargs = _builder_kwargs(name, state)
        if num_classes is not None:
            kwargs["num_classes"] = num_classes
        module = _get_model(tvm, name, None, kwargs)
        if num_classes is None:
            module, num_classes = fit_head(
                module,
                state,
                default_classes,
                lambda k: _get_model(tvm, name, None, {**kwargs, "num_classes": k}),
                model_name=name,
            )
        apply_state_dict(module, state, source=f"file {spec.value}", model_name=name)
        label = str(Path(spec.value).expanduser())
    else:
        member = _resolve_member(name, enum, spec.value)
        # None for feature-extraction weights (vgg16 IMAGENET1K_FEATURES: no trained head).
        member_categories = member.meta["categories"]
        n_classes = default_classes if member_categories is None else len(member_categories)
        module = get_with_weights(tvm, name, member, n_classes, num_classes)
        meta_member = member
        label = member.name
    categories = tuple(meta_member.meta["categories"] or ())
    n_out = num_classes if num_classes is not None else (len(categories) or default_classes)
    preprocess = _weights_preprocess(meta_member)
    fixed_input: tuple[int, ...] | None = None
    if name.startswith("vit_"):
        vit: Any = module
        side = int(vit.image_size)  # the ViT was built for exactly this size
        fixed_input = (side, side)
        preprocess = Preprocess(size=(side, side), mean=preprocess.mean, std=preprocess.std)
    elif name.startswith("mvit"):
        fixed_input = (int(default.meta["min_temporal_size"]), *_size2(default.meta["min_size"]))
    return Built(
        module=module,
        kind=kind,
        weights=label,
        preprocess=preprocess,
        categories=categories if len(categories) == n_out else None,
        clip_len=DEFAULT_CLIP_LEN if kind == "video" else None,
        background_class=None,
        default_layer=VIDEO_LAYERS.get(name) if kind == "video" else frame_default_layer(name),
        num_classes=n_out,
        reshape_factory=lambda m, layer: torchvision_reshape(name, m, layer),
        fixed_input=fixed_input,
    )


def _get_model(tvm: Any, name: str, weights: Any, kwargs: dict[str, Any]) -> nn.Module:
    try:
        module: nn.Module = tvm.get_model(name, weights=weights, **kwargs)
    except (TypeError, ValueError) as exc:
        raise ModelLoadError(f"cannot build {name} with {kwargs}: {exc}") from exc
    return module


def torchvision_reshape(name: str, module: nn.Module, layer: str) -> ReshapeFn | None:
    """The reshape a torchvision model's ``layer`` needs to give (N, C, *S), None if none.

    * ``mvit_*``: ``pos_encoding``, ``blocks.*`` and ``norm`` output tokens with a class token;
      the grid follows the patch embedding (``conv_proj``) and each block's query pooling.
    * ``vit_*``: ``encoder.*`` outputs tokens with a class token on a (H/p, W/p) grid.
    * ``swin*`` (2D and 3D): ``patch_embed``, ``features.*`` and ``norm`` are channels-last.
    """
    top = layer.split(".")[0]
    description = f"{name} layer {layer}"
    net: Any = module  # torchvision's attributes are untyped
    if name.startswith("mvit") and top in ("pos_encoding", "blocks", "norm"):
        pools = [
            ConvGeometry.of(block.attn.pool_q.pool, 3)
            for block in net.blocks
            if block.attn.pool_q is not None
        ]
        # Keep the poolings that change the grid (stride > 1); the others preserve its size.
        stages = tuple(p for p in pools if any(s > 1 for s in p.stride))
        spatial = tuple(net.pos_encoding.spatial_size)
        temporal = int(net.pos_encoding.temporal_size)
        patch = ConvGeometry.of(net.conv_proj, 3)
        expected = (
            temporal * patch.stride[0],
            *(s * st for s, st in zip(spatial, patch.stride[1:], strict=True)),
        )
        return TokensToGrid(patch, stages, description=description, expected_input=expected)
    if name.startswith("vit_") and top == "encoder":
        side = int(net.image_size)
        patch = ConvGeometry.of(net.conv_proj, 2)
        return TokensToGrid(patch, (), description=description, expected_input=(side, side))
    if name.startswith("swin") and top in ("patch_embed", "pos_drop", "features", "norm"):
        return ChannelsLastToFirst(description=description)
    return None
