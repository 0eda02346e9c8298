"""The command line runs in-process: exit codes and one-line errors per the contract."""

from __future__ import annotations

import importlib.metadata
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

import videocam
from videocam.cli import main
from videocam.synthetic import make_clip


def test_info_prints_metadata(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clip = make_clip(tmp_path / "c.mp4", n_frames=10, size=(32, 48), event=None)
    assert main(["info", str(clip.path)]) == 0
    meta = json.loads(capsys.readouterr().out)
    assert meta["n_frames"] == 10
    assert (meta["width"], meta["height"]) == (48, 32)
    assert meta["backend"] == "decord"
    assert meta["fps"] == 25.0


def test_bad_input_is_exit_2_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing.mp4"
    assert main(["info", str(missing)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert str(missing) in err
    assert "Traceback" not in err


def test_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["info"])
    assert info.value.code == 2
    assert main([]) == 2


def test_python_dash_m(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "videocam", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout == f"videocam {videocam.__version__}\n"


def test_version_is_the_installed_distributions() -> None:
    """One version source: pyproject.toml, as installed (no number written in the package)."""
    assert videocam.__version__ == importlib.metadata.version("videocam")


def test_main_leaves_the_callers_logging_as_it_was(caplog: pytest.LogCaptureFixture) -> None:
    """From Python (a notebook, a test), ``main`` restores the package logger afterwards: the
    caller's handlers, level and propagation to the root logger (where caplog listens)."""
    package = logging.getLogger("videocam")
    before = (package.handlers[:], package.level, package.propagate)
    assert main(["models"]) == 0
    assert main(["analyze", "missing.mp4", "-o", "x", "--quiet"]) == 2
    assert (package.handlers, package.level, package.propagate) == before
    with caplog.at_level(logging.WARNING, logger="videocam"):
        logging.getLogger("videocam.runtime").warning("still heard")
    assert "still heard" in caplog.text
