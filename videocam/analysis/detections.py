"""Object detectors' keyframes: the detections of the explained class at each keyframe (the
detector run again on those frames only), their table (``detections.csv``), and the box that
``keyframes.csv`` keeps: the highest-scoring explained detection's.

Re-running the detector on a handful of keyframes costs a few forwards and keeps the single
pass free of per-frame detection lists (memory stays flat over hours of video); the frames are
decoded at the same size and the detector is deterministic, so the detections are those the
pass scored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import numpy as np

from videocam.analysis.targets import class_name
from videocam.io import FrameSource
from videocam.runtime.feed import normalised_frames
from videocam.scoring import detection_box, scale_boxes

if TYPE_CHECKING:
    import pandas as pd

    from videocam.models import LoadedModel
    from videocam.models.detectors import DetectionScores

#: detections.csv: one row per detection of the explained class at a keyframe.
DETECTION_COLUMNS = [
    "rank",
    "frame_index",
    "time_s",
    "class_index",
    "class_name",
    "score",
    "x0",
    "y0",
    "x1",
    "y1",
    "keyframe_box",
]
DETECTIONS_CSV = "detections.csv"

DETECTIONS_DEFINITION = (
    "target_score of a frame is the sum of the scores of the target class's detections at or "
    "above score_threshold, after the detector's own post-processing; keyframes.csv keeps the "
    "box of the keyframe's highest-scoring such detection (the map's box where it has none)"
)


def keyframe_detections(
    source: FrameSource,
    loaded: LoadedModel,
    target: int,
    frame_indices: np.ndarray,
    times_s: np.ndarray,
    *,
    frame_size: tuple[int, int],
) -> tuple[pd.DataFrame, list[tuple[int, int, int, int]]]:
    """The target's detections at each keyframe, and the box keyframes.csv keeps for each.

    Args:
        source: the open video.
        loaded: an object detector (``loaded.detector`` set), at the size the pass used.
        target: the explained class.
        frame_indices: int, shape (k,): the keyframes' source frames, in rank order.
        times_s: float, shape (k,): their presentation times.
        frame_size: (H, W) of the original frames.

    Returns:
        (``DETECTION_COLUMNS`` table in rank order, boxes in original pixels by decreasing
        score; one box per keyframe: the highest-scoring detection's, (-1, -1, -1, -1) without
        one).
    """
    import pandas as pd

    scorer = cast("DetectionScores", loaded.module)
    rows: list[dict[str, object]] = []
    boxes: list[tuple[int, int, int, int]] = []
    if len(frame_indices):
        unique = np.unique(frame_indices)
        frames = source.read(unique, size=loaded.preprocess.size)
        found = scorer.detect(normalised_frames(loaded, frames))
        by_frame = dict(zip(unique.tolist(), found, strict=True))
        name = class_name(loaded, target)
        for rank, (frame_index, time_s) in enumerate(
            zip(frame_indices.tolist(), times_s.tolist(), strict=True), start=1
        ):
            detections = by_frame[int(frame_index)]
            mine = detections.labels == target
            scores = detections.scores[mine]
            order = np.argsort(-scores, kind="stable")
            scaled = scale_boxes(detections.boxes[mine][order], loaded.preprocess.size, frame_size)
            scores = scores[order]
            boxes.append(detection_box(scaled, scores))
            for j, (box, score) in enumerate(zip(scaled.tolist(), scores.tolist(), strict=True)):
                rows.append(
                    {
                        "rank": rank,
                        "frame_index": int(frame_index),
                        "time_s": float(time_s),
                        "class_index": int(target),
                        "class_name": name,
                        "score": float(score),
                        "x0": box[0],
                        "y0": box[1],
                        "x1": box[2],
                        "y1": box[3],
                        "keyframe_box": j == 0,  # the box keyframes.csv keeps
                    }
                )
    return pd.DataFrame(rows, columns=DETECTION_COLUMNS), boxes


def detector_warnings(loaded: LoadedModel, class_mass: np.ndarray, target: int) -> list[str]:
    """What a reviewer should know about a detector's analysis: no detection at all, or none
    of the explained class.

    Args:
        class_mass: float, shape (K,): each class's mean detection mass per frame.
    """
    info = loaded.detector
    if info is None:
        return []
    threshold = f"--score-threshold {info.score_threshold:g}"
    if not np.any(class_mass > 0):
        return [
            f"no detection of any class reaches {threshold} in the analysed frames: "
            "target_score is 0 throughout and there are no keyframes (lower the threshold, or "
            "check the weights)"
        ]
    if not class_mass[target] > 0:
        return [
            f"no detection of {class_name(loaded, target)} reaches {threshold} in the "
            "analysed frames: its target_score is 0 throughout"
        ]
    return []


def detector_summary(loaded: LoadedModel) -> dict[str, object]:
    """summary.json's ``detector``: the threshold, the size it ran at, the definitions."""
    info = loaded.detector
    assert info is not None
    return {
        "score_threshold": info.score_threshold,
        "input_size": list(loaded.preprocess.size),
        "input_size_rule": (
            "fitted to the video as the detector's own preprocessing would"
            if info.fit_to_video
            else "--input-size"
        ),
        "target_score_definition": DETECTIONS_DEFINITION,
        "detections_file": DETECTIONS_CSV,
    }
