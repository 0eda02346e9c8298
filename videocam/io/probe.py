"""Container-level facts read with PyAV: codec, rotation, nominal frame rate, metadata tags, and
why a file that is not a usable video is not one.

Rotation convention (verified on files written with a known display matrix): FFmpeg's display
matrix angle, which PyAV reports as ``VideoFrame.rotation`` (and takes in
``VideoStream.set_display_rotation``), is counterclockwise. Players (and ``ffmpeg``'s autorotate,
which inserts ``transpose=clock`` for a matrix angle of -90) turn the coded picture by that angle
counterclockwise to show it. ``meta.rotation`` is the same turn expressed clockwise, the way the
old ``rotate`` tag and most tools state it: a phone video held upright is typically coded
landscape with a matrix angle of -90 (``tkhd`` matrix ``[0 1 0; -1 0 0; 0 0 1]``), so
``rotation == 90`` and the upright picture is ``np.rot90(coded, k=-1)``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

from videocam.errors import VideoOpenError

logger = logging.getLogger(__name__)

#: Demuxers that turn text into "video" (FFmpeg's tty demuxer renders ANSI art from any text file).
_TEXT_FORMATS = frozenset({"tty"})
#: Packets decoded, at most, to find the first frame (and its rotation) when the start is damaged.
_FIRST_FRAME_PACKETS = 64
#: Formats in which recordings are joined by concatenating files (DVR exports, captures of live
#: streams), so that the stream may change its picture size part-way: MPEG transport and program
#: streams and raw elementary streams.
_JOINABLE_FORMATS = frozenset({"mpegts", "mpeg", "mpegvideo", "h264", "hevc", "m4v"})


@dataclass(frozen=True)
class StreamInfo:
    """Facts about a file's first video stream that decord does not expose.

    Attributes:
        codec: codec name as FFmpeg spells it.
        rotation: clockwise display rotation, one of 0, 90, 180, 270 (see module docstring).
        fps: the stream's average (else nominal) frame rate, None when unknown.
        index_frames: frame count the container's index states (0 when it states none).
        coded_size: (H, W) of the coded picture, before any rotation.
        size_change: where the picture size changes part-way, in words, or None (checked in
            joinable formats only, see :func:`find_size_change`).
    """

    codec: str
    rotation: int
    fps: Fraction | None
    index_frames: int = 0
    coded_size: tuple[int, int] | None = None
    size_change: str | None = None


def normalise_rotation(degrees: float | int | None) -> int:
    """Display rotation as one of 0, 90, 180, 270 (clockwise, as players apply it).

    Args:
        degrees: FFmpeg's display-matrix angle (counterclockwise), as ``VideoFrame.rotation``.
    """
    if degrees is None or degrees != degrees:  # None or NaN (a singular matrix)
        return 0
    return round(-float(degrees) / 90.0) % 4 * 90


def upright_turns(rotation: int) -> int:
    """``k`` of ``np.rot90(coded, k)`` that shows a frame coded with ``rotation`` upright."""
    return (-(rotation // 90)) % 4


def stream_fps(stream: object) -> Fraction | None:
    """The stream's average frame rate, else its nominal one."""
    for name in ("average_rate", "guessed_rate", "base_rate"):
        rate = getattr(stream, name, None)
        if rate:
            return Fraction(rate)
    return None


def ffmpeg_reason(exc: BaseException) -> str:
    """The reason of an FFmpeg error without PyAV's ``[Errno N] ...: 'path'`` decoration."""
    reason = getattr(exc, "strerror", None)
    if isinstance(reason, str) and reason.strip():
        return reason.strip()
    text = str(exc).strip()
    return text.splitlines()[-1] if text else type(exc).__name__


def mp4_boxes(path: Path) -> set[bytes] | None:
    """The top-level box types of an ISO-BMFF file (mp4, mov, m4a...), None for other files.

    Reads box headers only (a few small reads), so it is cheap even for long videos.
    """
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            head = handle.read(12)
            if len(head) < 12 or head[4:8] not in (b"ftyp", b"styp", b"moov", b"mdat", b"free"):
                return None
            offset, seen = 0, set()
            for _ in range(10_000):
                handle.seek(offset)
                header = handle.read(16)
                if len(header) < 8:
                    break
                box_size = int.from_bytes(header[:4], "big")
                kind = header[4:8]
                if box_size == 1 and len(header) >= 16:
                    box_size = int.from_bytes(header[8:16], "big")
                elif box_size == 0:
                    box_size = size - offset
                if box_size < 8 or not (kind.isascii() and kind.isalnum()):
                    break  # damaged box structure: what was seen so far stands
                seen.add(kind)
                offset += box_size
                if offset >= size:
                    break
    except OSError:
        return None
    return seen


