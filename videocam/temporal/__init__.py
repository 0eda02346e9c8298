"""From windows to frames: sliding-window planning, window batches, fusion into per-frame maps
(kept on disk past a bound, :class:`FrameMaps`), and the spill store that holds per-window
results until the video-level target is known."""

from videocam._interp import interpolation_matrix
from videocam.temporal.frames import FrameMaps
from videocam.temporal.store import RowStore
from videocam.temporal.windows import (
    FrameAccumulator,
    WindowFuser,
    iter_window_blocks,
    plan_windows,
)

__all__ = [
    "FrameAccumulator",
    "FrameMaps",
    "RowStore",
    "WindowFuser",
    "interpolation_matrix",
    "iter_window_blocks",
    "plan_windows",
]
