"""An ``hf:`` model's preprocessing from its processor: the saved processor config (else the
defaults of transformers' processor class), and its arithmetic turned into videocam's mean, std
and input size."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from videocam.errors import ModelLoadError
from videocam.models.hf.source import Source, json_file
from videocam.models.preprocess import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["ProcessorStats", "processor_stats"]


def _processor_config(
    transformers: Any, source: Source, kind: str
) -> tuple[dict[str, Any] | None, str]:
    """The processor's saved configuration and the file it came from (video models prefer the
    video processor's)."""
    video_name = "video_preprocessor_config.json"
    image_name = "preprocessor_config.json"
    names = (video_name, image_name) if kind == "video" else (image_name,)
    for filename in names:
        data = json_file(transformers, source, filename)
        if data is not None:
            return data, filename
    combined = json_file(transformers, source, "processor_config.json")
    if combined is not None:
        keys = ("video_processor", "image_processor") if kind == "video" else ("image_processor",)
        for key in keys:
            if isinstance(combined.get(key), dict):
                return combined[key], f"processor_config.json ({key})"
    return None, ""


def _named_class(transformers: Any, saved: Mapping[str, Any]) -> Any:
    """The processor class the saved config names, if transformers has it."""
    for key in ("video_processor_type", "image_processor_type"):
        named = saved.get(key)
        if isinstance(named, str) and hasattr(transformers, named):
            return getattr(transformers, named)
    return None


def _family_class(transformers: Any, model_type: str, kind: str) -> Any:
    """The family's processor class in transformers' auto tables (video ones first)."""
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


def _processor_class(
    transformers: Any, model_type: str, kind: str, saved: Mapping[str, Any]
) -> Any:
    """transformers' processor class: the one the saved config names, else the family's."""
    named = _named_class(transformers, saved)
    return named if named is not None else _family_class(transformers, model_type, kind)


def _rgb(value: Any, what: str, where: str) -> tuple[float, float, float]:
    values = [float(value)] * 3 if isinstance(value, (int, float)) else [float(v) for v in value]
    if len(values) != 3 or not all(math.isfinite(v) for v in values):
        raise ModelLoadError(f"{where}: {what} must be 1 or 3 finite numbers, got {value!r}")
    return (values[0], values[1], values[2])


@dataclass(frozen=True)
class ProcessorStats:
    """What the processor does, in videocam's terms.

    Attributes:
        mean: per-channel mean in videocam's units ((x/255 - mean) / std).
        std: per-channel std in the same units.
        source: where mean / std came from, in words.
        origin: the processor's file, or the defaults used.
        size: what the processor resizes / crops to, (H, W), None when it does not say.
        resize: the processor's resizing, in words.
    """

    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    source: str
    origin: str
    size: tuple[int, int] | None
    resize: str


def _origin(source: Source, saved: bool, filename: str, cls: Any) -> tuple[str, str]:
    """(origin, where) of the numbers: the saved file, the class's defaults or ImageNet's."""
    if saved:
        origin = source.file_label(filename)
        return origin, f"{origin} (image_mean, image_std, rescale_factor)"
    origin = f"transformers' {cls.__name__} defaults" if cls is not None else "ImageNet statistics"
    return origin, f"{origin} ({source.display} has no processor config)"


def processor_stats(
    transformers: Any, source: Source, family_type: str, kind: str
) -> ProcessorStats:
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

    origin, where = _origin(source, saved is not None, filename, cls)
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
    return ProcessorStats(mean, std, where, origin, size, resize)  # type: ignore[arg-type]


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
