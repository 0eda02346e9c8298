"""Hugging Face ``transformers`` classifiers (``--model hf:ID_OR_DIR``): loading, the adapter to
videocam's input and logits, each family's default layer, token geometry and preprocessing.

``ID_OR_DIR`` is a directory written by ``save_pretrained`` or a Hub model ID. Video
classification models (VideoMAE, TimeSformer, ViViT) run on windows; image classification models
(ViT, DeiT, DINOv2, BEiT, ConvNeXt, ResNet…) run per frame. Everything videocam needs comes from
the model's own files: class names from ``config.json``'s ``id2label``, the clip length
(``num_frames``) and input size (``image_size``) from the config, mean / std from the processor's
config (``video_preprocessor_config.json`` / ``preprocessor_config.json``) and else from the
defaults of transformers' own processor class; where each came from is kept in
``LoadedModel.sources`` (summary.json → ``model.sources``).

Loading is transformers' own (``AutoConfig`` / ``AutoModelFor…Classification.from_pretrained``)
with ``trust_remote_code=False`` — a model whose config asks for custom code is refused — float32
weights, safetensors or ``torch.load(weights_only=True)``. transformers is imported only here and
only when an ``hf:`` model is loaded.

Token layers (see :class:`~videocam.models.layers.PatchTokens`):

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

import json
import logging
import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from videocam.errors import ConfigError, ModelLoadError
from videocam.models.layers import PatchTokens, ReshapeFn
from videocam.models.optional import import_optional, quiet_hub
from videocam.models.preprocess import IMAGENET_MEAN, IMAGENET_STD, Preprocess
from videocam.models.spec import Built, ModelInfo
from videocam.models.weights import (
    WeightsSpec,
    apply_state_dict,
    head_num_classes,
    load_state_dict_file,
    parse_weights,
)

logger = logging.getLogger(__name__)

__all__ = [
    "HF_FAMILIES",
    "HF_PREFIX",
    "HFClassifier",
    "HFFamily",
    "build_hf",
    "default_layer",
    "embedding_layer",
    "hf_infos",
    "hf_reshape",
    "is_hf_spec",
]

HF_PREFIX = "hf:"


def is_hf_spec(name: str) -> bool:
    """Whether a ``--model`` value names a Hugging Face model (``hf:ID_OR_DIR``)."""
    return name.strip().lower().startswith(HF_PREFIX)


# --- the families -----------------------------------------------------------------------------


@dataclass(frozen=True)
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
    """

    model_type: str
    kind: str
    tokens: str
    head: str
    prefix: int
    layer: str


#: The families with a tested default layer and token geometry; ``layer`` as transformers 5
#: names it (the rule, not the name, is what videocam applies: names differ between versions).
HF_FAMILIES: dict[str, HFFamily] = {
    f.model_type: f
    for f in (
        HFFamily(
            "videomae",
            "video",
            "tubelets",
            "config",
            0,
            "videomae.encoder.layer.-1 (mean-pooled head; else its layernorm_before)",
        ),
        HFFamily(
            "timesformer",
            "video",
            "divided",
            "token",
            1,
            "timesformer.encoder.layer.-1.layernorm_before",
        ),
        HFFamily("vivit", "video", "tubelets", "token", 1, "vivit.layers.-1.layernorm_before"),
        HFFamily("vit", "frame", "patches", "token", 1, "vit.layers.-1.layernorm_before"),
        HFFamily("deit", "frame", "patches", "token", 2, "deit.layers.-1.layernorm_before"),
        HFFamily("dinov2", "frame", "patches", "token", 1, "dinov2.encoder.layer.-1.norm1"),
        HFFamily(
            "dinov2_with_registers",
            "frame",
            "patches",
            "token",
            1,
            "dinov2_with_registers.encoder.layer.-1.norm1",
        ),
        HFFamily(
            "beit",
            "frame",
            "patches",
            "config",
            1,
            "beit.layers.-1 (mean-pooled head; else its layernorm_before)",
        ),
        HFFamily("convnext", "frame", "maps", "map", 0, "convnext.encoder.stages.-1"),
        HFFamily("resnet", "frame", "maps", "map", 0, "resnet.encoder.stages.-1"),
    )
}

