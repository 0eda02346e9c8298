"""Test-only object detectors whose detections are known: a tiny custom detector and a real
torchvision Faster R-CNN (random weights) whose RoI heads are replaced by a forced detection.

Both emit fixed boxes (given as fractions of the image, so they follow any input size) scored by
the features inside the box only, so the boxes are checkable exactly and the gradient of a
detection's score reaches the target layer only where its box is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

#: A forced detection: (label, (x0, y0, x1, y1) as fractions of the image's width and height).
Forced = tuple[int, tuple[float, float, float, float]]

#: The tiny detector's classes (label 0 is never output).
TINY_LABELS = ("background", "car", "person", "bus")
#: Its objects: a car on the left, a person on the right (fractions of 80x64 frames: the car
#: at x 8-32, y 16-48; the person at x 48-72, y 16-40; both on its 4-pixel feature grid).
TINY_OBJECTS: tuple[Forced, ...] = ((1, (0.1, 0.25, 0.4, 0.75)), (2, (0.6, 0.25, 0.9, 0.625)))


def box_pixels(fractions: Sequence[float], height: int, width: int) -> tuple[int, int, int, int]:
    """A box given as fractions, in pixels of a ``height`` x ``width`` image."""
    x0, y0, x1, y1 = fractions
    return (round(x0 * width), round(y0 * height), round(x1 * width), round(y1 * height))


class TinyDetector(nn.Module):
    """Features = the image's grey level averaged over 4x4 cells (``backbone``, 2 channels:
    grey and grey / 2); each forced detection is scored by the mean grey level inside its box,
    so a bright object in the box scores near 1 and a dark box near 0.

    Takes a list of (3, H, W) images in [0, 1]; returns torchvision-style detections.
    """

    num_classes = len(TINY_LABELS)

    def __init__(self, objects: Sequence[Forced] = TINY_OBJECTS) -> None:
        super().__init__()
        conv = nn.Conv2d(3, 2, kernel_size=1, bias=False)
        with torch.no_grad():
            conv.weight.copy_(torch.tensor([[1 / 3] * 3, [1 / 6] * 3])[:, :, None, None])
        self.backbone = nn.Sequential(conv, nn.AvgPool2d(4))
        self.objects = list(objects)

    def forward(self, images: list[Tensor]) -> list[dict[str, Tensor]]:
        batch = torch.stack(list(images))
        features = self.backbone(batch)
        height, width = batch.shape[-2:]
        out = []
        for n in range(len(batch)):
            boxes, labels, scores = [], [], []
            for label, fractions in self.objects:
                x0, y0, x1, y1 = box_pixels(fractions, height, width)
                cells = features[n, 0, y0 // 4 : math.ceil(y1 / 4), x0 // 4 : math.ceil(x1 / 4)]
                boxes.append(torch.tensor([x0, y0, x1, y1], dtype=torch.float32))
                labels.append(label)
                scores.append(cells.mean())
            out.append(
                {
                    "boxes": torch.stack(boxes),
                    "labels": torch.tensor(labels, dtype=torch.int64),
                    "scores": torch.stack(scores),
                }
            )
        return out


def build_tiny() -> TinyDetector:
    """The custom-builder entry point (``--detector tests/support/detectors.py:build_tiny``)."""
    return TinyDetector()


def tiny_frames(
    n_frames: int, car: Sequence[int], person: Sequence[int], size: tuple[int, int] = (64, 80)
) -> list[np.ndarray]:
    """Dark frames with a white car box in frames ``car`` and a grey (0.6) person box in
    frames ``person``, each filling its detector box exactly."""
    height, width = size
    frames = []
    for index in range(n_frames):
        frame = np.full((height, width, 3), 10, np.uint8)
        for (_, fractions), shown, level in (
            (TINY_OBJECTS[0], car, 255),
            (TINY_OBJECTS[1], person, 153),
        ):
            if index in shown:
                x0, y0, x1, y1 = box_pixels(fractions, height, width)
                frame[y0:y1, x0:x1] = level
        frames.append(frame)
    return frames


class ForcedRoIHeads(nn.Module):
    """Test-only RoI heads for torchvision's Faster R-CNN: one detection per image at a fixed
    box, scored by sigmoid(1 + mean square of the FPN level ``"0"`` features inside the box),
    at least 0.73: always above a 0.5 threshold, and differentiable only in the box."""

    def __init__(self, label: int, fractions: tuple[float, float, float, float]) -> None:
        super().__init__()
        self.label, self.fractions = label, fractions

    def forward(
        self,
        features: dict[str, Tensor],
        proposals: list[Tensor],
        image_shapes: list[tuple[int, int]],
        targets: object = None,
    ) -> tuple[list[dict[str, Tensor]], dict[str, Tensor]]:
        level = features["0"]
        # The batch is padded to multiples of 32 (torchvision's size_divisible).
        padded = 32 * math.ceil(max(h for h, _ in image_shapes) / 32)
        s = padded // level.shape[-2]
        out = []
        for n, (height, width) in enumerate(image_shapes):
            x0, y0, x1, y1 = box_pixels(self.fractions, height, width)
            cells = level[n, :, y0 // s : math.ceil(y1 / s), x0 // s : math.ceil(x1 / s)]
            score = torch.sigmoid(1 + cells.square().mean())
            out.append(
                {
                    "boxes": torch.tensor([[x0, y0, x1, y1]], dtype=torch.float32),
                    "labels": torch.tensor([self.label]),
                    "scores": score[None],
                }
            )
        return out, {}


#: The forced Faster R-CNN's detection: a car (COCO label 3) at x 25-75 %, y 25-75 %.
FORCED_CAR: Forced = (3, (0.25, 0.25, 0.75, 0.75))


def force_detection(detector: nn.Module, forced: Forced = FORCED_CAR) -> nn.Module:
    """Replace a torchvision Faster R-CNN's RoI heads by :class:`ForcedRoIHeads` and keep its
    RPN small."""
    net = detector
    net.roi_heads = ForcedRoIHeads(forced[0], forced[1])
    net.rpn._pre_nms_top_n = {"training": 10, "testing": 10}
    net.rpn._post_nms_top_n = {"training": 10, "testing": 10}
    net.num_classes = 91  # COCO's label space, as before (the box predictor is gone)
    return detector.eval()


def build_forced_fasterrcnn() -> nn.Module:
    """A torchvision ``fasterrcnn_mobilenet_v3_large_320_fpn`` (random weights, seeded) with
    a forced car detection: a custom detector built from torchvision's parts."""
    import torchvision.models as tvm

    torch.manual_seed(0)
    detector = tvm.get_model(
        "fasterrcnn_mobilenet_v3_large_320_fpn", weights=None, weights_backbone=None
    )
    return force_detection(detector)
