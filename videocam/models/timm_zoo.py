"""timm image classifiers (``--model timm:NAME``), run per frame: building them, their weights,
preprocessing from timm's own data config, default layers and the ViT token reshape.

``NAME`` is any of ``timm.list_models()`` (``resnet50``, ``convnext_tiny``,
``vit_base_patch16_224``, ``deit_small_distilled_patch16_224``…), optionally with a pretrained
tag (``resnet50.a1_in1k``).
Weights: ``DEFAULT`` through timm's own pretrained loading (``timm.create_model(pretrained=True)``,
the Hugging Face Hub or its cache); a pretrained tag as ``--weights TAG``; a local state-dict
file (``torch.load(weights_only=True)``, loaded strictly; a different head size and a ViT's
image size are read from the file); or ``none``.

Preprocessing comes from ``timm.data.resolve_model_data_config``: input size, mean and std.
Its interpolation and ``crop_pct`` are not applied: videocam resizes the whole frame to the input
size in the decoder (no crop), as for every model. Class names: timm's own ImageNet tables
(``timm.data.ImageNetInfo``) when the head has the 1000 (or 21k…) classes of the subset the
pretrained config names. timm is imported only here and only when a ``timm:`` model is loaded.

Default layers: for ViT-like models (``patch_embed``, ``blocks``, ``num_prefix_tokens``:
VisionTransformer, DeiT, EVA…) the last block's ``norm1`` when the head reads the class token
(``global_pool='token'``: the last block's output reaches the logits through that one token
alone), else the last block's output (pooled heads); tokens are
``num_prefix_tokens`` class / register / distillation tokens, then the (h, w) patch grid. For the
others, the last stage of timm's own ``feature_info`` (``layer4``, ``stages.3``…), channels-last
stages (``output_fmt='NHWC'``: Swin) moved to channels-first.
"""

from __future__ import annotations

import difflib
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from videocam.errors import ModelLoadError, first_line
from videocam.models.layers import ChannelsLastToFirst, PatchTokens, ReshapeFn
from videocam.models.optional import import_optional, quiet_hub
from videocam.models.preprocess import Preprocess
from videocam.models.spec import Built, ModelInfo
from videocam.models.weights import (
    WeightsSpec,
    apply_state_dict,
    fit_head,
    load_state_dict_file,
    parse_weights,
)

logger = logging.getLogger(__name__)

__all__ = [
    "TIMM_PREFIX",
    "build_timm",
    "is_timm_spec",
    "is_vit_like",
    "timm_default_layer",
    "timm_infos",
    "timm_reshape",
]

TIMM_PREFIX = "timm:"

_VIT_LAYER = "blocks.-1.norm1 (class-token head), else blocks.-1 (pooled head)"
_CNN_LAYER = "the last stage of timm's feature_info (layer4, stages.3, …)"


def is_timm_spec(name: str) -> bool:
    """Whether a ``--model`` value names a timm model (``timm:NAME``)."""
    return name.strip().lower().startswith(TIMM_PREFIX)


def timm_infos() -> list[ModelInfo]:
    """``videocam models`` rows of the ``timm:`` prefix (no timm import)."""
    return [
        ModelInfo(
            name="timm:NAME",
            kind="frame",
            default_layer=_VIT_LAYER,
            weights=("DEFAULT", "TAG"),
            input_size=None,
            clip_len=None,
            source="timm",
            family="vit",
            note="num_prefix_tokens class/register/distillation tokens, then the (h, w) patch grid",
        ),
        ModelInfo(
            name="timm:NAME",
            kind="frame",
            default_layer=_CNN_LAYER,
            weights=("DEFAULT", "TAG"),
            input_size=None,
            clip_len=None,
            source="timm",
            family="cnn",
            note="(N, C, H, W) maps; channels-last stages (Swin) moved to channels-first",
        ),
    ]


def _timm() -> Any:
    return import_optional("timm", needed_for="--model timm:…")


def is_vit_like(module: nn.Module) -> bool:
    """A timm transformer with a patch embedding, a list of blocks and prefix tokens."""
    return all(hasattr(module, a) for a in ("patch_embed", "blocks", "num_prefix_tokens")) and (
        isinstance(getattr(module, "blocks", None), (nn.Sequential, nn.ModuleList))
    )


def timm_default_layer(module: nn.Module) -> tuple[str, str]:
    """The default layer of a timm classifier and why, in words."""
    net: Any = module
    if is_vit_like(module):
        last = len(net.blocks) - 1
        if getattr(net, "global_pool", None) == "token":
            return f"blocks.{last}.norm1", (
                "the last block's norm1 (the head reads the class token; at the block's "
                "output no other position reaches it)"
            )
        return f"blocks.{last}", "the last block's output (the head pools every patch token)"
    info: Any = getattr(net, "feature_info", None)
    try:
        layer = str(info[-1]["module"])
    except (TypeError, KeyError, IndexError) as exc:
        raise ModelLoadError(
            f"{type(module).__name__} has no feature_info to find its last stage; pass --layer"
        ) from exc
    return layer, "the last stage of timm's feature_info"


