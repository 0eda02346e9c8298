"""Sliding windows over the sampled frame stream, and their fusion back into per-frame maps.

Positions are indices into the *sampled* stream (0 .. n_frames-1), not source frame indices.

Fusion: a window's map has the target layer's time resolution t' (r3d_18's layer4 turns 16
frames into 2 slices). It is brought to the window's T frames by linear interpolation along time
(half-sample centres, as ``torch.nn.functional.interpolate(mode="linear")``), and each frame takes
the mean of every contribution it received. A frame's map is final once no later window covers
it, so the fuser holds only the frames of the windows still open.
"""

from __future__ import annotations

from collections.abc import Iterator

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
