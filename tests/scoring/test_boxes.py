"""Keyframe boxes: the region of the map's peak at a fraction of its maximum, and no box when
that region's box would cover most of the frame; missing in keyframes.csv, not drawn."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from videocam.analysis import analyze
from videocam.config import AnalyzeConfig
from videocam.errors import ConfigError
from videocam.io import open_video
from videocam.render.keyframes import render_keyframes
from videocam.scoring import BOX_MAX_AREA, BOX_THRESHOLD, NO_BOX, cam_box
from videocam.synthetic import make_clip


def test_the_defaults_are_the_configs() -> None:
    config = AnalyzeConfig()
    assert (config.box_threshold, config.box_max_area) == (BOX_THRESHOLD, BOX_MAX_AREA)
    assert (BOX_THRESHOLD, BOX_MAX_AREA) == (0.8, 0.5)


def test_the_box_holds_the_peak_not_the_largest_region() -> None:
    cam = np.zeros((8, 8), np.float32)
    cam[1:5, 0:4] = 0.9  # a large region just below the peak
    cam[6, 6] = 1.0  # the peak, one cell
    # Cells are 10 x 20 px, the peak's centred at (130, 65); at 0.8 x max both regions pass
    # (the large one is 80 px wide), and the box is the peak's, inside its cell.
    x0, y0, x1, y1 = cam_box(cam, (80, 160), threshold=0.8, max_area=1.0)
    assert 120 <= x0 < 130 < x1 <= 140
    assert 60 <= y0 < 65 < y1 <= 70
    assert cam_box(cam, (80, 160), threshold=0.5, max_area=1.0)[0] >= 120


def test_no_box_when_the_region_covers_most_of_the_frame() -> None:
    flat = np.ones((7, 7), np.float32)
    flat[3, 3] = 1.01  # a peak barely above a flat map: the region is the whole frame
    assert cam_box(flat, (70, 70)) == NO_BOX
    assert cam_box(flat, (70, 70), max_area=1.0) == (0, 0, 70, 70)
    half = np.zeros((4, 4), np.float32)
    half[:, :2] = 1.0  # the left half exactly (bilinear edges aside)
    box = cam_box(half, (40, 40), threshold=0.5, max_area=1.0)
    area = (box[2] - box[0]) * (box[3] - box[1]) / 1600
    assert 0.45 <= area <= 0.55
    assert cam_box(half, (40, 40), threshold=0.5, max_area=area) == box
    assert cam_box(half, (40, 40), threshold=0.5, max_area=area - 0.01) == NO_BOX
    assert cam_box(np.zeros((4, 4)), (10, 10)) == NO_BOX
    with pytest.raises(ValueError, match="max_area"):
        cam_box(half, (40, 40), max_area=0.0)


def test_box_max_area_is_an_option() -> None:
    assert AnalyzeConfig(box_max_area=1.0).box_max_area == 1.0
    for bad in (0.0, 1.5, float("nan")):
        with pytest.raises(ConfigError, match="box_max_area"):
            AnalyzeConfig(box_max_area=bad)


def test_keyframes_without_a_box_have_empty_cells_and_no_outline(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "c.mkv", n_frames=24, size=(48, 64), seed=4, lossless=True)
    common = {"weights": "none", "device": "cpu", "topk": 2, "min_gap": 0.2, "render": False}
    boxed = analyze(clip.path, "videocam_tiny", box_max_area=1.0, **common)
    assert boxed.keyframes[["x0", "y0", "x1", "y1"]].notna().all().all()
    none = analyze(clip.path, "videocam_tiny", box_max_area=1e-6, **common)
    assert len(none.keyframes) >= 1
    assert none.keyframes[["x0", "y0", "x1", "y1"]].isna().all().all()
    out = tmp_path / "out"
    none.save(out, render=False)
    text = (out / "keyframes.csv").read_text(encoding="utf-8").splitlines()
    assert text[0] == "rank,frame_index,time_s,attribution,x0,y0,x1,y1,image"
    assert all(line.split(",")[4:8] == ["", "", "", ""] for line in text[1:])
    assert pd.read_csv(out / "keyframes.csv")[["x0", "x1"]].isna().all().all()
    assert boxed.keyframes.x0.dtype == "Int64"  # whole pixels where there is a box
    # Rendered: no outline where there is no box, so the frame is left as it is.
    frame_index = int(none.keyframes.frame_index.iloc[0])
    table = none.keyframes.iloc[:1]
    result = render_keyframes(clip.path, tmp_path / "r", keyframes=table, cams=lambda i: None)
    with open_video(clip.path) as source:
        frame = source.read([frame_index])[0]
    np.testing.assert_array_equal(result.thumbnails[0], frame)
