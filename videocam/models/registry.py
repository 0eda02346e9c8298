"""The model registry: which names ``--model`` accepts, and loading one ready for explanation.

Sources, in the order ``videocam models`` lists them: torchvision video classifiers, the bundled
models, torchvision image classifiers (run per frame), torchvision object detectors (run per
frame), then one row per family of the prefixes ``hf:ID_OR_DIR`` (Hugging Face transformers,
:mod:`videocam.models.hf`) and ``timm:NAME`` (:mod:`videocam.models.timm_zoo`); plus custom
builders (``path/to/file.py:function`` or ``package.module:function``, classifiers or, with
``detector``, detectors), which are not listed.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from videocam.errors import ConfigError, ModelLoadError
from videocam.models import bundled, custom, detectors, hf, openclip, timm_zoo, torchvision_zoo
from videocam.models.layers import layer_name, resolve_layer
from videocam.models.preprocess import IMAGENET_MEAN, IMAGENET_STD, Preprocess
from videocam.models.spec import SYNTHETIC_ONLY_NOTE, Built, LoadedModel, ModelCard, ModelInfo
from videocam.models.weights import parse_weights

logger = logging.getLogger(__name__)

__all__ = ["describe_model", "list_models", "load_model", "resolve_device"]


def list_models() -> list[ModelInfo]:
    """Every model name ``--model`` accepts (custom builders aside), one row each, then one row
    per family of the ``hf:`` and ``timm:`` prefixes (``family`` set, ``name`` the pattern).

    Builds nothing and imports neither transformers nor timm: default layers are pinned per
    model or family (and tested), sizes and weight names come from torchvision's weights enums.
    """
    infos = torchvision_zoo.torchvision_infos()
    video = [i for i in infos if i.kind == "video"]
    frame = [i for i in infos if i.kind == "frame"]
    return [
        *video,
        *bundled.bundled_infos(),
        *frame,
        *detectors.detector_infos(),
        *hf.hf_infos(),
        *timm_zoo.timm_infos(),
        *openclip.openclip_infos(),
    ]


def describe_model(name: str, weights: str | Path | None = "DEFAULT") -> ModelCard:
    """What ``videocam models NAME`` prints: kind, default layer, input size, weights and the
    class names of a model ``--model`` accepts.

    torchvision's classifiers and detectors are described from their weights enums (offline:
    nothing is built or downloaded) unless ``weights`` is a file or ``none``; every other model
    (bundled, ``hf:`` and ``timm:`` models, custom builders) is built as :func:`load_model`
    would build it (``hf:`` Hub IDs and ``timm:`` pretrained weights need their cache or the
    network).

    Raises:
        ModelLoadError: an unknown name (close names suggested), or a model that cannot be
            built here.
        ConfigError: as :func:`load_model`.
    """
    if not isinstance(name, str) or not name.strip():
        raise ModelLoadError(f"model name must be a non-empty string, got {name!r}")
    key = name.strip().lower()
    listed = {i.name: i for i in list_models() if i.family is None and i.source == "torchvision"}
    spec = parse_weights(weights)
    if key in listed and spec.kind in ("default", "name"):
        return torchvision_zoo.describe_torchvision(listed[key], spec.value)
    model_name, built = _build(
        _Request(
            name.strip(),
            weights,
            frame_model=False,
            num_classes=None,
            detector=False,
            score_threshold=detectors.DEFAULT_SCORE_THRESHOLD,
            n_labels=None,
        )
    )
    size = built.preprocess.size if built.preprocess is not None else None
    source = "custom"
    if key in bundled.BUNDLED_NAMES:
        source = "bundled"
    elif hf.is_hf_spec(model_name):
        source = "transformers"
    elif timm_zoo.is_timm_spec(model_name):
        source = "timm"
    elif openclip.is_openclip_spec(model_name):
        source = "open_clip"
    elif not custom.is_custom_spec(model_name):
        source = "torchvision"
    return ModelCard(
        name=model_name,
        kind=built.kind,
        task="detection" if built.detector is not None else "classification",
        default_layer=built.default_layer,
        input_size=None if built.detector is not None and built.detector.fit_to_video else size,
        clip_len=built.clip_len,
        weights=built.weights,
        weights_choices=("bundled",) if source == "bundled" else (),
        categories=built.categories,
        num_classes=built.num_classes,
        background_class=built.background_class,
        source=source,
        notes=(SYNTHETIC_ONLY_NOTE,) if built.synthetic_only else (),
    )


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` → CUDA when available, else CPU; ``"cpu"``, ``"cuda"``, ``"cuda:1"``…"""
    if isinstance(device, torch.device):
        resolved = device
    elif isinstance(device, str) and device.strip().lower() == "auto":
        resolved = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        logger.info("device auto: using %s", resolved)
    else:
        try:
            resolved = torch.device(str(device).strip().lower())
        except RuntimeError as exc:
            raise ConfigError(f"device must be auto, cpu or cuda[:N], got {device!r}") from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!s} requested but CUDA is not available; use cpu")
    return resolved


