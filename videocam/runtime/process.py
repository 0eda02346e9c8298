"""Process-wide settings a run wants and a library cannot take back: OpenMP's wait policy (read
when torch loads) and how the C allocator treats large buffers.

Both are set by the processes videocam owns — the command line, batch and evaluate workers, Ray
actors — and only where the user has not chosen otherwise. A Python user calls
:func:`prepare_process` before importing torch to get the same (see the performance guide).

**OpenMP's wait policy.** With the default (active) policy, torch's OpenMP threads spin while
they wait for work; on a machine where another process competes for the cores the spinning
threads take its turns and a per-frame analysis ran 3x slower (31 s against 9.5 s with
``OMP_WAIT_POLICY=PASSIVE``, alternating runs, one competing process, 2 cores). It is read once,
when torch's OpenMP runtime loads, so it must be in the environment before ``import torch``.

**Large buffers.** glibc serves every allocation above its mmap threshold (at most 32 MiB) with
a fresh ``mmap`` and returns it to the kernel with ``munmap`` when freed, and gives back the
top of its heap when more than the trim threshold is free there. A model's activations are such
buffers: efficientnet_lite0 on 10 frames of 224x224 allocates expansions of 48 MB in every
forward, so each batch mapped, zero-filled and unmapped a few hundred MB — 4.5 million page
faults and 17 s of kernel time against 20 s of user time over a 377-frame clip. Keeping freed
memory in the process (no ``mmap`` for allocations, a heap trimmed only above
:data:`TRIM_THRESHOLD_BYTES` free) took that to 0.2 million faults and 1.5 s, for about 200 MB
more peak memory (the heap holds what ``munmap`` would have returned at once).
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
from collections.abc import MutableMapping

__all__ = [
    "ENVIRONMENT_DEFAULTS",
    "TRIM_THRESHOLD_BYTES",
    "allocator_setting",
    "environment_defaults",
    "keep_freed_memory",
    "prepare_process",
]

logger = logging.getLogger(__name__)

#: Variables set (when absent) before torch loads, and why: see the module docstring.
ENVIRONMENT_DEFAULTS: dict[str, str] = {"OMP_WAIT_POLICY": "PASSIVE"}

#: Free memory at the top of the heap that glibc keeps before giving it back to the kernel.
TRIM_THRESHOLD_BYTES = 256 * 2**20

#: Set to ``system`` to leave the C allocator as it is.
ALLOCATOR_ENV = "VIDEOCAM_ALLOCATOR"

# mallopt(3) parameters.
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4

# The environment variables through which a user tunes glibc's allocator (or replaces it).
_USER_ALLOCATOR_ENV = (
    "MALLOC_MMAP_MAX_",
    "MALLOC_MMAP_THRESHOLD_",
    "MALLOC_TRIM_THRESHOLD_",
    "MALLOC_TOP_PAD_",
    "MALLOC_ARENA_MAX",
)
_OTHER_ALLOCATORS = ("jemalloc", "tcmalloc", "mimalloc")

#: What :func:`keep_freed_memory` did in this process (None: not called yet).
_allocator: str | None = None


def environment_defaults(environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Set the variables of :data:`ENVIRONMENT_DEFAULTS` that ``environ`` lacks.

    Child processes inherit them. Too late for this process when torch is already imported
    (logged at debug level); worker processes started afterwards still get them.

    Args:
        environ: the environment to complete (default: ``os.environ``).

    Returns:
        The variables set here (empty when the user had set them all).
    """
    environ = os.environ if environ is None else environ
    added = {key: value for key, value in ENVIRONMENT_DEFAULTS.items() if key not in environ}
    environ.update(added)
    if added and environ is os.environ and "torch" in sys.modules:
        logger.debug("torch is already loaded: %s apply to child processes only", added)
    return added


def keep_freed_memory() -> str:
    """Have glibc keep freed large buffers in the process instead of unmapping them.

    Idempotent. Leaves the allocator alone when it is not glibc's, when the user tunes it
    (``MALLOC_*_`` variables, ``glibc.malloc`` tunables, an allocator in ``LD_PRELOAD``) or
    sets ``VIDEOCAM_ALLOCATOR=system``.

    Returns:
        What holds now, for summary.json: ``"glibc: no mmap, trim above 256 MiB"`` or
        ``"system: <why>"``.
    """
    global _allocator
    if _allocator is not None:
        return _allocator
    reason = _why_not_tune(os.environ)
    if reason is None:
        try:
            libc = ctypes.CDLL(None)
            mallopt = libc.mallopt
        except (OSError, AttributeError):
            reason = "no mallopt in this C library"
        else:
            mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
            mallopt.restype = ctypes.c_int
            if mallopt(_M_MMAP_MAX, 0) == 1 and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES):
                _allocator = f"glibc: no mmap, trim above {TRIM_THRESHOLD_BYTES // 2**20} MiB"
                return _allocator
            reason = "mallopt refused"
    _allocator = f"system: {reason}"
    logger.debug("allocator left as it is (%s)", reason)
    return _allocator


def allocator_setting() -> str:
    """What :func:`keep_freed_memory` did in this process: ``"system: not set by videocam"``
    when it was not called."""
    return _allocator or "system: not set by videocam"


def prepare_process() -> dict[str, str]:
    """Both settings of this module, for a process that is about to import torch.

    Returns:
        ``{"omp_wait_policy": ..., "allocator": ...}`` as they hold now.
    """
    environment_defaults()
    return {
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", ""),
        "allocator": keep_freed_memory(),
    }


def _why_not_tune(environ: MutableMapping[str, str]) -> str | None:
    """Why the allocator must stay as it is, or None."""
    if environ.get(ALLOCATOR_ENV, "").lower() == "system":
        return f"{ALLOCATOR_ENV}=system"
    if not _glibc():
        return "the C library is not glibc"
    for key in _USER_ALLOCATOR_ENV:
        if key in environ:
            return f"{key} is set"
    if "glibc.malloc" in environ.get("GLIBC_TUNABLES", ""):
        return "GLIBC_TUNABLES sets glibc.malloc"
    preload = environ.get("LD_PRELOAD", "")
    for name in _OTHER_ALLOCATORS:
        if name in preload:
            return f"{name} is preloaded"
    return None


def _glibc() -> bool:
    try:
        return (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc")
    except (AttributeError, ValueError, OSError):  # not on Linux
        return False
