"""One table of analysis options: defaults, validation, YAML config files.

The same table feeds the Python API (``videocam.analyze(video, **options)``), the YAML files
(``--config``) and the command line, so a name means the same thing everywhere. YAML is read
with ``yaml.safe_load``: a config file cannot run code (only a custom model builder the user
names explicitly is imported, by the model registry).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from videocam.errors import ConfigError
from videocam.io import BACKEND_CHOICES
from videocam.scoring.boxes import BOX_MAX_AREA, BOX_THRESHOLD

DEVICES = ("auto", "cpu", "cuda")

#: The CAM method when none is asked for (``method=None``): Grad-CAM, and for object detectors
#: the gradient-free EigenCAM (the usual choice for detectors).
DEFAULT_METHOD = "gradcam"
DETECTOR_METHOD = "eigencam"


@dataclass(frozen=True)
class AnalyzeConfig:
    """Every option of ``analyze`` (and of evaluate/batch, which reuse it).

    Attributes:
        model: model name, bundled model, or custom builder ``file.py:function``.
        weights: weights name (``DEFAULT``...), a local state-dict file, or ``none``.
        layer: target layer; None = the model's tested default.
        frame_model: a custom model is a per-frame 2D classifier.
        detector: a custom model is an object detector returning torchvision-style detections
            (torchvision's detectors are known by name).
        score_threshold: object detectors: detections scoring below it count for nothing.
        clip_len: window length in frames of the sampled stream; None = the model's default.
        stride: window step in frames; None = half the window.
        frame_step: analyse every n-th source frame.
        sample_fps: analyse frames at this rate instead (nearest frame to each tick).
        start_s, end_s: time range to analyse.
        input_size, mean, std, labels: preprocessing and class names for custom models.
        target: ``auto`` (top class of the whole video), a class index, or a class name (or a
            prompt's text or position). With ``prompts`` and no target, :meth:`from_mapping`
            (the API, YAML files, the command line) makes it 0, the first prompt.
        method: CAM method; None = the model's default (:data:`DETECTOR_METHOD` for object
            detectors, :data:`DEFAULT_METHOD` otherwise).
        topk: number of keyframes.
        min_gap: least time between two keyframes, seconds.
        keyframe_floor: keyframes need at least this fraction of the strongest eligible
            frame's attribution (0 = no attribution floor).
        evidence_floor: keyframes and segments are made of frames with evidence
            (:func:`videocam.scoring.find_evidence`): frames whose target score reaches this
            fraction of the video's highest target score pass (0 = every frame has evidence).
        evidence_ratio: frames whose target score reaches this multiple of the video's median
            target score pass too (0 = the median plays no part; else >= 1).
        tracks: also follow other classes (``tracks.csv``): the K most probable classes of the
            video (an int), or classes by name or index (a tuple); None = no tracks (with
            ``prompts``: every prompt).
        prompts: what to look for, in words, for an image–text model (``--prompt``; an ``hf:``
            CLIP or SigLIP): each prompt is a class, the first the target unless ``target``
            says otherwise; None = the model's classes.
        negatives: contrast prompts (``--negative``): they take part in a CLIP softmax but get
            no track; None = none (a default set with one prompt, see
            :data:`videocam.models.prompting.DEFAULT_NEGATIVES`).
        device: ``auto``, ``cpu`` or ``cuda``.
        autocast: run the model in bfloat16/float16 autocast (CAM arithmetic stays float32).
        batch_size: windows (video models) or frames (frame models) per forward; None = auto.
        render: write annotated.mp4, timeline.png and keyframe images.
        render_size: (H, W) of the annotated clip; None = the source's size.
        backend: decoder backend.
        box_threshold: fraction of a keyframe map's maximum that bounds its box.
        box_max_area: largest share of the frame a keyframe's box may cover; a larger one is
            no box (1 = always a box).
        colormap: matplotlib colormap of the heatmaps.
        alpha: heatmap opacity where attribution is highest.
    """

    model: str = "videocam_tiny"
    weights: str = "DEFAULT"
    layer: str | None = None
    frame_model: bool = False
    detector: bool = False
    score_threshold: float = 0.5
    clip_len: int | None = None
    stride: int | None = None
    frame_step: int = 1
    sample_fps: float | None = None
    start_s: float | None = None
    end_s: float | None = None
    input_size: tuple[int, int] | None = None
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    labels: str | None = None
    target: str | int = "auto"
    method: str | None = None
    topk: int = 5
    min_gap: float = 1.0
    keyframe_floor: float = 0.2
    evidence_floor: float = 0.25
    evidence_ratio: float = 10.0
    tracks: int | tuple[int | str, ...] | None = None
    prompts: tuple[str, ...] | None = None
    negatives: tuple[str, ...] | None = None
    device: str = "auto"
    autocast: bool = False
    batch_size: int | None = None
    render: bool = True
    render_size: tuple[int, int] | None = None
    backend: str = "auto"
    box_threshold: float = BOX_THRESHOLD
    box_max_area: float = BOX_MAX_AREA
    colormap: str = "jet"
    alpha: float = 0.5

    def __post_init__(self) -> None:
        _validate(self)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], *, where: str = "options") -> AnalyzeConfig:
        """Build from a mapping; unknown keys are an error that names them."""
        known = {f.name for f in fields(cls)}
        # YAML and CLI spellings: dashes or underscores.
        normalised = {str(k).replace("-", "_"): v for k, v in values.items()}
        unknown = sorted(set(normalised) - known)
        if unknown:
            raise ConfigError(
                f"{where}: unknown option(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(known))}"
            )
        coerced = {k: _coerce(k, v, where) for k, v in normalised.items()}
        if coerced.get("prompts") and coerced.get("target") is None:
            coerced["target"] = 0  # asked in words: the first prompt, unless --target says
        return cls(**coerced)

    def replace(self, **changes: Any) -> AnalyzeConfig:
        """A copy with some options changed (validated)."""
        return AnalyzeConfig.from_mapping({**self.to_dict(), **changes})

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (tuples as lists)."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out


_PAIRS = {"input_size", "render_size"}
_TRIPLES = {"mean", "std"}
_INTS = {"clip_len", "stride", "frame_step", "topk", "batch_size"}
_FLOATS = {
    "sample_fps",
    "start_s",
    "end_s",
    "min_gap",
    "keyframe_floor",
    "evidence_floor",
    "evidence_ratio",
    "box_threshold",
    "box_max_area",
    "alpha",
    "score_threshold",
}
_BOOLS = {"frame_model", "detector", "autocast", "render"}


def _coerce(name: str, value: Any, where: str) -> Any:
    if value is None:
        return None
    try:
        if name in _PAIRS or name in _TRIPLES:
            items = value.split() if isinstance(value, str) else list(value)
            want = 2 if name in _PAIRS else 3
            if len(items) != want:
                raise ValueError(f"needs {want} numbers")
            cast = int if name in _PAIRS else float
            return tuple(cast(v) for v in items)
        if name in _INTS:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError("needs a whole number")
            return int(value)
        if name in _FLOATS:
            if isinstance(value, bool):
                raise ValueError("needs a number")
            return float(value)
        if name in _BOOLS:
            if isinstance(value, bool):
                return value
            raise ValueError("needs true or false")
        if name == "tracks":
            return _tracks(value)
        if name in ("prompts", "negatives"):
            return _texts(value)
        if name == "target":
            return _target(value)
        if name in ("weights", "model", "layer", "labels", "method", "device", "backend"):
            return str(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: option {name}={value!r}: {exc}") from exc
    return value


def _target(value: Any) -> int | str:
    """``--target``: auto, a class index or a class name (``"3"`` is index 3)."""
    if isinstance(value, bool):
        raise ValueError("needs auto, a class index or a class name")
    if isinstance(value, int):
        return value
    text = str(value).strip()
    return int(text) if text.lstrip("-").isdigit() else text


def _class_ref(value: Any) -> int | str:
    """A class given by index or name (``"3"`` is index 3)."""
    if isinstance(value, bool):
        raise ValueError("needs class names or indices")
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if not text:
        raise ValueError("an empty class name")
    return int(text) if text.lstrip("-").isdigit() else text


def _tracks(value: Any) -> int | tuple[int | str, ...]:
    """``--tracks``: K (the K most probable classes) or classes ``A,B,...`` (names or indices,
    a comma-separated string or a list)."""
    if isinstance(value, bool):
        raise ValueError("needs a number of classes or class names")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return int(text)
        items: list[Any] = text.split(",")
    else:
        items = list(value)
    return tuple(_class_ref(item) for item in items)


def _texts(value: Any) -> tuple[str, ...]:
    """``--prompt`` / ``--negative``: one text or a list of texts, each stripped and non-empty."""
    items = [value] if isinstance(value, str) else list(value)
    texts = []
    for item in items:
        if not isinstance(item, str):
            raise ValueError(f"needs text, got {item!r}")
        text = " ".join(item.split())
        if not text:
            raise ValueError("an empty prompt")
        texts.append(text)
    if not texts:
        raise ValueError("needs at least one text")
    return tuple(texts)


def _at_least(low: float) -> Callable[[Any], bool]:
    return lambda v: v is None or v >= low


def _within(low: float, high: float, *, open_low: bool = False) -> Callable[[Any], bool]:
    if open_low:
        return lambda v: low < v <= high
    return lambda v: low <= v <= high


#: Each option's range, checked in this order: (option, holds for the value, the reason).
_RANGES: tuple[tuple[str, Callable[[Any], bool], str], ...] = (
    ("clip_len", _at_least(1), "must be >= 1"),
    ("stride", _at_least(1), "must be >= 1"),
    ("batch_size", _at_least(1), "must be >= 1"),
    ("frame_step", _at_least(1), "must be >= 1"),
    ("topk", _at_least(0), "must be >= 0"),
    ("min_gap", _at_least(0), "must be >= 0 seconds"),
    ("sample_fps", lambda v: v is None or v > 0, "must be > 0"),
    ("start_s", _at_least(0), "must be >= 0 seconds"),
    ("end_s", lambda v: v is None or v > 0, "must be > 0 seconds"),
    ("keyframe_floor", _within(0, 1), "must be in [0, 1]"),
    ("evidence_floor", _within(0, 1), "must be in [0, 1]"),
    (
        "evidence_ratio",
        lambda v: v == 0 or 1 <= v < float("inf"),
        "must be 0 (off) or a finite number >= 1",
    ),
    ("box_threshold", _within(0, 1, open_low=True), "must be in (0, 1]"),
    ("box_max_area", _within(0, 1, open_low=True), "must be in (0, 1]"),
    ("score_threshold", _within(0, 1), "must be in [0, 1]"),
    ("alpha", _within(0, 1), "must be in [0, 1]"),
    ("input_size", lambda v: v is None or min(v) >= 1, "needs two positive integers H W"),
    ("render_size", lambda v: v is None or min(v) >= 1, "needs two positive integers H W"),
    (
        "target",
        lambda v: not (isinstance(v, int) and v < 0),
        "a class index must be >= 0",
    ),
)


def _validate(config: AnalyzeConfig) -> None:
    def bad(name: str, reason: str) -> ConfigError:
        return ConfigError(f"option {name}={getattr(config, name)!r}: {reason}")

    from videocam.cam import METHODS  # the one registry of method names

    for name in sorted(_FLOATS):
        value = getattr(config, name)
        if value is not None and not math.isfinite(value):
            raise bad(name, "must be a finite number")
    for name, choices in (("method", METHODS), ("device", DEVICES), ("backend", BACKEND_CHOICES)):
        value = getattr(config, name)
        if not (value is None and name == "method") and value not in choices:
            raise bad(name, f"must be one of {', '.join(choices)}")
    for name, holds, reason in _RANGES:
        if not holds(getattr(config, name)):
            raise bad(name, reason)
    if config.start_s is not None and config.end_s is not None and config.end_s <= config.start_s:
        raise bad("end_s", f"must be after start_s={config.start_s}")
    _validate_tracks(config.tracks, bad)
    texts = [*(config.prompts or ()), *(config.negatives or ())]
    twice = sorted({t for t in texts if texts.count(t) > 1})
    if twice:
        raise bad("prompts", f"{twice[0]!r} is given twice (prompts and negatives are distinct)")


def _validate_tracks(tracks: Any, bad: Callable[[str, str], ConfigError]) -> None:
    if isinstance(tracks, int) and tracks < 1:
        raise bad("tracks", "needs at least 1 class")
    if isinstance(tracks, tuple):
        if not tracks:
            raise bad("tracks", "needs at least 1 class")
        if any(isinstance(t, int) and t < 0 for t in tracks):
            raise bad("tracks", "a class index must be >= 0")


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file (``safe_load``) into a mapping of options.

    Raises:
        ConfigError: missing/unreadable file, invalid YAML, or not a mapping; the message names
            the file.
    """
    import yaml

    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"{p}: config file not found") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: cannot read config file: {exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        reason = " ".join(str(exc).split())
        raise ConfigError(f"{p}: invalid YAML: {reason}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: a config file must be a mapping of option: value")
    # Validate now, so errors name the file.
    AnalyzeConfig.from_mapping(data, where=str(p))
    return {str(k).replace("-", "_"): v for k, v in data.items()}


def merge_options(*layers: Mapping[str, Any]) -> AnalyzeConfig:
    """Later layers win; ``None`` values in a layer mean "not given" and are skipped."""
    merged: dict[str, Any] = {}
    for layer in layers:
        merged.update({k: v for k, v in layer.items() if v is not None})
    return AnalyzeConfig.from_mapping(merged)


def config_fields() -> list[dataclasses.Field[Any]]:
    """The option table (for the CLI and docs)."""
    return list(fields(AnalyzeConfig))
