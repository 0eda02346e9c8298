"""PyAV backend: decodes whatever FFmpeg can (GIF, odd containers) where decord cannot.

Timestamps come from demuxing the packets (no decoding), so they are the stream's own
presentation times, right for variable frame rates. Frames are matched to indices by their pts.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from videocam.errors import DecodeError, VideoOpenError
from videocam.io.base import FrameSource, Size, VideoMeta, check_video_path
from videocam.io.probe import normalise_rotation, stream_fps

logger = logging.getLogger(__name__)

#: Decode forward instead of seeking when the next wanted frame is at most this far ahead.
_SEEK_GAP = 48


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[-1] if text else type(exc).__name__


class PyAVSource(FrameSource):
    """A video decoded with PyAV (FFmpeg)."""

    backend = "pyav"

    def __init__(self, path: str | Path, *, threads: bool = True) -> None:
        import av

        super().__init__(check_video_path(path))
        self._threads = threads
        self._container: Any = None
        self._frames: Iterator[Any] | None = None
        self._next_index = 0  # index of the frame the decoder yields next
        try:
            container = self._open_container()
            pts = sorted({p.pts for p in container.demux(self._stream) if p.pts is not None})
            if not pts:
                raise VideoOpenError(f"{self.path}: no video frames")
            self._restart()
            first = next(self._frames_iter(), None)
            if first is None:
                raise VideoOpenError(f"{self.path}: no decodable video frames")
            height, width, rotation = first.height, first.width, first.rotation
            self._restart()
        except av.FFmpegError as exc:
            self._close()
            raise VideoOpenError(f"{self.path}: cannot open video: {_reason(exc)}") from exc
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
        self._meta = VideoMeta(
            path=self.path,
            fps=fps,
            n_frames=n_frames,
            width=int(width),
            height=int(height),
            duration_s=round(float(self._times[-1] + 1.0 / float(fps)), 6),
            codec=stream.codec_context.name,
            rotation=normalise_rotation(rotation),
            backend=self.backend,
        )

    # -- container handling --------------------------------------------------------------------
    def _open_container(self) -> Any:
        import av

        if self._container is not None:
            self._container.close()
        self._container = av.open(str(self.path))
        if not self._container.streams.video:
            raise VideoOpenError(f"{self.path}: no video stream")
        self._stream = self._container.streams.video[0]
        if self._threads:
            self._stream.thread_type = "AUTO"
        return self._container

    def _restart(self) -> None:
        """Decode from the first frame again (reopening is the one seek that always works)."""
        self._open_container()
        self._frames = None
        self._next_index = 0

    def _frames_iter(self) -> Iterator[Any]:
        if self._frames is None:
            self._frames = iter(self._container.decode(self._stream))
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
        self._next_index = -1  # unknown until the first frame arrives

    def _index_of(self, frame: Any) -> int | None:
        if frame.pts is None:
            return None
        return self._pts_index.get(int(frame.pts))

    def _decode_to(
        self, indices: np.ndarray, size: Size | None
    ) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(index, frame)`` for each wanted index (increasing), seeking when far ahead."""
        import av

        for target in indices.tolist():
            if target < self._next_index or target - self._next_index > _SEEK_GAP:
                self._seek_before(target)
            while True:
                try:
                    frame = next(self._frames_iter(), None)
                except av.FFmpegError as exc:
                    raise self._decode_error(exc, f"frame {target}") from exc
                if frame is None:
                    raise DecodeError(
                        f"{self.path}: stream ended before frame {target} "
                        f"(the index lists {self.meta.n_frames} frames)"
                    )
                index = self._index_of(frame)
                if self._next_index < 0 and (index is None or index > target):
                    # The seek landed after the target or somewhere unknown: decode from 0.
                    self._restart()
                    continue
                if index is None:
                    index = self._next_index
                self._next_index = index + 1
                if index == target:
                    break
                if index > target:
                    raise DecodeError(f"{self.path}: frame {target} is missing from the stream")
            if size is None:
                array = frame.to_ndarray(format="rgb24")
            else:
                array = frame.to_ndarray(width=size[1], height=size[0], format="rgb24")
            yield target, array

    # -- FrameSource ---------------------------------------------------------------------------
    @property
    def meta(self) -> VideoMeta:
        return self._meta

    @property
    def times_s(self) -> np.ndarray:
        return self._times

    def _read_sorted(self, indices: np.ndarray, size: Size | None) -> np.ndarray:
        return np.stack([array for _, array in self._decode_to(indices, size)])

    def _iter_sorted(
        self, indices: np.ndarray, size: Size | None, batch_size: int
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        buffer: list[np.ndarray] = []
        start = 0
        for _, array in self._decode_to(indices, size):
            buffer.append(array)
            if len(buffer) == batch_size:
                yield indices[start : start + batch_size], np.stack(buffer)
                start += batch_size
                buffer = []
        if buffer:
            yield indices[start:], np.stack(buffer)

    def _close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None
        self._frames = None
