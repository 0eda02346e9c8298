"""``videocam batch --engine ray``: the same results and failures as the local engine, crashes
isolated, a killed actor's video redone by ``--resume``, and clear errors without Ray or cluster.

The tests share one local Ray (2 CPUs) started by a module fixture: in-process batches use it
as the caller's session, and the subprocess batch joins it with ``--ray-address``. The resume
after the kill runs without an address, so it starts (and stops) a Ray of its own.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from videocam.batch import DONE_MARKER, FAILURE_COLUMNS, INDEX_COLUMNS, WORKER_CRASH
from videocam.batch.ray_engine import (
    INSTALL_HINT,
    RayEngine,
    out_visible,
    signal_from_stderr,
    split_address,
)
from videocam.cli import main
from videocam.synthetic import write_frames

from support.batch import CRASHING_MODEL
from support.batch import assert_complete as _assert_complete
from support.batch import clip as _clip
from support.batch import read_index as _index

FAST = ["--weights", "none", "--device", "cpu", "--quiet", "--no-render"]
HAS_RAY = importlib.util.find_spec("ray") is not None
needs_ray = pytest.mark.skipif(not HAS_RAY, reason="ray is not installed (pip install ray)")


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two clip.mp4 in different folders and a text file named bad.mp4."""
    root = tmp_path_factory.mktemp("ray_in")
    _clip(root / "a" / "clip.mp4", seed=1)
    _clip(root / "b" / "clip.mp4", seed=2)
    (root / "bad.mp4").write_text("not a video\n")
    return root


# -- without Ray, or without a cluster ------------------------------------------------------------


