"""Per-frame attribution, keyframes, segments and boxes (numpy only)."""

from videocam._interp import resize_bilinear
from videocam.scoring.boxes import (
    BOX_MAX_AREA,
    BOX_THRESHOLD,
    BOXES_DEFINITION,
    NO_BOX,
    cam_box,
    detection_box,
    scale_boxes,
)
from videocam.scoring.frames import (
    EVIDENCE_ENTER_FACTORS,
    EVIDENCE_GAP_S,
    EVIDENCE_LOWEST,
    Evidence,
    Segment,
    evidence_runs,
    find_evidence,
    find_segments,
    frame_attribution,
    scale_cams,
    select_keyframes,
)
from videocam.scoring.video import VideoScores, score_frames, score_video

__all__ = [
    "BOXES_DEFINITION",
    "BOX_MAX_AREA",
    "BOX_THRESHOLD",
    "EVIDENCE_ENTER_FACTORS",
    "EVIDENCE_GAP_S",
    "EVIDENCE_LOWEST",
    "NO_BOX",
    "Evidence",
    "Segment",
    "VideoScores",
    "cam_box",
    "detection_box",
    "evidence_runs",
    "find_evidence",
    "find_segments",
    "frame_attribution",
    "resize_bilinear",
    "scale_boxes",
    "scale_cams",
    "score_frames",
    "score_video",
    "select_keyframes",
]
