"""Process-wide settings: OpenMP's wait policy before torch loads, and glibc keeping freed
large buffers (fewer page faults), each left alone where the user chose otherwise."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from videocam.runtime import process

GLIBC = (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc")


def _clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MALLOC_", "OMP_WAIT", "VIDEOCAM_ALLOC")) and k != "GLIBC_TUNABLES"
    }
    return {**env, **extra}


def _run(code: str, env: dict[str, str]) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_environment_defaults_fill_only_what_is_missing() -> None:
    environ: dict[str, str] = {}
    assert process.environment_defaults(environ) == {"OMP_WAIT_POLICY": "PASSIVE"}
    assert environ == {"OMP_WAIT_POLICY": "PASSIVE"}
    mine = {"OMP_WAIT_POLICY": "ACTIVE"}
    assert process.environment_defaults(mine) == {}
    assert mine == {"OMP_WAIT_POLICY": "ACTIVE"}


@pytest.mark.parametrize(
    ("environ", "reason"),
    [
        ({"VIDEOCAM_ALLOCATOR": "system"}, "VIDEOCAM_ALLOCATOR=system"),
        ({"MALLOC_ARENA_MAX": "2"}, "MALLOC_ARENA_MAX is set"),
        ({"MALLOC_TRIM_THRESHOLD_": "0"}, "MALLOC_TRIM_THRESHOLD_ is set"),
        ({"GLIBC_TUNABLES": "glibc.malloc.mmap_max=0"}, "GLIBC_TUNABLES sets glibc.malloc"),
        ({"LD_PRELOAD": "/usr/lib/libjemalloc.so.2"}, "jemalloc is preloaded"),
    ],
)
@pytest.mark.skipif(not GLIBC, reason="glibc only")
def test_the_users_allocator_settings_win(environ: dict[str, str], reason: str) -> None:
    assert process._why_not_tune(environ) == reason


@pytest.mark.skipif(not GLIBC, reason="glibc only")
def test_a_plain_environment_is_tuned() -> None:
    assert process._why_not_tune({"PATH": "/usr/bin"}) is None


# Allocates and frees a 64 MB buffer 20 times; prints the minor page faults it took.
_CHURN = """
import json, resource, sys
from videocam.runtime import process
setting = process.keep_freed_memory() if sys.argv[1] == "tuned" else "untouched"
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    buffer = bytearray(64 * 2**20)
    buffer[:: 4096] = b"x" * len(buffer[:: 4096])
    del buffer
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(json.dumps({"setting": setting, "faults": faults}))
"""


@pytest.mark.skipif(not GLIBC, reason="glibc only")
def test_freed_large_buffers_are_reused_instead_of_faulted_in_again() -> None:
    env = _clean_env()
    untouched = _run(_CHURN.replace("sys.argv[1]", "'plain'"), env)
    tuned = _run(_CHURN.replace("sys.argv[1]", "'tuned'"), env)
    assert tuned["setting"] == "glibc: no mmap, trim above 256 MiB"
    # 64 MB is 16,384 pages: mapped afresh 20 times by default, reused once kept.
    pages = 64 * 2**20 // 4096
    assert untouched["faults"] >= 15 * pages
    assert tuned["faults"] <= 3 * pages


def test_the_command_line_sets_the_defaults_before_torch_loads() -> None:
    code = (
        "import json, os, sys\n"
        "from videocam.cli import main\n"
        "from videocam.runtime import process\n"
        "main(['models'])\n"
        "print(json.dumps({'policy': os.environ.get('OMP_WAIT_POLICY'),"
        " 'allocator': process.allocator_setting()}))\n"
    )
    got = _run(code, _clean_env())
    assert got["policy"] == "PASSIVE"
    if GLIBC:
        assert got["allocator"] == "glibc: no mmap, trim above 256 MiB"
    mine = _run(code, _clean_env(OMP_WAIT_POLICY="ACTIVE", VIDEOCAM_ALLOCATOR="system"))
    assert mine == {"policy": "ACTIVE", "allocator": "system: VIDEOCAM_ALLOCATOR=system"}