def open_reason(path: Path, exc: BaseException) -> str:
    """One-line reason why FFmpeg cannot open ``path``."""
    reason = ffmpeg_reason(exc)
    boxes = mp4_boxes(path)
    if boxes is not None and not boxes & {b"moov", b"moof"}:
        return "the mp4 index (moov atom) is missing: the file was cut short or never finished"
    if boxes is not None:
        return f"the mp4 header or index is damaged ({reason})"
    if "Invalid data" in reason:
        return f"not a video file, or a damaged one ({reason})"
    return reason


def open_container(path: Path) -> Any:
    """Open ``path`` with PyAV and check it has a real video stream.

    Returns:
        The open container (the caller closes it); its first video stream has a decoder
        context, so every caller may use ``streams.video[0].codec_context``.

    Raises:
        VideoOpenError: FFmpeg cannot open it, it is text, it has no video stream, or no
            decoder for it.
    """
    import av

    try:
        container = av.open(str(path))
    except av.FFmpegError as exc:
        raise VideoOpenError(f"{path}: cannot open video: {open_reason(path, exc)}") from exc
    except (OSError, ValueError) as exc:
        raise VideoOpenError(f"{path}: cannot open video: {ffmpeg_reason(exc)}") from exc
    try:
        if container.format.name in _TEXT_FORMATS:
            raise VideoOpenError(f"{path}: cannot open video: a text file, not a video")
        if not container.streams.video:
            kinds = sorted({s.type for s in container.streams})
            found = f" (it holds {', '.join(kinds)})" if kinds else ""
            raise VideoOpenError(f"{path}: no video stream{found}")
        if container.streams.video[0].codec_context is None:
            # FFmpeg found a video stream but no decoder for it: its codec parameters are
            # missing (a damaged header or index) or the codec is unknown to this build.
            raise VideoOpenError(
                f"{path}: cannot open video: its video stream has no codec FFmpeg can decode "
                "(a damaged header or index, or an unsupported codec)"
            )
    except BaseException:
        container.close()
        raise
    return container


def first_frame(container: Any, stream: Any) -> Any | None:
    """The first frame that decodes among the first packets, or None."""
    import av

    for count, packet in enumerate(container.demux(stream)):
        if count > _FIRST_FRAME_PACKETS:
            break
        try:
            frames = stream.decode(packet)
        except av.FFmpegError:
            continue
        if frames:
            return frames[0]
    return None


def probe_stream(path: Path) -> StreamInfo:
    """Codec, rotation, frame rate and indexed frame count of the first video stream.

    Raises:
        VideoOpenError: the file is not a video PyAV can open (see :func:`open_container`).
    """
    import av

    with open_container(path) as container:
        stream = container.streams.video[0]
        rotation = 0
        context = stream.codec_context
        coded_size = (context.height, context.width) if context.width and context.height else None
        try:
            frame = first_frame(container, stream)
        except (av.FFmpegError, OSError) as exc:
            logger.debug("%s: cannot decode a first frame: %s", path, exc)
            frame = None
        if frame is not None:
            rotation = normalise_rotation(getattr(frame, "rotation", 0))
            coded_size = (frame.height, frame.width)
        joinable = bool(set(container.format.name.split(",")) & _JOINABLE_FORMATS)
        return StreamInfo(
            codec=context.name,
            rotation=rotation,
            fps=stream_fps(stream),
            index_frames=int(stream.frames or 0),
            coded_size=coded_size,
            size_change=_size_change_of_file(str(path), *_file_key(path)) if joinable else None,
        )


def _file_key(path: Path) -> tuple[int, int]:
    """(size, modification time) of a file: what makes a cached scan of it stale."""
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


@lru_cache(maxsize=64)
def _size_change_of_file(path: str, size: int, mtime_ns: int) -> str | None:
    """:func:`find_size_change`, once per file version: an analysis opens its video more than
    once (analysis, keyframe images)."""
    return find_size_change(Path(path))


