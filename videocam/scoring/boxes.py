"""Localisation in original pixels: the box around a frame's high-attribution region, and, for
object detectors, the box of the explained detection.

As in the Grad-CAM paper's localisation experiment: upsample the map to the frame, keep the
pixels at or above a fraction of the map's maximum, and box the largest connected region. A
detector's keyframe keeps instead the box of its highest-scoring detection of the target.
"""

from __future__ import annotations

import numpy as np

from videocam._interp import resize_bilinear


def cam_box(
    cam: np.ndarray, frame_size: tuple[int, int], threshold: float = 0.5
) -> tuple[int, int, int, int]:
    """Box around the largest region where the upsampled map is >= ``threshold`` x its maximum.

    Args:
        cam: float, shape (h, w), >= 0: one frame's map at model resolution.
        frame_size: (H, W) of the original frame.
        threshold: fraction of the map's maximum.

    Returns:
        (x0, y0, x1, y1) in pixels of the original frame, x1/y1 exclusive; (-1, -1, -1, -1) when
        the map is zero everywhere.
    """
    from scipy import ndimage

    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    up = resize_bilinear(cam, frame_size)
    peak = float(up.max())
    if peak <= 0:
        return (-1, -1, -1, -1)
    labels, n = ndimage.label(up >= threshold * peak)
    sizes = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    biggest = int(np.argmax(sizes)) + 1
    ys, xs = ndimage.find_objects((labels == biggest).astype(np.int32))[0]
    return (int(xs.start), int(ys.start), int(xs.stop), int(ys.stop))


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


def detection_box(boxes: np.ndarray, scores: np.ndarray) -> tuple[int, int, int, int]:
    """The box of the highest-scoring detection (the first on ties), rounded to pixels.

    Args:
        boxes: float, shape (D, 4) in pixels of the original frame (:func:`scale_boxes`).
        scores: float, shape (D,).

    Returns:
        (x0, y0, x1, y1), x1/y1 exclusive; (-1, -1, -1, -1) when there is no detection.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.size == 0:
        return (-1, -1, -1, -1)
    x0, y0, x1, y1 = (int(v) for v in np.rint(np.asarray(boxes)[int(np.argmax(scores))]))
    return (x0, y0, x1, y1)
