"""``videocam demo``: offline, with the bundled model, keyframes inside the known event."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from videocam.cli import main
from videocam.config import load_config_file
from videocam.demo import DEMO_OPTIONS, DEMO_SPEC

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_demo_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    for name in (
        "frames.csv",
        "keyframes.csv",
        "segments.csv",
        "cams.npy",
        "summary.json",
        "annotated.mp4",
        "timeline.png",
        "report.html",
        "input.mp4",
    ):
        assert (out / name).is_file(), name
        assert name in printed
    keyframes = pd.read_csv(out / "keyframes.csv")
    start = DEMO_SPEC.event_start / 25
    end = (DEMO_SPEC.event_start + DEMO_SPEC.event_len) / 25
    # Every keyframe falls inside the known event, and the explained class is the event's.
    assert len(keyframes) >= 2
    assert keyframes.time_s.between(start, end, inclusive="left").all()
    assert "explained class: move_right" in printed
    # The bundled synthetic model on its own kind of clip: nothing to warn about.
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["warnings"] == []
    assert summary["training_footage_check"]["like_training_data"] is True
    assert f"{len(keyframes)} of {len(keyframes)} keyframes fall inside it" in printed
    for image in keyframes.image:
        assert (out / image).is_file()


def test_demo_config_matches_code() -> None:
    shipped = load_config_file(CONFIGS / "demo.yaml")
    assert shipped.pop("model") == "videocam_tiny"
    assert shipped == DEMO_OPTIONS
