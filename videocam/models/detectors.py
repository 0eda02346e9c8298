"""Object detectors run per frame: torchvision's detectors and custom ones, each wrapped as a
scorer of classes (:class:`DetectionScores`) that the CAM engine explains like a classifier.

A detector takes a list of float images (3, H, W) in [0, 1] and returns, per image, a dict of
``boxes`` (D, 4: x0, y0, x1, y1 in pixels of its input), ``labels`` (D,) and ``scores`` (D,),
after its own post-processing (score threshold, non-maximum suppression, top detections).
:class:`DetectionScores` turns that into one number per class and frame, the **detection mass**:
the sum of the scores of that class's detections at or above ``score_threshold``. That is what
``target_score`` reports and what the Grad-CAM family differentiates (the scores of the kept
detections are differentiable functions of the features; which boxes are kept is not).

The detector runs at the size it is fed: its own resize is set, for each call, to the input's
size, so the decoder does the resizing once and boxes come back in input pixels.
:func:`fitted_input_size` gives the size the detector's own preprocessing would have chosen for
a video (short side ``min_size``, long side at most ``max_size``; SSD's fixed size).
torchvision is imported lazily.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from videocam.errors import CamError, ConfigError, ModelLoadError, first_line
from videocam.models.custom import call_builder
from videocam.models.preprocess import Preprocess
from videocam.models.spec import Built, DetectorInfo, LoadedModel, ModelInfo
from videocam.models.torchvision_zoo import _resolve_member, get_with_weights
from videocam.models.weights import (
    apply_state_dict,
    fit_head,
    load_state_dict_file,
    parse_weights,
)

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_SCORE_THRESHOLD",
    "DetectionScores",
    "Detections",
    "build_custom_detector",
    "build_detector",
    "check_input_size",
    "detector_default_layer",
    "detector_infos",
    "detector_model_names",
    "fit_to_video",
    "fitted_input_size",
]

#: ``--score-threshold``: detections scoring below it count for nothing (torchvision's own
#: thresholds, 0.05 for Faster R-CNN and RetinaNet, keep many weak boxes).
DEFAULT_SCORE_THRESHOLD = 0.5

#: Input values: [0, 1], as torchvision's detectors take them (they normalise internally).
_UNIT_MEAN = (0.0, 0.0, 0.0)
_UNIT_STD = (1.0, 1.0, 1.0)

#: Default target layer of each family of torchvision detector: the last backbone stage that
#: every detection depends on (an FPN's levels all come from it through the top-down path; an
#: SSD's heads all follow the first feature block), so the Grad-CAM family reaches every
#: detection score and EigenCAM sees the deepest features. Stride 32 for the FPN backbones
#: (25x42 at 800x1333), 16 for SSDlite (20x20 at 320x320), 8 for SSD300's conv4_3 (38x38).
_DETECTOR_LAYERS: tuple[tuple[str, str], ...] = (
    ("fasterrcnn_mobilenet_v3", "backbone.body.16"),
    ("ssdlite", "backbone.features.0"),
    ("ssd300", "backbone.features"),
    ("fasterrcnn_resnet50", "backbone.body.layer4"),
    ("maskrcnn_resnet50", "backbone.body.layer4"),
    ("keypointrcnn_resnet50", "backbone.body.layer4"),
    ("retinanet_resnet50", "backbone.body.layer4"),
    ("fcos_resnet50", "backbone.body.layer4"),
)


def _tvm() -> Any:
    import torchvision.models

    return torchvision.models


def detector_model_names() -> list[str]:
    """Names of torchvision's object detectors (``torchvision.models.detection``)."""
    tvm = _tvm()
    return sorted(tvm.list_models(module=tvm.detection))


def detector_default_layer(name: str) -> str | None:
    """The pinned default target layer of a torchvision detector, None if unknown."""
    return next((layer for prefix, layer in _DETECTOR_LAYERS if name.startswith(prefix)), None)


def derive_detector_layer(detector: nn.Module) -> str | None:
    """The default layer of a custom detector: the last returned stage of an FPN backbone's body
    (``backbone.body.layer4``) for one built from torchvision's parts, else its ``backbone``
    when it has one (its output must then be a feature map), else None."""
    backbone = getattr(detector, "backbone", None)
    return_layers = getattr(getattr(backbone, "body", None), "return_layers", None)
    if isinstance(return_layers, Mapping) and return_layers:
        return f"backbone.body.{list(return_layers)[-1]}"
    return "backbone" if isinstance(backbone, nn.Module) else None


