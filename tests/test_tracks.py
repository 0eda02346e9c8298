"""Class tracks (``--tracks``): other classes followed from the same single pass, on one scale,
equal to what a separate analysis of each class gives; and keyframes that carry evidence."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from videocam.analysis import TRACK_COLUMNS, Analysis, run_analysis
from videocam.cam import compute_cam
from videocam.cli import main
from videocam.config import AnalyzeConfig
from videocam.errors import ConfigError
from videocam.io import open_video
from videocam.models import LoadedModel, load_model
from videocam.runtime import model_input
from videocam.scoring import find_evidence
from videocam.synthetic import EVENT_CLASSES, SyntheticClip, make_clip


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> SyntheticClip:
    path = tmp_path_factory.mktemp("tracks") / "clip.mp4"
    return make_clip(path, n_frames=60, size=(72, 96), event="move_right", seed=5, event_start=20)


@pytest.fixture(scope="module")
def tiny() -> LoadedModel:
    return load_model("videocam_tiny", device="cpu")


def _track(analysis: Analysis, class_index: int) -> pd.DataFrame:
    assert analysis.tracks is not None
    return analysis.tracks[analysis.tracks.class_index == class_index]


def _alone(loaded: LoadedModel, clip: SyntheticClip, config: AnalyzeConfig, c: int) -> Analysis:
    return run_analysis(clip.path, loaded, config.replace(target=c, tracks=None))


@pytest.mark.parametrize(
    ("target", "tracks", "method"),
    [
        ("auto", 3, "gradcam"),  # candidates of the auto pass
        (2, 2, "gradcam++"),  # an explicit target with top-K tracks: candidates too
        (1, ("grow", 4), "layercam"),  # everything known up front: a fixed set of classes
    ],
)
def test_tracks_equal_separate_analyses_on_one_scale(
    tiny: LoadedModel, clip: SyntheticClip, target: object, tracks: object, method: str
) -> None:
    config = AnalyzeConfig(render=False, device="cpu", target=target, tracks=tracks, method=method)
    analysis = run_analysis(clip.path, tiny, config)
    assert analysis.tracks is not None
    assert list(analysis.tracks.columns) == TRACK_COLUMNS
    followed = analysis.summary["tracks"]["classes"]
    indices = [c["index"] for c in followed]
    if isinstance(tracks, int):
        # The K most probable classes of the video, the declared background left out.
        ranked = np.argsort(-analysis.class_probs, kind="stable").tolist()
        assert indices == [c for c in ranked if c != 0][:tracks]
    else:
        assert indices == [3, 4]
    assert [c["name"] for c in followed] == [EVENT_CLASSES[i] for i in indices]
    n = len(analysis.frames)
    assert len(analysis.tracks) == n * len(indices)
    scale = analysis.summary["tracks"]["scale"]
    peaks = []
    for c in indices:
        rows = _track(analysis, c)
        np.testing.assert_array_equal(rows.frame_index, analysis.frames.frame_index)
        np.testing.assert_array_equal(rows.time_s, analysis.frames.time_s)
        alone = _alone(tiny, clip, config, c)
        # One track = that class's own analysis, brought to the common scale.
        factor = alone.summary["cam_scale"] / scale
        np.testing.assert_allclose(
            rows.attribution, alone.frames.attribution * factor, rtol=1e-4, atol=1e-7
        )
        np.testing.assert_allclose(rows.target_score, alone.frames.target_score, rtol=1e-5)
        peaks.append(alone.summary["cam_scale"])
    assert scale == pytest.approx(max(peaks), rel=1e-5)  # the tracks' common maximum
    if analysis.target[0] in indices:
        rows = _track(analysis, analysis.target[0])
        np.testing.assert_allclose(
            rows.attribution,
            analysis.frames.attribution * analysis.summary["cam_scale"] / scale,
            rtol=1e-5,
        )


def test_class_free_method_tracks_share_the_map(tiny: LoadedModel, clip: SyntheticClip) -> None:
    config = AnalyzeConfig(render=False, device="cpu", method="eigencam", tracks=2)
    analysis = run_analysis(clip.path, tiny, config)
    first, second = (_track(analysis, c["index"]) for c in analysis.summary["tracks"]["classes"])
    np.testing.assert_array_equal(first.attribution.to_numpy(), second.attribution.to_numpy())
    assert not np.array_equal(first.target_score.to_numpy(), second.target_score.to_numpy())


def test_no_tracks_by_default(tiny: LoadedModel, clip: SyntheticClip) -> None:
    analysis = run_analysis(clip.path, tiny, AnalyzeConfig(render=False, device="cpu"))
    assert analysis.tracks is None
    assert "tracks" not in analysis.summary


def test_tracks_options() -> None:
    assert AnalyzeConfig.from_mapping({"tracks": "3"}).tracks == 3
    assert AnalyzeConfig.from_mapping({"tracks": "grow, 2"}).tracks == ("grow", 2)
    assert AnalyzeConfig.from_mapping({"tracks": ["grow", 2]}).tracks == ("grow", 2)
    assert AnalyzeConfig(tracks=("grow",)).replace(topk=2).tracks == ("grow",)
    for bad in ("0", "grow,", True, [-1]):
        with pytest.raises(ConfigError, match="tracks"):
            AnalyzeConfig.from_mapping({"tracks": bad})


def test_keyframes_and_segments_carry_evidence(tiny: LoadedModel, clip: SyntheticClip) -> None:
    loose = {"render": False, "device": "cpu", "topk": 8, "min_gap": 0.2, "keyframe_floor": 0.0}
    before = run_analysis(clip.path, tiny, AnalyzeConfig(**loose, evidence_floor=0.0))
    after = run_analysis(clip.path, tiny, AnalyzeConfig(**loose))
    np.testing.assert_array_equal(after.frames.attribution, before.frames.attribution)
    score = after.frames.target_score.to_numpy()
    report = after.summary["keyframes"]
    evidence = find_evidence(
        score,
        after.frames.time_s.to_numpy(),
        floor=report["evidence_floor"],
        ratio=report["evidence_ratio"],
    )
    assert report["evidence_threshold"] == pytest.approx(evidence.threshold)
    assert report["evidence_baseline"] == pytest.approx(float(np.median(score)))
    assert evidence.threshold <= evidence.enter <= score.max()
    assert (after.frames.is_keyframe & ~evidence.mask).sum() == 0
    assert after.frames.is_keyframe.any()
    # Without the rule, keyframes fall where the model does not see the class.
    assert (before.frames.is_keyframe & ~evidence.mask).any()
    for seg in after.segments.itertuples():
        inside = after.frames.frame_index.between(seg.start_frame, seg.end_frame).to_numpy()
        assert evidence.mask[inside].all()
    assert report["requested"] == 8
    assert report["found"] == len(after.keyframes)
    assert report["frames_with_evidence"] == int(evidence.mask.sum())
    assert report["peak_target_score"] == pytest.approx(score.max())


def test_cli_writes_tracks_and_says_how_many_keyframes_qualify(
    clip: SyntheticClip, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code = main(
        ["analyze", str(clip.path), "-o", str(out), "--tracks", "grow,shrink", "--topk", "9"]
    )
    assert code == 0
    printed = capsys.readouterr().out
    tracks = pd.read_csv(out / "tracks.csv")
    assert list(tracks.columns) == TRACK_COLUMNS
    assert tracks.class_name.unique().tolist() == ["grow", "shrink"]
    assert len(tracks) == 2 * len(pd.read_csv(out / "frames.csv"))
    summary = json.loads((out / "summary.json").read_text())
    assert "tracks.csv" in summary["outputs"]
    found = summary["keyframes"]["found"]
    assert found < 9
    assert f"{found} of the 9 keyframes asked for" in printed
    assert "tracks: grow (3), shrink (4)" in printed


def test_cli_tracks_errors(clip: SyntheticClip, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["analyze", str(clip.path), "-o", str(out), "--tracks", "0", "--quiet"]) == 2
    assert main(["analyze", str(clip.path), "-o", str(out), "--tracks", "bus", "--quiet"]) == 2
    assert not out.exists()


def test_scorecam_tracks_come_from_the_windows_perturbed_forwards(
    tiny: LoadedModel, tmp_path: Path
) -> None:
    """One window (16 frames), two classes followed: each track equals compute_cam of its class
    on that window, and the window's masked forwards run once for both."""
    short = make_clip(tmp_path / "short.mp4", n_frames=16, size=(72, 96), event="move_right")
    calls: list[int] = []
    handle = tiny.module.register_forward_pre_hook(lambda m, a: calls.append(a[0].shape[0]))
    try:
        config = AnalyzeConfig(render=False, device="cpu", method="scorecam", tracks=(0, 2))
        analysis = run_analysis(short.path, tiny, config.replace(target=1))
    finally:
        handle.remove()
    channels = 128  # block4
    assert sum(calls[1:]) == channels  # the masked copies of the one window, all classes at once
    with open_video(short.path) as source:
        frames = source.read(list(range(16)), size=tiny.preprocess.size)
    window = model_input(tiny, frames[None])
    for c in (0, 1, 2):
        cam = compute_cam(tiny.module, window, tiny.layer, [c], "scorecam", upsample=False)[0]
        frame_means = torch.nn.functional.interpolate(
            cam[None, None], size=(16, *cam.shape[1:]), mode="trilinear", align_corners=False
        )[0, 0].mean(dim=(1, 2))
        if c == 1:
            got = analysis.frames.attribution.to_numpy() * analysis.summary["cam_scale"]
        else:
            scale = analysis.summary["tracks"]["scale"]
            got = _track(analysis, c).attribution.to_numpy() * scale
        np.testing.assert_allclose(got, frame_means.numpy(), rtol=1e-4, atol=1e-7)