_TOKEN_ORDER = {
    "videomae": "tubelets t'×h'×w' (tubelet_size frames × patch²), (t, h, w) order, no class token",
    "timesformer": "class token, then 1 frame × patch² tokens in (h, w, t) order",
    "vivit": "class token, then tubelets (tubelet_size), (t, h, w) order",
    "vit": "class token, then the (h, w) patch grid",
    "deit": "class and distillation tokens, then the (h, w) patch grid",
    "dinov2": "class token, then the (h, w) patch grid",
    "dinov2_with_registers": "class and register tokens, then the (h, w) patch grid",
    "beit": "class token, then the (h, w) patch grid",
    "convnext": "(N, C, H, W) feature maps",
    "resnet": "(N, C, H, W) feature maps",
}


def hf_infos() -> list[ModelInfo]:
    """``videocam models`` rows: one per ``hf:`` family (no transformers import)."""
    return [
        ModelInfo(
            name="hf:ID_OR_DIR",
            kind=family.kind,
            default_layer=family.layer,
            weights=("DEFAULT",),
            input_size=None,
            clip_len=None,
            source="transformers",
            family=family.model_type,
            note=_TOKEN_ORDER[family.model_type],
        )
        for family in HF_FAMILIES.values()
    ]


# --- the adapter ------------------------------------------------------------------------------