def find_size_change(path: Path) -> str | None:
    """Where the first video stream changes its coded picture size, in words, or None.

    Decodes keyframes only (a new size starts at one; the decoder skips the other frames), so
    it costs a small part of a full decode. Damaged keyframes are passed over.
    """
    import av

    with open_container(path) as container:
        stream = container.streams.video[0]
        stream.codec_context.skip_frame = "NONKEY"
        first: tuple[int, int] | None = None
        start = 0.0  # times are told from the first frame, as FrameSource.times_s counts them
        for packet in container.demux(stream):
            try:
                frames = stream.decode(packet)
            except av.FFmpegError:
                continue
            for frame in frames:
                size = (frame.width, frame.height)
                if first is None:
                    first = size
                    start = float(frame.time or 0.0)
                elif size != first:
                    at = f" at {float(frame.time) - start:.2f} s" if frame.time is not None else ""
                    return (
                        f"the picture changes size from {first[0]}x{first[1]} to "
                        f"{size[0]}x{size[1]}{at}"
                    )
    return None


class PacketScan(NamedTuple):
    """What demuxing a video stream (without decoding it) finds."""

    #: Distinct presentation times of the stream's frames, increasing.
    pts: list[int]
    #: Packets read whole (one the file ends in the middle of does not count).
    n_complete: int
    #: Packets whose presentation time an earlier packet already has (a joined file whose
    #: timestamps restart): their frames cannot be told apart from that one's and are left out.
    n_repeated: int


def scan_packets(container: Any, stream: Any, size: int) -> PacketScan:
    """Demux every packet of ``stream``; ``size`` is the file's size in bytes.

    A packet that the file ends in the middle of comes back short and flagged corrupt.
    """
    pts: set[int] = set()
    n_complete = 0
    n_repeated = 0
    for packet in container.demux(stream):
        if packet.size == 0 and packet.pos is None:
            continue  # the flush packet at the end (empty packets in the file do count)
        if packet.pts is not None:
            if int(packet.pts) in pts:
                n_repeated += 1
            pts.add(int(packet.pts))
        at_end = packet.pos is not None and packet.pos >= 0 and packet.pos + packet.size >= size
        if not (packet.is_corrupt and at_end):
            n_complete += 1
    return PacketScan(sorted(pts), n_complete, n_repeated)


def demuxed_frames(path: Path) -> int:
    """How many frames PyAV's demuxer finds in the first video stream (distinct presentation
    times, as :class:`~videocam.io.pyav_backend.PyAVSource` counts them), once per file
    version.

    Raises:
        VideoOpenError: as :func:`open_container`.
    """
    return _demuxed_frames_of_file(str(path), *_file_key(path))


@lru_cache(maxsize=64)
def _demuxed_frames_of_file(path: str, size: int, mtime_ns: int) -> int:
    import av

    with open_container(Path(path)) as container:
        try:
            pts = scan_packets(container, container.streams.video[0], size).pts
        except av.FFmpegError as exc:
            raise VideoOpenError(f"{path}: cannot read video: {ffmpeg_reason(exc)}") from exc
    return len(pts)


#: Most characters kept of one metadata tag's value (a tag can hold a whole text).
_TAG_CHARS = 500
#: Tags the muxer writes for its own bookkeeping, of no interest to whoever watches the video.
_MUXER_TAGS = frozenset(
    {"major_brand", "minor_version", "compatible_brands", "encoder", "handler_name", "vendor_id"}
)


def container_tags(path: Path) -> dict[str, str]:
    """The descriptive metadata tags of the container and its first video stream (``title``,
    ``creation_time``, ``comment``...; not the muxer's own ``major_brand``, ``encoder``...),
    container tags first; values cut to a few hundred characters.
    Best effort: ``{}`` when the file cannot be opened. The values are outside text: whoever
    shows them escapes them."""
    import av

    try:
        with av.open(str(path)) as container:
            tags = dict(container.metadata or {})
            if container.streams.video:
                for key, value in (container.streams.video[0].metadata or {}).items():
                    tags.setdefault(key, value)
    except (av.FFmpegError, OSError, ValueError) as exc:
        logger.debug("%s: cannot read metadata tags: %s", path, exc)
        return {}
    return {
        str(k): str(v)[:_TAG_CHARS]
        for k, v in tags.items()
        if k not in _MUXER_TAGS and (k, v) != ("language", "und")
    }
