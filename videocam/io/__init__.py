"""Decoding: open a video with decord or PyAV behind one :class:`FrameSource` interface.

``open_video(path, backend="auto")`` picks decord and falls back to PyAV only where decord cannot
open the input (GIF, for one), fails on its first frames (damaged data), or would decode wrongly
(a joined stream whose picture size changes part-way); the choice is logged and shown in
``meta.backend``. Frames are returned upright (display rotation applied); damaged
frames are skipped and counted (see :mod:`videocam.io.base`).
"""

from __future__ import annotations

import logging
from pathlib import Path

from videocam.errors import VideoOpenError
from videocam.io.base import (
    DecodeReport,
    FrameBatch,
    FrameSource,
    Size,
    VideoMeta,
    check_video_path,
    dense_frames,
    sample_indices,
    stand_ins,
)
from videocam.io.pyav_backend import PyAVSource, YUVColour, YUVFrame

logger = logging.getLogger(__name__)

BACKENDS: tuple[str, ...] = ("decord", "pyav")

__all__ = [
    "BACKENDS",
    "DecodeReport",
    "FrameBatch",
    "FrameSource",
    "PyAVSource",
    "Size",
    "VideoMeta",
    "YUVColour",
    "YUVFrame",
    "dense_frames",
    "open_video",
    "sample_indices",
    "stand_ins",
]


def open_video(path: str | Path, backend: str = "auto") -> FrameSource:
    """Open a video for reading.

    Args:
        path: the video file.
        backend: ``"decord"``, ``"pyav"``, or ``"auto"`` (decord, else PyAV where decord cannot
            open the file).

    Returns:
        An open :class:`FrameSource`; use it as a context manager.

    Raises:
        VideoOpenError: the file is missing, not a file, empty, or no backend can open it; the
            message names the file and the reason.
    """
    from videocam.io.decord_backend import DecordSource

    if backend not in ("auto", *BACKENDS):
        raise ValueError(f"backend must be 'auto', 'decord' or 'pyav', got {backend!r}")
    path = check_video_path(path)
    if backend == "decord":
        decord_only = DecordSource(path)
        if decord_only.size_change:
            logger.warning(
                "%s: %s; decord returns wrong frames after that point (use the PyAV backend)",
                path,
                decord_only.size_change,
            )
        return decord_only
    if backend == "pyav":
        return PyAVSource(path)
    try:
        decord_source = DecordSource(path)
    except VideoOpenError as decord_error:
        try:
            source = PyAVSource(path)
        except VideoOpenError as pyav_error:
            raise pyav_error from decord_error
        logger.info("%s: decord cannot open it (%s); decoding with PyAV", path, decord_error)
        return source
    if decord_source.size_change:
        # decord keeps the first size and returns wrong pictures after the change, silently;
        # PyAV decodes them and scales them to the video's size.
        decord_source.close()
        logger.info("%s: %s; decoding with PyAV", path, decord_source.size_change)
        return PyAVSource(path)
    if decord_source.fallback_reason is None:
        return decord_source
    # decord failed on the first frames (damaged data): PyAV alone, from the start.
    decord_source.close()
    return PyAVSource(path)