def timm_reshape(module: nn.Module, layer: str, *, name: str) -> ReshapeFn | None:
    """The reshape a timm model's ``layer`` needs to give (N, C, H, W), None if none."""
    net: Any = module
    top = layer.split(".")[0]
    description = f"{name} layer {layer}"
    if is_vit_like(module):
        if top not in ("patch_embed", "pos_drop", "patch_drop", "norm_pre", "blocks", "norm"):
            return None
        patch = tuple(int(p) for p in net.patch_embed.patch_size)
        return PatchTokens(
            patch,
            int(net.num_prefix_tokens),
            order="hw",
            description=description,
            expected_input=_vit_size(module),
        )
    if str(getattr(net, "output_fmt", "NCHW")) == "NHWC" and top not in ("head", "fc"):
        return ChannelsLastToFirst(description=description)
    return None


def _vit_size(module: nn.Module) -> tuple[int, int] | None:
    net: Any = module
    if getattr(net, "dynamic_img_size", False):
        return None
    size = getattr(net.patch_embed, "img_size", None)
    return (int(size[0]), int(size[1])) if size is not None else None


def _check_name(timm: Any, name: str) -> None:
    arch, _, tag = name.partition(".")
    if timm.is_model(arch):
        if not tag:
            return
        tags = [n.partition(".")[2] for n in timm.list_pretrained(f"{arch}.*")]
        if tag in tags:
            return
        raise ModelLoadError(
            f"timm has no pretrained tag {tag!r} for {arch}; tags: {', '.join(tags) or 'none'}"
        )
    close = difflib.get_close_matches(name, timm.list_models(), n=5, cutoff=0.6)
    hint = f"; did you mean: {', '.join(close)}?" if close else ""
    count = len(timm.list_models())
    raise ModelLoadError(
        f"unknown timm model {name!r}{hint} (timm.list_models() lists the {count} names "
        "timm:NAME accepts)"
    )


def _create(timm: Any, name: str, **kwargs: Any) -> nn.Module:
    try:
        module: nn.Module = timm.create_model(name, **kwargs)
    except (TypeError, ValueError, AssertionError) as exc:
        raise ModelLoadError(f"cannot build timm:{name} with {kwargs}: {exc}") from exc
    return module


def _pretrained(timm: Any, name: str, num_classes: int | None) -> nn.Module:
    arch = name.partition(".")[0]
    logger.info("loading timm:%s pretrained weights (Hugging Face cache, else the Hub)", name)
    kwargs: dict[str, Any] = {"pretrained": True}
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    with quiet_hub():
        try:
            module: nn.Module = timm.create_model(name, **kwargs)
        except RuntimeError as exc:
            if "no pretrained weights" in str(exc).lower():
                raise ModelLoadError(
                    f"timm has no pretrained weights for {name}; use --weights none or a "
                    "local state-dict file"
                ) from exc
            raise _download_error(name, arch, exc) from exc
        except (OSError, ValueError) as exc:  # no network: LocalEntryNotFoundError, URLError
            raise _download_error(name, arch, exc) from exc
    return module


def _download_error(name: str, arch: str, exc: BaseException) -> ModelLoadError:
    return ModelLoadError(
        f"could not download the pretrained weights of timm:{name} (no network? "
        f"{first_line(exc)}): on a machine that can, run torch.save(timm.create_model("
        f"'{name}', pretrained=True).state_dict(), '{arch}.pth') and pass --weights "
        f"/path/to/{arch}.pth; HF_HUB_OFFLINE=1 skips the Hub's retries when offline"
    )


