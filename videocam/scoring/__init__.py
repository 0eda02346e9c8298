"""Per-frame attribution, keyframes, segments and boxes (numpy only)."""

from videocam._interp import resize_bilinear
from videocam.scoring.boxes import cam_box, detection_box, scale_boxes
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
