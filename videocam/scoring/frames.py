"""From fused per-frame maps to numbers over time: attribution, keyframes, segments.

Definitions (the same for every model and method):

- The whole video's maps are divided by **one** factor, their global maximum, so they lie in
  [0, 1] and stay comparable across frames (never a min-max per window or per frame).
- A frame's ``attribution`` is the mean of its scaled map over all map positions: the share of
  the video's peak attribution density that the frame carries on average. A frame whose map is
  zero everywhere has attribution 0; one whose map equals the video's peak everywhere has 1.
- A frame has **evidence** when the model sees the target there (:func:`find_evidence`). The
  target score is compared with two levels of the video's own: its peak and its background (the
  median over all frames). A frame passes when its score reaches ``floor`` x the peak or
  ``ratio`` x the background, whichever is lower, and at least a hundredth of the peak
  (:data:`EVIDENCE_LOWEST`): a class whose probability is small everywhere (an ImageNet class
  at 0.003 against 0.0001 elsewhere) counts where it rises well above its background, a
  confident one wherever it is near its peak. A stretch of passing frames (gaps of at most
  :data:`EVIDENCE_GAP_S` bridged, so one weak frame does not split it) has evidence when it
  reaches, somewhere, ``2 floor`` x the peak or ``10 ratio`` x the background, whichever is
  lower (hysteresis: a brief rise of a class the model confuses with something on a busy
  background does not count, the weak frames next to a strong one do). A frame whose score is
  0 never has evidence; ``floor`` 0 gives every frame evidence. Keyframes and segments are
  made of frames with evidence only, whatever their attribution: a CAM always points
  somewhere, also where the model gives the class no probability at all. Relative to the
  video's own levels, so the rule holds for softmax probabilities, sigmoid scores and a
  detector's detection mass alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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


#: Frames below the evidence threshold between two frames at or above it at most this many
#: seconds apart count as above it: a stretch does not break on one or a few weak frames.
EVIDENCE_GAP_S = 0.5
#: A frame under this share of the peak never passes (nor under ``floor`` x the peak, when
#: that is lower): it is negligible next to the video's strongest, whatever the background.
EVIDENCE_LOWEST = 0.01
#: The level a stretch must reach, as multiples of the threshold's two terms: ``2 floor`` x the
#: peak or ``10 ratio`` x the background (with the defaults: half the peak, or 100 x the median).
EVIDENCE_ENTER_FACTORS = (2.0, 10.0)


@dataclass(frozen=True)
class Evidence:
    """Where the model sees the target, with the numbers of the rule (:func:`find_evidence`).

    Attributes:
        mask: bool, shape (n_frames,): the frames with evidence.
        floor, ratio: the rule's settings (``evidence_floor``, ``evidence_ratio``).
        baseline: the video's background level of the target score: its median.
        peak: the highest target score.
        threshold: the score at or above which a frame passes: ``min(floor x peak, ratio x
            baseline)`` (``floor x peak`` when ``ratio`` is 0), at least
            ``min(floor, EVIDENCE_LOWEST) x peak``; 0 when the rule is off.
        enter: the score a stretch of passing frames must reach somewhere to have evidence
            (at least ``threshold``).
        gap_s: the longest gap bridged between passing frames, seconds.
    """

    mask: np.ndarray = field(repr=False)
    floor: float
    ratio: float
    baseline: float
    peak: float
    threshold: float
    enter: float
    gap_s: float

    def numbers(self) -> dict[str, float | int]:
        """The rule's settings and levels, and how many frames have evidence (JSON-ready)."""
        return {
            "evidence_floor": self.floor,
            "evidence_ratio": self.ratio,
            "evidence_baseline": self.baseline,
            "evidence_threshold": self.threshold,
            "evidence_enter": self.enter,
            "evidence_gap_s": self.gap_s,
            "frames_with_evidence": int(self.mask.sum()),
        }


