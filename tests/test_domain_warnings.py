"""Warnings when a model meets footage it cannot speak about: the bundled synthetic model on
other footage, and an auto target the model saw in no window."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from videocam.analysis import analyze
from videocam.analysis.domain import (
    MAX_MEDIAN_GRADIENT,
    MIN_PALETTE_SHARE,
    domain_warnings,
    footage_statistics,
)
from videocam.cli import main
from videocam.models import load_model
from videocam.synthetic import ClipSpec, make_clip, render_clip, write_frames


def _textured(path: Path, n_frames: int = 40, seed: int = 0) -> Path:
    """Camera-like footage: a grey, textured scene panning right (no flat coloured squares)."""
    rng = np.random.default_rng(seed)
    scene = rng.integers(40, 200, size=(96, 400), dtype=np.uint8)
    scene = (scene.astype(np.float32) * 0.6 + rng.normal(0, 25, scene.shape)).clip(0, 255)
    frames = np.stack([scene[:, 3 * k : 3 * k + 128] for k in range(n_frames)]).astype(np.uint8)
    write_frames(path, np.repeat(frames[..., None], 3, axis=-1), fps=25)
    return path


def test_the_statistics_separate_synthetic_frames_from_textured_ones() -> None:
    frames, _ = render_clip(ClipSpec(n_frames=8, size=(64, 64), seed=3, n_distractors=1))
    synthetic = footage_statistics(frames)
    assert synthetic["palette_share"] >= MIN_PALETTE_SHARE
    assert synthetic["median_gradient"] <= MAX_MEDIAN_GRADIENT
    grey = np.full((4, 64, 64, 3), 120, np.uint8)
    assert footage_statistics(grey) == {"palette_share": 0.0, "median_gradient": 0.0}
    square = grey.copy()
    square[:, 10:30, 10:30] = (230, 60, 50)  # one palette colour, 400 of 4096 pixels
    assert footage_statistics(square)["palette_share"] == pytest.approx(400 / 4096, abs=1e-4)


@pytest.fixture(scope="module")
def tiny() -> object:
    return load_model("videocam_tiny", device="cpu")


def test_the_synthetic_model_on_other_footage_warns(
    tiny: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    video = _textured(tmp_path / "street.mp4")
    out = tmp_path / "out"
    assert main(["analyze", str(video), "-o", str(out), "--no-render", "--device", "cpu"]) == 0
    err = capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    check = summary["training_footage_check"]
    assert check["like_training_data"] is False
    assert check["frames"] == 8
    assert check["palette_share"] < MIN_PALETTE_SHARE
    warned = [w for w in summary["warnings"] if "trained on synthetic clips only" in w]
    assert len(warned) == 1
    assert "--model efficientnet_lite0" in warned[0]
    assert f"{video}: {warned[0]}\n" in err


def test_the_car_clip_of_the_issue_warns(tiny: object, shared_videos: Path, tmp_path: Path) -> None:
    """The bundled model on real footage (intel_car-detection.mp4's first 4 s) warns."""
    video = shared_videos / "intel_car-detection.mp4"
    analysis = analyze(video, tiny, render=False, device="cpu", end_s=4.0)
    assert analysis.summary["training_footage_check"]["like_training_data"] is False
    assert any("trained on synthetic clips only" in w for w in analysis.summary["warnings"])


def test_the_synthetic_model_on_a_synthetic_clip_does_not(tiny: object, tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "c.mp4", n_frames=64, size=(96, 128), seed=7, event="grow")
    analysis = analyze(clip.path, tiny, render=False, device="cpu")
    check = analysis.summary["training_footage_check"]
    assert check["like_training_data"] is True
    assert not [w for w in analysis.summary["warnings"] if "synthetic clips only" in w]


def test_other_models_are_not_checked(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "c.mp4", n_frames=8, size=(48, 64), seed=1, event=None)
    analysis = analyze(clip.path, "videocam_tiny", weights="none", render=False, device="cpu")
    assert "training_footage_check" not in analysis.summary  # random weights: not synthetic


class _Model:
    name = "m"
    background_class = 0
    categories = ("background", "a", "b")


@pytest.mark.parametrize(
    ("probs", "wins", "auto", "warns"),
    [
        ([0.6, 0.3, 0.1], [10, 0, 0], True, True),  # below background, top in no window
        ([0.6, 0.3, 0.1], [8, 2, 0], True, False),  # a short event: top in two windows
        ([0.3, 0.6, 0.1], [0, 10, 0], True, False),  # above background
        ([0.6, 0.3, 0.1], [10, 0, 0], False, False),  # a target the user named
    ],
)
def test_an_auto_target_seen_in_no_window(
    probs: list[float], wins: list[int], auto: bool, warns: bool
) -> None:
    found = domain_warnings(
        _Model(),  # type: ignore[arg-type]
        None,
        np.array(probs, np.float32),
        np.array(wins, np.int64),
        target=1,
        auto=auto,
    )
    assert len(found) == int(warns)
    if warns:
        assert found[0].startswith("the auto target a (0.300 over the video) is below background")


def test_windows_top_counts_in_the_summary(tiny: object, tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "c.mp4", n_frames=48, size=(64, 64), seed=2, event=None)
    analysis = analyze(clip.path, tiny, render=False, device="cpu", clip_len=16, stride=8)
    top = analysis.summary["target"]["video_top_classes"]
    n_windows = analysis.summary["windows"]["n_windows"]
    assert sum(c["windows_top"] for c in top) == n_windows  # all five classes are listed
