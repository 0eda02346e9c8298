"""Faults of the environment: a full disk, SIGINT and SIGTERM, two runs into one folder, and
file names with spaces, non-ASCII characters and newlines. Nothing is ever half-written."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from videocam.cli import main
from videocam.synthetic import ClipSpec, make_clip

ENV = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    spec = ClipSpec(n_frames=150, size=(240, 320), seed=1, event="grow", event_start=50)
    return make_clip(tmp_path_factory.mktemp("faults") / "clip.mp4", spec).path


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Long enough to interrupt while it renders (some seconds of annotated clip)."""
    spec = ClipSpec(n_frames=900, size=(360, 480), seed=2, event="grow", event_start=300)
    return make_clip(tmp_path_factory.mktemp("faults_long") / "long.mp4", spec).path


def _files(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file below ``folder``: relative name -> (size, modification time)."""
    return {
        p.relative_to(folder).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in folder.rglob("*")
        if p.is_file()
    }


def _analyze(*args: str) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "videocam", "analyze", *args, "--device", "cpu", "--quiet"]
    return subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, env=ENV)


def _has_open(pid: int, path: Path) -> bool:
    """Whether process ``pid`` holds ``path`` open (Linux: its /proc/PID/fd links)."""
    target = str(path.resolve())
    try:
        links = [os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()]
    except OSError:  # the process ended, or a descriptor closed while listed
        return False
    return target in links


# --- a full disk ---------------------------------------------------------------------------------

LIMITED = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of death, as a full disk gives
resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))
from videocam.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_disk_full_names_out_and_leaves_the_earlier_result(clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["analyze", str(clip), "-o", str(out), "--device", "cpu", "--quiet"]) == 0
    before = _files(out)
    argv = ["analyze", str(clip), "-o", str(out), "--topk", "1", "--device", "cpu", "--quiet"]
    done = subprocess.run(
        [sys.executable, "-c", LIMITED, *argv], capture_output=True, text=True, env=ENV
    )
    assert done.returncode == 2
    assert done.stderr == (
        f"videocam: error: {out}: cannot write the outputs: a file would be too large "
        "(a file size limit is set for this process)\n"
    )
    assert _files(out) == before  # the earlier complete result, untouched
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


# --- SIGINT and SIGTERM --------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sig", "code", "said"),
    [(signal.SIGTERM, 143, "terminated"), (signal.SIGINT, 130, "interrupted")],
)
def test_a_signal_while_rendering_leaves_nothing(
    long_clip: Path, tmp_path: Path, sig: signal.Signals, code: int, said: str
) -> None:
    out = tmp_path / "out"
    process = _analyze(str(long_clip), "-o", str(out))
    deadline = time.monotonic() + 120
    while not (out.is_dir() and any(out.glob(".videocam-staging-*"))):
        assert process.poll() is None, "never started to write"
        assert time.monotonic() < deadline, "never started to write"
        time.sleep(0.05)
    time.sleep(0.5)  # inside the render pass
    process.send_signal(sig)
    # Stopped by the signal, not after the render: its exit status and an empty OUT say so (no
    # time limit here but communicate's, which only catches a hang: the machine may be loaded).
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == code
    assert stderr.strip().splitlines()[-1] == f"videocam: {said}"
    assert not out.exists()  # the staging folder and the OUT this run created are gone


@pytest.mark.slow
def test_sigterm_while_analysing_leaves_the_earlier_result(long_clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    argv = ["analyze", str(long_clip), "-o", str(out), "--no-render", "--device", "cpu"]
    assert main([*argv, "--quiet"]) == 0
    before = _files(out)
    process = _analyze(str(long_clip), "-o", str(out), "--no-render", "--topk", "1")
    deadline = time.monotonic() + 120
    while not _has_open(process.pid, long_clip):  # the decoder has the video: analysing
        assert process.poll() is None, "never opened the video"
        assert time.monotonic() < deadline, "never opened the video"
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 143, stderr
    assert _files(out) == before


@pytest.mark.slow
def test_sigterm_stops_a_batch_that_resume_finishes(tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    # The first video short, the others 4x longer: the signal lands while the batch still has
    # seconds of work, however loaded the machine (with four short ones it could finish first).
    for i in range(4):
        spec = ClipSpec(n_frames=120 if i == 0 else 480, size=(120, 160), seed=10 + i, event="grow")
        make_clip(inputs / f"v{i}.mp4", spec)
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "videocam", "batch", str(inputs), "-o", str(out)]
    argv += ["--device", "cpu", "--quiet"]
    process = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, env=ENV)
    deadline = time.monotonic() + 180
    while not list(out.glob("*/.done")):
        assert process.poll() is None
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert process.poll() is None, "the batch ended before the signal could be sent"
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr
    done = {p.parent.name for p in out.glob("*/.done")}
    assert 1 <= len(done) < 4
    for name in done:  # finished videos keep their outputs and markers
        marker = json.loads((out / name / ".done").read_text())
        assert all((out / name / f).is_file() for f in marker["files"])
    assert main([*argv[3:], "--resume"]) == 0
    index = pd.read_csv(out / "index.csv")
    assert sorted(index.status) == sorted(
        ["skipped-complete"] * len(done) + ["ok"] * (4 - len(done))
    )


# --- two runs into one folder --------------------------------------------------------------------


def test_a_new_run_replaces_the_earlier_one_entirely(clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    common = ["analyze", str(clip), "-o", str(out), "--device", "cpu", "--quiet"]
    assert main([*common, "--tracks", "2", "--topk", "3", "--min-gap", "0.2"]) == 0
    (out / "notes.txt").write_text("the reviewer's own notes")
    first = json.loads((out / "summary.json").read_text())["outputs"]
    assert "tracks.csv" in first
    assert main([*common, "--topk", "1"]) == 0
    second = json.loads((out / "summary.json").read_text())["outputs"]
    assert set(_files(out)) == set(second) | {"notes.txt"}  # one run's files, and the user's
    assert "tracks.csv" not in second
    assert len(list((out / "keyframes").iterdir())) == 1


@pytest.mark.slow
def test_two_runs_at_once_leave_one_runs_outputs(clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    runs = [
        _analyze(str(clip), "-o", str(out), "--topk", "1"),
        _analyze(str(clip), "-o", str(out), "--topk", "3", "--min-gap", "0.2", "--tracks", "2"),
    ]
    for process in runs:
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["topk"] in (1, 3)
    assert set(_files(out)) == set(summary["outputs"])  # whole, never a mix
    frames = pd.read_csv(out / "frames.csv")
    keyframes = pd.read_csv(out / "keyframes.csv")
    assert set(keyframes.frame_index) == set(frames.frame_index[frames.is_keyframe])
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


# --- names ---------------------------------------------------------------------------------------


def test_odd_names_read_only_inputs_and_quoted_csvs(clip: Path, tmp_path: Path) -> None:
    folder = tmp_path / "read only ü"
    folder.mkdir()
    video = folder / 'clip, "quoted" ü\nline.mp4'
    video.write_bytes(clip.read_bytes())
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        out = tmp_path / "out dir é"
        assert main(["analyze", str(video), "-o", str(out), "--device", "cpu", "--quiet"]) == 0
        summary = json.loads((out / "summary.json").read_text())
        assert summary["video"]["path"] == str(video)
        batch = tmp_path / "batch out"
        args = ["batch", str(folder), "-o", str(batch), "--device", "cpu", "--quiet"]
        assert main([*args, "--no-render"]) == 0
        index = pd.read_csv(batch / "index.csv")
        assert index.path.tolist() == [str(video.absolute())]  # quoted, read back exactly
        assert index.status.tolist() == ["ok"]
        assert not [p for p in folder.iterdir() if p != video]  # nothing written next to it
    finally:
        folder.chmod(stat.S_IRWXU)


def test_error_about_a_name_with_a_newline_stays_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no\nsuch.mp4"
    assert main(["analyze", str(missing), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err == f"videocam: error: {str(missing).replace(chr(10), chr(92) + 'n')}: no such file\n"
