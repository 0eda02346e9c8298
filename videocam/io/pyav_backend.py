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
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from videocam.errors import VideoOpenError
from videocam.io.base import FrameSource, Size, VideoMeta, check_video_path
from videocam.io.probe import (
    ffmpeg_reason,
    first_frame,
    normalise_rotation,
    open_container,
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
        try:
            container = self._open_container()
            pts, n_complete = self._scan_packets(container)
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

    def _scan_packets(self, container: Any) -> tuple[list[int], int]:
        """Presentation times of every frame, and the number of packets read whole.

        A packet that the file ends in the middle of comes back short and flagged corrupt.
        """
        size = self.path.stat().st_size
        pts: set[int] = set()
        n_complete = 0
        for packet in container.demux(self._stream):
            if packet.size == 0 and packet.pos is None:
                continue  # the flush packet at the end (empty packets in the file do count)
            if packet.pts is not None:
                pts.add(int(packet.pts))
            at_end = packet.pos is not None and packet.pos >= 0 and packet.pos + packet.size >= size
            if not (packet.is_corrupt and at_end):
                n_complete += 1
        return sorted(pts), n_complete

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

    def _decode_to(
        self, indices: np.ndarray, size: Size | None
    ) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(index, frame)`` for each wanted index that decodes (increasing), seeking when
        far ahead; the others are recorded as skipped."""
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
            if size is None:
                array = found.to_ndarray(format="rgb24")
            else:
                array = found.to_ndarray(width=size[1], height=size[0], format="rgb24")
            yield target, array

    # -- FrameSource ---------------------------------------------------------------------------
    @property
    def meta(self) -> VideoMeta:
        return self._meta

    @property
    def times_s(self) -> np.ndarray:
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
