"""Faithfulness and correctness metrics of explanations along time (numpy only).

Temporal deletion / insertion, after RISE (Petsiuk et al., 2018) applied to frames instead of
pixels: frames are removed from the video (replaced by a neutral frame, the video's temporal mean)
or inserted into an all-neutral video, in order of decreasing attribution, a fixed fraction at a
time, and the target's probability is re-scored over the windows at each step.

Normalised areas: the area under the score curve over the removed/inserted fraction in [0, 1]
(trapezoid rule), divided by the target's score on the untouched video, so that videos whose
model is more or less confident compare. Deletion: lower is more faithful (the score falls fast
when the frames the explanation points at go); insertion: higher is more faithful.

Correctness in time (keyframe hit rate, segment IoU against a true interval) and in space (the
pointing game and its energy-based variant against a true box).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from videocam._interp import resize_bilinear

#: Scores the target on a video given as a mask of kept frames: (n,) bool -> probability.
ScoreFn = Callable[[np.ndarray], float]


def order_by_attribution(attribution: np.ndarray) -> np.ndarray:
    """Frame positions by decreasing attribution (ties: the earlier frame first)."""
    a = np.asarray(attribution, dtype=np.float64)
    return np.lexsort((np.arange(len(a)), -a))


def step_counts(n_frames: int, steps: int) -> np.ndarray:
    """How many frames are removed/inserted at each of ``steps + 1`` points (0 .. n_frames)."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    return np.round(np.linspace(0, n_frames, steps + 1)).astype(np.int64)


def deletion_curve(order: np.ndarray, score: ScoreFn, steps: int = 10) -> np.ndarray:
    """Target score as the first frames of ``order`` are removed, ``1/steps`` at a time.

    Returns:
        float64, shape (steps + 1,): the score with 0, 1/steps, ..., all frames removed.
    """
    return _curve(order, score, steps, inserting=False)


def insertion_curve(order: np.ndarray, score: ScoreFn, steps: int = 10) -> np.ndarray:
    """Target score as the first frames of ``order`` are inserted into an all-neutral video."""
    return _curve(order, score, steps, inserting=True)


def curve_masks(order: np.ndarray, steps: int = 10, *, inserting: bool) -> np.ndarray:
    """The kept-frame masks of a deletion (or insertion) curve, one per :func:`step_counts`.

    Returns:
        bool, shape (steps + 1, n): row ``i`` keeps every frame but the first
        ``step_counts(n, steps)[i]`` of ``order`` (deletion), or only those (insertion).
    """
    n = len(order)
    counts = step_counts(n, steps)
    masks = np.full((len(counts), n), not inserting)
    for row, count in enumerate(counts):
        masks[row, order[:count]] = inserting
    return masks


def _curve(order: np.ndarray, score: ScoreFn, steps: int, *, inserting: bool) -> np.ndarray:
    """The score as the first frames of ``order`` flip from removed to kept (inserting) or
    from kept to removed, at each of :func:`step_counts`."""
    masks = curve_masks(order, steps, inserting=inserting)
    return np.asarray([score(kept) for kept in masks], dtype=np.float64)


def normalised_auc(curve: np.ndarray, reference: float) -> float:
    """Area under ``curve`` over [0, 1] (trapezoid rule) divided by ``reference`` (> 0)."""
    curve = np.asarray(curve, dtype=np.float64)
    x = np.linspace(0.0, 1.0, len(curve))
    area = float(np.sum((curve[1:] + curve[:-1]) * np.diff(x) / 2.0))
    return area / reference if reference > 0 else float("nan")


def keyframe_hit_rate(keyframe_times_s: np.ndarray, start_s: float, end_s: float) -> float:
    """Share of keyframes whose time lies in [start_s, end_s); NaN without keyframes."""
    t = np.asarray(keyframe_times_s, dtype=np.float64)
    if t.size == 0:
        return float("nan")
    return float(np.mean((t >= start_s) & (t < end_s)))


def segment_iou(
    times_s: np.ndarray, segments_s: list[tuple[float, float]], start_s: float, end_s: float
) -> float:
    """Temporal IoU, counted in analysed frames, of the predicted segments and the true interval.

    Args:
        times_s: float, shape (n,): times of the analysed frames.
        segments_s: predicted intervals (start_s, end_s), both ends inclusive (frame times).
        start_s, end_s: the true interval, end exclusive.

    Returns:
        |predicted ∩ true| / |predicted ∪ true| over frames; 0 when both are empty.
    """
    t = np.asarray(times_s, dtype=np.float64)
    predicted = np.zeros(len(t), dtype=bool)
    for seg_start, seg_end in segments_s:
        predicted |= (t >= seg_start) & (t <= seg_end)
    true = (t >= start_s) & (t < end_s)
    union = int(np.sum(predicted | true))
    return float(np.sum(predicted & true)) / union if union else 0.0


def box_pointing(
    cam: np.ndarray, frame_size: tuple[int, int], box: tuple[float, float, float, float]
) -> tuple[bool, float]:
    """The pointing game and its energy-based variant on one frame.

    The map is upsampled bilinearly (``align_corners=False``) to the frame, as for the keyframe
    boxes; pixel (x, y) lies in the box when x0 <= x < x1 and y0 <= y < y1.

    Args:
        cam: float, shape (h, w), >= 0: the frame's map at model resolution.
        frame_size: (H, W) of the source frame.
        box: (x0, y0, x1, y1) in source pixels.

    Returns:
        (hit, energy): whether the map's maximum (its first pixel in row-major order, on ties)
        lies in the box (Zhang et al., 2016, without tolerance); the share of the map's mass in
        the box (Score-CAM's energy-based pointing game). A map that is zero everywhere: a miss
        and 0.
    """
    up = resize_bilinear(np.asarray(cam, dtype=np.float32), frame_size).astype(np.float64)
    x0, y0, x1, y1 = box
    rows = np.arange(frame_size[0])
    cols = np.arange(frame_size[1])
    inside = ((rows >= y0) & (rows < y1))[:, None] & ((cols >= x0) & (cols < x1))[None, :]
    total = float(up.sum())
    if total <= 0:
        return False, 0.0
    peak = np.unravel_index(int(np.argmax(up)), up.shape)
    return bool(inside[peak]), float(up[inside].sum()) / total
