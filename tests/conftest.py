"""Shared fixtures: tiny synthetic videos made on the fly, the real-footage folder, and a local
Ray for the tests of ``--engine ray``."""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# Two cores shared with other work: spin-waiting OpenMP threads slow torch down badly.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

SHARED_VIDEOS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "videos"


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[str]:
    """One local Ray (2 CPUs) for the module; yields its address. Skips without Ray."""
    if importlib.util.find_spec("ray") is None:
        pytest.skip("ray is not installed")
    import ray

    os.environ.pop("RAY_ADDRESS", None)
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=128 * 1024**2,
        log_to_driver=False,
        logging_level=logging.ERROR,
    )
    try:
        yield str(ray.get_runtime_context().gcs_address)
    finally:
        ray.shutdown()


@pytest.fixture(scope="session")
def shared_videos() -> Path:
    """The real-footage folder; tests using it skip when it is absent."""
    if not SHARED_VIDEOS.is_dir():
        pytest.skip(f"real footage not available at {SHARED_VIDEOS}")
    return SHARED_VIDEOS


@pytest.fixture(autouse=True)
def _float32_agreement_on_gpu(request: pytest.FixtureRequest) -> object:
    """GPU tests compare with the CPU at float32 tolerances: TF32 off for them (cuDNN uses it
    for convolutions by default on Ampere and later, about 1e-3 relative per layer)."""
    if request.node.get_closest_marker("gpu") is None:
        yield
        return
    import torch

    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved
