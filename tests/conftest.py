"""Shared fixtures: tiny synthetic videos made on the fly, and the real-footage folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Two cores shared with other work: spin-waiting OpenMP threads slow torch down badly.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

SHARED_VIDEOS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "videos"


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
