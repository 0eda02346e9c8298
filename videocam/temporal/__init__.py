"""From windows to frames: sliding-window planning and streaming fusion of window maps."""

from videocam.temporal.windows import WindowFuser, interpolation_matrix, plan_windows

__all__ = ["WindowFuser", "interpolation_matrix", "plan_windows"]