class HFClassifier(nn.Module):
    """A transformers classifier as videocam runs it: (N, 3, T, H, W) or (N, 3, H, W) → logits.

    Video models take ``pixel_values`` (N, T, C, H, W) and every transformers classifier returns
    an output object; this adapter transposes the input and returns ``.logits``. It holds no
    weights of its own: its submodules, parameters and buffers *are* the Hugging Face model's
    (the same objects), so layer names are the model's own (``videomae.encoder.layer.11``,
    ``vit.layers.11.layernorm_before`` — as ``named_modules()`` of the transformers model
    lists them), its ``state_dict`` is the model's, and its ``training`` flag is the model's.

    Args:
        model: the ``…ForVideoClassification`` / ``…ForImageClassification`` module.
        kind: ``"video"`` or ``"frame"``.
        expected_input: the (T, H, W) or (H, W) the model only accepts, else None.
        name: names the model in errors.
    """

    def __init__(
        self,
        model: nn.Module,
        kind: str,
        expected_input: tuple[int, ...] | None,
        name: str,
    ) -> None:
        super().__init__()
        state = self.__dict__
        state["_hf_model"] = model  # not registered: its children are ours, not it
        state["_modules"] = model._modules
        state["_parameters"] = model._parameters
        state["_buffers"] = model._buffers
        state["_non_persistent_buffers_set"] = model._non_persistent_buffers_set
        self.kind = kind
        self.expected_input = expected_input
        self.model_name = name
        self.input_name = str(getattr(model, "main_input_name", "pixel_values"))

    # ``training`` is the wrapped model's own flag, so that eval()/train() and restoring flags
    # module by module (the CAM engine does) leave the model exactly as they found it.
    @property
    def training(self) -> bool:
        model = self.__dict__.get("_hf_model")
        if model is None:
            return bool(self.__dict__.get("_training_before_wrap", True))
        return bool(model.training)

    @training.setter
    def training(self, mode: bool) -> None:
        model = self.__dict__.get("_hf_model")
        if model is None:
            self.__dict__["_training_before_wrap"] = mode
        else:
            model.training = mode

    @property
    def hf_model(self) -> nn.Module:
        """The wrapped transformers model."""
        model: nn.Module = self.__dict__["_hf_model"]
        return model

    @property
    def config(self) -> Any:
        """The wrapped model's config."""
        return self.hf_model.config

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, K) for ``x`` (N, 3, T, H, W) (video) or (N, 3, H, W) (frame)."""
        ndim = 5 if self.kind == "video" else 4
        if x.ndim != ndim:
            layout = "(N, 3, T, H, W)" if ndim == 5 else "(N, 3, H, W)"
            raise ConfigError(
                f"{self.model_name}: expected an input {layout}, got shape {tuple(x.shape)}"
            )
        expected = self.expected_input
        if expected is not None and tuple(x.shape[-len(expected) :]) != tuple(expected):
            raise ConfigError(self._size_message(tuple(x.shape[2:])))
        pixel_values = x.transpose(1, 2) if self.kind == "video" else x
        output = self.hf_model(**{self.input_name: pixel_values})
        logits = getattr(output, "logits", None)
        if logits is None:
            logits = output[0]
        result: torch.Tensor = logits
        return result

    def _size_message(self, got: tuple[int, ...]) -> str:
        expected = self.expected_input or ()
        if self.kind == "video":
            t, h, w = expected
            return (
                f"{self.model_name} takes exactly {t} frames of {h}x{w} (its position "
                f"embeddings fix them), got {got[0]} frames of {got[1]}x{got[2]}: use "
                f"--clip-len {t} (and no --input-size)"
            )
        return (
            f"{self.model_name} takes exactly {expected[0]}x{expected[1]} frames (its position "
            f"embeddings fix them), got {got[0]}x{got[1]}"
        )


# --- default layers and reshapes ----------------------------------------------------------------


def _base_prefix(model: nn.Module) -> str:
    prefix = str(getattr(model, "base_model_prefix", ""))
    if prefix and prefix in dict(model.named_children()):
        return prefix
    raise ModelLoadError(
        f"{type(model).__name__}: no backbone named {prefix!r} among its top-level layers"
    )


def _block_list(model: nn.Module, config: Any) -> str:
    """Dotted name of the ModuleList of encoder blocks (transformers' names vary by version:
    ``vit.encoder.layer`` before v5, ``vit.layers`` after)."""
    prefix = _base_prefix(model)
    count = int(getattr(config, "num_hidden_layers", 0) or 0)
    backbone = dict(model.named_children())[prefix]
    for name, module in backbone.named_modules():
        if name and isinstance(module, nn.ModuleList) and len(module) == count > 0:
            return f"{prefix}.{name}"
    raise ModelLoadError(
        f"{type(model).__name__}: cannot find its {count} encoder blocks; pass --layer"
    )


_NORM_NAMES = ("layernorm_before", "norm1", "layer_norm1", "ln_1")


def _first_norm(block: nn.Module, block_name: str) -> str:
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
        prefix = _base_prefix(model)
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
    return _first_norm(block, last), (
        "the last encoder block's first LayerNorm (the head reads one token; at the block's "
        "output no other position reaches it)"
    )


def embedding_layer(model: nn.Module) -> str:
    """The layer right after the patch embedding: ``<backbone>.embeddings`` (tokens with their
    class token and position embeddings)."""
    return f"{_base_prefix(model)}.embeddings"


def _pair(value: Any) -> tuple[int, int]:
    if isinstance(value, (list, tuple)):
        return int(value[0]), int(value[-1])
    return int(value), int(value)


def _patch(family: HFFamily, config: Any) -> tuple[int, ...]:
    if family.model_type == "vivit":
        t, h, w = (int(v) for v in config.tubelet_size)
        return (t, h, w)
    ph, pw = _pair(config.patch_size)
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
    prefix_name = _base_prefix(model)
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


# --- reading the model's files ------------------------------------------------------------------


def _transformers() -> Any:
    return import_optional("transformers", needed_for="--model hf:…")


@contextmanager
def _quiet_progress(transformers: Any) -> Iterator[None]:
    """No progress bars, load reports or Hub retry warnings on stderr while loading: the library
    never writes there itself (a missing head is an error of ours instead of transformers'
    warning, a failed download one line)."""
    tf_logging = transformers.utils.logging
    was = tf_logging.is_progress_bar_enabled()
    verbosity = tf_logging.get_verbosity()
    tf_logging.disable_progress_bar()
    tf_logging.set_verbosity_error()
    try:
        with quiet_hub():
            yield
    finally:
        tf_logging.set_verbosity(verbosity)
        if was:
            tf_logging.enable_progress_bar()


@dataclass(frozen=True)
class _Source:
    spec: str  # as given after the prefix
    local: Path | None  # the save_pretrained directory, or None for a Hub ID

    @property
    def ref(self) -> str:
        return str(self.local) if self.local is not None else self.spec

    @property
    def where(self) -> str:
        return str(self.local) if self.local is not None else f"the Hub's {self.spec}"

    @property
    def display(self) -> str:
        return f"hf:{self.spec}"


def _looks_like_path(text: str) -> bool:
    return text.startswith((".", "/", "~")) or text.count("/") > 1 or "\\" in text


def _source(spec: str) -> _Source:
    text = spec.strip()[len(HF_PREFIX) :].strip()
    if not text:
        raise ModelLoadError(
            "--model hf: needs a Hub model ID or a save_pretrained directory: hf:ID_OR_DIR"
        )
    path = Path(text).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelLoadError(
                f"hf:{text}: {path} is not a save_pretrained directory (no config.json in it)"
            )
        return _Source(text, path.resolve())
    if path.exists():
        raise ModelLoadError(
            f"hf:{text}: {path} is a file; pass the directory model.save_pretrained(DIR) wrote"
        )
    if _looks_like_path(text):
        raise ModelLoadError(f"hf:{text}: directory not found: {path}")
    return _Source(text, None)


def _offline_hint(source: _Source) -> str:
    return (
        f"save it on a machine that can reach the Hub with "
        f"AutoModelFor…Classification.from_pretrained('{source.spec}').save_pretrained(DIR) "
        f"(and the processor's save_pretrained(DIR)), then pass --model hf:DIR; "
        f"HF_HUB_OFFLINE=1 skips the Hub's retries when offline"
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _load_error(source: _Source, what: str, exc: BaseException) -> ModelLoadError:
    if source.local is None and isinstance(exc, OSError):
        return ModelLoadError(
            f"could not download {what} of {source.display} from the Hugging Face Hub "
            f"(no network? {_first_line(exc)}): {_offline_hint(source)}"
        )
    return ModelLoadError(
        f"cannot load {what} of {source.display} ({type(exc).__name__}: {_first_line(exc)})"
    )


def _read_config(transformers: Any, source: _Source) -> Any:
    try:
        with _quiet_progress(transformers):
            config = transformers.AutoConfig.from_pretrained(source.ref, trust_remote_code=False)
    except OSError as exc:
        raise _load_error(source, "the config", exc) from exc
    except (ValueError, KeyError) as exc:  # an unknown model_type, custom code refused…
        raise ModelLoadError(
            f"cannot read the config of {source.display}: {_first_line(exc)} (videocam runs "
            f"only model code that ships with transformers: trust_remote_code=False)"
        ) from exc
    if getattr(config, "auto_map", None):
        raise ModelLoadError(
            f"{source.display} asks for custom model code (auto_map in its config.json); "
            "videocam never runs code downloaded with a model (trust_remote_code=False)"
        )
    return config


def _json_file(transformers: Any, source: _Source, filename: str) -> dict[str, Any] | None:
    """A JSON file of the model (its directory, or the Hub / its cache), None when absent."""
    if source.local is not None:
        path = source.local / filename
        if not path.is_file():
            return None
        text = path.read_text(encoding="utf-8")
    else:
        try:
            with _quiet_progress(transformers):
                resolved = transformers.utils.cached_file(
                    source.spec,
                    filename,
                    _raise_exceptions_for_missing_entries=False,
                    _raise_exceptions_for_connection_errors=False,
                )
        except OSError:
            return None
        if resolved is None:
            return None
        text = Path(resolved).read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelLoadError(f"{source.display}: {filename} is not valid JSON ({exc})") from exc
    return data if isinstance(data, dict) else None


def _processor_config(
    transformers: Any, source: _Source, kind: str
) -> tuple[dict[str, Any] | None, str]:
    """The processor's saved configuration and the file it came from (video models prefer the
    video processor's)."""
    video_name = "video_preprocessor_config.json"
    image_name = "preprocessor_config.json"
    names = (video_name, image_name) if kind == "video" else (image_name,)
    for filename in names:
        data = _json_file(transformers, source, filename)
        if data is not None:
            return data, filename
    combined = _json_file(transformers, source, "processor_config.json")
    if combined is not None:
        keys = ("video_processor", "image_processor") if kind == "video" else ("image_processor",)
        for key in keys:
            if isinstance(combined.get(key), dict):
                return combined[key], f"processor_config.json ({key})"
    return None, ""


