"""A whole video's per-frame fused maps, with each frame's mean and maximum: the maps in a
:class:`~videocam.temporal.RowStore` (memory up to a bound, then an anonymous temporary file),
so that only O(n_frames) numbers stay in memory however long the video is."""

from __future__ import annotations

from types import TracebackType

import numpy as np

from videocam.temporal.store import RowStore

#: Bytes of per-frame maps held in memory before they spill to a temporary file.
MAPS_MEMORY_BYTES = 16 * 2**20


class FrameMaps:
    """Per-frame maps of one class, added in frame order.

    Attributes:
        means: float64, shape (n_frames,): the mean of each frame's map.
        maxes: float32, shape (n_frames,): the maximum of each frame's map.
        scores: float64, shape (n_frames,): the class's probability per frame.

    Args:
        n_frames: frames of the sampled stream.
        map_shape: (h, w) of one frame's map.
        keep_maps: keep the maps themselves (False: the numbers only, as for a track).
        memory_bytes: maps held in memory before they spill to the temporary file.
    """

    def __init__(
        self,
        n_frames: int,
        map_shape: tuple[int, ...],
        *,
        keep_maps: bool = True,
        memory_bytes: int | None = None,
    ) -> None:
        self.map_shape = tuple(int(v) for v in map_shape)
        self.means = np.zeros(n_frames, dtype=np.float64)
        self.maxes = np.zeros(n_frames, dtype=np.float32)
        self.scores = np.zeros(n_frames, dtype=np.float64)
        budget = MAPS_MEMORY_BYTES if memory_bytes is None else memory_bytes
        self._store = (
            RowStore(self.map_shape, np.float32, capacity=n_frames, memory_bytes=budget)
            if keep_maps
            else None
        )
        self._n = 0

    def __len__(self) -> int:
        return len(self.means)

    def add(self, positions: np.ndarray, maps: np.ndarray, scores: np.ndarray) -> None:
        """The next frames' maps: positions (m,) consecutive from the last frame added, maps
        float (m, *map_shape), scores float (m,)."""
        positions = np.asarray(positions, dtype=np.int64)
        if len(positions) == 0:
            return
        if positions[0] != self._n or np.any(np.diff(positions) != 1):
            raise ValueError(f"frames must come in order: expected {self._n}, got {positions[:3]}")
        flat = np.asarray(maps, dtype=np.float32).reshape(len(positions), -1)
        self.means[positions] = flat.mean(axis=1, dtype=np.float64)
        self.maxes[positions] = flat.max(axis=1) if flat.shape[1] else 0.0
        self.scores[positions] = np.asarray(scores, dtype=np.float64).reshape(-1)
        if self._store is not None:
            self._store.append(flat.reshape(len(positions), *self.map_shape))
        self._n += len(positions)

    def read(self, start: int, stop: int) -> np.ndarray:
        """float32 (stop - start, *map_shape): the maps of frames ``start`` to ``stop - 1``."""
        if self._store is None:
            raise ValueError("these frame maps were not kept (keep_maps=False)")
        return self._store.read(start, stop)

    def close(self) -> None:
        """Delete the maps' temporary file; safe to call twice."""
        if self._store is not None:
            self._store.close()

    def __enter__(self) -> FrameMaps:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