def detector_infos() -> list[ModelInfo]:
    """``videocam models`` rows for torchvision's detectors (kind ``frame``: run per frame)."""
    tvm = _tvm()
    return [
        ModelInfo(
            name=name,
            kind="frame",
            default_layer=detector_default_layer(name) or "(derived when loaded)",
            weights=tuple(member.name for member in tvm.get_model_weights(name)),
            input_size=None,  # follows each video: see fitted_input_size
            clip_len=None,
            source="torchvision",
            task="detection",
        )
        for name in detector_model_names()
    ]


# -- sizes --------------------------------------------------------------------------------------


def _rcnn_transform(detector: nn.Module) -> Any:
    """The detector's torchvision ``GeneralizedRCNNTransform`` (resize and normalise), or None."""
    from torchvision.models.detection.transform import GeneralizedRCNNTransform

    transform = getattr(detector, "transform", None)
    return transform if isinstance(transform, GeneralizedRCNNTransform) else None


def _own_sizes(detector: nn.Module) -> tuple[int | None, int | None, tuple[int, int] | None]:
    """(min_size, max_size, fixed (H, W)) of the detector's own resize; Nones when unknown."""
    transform = _rcnn_transform(detector)
    if transform is None:
        return None, None, None
    fixed = transform.fixed_size  # (W, H), as torchvision stores it
    if fixed is not None:
        return None, None, (int(fixed[1]), int(fixed[0]))
    return int(transform.min_size[-1]), int(transform.max_size), None


def fitted_input_size(info: DetectorInfo, height: int, width: int) -> tuple[int, int]:
    """The (H, W) a detector runs at for a video of ``height`` x ``width``.

    What its own preprocessing would choose: SSD's fixed size; else the frame scaled so that its
    short side is ``min_size`` and its long side at most ``max_size`` (torchvision's rule); the
    frame's own size for a detector that declares neither.
    """
    if info.fixed_size is not None:
        return info.fixed_size
    if info.min_size is None or info.max_size is None:
        return int(height), int(width)
    scale = min(info.min_size / min(height, width), info.max_size / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def check_input_size(
    scorer: nn.Module, size: tuple[int, int], device: torch.device, name: str
) -> None:
    """One forward of a blank frame at ``--input-size``: a detector whose layers cannot run
    at that size (SSD300 below about 268 pixels a side) fails here with one line, before any
    video is decoded, instead of as an internal error in the middle of the pass.

    Raises:
        ConfigError: the size is too small for the detector.
    """
    try:
        with torch.no_grad():
            scorer(torch.zeros(1, 3, *size, device=device))
    except RuntimeError as exc:
        if "input size" not in str(exc):
            raise
        raise ConfigError(
            f"{name}: --input-size {size[0]} {size[1]} is too small for this detector "
            f"({first_line(exc)}); leave --input-size out to run at the detector's "
            "own size"
        ) from exc


def fit_to_video(loaded: LoadedModel, height: int, width: int) -> LoadedModel:
    """``loaded`` with the input size a detector runs at for a ``height`` x ``width`` video
    (:func:`fitted_input_size`); classifiers and sizes fixed by ``--input-size`` unchanged."""
    info = loaded.detector
    if info is None or not info.fit_to_video:
        return loaded
    size = fitted_input_size(info, height, width)
    if size == tuple(loaded.preprocess.size):
        return loaded
    return dataclasses.replace(loaded, preprocess=dataclasses.replace(loaded.preprocess, size=size))


@contextmanager
def _runs_at(detector: nn.Module, size: Sequence[int]) -> Iterator[None]:
    """The detector's own resize set to ``size`` (H, W) for the duration: it then keeps its
    input as it is (bilinear at scale 1 is exact), and its boxes are in input pixels."""
    transform = _rcnn_transform(detector)
    if transform is None:
        yield
        return
    saved = (transform.min_size, transform.max_size, transform.fixed_size)
    height, width = int(size[0]), int(size[1])
    try:
        if transform.fixed_size is not None:
            transform.fixed_size = (width, height)
        else:
            transform.min_size = (min(height, width),)
            transform.max_size = max(height, width)
        yield
    finally:
        transform.min_size, transform.max_size, transform.fixed_size = saved


# -- the scorer ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Detections:
    """One image's detections at or above the score threshold, on the host.

    Attributes:
        boxes: float32, shape (D, 4): x0, y0, x1, y1 in pixels of the detector's input.
        labels: int64, shape (D,): class indices.
        scores: float32, shape (D,).
    """

    boxes: Any
    labels: Any
    scores: Any


class DetectionScores(nn.Module):
    """A detector as a per-frame class scorer: images (N, 3, H, W) in [0, 1] → (N, K), each
    class's detection mass (the sum of its detection scores at or above ``score_threshold``).

    A view on the detector, not a wrapper around it: it shares the detector's submodules,
    parameters and buffers under their own names, so layer names (``backbone.body.layer4``) and
    state-dict keys are the detector's. Eval/train mode is passed on to the detector.

    Args:
        detector: returns torchvision-style detections for a list of (3, H, W) images.
        num_classes: K, the number of class indices its labels may take.
        score_threshold: in [0, 1].
        description: names the detector in error messages.
    """

    detector: nn.Module

    def __init__(
        self,
        detector: nn.Module,
        *,
        num_classes: int,
        score_threshold: float = DEFAULT_SCORE_THRESHOLD,
        description: str = "detector",
    ) -> None:
        super().__init__()
        self._modules = detector._modules
        self._parameters = detector._parameters
        self._buffers = detector._buffers
        self._non_persistent_buffers_set = detector._non_persistent_buffers_set
        object.__setattr__(self, "detector", detector)  # not a child: its children are ours
        self.num_classes = int(num_classes)
        self.score_threshold = float(score_threshold)
        self.description = description

    def train(self, mode: bool = True) -> DetectionScores:
        """Set training mode here and on the wrapped detector (which reads its own flag)."""
        super().train(mode)
        self.detector.training = mode
        return self

    def raw(self, images: Tensor) -> list[Mapping[str, Tensor]]:
        """The detector's own output for images (N, 3, H, W) in [0, 1], checked."""
        if self.detector.training:
            raise CamError(f"{self.description}: a detector explains in eval mode only")
        with _runs_at(self.detector, images.shape[-2:]):
            outputs = self.detector(list(images))
        return _checked(outputs, len(images), self.description)

    def forward(self, images: Tensor) -> Tensor:
        """float32 (N, K): each class's detection mass in each image (differentiable in the
        scores of the kept detections)."""
        rows = []
        for detections in self.raw(images):
            scores = detections["scores"].float()
            labels = detections["labels"].long()
            keep = scores >= self.score_threshold
            labels, scores = labels[keep], scores[keep]
            if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= self.num_classes):
                raise CamError(
                    f"{self.description}: detection label {int(labels.max())} out of range "
                    f"for {self.num_classes} classes (pass --labels with one name per class)"
                )
            zeros = scores.new_zeros(self.num_classes)
            rows.append(zeros.index_add(0, labels, scores))
        return torch.stack(rows)

    @torch.no_grad()
    def detect(self, images: Tensor) -> list[Detections]:
        """The detections at or above ``score_threshold`` of images (N, 3, H, W), on the host."""
        out = []
        for detections in self.raw(images):
            keep = detections["scores"] >= self.score_threshold
            out.append(
                Detections(
                    boxes=detections["boxes"][keep].float().cpu().numpy(),
                    labels=detections["labels"][keep].long().cpu().numpy(),
                    scores=detections["scores"][keep].float().cpu().numpy(),
                )
            )
        return out


