"""Container-level facts read with PyAV: codec, rotation, nominal frame rate."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path


@dataclass(frozen=True)
class StreamInfo:
    """Facts about a file's first video stream that decord does not expose."""

    codec: str
    rotation: int
    fps: Fraction | None


def normalise_rotation(degrees: float | int | None) -> int:
    """Display rotation as one of 0, 90, 180, 270 (clockwise, as players apply it)."""
    if degrees is None:
        return 0
    return round(-float(degrees) / 90.0) % 4 * 90


def stream_fps(stream: object) -> Fraction | None:
    """The stream's average frame rate, else its nominal one."""
    for name in ("average_rate", "guessed_rate", "base_rate"):
        rate = getattr(stream, name, None)
        if rate:
            return Fraction(rate)
    return None


def probe_stream(path: Path) -> StreamInfo | None:
    """Codec, rotation and frame rate of the first video stream, or None when PyAV can't tell."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return None
            stream = container.streams.video[0]
            rotation = 0
            for frame in container.decode(stream):
                rotation = normalise_rotation(getattr(frame, "rotation", 0))
                break
            return StreamInfo(
                codec=stream.codec_context.name, rotation=rotation, fps=stream_fps(stream)
            )
    except (av.FFmpegError, OSError, ValueError):
        return None
