"""From fused per-frame maps to numbers over time: attribution, keyframes, segments.

Definitions (the same for every model and method):

- The whole video's maps are divided by **one** factor, their global maximum, so they lie in
  [0, 1] and stay comparable across frames (never a min-max per window or per frame).
- A frame's ``attribution`` is the mean of its scaled map over all map positions: the share of
  the video's peak attribution density that the frame carries on average. A frame whose map is
  zero everywhere has attribution 0; one whose map equals the video's peak everywhere has 1.
- A frame has **evidence** when the model sees the target there: its target score is at least
  ``evidence_floor`` times the video's own highest target score (:func:`evidence_mask`).
  Keyframes and segments are made of such frames only, whatever their attribution: a CAM
  always points somewhere, also where the model gives the class no probability at all.
  Relative to the video's peak, so it holds for confident and unconfident models alike (an
  ImageNet class peaking at 0.02, a sigmoid score, a model with a background class).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def scale_cams(cams: np.ndarray) -> tuple[np.ndarray, float]:
    """Scale the whole video's maps by one factor into [0, 1].

    Args:
        cams: float, shape (n_frames, *S), >= 0.

    Returns:
        (scaled float32 maps, the factor they were divided by; 1.0 when every map is zero).
    """
    cams = np.asarray(cams, dtype=np.float32)
    if cams.size and np.min(cams) < 0:
        raise ValueError("cams must be >= 0 (ReLU-ed maps)")
    peak = float(cams.max()) if cams.size else 0.0
    if not np.isfinite(peak):
        raise ValueError("cams contain NaN or infinity")
    factor = peak if peak > 0 else 1.0
    return cams / factor, factor


def frame_attribution(scaled: np.ndarray) -> np.ndarray:
    """Mean of each frame's scaled map.

    Args:
        scaled: float, shape (n_frames, *S), in [0, 1] (see :func:`scale_cams`).

    Returns:
        float64, shape (n_frames,), in [0, 1].
    """
    scaled = np.asarray(scaled)
    return scaled.reshape(len(scaled), -1).mean(axis=1, dtype=np.float64)


def evidence_mask(target_score: np.ndarray, floor: float) -> np.ndarray:
    """Frames where the model sees the target: target score >= ``floor`` x its video peak.

    Args:
        target_score: float, shape (n_frames,), >= 0: the target's probability per frame.
        floor: in [0, 1]; 0 gives every frame evidence.

    Returns:
        bool, shape (n_frames,); all False when the target's score is 0 everywhere (and the
        floor is not 0).
    """
    if not 0 <= floor <= 1:
        raise ValueError(f"floor must be in [0, 1], got {floor}")
    score = np.asarray(target_score, dtype=np.float64)
    if floor == 0:
        return np.ones(len(score), dtype=bool)
    peak = float(score.max()) if score.size else 0.0
    return (score >= floor * peak) & (score > 0)


def select_keyframes(
    attribution: np.ndarray,
    times_s: np.ndarray,
    k: int,
    min_gap_s: float,
    *,
    floor: float = 0.0,
    eligible: np.ndarray | None = None,
) -> np.ndarray:
    """Top-k frames by attribution with non-maximum suppression in time.

    Frames are taken in decreasing attribution (ties: the earlier frame); a frame closer than
    ``min_gap_s`` to one already taken is skipped. Only ``eligible`` frames (with evidence, see
    :func:`evidence_mask`) are taken, and never those with zero attribution or below ``floor``
    times the strongest eligible frame's attribution: a video whose attribution sits in one
    event yields fewer than k keyframes rather than padding with noise.

    Args:
        eligible: bool, shape (n_frames,): the frames that may be keyframes; None = all.

    Returns:
        int64, shape (<= k,): positions of the keyframes, strongest first.
    """
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    if min_gap_s < 0:
        raise ValueError(f"min_gap_s must be >= 0, got {min_gap_s}")
    if not 0 <= floor <= 1:
        raise ValueError(f"floor must be in [0, 1], got {floor}")
    attribution = np.asarray(attribution, dtype=np.float64)
    times_s = np.asarray(times_s, dtype=np.float64)
    allowed = _eligible(eligible, len(attribution))
    candidates = np.where(allowed, attribution, -np.inf)
    order = np.lexsort((np.arange(len(attribution)), -candidates))
    least = floor * float(candidates.max()) if allowed.any() else 0.0
    chosen: list[int] = []
    for position in order.tolist():
        if len(chosen) == k or candidates[position] <= 0 or candidates[position] < least:
            break
        if all(abs(times_s[position] - times_s[c]) >= min_gap_s for c in chosen):
            chosen.append(position)
    return np.asarray(chosen, dtype=np.int64)


@dataclass(frozen=True)
class Segment:
    """An interval of high attribution, positions inclusive."""

    start: int
    end: int
    peak: int
    attribution: float  # mean attribution over the interval


def find_segments(
    attribution: np.ndarray,
    *,
    high: float = 0.5,
    low: float = 0.25,
    min_len: int = 1,
    eligible: np.ndarray | None = None,
) -> list[Segment]:
    """Intervals of high attribution, by thresholding with hysteresis.

    Thresholds are relative to the video: with ``base`` the median attribution and ``peak`` the
    highest attribution of an ``eligible`` frame, a segment is a maximal run of eligible frames
    at or above
    ``base + low * (peak - base)`` that contains at least one frame at or above
    ``base + high * (peak - base)``.

    Args:
        attribution: float, shape (n_frames,), >= 0.
        high, low: the two relative thresholds, 0 <= low <= high <= 1.
        min_len: drop segments shorter than this many frames.
        eligible: bool, shape (n_frames,): frames that may be inside a segment (an ineligible
            frame ends a run); None = all.
    """
    if not 0 <= low <= high <= 1:
        raise ValueError(f"need 0 <= low <= high <= 1, got low={low}, high={high}")
    a = np.asarray(attribution, dtype=np.float64)
    allowed = _eligible(eligible, len(a))
    if not allowed.any():
        return []
    # The baseline is the whole video's; the peak is that of the frames with evidence.
    base, peak = float(np.median(a)), float(a[allowed].max())
    if peak <= base:
        return []
    hi_t = base + high * (peak - base)
    lo_t = base + low * (peak - base)
    above = np.concatenate([[False], (a >= lo_t) & allowed, [False]])
    edges = np.flatnonzero(np.diff(above.astype(np.int8)))
    segments = []
    for start, stop in zip(edges[::2], edges[1::2], strict=True):
        run = a[start:stop]
        if run.max() >= hi_t and stop - start >= min_len:
            peak_at = int(start + np.argmax(run))
            segments.append(Segment(int(start), int(stop - 1), peak_at, float(run.mean())))
    return segments


def _eligible(eligible: np.ndarray | None, n_frames: int) -> np.ndarray:
    if eligible is None:
        return np.ones(n_frames, dtype=bool)
    allowed = np.asarray(eligible, dtype=bool).reshape(-1)
    if len(allowed) != n_frames:
        raise ValueError(f"eligible has {len(allowed)} frames, attribution {n_frames}")
    return allowed
