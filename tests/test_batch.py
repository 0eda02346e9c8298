"""``videocam batch``: planning and names, failures and crashes isolated, workers, resume."""

from __future__ import annotations

import contextlib
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

from videocam.batch import (
    DONE_MARKER,
    FAILURE_COLUMNS,
    INDEX_COLUMNS,
    WORKER_CRASH,
    Job,
    completed_result,
    config_hash,
    find_videos,
    plan_jobs,
    sub_folder_name,
)
from videocam.batch.plan import MAX_NAME_CHARS
from videocam.cli import main
from videocam.config import AnalyzeConfig
from videocam.synthetic import write_frames

from support.batch import CRASHING_MODEL, page_data
from support.batch import assert_complete as _assert_complete
from support.batch import clip as _clip
from support.batch import read_index as _index

FAST = ["--weights", "none", "--device", "cpu", "--quiet"]


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two clip.mp4 in different folders, a text file named bad.mp4, and a README."""
    root = tmp_path_factory.mktemp("batch_in")
    _clip(root / "a" / "clip.mp4", seed=1)
    _clip(root / "b" / "clip.mp4", seed=2)
    (root / "bad.mp4").write_text("not a video\n")
    (root / "README.txt").write_text("ignored: not a video extension\n")
    (root / ".hidden.mp4").write_text("ignored: hidden\n")
    return root


# -- planning ----------------------------------------------------------------------------------


def test_names_are_unique_safe_and_deterministic(tmp_path: Path) -> None:
    base = tmp_path / "in"
    cases = [
        base / "a" / "clip.mp4",
        base / "b" / "clip.mp4",
        base / "a b" / "clip.mp4",  # unsafe character -> hashed
        base / "a_b" / "clip.mp4",
        base / "a__b" / "clip.mp4",  # would read as two components -> hashed
        base / "a" / "b__clip.mp4",
        base / ".." / "outside" / "clip.mp4",  # outside the base -> file name + hash
        Path("/etc/clip.mp4"),
        base / ("x" * 300 + ".mp4"),  # too long -> cut + hash
        base / ".hidden.mp4",
        base / "index.csv",  # a reserved name in OUT
        base / "report.html",  # the batch page's
        base / "vidéo.mp4",
    ]
    names = [sub_folder_name(p, base) for p in cases]
    assert names[:2] == ["a__clip.mp4", "b__clip.mp4"]
    assert names[3] == "a_b__clip.mp4"
    assert names[2].startswith("a_b__clip.mp4-")
    assert len(set(names)) == len(names)
    for name in names:
        assert "/" not in name
        assert "\\" not in name
        assert not name.startswith(".")
        assert name not in ("", ".", "..")
        assert len(name) <= MAX_NAME_CHARS + 9
        assert (tmp_path / "out" / name).resolve().parent == (tmp_path / "out").resolve()
    assert [sub_folder_name(p, base) for p in cases] == names  # deterministic


def test_plan_folder_skips_out_hidden_and_other_extensions(videos: Path, tmp_path: Path) -> None:
    jobs = plan_jobs(videos, tmp_path / "out")
    assert [j.name for j in jobs] == ["a__clip.mp4", "b__clip.mp4", "bad.mp4"]
    assert all(j.out_dir.parent == (tmp_path / "out").absolute() for j in jobs)
    # An OUT inside the input folder is not searched (its annotated.mp4 are not inputs).
    inner = tmp_path / "in"
    _clip(inner / "v.mp4", seed=3)
    (inner / "out" / "v.mp4").mkdir(parents=True)
    (inner / "out" / "v.mp4" / "annotated.mp4").write_bytes(b"x")
    assert [p.name for p in find_videos(inner, exclude=inner / "out")] == ["v.mp4"]


def test_case_insensitive_collisions_get_distinct_names(tmp_path: Path) -> None:
    manifest = tmp_path / "list.csv"
    manifest.write_text("path\nClip.mp4\nclip.mp4\nclip.mp4\n")
    jobs = plan_jobs(manifest, tmp_path / "out")
    assert len(jobs) == 2  # the duplicate is analysed once
    assert len({j.name.casefold() for j in jobs}) == 2


def test_bad_inputs_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(["batch", str(tmp_path / "missing"), "-o", str(out), *FAST]) == 2
    (tmp_path / "empty").mkdir()
    assert main(["batch", str(tmp_path / "empty"), "-o", str(out), *FAST]) == 2
    (tmp_path / "m.csv").write_text("video\nx.mp4\n")
    assert main(["batch", str(tmp_path / "m.csv"), "-o", str(out), *FAST]) == 2
    assert main(["batch", str(tmp_path / "m.csv"), "-o", str(out), "--workers", "0"]) == 2
    err = capsys.readouterr().err
    assert "no such folder or manifest" in err
    assert "no video files" in err
    assert "'path' column" in err
    assert "Traceback" not in err


def test_config_file_cannot_run_code(videos: Path, tmp_path: Path) -> None:
    witness = tmp_path / "pwned"
    config = tmp_path / "evil.yaml"
    config.write_text(f"weights: !!python/object/apply:os.system ['touch {witness}']\n")
    code = main(["batch", str(videos), "-o", str(tmp_path / "out"), "--config", str(config)])
    assert code == 2
    assert not witness.exists()


# -- runs ----------------------------------------------------------------------------------------


def test_folder_batch_isolates_a_bad_file(videos: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["batch", str(videos), "-o", str(out), "--no-render", *FAST]) == 3
    index = _index(out)
    assert list(index.columns) == INDEX_COLUMNS
    assert list(index.output) == ["a__clip.mp4", "b__clip.mp4", "bad.mp4"]
    assert list(index.status) == ["ok", "ok", "failed"]
    for name in ("a__clip.mp4", "b__clip.mp4"):
        _assert_complete(out / name)
        keyframes = pd.read_csv(out / name / "keyframes.csv")
        row = index[index.output == name].iloc[0]
        assert row.top_keyframe_times_s == ";".join(f"{t:.3f}" for t in keyframes.time_s)
        assert int(row.n_frames) == 24
        assert row.target != ""
        assert row.error == ""
    failures = pd.read_csv(out / "failures.csv")
    assert list(failures.columns) == FAILURE_COLUMNS
    assert len(failures) == 1
    assert failures.path[0].endswith("bad.mp4")
    assert failures.error_type[0] == "VideoOpenError"
    assert "bad.mp4" in failures.message[0]
    # A failed video keeps only its log (with the traceback), no partial outputs, no marker.
    assert {p.name for p in (out / "bad.mp4").iterdir()} == {"log.txt"}
    assert "Traceback" in (out / "bad.mp4" / "log.txt").read_text()
    summary = json.loads((out / "batch.json").read_text())
    assert summary["finished"]
    assert summary["counts"]["failed"] == 1
    # The numbers the review page shows are in the index too; nothing rendered, no images.
    ok = index[index.status == "ok"]
    assert (ok.peak_target_score.astype(float) > 0).all()
    assert (ok.peak_attribution.astype(float) > 0).all()
    assert ok.segment_share.astype(float).between(0, 1).all()
    assert (ok.top_keyframe_image == "").all()
    # The batch page: one row per video in plan order, names relative to the input folder;
    # without rendering no video has a page of its own to link to.
    data = page_data(out / "report.html")
    assert data["finished"] is True
    # No --method: the page names the one the videos' summaries record, not "the default".
    methods = {json.loads((out / n / "summary.json").read_text())["method"] for n in ok.output}
    assert methods == {"gradcam"}
    assert data["method"] == "gradcam"
    counts = {"videos": 3, "ok": 2, "skipped_complete": 0, "failed": 1, "pending": 0}
    assert data["counts"] == counts
    rows = data["rows"]
    assert [r["name"] for r in rows] == ["a/clip.mp4", "b/clip.mp4", "bad.mp4"]
    assert [r["report"] for r in rows] == ["", "", ""]
    assert rows[2]["error_type"] == "VideoOpenError"
    assert rows[2]["log"] == "bad.mp4/log.txt"
    assert rows[0]["keyframes"] == [float(t) for t in index.top_keyframe_times_s[0].split(";")]

    # Without --resume a used OUT is refused; the completion check follows options and source.
    assert main(["batch", str(videos), "-o", str(out), "--no-render", *FAST]) == 2
    job = Job(videos / "a" / "clip.mp4", "a__clip.mp4", out / "a__clip.mp4")
    config = AnalyzeConfig(weights="none", device="cpu", render=False)
    assert completed_result(job, config_hash(config))[0] == "complete"
    assert completed_result(job, config_hash(config.replace(topk=2)))[0] == "config-changed"
    os.utime(job.path, ns=(1, 1))
    assert completed_result(job, config_hash(config))[0] == "source-changed"


def test_manifest_entries_stay_inside_out(tmp_path: Path) -> None:
    listed = _clip(tmp_path / "m" / "clips" / "one.mp4", seed=4)
    elsewhere = _clip(tmp_path / "elsewhere" / "two.mp4", seed=5)
    _clip(tmp_path / "outside" / "three.mp4", seed=6)
    manifest = tmp_path / "m" / "list.csv"
    manifest.write_text(
        f"path,label\n{listed.relative_to(manifest.parent)},grow\n{elsewhere},\n"
        "../outside/three.mp4,\n"
    )
    out = tmp_path / "out"
    assert main(["batch", str(manifest), "-o", str(out), "--no-render", *FAST]) == 0
    index = _index(out)
    assert list(index.status) == ["ok"] * 3
    assert index.output[0] == "clips__one.mp4"
    for name in index.output:
        sub = (out / name).resolve()
        assert sub.parent == out.resolve()
        _assert_complete(sub)
    assert {p.name for p in out.iterdir() if p.is_dir()} == set(index.output)


def test_workers_give_the_same_results(tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    for i in range(3):
        _clip(inputs / f"v{i}.mp4", seed=10 + i)
    outs = {}
    for workers in (1, 2):
        outs[workers] = tmp_path / f"out{workers}"
        args = ["batch", str(inputs), "-o", str(outs[workers]), "--workers", str(workers)]
        assert main([*args, "--no-render", *FAST]) == 0
    for i in range(3):
        one, two = (pd.read_csv(outs[w] / f"v{i}.mp4" / "frames.csv") for w in (1, 2))
        assert list(one.frame_index) == list(two.frame_index)
        assert list(one.is_keyframe) == list(two.is_keyframe)
        np.testing.assert_allclose(one.attribution, two.attribution, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(one.target_score, two.target_score, rtol=1e-5, atol=1e-7)
    by_workers = [_index(outs[w]).drop(columns="seconds") for w in (1, 2)]
    pd.testing.assert_frame_equal(*by_workers)


def test_a_crashing_worker_fails_one_video_only(tmp_path: Path) -> None:
    model = tmp_path / "model.py"
    model.write_text(CRASHING_MODEL)
    inputs = tmp_path / "in"
    _clip(inputs / "a.mp4", seed=20)
    write_frames(inputs / "b_crash.mp4", [np.full((48, 64, 3), 128, np.uint8)] * 16, 25)
    _clip(inputs / "c.mp4", seed=21)
    out = tmp_path / "out"
    args = ["batch", str(inputs), "-o", str(out), "--model", f"{model}:build"]
    args += ["--layer", "features", "--input-size", "32", "32", "--clip-len", "8"]
    assert main([*args, "--no-render", "--device", "cpu", "--quiet"]) == 3
    index = _index(out)
    assert list(index.status) == ["ok", "failed", "ok"]
    failures = pd.read_csv(out / "failures.csv")
    assert list(failures.error_type) == [WORKER_CRASH]
    assert "SIGSEGV" in failures.message[0]
    _assert_complete(out / "a.mp4")
    _assert_complete(out / "c.mp4")
    log = (out / "b_crash.mp4" / "log.txt").read_text()
    assert "SIGSEGV" in log
    assert "in forward" in log
    assert not list(out.glob(".stderr-*"))


def test_model_that_cannot_load_exits_2_and_leaves_out_reusable(
    videos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    args = ["batch", str(videos), "-o", str(out), "--layer", "no.such.layer", *FAST]
    assert main(args) == 2
    assert "no.such.layer" in capsys.readouterr().err
    assert not out.exists()  # nothing written: the OUT it created is gone


def _children(pid: int) -> list[int]:
    """Worker processes of ``pid`` (Linux /proc), the resource tracker excluded."""
    found = []
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    for child in children:
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in cmdline:
            found.append(int(child))
    return found


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "State:\tZ" not in status


def test_resume_after_sigkill(tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    for i in range(6):
        _clip(inputs / f"clip{i}.mp4", seed=30 + i, n_frames=48)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "videocam", "batch", str(inputs), "-o", str(out)]
    command += ["--workers", "1", *FAST]
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    proc = subprocess.Popen(command, env=env, start_new_session=True)
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while len(list(out.glob(f"*/{DONE_MARKER}"))) < 2:
            assert proc.poll() is None, "the batch ended before it could be killed"
            assert time.monotonic() < deadline, "no video completed in 60 s"
            workers = workers or _children(proc.pid)
            time.sleep(0.01)
        workers = workers or _children(proc.pid)
        if Path("/proc/self/task").is_dir():
            assert workers, "the batch's worker process was not found"
        # kill -9 of the batch process alone: its workers must not outlive it.
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while any(_alive(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(_alive(w) for w in workers), "a worker outlived the killed batch"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    complete = {p.parent.name: p.stat().st_mtime_ns for p in out.glob(f"*/{DONE_MARKER}")}
    assert 2 <= len(complete) < 6
    # What an interrupted write leaves behind: temporary files, here and there.
    stray = [out / ".index.csv.tmp-1-dead.csv", out / "clip5.mp4" / ".frames.csv.tmp-1-x.csv"]
    for path in stray:
        path.parent.mkdir(exist_ok=True)
        path.write_text("half")
    first = next(iter(complete))
    (out / first / ".cams.npy.tmp-1-y.npy").write_text("half")

    args = ["batch", str(inputs), "-o", str(out), "--workers", "1", *FAST]
    assert main([*args]) == 2  # a used OUT needs --resume
    assert main([*args, "--resume"]) == 0
    index = _index(out)
    expected = ["skipped-complete" if f"clip{i}.mp4" in complete else "ok" for i in range(6)]
    assert list(index.status) == expected
    for i in range(6):
        _assert_complete(out / f"clip{i}.mp4", render=True)
    for name, mtime in complete.items():
        assert (out / name / DONE_MARKER).stat().st_mtime_ns == mtime  # not redone
    assert not list(out.rglob("*.tmp-*"))
    # The batch page after --resume: every video, each linking to its own page.
    rows = page_data(out / "report.html")["rows"]
    assert [r["status"] for r in rows] == expected
    assert [r["report"] for r in rows] == [f"clip{i}.mp4/report.html" for i in range(6)]
    assert all(r["thumb"].startswith(f"clip{i}.mp4/keyframes/") for i, r in enumerate(rows))


# -- the shared worker pool and core counts ------------------------------------------------------


def _fake_pool(fates: list[str], n_jobs: int) -> tuple[list[str], list[bool]]:
    """Run ``n_jobs`` on a one-worker pool whose successive workers meet ``fates``: ``load``
    (loads, finishes its jobs), ``crash`` (loads, dies on its first job) or ``die-loading``.
    Returns the results (``output:status:error_type``) and the ``clean`` flags of the stops."""
    from collections.abc import Iterator, Sequence
    from dataclasses import dataclass

    from videocam.batch.job import JobResult, failed_result
    from videocam.batch.pool import Died, Event, Finished, Ready, Slot, run_pool

    @dataclass(kw_only=True)
    class Fake(Slot):
        fate: str
        greeted: bool = False

    class Backend:
        noun = "fake worker"
        load_hint = "; a hint"
        config = AnalyzeConfig(weights="none", device="cpu")

        def start(self) -> Fake:
            return Fake(fate=fates.pop(0))

        def assign(self, worker: Fake, job: Job) -> bool:
            return True

        def poll(self, workers: Sequence[Fake], timeout: float) -> Iterator[Event[Fake]]:
            for w in list(workers):
                if not w.greeted:
                    w.greeted = True
                    yield Died(w, "exit code 1", "boom") if w.fate == "die-loading" else Ready(w)
                elif w.job is not None and w.fate == "crash":
                    yield Died(w, "signal SIGSEGV")
                elif w.job is not None:
                    yield Finished(w, JobResult(str(w.job.path), w.job.name, "ok"))

        def crash_result(self, w: Fake, job: Job, seconds: float, death: Died[Fake]) -> JobResult:
            return failed_result(job, WORKER_CRASH, death.reason, seconds)

        def stop(self, workers: Sequence[Fake], *, clean: bool) -> None:
            stops.append(clean)

    results: list[str] = []
    stops: list[bool] = []
    jobs = [Job(Path(f"v{i}.mp4"), f"v{i}.mp4", Path(f"out/v{i}.mp4")) for i in range(n_jobs)]

    def on_result(result: JobResult) -> None:
        results.append(f"{result.output}:{result.status}:{result.error_type}")

    run_pool(Backend(), jobs, on_result, None, size=1)
    return results, stops


def test_pool_replaces_dead_workers_and_fails_a_load_only_before_any_loaded() -> None:
    from videocam.errors import ModelLoadError

    # A crash fails its video only; once a worker has loaded the model, a replacement dying
    # while loading is tolerated (as an idle death) and the next one takes the video.
    results, stops = _fake_pool(["crash", "die-loading", "load"], n_jobs=2)
    assert results == ["v0.mp4:failed:WorkerCrash", "v1.mp4:ok:"]
    assert stops == [True]
    # Before any worker loaded it, a death while loading is the model's failure.
    message = r"fake worker died while loading model 'videocam_tiny' \(exit code 1\): boom; a hint"
    with pytest.raises(ModelLoadError, match=message):
        _fake_pool(["die-loading"], n_jobs=1)
    # Workers that keep dying outside videos end the batch.
    with pytest.raises(RuntimeError, match=r"fake workers keep dying \(exit code 1\)"):
        _fake_pool(["crash", *["die-loading"] * 4], n_jobs=2)


def test_worker_threads_follow_the_cpu_quota(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import videocam.runtime.resources as resources
    from videocam.batch import LocalEngine
    from videocam.batch.ray_engine import actor_threads

    quota = tmp_path / "cpu.max"
    quota.write_text("100000 100000\n")  # a container limited to one CPU
    monkeypatch.setattr(resources, "_CGROUP_CPU_MAX", quota)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    config = AnalyzeConfig(weights="none", device="cpu")
    assert LocalEngine(config, workers=1).threads == 1
    assert actor_threads(1, local=True) == 1
    assert actor_threads(None) == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # still first
    assert LocalEngine(config, workers=2).threads == 3
    assert actor_threads(2, local=True) == 3
    assert actor_threads(None) == 3


def test_config_hash_follows_the_files_of_an_hf_directory(tmp_path: Path) -> None:
    """A model re-saved into the same save_pretrained folder invalidates completed videos."""
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"1234")
    config = AnalyzeConfig(model=f"hf:{folder}")
    before = config_hash(config)
    assert config_hash(config) == before
    (folder / "model.safetensors").write_bytes(b"123456")
    assert config_hash(config) != before
    assert config_hash(AnalyzeConfig(model="hf:org/not-a-folder")) != before


#: A custom model that hangs (as a decoder stuck in native code would) on a flat clip while the
#: file named by HANG_FLAG exists.
HANGING_MODEL = """
import os
import time
from pathlib import Path

import torch
from torch import nn


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Conv3d(3, 4, 3, padding=1)
        self.head = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if float(x.std(dim=(2, 3, 4)).max()) < 1e-2 and Path(os.environ["HANG_FLAG"]).exists():
            time.sleep(3600)
        return self.head(torch.relu(self.features(x)).mean(dim=(2, 3, 4)))


def build() -> nn.Module:
    return Net()
"""


@pytest.mark.slow
def test_timeout_kills_a_hung_video_and_resume_retries_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from videocam.batch import TIMEOUT

    model = tmp_path / "model.py"
    model.write_text(HANGING_MODEL)
    flag = tmp_path / "hang"
    flag.touch()
    monkeypatch.setenv("HANG_FLAG", str(flag))
    inputs = tmp_path / "in"
    _clip(inputs / "a.mp4", seed=40)
    write_frames(inputs / "b_hangs.mp4", [np.full((48, 64, 3), 128, np.uint8)] * 16, 25)
    _clip(inputs / "c.mp4", seed=41)
    out = tmp_path / "out"
    args = ["batch", str(inputs), "-o", str(out), "--model", f"{model}:build", "--timeout", "20"]
    args += ["--layer", "features", "--input-size", "32", "32", "--clip-len", "8"]
    args += ["--no-render", "--device", "cpu", "--quiet"]
    started = time.monotonic()
    assert main(args) == 3
    assert time.monotonic() - started < 120  # the hung video did not hold the batch
    index = _index(out)
    assert list(index.status) == ["ok", "failed", "ok"]
    failures = pd.read_csv(out / "failures.csv")
    assert list(failures.error_type) == [TIMEOUT]
    assert "--timeout 20 s" in failures.message[0]
    assert "--timeout 20 s" in (out / "b_hangs.mp4" / "log.txt").read_text()
    _assert_complete(out / "a.mp4")
    _assert_complete(out / "c.mp4")
    flag.unlink()  # the decoder no longer hangs: --resume redoes the video that timed out
    assert main([*args, "--resume"]) == 0
    assert list(_index(out).status) == ["skipped-complete", "ok", "skipped-complete"]
    _assert_complete(out / "b_hangs.mp4")
    assert main(["batch", str(inputs), "-o", str(tmp_path / "x"), "--timeout", "0"]) == 2
