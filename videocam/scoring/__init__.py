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
    Segment,
    evidence_mask,
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
    "NO_BOX",
    "Segment",
    "VideoScores",
    "cam_box",
    "detection_box",
    "evidence_mask",
    "find_segments",
    "frame_attribution",
    "resize_bilinear",
    "scale_boxes",
    "scale_cams",
    "score_frames",
    "score_video",
    "select_keyframes",
]
