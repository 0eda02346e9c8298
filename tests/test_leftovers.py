"""What a run leaves behind when it fails or is stopped: no output folder it created, no staging
folder of an interrupted batch, no lock file; a read-only file system said as such; the printed
list of outputs is the run's own."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest

import videocam.analysis.outputs as outputs
from videocam.batch.plan import LOCK_FILE
from videocam.batch.run import locked
from videocam.cli import main
from videocam.errors import ConfigError
from videocam.render.files import STAGING_PREFIX
from videocam.synthetic import ClipSpec, make_clip

ENV = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
FAST = ["--weights", "none", "--device", "cpu", "--quiet", "--no-render"]


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    spec = ClipSpec(n_frames=24, size=(48, 64), seed=1, event="grow")
    return make_clip(tmp_path_factory.mktemp("leftovers") / "clip.mp4", spec).path


def _failing_npy(exc: BaseException) -> Callable[..., None]:
    def write_npy(*args: object, **kwargs: object) -> None:
        raise exc

    return write_npy


@pytest.mark.parametrize(
    ("exc", "code", "said"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), 2, "the disk is full"),
        (OSError(errno.EROFS, "Read-only file system"), 2, "the file system is read-only"),
        (KeyboardInterrupt(), 130, "videocam: interrupted"),
    ],
)
def test_a_failed_save_removes_the_out_it_created(
    clip: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    exc: BaseException,
    code: int,
    said: str,
) -> None:
    monkeypatch.setattr(outputs, "write_npy", _failing_npy(exc))
    out = tmp_path / "new" / "deeper" / "out"
    assert main(["analyze", str(clip), "-o", str(out), *FAST]) == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert said in err
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # new/deeper/out: all removed
    existing = tmp_path / "existing"
    existing.mkdir()
    assert main(["analyze", str(clip), "-o", str(existing), *FAST]) == code
    assert existing.is_dir()  # it was there before: kept
    assert list(existing.iterdir()) == []


def test_a_read_only_file_system_is_said_so(
    clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """os.access fails on a read-only mount as on a permission; statvfs tells them apart."""
    out = tmp_path / "out"
    out.mkdir()
    real_statvfs = os.statvfs
    monkeypatch.setattr(os, "access", lambda *args, **kwargs: False)
    monkeypatch.setattr(os, "statvfs", lambda p: SimpleNamespace(f_flag=os.ST_RDONLY))
    assert main(["analyze", str(clip), "-o", str(out), *FAST]) == 2
    assert capsys.readouterr().err == (
        f"videocam: error: {out}: output folder is not writable: the file system is read-only\n"
    )
    monkeypatch.setattr(os, "statvfs", lambda p: SimpleNamespace(f_flag=0))
    assert main(["analyze", str(clip), "-o", str(out), *FAST]) == 2
    assert "not writable: permission denied\n" in capsys.readouterr().err
    monkeypatch.setattr(os, "statvfs", real_statvfs)


def test_the_printed_outputs_are_the_runs_own(
    clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Another run saving into the same folder at the same time has its staging folder there:
    it is not listed, nor is anything else the run did not write."""
    out = tmp_path / "out"
    other = out / f"{STAGING_PREFIX}other"
    other.mkdir(parents=True)
    (other / "frames.csv").write_text("x\n")
    (out / "notes.txt").write_text("the user's\n")
    assert main(["analyze", str(clip), "-o", str(out), "--weights", "none", "--no-render"]) == 0
    printed = capsys.readouterr().out
    listed = [
        line.split("  (")[0].strip() for line in printed.split("outputs in ")[1].splitlines()[1:]
    ]
    assert listed == ["cams.npy", "frames.csv", "keyframes.csv", "segments.csv", "summary.json"]
    assert "other" not in printed
    assert "notes.txt" not in printed


def test_the_lock_file_goes_with_the_batch(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    busy = pytest.raises(ConfigError, match="another videocam batch is writing there")
    with locked(out), busy:
        assert (out / LOCK_FILE).is_file()
        with locked(out):
            pass
    assert not (out / LOCK_FILE).exists()
    with locked(out):  # and it can be taken again
        assert (out / LOCK_FILE).is_file()
    assert list(out.iterdir()) == []


def test_a_finished_batch_leaves_no_lock_and_a_failed_one_no_out(
    clip: Path, tmp_path: Path
) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "clip.mp4").write_bytes(clip.read_bytes())
    out = tmp_path / "out"
    assert main(["batch", str(inputs), "-o", str(out), *FAST]) == 0
    assert not (out / LOCK_FILE).exists()
    # The model cannot load: no video starts, and the OUT this batch created is gone.
    failed = tmp_path / "failed" / "out"
    argv = ["batch", str(inputs), "-o", str(failed), *FAST[2:], "--model", "nope_model"]
    assert main(argv) == 2
    assert not (tmp_path / "failed").exists()


@pytest.mark.slow
def test_sigterm_to_a_batch_leaves_no_staging_folder(tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    spec = ClipSpec(n_frames=600, size=(360, 480), seed=3, event="grow", event_start=200)
    make_clip(inputs / "long.mp4", spec)
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "videocam", "batch", str(inputs), "-o", str(out)]
    process = subprocess.Popen(
        [*argv, "--weights", "none", "--device", "cpu", "--quiet"],
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    deadline = time.monotonic() + 300
    while not list(out.glob(f"*/{STAGING_PREFIX}*/keyframes")):  # rendering: saving has begun
        assert process.poll() is None, "never started to save"
        assert time.monotonic() < deadline, "never started to save"
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr
    assert not list(out.rglob(f"{STAGING_PREFIX}*"))
    assert not list(out.rglob(".*.tmp-*"))
    assert not (out / LOCK_FILE).exists()
