"""From windows to frames: sliding-window planning and streaming fusion of window maps."""

from videocam._interp import interpolation_matrix
from videocam.temporal.windows import WindowFuser, plan_windows

__all__ = ["WindowFuser", "interpolation_matrix", "plan_windows"]