def _processor_class(
    transformers: Any, model_type: str, kind: str, saved: Mapping[str, Any]
) -> Any:
    """transformers' processor class: the one the saved config names, else the family's."""
    for key in ("video_processor_type", "image_processor_type"):
        named = saved.get(key)
        if isinstance(named, str) and hasattr(transformers, named):
            return getattr(transformers, named)
    try:
        from transformers.models.auto import image_processing_auto, video_processing_auto
    except ImportError:
        return None
    tables = [image_processing_auto.IMAGE_PROCESSOR_MAPPING_NAMES]
    if kind == "video":
        tables.insert(0, video_processing_auto.VIDEO_PROCESSOR_MAPPING_NAMES)
    for table in tables:
        entry: Any = table.get(model_type)
        names: list[Any]
        if isinstance(entry, dict):
            names = list(entry.values())
        elif isinstance(entry, (list, tuple)):
            names = list(entry)
        else:
            names = [entry]
        for class_name in names:
            if isinstance(class_name, str) and hasattr(transformers, class_name):
                return getattr(transformers, class_name)
    return None


def _rgb(value: Any, what: str, where: str) -> tuple[float, float, float]:
    values = [float(value)] * 3 if isinstance(value, (int, float)) else [float(v) for v in value]
    if len(values) != 3 or not all(math.isfinite(v) for v in values):
        raise ModelLoadError(f"{where}: {what} must be 1 or 3 finite numbers, got {value!r}")
    return (values[0], values[1], values[2])


