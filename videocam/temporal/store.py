"""Fixed-shape rows kept in order, in memory up to a bound and in a temporary file beyond it.

The single pass over a video keeps a few numbers per window (class probabilities, the maps of the
candidate classes) until the video-level target is known. Their total grows with the video, so
past ``memory_bytes`` they go to an anonymous temporary file (unlinked at creation: nothing is
left behind, even when the process dies). Plain ``write``/``pread``, not ``np.memmap``: pages of
a mapped file count as the process's resident memory, pages written through the file do not.
"""

from __future__ import annotations

import os
import tempfile
from types import TracebackType
from typing import IO

import numpy as np

__all__ = ["RowStore"]

#: Size of the memory blocks when the number of rows is not known in advance.
_BLOCK_BYTES = 2**20


class RowStore:
    """Append-only rows of one shape and dtype, read back by index range.

    Example:
        with RowStore((400,), np.float32) as store:
            store.append(batch)  # (b, 400)
            first = store.read(0, 10)  # (10, 400)
    """

    def __init__(
        self,
        row_shape: tuple[int, ...],
        dtype: np.dtype | type,
        *,
        capacity: int | None = None,
        memory_bytes: int = 16 * 2**20,
        directory: str | os.PathLike[str] | None = None,
    ) -> None:
        """
        Args:
            row_shape: the shape of one row.
            dtype: the rows' dtype.
            capacity: rows expected in all, when known: memory is then taken in one block.
            memory_bytes: rows kept in memory at most; later ones go to the temporary file.
            directory: where the temporary file goes (default: the system's temporary folder).
        """
        self.row_shape = tuple(int(v) for v in row_shape)
        self.dtype = np.dtype(dtype)
        self.row_bytes = int(np.prod(self.row_shape, dtype=np.int64)) * self.dtype.itemsize
        self.memory_rows = max(1, memory_bytes // max(1, self.row_bytes))
        # Rows in memory live in a few large blocks, not one small array per append: small
        # long-lived allocations between large transient ones fragment the heap.
        default_block = max(1, _BLOCK_BYTES // max(1, self.row_bytes))
        self._block_rows = min(self.memory_rows, capacity or default_block)
        self._directory = directory
        self._blocks: list[np.ndarray] = []
        self._n_memory = 0
        self._file: IO[bytes] | None = None
        self._n_file = 0

    def __len__(self) -> int:
        return self._n_memory + self._n_file

    @property
    def spilled(self) -> bool:
        """Whether some rows live in the temporary file."""
        return self._file is not None

    def append(self, rows: np.ndarray) -> None:
        """Add rows shaped (b, *row_shape) after the ones already stored (copied)."""
        rows = np.asarray(rows)
        if tuple(rows.shape[1:]) != self.row_shape:
            raise ValueError(f"rows: expected shape (b, *{self.row_shape}); got {rows.shape}")
        rows = np.ascontiguousarray(rows, dtype=self.dtype)
        while len(rows) and self._file is None and self._n_memory < self.memory_rows:
            block, offset = divmod(self._n_memory, self._block_rows)
            if block == len(self._blocks):
                size = min(self._block_rows, self.memory_rows - self._n_memory)
                self._blocks.append(np.empty((size, *self.row_shape), dtype=self.dtype))
            target = self._blocks[block]
            count = min(len(rows), len(target) - offset)
            target[offset : offset + count] = rows[:count]
            self._n_memory += count
            rows = rows[count:]
        if len(rows):
            if self._file is None:
                # Closed by close(); unlinked at creation, so never left behind.
                self._file = tempfile.TemporaryFile(  # noqa: SIM115
                    buffering=0, prefix="videocam-", dir=self._directory
                )
            data = rows.data.cast("B")
            offset = self._n_file * self.row_bytes
            while len(data):
                written = os.pwrite(self._file.fileno(), data, offset)
                data, offset = data[written:], offset + written
            self._n_file += len(rows)

    def read(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start`` to ``stop - 1`` as a new array (stop - start, *row_shape)."""
        if not 0 <= start <= stop <= len(self):
            raise IndexError(f"rows {start}:{stop} out of range for {len(self)} rows")
        out = np.empty((stop - start, *self.row_shape), dtype=self.dtype)
        row = start
        while row < min(stop, self._n_memory):
            block, offset = divmod(row, self._block_rows)
            count = min(stop, self._n_memory, (block + 1) * self._block_rows) - row
            out[row - start : row - start + count] = self._blocks[block][offset : offset + count]
            row += count
        if stop > row:
            assert self._file is not None
            first, count = row - self._n_memory, stop - row
            buffer = os.pread(self._file.fileno(), count * self.row_bytes, first * self.row_bytes)
            out[row - start :] = np.frombuffer(buffer, dtype=self.dtype).reshape(
                count, *self.row_shape
            )
        return out

    def close(self) -> None:
        """Free the memory and delete the temporary file; safe to call twice."""
        self._blocks = []
        self._n_memory = self._n_file = 0
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> RowStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