def test_without_ray_says_how_to_install(
    videos: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    out = tmp_path / "out"
    assert main(["batch", str(videos), "-o", str(out), "--engine", "ray", *FAST]) == 2
    err = capsys.readouterr().err
    assert err == f"videocam: error: {INSTALL_HINT}\n"
    assert not out.exists()  # refused before OUT was touched


def test_ray_address_needs_the_ray_engine(
    videos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["batch", str(videos), "-o", str(tmp_path / "out"), "--ray-address", "h:1", *FAST]
    assert main(args) == 2
    assert "--ray-address needs --engine ray" in capsys.readouterr().err


def test_address_forms() -> None:
    assert split_address("10.0.0.1:6380") == ("10.0.0.1", 6380)
    assert split_address("head") == ("head", 6379)
    assert split_address("ray://head:10001") == ("head", 10001)
    assert split_address("[::1]:6379") == ("::1", 6379)
    assert split_address("auto") is None
    assert signal_from_stderr("x\nFatal Python error: Segmentation fault\n\nstack") == "SIGSEGV"
    assert signal_from_stderr("killed") is None


def test_out_visible(tmp_path: Path) -> None:
    probe = tmp_path / ".ray-probe-x.tmp-log"
    assert not out_visible(str(probe), "x")
    probe.write_text("x")
    assert out_visible(str(probe), "x")
    assert not out_visible(str(probe), "y")


@needs_ray
def test_unreachable_address_exits_2_at_once(
    videos: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Ray's own ray.init(address=...) retries for minutes; the batch checks the port first.
    import ray

    # As in a fresh process: a Ray this process already runs (this module's other tests start
    # one, in whatever order) would be used as it is, whatever the address.
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    out = tmp_path / "out"
    started = time.monotonic()
    args = ["batch", str(videos), "-o", str(out), "--engine", "ray", "--ray-address"]
    assert main([*args, "127.0.0.1:1", *FAST]) == 2
    assert time.monotonic() - started < 60  # not Ray's minutes of retries (a loaded machine)
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err
    assert "--ray-address 127.0.0.1:1: cannot reach a Ray cluster there" in err
    assert not (out / "index.csv").exists()


# -- runs on a local Ray -------------------------------------------------------------------------


@pytest.mark.slow
def test_ray_gives_the_local_engines_results(
    ray_cluster: str, videos: Path, tmp_path: Path
) -> None:
    outs = {engine: tmp_path / engine for engine in ("local", "ray")}
    for engine, out in outs.items():
        args = ["batch", str(videos), "-o", str(out), "--engine", engine, "--workers", "2"]
        assert main([*args, *FAST]) == 3
    local, ray_ = (_index(outs[e]) for e in ("local", "ray"))
    assert list(ray_.status) == ["ok", "ok", "failed"], ray_.error.tolist()
    assert list(ray_.columns) == INDEX_COLUMNS
    columns = ["path", "output", "status", "target", "target_index", "n_frames", "error_type"]
    pd.testing.assert_frame_equal(local[columns], ray_[columns])
    assert list(local.top_keyframe_times_s) == list(ray_.top_keyframe_times_s)
    for name in ("a__clip.mp4", "b__clip.mp4"):
        _assert_complete(outs["ray"] / name)
        one, two = (pd.read_csv(outs[e] / name / "frames.csv") for e in ("local", "ray"))
        assert list(one.frame_index) == list(two.frame_index)
        assert list(one.is_keyframe) == list(two.is_keyframe)
        np.testing.assert_allclose(one.time_s, two.time_s)
        np.testing.assert_allclose(one.attribution, two.attribution, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(one.target_score, two.target_score, rtol=1e-5, atol=1e-7)
    # Failures listed the same way: same rows, same columns, the same log.txt only.
    failures = [pd.read_csv(outs[e] / "failures.csv") for e in ("local", "ray")]
    assert list(failures[1].columns) == FAILURE_COLUMNS
    pd.testing.assert_frame_equal(*failures)
    assert failures[1].error_type[0] == "VideoOpenError"
    assert {p.name for p in (outs["ray"] / "bad.mp4").iterdir()} == {"log.txt"}
    assert "Traceback" in (outs["ray"] / "bad.mp4" / "log.txt").read_text()
    summary = json.loads((outs["ray"] / "batch.json").read_text())
    assert summary["engine"] == "ray"
    assert summary["finished"]
    assert summary["workers"] == 2
    assert not list(outs["ray"].glob(".*.tmp-*"))  # stderr captures, probe

    # --resume over the same OUT with the other engine skips what is complete.
    args = ["batch", str(videos), "-o", str(outs["ray"]), "--resume", "--engine", "local"]
    assert main([*args, *FAST]) == 3
    assert list(_index(outs["ray"]).status) == ["skipped-complete"] * 2 + ["failed"]


@pytest.mark.slow
def test_a_crashing_actor_fails_one_video_only(ray_cluster: str, tmp_path: Path) -> None:
    model = tmp_path / "model.py"
    model.write_text(CRASHING_MODEL)
    inputs = tmp_path / "in"
    _clip(inputs / "a.mp4", seed=20)
    write_frames(inputs / "b_crash.mp4", [np.full((48, 64, 3), 128, np.uint8)] * 16, 25)
    _clip(inputs / "c.mp4", seed=21)
    out = tmp_path / "out"
    args = ["batch", str(inputs), "-o", str(out), "--engine", "ray", "--model", f"{model}:build"]
    args += ["--layer", "features", "--input-size", "32", "32", "--clip-len", "8"]
    assert main([*args, "--no-render", "--device", "cpu", "--quiet"]) == 3
    index = _index(out)
    assert list(index.status) == ["ok", "failed", "ok"]
    failures = pd.read_csv(out / "failures.csv")
    assert list(failures.error_type) == [WORKER_CRASH]
    assert "Ray worker (pid " in failures.message[0]
    assert "SIGSEGV" in failures.message[0]
    _assert_complete(out / "a.mp4")
    _assert_complete(out / "c.mp4")
    assert {p.name for p in (out / "b_crash.mp4").iterdir()} == {"log.txt"}
    log = (out / "b_crash.mp4" / "log.txt").read_text()
    assert "SIGSEGV" in log
    assert "in forward" in log
    assert not list(out.glob(".*.tmp-*"))  # stderr captures, probe


@pytest.mark.slow
def test_model_that_cannot_load_exits_2(
    ray_cluster: str, videos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    args = ["batch", str(videos), "-o", str(out), "--engine", "ray", "--layer", "no.such.layer"]
    assert main([*args, *FAST]) == 2
    assert "no.such.layer" in capsys.readouterr().err
    assert not out.exists()  # nothing written: the OUT it created is gone


@pytest.mark.slow
def test_out_not_shared_with_a_node_exits_2(
    ray_cluster: str,
    videos: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # As if OUT were a different folder on the actors' node: they cannot see the driver's probe.
    def probe_elsewhere(engine: RayEngine) -> None:
        assert engine.scratch_dir is not None
        engine._probe = engine.scratch_dir / ".ray-probe-on-another-disk.tmp-log"

    monkeypatch.setattr(RayEngine, "_write_probe", probe_elsewhere)
    out = tmp_path / "out"
    assert main(["batch", str(videos), "-o", str(out), "--engine", "ray", *FAST]) == 2
    err = capsys.readouterr().err
    assert "not visible from Ray node" in err
    assert "same path" in err
    assert len(err.strip().splitlines()) == 1
    assert not (out / "index.csv").exists()


def _busy_actors() -> list[int]:
    """PIDs of Ray actor processes running a video now (Ray titles them by method)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if cmdline.startswith(b"ray::RayBatchWorker.run"):
            found.append(int(entry.name))
    return found


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="finds actors through /proc")
def test_killed_actor_fails_its_video_and_resume_redoes_it(
    ray_cluster: str, tmp_path: Path
) -> None:
    inputs = tmp_path / "in"
    for i in range(8):
        _clip(inputs / f"clip{i}.mp4", seed=30 + i, n_frames=64)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "videocam", "batch", str(inputs), "-o", str(out)]
    command += ["--engine", "ray", "--ray-address", ray_cluster, "--workers", "2", *FAST]
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.Popen(command, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while len(list(out.glob(f"*/{DONE_MARKER}"))) < 2 or not _busy_actors():
            assert proc.poll() is None, "the batch ended before an actor could be killed"
            assert time.monotonic() < deadline, "no video completed in 120 s"
            time.sleep(0.005)
        victim = _busy_actors()[0]
        os.kill(victim, signal.SIGKILL)
        assert proc.wait(timeout=120) == 3
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    index = _index(out)
    failed = list(index.output[index.status == "failed"])
    assert len(failed) == 1
    assert set(index.status) == {"ok", "failed"}
    failures = pd.read_csv(out / "failures.csv")
    assert list(failures.error_type) == [WORKER_CRASH]
    assert f"pid {victim}" in failures.message[0]
    assert {p.name for p in (out / failed[0]).iterdir()} == {"log.txt"}
    complete = {p.parent.name: p.stat().st_mtime_ns for p in out.glob(f"*/{DONE_MARKER}")}
    assert len(complete) == 7

    # The resume starts a Ray of its own (no address) and redoes the killed actor's video only.
    command = [sys.executable, "-m", "videocam", "batch", str(inputs), "-o", str(out)]
    command += ["--engine", "ray", "--resume", *FAST]
    assert subprocess.run(command, env=env, timeout=180).returncode == 0
    index = _index(out)
    expected = ["ok" if f"clip{i}.mp4" in failed else "skipped-complete" for i in range(8)]
    assert list(index.status) == expected
    for i in range(8):
        _assert_complete(out / f"clip{i}.mp4")
    for name, mtime in complete.items():
        assert (out / name / DONE_MARKER).stat().st_mtime_ns == mtime  # not redone
    assert json.loads((out / "batch.json").read_text())["ray_address"] == "local"
