"""The decoder interface every backend implements, and the pieces they share.

Layouts: frames are ``(T, H, W, 3) uint8 RGB``; sizes are ``(H, W)``; times are seconds from the
first frame's presentation time (the first frame is at 0.0), taken from the stream's timestamps,
so they are right for variable frame rates.

Frames come out upright, as players show them: a video whose container asks for a display
rotation is turned here (see :mod:`videocam.io.probe` for the convention), and ``meta.width`` /
``meta.height`` and a requested ``size`` describe the upright picture.

Damaged data does not stop a read. A frame whose packet the decoder rejects is *skipped*: it is
left out of the batches (``FrameBatch.indices`` then has a gap; indices and times of the other
frames stay the source's own) and listed in ``skipped_indices``. A frame the decoder outputs but
flags as corrupt (FFmpeg's error concealment) is kept and listed in ``corrupt_indices``.
``decode_errors`` counts both, once per frame, over the life of the source. Frames concealed
without a flag (e.g. frames that refer to a lost one) cannot be told apart and are not counted.
A file whose data ends before its index does (truncated) is an error, not a run of skips.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import TypedDict

import numpy as np

from videocam.errors import DecodeError, VideoOpenError
from videocam.io.probe import upright_turns

logger = logging.getLogger(__name__)

Size = tuple[int, int]


@dataclass(frozen=True)
class VideoMeta:
    """What a decoder knows about a video once it is open.

    Attributes:
        path: the file.
        fps: average frame rate as a Fraction (frames / duration for variable frame rates).
        n_frames: number of frames in the stream (a sequential decode returns them all unless
            some are damaged: see :attr:`FrameSource.skipped_indices`).
        width, height: size in pixels of the upright frame (the coded size, swapped when the
            display rotation is 90 or 270 degrees).
        duration_s: time from the first frame's start to the last frame's end.
        codec: codec name as FFmpeg spells it (``h264``, ``gif``...).
        rotation: display rotation from the container's metadata, clockwise degrees as players
            apply it (0, 90, 180, 270); frames are returned already turned upright.
        backend: the backend that decodes it (``decord`` or ``pyav``).
    """

    path: Path
    fps: Fraction
    n_frames: int
    width: int
    height: int
    duration_s: float
    codec: str
    rotation: int
    backend: str

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form (fps as a string fraction and a float)."""
        return {
            "path": str(self.path),
            "fps": float(self.fps),
            "fps_fraction": str(self.fps),
            "n_frames": self.n_frames,
            "width": self.width,
            "height": self.height,
            "duration_s": self.duration_s,
            "codec": self.codec,
            "rotation": self.rotation,
            "backend": self.backend,
        }


@dataclass(frozen=True)
class FrameBatch:
    """Consecutive frames of a read, in increasing frame order.

    Attributes:
        indices: int64, shape (B,): source frame indices (0-based, decode order); frames that
            cannot be decoded are left out, so consecutive indices may have gaps.
        times_s: float64, shape (B,): presentation times.
        frames: uint8, shape (B, H, W, 3).
    """

    indices: np.ndarray
    times_s: np.ndarray
    frames: np.ndarray = field(repr=False)

    def __len__(self) -> int:
        return len(self.indices)


class DecoderRecord(TypedDict):
    """:class:`DecoderChoice`, JSON-ready (summary.json's ``decoder``)."""

    requested: str
    backend: str
    reason: str | None


@dataclass(frozen=True)
class DecoderChoice:
    """Which decoder reads a source's frames, and why (see :mod:`videocam.io.policy`).

    Attributes:
        requested: the backend asked for: ``"auto"``, ``"decord"`` or ``"pyav"``.
        backend: the backend that decodes the source (``meta.backend``).
        reason: why it is not the preferred one (decord for ``"auto"`` and ``"decord"``), or
            why some of its frames are decoded by PyAV; None when nothing was chosen for the
            caller (a plain decord source, or PyAV asked for by name).
    """

    requested: str
    backend: str
    reason: str | None = None

    def to_dict(self) -> DecoderRecord:
        """JSON-ready form."""
        return {"requested": self.requested, "backend": self.backend, "reason": self.reason}