@dataclass(frozen=True)
class _Stats:
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    source: str  # where mean / std came from, in words
    origin: str  # the processor's file, or the defaults used
    size: tuple[int, int] | None  # what the processor resizes / crops to, (H, W)
    resize: str  # the processor's resizing, in words


def _processor_stats(transformers: Any, source: _Source, family_type: str, kind: str) -> _Stats:
    """mean / std in videocam's units ((x/255 - mean) / std) from the processor's arithmetic.

    transformers computes ``(pixel · rescale_factor − offset − image_mean) / image_std``
    (``offset`` 1 for ViViT's processors, else 0; ``do_rescale`` / ``do_normalize`` false drop
    a step), which is ``(pixel/255 − m) / s`` with ``m = (offset + image_mean) /
    (255 · rescale_factor)`` and ``s = image_std / (255 · rescale_factor)``. Keys the saved
    config lacks take the defaults of the processor class it names (else the family's).
    """
    saved, filename = _processor_config(transformers, source, kind)
    cls = _processor_class(transformers, family_type, kind, saved or {})

    def get(key: str, default: Any) -> Any:
        if saved is not None and key in saved and saved[key] is not None:
            return saved[key]
        value = getattr(cls, key, None) if cls is not None else None
        return default if value is None else value

    if saved is not None:
        origin = (
            f"{source.local}/{filename}"
            if source.local is not None
            else f"{filename} of {source.spec}"
        )
        where = f"{origin} (image_mean, image_std, rescale_factor)"
    elif cls is not None:
        origin = f"transformers' {cls.__name__} defaults"
        where = f"{origin} ({source.display} has no processor config)"
    else:
        origin = "ImageNet statistics"
        where = f"{origin} ({source.display} has no processor config)"
    scale = float(get("rescale_factor", 1 / 255)) if bool(get("do_rescale", True)) else 1.0
    vivit = cls is not None and cls.__name__.startswith("Vivit")
    offset = 1.0 if vivit and scale != 1.0 and bool(get("offset", True)) else 0.0
    normalize = bool(get("do_normalize", True))
    if normalize:
        image_mean = _rgb(get("image_mean", list(IMAGENET_MEAN)), "image_mean", where)
        image_std = _rgb(get("image_std", list(IMAGENET_STD)), "image_std", where)
    else:
        image_mean, image_std = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
    if min(image_std) <= 0 or scale <= 0:
        raise ModelLoadError(f"{where}: image_std and rescale_factor must be positive")
    if offset:
        where += ", offset 1"
    unit = 255.0 * scale
    mean = tuple((offset + m) / unit for m in image_mean)
    std = tuple(s / unit for s in image_std)
    size, resize = _processor_size(get)
    return _Stats(mean, std, where, origin, size, resize)  # type: ignore[arg-type]


def _size_of(value: Any) -> tuple[int, int] | None:
    if isinstance(value, dict):
        if "height" in value and "width" in value:
            return int(value["height"]), int(value["width"])
        if "shortest_edge" in value:
            side = int(value["shortest_edge"])
            return side, side
    if isinstance(value, int):
        return value, value
    return None


def _processor_size(get: Any) -> tuple[tuple[int, int] | None, str]:
    size = _size_of(get("size", None)) if bool(get("do_resize", True)) else None
    crop = _size_of(get("crop_size", None)) if bool(get("do_center_crop", False)) else None
    words = []
    raw = get("size", None)
    if size is not None:
        words.append(f"resize {json.dumps(raw, sort_keys=True)}")
    if crop is not None:
        words.append(f"center crop {crop[0]}x{crop[1]}")
    return crop or size, ", ".join(words) or "none"


# --- building ---------------------------------------------------------------------------------


