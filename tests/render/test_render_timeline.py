"""The timeline plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from videocam.render.timeline import render_timeline, score_axis_top


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


def _drawn_figure(monkeypatch: pytest.MonkeyPatch, path: Path, **kwargs: object) -> object:
    """Render the timeline and hand back the matplotlib figure it saved."""
    from matplotlib.figure import Figure

    saved: list[Figure] = []
    original = Figure.savefig

    def keep(self: Figure, *args: object, **options: object) -> None:
        saved.append(self)
        original(self, *args, **options)

    monkeypatch.setattr(Figure, "savefig", keep)
    render_timeline(path, **kwargs)  # type: ignore[arg-type]
    return saved[0]


def test_timeline_states_every_scale_and_writes_times_as_the_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The score axis goes to the round value above its peak, the track lanes say their shared
    scale, and times (axis, thumbnails) read m:ss as everywhere else."""
    series = _series()
    series["target_score"] = 0.043 * series["attribution"]  # an ImageNet class: peak 0.043
    lanes = [("grow", series["attribution"]), ("shrink", 0.3 * series["attribution"])]
    thumb = np.zeros((40, 60, 3), dtype=np.uint8)
    fig: Any = _drawn_figure(
        monkeypatch,
        tmp_path / "t.png",
        **series,
        keyframes=[(1.0, thumb), (0.48, thumb)],
        segments=[],
        title="t",
        tracks=lanes,
        evidence_floor=0.25,
    )
    score, grow, shrink = fig.axes[1:4]
    assert score.get_ylim() == (0.0, score_axis_top(series["target_score"])) == (0.0, 0.05)
    assert "0 to 0.05" in score.get_ylabel()
    floor = [line.get_ydata()[0] for line in score.get_lines() if line.get_linestyle() == ":"]
    assert floor == [pytest.approx(0.25 * 0.043)]
    top = float(series["attribution"].max())
    for lane in (grow, shrink):  # one scale, stated on each lane
        assert [t.get_text() for t in lane.get_yticklabels()] == ["0", f"{top:.3g}"]
        assert list(lane.get_yticks()) == [0.0, top]
    # 50 frames at 25 fps: ticks every half second, written as the page writes times.
    labels = [t.get_text() for t in shrink.get_xticklabels()]
    assert labels == ["0:00.0", "0:00.5", "0:01.0", "0:01.5"]
    titles = sorted(ax.get_title() for ax in fig.axes[4:])
    assert titles == ["#1  0:01.00", "#2  0:00.48"]


def test_time_ticks_are_round_seconds_or_minutes() -> None:
    from videocam.render.timeline import _time_ticks

    ticks, labels = _time_ticks(0.0, 30.16)
    assert list(ticks) == [0, 5, 10, 15, 20, 25, 30]
    assert labels == ["0:00", "0:05", "0:10", "0:15", "0:20", "0:25", "0:30"]
    ticks, labels = _time_ticks(0.0, 3600.0)
    assert ticks[1] == 600.0
    assert labels[-1] == "1:00:00"
    assert labels[:3] == ["0:00", "10:00", "20:00"]
    ticks, labels = _time_ticks(0.0, 0.36)  # ten frames at 25 fps
    np.testing.assert_allclose(ticks, [0.0, 0.1, 0.2, 0.3])
    assert labels == ["0:00.0", "0:00.1", "0:00.2", "0:00.3"]