class _DecodeCounts(TypedDict):
    decode_errors: int
    skipped_frames: list[int]
    corrupt_frames: list[int]


class SizeChange(TypedDict):
    """A frame whose decoded picture has another size than the video's (coded orientation)."""

    frame: int
    width: int
    height: int


class DecodeReport(_DecodeCounts, total=False):
    """Damaged frames of a source, JSON-ready (``FrameSource.decode_report()``);
    ``size_changes`` only when the picture changed size part-way (the first frame of each other
    size; such frames are scaled to the video's size); ``repeated_timestamps`` only when frames
    were left out because an earlier frame has the same presentation time (a joined file whose
    timestamps restart). Which decoder read them, and why, is :attr:`FrameSource.decoder`."""

    size_changes: list[SizeChange]
    repeated_timestamps: int


@dataclass
class DecodeLog:
    """Frames a source could not decode cleanly (shared with a fallback decoder)."""

    skipped: set[int] = field(default_factory=set)
    corrupt: set[int] = field(default_factory=set)
    warned: bool = False
    #: (width, height) -> first frame index decoded at that size, for sizes not the video's.
    sizes: dict[tuple[int, int], int] = field(default_factory=dict)
    #: Frames left out because an earlier frame has the same timestamp (PyAV's count).
    repeated_timestamps: int = 0


