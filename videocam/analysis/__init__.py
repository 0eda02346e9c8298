"""The analysis of one video: the composition (:mod:`.compose`), its result and output
contract (:mod:`.result`), summary.json (:mod:`.summary`), the explained class
(:mod:`.targets`) and the writer of the output folder (:mod:`.outputs`)."""

from videocam.analysis.compose import (
    PassFrames,
    analyze,
    load_configured_model,
    run_analysis,
    run_analysis_keeping_frames,
    sampled_indices,
    window_plan,
    window_stride,
    with_method,
)
from videocam.analysis.result import (
    FRAME_COLUMNS,
    KEYFRAME_COLUMNS,
    SEGMENT_COLUMNS,
    TRACK_COLUMNS,
    Analysis,
    RenderOptions,
)
from videocam.analysis.summary import package_versions
from videocam.analysis.targets import (
    auto_class,
    choose_auto_target,
    class_name,
    ranked_classes,
    resolve_class,
    top_classes,
)

__all__ = [
    "FRAME_COLUMNS",
    "KEYFRAME_COLUMNS",
    "SEGMENT_COLUMNS",
    "TRACK_COLUMNS",
    "Analysis",
    "PassFrames",
    "RenderOptions",
    "analyze",
    "auto_class",
    "choose_auto_target",
    "class_name",
    "load_configured_model",
    "package_versions",
    "ranked_classes",
    "resolve_class",
    "run_analysis",
    "run_analysis_keeping_frames",
    "sampled_indices",
    "top_classes",
    "window_plan",
    "window_stride",
    "with_method",
]