def _read_labels(labels: str | Path | Sequence[str]) -> tuple[str, ...]:
    if isinstance(labels, (str, Path)):
        path = Path(labels).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise ConfigError(f"labels file not found: {path}") from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read labels file {path}: {exc}") from exc
        names = [line.strip() for line in text.splitlines()]
        while names and not names[-1]:
            names.pop()
        if not names:
            raise ConfigError(f"labels file {path} is empty (expected one class name per line)")
        if "" in names:
            raise ConfigError(
                f"labels file {path}: line {names.index('') + 1} is empty "
                "(expected one class name per line)"
            )
        return tuple(names)
    names = [str(n) for n in labels]
    if not names:
        raise ConfigError("labels must not be empty")
    return tuple(names)


def _texts(values: Sequence[str] | None, what: str) -> tuple[str, ...] | None:
    """Prompts or negatives as a tuple of non-empty texts (None when not given)."""
    if values is None:
        return None
    if isinstance(values, str):
        values = [values]
    texts = tuple(" ".join(str(v).split()) for v in values)
    if not texts or not all(texts):
        raise ConfigError(f"{what}: every text must be non-empty, got {list(values)!r}")
    return texts


def _checked_size(input_size: Any) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in input_size)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"input size must be two integers H W, got {input_size!r}") from exc
    if h < 1 or w < 1 or (h, w) != tuple(input_size):
        raise ConfigError(f"input size must be two positive integers H W, got {input_size!r}")
    return h, w


