"""One video's scores from its fused per-frame maps and target scores: the maps on one scale,
attribution over time, the frames with evidence, keyframes, segments and the keyframes' boxes,
with the rules of :mod:`.frames` and :mod:`.boxes`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from videocam.scoring.boxes import BOX_MAX_AREA, Box, cam_box
from videocam.scoring.frames import (
    Evidence,
    Segment,
    find_evidence,
    find_segments,
    scale_cams,
    select_keyframes,
)


@dataclass(frozen=True)
class VideoScores:
    """What :func:`score_frames` (and :func:`score_video`) find.

    Attributes:
        cam_scale: the one factor all maps are divided by (their common maximum; 1.0 when every
            map is zero).
        attribution: float64, shape (n,), in [0, 1]: each frame's mean map / ``cam_scale``.
        evidence: the frames where the model sees the target (``evidence.mask``: the only ones
            that may be keyframes or inside segments) and the levels of the rule.
        keyframes: int64, shape (<= topk,): positions of the keyframes, strongest first.
        boxes: one ``(x0, y0, x1, y1)`` per keyframe, pixels of the original frame
            (:data:`~videocam.scoring.boxes.NO_BOX` for a keyframe without one).
        segments: intervals of high attribution, in time order.
        cams: float32, shape (n, h, w), in [0, 1]: the maps divided by ``cam_scale``, from
            :func:`score_video` (None from :func:`score_frames`, which never holds them all).
    """

    cam_scale: float
    attribution: np.ndarray = field(repr=False)
    evidence: Evidence = field(repr=False)
    keyframes: np.ndarray
    boxes: list[Box]
    segments: list[Segment]
    cams: np.ndarray | None = field(default=None, repr=False)


def score_frames(
    means: np.ndarray,
    maxes: np.ndarray,
    frame_map: Callable[[int], np.ndarray],
    times_s: np.ndarray,
    target_score: np.ndarray,
    frame_size: tuple[int, int],
    *,
    topk: int,
    min_gap_s: float,
    keyframe_floor: float,
    evidence_floor: float,
    evidence_ratio: float,
    box_threshold: float,
    box_max_area: float = BOX_MAX_AREA,
) -> VideoScores:
    """Scale, attribute, rank and box one video from each frame's map mean and maximum, reading
    only the keyframes' maps (``frame_map(position)``): memory O(n) however long the video.

    Args:
        means: float, shape (n,), >= 0: the mean of each analysed frame's fused map.
        maxes: float, shape (n,): the maximum of each frame's map.
        frame_map: the fused map (h, w), raw scale, of a frame by position.
        times_s: float, shape (n,): the frames' presentation times.
        target_score: float, shape (n,): the target's probability per frame.
        frame_size: (H, W) of the original frames (for the boxes).
        topk, min_gap_s, keyframe_floor: see :func:`select_keyframes`.
        evidence_floor, evidence_ratio: the ``floor`` and ``ratio`` of :func:`find_evidence`.
        box_threshold, box_max_area: see :func:`cam_box`.
    """
    maxes = np.asarray(maxes, dtype=np.float64)
    if not np.isfinite(maxes).all():
        raise ValueError("cams contain NaN or infinity")
    peak = float(maxes.max()) if maxes.size else 0.0
    factor = peak if peak > 0 else 1.0
    attribution = np.asarray(means, dtype=np.float64) / factor
    evidence = find_evidence(target_score, times_s, floor=evidence_floor, ratio=evidence_ratio)
    keyframes = select_keyframes(
        attribution, times_s, topk, min_gap_s, floor=keyframe_floor, eligible=evidence.mask
    )
    boxes = [
        cam_box(
            np.asarray(frame_map(p), np.float32) / factor, frame_size, box_threshold, box_max_area
        )
        for p in keyframes.tolist()
    ]
    return VideoScores(
        cam_scale=factor,
        attribution=attribution,
        evidence=evidence,
        keyframes=keyframes,
        boxes=boxes,
        segments=find_segments(attribution, eligible=evidence.mask),
    )


def score_video(
    cams: np.ndarray,
    times_s: np.ndarray,
    target_score: np.ndarray,
    frame_size: tuple[int, int],
    *,
    topk: int,
    min_gap_s: float,
    keyframe_floor: float,
    evidence_floor: float,
    evidence_ratio: float,
    box_threshold: float,
    box_max_area: float = BOX_MAX_AREA,
) -> VideoScores:
    """:func:`score_frames` of maps held in memory, with the scaled maps.

    Args:
        cams: float, shape (n, h, w), >= 0: each analysed frame's fused map (raw scale).
        Others: as :func:`score_frames`.
    """
    scaled, factor = scale_cams(cams)
    raw = np.asarray(cams, dtype=np.float32)
    flat = raw.reshape(len(raw), -1)
    scores = score_frames(
        flat.mean(axis=1, dtype=np.float64),
        flat.max(axis=1) if flat.shape[1] else np.zeros(len(raw), np.float32),
        lambda p: raw[p],
        times_s,
        target_score,
        frame_size,
        topk=topk,
        min_gap_s=min_gap_s,
        keyframe_floor=keyframe_floor,
        evidence_floor=evidence_floor,
        evidence_ratio=evidence_ratio,
        box_threshold=box_threshold,
        box_max_area=box_max_area,
    )
    assert scores.cam_scale == factor
    return replace(scores, cams=scaled)