def _checked(outputs: Any, n_images: int, description: str) -> list[Mapping[str, Tensor]]:
    def bad(what: str) -> CamError:
        return CamError(
            f"{description}: expected a list of {n_images} dicts with 'boxes' (D, 4), 'labels' "
            f"(D,) and 'scores' (D,), one per image (torchvision's detections); {what}"
        )

    if not isinstance(outputs, (list, tuple)) or len(outputs) != n_images:
        got = f"{len(outputs)} items" if isinstance(outputs, (list, tuple)) else None
        raise bad(f"got {got or type(outputs).__name__}")
    for item in outputs:
        if not isinstance(item, Mapping):
            raise bad(f"got an item of type {type(item).__name__}")
        missing = [k for k in ("boxes", "labels", "scores") if k not in item]
        if missing:
            raise bad(f"an item lacks {', '.join(missing)}")
        boxes, labels, scores = item["boxes"], item["labels"], item["scores"]
        if not all(isinstance(t, Tensor) for t in (boxes, labels, scores)):
            raise bad("an item holds something other than tensors")
        n = scores.shape[0] if scores.ndim == 1 else -1
        if boxes.shape != (n, 4) or labels.shape != (n,) or labels.dtype.is_floating_point:
            raise bad(
                f"got boxes {tuple(boxes.shape)}, labels {tuple(labels.shape)} "
                f"{labels.dtype}, scores {tuple(scores.shape)}"
            )
    return list(outputs)


# -- building -----------------------------------------------------------------------------------


def _info(detector: nn.Module, score_threshold: float) -> DetectorInfo:
    min_size, max_size, fixed = _own_sizes(detector)
    return DetectorInfo(
        score_threshold=score_threshold, min_size=min_size, max_size=max_size, fixed_size=fixed
    )


def _checked_threshold(score_threshold: float) -> float:
    value = float(score_threshold)
    if not 0 <= value <= 1:
        raise ModelLoadError(f"score threshold must be in [0, 1], got {score_threshold!r}")
    return value


