"""Localisation in original pixels: the box around a frame's high-attribution region, and, for
object detectors, the box of the explained detection.

A keyframe's box (:func:`cam_box`): upsample the map to the frame, keep the pixels at or above a
fraction of the map's maximum, and box the connected region that holds the maximum, as in the
Grad-CAM paper's localisation experiment but for the region of the peak rather than the largest
one. A coarse map (7x7 for most image classifiers at 224², upsampled bilinearly) spreads its high
values widely: when that region's box would cover more than a share of the frame, the map points
at no region in particular and the keyframe gets no box (:data:`NO_BOX`; empty cells in
keyframes.csv, nothing drawn) rather than one around most of the picture. A detector's keyframe
keeps instead the box of its highest-scoring detection of the target.
"""

from __future__ import annotations

import numpy as np

from videocam._interp import resize_bilinear

Box = tuple[int, int, int, int]

#: No box: the map is zero everywhere, or spread over too much of the frame (or no detection).
NO_BOX: Box = (-1, -1, -1, -1)

#: Default fraction of the map's maximum that bounds the region (``--box-threshold``).
BOX_THRESHOLD = 0.8
#: Default largest share of the frame a box may cover (``--box-max-area``); beyond, no box.
BOX_MAX_AREA = 0.5

BOXES_DEFINITION = (
    "the keyframe's map upsampled bilinearly to the frame; the 4-connected region of pixels at "
    "or above box_threshold x its maximum that holds the maximum; its bounding box, or no box "
    "when that box covers more than box_max_area of the frame (or the map is zero)"
)


def cam_box(
    cam: np.ndarray,
    frame_size: tuple[int, int],
    threshold: float = BOX_THRESHOLD,
    max_area: float = BOX_MAX_AREA,
) -> Box:
    """Box around the region of the map's maximum where the upsampled map is >= ``threshold`` x
    its maximum; :data:`NO_BOX` when it would cover more than ``max_area`` of the frame.

    Args:
        cam: float, shape (h, w), >= 0: one frame's map at model resolution.
        frame_size: (H, W) of the original frame.
        threshold: fraction of the map's maximum, in (0, 1].
        max_area: largest share of the frame the box may cover, in (0, 1] (1: always a box).

    Returns:
        (x0, y0, x1, y1) in pixels of the original frame, x1/y1 exclusive; :data:`NO_BOX` when
        the map is zero everywhere or the box would be larger than ``max_area``.
    """
    from scipy import ndimage

    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    if not 0 < max_area <= 1:
        raise ValueError(f"max_area must be in (0, 1], got {max_area}")
    up = resize_bilinear(cam, frame_size)
    peak = float(up.max())
    if peak <= 0:
        return NO_BOX
    labels, _ = ndimage.label(up >= threshold * peak)  # 4-connected
    row, column = np.unravel_index(int(np.argmax(up)), up.shape)  # the first maximum
    ys, xs = ndimage.find_objects((labels == labels[row, column]).astype(np.int32))[0]
    box = (int(xs.start), int(ys.start), int(xs.stop), int(ys.stop))
    height, width = frame_size
    if (box[2] - box[0]) * (box[3] - box[1]) > max_area * height * width:
        return NO_BOX
    return box


def scale_boxes(
    boxes: np.ndarray, input_size: tuple[int, int], frame_size: tuple[int, int]
) -> np.ndarray:
    """Boxes in pixels of the model's input to pixels of the original frame.

    Args:
        boxes: float, shape (D, 4): x0, y0, x1, y1 in the input's pixels.
        input_size: (H, W) of the input; frame_size: (H, W) of the original frame.

    Returns:
        float64, shape (D, 4), clipped to the frame.
    """
    (in_h, in_w), (height, width) = input_size, frame_size
    factor = np.array([width / in_w, height / in_h] * 2, dtype=np.float64)
    scaled = np.asarray(boxes, dtype=np.float64).reshape(-1, 4) * factor
    return np.clip(scaled, 0, [width, height, width, height])


def detection_box(boxes: np.ndarray, scores: np.ndarray) -> Box:
    """The box of the highest-scoring detection (the first on ties), rounded to pixels.

    Args:
        boxes: float, shape (D, 4) in pixels of the original frame (:func:`scale_boxes`).
        scores: float, shape (D,).

    Returns:
        (x0, y0, x1, y1), x1/y1 exclusive; :data:`NO_BOX` when there is no detection.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.size == 0:
        return NO_BOX
    x0, y0, x1, y1 = (int(v) for v in np.rint(np.asarray(boxes)[int(np.argmax(scores))]))
    return (x0, y0, x1, y1)
