"""Which files are videos: the extensions taken as videos without a look inside, and the probe
that tells, for any other file, whether ``analyze`` would read it as a video and why not.

``analyze`` opens any file FFmpeg (PyAV) opens with a video stream; a folder search (``batch``)
takes the files with a :data:`VIDEO_EXTENSIONS` extension at once, leaves out still images by
their extension (:data:`STILL_IMAGE_EXTENSIONS`: FFmpeg would read one as a one-frame video),
and asks :func:`why_not_a_video` of every other file, which opens it as ``analyze`` does.
"""

from __future__ import annotations

from pathlib import Path

from videocam.errors import VideoOpenError
from videocam.io.base import check_video_path
from videocam.io.probe import open_container

__all__ = ["STILL_IMAGE_EXTENSIONS", "VIDEO_EXTENSIONS", "why_not_a_video"]

#: File extensions (lower case) of video containers, animated images and raw video streams
#: FFmpeg decodes: a folder search takes these files without opening them.
VIDEO_EXTENSIONS: frozenset[str] = frozenset(
    {
        ".mp4",
        ".m4v",
        ".mov",
        ".avi",
        ".mkv",
        ".webm",
        ".mpg",
        ".mpeg",
        ".m2v",
        ".ts",
        ".mts",
        ".m2ts",
        ".vob",
        ".wmv",
        ".asf",
        ".flv",
        ".f4v",
        ".3gp",
        ".3g2",
        ".ogv",
        ".mxf",
        ".dv",
        ".y4m",
        ".ivf",
        ".gif",
        ".apng",
    }
)

#: Still-image extensions: FFmpeg opens such a file as a one-frame "video", which ``analyze``
#: takes when named, but a folder of frames or photos is not a folder of videos.
STILL_IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".heic", ".ppm", ".pgm"}
)

#: FFmpeg demuxers of single images (``image2`` and the ``*_pipe`` family).
_STILL_FORMATS = ("image2",)


def why_not_a_video(path: str | Path) -> str | None:
    """None when ``analyze`` would open ``path`` as a video with motion; else why not, in one
    line without the file's name (empty, unreadable, not a video, a still image...).

    Opens the file as ``analyze`` does (headers only: cheap for any size of file).
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in STILL_IMAGE_EXTENSIONS:
        return f"a still image ({suffix}), not a video"
    try:
        check_video_path(p)
        with open_container(p) as container:
            demuxer = str(container.format.name)
    except VideoOpenError as exc:
        message = str(exc)
        prefix = f"{p}: "
        return message[len(prefix) :] if message.startswith(prefix) else message
    if demuxer in _STILL_FORMATS or demuxer.endswith("_pipe"):
        return f"a still image (FFmpeg reads it with {demuxer}), not a video"
    return None
