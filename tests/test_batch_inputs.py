"""What ``videocam batch`` takes from a folder: every file ``analyze`` reads as a video (an
animated GIF, a video with an unknown extension), and a list of what it skips and why."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from videocam.batch import SKIPPED_COLUMNS, scan_folder
from videocam.cli import main
from videocam.io import VIDEO_EXTENSIONS, why_not_a_video

from support.batch import clip as _clip
from support.batch import read_index as _index

FAST = ["--weights", "none", "--device", "cpu", "--no-render"]


def _gif(path: Path, n_frames: int = 20) -> Path:
    """An animated GIF: a square moving right over a grey background."""
    frames = []
    for k in range(n_frames):
        pixels = np.full((48, 64, 3), 90, np.uint8)
        pixels[16:32, 2 + 2 * k : 18 + 2 * k] = (230, 40, 40)
        frames.append(Image.fromarray(pixels))
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=40, loop=0)
    return path


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mixed")
    _clip(root / "clip.mp4", seed=1)
    _gif(root / "anim.gif")
    shutil.copy(root / "clip.mp4", root / "recording.bin")  # a video by content, not by name
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(root / "still.png")
    shutil.copy(root / "still.png", root / "frame_0001.dat")  # a still image by content
    (root / "notes.txt").write_text("not a video\n", encoding="utf-8")
    (root / "empty.mov2").write_bytes(b"")
    (root / ".hidden.txt").write_text("never looked at\n", encoding="utf-8")
    (root / "old_results").mkdir()
    (root / "old_results" / "batch.json").write_text("{}", encoding="utf-8")
    _clip(root / "old_results" / "clip.mp4" / "annotated.mp4", seed=2)
    return root


def test_scan_takes_what_analyze_reads_and_says_why_it_skips_the_rest(folder: Path) -> None:
    scan = scan_folder(folder)
    assert [p.name for p in scan.videos] == ["anim.gif", "clip.mp4", "recording.bin"]
    reasons = {s.path.name: s.reason for s in scan.skipped}
    assert list(reasons) == [
        "empty.mov2",
        "frame_0001.dat",
        "notes.txt",
        "old_results",
        "still.png",
    ]
    assert reasons["empty.mov2"] == "file is empty"
    assert reasons["frame_0001.dat"].startswith("a still image (FFmpeg reads it with png_pipe)")
    assert reasons["notes.txt"].startswith("cannot open video: not a video file")
    assert reasons["old_results"] == "a batch's output folder (not searched)"
    assert reasons["still.png"] == "a still image (.png), not a video"
    for skipped in scan.skipped:
        assert str(skipped.path) not in skipped.reason  # the path is a column of its own
    assert why_not_a_video(folder / "recording.bin") is None
    assert ".gif" in VIDEO_EXTENSIONS  # taken without a look inside


def test_batch_analyses_the_gif_and_lists_the_skipped_files(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert main(["batch", str(folder), "-o", str(out), *FAST]) == 0
    captured = capsys.readouterr()
    index = _index(out)
    assert list(index.output) == ["anim.gif", "clip.mp4", "recording.bin"]
    assert list(index.status) == ["ok", "ok", "ok"]
    skipped = pd.read_csv(out / "skipped.csv")
    assert list(skipped.columns) == SKIPPED_COLUMNS
    assert [Path(p).name for p in skipped.path] == [
        "empty.mov2",
        "frame_0001.dat",
        "notes.txt",
        "old_results",
        "still.png",
    ]
    assert skipped.reason[0] == "file is empty"
    for name in skipped.path:
        assert f"skipped {Path(name).name}: " in captured.err
    assert "5 file(s) skipped, not videos: " in captured.out
    summary = json.loads((out / "batch.json").read_text(encoding="utf-8"))
    assert summary["counts"]["skipped_not_video"] == 5
    assert summary["files"]["skipped"] == "skipped.csv"


def test_a_manifest_writes_an_empty_skipped_list(tmp_path: Path) -> None:
    _clip(tmp_path / "v.mp4", seed=3)
    (tmp_path / "list.csv").write_text("path\nv.mp4\n", encoding="utf-8")
    out = tmp_path / "out"
    assert main(["batch", str(tmp_path / "list.csv"), "-o", str(out), *FAST, "--quiet"]) == 0
    skipped = pd.read_csv(out / "skipped.csv")
    assert list(skipped.columns) == SKIPPED_COLUMNS
    assert skipped.empty


def test_a_folder_without_videos_says_what_it_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("x\n", encoding="utf-8")
    assert main(["batch", str(tmp_path / "in"), "-o", str(tmp_path / "out"), *FAST]) == 2
    err = capsys.readouterr().err
    assert "no video files found" in err
    assert "1 other file(s) skipped" in err
