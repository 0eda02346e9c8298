"""What this process may use: CPU cores (affinity and container quota), torch threads, batch
sizes on the CPU and on a GPU, background decoding, and autocast.

Every "how many cores" question in the package is answered by :func:`available_cpus`, so a
container's CPU quota is honoured everywhere (the single pass, batch workers, Ray actors).
"""

from __future__ import annotations

import contextlib
import math
import os
import weakref
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
#: The same for object detectors, whose frames hold detections of a few classes only, and
#: whose kept classes each cost a backward through the RoI heads: with 32, Grad-CAM on 8
#: frames of fasterrcnn_mobilenet_v3_large_fpn at 128x160 took 13 GB and 103 s, with 4 2.4 GB
#: and 16 s (2 CPU cores). A window that misses the target is explained again, as above.
DETECTOR_AUTO_CANDIDATES = 4
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


def auto_candidates(loaded: LoadedModel) -> int:
    """How many candidate classes a window keeps while the target is unknown (``auto``)."""
    return DETECTOR_AUTO_CANDIDATES if loaded.detector is not None else AUTO_CANDIDATES


def auto_batch(
    loaded: LoadedModel,
    clip_len: int | None = None,
    method: str = "gradcam",
    autocast: bool = False,
) -> int:
    """Windows (or frames) per forward.

    On the CPU a batch of about 1.6M input values: big inputs gain nothing from batching (r3d_18
    at 16x112x112, 2 cores: 0.45 s a window in batches of 2, 0.47 s in batches of 8) and keep
    memory low, while small ones shed per-call overhead (videocam_tiny at 16x64x64: batches of
    8 take 20 % less time than batches of 2). On a GPU it follows from memory: see
    :func:`cuda_batch`.
    """
    clip_len = clip_len or loaded.clip_len or 16
    if loaded.device.type == "cuda":
        return cuda_batch(loaded, clip_len, method, autocast)
    height, width = loaded.preprocess.size
    values = 3 * height * width * (1 if loaded.kind == "frame" else clip_len)
    return max(1, min(MAX_CPU_BATCH, CPU_BATCH_VALUES // values))


#: Environment variable a batch engine sets in each worker: how many workers share its GPU.
WORKERS_PER_DEVICE_ENV = "VIDEOCAM_WORKERS_PER_DEVICE"
_DEV = Path("/dev")


def visible_gpus() -> list[str]:
    """The GPUs this process may hand to worker processes, without initialising CUDA (and
    without importing torch): ``CUDA_VISIBLE_DEVICES`` when set (an empty value: none), else
    the NVIDIA device files ``/dev/nvidia0``, ``/dev/nvidia1``... by number."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [part.strip() for part in listed.split(",") if part.strip() and part.strip() != "-1"]
    try:
        numbers = sorted(
            int(name[len("nvidia") :])
            for name in (p.name for p in _DEV.iterdir())
            if name.startswith("nvidia") and name[len("nvidia") :].isdigit()
        )
    except OSError:
        return []
    return [str(n) for n in numbers]


def least_loaded_gpu(gpus: list[str], load: dict[str, int]) -> str:
    """The GPU of ``gpus`` with the fewest workers now (``load``: GPU -> workers), ties to the
    first: workers spread round-robin, and a replacement takes the place a dead one left."""
    return min(gpus, key=lambda gpu: (load.get(gpu, 0), gpus.index(gpu)))


def worker_gpu_env(gpu: str, workers_on_it: int) -> dict[str, str]:
    """The environment of a worker process that is to use ``gpu`` only (set before torch is
    imported in it), and how many workers share that GPU (for :func:`cuda_batch`)."""
    return {"CUDA_VISIBLE_DEVICES": gpu, WORKERS_PER_DEVICE_ENV: str(max(1, workers_on_it))}


#: Probed batch sizes, per model and per (device, clip length, method, autocast, input size).
_PROBED: weakref.WeakKeyDictionary[Any, dict[tuple[Any, ...], int]] = weakref.WeakKeyDictionary()


def workers_per_device() -> int:
    """Workers sharing this process's GPU (``VIDEOCAM_WORKERS_PER_DEVICE``, default 1)."""
    with contextlib.suppress(KeyError, ValueError):
        return max(1, int(os.environ[WORKERS_PER_DEVICE_ENV]))
    return 1


def cuda_batch(loaded: LoadedModel, clip_len: int, method: str, autocast: bool = False) -> int:
    """Windows per batch from GPU memory, probed once per model and settings.

    A probe window's peak memory (with as many classes as the pass keeps, under the run's
    autocast) against this worker's budget: :data:`CUDA_MEMORY_SHARE` of the memory it may use
    — free on the device plus what PyTorch's allocator has reserved but not allocated — divided
    among the workers sharing the device (:func:`workers_per_device`). The probe resets the
    device's peak-memory statistics, once per model and settings.
    """
    key = (str(loaded.device), clip_len, method, autocast, tuple(loaded.preprocess.size))
    known = _PROBED.setdefault(loaded.module, {})
    if key not in known:
        known[key] = batch_from_memory(
            _probe_window_bytes(loaded, clip_len, method, autocast),
            *_device_memory(loaded.device),
            workers=workers_per_device(),
        )
    return known[key]


def batch_from_memory(
    per_window: int, free: int, reserved: int, allocated: int, *, workers: int = 1
) -> int:
    """Windows per batch for a probe window of ``per_window`` bytes (1 to
    :data:`MAX_CUDA_BATCH`): the budget is :data:`CUDA_MEMORY_SHARE` x (``free`` + reserved
    but unallocated bytes), shared by ``workers``."""
    usable = free + max(0, reserved - allocated)
    budget = int(CUDA_MEMORY_SHARE * usable) // max(1, workers)
    return int(min(MAX_CUDA_BATCH, max(1, budget // max(1, per_window))))


def _device_memory(device: torch.device) -> tuple[int, int, int]:
    """(free, reserved, allocated) bytes of ``device``."""
    import torch

    free, _ = torch.cuda.mem_get_info(device)
    return int(free), torch.cuda.memory_reserved(device), torch.cuda.memory_allocated(device)


def _probe_window_bytes(loaded: LoadedModel, clip_len: int, method: str, autocast: bool) -> int:
    """Peak memory of explaining one window (one frame for frame models)."""
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
        autocast=autocast,
    )
    return max(1, torch.cuda.max_memory_allocated(device) - before)


def autocast(device: torch.device, enabled: bool) -> Any:
    """A context that runs the model in bfloat16 when ``enabled`` (a no-op context otherwise),
    the dtype the CAM engine uses for ``autocast=True`` too.

    bfloat16 on the CPU and on a GPU alike: float16 has no loss scaling here, and the small
    gradients a head sends back to the target layer go subnormal in it.
    """
    import torch

    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)