def _model_class(transformers: Any, config: Any, source: _Source) -> tuple[Any, str]:
    from transformers.models.auto import modeling_auto

    model_type = str(config.model_type)
    if model_type in modeling_auto.MODEL_FOR_VIDEO_CLASSIFICATION_MAPPING_NAMES:
        return transformers.AutoModelForVideoClassification, "video"
    if model_type in modeling_auto.MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES:
        return transformers.AutoModelForImageClassification, "frame"
    architectures = ", ".join(getattr(config, "architectures", None) or []) or "none"
    raise ModelLoadError(
        f"{source.display} is a {model_type!r} model (architectures: {architectures}); "
        "videocam explains transformers' video and image classification models only"
    )


def _fixed_input(family: HFFamily | None, config: Any, kind: str) -> tuple[int, ...] | None:
    if family is not None and family.tokens == "maps":
        return None
    image_size = getattr(config, "image_size", None)
    if image_size is None:
        return None
    h, w = _pair(image_size)
    if kind == "video":
        frames = getattr(config, "num_frames", None)
        return (int(frames), h, w) if frames else None
    return (h, w)


def _categories(config: Any, n_classes: int) -> tuple[str, ...] | None:
    id2label = getattr(config, "id2label", None) or {}
    try:
        names = {int(k): str(v) for k, v in dict(id2label).items()}
    except (TypeError, ValueError):
        return None
    if sorted(names) != list(range(n_classes)):
        return None
    return tuple(names[i] for i in range(n_classes))


def _from_config(auto: Any, config: Any, source: _Source) -> nn.Module:
    try:
        module: nn.Module = auto.from_config(config, trust_remote_code=False)
    except (TypeError, ValueError) as exc:
        raise ModelLoadError(f"cannot build {source.display}: {_first_line(exc)}") from exc
    return module.to(torch.float32)


def _pretrained(transformers: Any, auto: Any, config: Any, source: _Source) -> nn.Module:
    logger.info(
        "loading %s from %s (transformers' cache, else the Hub)", source.display, source.where
    )
    try:
        with _quiet_progress(transformers):
            module, info = auto.from_pretrained(
                source.ref,
                config=config,
                dtype=torch.float32,
                trust_remote_code=False,
                weights_only=True,
                output_loading_info=True,
            )
    except OSError as exc:
        raise _load_error(source, "the weights", exc) from exc
    except (ValueError, RuntimeError) as exc:
        raise _load_error(source, "the weights", exc) from exc
    missing = sorted(info.get("missing_keys") or ())
    mismatched = sorted(str(k) for k in info.get("mismatched_keys") or ())
    if missing or mismatched:
        shown = ", ".join([*missing, *mismatched][:4])
        raise ModelLoadError(
            f"the weights of {source.display} do not cover the whole classifier "
            f"({len(missing)} missing, {len(mismatched)} mismatched: {shown}): a pre-trained "
            "backbone without a trained head cannot be explained; name a fine-tuned checkpoint"
        )
    return module


def _weighted_model(
    transformers: Any,
    auto: Any,
    config: Any,
    source: _Source,
    weights: WeightsSpec,
    num_classes: int | None,
) -> tuple[nn.Module, str, str]:
    """(the model with its weights, the weights label, where they came from, in words).

    A local file's head size is read from the file; ``config.num_labels`` follows the head."""
    if weights.kind == "default":
        if num_classes is not None and num_classes != int(config.num_labels):
            raise ModelLoadError(
                f"{source.display} has {config.num_labels} classes, not num_classes="
                f"{num_classes}; use --weights none or a local state-dict file"
            )
        model = _pretrained(transformers, auto, config, source)
        return model, "DEFAULT", f"{source.where} (from_pretrained)"
    if num_classes is not None:
        config.num_labels = num_classes
    state = load_state_dict_file(weights.value) if weights.kind == "file" else None
    model = _from_config(auto, config, source)
    if state is None:
        return model, "none", "none: random initialisation from the config"
    if num_classes is None:
        inferred = head_num_classes(model, state)
        if inferred is not None and inferred != int(config.num_labels):
            logger.info("%s: the weights file has %d classes", source.display, inferred)
            config.num_labels = inferred
            model = _from_config(auto, config, source)
    apply_state_dict(model, state, source=f"file {weights.value}", model_name=source.display)
    label = str(Path(weights.value).expanduser())
    return model, label, f"file {label} (torch.load weights_only=True)"


