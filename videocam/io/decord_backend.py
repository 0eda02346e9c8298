"""decord backend: the fast default for files decord can index (mp4, mkv, avi, webm...).

decord resizes inside the decoder, which is both faster than PyAV and memory-flat. At native size
its ``get_batch`` grows resident memory by about 1 GB over a 5-minute video (decord issues
#197/#208), so native-size streaming goes frame by frame instead.

This module is decord alone: what happens when decord cannot do something is decided in
:mod:`videocam.io.policy`, which is told by typed errors. :class:`DecordSource` raises
:class:`_DecordUnsuitable` from ``__init__`` when decord opens the file but should not read it
(its index is shorter than the container's, or its first frames fail), :class:`_DecordCannotOpen`
when decord cannot open it at all, :class:`_CannotResize` for a size decord 0.6 cannot resize to,
and :class:`_DecordFailure` when it fails on damaged data part-way (its decoder thread stops, and
every later frame fails).

PyAV is the gatekeeper: a file is probed with PyAV first (silently), so a file that is not a
video gets PyAV's reason and decord never logs its own complaints about it. decord's bundled
FFmpeg logs decoding errors straight to the process's stderr; they are silenced once decord is
used.

decord 0.6 applies the container's display rotation itself (its filter graph transposes the
picture, and ``width``/``height`` then describe the turned picture), so its frames are already
upright; that is checked at open for 90/270-degree videos (by the frame's shape) and the frames
are turned here should a decord build not do it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from videocam.errors import DecodeError, VideoOpenError
from videocam.io.base import FrameSource, Size, VideoMeta, check_video_path
from videocam.io.probe import demuxed_frames, probe_stream, upright_turns

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


class _DecordCannotOpen(VideoOpenError):
    """decord cannot open the file at all (the container is fine for PyAV's probe)."""

    def __init__(self, path: Path, detail: str) -> None:
        super().__init__(f"{path}: decord cannot open it: {detail}")
        #: decord's own reason, without the path.
        self.detail = detail


class _DecordUnsuitable(VideoOpenError):
    """decord opens the file but must not decode it: the policy gives it all to PyAV."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        #: Why, in words, without the path.
        self.reason = reason


class _DecordFailure(DecodeError):
    """decord failed on damaged data part-way: its decoder thread has stopped, so this read
    and every later one would fail (and where it stops varies from run to run)."""

    def __init__(self, path: Path, what: str, detail: str) -> None:
        super().__init__(f"{path}: decord cannot decode {what} ({detail})")
        #: The frames of the read that failed, in words (``"frames 32..47"``).
        self.what = what
        #: decord's own reason.
        self.detail = detail

    @property
    def reason(self) -> str:
        """The failure in words, without the path."""
        return f"decord cannot decode {self.what} ({self.detail})"


class _CannotResize(DecodeError):
    """decord 0.6 cannot resize to ``size`` ("DECORDArrayCopyFromTo: The size must exactly
    match", e.g. 96x64 -> 48x32); every frame decodes at other sizes."""

    def __init__(self, path: Path, size: Size, detail: str) -> None:
        super().__init__(f"{path}: decord cannot resize to {size[1]}x{size[0]} ({detail})")
        #: (H, W) asked for, in decord's orientation.
        self.size = size
        #: decord's own reason.
        self.detail = detail


class DecordSource(FrameSource):
    """A video decoded with decord, and nothing else (see the module docstring for the typed
    errors that tell :mod:`videocam.io.policy` when another decoder must step in)."""

    backend = "decord"

    def __init__(self, path: str | Path, *, num_threads: int = 0) -> None:
        """Open ``path`` with decord.

        Raises:
            VideoOpenError: PyAV's probe says it is not a usable video (with PyAV's reason),
                or it has no frames.
            _DecordCannotOpen: decord cannot open it.
            _DecordUnsuitable: decord opens it but indexes fewer frames than the container
                lists (a file cut short at a packet boundary: PyAV says whether it is
                truncated), or fails on its first frames (damaged data).
        """
        super().__init__(check_video_path(path))
        self._num_threads = num_threads
        self._readers: dict[Size | None, Any] = {}
        self._unresizable: dict[Size, str] = {}  # size -> decord's reason
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
            raise _DecordCannotOpen(self.path, _reason(exc)) from exc
        try:
            n_frames = len(reader)
            if n_frames < 1:
                raise VideoOpenError(f"{self.path}: no video frames")
            if info.index_frames and n_frames < info.index_frames:
                # A file cut short exactly at a packet boundary: decord reads it as a shorter
                # video, without an error.
                raise _DecordUnsuitable(
                    self.path,
                    f"decord indexes {n_frames} of the {info.index_frames} frames its index lists",
                )
            if (
                not info.index_frames
                and info.size_change is None  # the policy decides on those (PyAV for auto)
                and n_frames != (demuxed := demuxed_frames(self.path))
            ):
                # No frame count in the container's index (mkv, ts...): decord and PyAV must
                # see the same frames, or the render pass (PyAV) would not match the maps.
                # Duplicated or damaged packets make decord count frames PyAV does not.
                raise _DecordUnsuitable(
                    self.path,
                    f"decord indexes {n_frames} frames, PyAV's demuxer finds {demuxed}",
                )
            stamps = np.asarray(reader.get_frame_timestamp(np.arange(n_frames)), dtype=np.float64)
            avg_fps = float(reader.get_avg_fps())
            height, width = reader[0].shape[:2]
            reader.seek(0)
        except errors as exc:
            # decord opened the container but fails on its data (its decoder thread reports
            # damaged packets at a moment that varies from run to run).
            self._close()
            raise _DecordUnsuitable(
                self.path, f"decord cannot decode the first frames ({_reason(exc)})"
            ) from exc
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

    def _sized_reader(self, size: Size | None) -> Any:
        """The reader for ``size``, checked on frame 0 when new.

        Raises:
            _CannotResize: decord 0.6 cannot resize to ``size``.
            _DecordFailure: decord fails on frame 0 at that size (damaged data).
        """
        if size is None or size in self._readers:
            return self._reader(size)
        if size in self._unresizable:
            raise _CannotResize(self.path, size, self._unresizable[size])
        try:
            reader = self._reader(size)
            reader.get_batch([0])
            reader.seek(0)
        except _decord_errors() as exc:
            self._readers.pop(size, None)
            if "must exactly match" not in str(exc):
                raise self._failure(exc, f"frame 0 at {size[1]}x{size[0]}") from exc
            self._unresizable[size] = _reason(exc)
            raise _CannotResize(self.path, size, self._unresizable[size]) from exc
        return reader

    def _failure(self, exc: BaseException, what: str) -> _DecordFailure:
        """The error for a failure on damaged data; the readers, stopped, are dropped."""
        self._readers.clear()
        return _DecordFailure(self.path, what, _reason(exc))

    @property
    def _turns(self) -> int:
        return self._decord_turns

    @property
    def meta(self) -> VideoMeta:
        """What the container says about the video."""
        return self._meta

    @property
    def times_s(self) -> np.ndarray:
        """Each frame's presentation time in seconds."""
        return self._times

    def _read_sorted(self, indices: np.ndarray, size: Size | None) -> tuple[np.ndarray, np.ndarray]:
        """See :meth:`FrameSource._read_sorted`; raises :class:`_CannotResize` or
        :class:`_DecordFailure` where decord cannot do it."""
        reader = self._sized_reader(size)
        try:
            return indices, np.asarray(reader.get_batch(indices.tolist()).asnumpy())
        except _decord_errors() as exc:
            raise self._failure(exc, f"frames {indices[0]}..{indices[-1]}") from exc

    def _iter_sorted(
        self, indices: np.ndarray, size: Size | None, batch_size: int
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """See :meth:`FrameSource._iter_sorted`; raises :class:`_CannotResize` (before the
        first chunk) or :class:`_DecordFailure` (at the chunk that fails) where decord cannot
        do it."""
        reader = self._sized_reader(size)
        errors = _decord_errors()
        for start in range(0, len(indices), batch_size):
            chunk = indices[start : start + batch_size]
            try:
                if size is not None:
                    frames = reader.get_batch(chunk.tolist()).asnumpy()
                else:
                    # Native-size get_batch leaks (see module docstring); frame by frame is flat.
                    frames = np.stack([reader[int(i)].asnumpy() for i in chunk])
            except errors as exc:
                raise self._failure(exc, f"frames {chunk[0]}..{chunk[-1]}") from exc
            yield chunk, np.asarray(frames)

    def _close(self) -> None:
        self._readers.clear()