def _file_kwargs(module: nn.Module, state: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """Architecture arguments a state dict implies: a ViT's image size (its position table)."""
    net: Any = module
    if not is_vit_like(module) or getattr(net, "pos_embed", None) is None:
        return {}
    pos = state.get("pos_embed")
    if pos is None or pos.ndim != 3 or pos.shape[1] == net.pos_embed.shape[1]:
        return {}
    grid = math.prod(int(g) for g in net.patch_embed.grid_size)
    in_table = int(net.pos_embed.shape[1]) - grid  # prefix tokens with a position embedding
    side = math.isqrt(int(pos.shape[1]) - in_table)
    if side * side != int(pos.shape[1]) - in_table:
        return {}
    patch = int(net.patch_embed.patch_size[0])
    return {"img_size": side * patch}


def _categories(timm: Any, module: nn.Module, n_classes: int) -> tuple[tuple[str, ...] | None, str]:
    try:
        data = import_optional("timm.data", needed_for="--model timm:…")
        subset = data.infer_imagenet_subset(module)
        if not subset:
            return None, "none (timm names no label set for this model)"
        info = data.ImageNetInfo(subset)
        if info.num_classes() != n_classes:
            return (
                None,
                f"none (the head has {n_classes} classes, {subset} has {info.num_classes()})",
            )
        names = tuple(
            str(info.index_to_description(i)).split(",")[0].strip() for i in range(n_classes)
        )
    except (ImportError, KeyError, ValueError, OSError, AttributeError) as exc:
        return None, f"none ({type(exc).__name__}: {first_line(exc)})"
    return names, f"timm.data.ImageNetInfo({subset!r}) (first name of each class)"


def _weighted_module(
    timm: Any, name: str, weights: WeightsSpec, num_classes: int | None
) -> tuple[nn.Module, str, str, str]:
    """(the model with its weights, its name with the tag, the weights label, where they came
    from, in words): timm's pretrained ones (DEFAULT or a tag), a local file (whose head size
    and a ViT's image size it implies), or none."""
    display = f"timm:{name}"
    if weights.kind in ("default", "name"):
        if weights.kind == "name":
            name = f"{name.partition('.')[0]}.{weights.value}"
            _check_name(timm, name)
            display = f"timm:{name}"
        module = _pretrained(timm, name, num_classes)
        label = "DEFAULT" if weights.kind == "default" else weights.value
        cfg = getattr(module, "pretrained_cfg", {}) or {}
        where = cfg.get("hf_hub_id") or cfg.get("url") or "timm"
        return module, display, label, f"timm pretrained {cfg.get('tag') or 'default'} ({where})"
    kwargs: dict[str, Any] = {"pretrained": False}
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    module = _create(timm, name, **kwargs)
    if weights.kind != "file":
        return module, display, "none", "none: random initialisation"
    state = load_state_dict_file(weights.value)
    extra = _file_kwargs(module, state)
    if extra:
        logger.info("%s: the weights file implies %s", display, extra)
        kwargs.update(extra)
        module = _create(timm, name, **kwargs)
    if num_classes is None:
        module, _ = fit_head(
            module,
            state,
            getattr(module, "num_classes", None),
            lambda k: _create(timm, name, **kwargs, num_classes=k),
            model_name=display,
        )
    apply_state_dict(module, state, source=f"file {weights.value}", model_name=display)
    label = str(Path(weights.value).expanduser())
    return module, display, label, f"file {label} (torch.load weights_only=True)"


def build_timm(spec: str, weights: Any, num_classes: int | None) -> Built:
    """Build ``timm:NAME`` with ``weights``: DEFAULT, a pretrained tag, a file, or none."""
    name = spec.strip()[len(TIMM_PREFIX) :].strip()
    if not name:
        raise ModelLoadError("--model timm: needs a model name: timm:NAME (timm.list_models())")
    timm = _timm()
    _check_name(timm, name)
    module, display, label, weights_from = _weighted_module(
        timm, name, parse_weights(weights), num_classes
    )
    sources: dict[str, str] = {"weights": weights_from}
    module.eval()
    net: Any = module
    n_classes = int(getattr(net, "num_classes", 0) or 0) or None

    data = import_optional("timm.data", needed_for="--model timm:…")
    config = data.resolve_model_data_config(module)
    cfg = getattr(module, "pretrained_cfg", {}) or {}
    vit_size = _vit_size(module) if is_vit_like(module) else None
    fixed: tuple[int, int] | None = vit_size
    if vit_size is not None:
        size = vit_size
        sources["input_size"] = "the ViT's patch_embed.img_size (its position embeddings fix it)"
    else:
        size = (int(config["input_size"][-2]), int(config["input_size"][-1]))
        sources["input_size"] = "timm.data.resolve_model_data_config (input_size)"
        if cfg.get("fixed_input_size") and not is_vit_like(module):
            fixed = size  # a ViT with dynamic_img_size takes any size
    mean = tuple(float(m) for m in config["mean"])
    std = tuple(float(s) for s in config["std"])
    sources["mean_std"] = "timm.data.resolve_model_data_config (mean, std)"
    sources["resize"] = (
        f"whole frame resized to {size[0]}x{size[1]} in the decoder; timm's interpolation "
        f"({config.get('interpolation')}) and crop_pct {config.get('crop_pct')} "
        f"({config.get('crop_mode')}) are not applied"
    )
    categories, origin = _categories(timm, module, n_classes or 0)
    sources["categories"] = origin
    layer, why = timm_default_layer(module)
    sources["layer"] = f"family default: {why}"
    sources["family"] = "vit" if is_vit_like(module) else "cnn"
    if is_vit_like(module):
        sources["tokens"] = (
            f"{int(net.num_prefix_tokens)} prefix token(s), then the (h, w) patch grid"
        )

    def reshape_factory(model: nn.Module, layer_name: str) -> ReshapeFn | None:
        return timm_reshape(model, layer_name, name=display)

    return Built(
        module=module,
        kind="frame",
        weights=label,
        preprocess=Preprocess(size=size, mean=mean, std=std),  # type: ignore[arg-type]
        categories=categories,
        clip_len=None,
        background_class=None,
        default_layer=layer,
        num_classes=n_classes,
        reshape_factory=reshape_factory,
        fixed_input=fixed,
        sources=sources,
    )