def _class_names(
    config: Any, saved_classes: int, config_file: str
) -> tuple[tuple[str, ...] | None, str]:
    """The classes' names from ``id2label`` and where they came from, in words."""
    n_classes = int(config.num_labels)
    if n_classes != saved_classes:  # transformers renamed them LABEL_0…: not the model's names
        return None, f"none ({config_file} names {saved_classes} classes, the head has {n_classes})"
    names = _categories(config, n_classes)
    if names is None:
        return None, "none (id2label does not name every class)"
    return names, f"{config_file} id2label"


def _input_size(
    fixed: tuple[int, ...] | None, stats: _Stats, config_file: str
) -> tuple[tuple[int, int], str]:
    if fixed is not None:
        return (fixed[-2], fixed[-1]), f"{config_file} image_size (the position embeddings fix it)"
    if stats.size is not None:
        return stats.size, f"the processor's output size ({stats.origin})"
    return (224, 224), "224x224 (neither the config nor a processor gives a size)"


def build_hf(spec: str, weights: Any, num_classes: int | None) -> Built:
    """Build ``hf:ID_OR_DIR`` with ``weights``: ``DEFAULT`` (the directory's or the Hub's),
    a local state-dict file, or ``none`` (random, from the config)."""
    weights_spec = parse_weights(weights)
    if weights_spec.kind == "name":
        raise ModelLoadError(
            f"unknown weights {weights_spec.value!r} for {spec}; hf: models take DEFAULT (the "
            "directory's or the Hub's weights), a local state-dict file, or none"
        )
    source = _source(spec)
    transformers = _transformers()
    config = _read_config(transformers, source)
    auto, kind = _model_class(transformers, config, source)
    model_type = str(config.model_type)
    family = HF_FAMILIES.get(model_type)
    if model_type == "timesformer" and getattr(config, "attention_type", "") == "space_only":
        raise ModelLoadError(
            f"{source.display}: TimeSformer with attention_type space_only classifies every "
            "frame on its own; videocam supports divided_space_time and joint_space_time"
        )
    config_file = f"{source.local}/config.json" if source.local else f"config.json of {source.spec}"
    saved_classes = int(config.num_labels)
    model, label, weights_from = _weighted_model(
        transformers, auto, config, source, weights_spec, num_classes
    )
    model.eval()
    sources = {"family": model_type if family else f"{model_type} (untested)"}
    sources["weights"] = weights_from
    categories, sources["categories"] = _class_names(config, saved_classes, config_file)
    fixed = _fixed_input(family, config, kind)
    stats = _processor_stats(transformers, source, model_type, kind)
    sources["mean_std"] = stats.source
    size, sources["input_size"] = _input_size(fixed, stats, config_file)
    sources["resize"] = (
        f"whole frame resized to {size[0]}x{size[1]} in the decoder; the processor's own "
        f"resizing ({stats.resize}) is not applied"
    )
    clip_len: int | None = None
    if kind == "video":
        frames = getattr(config, "num_frames", None)
        clip_len = int(frames or 16)
        sources["clip_len"] = f"{config_file} num_frames" if frames else "16 (default)"
    name = source.display
    layer: str | None = None
    hint: str | None = (
        f"{name} is a {model_type!r} model: videocam has no tested default layer or token "
        f"geometry for it; pass --layer with an (N, C, H, W) or (N, C, T, H, W) output "
        f"(families with defaults: {', '.join(HF_FAMILIES)})"
    )
    if family is not None:
        layer, why = default_layer(model, family, config)
        sources["layer"] = f"family default: {why}"
        hint = None
        if family.tokens != "maps":
            sources["tokens"] = _TOKEN_ORDER[model_type]

    def reshape_factory(_module: nn.Module, layer_name: str) -> ReshapeFn | None:
        if family is None:
            return None
        return hf_reshape(model, family, config, layer_name, name=name, expected_input=fixed)

    return Built(
        module=HFClassifier(model, kind, fixed, name),
        kind=kind,
        weights=label,
        preprocess=Preprocess(size=size, mean=stats.mean, std=stats.std),
        categories=categories,
        clip_len=clip_len,
        background_class=None,
        default_layer=layer,
        num_classes=int(config.num_labels),
        reshape_factory=reshape_factory,
        fixed_input=fixed,
        sources=sources,
        needs_layer_hint=hint,
    )
