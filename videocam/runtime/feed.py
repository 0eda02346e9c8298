"""Frames to the model and results back: decoded chunks to normalised inputs on the model's
device, windows gathered from them, and per-batch results copied to the host without a
synchronisation per batch.

Layouts: decoded frames are uint8 ``(B, H, W, 3)`` at the model's input size; model inputs are
float32 ``(b, 3, T, H, W)`` for video models and ``(b, 3, H, W)`` for per-frame models.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from videocam.io import FrameSource, dense_frames
from videocam.runtime.prefetch import Inline, Prefetch
from videocam.temporal import iter_window_blocks

if TYPE_CHECKING:
    import torch

    from videocam.models import LoadedModel

#: Frames per decoder call. decord's resident memory climbs to a plateau that grows with the
#: size of its reads when the model runs in between (videocam_tiny, 8-minute against 1-minute
#: video: peak +13 % with 32-frame reads, +4 to 7 % with 16; PyAV stays flat), at no measurable
#: cost in speed.
DECODE_BATCH_FRAMES = 16
#: Window batches decoded ahead of the model by the background thread (when there is one).
PREFETCH_BATCHES = 2

#: Called with each chunk of decoded frames, uint8 (B, H, W, 3), in stream order.
FrameTap = Callable[[np.ndarray], None]


def model_input(loaded: LoadedModel, block: np.ndarray) -> torch.Tensor:
    """Windows of frames to the model's input, on its device.

    Args:
        block: uint8, shape (b, T, H, W, 3) at the model's input size (T = 1 for frame models).

    Returns:
        float32 (b, 3, T, H, W) for video models, (b, 3, H, W) for frame models.
    """
    import torch

    frames = torch.from_numpy(np.ascontiguousarray(block))
    if loaded.device.type == "cuda":
        frames = frames.pin_memory().to(loaded.device, non_blocking=True)
    if loaded.kind == "frame":
        frames = frames[:, 0]  # (b, H, W, 3): one frame per "window"
    return loaded.preprocess(frames)


def normalised_frames(loaded: LoadedModel, frames: np.ndarray) -> torch.Tensor:
    """uint8 frames (B, H, W, 3) to float32 (B, 3, H, W) on the model's device, normalised.

    The same arithmetic as :func:`model_input`, once per frame instead of once per window slot.
    """
    import torch

    tensor = torch.from_numpy(np.ascontiguousarray(frames))
    if loaded.device.type == "cuda":
        tensor = tensor.pin_memory().to(loaded.device, non_blocking=True)
    return loaded.preprocess(tensor)


def gather(frames: torch.Tensor, positions: np.ndarray) -> torch.Tensor:
    """``frames[positions]`` for positions (b, T): frames (b, T, *F), a new tensor.

    The index goes to the frames' device without a synchronisation (pinned, non-blocking).
    """
    import torch

    index = torch.from_numpy(positions.reshape(-1))
    if frames.device.type == "cuda":
        index = index.pin_memory().to(frames.device, non_blocking=True)
    return frames.index_select(0, index).unflatten(0, positions.shape)


def window_inputs(
    loaded: LoadedModel,
    source: FrameSource,
    indices: np.ndarray,
    plan: np.ndarray,
    batch: int,
    *,
    background: bool,
    progress: bool = False,
    desc: str = "analyse",
    tap: FrameTap | None = None,
) -> Generator[tuple[np.ndarray, torch.Tensor]]:
    """Yield ``(plan rows (b,), model input on the device)`` for every window, in order.

    The sampled stream (``indices``) is decoded at the model's input size, with undecodable
    frames stood in for (``dense_frames``: windows count positions). With ``background`` a
    thread decodes (decord releases the GIL while it works), at most ``PREFETCH_BATCHES``
    window batches ahead of the model; its errors surface here unchanged. Each frame is
    normalised once, on the device, and windows are gathered from the normalised frames still
    needed (overlapping windows share them).

    Args:
        plan: int64, shape (n_windows, T): positions of each window (T = 1 for frame models).
        tap: called with each decoded chunk (uint8 (B, H, W, 3), stand-ins included) before it
            goes to the device.
    """
    import torch
    from tqdm import tqdm

    def decoded() -> Iterator[np.ndarray]:
        chunks = source.iter_batches(
            indices, size=loaded.preprocess.size, batch_size=DECODE_BATCH_FRAMES
        )
        return dense_frames(chunks, indices)

    def normalised(chunks: Iterator[np.ndarray]) -> Iterator[torch.Tensor]:
        for chunk in chunks:
            if tap is not None:
                tap(chunk)
            yield normalised_frames(loaded, chunk)

    bar = tqdm(total=len(plan), desc=desc, unit="win", disable=not progress, leave=False)
    # Each batch of windows needs about batch x stride new frames.
    step = int(plan[1, 0] - plan[0, 0]) if len(plan) > 1 else plan.shape[1]
    depth = max(1, -(-PREFETCH_BATCHES * batch * step // DECODE_BATCH_FRAMES))
    prefetch = Prefetch if background else Inline
    try:
        with prefetch(decoded, depth=depth) as chunks:
            for rows, block in iter_window_blocks(
                normalised(chunks), plan, batch, concatenate=torch.cat, take=gather
            ):
                bar.update(len(rows))
                if loaded.kind == "frame":
                    yield rows, block[:, 0]  # (b, 3, H, W)
                else:  # (b, T, 3, H, W) -> (b, 3, T, H, W)
                    yield rows, block.permute(0, 2, 1, 3, 4).contiguous()
    finally:
        bar.close()


class HostCopies:
    """Per-batch results to the host, without a device synchronisation per batch.

    On the CPU the tensors are already there. On CUDA each batch's results are copied into pinned
    host memory asynchronously, on the current stream of the device they live on (not the
    current device's: with ``cuda:1`` the host would otherwise read the buffers before the copy
    is done), and handed out one batch later, once that stream's event has completed, so the
    device keeps working on the next batch meanwhile.
    """

    def __init__(self, device: torch.device) -> None:
        self._device = device
        self._cuda = device.type == "cuda"
        self._pending: deque[tuple[Any, np.ndarray, list[torch.Tensor]]] = deque()

    def push(self, rows: Any, *tensors: torch.Tensor) -> Iterator[tuple[Any, ...]]:
        """Queue one batch; yield ``(rows, *numpy arrays)`` of the batches now complete.

        ``rows`` says which batch it is (window rows, a tag): handed back as it came."""
        import torch

        if not self._cuda:
            yield (rows, *(t.detach().numpy() for t in tensors))
            return
        with torch.cuda.device(self._device):
            stream = torch.cuda.current_stream(self._device)
            host = []
            for tensor in tensors:
                pinned = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True)
                pinned.copy_(tensor.detach(), non_blocking=True)
                host.append(pinned)
            event = torch.cuda.Event()
            event.record(stream)
        self._pending.append((event, rows, host))
        while len(self._pending) > 1:
            yield self._pop()

    def flush(self) -> Iterator[tuple[Any, ...]]:
        """Yield every batch still queued."""
        while self._pending:
            yield self._pop()

    def _pop(self) -> tuple[Any, ...]:
        event, rows, host = self._pending.popleft()
        event.synchronize()
        return (rows, *(t.numpy() for t in host))
