"""Real footage (tests/support/footage.py: $VIDEOCAM_REAL_VIDEOS, else ../shared/data/videos;
skipped when absent): complete outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from videocam.cli import main
from videocam.io import open_video

CASES = [
    # (clip, model, extra flags)
    ("udacity_vehicle_test_video.mp4", "efficientnet_lite0", []),
    ("intel_store-aisle-detection_fromgif.mp4", "efficientnet_lite0", ["--frame-step", "2"]),
    ("udacity_vehicle_test_video.mp4", "r3d_18", ["--weights", "none", "--target", "0"]),
    ("intel_store-aisle-detection_fromgif.mp4", "r3d_18", ["--weights", "none", "--target", "0"]),
]


@pytest.mark.slow
@pytest.mark.parametrize(("name", "model", "flags"), CASES, ids=lambda v: str(v))
def test_complete_outputs(
    shared_videos: Path, tmp_path: Path, name: str, model: str, flags: list[str]
) -> None:
    torch.manual_seed(0)
    video = shared_videos / name
    out = tmp_path / "out"
    assert main(["analyze", str(video), "-o", str(out), "--model", model, "--quiet", *flags]) == 0
    frames = pd.read_csv(out / "frames.csv")
    with open_video(video) as source:
        step = 2 if "--frame-step" in flags else 1
        assert frames.frame_index.tolist() == list(range(0, source.meta.n_frames, step))
        width, height = source.meta.width, source.meta.height
    keyframes = pd.read_csv(out / "keyframes.csv")
    assert len(keyframes) >= 1
    assert ((keyframes.x1 <= width) & (keyframes.y1 <= height)).all()
    for image in keyframes.image:
        assert (out / image).is_file()
    for file in ("segments.csv", "cams.npy", "timeline.png", "annotated.mp4"):
        assert (out / file).stat().st_size > 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"]["name"] == model
    with open_video(out / "annotated.mp4") as annotated:
        assert annotated.meta.width == width + width % 2