def find_evidence(
    target_score: np.ndarray,
    times_s: np.ndarray,
    *,
    floor: float,
    ratio: float,
    gap_s: float = EVIDENCE_GAP_S,
) -> Evidence:
    """Frames where the model sees the target (the module's definition of evidence).

    Args:
        target_score: float, shape (n_frames,), >= 0: the target's probability (or detection
            mass) per frame.
        times_s: float, shape (n_frames,): the frames' times, increasing (for the gaps).
        floor: in [0, 1]: frames at ``floor`` x the peak pass; 0 gives every frame evidence.
        ratio: 0 or >= 1: frames at ``ratio`` x the median pass too; 0 leaves the background
            out (then only the peak counts: ``floor`` x peak to pass, ``2 floor`` x peak to enter).
        gap_s: bridge gaps between passing frames at most this many seconds long.

    Returns:
        The mask and the numbers; the mask is all False when the score is 0 everywhere (and
        ``floor`` is not 0).
    """
    if not 0 <= floor <= 1:
        raise ValueError(f"floor must be in [0, 1], got {floor}")
    if not (ratio == 0 or 1 <= ratio < np.inf):
        raise ValueError(f"ratio must be 0 or a finite number >= 1, got {ratio}")
    if not gap_s >= 0:
        raise ValueError(f"gap_s must be >= 0, got {gap_s}")
    score = np.asarray(target_score, dtype=np.float64).reshape(-1)
    times = np.asarray(times_s, dtype=np.float64).reshape(-1)
    if len(times) != len(score):
        raise ValueError(f"times_s has {len(times)} frames, target_score {len(score)}")
    peak = float(score.max()) if score.size else 0.0
    baseline = float(np.median(score)) if score.size else 0.0
    if floor == 0:
        everywhere = np.ones(len(score), dtype=bool)
        return Evidence(everywhere, floor, float(ratio), baseline, peak, 0.0, 0.0, float(gap_s))
    peak_factor, baseline_factor = EVIDENCE_ENTER_FACTORS
    threshold = floor * peak
    enter = min(1.0, peak_factor * floor) * peak
    if ratio:
        threshold = max(min(threshold, ratio * baseline), min(floor, EVIDENCE_LOWEST) * peak)
        enter = min(enter, baseline_factor * ratio * baseline)
    enter = max(enter, threshold)
    mask = evidence_runs(score, times, threshold, enter, gap_s)
    return Evidence(mask, floor, float(ratio), baseline, peak, threshold, enter, float(gap_s))


def evidence_runs(
    target_score: np.ndarray, times_s: np.ndarray, threshold: float, enter: float, gap_s: float
) -> np.ndarray:
    """The hysteresis of :func:`find_evidence` at given levels: the frames of the maximal runs of
    scores at or above ``threshold`` (gaps of at most ``gap_s`` seconds between two such frames
    bridged) that reach ``enter`` somewhere; never a frame whose score is 0.

    Returns:
        bool, shape (n_frames,).
    """
    score = np.asarray(target_score, dtype=np.float64).reshape(-1)
    times = np.asarray(times_s, dtype=np.float64).reshape(-1)
    passing = score >= threshold
    at = np.flatnonzero(passing)
    if len(at) >= 2:
        # Frames at[i] and at[i + 1] enclose a gap (not adjacent) short enough to bridge.
        short = (np.diff(at) > 1) & (np.diff(times[at]) <= gap_s + 1e-9)
        change = np.zeros(len(score) + 1, dtype=np.int64)
        np.add.at(change, at[:-1][short] + 1, 1)
        np.add.at(change, at[1:][short], -1)
        passing |= np.cumsum(change[:-1]) > 0
    edges = np.flatnonzero(np.diff(np.concatenate([[0], passing.astype(np.int8), [0]])))
    out = np.zeros(len(score), dtype=bool)
    for start, stop in zip(edges[::2], edges[1::2], strict=True):
        if score[start:stop].max() >= enter:
            out[start:stop] = True
    return out & (score > 0)


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
    :func:`find_evidence`) are taken, and never those with zero attribution or below ``floor``
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
