"""Deprecated: the former home of the analysis API, kept so that user code importing from it
keeps working; importing it warns (``DeprecationWarning``), and a later release removes it.

The analysis lives in :mod:`videocam.analysis` (composition, result, summary, targets,
outputs) and the way it executes in :mod:`videocam.runtime` (the single pass, input feeding,
prefetch, resources). New code imports from those, or from :mod:`videocam` itself.
"""

import warnings

from videocam.analysis import (
    FRAME_COLUMNS,
    KEYFRAME_COLUMNS,
    SEGMENT_COLUMNS,
    Analysis,
    analyze,
    choose_auto_target,
    class_name,
    load_configured_model,
    package_versions,
    resolve_class,
    run_analysis,
    sampled_indices,
    window_plan,
)
from videocam.runtime import model_input

__all__ = [
    "FRAME_COLUMNS",
    "KEYFRAME_COLUMNS",
    "SEGMENT_COLUMNS",
    "Analysis",
    "analyze",
    "choose_auto_target",
    "class_name",
    "load_configured_model",
    "model_input",
    "package_versions",
    "resolve_class",
    "run_analysis",
    "sampled_indices",
    "window_plan",
]

warnings.warn(
    "videocam.pipeline is deprecated and will be removed: import from videocam or "
    "videocam.analysis (model_input from videocam.runtime)",
    DeprecationWarning,
    stacklevel=2,
)
