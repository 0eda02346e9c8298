"""PyAV backend: decodes whatever FFmpeg can (GIF, odd containers) where decord cannot.

Timestamps come from demuxing the packets (no decoding), so they are the stream's own
presentation times, right for variable frame rates. Frames are matched to indices by their pts.

Packets are decoded one by one: a packet the decoder rejects costs its own frame only (the frame
is skipped and recorded, see :mod:`videocam.io.base`), where ``container.decode`` would stop the
whole read at the first damaged packet. The packet scan at open also tells a truncated file (the
index lists more frames than the data holds) from a damaged one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from videocam.errors import VideoOpenError
from videocam.io.base import FrameSource, Size, VideoMeta, check_size, check_video_path
from videocam.io.probe import (
    PacketScan,
    ffmpeg_reason,
    first_frame,
    normalise_rotation,
    open_container,
    scan_packets,
    stream_fps,
)

logger = logging.getLogger(__name__)

#: Decode forward instead of seeking when the next wanted frame is at most this far ahead.
_SEEK_GAP = 48


class PyAVSource(FrameSource):
    """A video decoded with PyAV (FFmpeg)."""

    backend = "pyav"

    def __init__(self, path: str | Path, *, threads: bool = True) -> None:
        import av

        super().__init__(check_video_path(path))
        self._threads = threads
        self._container: Any = None
        self._frames: Iterator[Any] | None = None
        self._next_index = 0  # index of the frame the decoder yields next (-1: unknown)
        self._held: tuple[int, Any] | None = None  # a frame decoded past the last target
        self._first_colour: _FrameColour | None = None
        self._colour: YUVColour | None = None
        try:
            container = self._open_container()
            scan = self._scan_packets(container)
            pts, n_complete = scan.pts, scan.n_complete
            self._log.repeated_timestamps = scan.n_repeated
            if scan.n_repeated:
                logger.warning(
                    "%s: %d frame(s) repeat an earlier frame's timestamp (timestamps restart "
                    "part-way) and are left out",
                    self.path,
                    scan.n_repeated,
                )
            if not pts:
                raise VideoOpenError(f"{self.path}: no video frames")
            index_frames = int(self._stream.frames or 0)
            if index_frames and n_complete < index_frames:
                raise VideoOpenError(
                    f"{self.path}: file is truncated: its index lists {index_frames} frames but "
                    f"the data ends after {n_complete}"
                )
            self._restart()
            first = first_frame(self._container, self._stream)
            context = self._stream.codec_context
            if first is not None:
                height, width, rotation = first.height, first.width, first.rotation
                self._first_colour = _FrameColour.of(first)
            elif context.width and context.height:
                # The first packets are damaged; their frames will be skipped like any other.
                height, width, rotation = context.height, context.width, 0
            else:
                raise VideoOpenError(f"{self.path}: no decodable video frames")
            self._restart()
        except av.FFmpegError as exc:
            self._close()
            raise VideoOpenError(f"{self.path}: cannot open video: {ffmpeg_reason(exc)}") from exc
        except VideoOpenError:
            self._close()
            raise
        stream = self._stream
        time_base = stream.time_base or Fraction(1, 1)
        pts_arr = np.asarray(pts, dtype=np.int64)
        self._pts = pts_arr
        self._pts_index = {int(p): i for i, p in enumerate(pts)}
        self._times = np.round((pts_arr - pts_arr[0]).astype(np.float64) * float(time_base), 6)
        self._times.setflags(write=False)
        n_frames = len(pts)
        # FFmpeg's average rate (frames / duration); measured from the timestamps when absent.
        fps = stream_fps(stream)
        if fps is None and n_frames > 1 and self._times[-1] > 0:
            fps = (Fraction(n_frames - 1) / Fraction(float(self._times[-1]))).limit_denominator(
                1001
            )
        fps = fps or Fraction(25)
        rotation = normalise_rotation(rotation)
        if rotation % 180:
            height, width = width, height
        self._meta = VideoMeta(
            path=self.path,
            fps=fps,
            n_frames=n_frames,
            width=int(width),
            height=int(height),
            duration_s=round(float(self._times[-1] + 1.0 / float(fps)), 6),
            codec=stream.codec_context.name,
            rotation=rotation,
            backend=self.backend,
        )

    # -- container handling --------------------------------------------------------------------
    def _open_container(self) -> Any:
        if self._container is not None:
            self._container.close()
            self._container = None
        self._container = open_container(self.path)
        self._stream = self._container.streams.video[0]
        if self._threads:
            self._stream.thread_type = "AUTO"
        return self._container

    def _scan_packets(self, container: Any) -> PacketScan:
        """Presentation times of every frame, packets read whole, timestamps repeated."""
        return scan_packets(container, self._stream, self.path.stat().st_size)

    def _restart(self) -> None:
        """Decode from the first frame again (reopening is the one seek that always works)."""
        self._open_container()
        self._frames = None
        self._held = None
        self._next_index = 0

    def _decoded_frames(self) -> Iterator[Any]:
        """Frames of the stream, packet by packet; a packet the decoder rejects is passed over.

        Errors reading the file (not decoding it) propagate.
        """
        import av

        stream = self._stream
        for packet in self._container.demux(stream):
            try:
                frames = stream.decode(packet)
            except av.FFmpegError as exc:
                logger.debug("%s: packet at pts %s: %s", self.path, packet.pts, exc)
                continue
            yield from frames

    def _frames_iter(self) -> Iterator[Any]:
        if self._frames is None:
            self._frames = self._decoded_frames()
        return self._frames

    def _seek_before(self, index: int) -> None:
        """Position the decoder at a keyframe at or before ``index``."""
        import av

        if index == 0:
            self._restart()
            return
        try:
            self._container.seek(
                int(self._pts[index]), stream=self._stream, backward=True, any_frame=False
            )
        except (av.FFmpegError, OSError, ValueError):
            self._restart()
            return
        self._frames = None
        self._held = None
        self._next_index = -1  # unknown until the first frame arrives

    def _index_of(self, frame: Any) -> int | None:
        if frame.pts is None:
            return None
        return self._pts_index.get(int(frame.pts))

    def _next_frame(self, target: int) -> tuple[int, Any] | None:
        """The next decoded frame and its index, or None at the end of the stream."""
        import av

        while True:
            try:
                frame = next(self._frames_iter(), None)
            except av.FFmpegError as exc:
                raise self._decode_error(exc, f"frame {target}") from exc
            if frame is None:
                return None
            index = self._index_of(frame)
            if self._next_index < 0 and (index is None or index > target):
                # The seek landed after the target or somewhere unknown: decode from 0.
                self._restart()
                continue
            if index is None:
                index = self._next_index
            self._next_index = index + 1
            return index, frame

    def _decode_frames(self, indices: np.ndarray) -> Iterator[tuple[int, Any]]:
        """Yield ``(index, av.VideoFrame)`` for each wanted index that decodes (increasing),
        seeking when far ahead; the others are recorded as skipped."""
        wanted = indices.tolist()
        for position, target in enumerate(wanted):
            found: Any = None
            held = self._held
            if held is not None and held[0] >= target:
                if held[0] == target:
                    found, self._held = held[1], None
            else:
                self._held = None
                if target < self._next_index or target - self._next_index > _SEEK_GAP:
                    self._seek_before(target)
                while True:
                    decoded = self._next_frame(target)
                    if decoded is None:
                        # The stream ended: this frame and every later one asked for are lost.
                        for lost in wanted[position:]:
                            self._skip(lost)
                        self._frames = None
                        self._next_index = self.meta.n_frames  # the next read seeks
                        return
                    index, frame = decoded
                    if index == target:
                        found = frame
                        break
                    if index > target:
                        self._held = (index, frame)
                        break
            if found is None:
                self._skip(target)
                continue
            if found.is_corrupt:
                self._flag_corrupt(target)
            if (found.height, found.width) != self._coded_frame_size:
                self._note_size(target, found.width, found.height)
            yield target, found

    def _decode_to(
        self, indices: np.ndarray, size: Size | None
    ) -> Iterator[tuple[int, np.ndarray]]:
        """:meth:`_decode_frames` as RGB arrays of ``size`` (coded orientation; None: the
        video's own size, to which frames after a mid-stream resolution change are scaled)."""
        height, width = size if size is not None else self._coded_frame_size
        for target, frame in self._decode_frames(indices):
            if (frame.height, frame.width) == (height, width):
                yield target, frame.to_ndarray(format="rgb24")
            else:
                yield target, frame.to_ndarray(width=width, height=height, format="rgb24")

    @property
    def _coded_frame_size(self) -> Size:
        """(H, W) of the video's frames as coded (before the display rotation)."""
        height, width = self.meta.height, self.meta.width
        return (width, height) if self._turns % 2 else (height, width)

    # -- Y'CbCr planes --------------------------------------------------------------------------
    @property
    def yuv_colour(self) -> YUVColour:
        """How the planes of :meth:`iter_yuv420` encode colour (fixed for the whole stream)."""
        if self._colour is None:
            self._colour = _choose_colour(self._first_colour, self.meta.height, self.meta.width)
        return self._colour

    def iter_yuv420(
        self, indices: np.ndarray | None = None, *, size: Size | None = None
    ) -> Iterator[YUVFrame]:
        """Stream frames as upright 8-bit Y'CbCr 4:2:0 planes, for re-encoding without RGB.

        The common case (an 8-bit 4:2:0 limited-range source at its own size) costs no
        conversion: the planes are views of the decoder's own frame. Anything else (other pixel
        formats, full range, RGB or palette sources, BT.2020 and other matrices, a resize) is
        converted by swscale to limited-range 4:2:0 in :attr:`yuv_colour`'s matrix.

        Args:
            indices: increasing frame indices; all frames when None.
            size: (H, W) of the upright picture, or None for the video's own size.

        Yields:
            :class:`YUVFrame` in frame order; frames that cannot be decoded are left out and
            recorded as in :meth:`iter_batches`.

        Raises:
            DecodeError: the file is truncated, or not one of the frames asked for decodes.
        """
        self._check_open()
        wanted = self._stream_indices(indices, "iter_yuv420")
        if len(wanted) == 0:
            return
        colour = self.yuv_colour
        coded = self._coded_size(check_size(size)) or self._coded_frame_size
        turns = self._turns
        convert = _PlaneConverter(colour, coded)
        times = self.times_s
        n_yielded = 0
        for index, frame in self._decode_frames(wanted):
            planes = convert(frame)
            if turns:
                planes = tuple(np.rot90(plane, turns) for plane in planes)  # type: ignore[assignment]
            n_yielded += 1
            yield YUVFrame(index, float(times[index]), *planes)
        if n_yielded == 0:
            raise self._nothing_decoded(len(wanted))

    # -- FrameSource ---------------------------------------------------------------------------
    @property
    def meta(self) -> VideoMeta:
        """What the container says about the video."""
        return self._meta

    @property
    def times_s(self) -> np.ndarray:
        """Each frame's presentation time in seconds."""
        return self._times

    def _read_sorted(self, indices: np.ndarray, size: Size | None) -> tuple[np.ndarray, np.ndarray]:
        got: list[int] = []
        arrays: list[np.ndarray] = []
        for index, array in self._decode_to(indices, size):
            got.append(index)
            arrays.append(array)
        if not arrays:
            return np.empty(0, dtype=np.int64), np.empty((0, 0, 0, 3), dtype=np.uint8)
        return np.asarray(got, dtype=np.int64), np.stack(arrays)

    def _iter_sorted(
        self, indices: np.ndarray, size: Size | None, batch_size: int
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        got: list[int] = []
        buffer: list[np.ndarray] = []
        for index, array in self._decode_to(indices, size):
            got.append(index)
            buffer.append(array)
            if len(buffer) == batch_size:
                yield np.asarray(got, dtype=np.int64), np.stack(buffer)
                got, buffer = [], []
        if buffer:
            yield np.asarray(got, dtype=np.int64), np.stack(buffer)

    def _close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None
        self._frames = None
        self._held = None


# -- Y'CbCr planes ----------------------------------------------------------------------------

#: AVColorSpace values (FFmpeg's ``AVCOL_SPC_*``).
_SPC_RGB, _SPC_BT709, _SPC_UNSPECIFIED, _SPC_BT470BG, _SPC_SMPTE170M = 0, 1, 2, 5, 6
#: AVColorRange values.
_RANGE_MPEG, _RANGE_JPEG = 1, 2


@dataclass(frozen=True)
class YUVColour:
    """The colour description of :meth:`PyAVSource.iter_yuv420`'s planes (limited range).

    Attributes:
        matrix: ``"bt709"`` or ``"bt601"``: the Y'CbCr matrix of the planes.
        colorspace, primaries, trc: FFmpeg's ``AVCOL_*`` values to tag an encoded stream with:
            the matrix (1 BT.709, 5 BT.470BG or 6 SMPTE 170M for BT.601) and the source's own
            primaries and transfer (2, unspecified, when the source does not say).
    """

    matrix: str
    colorspace: int
    primaries: int
    trc: int


@dataclass(frozen=True)
class YUVFrame:
    """One upright frame as 8-bit Y'CbCr 4:2:0 planes (may be read-only views of the decoder's
    buffers: copy before changing them).

    Attributes:
        index: source frame index.
        time_s: presentation time.
        y: uint8, shape (H, W).
        u, v: uint8, shape ((H + 1) // 2, (W + 1) // 2): Cb and Cr.
    """

    index: int
    time_s: float
    y: np.ndarray = field(repr=False)
    u: np.ndarray = field(repr=False)
    v: np.ndarray = field(repr=False)


@dataclass(frozen=True)
class _FrameColour:
    """What a decoded frame says about its colour."""

    pix_fmt: str
    colorspace: int
    color_range: int
    primaries: int
    trc: int

    @classmethod
    def of(cls, frame: Any) -> _FrameColour:
        return cls(
            pix_fmt=frame.format.name,
            colorspace=int(frame.colorspace),
            color_range=int(frame.color_range),
            primaries=int(frame.color_primaries),
            trc=int(frame.color_trc),
        )


def _choose_colour(first: _FrameColour | None, height: int, width: int) -> YUVColour:
    """Keep the source's matrix where it is BT.709 or BT.601; otherwise (untagged, RGB, BT.2020
    and the rest) pick what players assume for an untagged video of this size: BT.709 for HD
    (width >= 1280 or height > 576), BT.601 below."""
    space = first.colorspace if first is not None else _SPC_UNSPECIFIED
    primaries = first.primaries if first is not None else _SPC_UNSPECIFIED
    trc = first.trc if first is not None else _SPC_UNSPECIFIED
    if space == _SPC_BT709:
        return YUVColour("bt709", _SPC_BT709, primaries, trc)
    if space in (_SPC_BT470BG, _SPC_SMPTE170M):
        return YUVColour("bt601", space, primaries, trc)
    if width >= 1280 or height > 576:
        return YUVColour("bt709", _SPC_BT709, primaries, trc)
    return YUVColour("bt601", _SPC_SMPTE170M, primaries, trc)


class _PlaneConverter:
    """Decoded frame -> (Y, Cb, Cr) planes in the chosen colour, at the coded ``size`` (frames
    of another size, after a mid-stream resolution change, are scaled to it)."""

    def __init__(self, colour: YUVColour, size: Size) -> None:
        import av

        self.colour = colour
        self.size = size
        spaces = av.video.reformatter.Colorspace
        self._dst_space = spaces.ITU709 if colour.matrix == "bt709" else spaces.ITU601
        self._reformatter = av.video.reformatter.VideoReformatter()

    def _as_is(self, frame: Any) -> bool:
        """Whether the decoder's planes are already what is wanted."""
        if frame.format.name != "yuv420p" or frame.color_range == _RANGE_JPEG:
            return False
        if (frame.height, frame.width) != tuple(self.size):
            return False
        space = int(frame.colorspace)
        if space == _SPC_UNSPECIFIED:
            return True  # the matrix was chosen for the untagged source: no conversion
        if self.colour.matrix == "bt709":
            return space == _SPC_BT709
        return space in (_SPC_BT470BG, _SPC_SMPTE170M)

    def __call__(self, frame: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if not self._as_is(frame):
            untagged = int(frame.colorspace) in (_SPC_UNSPECIFIED, _SPC_RGB)
            full = frame.color_range == _RANGE_JPEG or frame.format.name.startswith("yuvj")
            height, width = self.size
            frame = self._reformatter.reformat(
                frame,
                width=width,
                height=height,
                format="yuv420p",
                # An untagged Y'CbCr source is read with the matrix chosen for it (swscale
                # would assume BT.601); RGB sources ignore it.
                src_colorspace=self._dst_space if untagged else None,
                dst_colorspace=self._dst_space,
                src_color_range=_RANGE_JPEG if full else _RANGE_MPEG,
                dst_color_range=_RANGE_MPEG,
            )
        return plane_view(frame, 0), plane_view(frame, 1), plane_view(frame, 2)


def plane_view(frame: Any, i: int) -> np.ndarray:
    """Plane ``i`` of an 8-bit planar ``av.VideoFrame`` as a 2-D uint8 view (no copy; writing
    to it writes the frame)."""
    plane = frame.planes[i]
    rows = np.frombuffer(plane, dtype=np.uint8).reshape(-1, plane.line_size)
    return rows[: plane.height, : plane.width]
