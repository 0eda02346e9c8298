"""What this process may use: CPU cores (affinity and container quota), torch threads, batch
sizes on the CPU and on a GPU, background decoding, and autocast.

Every "how many cores" question in the package is answered by :func:`available_cpus`, so a
container's CPU quota is honoured everywhere (the single pass, batch workers, Ray actors).
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from videocam.models import LoadedModel

#: Classes whose maps the single pass keeps per window with ``target="auto"``: the top ones by
#: mean probability so far. The video-level target is nearly always among them; a window where
#: it is not is decoded and explained again, so the result is exact either way.
AUTO_CANDIDATES = 32
#: Input values per batch on the CPU (see :func:`auto_batch`), and the most windows per batch.
CPU_BATCH_VALUES = 1_600_000
MAX_CPU_BATCH = 16
#: Most windows per batch on a GPU (the batch follows from free memory up to this).
MAX_CUDA_BATCH = 32
#: Share of the free GPU memory a batch may take (see :func:`cuda_batch`).
CUDA_MEMORY_SHARE = 0.4

_CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def available_cpus() -> int:
    """CPUs this process may use: its affinity mask, bounded by a cgroup v2 CPU quota."""
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        count = os.cpu_count() or 1
    try:
        quota, period = _CGROUP_CPU_MAX.read_text().split()[:2]
        if quota != "max":
            count = min(count, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, count)


def threads_per_worker(workers: int) -> int:
    """Torch threads for each of ``workers`` processes: ``OMP_NUM_THREADS`` when set, else the
    usable CPUs shared out, at least one."""
    with contextlib.suppress(KeyError, ValueError):
        return max(1, int(os.environ["OMP_NUM_THREADS"]))
    return max(1, available_cpus() // max(1, workers))


@contextmanager
def cpu_threads() -> Iterator[int]:
    """At most as many torch threads as CPUs this process may use, for the duration.

    torch sizes its pool from the machine's cores; in a container limited by a CPU quota or an
    affinity mask that oversubscribes the cores (and, with OpenMP spin-waiting, slows everything
    down many times). The caller's setting is restored afterwards.

    Yields:
        The number of torch threads in use.
    """
    import torch

    threads = torch.get_num_threads()
    allowed = available_cpus()
    if threads > allowed:
        torch.set_num_threads(allowed)
    try:
        yield torch.get_num_threads()
    finally:
        if threads > allowed:
            torch.set_num_threads(threads)


def background_decoding(device: torch.device) -> bool:
    """Whether to decode in a background thread: only where it has cores to itself.

    On a GPU the CPU is free while the model runs, so decoding overlaps fully. On a CPU where
    torch already uses every core it buys nothing (2 shared cores, decode-bound videocam_tiny:
    1.06 s with the thread, 1.04 s without) and decord then holds about 80 MB more at its peak.
    """
    import torch

    if device.type == "cuda":
        return True
    return available_cpus() > torch.get_num_threads()


def auto_batch(loaded: LoadedModel, clip_len: int | None = None, method: str = "gradcam") -> int:
    """Windows (or frames) per forward.

    On the CPU a batch of about 1.6M input values: big inputs gain nothing from batching (r3d_18
    at 16x112x112, 2 cores: 0.45 s a window in batches of 2, 0.47 s in batches of 8) and keep
    memory low, while small ones shed per-call overhead (videocam_tiny at 16x64x64: batches of
    8 take 20 % less time than batches of 2). On a GPU it follows from memory: see
    :func:`cuda_batch`.
    """
    clip_len = clip_len or loaded.clip_len or 16
    if loaded.device.type == "cuda":
        return cuda_batch(loaded, clip_len, method)
    height, width = loaded.preprocess.size
    values = 3 * height * width * (1 if loaded.kind == "frame" else clip_len)
    return max(1, min(MAX_CPU_BATCH, CPU_BATCH_VALUES // values))


def cuda_batch(loaded: LoadedModel, clip_len: int, method: str) -> int:
    """Windows per batch from free GPU memory: a probe window's peak, within
    :data:`CUDA_MEMORY_SHARE` of the free memory."""
    import torch

    from videocam.cam import cam_and_output_classes

    device = loaded.device
    height, width = loaded.preprocess.size
    shape = (1, 3, height, width) if loaded.kind == "frame" else (1, 3, clip_len, height, width)
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    cam_and_output_classes(  # with as many classes as the pass keeps
        loaded.module,
        torch.zeros(shape, device=device),
        loaded.layer,
        lambda out: torch.arange(min(AUTO_CANDIDATES, out.shape[1]), device=out.device),
        method,
        reshape=loaded.reshape,
    )
    per_window = max(1, torch.cuda.max_memory_allocated(device) - before)
    free, _ = torch.cuda.mem_get_info(device)
    return int(min(MAX_CUDA_BATCH, max(1, int(CUDA_MEMORY_SHARE * free) // per_window)))


def autocast(device: torch.device, enabled: bool) -> Any:
    """A context that runs the model in reduced precision when ``enabled``: bfloat16 on the
    CPU, float16 on a GPU; a no-op context otherwise."""
    import torch

    if not enabled:
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if device.type == "cpu" else torch.float16
    return torch.autocast(device.type, dtype=dtype)
