"""The timeline plot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from videocam.render.timeline import render_timeline


def _series(n: int = 50) -> dict[str, np.ndarray]:
    times = np.arange(n) / 25.0
    attribution = np.exp(-(((times - 1.0) / 0.3) ** 2))
    return {"times_s": times, "attribution": attribution, "target_score": 0.2 + 0.7 * attribution}


def test_timeline_png_with_thumbnails(tmp_path: Path) -> None:
    thumb = np.zeros((40, 60, 3), dtype=np.uint8)
    thumb[:, :30] = (255, 0, 0)
    path = render_timeline(
        tmp_path / "timeline.png",
        **_series(),
        keyframes=[(1.0, thumb), (1.4, thumb), (0.6, None)],
        segments=[(0.7, 1.3)],
        title="clip.mp4 — move_right",
    )
    assert path == tmp_path / "timeline.png"
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == (1200, 600)
        pixels = np.asarray(image.convert("RGB"))
    assert ((pixels == (255, 0, 0)).all(axis=2)).sum() > 100  # the thumbnails are drawn
    assert [p.name for p in tmp_path.iterdir()] == ["timeline.png"]


def test_timeline_without_keyframes_or_frames(tmp_path: Path) -> None:
    path = render_timeline(
        tmp_path / "a.png", **_series(), keyframes=[], segments=[], title="t", figsize=(8, 4)
    )
    with Image.open(path) as image:
        assert image.size == (800, 400)
    empty = {k: v[:0] for k, v in _series().items()}
    path = render_timeline(tmp_path / "b.png", **empty, keyframes=[], segments=[], title="t")
    with Image.open(path) as image:
        assert image.size == (1200, 600)


def test_timeline_length_mismatch(tmp_path: Path) -> None:
    series = _series()
    series["target_score"] = series["target_score"][:-1]
    with pytest.raises(ValueError, match="differ in length"):
        render_timeline(tmp_path / "a.png", **series, keyframes=[], segments=[], title="t")
    assert list(tmp_path.iterdir()) == []


def test_timeline_score_panel_on_its_own_scale_and_track_lanes(tmp_path: Path) -> None:
    from videocam.render.timeline import nice_ceiling

    assert [nice_ceiling(v) for v in (0.021 * 1.1, 0.0004, 0.3, 0.9, 1.0 * 1.1, 0.0)] == [
        0.025,
        0.0005,
        0.5,
        1.0,
        1.0,
        1.0,
    ]
    # A detector's detection mass (a sum of scores) may exceed 1: its scale grows with it.
    assert [nice_ceiling(v) for v in (1.588 * 1.1, 2.4, 3.1, 11.0)] == [2.0, 2.5, 5.0, 20.0]
    series = _series()
    series["target_score"] = 0.02 * series["attribution"]  # an ImageNet-scale probability
    lanes = [("grow", series["attribution"]), ("shrink", 0.3 * series["attribution"])]
    path = render_timeline(
        tmp_path / "t.png",
        **series,
        keyframes=[],
        segments=[],
        title="t",
        tracks=lanes,
        evidence_floor=0.25,
    )
    with Image.open(path) as image:
        assert image.size == (1200, 600 + 2 * 90)  # one lane per track
    with pytest.raises(ValueError, match="track 'grow' has 3 frames"):
        render_timeline(
            tmp_path / "u.png",
            **series,
            keyframes=[],
            segments=[],
            title="t",
            tracks=[("grow", np.zeros(3))],
        )