def _built(
    detector: nn.Module,
    *,
    label: str,
    categories: tuple[str, ...] | None,
    num_classes: int,
    score_threshold: float,
    default_layer: str | None,
    background_class: int | None,
    description: str,
) -> Built:
    threshold = _checked_threshold(score_threshold)
    scorer = DetectionScores(
        detector, num_classes=num_classes, score_threshold=threshold, description=description
    )
    info = _info(detector, threshold)
    # A stand-in size until a video is known (fitted_input_size); SSD's is its fixed size.
    nominal = info.fixed_size or (info.min_size or 512,) * 2
    return Built(
        module=scorer,
        kind="frame",
        weights=label,
        preprocess=Preprocess(size=nominal, mean=_UNIT_MEAN, std=_UNIT_STD),
        categories=categories,
        clip_len=None,
        background_class=background_class,
        default_layer=default_layer,
        num_classes=num_classes,
        detector=info,
    )


def build_detector(
    name: str, weights: Any, num_classes: int | None, score_threshold: float
) -> Built:
    """Build a torchvision detector with ``weights`` (a name, a file, ``none``/None)."""
    tvm = _tvm()
    enum = tvm.get_model_weights(name)
    default = enum.DEFAULT
    categories = tuple(default.meta["categories"])
    spec = parse_weights(weights)
    # weights_backbone=None: no ImageNet backbone download behind the user's back.
    kwargs: dict[str, Any] = {"weights_backbone": None}
    if spec.kind in ("none", "file"):
        state = load_state_dict_file(spec.value) if spec.kind == "file" else None
        n_classes = num_classes or len(categories)
        detector = _get_detector(tvm, name, {**kwargs, "num_classes": n_classes})
        if state is not None:
            if not num_classes:
                detector, rebuilt = fit_head(
                    detector,
                    state,
                    n_classes,
                    lambda k: _get_detector(tvm, name, {**kwargs, "num_classes": k}),
                    model_name=name,
                )
                n_classes = rebuilt or n_classes
            apply_state_dict(detector, state, source=f"file {spec.value}", model_name=name)
            label = str(Path(spec.value).expanduser())
        else:
            label = "none"
    else:
        member = _resolve_member(name, enum, spec.value)
        member_categories = tuple(member.meta["categories"])
        detector = get_with_weights(tvm, name, member, len(member_categories), num_classes)
        categories, n_classes, label = member_categories, len(member_categories), member.name
    return _built(
        detector,
        label=label,
        categories=categories if len(categories) == n_classes else None,
        num_classes=n_classes,
        score_threshold=score_threshold,
        default_layer=detector_default_layer(name),
        background_class=0,  # torchvision's detectors: label 0 is the background, never output
        description=name,
    )


def _get_detector(tvm: Any, name: str, kwargs: dict[str, Any]) -> nn.Module:
    try:
        module: nn.Module = tvm.get_model(name, weights=None, **kwargs)
    except (TypeError, ValueError) as exc:
        raise ModelLoadError(f"cannot build {name} with {kwargs}: {exc}") from exc
    return module


def build_custom_detector(
    spec: str, weights: Any, score_threshold: float, num_classes: int | None
) -> Built:
    """Call the builder named by ``spec`` (a detector returning torchvision-style detections)
    and load ``weights`` (a local file, or none: the module as built).

    The number of classes comes from ``num_classes`` (``--labels``), else from the detector's
    own head where it is a torchvision detector (``roi_heads.box_predictor``,
    ``head.classification_head``), else from its ``num_classes`` attribute; else it is an
    error.
    """
    detector, label = call_builder(spec, weights, "custom detector")
    n_classes = num_classes or _head_classes(detector)
    if n_classes is None:
        raise ModelLoadError(
            f"custom detector {spec!r}: cannot tell its number of classes; pass --labels "
            "FILE with one class name per line (label 0 included)"
        )
    return _built(
        detector,
        label=label,
        categories=None,
        num_classes=n_classes,
        score_threshold=score_threshold,
        default_layer=derive_detector_layer(detector),
        background_class=None,
        description=f"custom detector {spec}",
    )


def _head_classes(detector: nn.Module) -> int | None:
    """The class count of a torchvision-style detector's head, None when it has none."""
    net: Any = detector
    predictor = getattr(getattr(net, "roi_heads", None), "box_predictor", None)
    cls_score = getattr(predictor, "cls_score", None)
    if isinstance(cls_score, nn.Linear):
        return int(cls_score.out_features)
    head = getattr(getattr(net, "head", None), "classification_head", None)
    for count in (getattr(head, "num_classes", None), getattr(net, "num_classes", None)):
        if isinstance(count, int) and not isinstance(count, bool) and count > 0:
            return count
    return None
