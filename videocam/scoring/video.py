"""One video's scores from its fused per-frame maps and target scores: the maps on one scale,
attribution over time, the frames with evidence, keyframes, segments and the keyframes' boxes,
with the rules of :mod:`.frames` and :mod:`.boxes`."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from videocam.scoring.boxes import cam_box
from videocam.scoring.frames import (
    Segment,
    evidence_mask,
    find_segments,
    frame_attribution,
    scale_cams,
    select_keyframes,
)

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class VideoScores:
    """What :func:`score_video` finds.

    Attributes:
        cams: float32, shape (n, h, w), in [0, 1]: the maps divided by ``cam_scale``.
        cam_scale: the one factor all maps were divided by.
        attribution: float64, shape (n,), in [0, 1].
        evidence: bool, shape (n,): frames where the model sees the target (the only ones that
            may be keyframes or inside segments).
        keyframes: int64, shape (<= topk,): positions of the keyframes, strongest first.
        boxes: one ``(x0, y0, x1, y1)`` per keyframe, pixels of the original frame.
        segments: intervals of high attribution, in time order.
    """

    cams: np.ndarray = field(repr=False)
    cam_scale: float
    attribution: np.ndarray = field(repr=False)
    evidence: np.ndarray = field(repr=False)
    keyframes: np.ndarray
    boxes: list[Box]
    segments: list[Segment]


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
    box_threshold: float,
) -> VideoScores:
    """Scale, attribute, rank and box one video's maps.

    Args:
        cams: float, shape (n, h, w), >= 0: each analysed frame's fused map (raw scale).
        times_s: float, shape (n,): the frames' presentation times.
        target_score: float, shape (n,): the target's probability per frame.
        frame_size: (H, W) of the original frames (for the boxes).
        topk, min_gap_s, keyframe_floor: see :func:`select_keyframes`.
        evidence_floor: see :func:`evidence_mask`.
        box_threshold: see :func:`cam_box`.
    """
    scaled, factor = scale_cams(cams)
    attribution = frame_attribution(scaled)
    evidence = evidence_mask(target_score, evidence_floor)
    keyframes = select_keyframes(
        attribution, times_s, topk, min_gap_s, floor=keyframe_floor, eligible=evidence
    )
    boxes = [cam_box(scaled[p], frame_size, box_threshold) for p in keyframes.tolist()]
    return VideoScores(
        cams=scaled,
        cam_scale=factor,
        attribution=attribution,
        evidence=evidence,
        keyframes=keyframes,
        boxes=boxes,
        segments=find_segments(attribution, eligible=evidence),
    )
