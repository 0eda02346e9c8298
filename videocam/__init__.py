"""videocam: explain what a video classifier looks at, frame by frame.

Heavy dependencies (torch, torchvision, decord, PyAV) are imported lazily by the submodules that
need them, so ``import videocam`` stays cheap.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from videocam.errors import (
    CamError,
    ConfigError,
    DecodeError,
    LayerNotFoundError,
    ModelLoadError,
    OutputError,
    VideocamError,
    VideoOpenError,
)

try:
    #: The installed version: pyproject.toml's ``version``, the one place the number is written.
    __version__ = version("videocam")
except PackageNotFoundError:  # a source tree on sys.path that was never installed
    __version__ = "0+unknown"

__all__ = [
    "Analysis",
    "CamError",
    "ConfigError",
    "DecodeError",
    "LayerNotFoundError",
    "ModelLoadError",
    "OutputError",
    "VideoOpenError",
    "VideocamError",
    "__version__",
    "analyze",
    "compute_cam",
    "open_video",
]

if TYPE_CHECKING:
    from videocam.analysis import Analysis, analyze
    from videocam.cam import compute_cam
    from videocam.io import open_video

_LAZY = {
    "open_video": ("videocam.io", "open_video"),
    "compute_cam": ("videocam.cam", "compute_cam"),
    "analyze": ("videocam.analysis", "analyze"),
    "Analysis": ("videocam.analysis", "Analysis"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module_name, attr = _LAZY[name]
        return getattr(importlib.import_module(module_name), attr)
    raise AttributeError(f"module 'videocam' has no attribute {name!r}")
