"""Sliding windows over the sampled frame stream, and their fusion back into per-frame maps.

Positions are indices into the *sampled* stream (0 .. n_frames-1), not source frame indices.

Fusion: a window's map has the target layer's time resolution t' (r3d_18's layer4 turns 16
frames into 2 slices). It is brought to the window's T frames by linear interpolation along time
(half-sample centres, as ``torch.nn.functional.interpolate(mode="linear")``), and each frame takes
the mean of every contribution it received. A frame's map is final once no later window covers
it, so the fuser holds only the frames of the windows still open.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from videocam._interp import interpolation_matrix


def plan_windows(n_frames: int, clip_len: int, stride: int) -> np.ndarray:
    """Window positions covering every frame.

    Windows start every ``stride`` frames; the last one is aligned to the end so the tail is
    covered. A stream shorter than one window gives one window padded by repeating its first and
    last frames (half the padding on each side).

    Returns:
        int64, shape (n_windows, clip_len): the sampled-stream position of each window slot.
    """
    if n_frames < 1:
        raise ValueError(f"n_frames must be >= 1, got {n_frames}")
    if clip_len < 1 or stride < 1:
        raise ValueError(f"clip_len and stride must be >= 1, got {clip_len}, {stride}")
    if n_frames < clip_len:
        before = (clip_len - n_frames) // 2
        after = clip_len - n_frames - before
        row = np.concatenate(
            [np.zeros(before, np.int64), np.arange(n_frames), np.full(after, n_frames - 1)]
        )
        return row[None, :].astype(np.int64)
    starts = list(range(0, n_frames - clip_len + 1, stride))
    if starts[-1] != n_frames - clip_len:
        starts.append(n_frames - clip_len)
    return np.asarray(starts, dtype=np.int64)[:, None] + np.arange(clip_len, dtype=np.int64)


class WindowFuser:
    """Accumulates window maps and scores; hands out each frame once it is final.

    Windows must be added in order of their first position. Each frame's result is the mean over
    all window slots that covered it, of the map and of every per-window score vector.

    Example:
        fuser = WindowFuser(n_frames)
        for positions, window_map, probs in windows:
            fuser.add(positions, window_map, probs)
            for position, frame_map, frame_scores in fuser.pop_final():
                ...
        for position, frame_map, frame_scores in fuser.finish():
            ...
    """

    def __init__(self, n_frames: int) -> None:
        self.n_frames = n_frames
        self._sums: dict[int, np.ndarray] = {}
        self._score_sums: dict[int, np.ndarray] = {}
        self._counts: dict[int, int] = {}
        self._next_final = 0  # every position below this has been handed out
        self._last_start = -1

    def add(self, positions: np.ndarray, window_map: np.ndarray, scores: np.ndarray) -> None:
        """Add one window.

        Args:
            positions: int, shape (T,): sampled-stream position of each slot (repeats allowed).
            window_map: float, shape (t', *S): the window's map at the layer's time resolution
                (t' = 1 for per-frame models, whose window is a single frame).
            scores: float, shape (K,): per-window values to average per frame (e.g. class
                probabilities).
        """
        positions = np.asarray(positions, dtype=np.int64)
        start = int(positions.min())
        if start < self._last_start:
            raise ValueError("windows must be added in order of their first position")
        if start < self._next_final:
            raise ValueError(f"position {start} was already final")
        self._last_start = start
        n_slots, n_in = len(positions), window_map.shape[0]
        flat = window_map.reshape(n_in, -1).astype(np.float32, copy=False)
        slot_maps = (interpolation_matrix(n_slots, n_in) @ flat).reshape(
            (n_slots, *window_map.shape[1:])
        )
        scores = np.asarray(scores, dtype=np.float64)
        for slot, position in enumerate(positions.tolist()):
            if position in self._counts:
                self._sums[position] += slot_maps[slot]
                self._score_sums[position] += scores
                self._counts[position] += 1
            else:
                self._sums[position] = slot_maps[slot].copy()
                self._score_sums[position] = scores.copy()
                self._counts[position] = 1

    def pop_final(self) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """Frames no later window can cover (those before the last window's start), in order."""
        yield from self._pop_below(self._last_start)

    def finish(self) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """Every remaining frame; all frames must have been covered."""
        yield from self._pop_below(self.n_frames)

    def _pop_below(self, limit: int) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        while self._next_final < limit:
            position = self._next_final
            if position not in self._counts:
                raise ValueError(f"frame {position} was not covered by any window")
            count = self._counts.pop(position)
            frame_map = self._sums.pop(position) / count
            frame_scores = self._score_sums.pop(position) / count
            self._next_final += 1
            yield position, frame_map, frame_scores

    @property
    def n_open(self) -> int:
        """Frames held (received contributions, not yet final)."""
        return len(self._counts)


def iter_window_blocks(
    frame_batches: Iterable[Any],
    plan: np.ndarray,
    batch_size: int,
    *,
    concatenate: Callable[[list[Any]], Any] = np.concatenate,
    take: Callable[[Any, np.ndarray], Any] | None = None,
) -> Iterator[tuple[np.ndarray, Any]]:
    """Group a stream of frames into batches of windows, holding only the frames still needed.

    Args:
        frame_batches: arrays (B, *F), e.g. uint8 frames (B, H, W, 3) or normalised tensors
            (B, 3, H, W): the sampled stream in order, in any chunking.
        plan: int, shape (n_windows, T): window positions (see :func:`plan_windows`), windows
            in order of their first position.
        batch_size: windows per yielded batch (the last one may be shorter).
        concatenate: joins a list of arrays along the first axis (``torch.cat`` for tensors).
        take: ``(held, positions int64 (b, T)) -> (b, T, *F)``, gathers frames; default
            ``held[positions]``.

    Yields:
        (window rows int64 (b,), frames (b, T, *F), a new array) in window order.

    Raises:
        ValueError: the stream ended before the last window's frames arrived.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    n_windows = len(plan)
    lowest = plan.min(axis=1)
    highest = plan.max(axis=1)
    held: Any = None  # frames base .. base + len(held) - 1
    base = 0
    next_window = 0
    for frames in frame_batches:
        held = frames if held is None or len(held) == 0 else concatenate([held, frames])
        end = base + len(held)
        ready = next_window
        while ready < n_windows and highest[ready] < end:
            ready += 1
        # Full batches now; a short batch only once every window is ready.
        while ready - next_window >= batch_size or (ready == n_windows and ready > next_window):
            stop = min(next_window + batch_size, ready)
            rows = np.arange(next_window, stop, dtype=np.int64)
            positions = plan[rows] - base
            yield rows, held[positions] if take is None else take(held, positions)
            next_window = stop
        keep_from = int(lowest[next_window]) if next_window < n_windows else end
        if keep_from > base:
            held = held[keep_from - base :]
            base = keep_from
    if next_window < n_windows:
        raise ValueError(
            f"the frame stream ended at position {base + (0 if held is None else len(held))} "
            f"before window {next_window} (positions up to {int(highest[next_window])})"
        )


class FrameAccumulator:
    """Per-frame means of window maps and scores, vectorised over batches of windows.

    The same fusion as :class:`WindowFuser` (each window's map brought to its T frames by linear
    interpolation along time, each frame the mean of the contributions it received), for when
    every window's map is at hand in batches: one gather-add per batch instead of Python loops
    over slots. Sums are held for the frames still open only: :meth:`pop_final` hands out the
    frames no later window covers (windows come in order of their first position), so memory
    stays bounded by the windows in flight, whatever the video's length.
    """

    def __init__(self, n_frames: int, map_shape: tuple[int, ...], n_scores: int) -> None:
        self.n_frames = n_frames
        self._map_shape = tuple(map_shape)
        self._size = int(np.prod(map_shape, dtype=np.int64))
        self._start = 0  # the first frame not yet handed out
        self._sums = np.zeros((0, self._size), np.float32)
        self._score_sums = np.zeros((0, n_scores), dtype=np.float64)
        self._counts = np.zeros(0, dtype=np.int64)

    def _reach(self, stop: int) -> None:
        """Hold sums up to position ``stop`` (exclusive)."""
        extra = stop - self._start - len(self._counts)
        if extra > 0:
            self._sums = np.concatenate([self._sums, np.zeros((extra, self._size), np.float32)])
            more_scores = np.zeros((extra, self._score_sums.shape[1]), np.float64)
            self._score_sums = np.concatenate([self._score_sums, more_scores])
            self._counts = np.concatenate([self._counts, np.zeros(extra, np.int64)])

    def add(self, positions: np.ndarray, window_maps: np.ndarray, scores: np.ndarray) -> None:
        """Add a batch of windows.

        Args:
            positions: int, shape (b, T): sampled-stream position of each slot.
            window_maps: float, shape (b, t', *S): maps at the layer's time resolution.
            scores: float, shape (b, K): per-window values to average per frame.

        Raises:
            ValueError: bad shapes, or a slot on a frame already handed out.
        """
        positions = np.asarray(positions, dtype=np.int64)
        b, n_slots = positions.shape
        n_in = window_maps.shape[1]
        if tuple(window_maps.shape[2:]) != self._map_shape or window_maps.shape[0] != b:
            raise ValueError(
                f"window_maps: expected shape ({b}, t', *{self._map_shape}); "
                f"got {window_maps.shape}"
            )
        if b == 0:
            return
        if int(positions.min()) < self._start:
            raise ValueError(f"frame {int(positions.min())} was already handed out")
        self._reach(int(positions.max()) + 1)
        flat = window_maps.reshape(b, n_in, -1).astype(np.float32, copy=False)
        slot_maps = np.matmul(interpolation_matrix(n_slots, n_in), flat)  # (b, T, P)
        flat_positions = positions.reshape(-1) - self._start
        # Unbuffered adds, in window order: a frame covered twice in one batch gets both.
        np.add.at(self._sums, flat_positions, slot_maps.reshape(b * n_slots, -1))
        window_scores = np.asarray(scores, dtype=np.float64).reshape(b, -1)
        np.add.at(self._score_sums, flat_positions, np.repeat(window_scores, n_slots, axis=0))
        np.add.at(self._counts, flat_positions, 1)

    def pop_final(self, limit: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Hand out the frames before position ``limit`` (no later window may cover them).

        Returns:
            (positions int64 (m,), maps float32 (m, *S), scores float64 (m, K)): means per
            frame, in order.

        Raises:
            ValueError: one of them was not covered by any window.
        """
        limit = min(limit, self.n_frames)
        m = max(0, limit - self._start)
        self._reach(limit)
        counts = self._counts[:m]
        uncovered = np.flatnonzero(counts == 0)
        if len(uncovered):
            raise ValueError(
                f"frame {self._start + int(uncovered[0])} was not covered by any window"
            )
        maps = (self._sums[:m] / counts[:, None].astype(np.float32)).reshape((m, *self._map_shape))
        scores = self._score_sums[:m] / counts[:, None]
        positions = np.arange(self._start, self._start + m, dtype=np.int64)
        self._sums, self._score_sums = self._sums[m:], self._score_sums[m:]
        self._counts = self._counts[m:]
        self._start += m
        return positions, maps, scores

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """(maps float32 (m, *S), scores float64 (m, K)): the means of every frame not handed
        out yet (all frames when :meth:`pop_final` was never called).

        Raises:
            ValueError: a frame was not covered by any window.
        """
        _, maps, scores = self.pop_final(self.n_frames)
        return maps, scores
