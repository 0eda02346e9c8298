"""Shared fixtures and rules: the real-footage folder, a local Ray for the tests of ``--engine
ray``, the ``gpu`` marker (skips itself without CUDA), torch's thread count restored after every
test, and, in CI, a missing test dependency as a failure rather than a skip."""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.footage import REAL_VIDEOS, REAL_VIDEOS_ENV

# Two cores shared with other work: spin-waiting OpenMP threads slow torch down badly.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


#: Where every test dependency must be there (CI sets ``CI=true``; .ci/run installs the dev
#: extra): a test that would skip because a module is missing fails instead.
REQUIRE_DEPENDENCIES = os.environ.get("CI", "").lower() not in ("", "0", "false")
#: The skip reasons that mean "a module is missing": pytest.importorskip's, and the tests' own.
MISSING_MODULE = ("could not import", "is not installed")


def pytest_runtest_setup(item: pytest.Item) -> None:
    """``@pytest.mark.gpu`` tests skip themselves where torch sees no CUDA device; torch's
    global generator starts every test from a seed of its own (its id's CRC-32), so that what a
    test draws without a generator of its own does not depend on the tests before it (the order
    is random: pytest-randomly reseeds random and numpy likewise, but not torch)."""
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(zlib.crc32(item.nodeid.encode()))
    if item.get_closest_marker("gpu") is not None:
        import torch

        if not torch.cuda.is_available():
            pytest.skip("needs a CUDA device")


def _missing_dependency(report: pytest.CollectReport | pytest.TestReport) -> None:
    """Turn a skip for a missing module into a failure where dependencies are required."""
    if not (REQUIRE_DEPENDENCIES and report.skipped):
        return
    if any(reason in str(report.longrepr) for reason in MISSING_MODULE):
        report.outcome = "failed"
        report.longrepr = (
            f"a test dependency is missing (CI installs the dev extra): {report.longrepr}"
        )


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Iterator[None]:
    report = yield
    _missing_dependency(report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    _missing_dependency(report)
    return report


@pytest.fixture(autouse=True)
def _torch_threads_restored() -> Iterator[None]:
    """A test that changes torch's thread count (tests that reproduce a number do) leaves it as
    it was: the tests after it, in whatever order, see the count the process started with."""
    torch = sys.modules.get("torch")
    before = torch.get_num_threads() if torch is not None else None
    yield
    torch = sys.modules.get("torch")
    if torch is not None and before is not None and torch.get_num_threads() != before:
        torch.set_num_threads(before)


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[str]:
    """One local Ray (2 CPUs) for the module; yields its address. Skips without Ray."""
    if importlib.util.find_spec("ray") is None:
        pytest.skip("ray is not installed (pip install ray)")
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
    """The real-footage folder (tests/support/footage.py); tests using it skip when it is
    absent."""
    if not REAL_VIDEOS.is_dir():
        pytest.skip(f"real footage not available at {REAL_VIDEOS} (set {REAL_VIDEOS_ENV})")
    return REAL_VIDEOS


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
