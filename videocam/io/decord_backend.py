"""decord backend: the fast default for files decord can index (mp4, mkv, avi, webm...).

decord resizes inside the decoder, which is both faster than PyAV and memory-flat. At native size
its ``get_batch`` grows resident memory by about 1 GB over a 5-minute video (decord issues
#197/#208), so native-size streaming goes frame by frame instead.

PyAV is the gatekeeper: a file is probed with PyAV first (silently), so a file that is not a
video gets PyAV's reason and decord never logs its own complaints about it. decord's bundled
FFmpeg logs decoding errors straight to the process's stderr; they are silenced once decord is
used. When decord fails on damaged data mid-stream (its decoder thread stops and every later frame
fails), PyAV, which skips just the damaged frames, decodes the rest of that read and every later
one; frames come out identical either way on intact data.

decord 0.6 applies the container's display rotation itself (its filter graph transposes the
picture, and ``width``/``height`` then describe the turned picture), so its frames are already
upright; that is checked at open for 90/270-degree videos (by the frame's shape) and the frames
are turned here should a decord build not do it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from videocam.errors import DecodeError, VideoOpenError
from videocam.io.base import FrameSource, Size, VideoMeta, check_video_path
from videocam.io.probe import probe_stream, upright_turns

logger = logging.getLogger(__name__)

_decord_quiet = False


def _quiet_decord() -> None:
    """Stop decord's bundled FFmpeg (its own copy, not PyAV's) from writing to stderr."""
    global _decord_quiet
    if _decord_quiet:
        return
    import decord.logging

    decord.logging.set_level(decord.logging.QUIET)
    _decord_quiet = True


def _decord_errors() -> tuple[type[BaseException], ...]:
    import decord

    # DECORDError is not a RuntimeError subclass: catch both.
    return (RuntimeError, decord.DECORDError)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    if not text:
        return type(exc).__name__
    # decord prefixes messages with "[time] file.cc:line: [path] " and may add a failed check
    # ("Check failed: call >= 0 (-1094995529 vs. 0) "); keep what is left.
    last = text.splitlines()[-1]
    last = last.split("] ")[-1].strip() or last
    last = re.sub(r"^\S+\.(?:cc|h):\d+:\s*", "", last)
    last = re.sub(r"Check failed: .*? vs\. [^)]*\)\s*", "", last)
    return last.strip() or type(exc).__name__


class DecordSource(FrameSource):
    """A video decoded with decord."""

    backend = "decord"

    def __init__(self, path: str | Path, *, num_threads: int = 0) -> None:
        super().__init__(check_video_path(path))
        self._num_threads = num_threads
        self._readers: dict[Size | None, Any] = {}
        self._pyav: FrameSource | None = None  # for sizes decord cannot resize, damaged data
        self._pyav_sizes: set[Size] = set()
        self._pyav_only = False  # set once decord failed on damaged data
        self._fallback_reason: str | None = None
        self._decord_turns = 0  # quarter turns from decord's frames to upright
        info = probe_stream(self.path)  # VideoOpenError, with PyAV's reason, for non-videos
        #: Where the picture size changes part-way (see probe.find_size_change): decord then
        #: returns wrong frames without an error, so ``open_video("auto")`` takes PyAV.
        self.size_change = info.size_change
        _quiet_decord()
        errors = _decord_errors()
        try:
            reader = self._reader(None)
        except errors as exc:
            self._close()
            raise self._open_error(exc) from exc
        try:
            n_frames = len(reader)
            if n_frames < 1:
                raise VideoOpenError(f"{self.path}: no video frames")
            if info.index_frames and n_frames < info.index_frames:
                # A file cut short exactly at a packet boundary: decord reads it as a shorter
                # video, without an error. PyAV says whether it is truncated (VideoOpenError).
                self._delegate_to_pyav(
                    f"decord indexes {n_frames} of the {info.index_frames} frames its index lists"
                )
                return
            stamps = np.asarray(reader.get_frame_timestamp(np.arange(n_frames)), dtype=np.float64)
            avg_fps = float(reader.get_avg_fps())
            height, width = reader[0].shape[:2]
            reader.seek(0)
        except errors as exc:
            # decord opened the container but fails on its data (its decoder thread reports
            # damaged packets at a moment that varies from run to run): PyAV decodes it all.
            self._delegate_to_pyav(f"decord cannot decode the first frames ({_reason(exc)})")
            return
        except VideoOpenError:
            self._close()
            raise
        # decord reports float32 seconds: round to the microsecond, as the PyAV backend does.
        self._times = np.round(stamps[:, 0] - stamps[0, 0], 6)
        self._times.setflags(write=False)
        fps = info.fps or Fraction(avg_fps).limit_denominator(1001)
        if info.rotation % 180 and (height, width) == info.coded_size and height != width:
            # This decord build did not turn the picture: do it here.
            self._decord_turns = upright_turns(info.rotation)
            height, width = width, height
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
            codec=info.codec,
            rotation=info.rotation,
            backend=self.backend,
        )

    def _open_error(self, exc: BaseException) -> VideoOpenError:
        """Why decord cannot open the file: PyAV's reason when PyAV fails too (truncated...)."""
        from videocam.io.pyav_backend import PyAVSource

        try:
            PyAVSource(self.path).close()
        except VideoOpenError as pyav_error:
            return pyav_error
        return VideoOpenError(f"{self.path}: decord cannot open it: {_reason(exc)}")

    def _delegate_to_pyav(self, reason: str) -> None:
        """Open-time failure on damaged data (``reason``): every read goes to PyAV, and the
        metadata and times are PyAV's."""
        from videocam.io.pyav_backend import PyAVSource

        self._readers.clear()
        try:
            fallback = PyAVSource(self.path)
        except VideoOpenError:
            self._close()
            raise
        fallback._log = self._log
        self._pyav = fallback
        self._pyav_only = True
        self._fallback_reason = reason
        logger.info("%s: %s; decoding with PyAV", self.path, self._fallback_reason)
        self._meta = replace(fallback.meta, backend=fallback.backend)
        self._times = fallback.times_s

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
        Any other failure is damaged data: PyAV decodes from then on.
        """
        if self._pyav_only:
            return False
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
            if "must exactly match" not in str(exc):
                self._switch_to_pyav(exc, f"frame 0 at {size[1]}x{size[0]}")
                return False
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

            try:
                fallback = PyAVSource(self.path)
            except VideoOpenError as exc:
                raise DecodeError(str(exc)) from exc
            if fallback.meta.n_frames != self.meta.n_frames:
                fallback.close()
                raise DecodeError(
                    f"{self.path}: damaged file: decord indexes {self.meta.n_frames} frames, "
                    f"PyAV {fallback.meta.n_frames}"
                )
            fallback._log = self._log  # one record of damaged frames for both decoders
            self._pyav = fallback
        return self._pyav

    def _switch_to_pyav(self, exc: BaseException, what: str) -> None:
        """After decord failed on ``what``: PyAV decodes from here on."""
        reason = f"decord cannot decode {what} ({_reason(exc)})"
        logger.info("%s: %s; decoding with PyAV from there on", self.path, reason)
        try:
            self._fallback()
        except DecodeError as fallback_error:
            raise fallback_error from exc
        self._pyav_only = True
        self._readers.clear()
        if self._fallback_reason is None:
            self._fallback_reason = reason

    @property
    def fallback_reason(self) -> str | None:
        return self._fallback_reason

    @property
    def _turns(self) -> int:
        return self._decord_turns

    def _pyav_read_sorted(
        self, indices: np.ndarray, size: Size | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``_read_sorted`` by PyAV, in decord's orientation and size."""
        fallback = self._fallback()
        turns = (fallback._turns - self._turns) % 4
        got, frames = fallback._read_sorted(indices, _turned_size(size, turns))
        return got, _turn(frames, turns)

    def _pyav_iter_sorted(
        self, indices: np.ndarray, size: Size | None, batch_size: int
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``_iter_sorted`` by PyAV, in decord's orientation and size."""
        fallback = self._fallback()
        turns = (fallback._turns - self._turns) % 4
        for got, frames in fallback._iter_sorted(indices, _turned_size(size, turns), batch_size):
            yield got, _turn(frames, turns)

    @property
    def meta(self) -> VideoMeta:
        return self._meta

    @property
    def times_s(self) -> np.ndarray:
        return self._times

    def _read_sorted(self, indices: np.ndarray, size: Size | None) -> tuple[np.ndarray, np.ndarray]:
        if self._pyav_only or not self._decord_resizes(size):
            return self._pyav_read_sorted(indices, size)
        try:
            return indices, np.asarray(self._reader(size).get_batch(indices.tolist()).asnumpy())
        except _decord_errors() as exc:
            self._switch_to_pyav(exc, f"frames {indices[0]}..{indices[-1]}")
            return self._pyav_read_sorted(indices, size)

    def _iter_sorted(
        self, indices: np.ndarray, size: Size | None, batch_size: int
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        if self._pyav_only or not self._decord_resizes(size):
            yield from self._pyav_iter_sorted(indices, size, batch_size)
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
                self._switch_to_pyav(exc, f"frames {chunk[0]}..{chunk[-1]}")
                yield from self._pyav_iter_sorted(indices[start:], size, batch_size)
                return
            yield chunk, np.asarray(frames)

    def _close(self) -> None:
        self._readers.clear()
        if self._pyav is not None:
            self._pyav.close()


def _turned_size(size: Size | None, turns: int) -> Size | None:
    """The (H, W) that is ``size`` after ``turns`` quarter turns."""
    if size is None or turns % 2 == 0:
        return size
    return size[1], size[0]


def _turn(frames: np.ndarray, turns: int) -> np.ndarray:
    """uint8 (B, H, W, 3) frames turned ``turns`` quarter turns counterclockwise."""
    if turns == 0:
        return frames
    return np.ascontiguousarray(np.rot90(frames, turns, axes=(1, 2)))
