"""decord backend: the fast default for files decord can index (mp4, mkv, avi, webm...).

decord resizes inside the decoder, which is both faster than PyAV and memory-flat. At native size
its ``get_batch`` grows resident memory by about 1 GB over a 5-minute video (decord issues
#197/#208), so native-size streaming goes frame by frame instead.
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
from videocam.io.probe import probe_stream

logger = logging.getLogger(__name__)


def _decord_errors() -> tuple[type[BaseException], ...]:
    import decord

    # DECORDError is not a RuntimeError subclass: catch both.
    return (RuntimeError, decord.DECORDError)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    if not text:
        return type(exc).__name__
    # decord prefixes messages with "[time] file.cc:line: [path] "; keep the last part.
    last = text.splitlines()[-1]
    return last.split("] ")[-1].strip() or last


class DecordSource(FrameSource):
    """A video decoded with decord."""

    backend = "decord"

    def __init__(self, path: str | Path, *, num_threads: int = 0) -> None:
        super().__init__(check_video_path(path))
        self._num_threads = num_threads
        self._readers: dict[Size | None, Any] = {}
        self._pyav: FrameSource | None = None  # for sizes decord cannot resize to
        self._pyav_sizes: set[Size] = set()
        errors = _decord_errors()
        try:
            reader = self._reader(None)
            n_frames = len(reader)
            if n_frames < 1:
                raise VideoOpenError(f"{self.path}: no video frames")
            stamps = np.asarray(reader.get_frame_timestamp(np.arange(n_frames)), dtype=np.float64)
            avg_fps = float(reader.get_avg_fps())
            height, width = reader[0].shape[:2]
            reader.seek(0)
        except errors as exc:
            self._close()
            raise VideoOpenError(f"{self.path}: cannot open video: {_reason(exc)}") from exc
        # decord reports float32 seconds: round to the microsecond, as the PyAV backend does.
        self._times = np.round(stamps[:, 0] - stamps[0, 0], 6)
        self._times.setflags(write=False)
        info = probe_stream(self.path)
        fps = info.fps if info and info.fps else Fraction(avg_fps).limit_denominator(1001)
        end = float(stamps[-1, 1] - stamps[0, 0])
        if end <= self._times[-1]:
            end = float(self._times[-1] + 1.0 / float(fps))
        self._meta = VideoMeta(
            path=self.path,
            fps=fps,
            n_frames=n_frames,
            width=int(width),
            height=int(height),
            duration_s=round(end, 6),
            codec=info.codec if info else "unknown",
            rotation=info.rotation if info else 0,
            backend=self.backend,
        )

    def _reader(self, size: Size | None) -> Any:
        reader = self._readers.get(size)
        if reader is None:
            import decord

            kwargs: dict[str, Any] = {"ctx": decord.cpu(0), "num_threads": self._num_threads}
            if size is not None:
                # Both must be given: -1 does not keep the aspect ratio.
                kwargs["height"], kwargs["width"] = size
            # Keep the native reader and one resized reader at most.
            for key in [k for k in self._readers if k is not None]:
                del self._readers[key]
            reader = decord.VideoReader(str(self.path), **kwargs)
            self._readers[size] = reader
        return reader

    def _decord_resizes(self, size: Size | None) -> bool:
        """Whether decord can resize to ``size``.

        decord 0.6 fails on some sizes ("DECORDArrayCopyFromTo: The size must exactly match",
        e.g. 96x64 -> 48x32); those sizes are decoded by PyAV instead, frame-exact all the same.
        """
        if size is None or size in self._readers:
            return True
        if size in self._pyav_sizes:
            return False
        try:
            self._reader(size).get_batch([0])
            self._readers[size].seek(0)
            return True
        except _decord_errors() as exc:
            self._readers.pop(size, None)
            logger.warning(
                "%s: decord cannot resize to %dx%d (%s); PyAV decodes that size",
                self.path,
                size[1],
                size[0],
                _reason(exc),
            )
            self._pyav_sizes.add(size)
            return False

    def _fallback(self) -> FrameSource:
        if self._pyav is None:
            from videocam.io.pyav_backend import PyAVSource

            self._pyav = PyAVSource(self.path)
        return self._pyav

    @property
    def meta(self) -> VideoMeta:
        return self._meta

    @property
    def times_s(self) -> np.ndarray:
        return self._times

    def _read_sorted(self, indices: np.ndarray, size: Size | None) -> np.ndarray:
        if not self._decord_resizes(size):
            return self._fallback().read(indices, size)
        try:
            return np.asarray(self._reader(size).get_batch(indices.tolist()).asnumpy())
        except _decord_errors() as exc:
            raise self._decode_error(exc, f"frames {indices[0]}..{indices[-1]}") from exc

    def _iter_sorted(
        self, indices: np.ndarray, size: Size | None, batch_size: int
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        if not self._decord_resizes(size):
            for batch in self._fallback().iter_batches(indices, size=size, batch_size=batch_size):
                yield batch.indices, batch.frames
            return
        errors = _decord_errors()
        reader = self._reader(size)
        for start in range(0, len(indices), batch_size):
            chunk = indices[start : start + batch_size]
            try:
                if size is not None:
                    frames = reader.get_batch(chunk.tolist()).asnumpy()
                else:
                    # Native-size get_batch leaks (see module docstring); frame by frame is flat.
                    frames = np.stack([reader[int(i)].asnumpy() for i in chunk])
            except errors as exc:
                raise self._decode_error(exc, f"frames {chunk[0]}..{chunk[-1]}") from exc
            yield chunk, np.asarray(frames)

    def _close(self) -> None:
        self._readers.clear()
        if self._pyav is not None:
            self._pyav.close()
