"""The temporal occlusion baseline (``evaluate --occlusion N``): each frame's importance is the
drop in the target's probability when a short run of frames around it is replaced by the
neutral frame (Zeiler & Fergus, 2014, occlusion sensitivity, along time).

Frame i's run is positions ``i - (N - 1) // 2`` to ``i + N // 2`` of the analysed frames
(clipped to the video); importance_i = p(untouched) - p(run made neutral), p the target's mean
window probability, re-scored over the pass's own windows (:mod:`.rescoring`: a window the run
does not reach is not run again). Its keyframes follow the CAM keyframes' rule (evidence,
floor, top-k with ``min_gap``) on the importance instead of the attribution, so the two are
scored side by side. Cost: about ``n_frames x (N + clip_len) / stride`` window forwards.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from videocam.scoring import find_evidence, select_keyframes

__all__ = ["occlusion_importance", "occlusion_keyframes", "occlusion_masks"]


def occlusion_masks(n_frames: int, run: int) -> np.ndarray:
    """Kept-frame masks, bool (n_frames, n_frames): row i hides frame i's run (see the module
    docstring) and keeps every other frame."""
    if run < 1:
        raise ValueError(f"run must be >= 1, got {run}")
    positions = np.arange(n_frames)
    first = positions - (run - 1) // 2
    hidden = (positions[None, :] >= first[:, None]) & (positions[None, :] < first[:, None] + run)
    return ~hidden


def occlusion_importance(
    score_all: Callable[[np.ndarray], np.ndarray], n_frames: int, run: int
) -> np.ndarray:
    """Each frame's importance: the untouched score minus the score with its run hidden.

    Args:
        score_all: scores of kept-frame masks, bool (m, n_frames) -> float (m,) (one sweep).

    Returns:
        float64, shape (n_frames,); negative where hiding the run raises the score.
    """
    masks = np.concatenate([np.ones((1, n_frames), bool), occlusion_masks(n_frames, run)])
    scores = np.asarray(score_all(masks), dtype=np.float64)
    return scores[0] - scores[1:]


def occlusion_keyframes(
    importance: np.ndarray,
    times_s: np.ndarray,
    target_score: np.ndarray,
    *,
    topk: int,
    min_gap_s: float,
    keyframe_floor: float,
    evidence_floor: float,
    evidence_ratio: float,
) -> np.ndarray:
    """Positions of the occlusion keyframes, strongest first: :func:`select_keyframes` on the
    importance, among the frames with evidence (:func:`find_evidence`), as for the CAM's."""
    return select_keyframes(
        importance,
        times_s,
        topk,
        min_gap_s,
        floor=keyframe_floor,
        eligible=find_evidence(
            target_score, times_s, floor=evidence_floor, ratio=evidence_ratio
        ).mask,
    )
