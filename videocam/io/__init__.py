"""Decoding: open a video with decord or PyAV behind one :class:`FrameSource` interface.

``open_video(path, backend="auto")`` picks decord and takes PyAV only where decord cannot open
the input (GIF, for one), fails on its first frames (damaged data), or would decode wrongly (a
joined stream whose picture size changes part-way); PyAV also rescues decord part-way (sizes
decord cannot resize to, damaged data). :mod:`videocam.io.policy` owns these rules; every
source records the choice in ``source.decoder``, and :func:`decode_reproducibly` gives the same
frames on every run where decord fails on damaged data. Frames are returned upright (display
rotation applied); damaged frames are skipped and counted (see :mod:`videocam.io.base`).
"""

from __future__ import annotations

from videocam.io.base import (
    DecoderChoice,
    DecodeReport,
    DecoderRecord,
    FrameBatch,
    FrameSource,
    Size,
    VideoMeta,
    dense_frames,
    sample_indices,
    stand_ins,
)
from videocam.io.formats import STILL_IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, why_not_a_video
from videocam.io.policy import BACKEND_CHOICES, BACKENDS, decode_reproducibly, open_video
from videocam.io.pyav_backend import PyAVSource, YUVColour, YUVFrame

__all__ = [
    "BACKENDS",
    "BACKEND_CHOICES",
    "STILL_IMAGE_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "DecodeReport",
    "DecoderChoice",
    "DecoderRecord",
    "FrameBatch",
    "FrameSource",
    "PyAVSource",
    "Size",
    "VideoMeta",
    "YUVColour",
    "YUVFrame",
    "decode_reproducibly",
    "dense_frames",
    "open_video",
    "sample_indices",
    "stand_ins",
    "why_not_a_video",
]
