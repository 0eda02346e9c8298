"""Localisation against ground-truth boxes: the pointing game and its energy-based variant."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import videocam
from videocam.cli import main
from videocam.errors import ConfigError
from videocam.evaluate import box_pointing, read_boxes, read_manifest

from support.batch import clip

#: [[0, 0], [0, 1]] upsampled to 4x4 (half-pixel centres) is the outer product of
#: a = [0, 0.25, 0.75, 1] with itself: total mass (Σa)² = 4, maximum at (3, 3).
CORNER = np.array([[0.0, 0.0], [0.0, 1.0]], dtype=np.float32)


def test_pointing_and_energy_exact() -> None:
    assert box_pointing(CORNER, (4, 4), (2, 2, 4, 4)) == (True, 1.75**2 / 4)
    assert box_pointing(CORNER, (4, 4), (0, 0, 2, 2)) == (False, 0.25**2 / 4)
    # x in [2, 4), y in [0, 2): columns 0.75 + 1, rows 0 + 0.25.
    assert box_pointing(CORNER, (4, 4), (2, 0, 4, 2)) == (False, 1.75 * 0.25 / 4)
    # x1, y1 exclusive: the box (0, 0, 3, 3) stops one pixel short of the maximum.
    assert box_pointing(CORNER, (4, 4), (0, 0, 3, 3))[0] is False
    assert box_pointing(CORNER, (4, 4), (0, 0, 4, 4)) == (True, 1.0)
    assert box_pointing(np.zeros((2, 2)), (4, 4), (0, 0, 4, 4)) == (False, 0.0)
    # Ties: the first maximum in row-major order, pixel (0, 0).
    assert box_pointing(np.ones((2, 2)), (4, 4), (0, 0, 1, 1)) == (True, 1 / 16)


def test_boxes_file_errors_name_the_file(tmp_path: Path) -> None:
    boxes = tmp_path / "b.json"
    cases = {
        "[1, 2]": "must be a JSON object",
        '{"a": [0, 0, 1, 1]}': "key 'a' is not a frame index",
        '{"-1": [0, 0, 1, 1]}': "key '-1' is not a frame index",
        '{"3": [0, 0, 1]}': "frame 3: expected [x0, y0, x1, y1], got [0, 0, 1]",
        '{"3": [0, 0, true, 1]}': "frame 3: expected",
        '{"3": [0, 0, "1", 1]}': "frame 3: expected",
        '{"3": [5, 0, 5, 1]}': "frame 3: the box [5, 0, 5, 1] is empty",
        "{": "cannot read boxes JSON",
    }
    for text, reason in cases.items():
        boxes.write_text(text)
        with pytest.raises(ConfigError) as info:
            read_boxes(boxes)
        assert str(info.value).startswith(f"{boxes}: "), text
        assert reason in str(info.value), text
    with pytest.raises(ConfigError, match="boxes file not found"):
        read_boxes(tmp_path / "none.json")
    boxes.write_text('{"0": [1, 2, 3.5, 4], "12": [0, 0, 10, 10]}')
    assert read_boxes(boxes) == {0: (1.0, 2.0, 3.5, 4.0), 12: (0.0, 0.0, 10.0, 10.0)}


def test_manifest_boxes_resolve_against_its_folder(tmp_path: Path) -> None:
    (tmp_path / "gt").mkdir()
    (tmp_path / "gt" / "a.json").write_text('{"4": [0, 0, 8, 8]}')
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,boxes\na.mp4,gt/a.json\nb.mp4,\n")
    first, second = read_manifest(manifest)
    assert first.boxes == {4: (0.0, 0.0, 8.0, 8.0)}
    assert second.boxes is None


def test_evaluate_scores_the_maps_against_the_boxes(tmp_path: Path) -> None:
    video = clip(tmp_path / "a.mp4", seed=41, n_frames=24)  # 48x64 source frames
    left = {str(i): [0, 0, 32, 48] for i in range(24)}
    (tmp_path / "a.json").write_text(json.dumps({**left, "999": [0, 0, 1, 1]}))
    (tmp_path / "whole.json").write_text(json.dumps({"3": [0, 0, 64, 48], "7": [-5, -5, 99, 99]}))
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("path,label,boxes\na.mp4,grow,a.json\na.mp4,grow,whole.json\na.mp4,grow,\n")
    out = tmp_path / "out"
    args = ["evaluate", str(manifest), "-o", str(out), "--steps", "2", "--random-seeds", "1"]
    assert main([*args, "--device", "cpu", "--quiet"]) == 0
    metrics = pd.read_csv(out / "metrics.csv")
    # The same analysis through the API: the expected values, frame by frame.
    analysis = videocam.analyze(video, target="grow", render=False, device="cpu")
    scored = [box_pointing(cam, (48, 64), (0, 0, 32, 48)) for cam in analysis.cams]
    keyframe = analysis.frames.is_keyframe.to_numpy()
    assert keyframe.any()
    first = metrics.iloc[0]
    assert first.pointing_boxed == pytest.approx(np.mean([h for h, _ in scored]), abs=1e-12)
    assert first.energy_pointing == pytest.approx(np.mean([e for _, e in scored]), rel=1e-9)
    expected_keyframes = np.mean([h for (h, _), k in zip(scored, keyframe, strict=True) if k])
    assert first.pointing_keyframes == pytest.approx(expected_keyframes, abs=1e-12)
    assert 0 < first.energy_pointing < 1
    # Boxes around the whole frame: every maximum and all the mass inside.
    second = metrics.iloc[1]
    assert (second.pointing_boxed, second.energy_pointing) == (1.0, 1.0)
    # Without boxes the columns stay empty.
    assert metrics.iloc[2][["pointing_keyframes", "pointing_boxed", "energy_pointing"]].isna().all()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["means"]["pointing_boxed"] == pytest.approx(
        (first.pointing_boxed + 1.0) / 2, abs=1e-12
    )


def test_a_bad_boxes_file_exits_2_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clip(tmp_path / "a.mp4", seed=42, n_frames=8)
    (tmp_path / "a.json").write_text('{"0": [10, 0, 2, 5]}')
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("path,boxes\na.mp4,a.json\n")
    assert main(["evaluate", str(manifest), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert str(tmp_path / "a.json") in err[0]
    assert "is empty" in err[0]
    assert not (tmp_path / "out").exists()