def _checked_stats(values: Any, what: str) -> tuple[float, float, float]:
    try:
        r, g, b = (float(v) for v in values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{what} must be three numbers R G B, got {values!r}") from exc
    stats = (r, g, b)
    if not all(math.isfinite(v) for v in stats) or (what == "std" and min(stats) <= 0):
        bound = "positive" if what == "std" else "finite"
        raise ConfigError(f"{what} must be three {bound} numbers R G B, got {values!r}")
    return stats


def _unknown_model(name: str) -> ModelLoadError:
    names = [info.name for info in list_models() if info.family is None]
    close = difflib.get_close_matches(name, names, n=5, cutoff=0.5)
    hint = f"did you mean: {', '.join(close)}? " if close else ""
    return ModelLoadError(
        f"unknown model {name!r}; {hint}run `videocam models` for the list, name a Hugging Face "
        "model as hf:ID_OR_DIR or a timm model as timm:NAME, or a custom builder as "
        "path/to/file.py:function or package.module:function"
    )


@dataclass(frozen=True)
class _Given:
    """What the caller gave besides the model, checked: the input size, mean, std and class
    names (None where not given)."""

    size: tuple[int, int] | None
    mean: tuple[float, float, float] | None
    std: tuple[float, float, float] | None
    names: tuple[str, ...] | None

    @classmethod
    def checked(
        cls,
        input_size: tuple[int, int] | None,
        mean: Sequence[float] | None,
        std: Sequence[float] | None,
        labels: str | Path | Sequence[str] | None,
    ) -> _Given:
        return cls(
            size=_checked_size(input_size) if input_size is not None else None,
            mean=_checked_stats(mean, "mean") if mean is not None else None,
            std=_checked_stats(std, "std") if std is not None else None,
            names=_read_labels(labels) if labels is not None else None,
        )


@dataclass(frozen=True)
class _Request:
    """How to build a model: everything :func:`load_model` was asked that its source reads."""

    name: str
    weights: Any
    frame_model: bool
    num_classes: int | None
    detector: bool
    score_threshold: float
    n_labels: int | None
    prompts: tuple[str, ...] | None = None
    negatives: tuple[str, ...] | None = None


def _build_prefixed(request: _Request) -> Built:
    """``hf:``, ``timm:`` and ``openclip:`` models: they know their kind."""
    if request.frame_model or request.detector:
        flag = "--frame-model" if request.frame_model else "--detector"
        raise ConfigError(
            f"{request.name}: {flag} applies to custom models only (hf: and timm: models know "
            "their kind)"
        )
    if hf.is_hf_spec(request.name):
        return hf.build_hf(
            request.name,
            request.weights,
            request.num_classes,
            prompts=request.prompts,
            negatives=request.negatives,
        )
    if openclip.is_openclip_spec(request.name):
        return openclip.build_openclip(
            request.name, request.weights, request.num_classes, request.prompts, request.negatives
        )
    return timm_zoo.build_timm(request.name, request.weights, request.num_classes)


def _no_prompts(request: _Request) -> None:
    """A prompt given to a model that is not an ``hf:`` image–text model is an error, and so
    are negatives without a prompt."""
    if request.negatives and not request.prompts:
        raise ConfigError("contrast prompts (--negative) need --prompt TEXT too")
    name = request.name
    if request.prompts and not (hf.is_hf_spec(name) or openclip.is_openclip_spec(name)):
        raise ConfigError(
            f"{name} is not an image–text model: --prompt needs --model hf:ID_OR_DIR of a "
            "CLIP, SigLIP or X-CLIP model, or openclip:NAME (a classifier explains its own "
            "classes: --target)"
        )


def _build_custom(request: _Request) -> Built:
    """A custom builder: a classifier, or with ``detector`` a detector; its own classes."""
    if request.detector:
        if request.num_classes is not None:
            raise ConfigError("num_classes applies to torchvision and bundled models")
        return detectors.build_custom_detector(
            request.name, request.weights, request.score_threshold, request.n_labels
        )
    if request.num_classes is not None:
        raise ConfigError(
            "num_classes applies to torchvision and bundled models; a custom builder "
            "decides its own classes"
        )
    return custom.build_custom(request.name, request.weights, request.frame_model)


#: The named models' sources in lookup order: (the names it knows, how it builds one).
_NAMED_SOURCES: tuple[
    tuple[Callable[[], Collection[str]], Callable[[str, _Request], Built]], ...
] = (
    (
        lambda: bundled.BUNDLED_NAMES,
        lambda key, r: bundled.build_bundled(key, r.weights, r.num_classes),
    ),
    (
        torchvision_zoo.video_model_names,
        lambda key, r: torchvision_zoo.build_torchvision(key, "video", r.weights, r.num_classes),
    ),
    (
        torchvision_zoo.image_model_names,
        lambda key, r: torchvision_zoo.build_torchvision(key, "frame", r.weights, r.num_classes),
    ),
    (
        detectors.detector_model_names,
        lambda key, r: detectors.build_detector(key, r.weights, r.num_classes, r.score_threshold),
    ),
)


def _build_named(key: str, request: _Request) -> Built:
    """A model ``videocam models`` lists, by its lower-case name ``key``."""
    if key.endswith(".py"):
        raise ModelLoadError(
            f"custom model {request.name!r} must name its builder function: {request.name}:function"
        )
    build = next((build for names, build in _NAMED_SOURCES if key in names()), None)
    if build is None:
        raise _unknown_model(request.name)
    built = build(key, request)
    if request.detector and built.detector is None:
        raise ConfigError(f"{key} is a classifier; --detector applies to custom builders only")
    if request.frame_model and built.kind != "frame":
        raise ConfigError(f"{key} is a video model; --frame-model applies to custom models only")
    return built


def _build(request: _Request) -> tuple[str, Built]:
    """(the model's name, what its source built): prefixed, custom or named."""
    name = request.name
    _no_prompts(request)
    if hf.is_hf_spec(name) or timm_zoo.is_timm_spec(name) or openclip.is_openclip_spec(name):
        return name, _build_prefixed(request)
    if custom.is_custom_spec(name):
        return name, _build_custom(request)
    key = name.strip().lower()
    return key, _build_named(key, request)


def _preprocess(model_name: str, built: Built, given: _Given) -> Preprocess:
    """The built model's preprocessing with the given size, mean and std in place of its own."""
    base = built.preprocess
    if base is None and given.size is None:
        raise ConfigError(
            f"custom model {model_name!r} needs an input size: pass --input-size H W "
            "(and --mean/--std unless ImageNet statistics apply)"
        )
    fixed = built.fixed_input
    size = given.size
    if fixed is not None and size is not None and size != tuple(fixed[-2:]):
        raise ConfigError(
            f"{model_name} only accepts {fixed[-2]}x{fixed[-1]} frames, "
            f"got --input-size {size[0]} {size[1]}"
        )
    return Preprocess(
        size=size or base.size,  # type: ignore[union-attr]
        mean=given.mean or (base.mean if base is not None else IMAGENET_MEAN),
        std=given.std or (base.std if base is not None else IMAGENET_STD),
    )


def _sources(built: Built, given: _Given, layer: str | None) -> dict[str, str] | None:
    """The built model's sources, with what the caller gave said so."""
    if built.sources is None:
        return None
    sources = dict(built.sources)
    options = {"input_size": given.size, "mean": given.mean, "std": given.std}
    for key, value in {**options, "categories": given.names}.items():
        if value is not None:
            sources[key] = f"option {key} (given)"
    if given.mean is not None and given.std is not None:
        sources.pop("mean_std", None)
    if layer is not None:
        sources["layer"] = "option layer (given)"
    return sources


def _categories(model_name: str, built: Built, names: tuple[str, ...] | None) -> Any:
    """The class names: the given ones (as many as the model has classes), else the model's."""
    if names is None:
        return built.categories
    if built.num_classes is not None and len(names) != built.num_classes:
        raise ConfigError(
            f"{len(names)} labels given but {model_name} has {built.num_classes} classes"
        )
    return names


def _layer(model_name: str, built: Built, layer: str | None) -> str:
    """The layer asked for, else the model's default (derived for a torchvision classifier
    newer than the table of defaults)."""
    if layer is not None:
        return layer
    if built.default_layer is not None:
        return built.default_layer
    if built.needs_layer_hint is not None:
        raise ModelLoadError(built.needs_layer_hint)
    if custom.is_custom_spec(model_name):
        raise ModelLoadError(
            f"custom model {model_name!r} has no default target layer: pass --layer "
            "DOTTED.NAME (e.g. layer4)"
        )
    # A classifier added to torchvision after this table was written.
    derived = torchvision_zoo.derive_default_layer(built.module)
    if derived is None:
        raise ModelLoadError(f"{model_name} has no default target layer: pass --layer")
    logger.warning("%s: no tested default layer; using %s", model_name, derived)
    return derived


def _loaded(
    model_name: str, built: Built, given: _Given, layer: str | None, device: torch.device
) -> LoadedModel:
    """The built model ready for explanation: the given options applied, its layer found and
    checked, on ``device``, in eval mode, parameters frozen."""
    preprocess = _preprocess(model_name, built, given)
    sources = _sources(built, given, layer)
    categories = _categories(model_name, built, given.names)
    target = resolve_layer(built.module, _layer(model_name, built, layer), model_name=model_name)
    canonical = layer_name(built.module, target)
    reshape = built.reshape_factory(built.module, canonical) if built.reshape_factory else None
    module = built.module.to(device).eval()
    module.requires_grad_(False)
    if built.detector is not None and given.size is not None:
        detectors.check_input_size(module, given.size, device, model_name)
    logger.info(
        "loaded %s (%s, weights %s, layer %s) on %s",
        model_name,
        built.kind,
        built.weights,
        canonical,
        device,
    )
    return LoadedModel(
        name=model_name,
        kind=built.kind,
        module=module,
        layer=canonical,
        reshape=reshape,
        preprocess=preprocess,
        categories=categories,
        weights=built.weights,
        clip_len=built.clip_len,
        background_class=built.background_class,
        device=device,
        detector=(
            None
            if built.detector is None
            else dataclasses.replace(built.detector, fit_to_video=given.size is None)
        ),
        sources=sources,
        synthetic_only=built.synthetic_only,
        prompts=built.prompts,
    )


def load_model(
    name: str,
    *,
    weights: str | Path | None = "DEFAULT",
    layer: str | None = None,
    frame_model: bool = False,
    input_size: tuple[int, int] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    labels: str | Path | Sequence[str] | None = None,
    device: str | torch.device = "cpu",
    num_classes: int | None = None,
    detector: bool = False,
    score_threshold: float = detectors.DEFAULT_SCORE_THRESHOLD,
    prompts: Sequence[str] | None = None,
    negatives: Sequence[str] | None = None,
) -> LoadedModel:
    """Build a model, load its weights and check its target layer.

    Args:
        name: a name from :func:`list_models`; ``hf:ID_OR_DIR`` (a Hugging Face Hub model ID
            or a ``save_pretrained`` directory: video classifiers run on windows, image
            classifiers per frame); ``timm:NAME`` (a timm image classifier, per frame); or a
            custom builder ``path/to/file.py:function`` / ``package.module:function`` (kind
            ``video`` unless ``frame_model``).
        weights: ``"DEFAULT"`` or a weights-enum name (``"KINETICS400_V1"``, case-insensitive);
            ``"bundled"`` for bundled models; for ``hf:`` the directory's (or the Hub's)
            weights, for ``timm:`` timm's pretrained ones (or ``--weights TAG``); a local
            state-dict file (read with ``weights_only=True``); ``"none"``/None for random
            initialisation (seed the global RNG beforehand for reproducibility; nothing is
            seeded here). Custom builders take a file, or keep their module as built.
        layer: target layer dotted name; None → the model's tested default (required for custom
            builders).
        frame_model: a custom model is a per-frame 2D classifier taking (N, 3, H, W).
        input_size: (H, W) frames are resized to (the whole frame, no crop). Required for custom
            builders; overrides a known model's own size (MViT and ViT accept only theirs).
        mean: per-channel RGB mean in [0, 1]; default: the weights' own, ImageNet for custom.
        std: per-channel RGB std in [0, 1]; default: the weights' own, ImageNet for custom.
        labels: class names (a file with one name per line, or a sequence); overrides the
            weights' categories and must match the model's class count when that is known.
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"`` or a torch.device.
        num_classes: build torchvision/bundled/hf/timm models with this many classes (with
            ``none`` or a file; a file's own head size is inferred when not given).
        detector: a custom builder returns an object detector (torchvision-style detections;
            see :mod:`videocam.models.detectors`). torchvision's detectors are known by name.
        score_threshold: detectors only: detections scoring below it count for nothing.
        prompts: what to look for, in words, with an ``hf:`` image–text model (CLIP,
            SigLIP): the model then outputs one score per prompt, prompt ``i`` being class
            ``i`` (see :mod:`videocam.models.hf.prompts`); required for such a model, an
            error for any other.
        negatives: contrast prompts for a CLIP softmax (no class of their own).

    Returns:
        The :class:`LoadedModel`, in eval mode on ``device``, parameters frozen.

    Raises:
        ModelLoadError: unknown model, unknown weights name, weights that cannot be downloaded
            or read or do not fit, a custom builder that cannot be imported or fails.
        LayerNotFoundError: ``layer`` does not exist (close names suggested).
        ConfigError: invalid sizes, statistics, labels, device.
    """
    if not isinstance(name, str) or not name.strip():
        raise ModelLoadError(f"model name must be a non-empty string, got {name!r}")
    if num_classes is not None and (not isinstance(num_classes, int) or num_classes < 1):
        raise ConfigError(f"num_classes must be a positive integer, got {num_classes!r}")
    target_device = resolve_device(device)
    given = _Given.checked(input_size, mean, std, labels)
    n_labels = len(given.names) if given.names is not None else None
    request = _Request(
        name.strip(),
        weights,
        frame_model,
        num_classes,
        detector,
        score_threshold,
        n_labels,
        _texts(prompts, "prompts"),
        _texts(negatives, "negatives"),
    )
    model_name, built = _build(request)
    return _loaded(model_name, built, given, layer, target_device)
