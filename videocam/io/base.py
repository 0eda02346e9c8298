"""The decoder interface every backend implements, and the pieces they share.

Layouts: frames are ``(T, H, W, 3) uint8 RGB``; sizes are ``(H, W)``; times are seconds from the
first frame's presentation time (the first frame is at 0.0), taken from the stream's timestamps,
so they are right for variable frame rates.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import numpy as np

from videocam.errors import DecodeError, VideoOpenError

logger = logging.getLogger(__name__)

Size = tuple[int, int]


@dataclass(frozen=True)
class VideoMeta:
    """What a decoder knows about a video once it is open.

    Attributes:
        path: the file.
        fps: average frame rate as a Fraction (frames / duration for variable frame rates).
        n_frames: number of frames a sequential decode returns.
        width, height: coded frame size in pixels.
        duration_s: time from the first frame's start to the last frame's end.
        codec: codec name as FFmpeg spells it (``h264``, ``gif``...).
        rotation: display rotation in degrees from the container's metadata (0, 90, 180, 270).
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
        indices: int64, shape (B,): source frame indices (0-based, decode order).
        times_s: float64, shape (B,): presentation times.
        frames: uint8, shape (B, H, W, 3).
    """

    indices: np.ndarray
    times_s: np.ndarray
    frames: np.ndarray = field(repr=False)

    def __len__(self) -> int:
        return len(self.indices)


class FrameSource(abc.ABC):
    """An open video. Use as a context manager; every backend passes the same conformance tests."""

    backend: str = ""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._closed = False

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
    def _read_sorted(self, indices: np.ndarray, size: Size | None) -> np.ndarray:
        """Frames at strictly increasing ``indices`` as ``(len, H, W, 3) uint8``."""

    @abc.abstractmethod
    def _iter_sorted(
        self, indices: np.ndarray, size: Size | None, batch_size: int
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Stream frames at strictly increasing ``indices`` in chunks ``(indices, frames)``."""

    def _close(self) -> None:  # noqa: B027 - optional hook
        """Release backend resources."""

    # -- public API ----------------------------------------------------------------------------
    def read(self, indices: Sequence[int] | np.ndarray, size: Size | None = None) -> np.ndarray:
        """Random access to a few frames (e.g. full-resolution keyframes).

        Args:
            indices: frame indices, any order, repeats allowed.
            size: (H, W) to resize to in the decoder, or None for the coded size.

        Returns:
            uint8, shape (len(indices), H, W, 3), in the order asked.
        """
        self._check_open()
        wanted = self._validate_indices(indices)
        if len(wanted) == 0:
            height, width = size or (self.meta.height, self.meta.width)
            return np.empty((0, height, width, 3), dtype=np.uint8)
        unique, inverse = np.unique(wanted, return_inverse=True)
        frames = self._read_sorted(unique, _check_size(size))
        return frames[inverse]

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
            size: (H, W) to resize to in the decoder, or None for the coded size.
            batch_size: frames per yielded batch (the last one may be shorter).

        Yields:
            :class:`FrameBatch` objects in frame order.
        """
        self._check_open()
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        wanted = (
            np.arange(self.meta.n_frames, dtype=np.int64)
            if indices is None
            else self._validate_indices(indices)
        )
        if len(wanted) and np.any(np.diff(wanted) <= 0):
            raise ValueError("iter_batches needs strictly increasing indices")
        if len(wanted) == 0:
            return
        times = self.times_s
        for chunk_indices, frames in self._iter_sorted(wanted, _check_size(size), batch_size):
            yield FrameBatch(indices=chunk_indices, times_s=times[chunk_indices], frames=frames)

    def close(self) -> None:
        """Release the decoder; safe to call twice."""
        if not self._closed:
            self._closed = True
            self._close()

    @property
    def closed(self) -> bool:
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

    def _decode_error(self, exc: BaseException, what: str) -> DecodeError:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        return DecodeError(f"{self.path}: cannot decode {what}: {reason}")


def _check_size(size: Size | None) -> Size | None:
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