class FrameSource(abc.ABC):
    """An open video. Use as a context manager; every backend passes the same conformance tests.

    Backends implement ``_read_sorted`` and ``_iter_sorted`` in their own orientation (the coded
    one, unless they turn frames themselves, see ``_turns``); this class turns frames upright and
    keeps the record of damaged frames.
    """

    backend: str = ""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._closed = False
        self._log = DecodeLog()
        #: Set by :mod:`videocam.io.policy` when it chose this source for a caller.
        self._choice: DecoderChoice | None = None

    # -- required by backends ------------------------------------------------------------------
    @property
    @abc.abstractmethod
    def meta(self) -> VideoMeta:
        """Metadata of the video."""

    @property
    @abc.abstractmethod
    def times_s(self) -> np.ndarray:
        """float64, shape (n_frames,): presentation time of every frame, first frame at 0."""

    @abc.abstractmethod
    def _read_sorted(self, indices: np.ndarray, size: Size | None) -> tuple[np.ndarray, np.ndarray]:
        """Frames at strictly increasing ``indices``, in the backend's orientation (coded unless
        the backend turns frames itself, see ``_turns``), ``size`` in that orientation.

        Returns:
            (indices decoded, int64 (n,); frames, uint8 (n, H, W, 3)): frames that cannot be
            decoded are left out and recorded with :meth:`_skip`.
        """

    @abc.abstractmethod
    def _iter_sorted(
        self, indices: np.ndarray, size: Size | None, batch_size: int
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Stream frames at strictly increasing ``indices`` in chunks ``(indices, frames)``.

        Orientation and size as :meth:`_read_sorted`; frames that cannot be decoded are left out
        of the chunks and recorded with :meth:`_skip`.
        """

    def _close(self) -> None:  # noqa: B027 - optional hook
        """Release backend resources."""

    # -- public API ----------------------------------------------------------------------------
    def read(self, indices: Sequence[int] | np.ndarray, size: Size | None = None) -> np.ndarray:
        """Random access to a few frames (e.g. full-resolution keyframes).

        Args:
            indices: frame indices, any order, repeats allowed.
            size: (H, W) of the upright frame to resize to in the decoder, or None for the
                video's own size.

        Returns:
            uint8, shape (len(indices), H, W, 3), upright, in the order asked.

        Raises:
            DecodeError: one of the frames cannot be decoded (it is then in
                :attr:`skipped_indices`).
        """
        self._check_open()
        wanted = self._validate_indices(indices)
        size = check_size(size)
        if len(wanted) == 0:
            height, width = size or (self.meta.height, self.meta.width)
            return np.empty((0, height, width, 3), dtype=np.uint8)
        unique, inverse = np.unique(wanted, return_inverse=True)
        got, frames = self._read_sorted(unique, self._coded_size(size))
        if len(got) != len(unique):
            missing = np.setdiff1d(unique, got)
            raise DecodeError(
                f"{self.path}: frame {int(missing[0])} cannot be decoded (damaged data)"
                + (f" nor {len(missing) - 1} other(s) asked for" if len(missing) > 1 else "")
            )
        return self._upright(frames)[inverse]

    def iter_batches(
        self,
        indices: Sequence[int] | np.ndarray | None = None,
        *,
        size: Size | None = None,
        batch_size: int = 32,
    ) -> Iterator[FrameBatch]:
        """Stream frames in order with bounded memory.

        Args:
            indices: increasing frame indices to read (see :func:`sample_indices`); all frames when
                None.
            size: (H, W) of the upright frame to resize to in the decoder, or None for the
                video's own size.
            batch_size: frames per yielded batch at most (the last one may be shorter, and so
                may a batch that lost damaged frames).

        Yields:
            :class:`FrameBatch` objects in frame order. Frames that cannot be decoded are left
            out (see :attr:`skipped_indices`); their neighbours keep their own indices and times.

        Raises:
            DecodeError: the file is truncated, or not one of the frames asked for decodes.
        """
        self._check_open()
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        wanted = self._stream_indices(indices, "iter_batches")
        size = check_size(size)
        if len(wanted) == 0:
            return
        times = self.times_s
        n_yielded = 0
        for chunk_indices, frames in self._iter_sorted(wanted, self._coded_size(size), batch_size):
            if len(chunk_indices) == 0:
                continue
            n_yielded += len(chunk_indices)
            yield FrameBatch(
                indices=chunk_indices, times_s=times[chunk_indices], frames=self._upright(frames)
            )
        if n_yielded == 0:
            raise self._nothing_decoded(len(wanted))

    @property
    def decode_errors(self) -> int:
        """Frames that could not be decoded (skipped) or came out flagged corrupt, each counted
        once, over every read of this source so far."""
        return len(self._log.skipped | self._log.corrupt)

    @property
    def skipped_indices(self) -> tuple[int, ...]:
        """Increasing indices of frames left out of reads because they cannot be decoded."""
        return tuple(sorted(self._log.skipped))

    @property
    def corrupt_indices(self) -> tuple[int, ...]:
        """Increasing indices of frames returned although the decoder flagged them corrupt."""
        return tuple(sorted(self._log.corrupt - self._log.skipped))

    @property
    def decoder(self) -> DecoderChoice:
        """Which decoder reads this source, and why (see :mod:`videocam.io.policy`)."""
        if self._choice is not None:
            return self._choice
        return DecoderChoice(requested=self.backend, backend=self.backend, reason=None)

    def decode_report(self) -> DecodeReport:
        """JSON-ready record of damaged frames (for summary.json)."""
        report: DecodeReport = {
            "decode_errors": self.decode_errors,
            "skipped_frames": list(self.skipped_indices),
            "corrupt_frames": list(self.corrupt_indices),
        }
        if self._log.sizes:
            report["size_changes"] = [
                {"frame": frame, "width": width, "height": height}
                for (width, height), frame in sorted(self._log.sizes.items(), key=lambda kv: kv[1])
            ]
        if self._log.repeated_timestamps:
            report["repeated_timestamps"] = self._log.repeated_timestamps
        return report

    def close(self) -> None:
        """Release the decoder; safe to call twice."""
        if not self._closed:
            self._closed = True
            self._close()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has run."""
        return self._closed

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.path} closed={self._closed}>"

    # -- helpers -------------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(f"{self.path}: the video source is closed")

    def _validate_indices(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        wanted = np.asarray(indices, dtype=np.int64).reshape(-1)
        n = self.meta.n_frames
        if len(wanted) and (wanted.min() < 0 or wanted.max() >= n):
            bad = wanted[(wanted < 0) | (wanted >= n)][0]
            raise IndexError(f"{self.path}: frame index {bad} out of range [0, {n})")
        return wanted

    def _stream_indices(
        self, indices: Sequence[int] | np.ndarray | None, caller: str
    ) -> np.ndarray:
        """The validated, strictly increasing indices of a streamed read (all frames: None)."""
        if indices is None:
            return np.arange(self.meta.n_frames, dtype=np.int64)
        wanted = self._validate_indices(indices)
        if len(wanted) and np.any(np.diff(wanted) <= 0):
            raise ValueError(f"{caller} needs strictly increasing indices")
        return wanted

    def _nothing_decoded(self, n_wanted: int) -> DecodeError:
        return DecodeError(
            f"{self.path}: none of the {n_wanted} frames asked for can be decoded (damaged data)"
        )

    def _decode_error(self, exc: BaseException, what: str) -> DecodeError:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        return DecodeError(f"{self.path}: cannot decode {what}: {reason}")

    @property
    def _turns(self) -> int:
        """Quarter turns counterclockwise (``np.rot90``'s ``k``) from the frames the backend
        returns to upright: from coded frames unless the backend turns them itself."""
        return upright_turns(self.meta.rotation)

    def _coded_size(self, size: Size | None) -> Size | None:
        """The backend's (H, W) that becomes ``size`` once turned upright."""
        if size is None or self._turns % 2 == 0:
            return size
        return size[1], size[0]

    def _upright(self, frames: np.ndarray) -> np.ndarray:
        """uint8 (B, H, W, 3) coded frames turned upright (contiguous)."""
        if self._turns == 0:
            return frames
        return np.ascontiguousarray(np.rot90(frames, self._turns, axes=(1, 2)))

    def _skip(self, index: int, reason: str = "the decoder rejects its data") -> None:
        """Record that frame ``index`` cannot be decoded."""
        if index in self._log.skipped:
            return
        self._log.skipped.add(index)
        self._warn(f"frame {index} cannot be decoded ({reason}); it is skipped")

    def _note_size(self, index: int, width: int, height: int) -> None:
        """Record that frame ``index`` decoded at a size other than the video's."""
        if (width, height) in self._log.sizes:
            return
        self._log.sizes[(width, height)] = index
        logger.info(
            "%s: from frame %d the picture is %dx%d; scaled to the video's %dx%d",
            self.path,
            index,
            width,
            height,
            self.meta.width,
            self.meta.height,
        )

    def _flag_corrupt(self, index: int) -> None:
        """Record that frame ``index`` came out of the decoder flagged corrupt."""
        if index in self._log.corrupt:
            return
        self._log.corrupt.add(index)
        self._warn(f"frame {index} is damaged (the decoder concealed errors); it is kept")

    def _warn(self, message: str) -> None:
        # Logged at INFO once per source: the caller reports the totals (decode_report()), so a
        # run that then fails on the damage still says one line at the default log level.
        if self._log.warned:
            logger.debug("%s: %s", self.path, message)
            return
        self._log.warned = True
        logger.info("%s: %s (further damaged frames are counted, not logged)", self.path, message)


def stand_ins(indices: np.ndarray, skipped: Iterable[int]) -> np.ndarray:
    """For each position of a read, the position whose frame stands in for it.

    A decoded frame stands for itself; a skipped one is replaced by the nearest decoded frame
    before it in the read (after it, for frames before the first decoded one), which is what
    :func:`dense_frames` does while streaming.

    Args:
        indices: int64, shape (n,): the strictly increasing frame indices of a read.
        skipped: frame indices that cannot be decoded (e.g. ``source.skipped_indices``).

    Returns:
        int64, shape (n,): positions into ``indices``.

    Raises:
        DecodeError: none of ``indices`` decodes.
    """
    indices = np.asarray(indices, dtype=np.int64)
    decoded = ~np.isin(indices, np.fromiter(skipped, dtype=np.int64))
    if len(indices) and not decoded.any():
        raise DecodeError(f"none of the {len(indices)} frames asked for can be decoded")
    positions = np.arange(len(indices), dtype=np.int64)
    last = np.maximum.accumulate(np.where(decoded, positions, -1))
    first = int(np.argmax(decoded)) if len(indices) else 0
    return np.where(last >= 0, last, first).astype(np.int64)


def dense_frames(batches: Iterable[FrameBatch], indices: np.ndarray) -> Iterator[np.ndarray]:
    """The frames of a read with every position filled, for consumers that count positions.

    Frames left out by :meth:`FrameSource.iter_batches` (skipped as undecodable) are stood in
    for as :func:`stand_ins` says, so position ``p`` of the output is ``indices[p]`` or its
    stand-in. Those positions are listed in the source's ``skipped_indices`` afterwards.

    Args:
        batches: the batches of ``source.iter_batches(indices, ...)``.
        indices: int64, shape (n,): the indices that read asked for.

    Yields:
        uint8 arrays (B, H, W, 3) covering positions 0..n-1 in order (B varies).
    """
    indices = np.asarray(indices, dtype=np.int64)
    position = 0
    last: np.ndarray | None = None
    for batch in batches:
        found = np.searchsorted(indices, batch.indices)
        if len(found) and found[0] == position and found[-1] == position + len(found) - 1:
            # No gap before or inside this batch (the usual case): no copy.
            yield batch.frames
            last, position = batch.frames[-1], position + len(found)
            continue
        chunk: list[np.ndarray] = []
        for p, frame in zip(found.tolist(), batch.frames, strict=True):
            chunk.extend([frame if last is None else last] * (p - position))
            chunk.append(frame)
            last, position = frame, p + 1
        if chunk:
            yield np.stack(chunk)
    if last is not None and position < len(indices):
        yield np.repeat(last[None], len(indices) - position, axis=0)


def check_size(size: Size | None) -> Size | None:
    """A requested (H, W) as a tuple of ints, checked positive (None stays None)."""
    if size is None:
        return None
    height, width = (int(v) for v in size)
    if height < 1 or width < 1:
        raise ValueError(f"size must be positive (H, W), got {size}")
    return height, width


def check_video_path(path: str | Path) -> Path:
    """Fail early, with the reason, for paths that cannot be a video."""
    p = Path(path)
    if not p.exists():
        raise VideoOpenError(f"{p}: no such file")
    if p.is_dir():
        raise VideoOpenError(f"{p}: is a directory, not a video file")
    try:
        size = p.stat().st_size
        with p.open("rb"):
            pass
    except OSError as exc:
        raise VideoOpenError(f"{p}: cannot read file: {exc.strerror or exc}") from exc
    if size == 0:
        raise VideoOpenError(f"{p}: file is empty")
    return p


def sample_indices(
    times_s: np.ndarray,
    *,
    stride: int = 1,
    fps: float | None = None,
    start_s: float | None = None,
    end_s: float | None = None,
) -> np.ndarray:
    """Choose which frames to analyse.

    Args:
        times_s: float64, shape (n_frames,): presentation times of the source frames.
        stride: keep every ``stride``-th frame of the time range (ignored when ``fps`` is given).
        fps: target frame rate: for each tick ``start + k / fps`` keep the frame nearest to it
            (never more frames than the source has).
        start_s, end_s: time range; frames with ``start_s <= t < end_s`` are kept.

    Returns:
        int64, shape (n,): strictly increasing source frame indices.
    """
    times = np.asarray(times_s, dtype=np.float64)
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    if fps is not None and fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    lo = -np.inf if start_s is None else float(start_s)
    hi = np.inf if end_s is None else float(end_s)
    if hi <= lo:
        raise ValueError(f"empty time range: start {start_s} s >= end {end_s} s")
    in_range = np.flatnonzero((times >= lo) & (times < hi))
    if len(in_range) == 0:
        return in_range.astype(np.int64)
    if fps is None:
        return in_range[::stride].astype(np.int64)
    sub = times[in_range]
    ticks = np.arange(sub[0], sub[-1] + 1e-9, 1.0 / fps)
    pos = np.searchsorted(sub, ticks).clip(1, len(sub) - 1)
    left_closer = (ticks - sub[pos - 1]) <= (sub[pos] - ticks)
    nearest = np.where(left_closer, pos - 1, pos) if len(sub) > 1 else np.zeros_like(pos)
    return in_range[np.unique(nearest)].astype(np.int64)
