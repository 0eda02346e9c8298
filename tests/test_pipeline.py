"""The analysis pipeline end to end on small synthetic clips."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import videocam
from videocam.analysis import (
    FRAME_COLUMNS,
    KEYFRAME_COLUMNS,
    SEGMENT_COLUMNS,
    analyze,
    resolve_class,
)
from videocam.config import AnalyzeConfig, load_config_file
from videocam.errors import ConfigError, VideoOpenError
from videocam.io import open_video
from videocam.models import load_model
from videocam.synthetic import SyntheticClip, make_clip

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> SyntheticClip:
    path = tmp_path_factory.mktemp("pipeline") / "clip.mp4"
    return make_clip(path, n_frames=50, size=(72, 96), event="move_right", seed=4, event_start=18)


@pytest.fixture(scope="module")
def random_tiny_analysis(clip: SyntheticClip) -> videocam.Analysis:
    torch.manual_seed(0)
    return analyze(clip.path, "videocam_tiny", weights="none", device="cpu", topk=3, min_gap=0.4)


def test_frames_table(random_tiny_analysis, clip: SyntheticClip) -> None:
    frames = random_tiny_analysis.frames
    assert list(frames.columns) == FRAME_COLUMNS
    assert frames.frame_index.tolist() == list(range(50))
    with open_video(clip.path) as source:
        np.testing.assert_array_equal(frames.time_s.to_numpy(), source.times_s)
    assert (frames.attribution >= 0).all()
    assert frames.target_score.between(0, 1).all()
    assert frames.is_keyframe.sum() == len(random_tiny_analysis.keyframes)


def test_cams_one_scale(random_tiny_analysis) -> None:
    cams = random_tiny_analysis.cams
    assert cams.dtype == np.float16
    assert cams.shape == (50, 8, 8)  # videocam_tiny's block4 at 64x64
    assert float(cams.max()) == 1.0
    np.testing.assert_allclose(
        random_tiny_analysis.frames.attribution,
        cams.astype(np.float64).reshape(50, -1).mean(1),
        atol=2e-3,  # float16 storage
    )


def test_keyframes_table(random_tiny_analysis) -> None:
    keyframes = random_tiny_analysis.keyframes
    assert list(keyframes.columns) == KEYFRAME_COLUMNS
    assert keyframes["rank"].tolist() == list(range(1, len(keyframes) + 1))
    assert 1 <= len(keyframes) <= 3
    times = np.sort(keyframes.time_s.to_numpy())
    assert np.all(np.diff(times) >= 0.4)
    assert keyframes.attribution.is_monotonic_decreasing
    for row in keyframes.itertuples():
        assert 0 <= row.x0 < row.x1 <= 96
        assert 0 <= row.y0 < row.y1 <= 72


def test_summary(random_tiny_analysis) -> None:
    s = random_tiny_analysis.summary
    assert s["model"]["name"] == "videocam_tiny"
    assert s["model"]["layer"] == "block4"
    assert s["method"] == "gradcam"
    assert s["target"]["auto"] is True
    assert s["target"]["index"] != 0  # background is skipped by auto
    # Starts 0, 8, 16, 24, 32 and the last aligned to the end at 34.
    assert s["windows"] == {"n_windows": 6, "clip_len": 16, "stride": 8, "batch_size": 8}
    assert s["video"]["n_frames"] == 50
    json.dumps(s)


def test_explicit_target_and_methods(clip: SyntheticClip) -> None:
    torch.manual_seed(0)
    for method in ("gradcam++", "eigencam"):
        a = analyze(clip.path, "videocam_tiny", weights="none", target="grow", method=method)
        assert a.target == (3, "grow")
        assert a.summary["method"] == method
        assert "scan_s" not in a.summary["timings_s"]  # no auto scan with an explicit target


def test_target_name_exact_match_first() -> None:
    """ImageNet has "Cardigan" (the corgi) and "cardigan" (the sweater): an exact name wins over
    a match that ignores case."""
    tiny = load_model("videocam_tiny", weights="none", device="cpu")
    loaded = dataclasses.replace(tiny, categories=("Cardigan", "cardigan", "crane"))
    assert resolve_class("cardigan", loaded) == 1
    assert resolve_class("Cardigan", loaded) == 0
    assert resolve_class("CARDIGAN", loaded) == 0  # no exact match: the first one ignoring case
    assert resolve_class("Crane", loaded) == 2
    with pytest.raises(ConfigError, match="'cardigans' is not a class"):
        resolve_class("cardigans", loaded)


def test_frame_model_with_sampling(clip: SyntheticClip) -> None:
    torch.manual_seed(0)
    a = analyze(clip.path, "resnet18", weights="none", target=1, frame_step=3, start_s=0.2)
    assert a.frames.frame_index.tolist() == list(range(5, 50, 3))
    assert a.cams.shape == (15, 7, 7)  # resnet18 layer4 at its 224x224 input
    assert a.summary["model"]["kind"] == "frame"


def test_short_video_is_padded(tmp_path: Path) -> None:
    short = make_clip(tmp_path / "short.mp4", n_frames=5, size=(64, 64), event=None)
    torch.manual_seed(0)
    a = analyze(short.path, "videocam_tiny", weights="none")
    assert a.frames.frame_index.tolist() == [0, 1, 2, 3, 4]
    assert a.summary["windows"]["n_windows"] == 1


def test_bad_options(clip: SyntheticClip) -> None:
    with pytest.raises(ConfigError, match="method"):
        analyze(clip.path, "videocam_tiny", weights="none", method="scorecamm")
    with pytest.raises(ConfigError, match="not a class"):
        analyze(clip.path, "videocam_tiny", weights="none", target="explode")
    with pytest.raises(ConfigError, match="unknown option"):
        analyze(clip.path, "videocam_tiny", weights="none", topkk=3)
    with pytest.raises(VideoOpenError, match="no frames in the requested time range"):
        analyze(clip.path, "videocam_tiny", weights="none", start_s=100.0)


def test_save_writes_every_file(random_tiny_analysis, tmp_path: Path) -> None:
    out = random_tiny_analysis.save(tmp_path / "out")
    names = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert {
        "frames.csv",
        "keyframes.csv",
        "segments.csv",
        "cams.npy",
        "summary.json",
        "annotated.mp4",
        "timeline.png",
        "report.html",
    } <= names
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["outputs"]) == names
    keyframes = pd.read_csv(out / "keyframes.csv")
    assert set(keyframes.image) <= names
    assert list(pd.read_csv(out / "segments.csv").columns) == SEGMENT_COLUMNS
    np.testing.assert_array_equal(np.load(out / "cams.npy"), random_tiny_analysis.cams)
    with open_video(out / "annotated.mp4") as annotated:
        assert annotated.meta.n_frames == 50
        assert annotated.meta.width == 96
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_are_valid(path: Path) -> None:
    from videocam.models import list_models

    options = load_config_file(path)
    config = AnalyzeConfig.from_mapping(options)
    if ":" not in config.model:
        assert config.model in {m.name for m in list_models()}


def test_config_file_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("topk: [1, 2\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: invalid YAML"):
        load_config_file(bad)
    bad.write_text("topk: 3\nfoo: 1\n")
    with pytest.raises(ConfigError, match="unknown option"):
        load_config_file(bad)
    bad.write_text("!!python/object/apply:os.system ['echo hacked']\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config_file(bad)


def test_failed_render_leaves_nothing(random_tiny_analysis, tmp_path: Path, monkeypatch) -> None:
    import videocam.render.video as video

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("encoder exploded")

    monkeypatch.setattr(video, "render_annotated_clip", broken)
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="exploded"):
        random_tiny_analysis.save(out)
    assert not out.exists()  # no tables without their renders; the folder it made is gone


def test_size_change_is_decoded_right_and_reported(tmp_path: Path) -> None:
    """A joined stream that changes size: every frame analysed, a warning in summary.json."""
    from support.media import write_resolution_change

    joined = write_resolution_change(tmp_path / "joined.ts", frames_per_part=20)
    analysis = analyze(joined, "videocam_tiny", render=False, device="cpu")
    assert analysis.meta.backend == "pyav"
    assert len(analysis.frames) == analysis.meta.n_frames
    assert analysis.summary["decode"]["size_changes"] == [{"frame": 20, "width": 80, "height": 64}]
    assert any("changes size part-way" in w for w in analysis.summary["warnings"])
