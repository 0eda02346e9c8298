"""The whole CLI in-process on tmp_path: analyze, models, config files, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from videocam.analysis import FRAME_COLUMNS, KEYFRAME_COLUMNS, SEGMENT_COLUMNS
from videocam.cli import main
from videocam.synthetic import SyntheticClip, make_clip


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> SyntheticClip:
    path = tmp_path_factory.mktemp("cli") / "clip.mp4"
    return make_clip(path, n_frames=40, size=(64, 80), event="grow", seed=8, event_start=12)


def test_analyze_writes_every_file_and_column(
    clip: SyntheticClip, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code = main(
        [
            "analyze",
            str(clip.path),
            "-o",
            str(out),
            "--weights",
            "none",
            "--topk",
            "3",
            "--min-gap",
            "0.3",
            "--method",
            "layercam",
            "--device",
            "cpu",
        ]
    )
    assert code == 0
    frames = pd.read_csv(out / "frames.csv")
    assert list(frames.columns) == FRAME_COLUMNS
    assert len(frames) == 40
    np.testing.assert_allclose(frames.time_s, clip.times_s, atol=1e-6)
    keyframes = pd.read_csv(out / "keyframes.csv")
    assert list(keyframes.columns) == KEYFRAME_COLUMNS
    assert 1 <= len(keyframes) <= 3
    for image in keyframes.image:
        assert (out / image).is_file()
    assert list(pd.read_csv(out / "segments.csv").columns) == SEGMENT_COLUMNS
    cams = np.load(out / "cams.npy")
    assert cams.dtype == np.float16
    assert cams.shape[0] == 40
    assert float(cams.max()) == 1.0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["method"] == "layercam"
    assert summary["config"]["topk"] == 3
    assert summary["model"]["weights"] == "none"
    assert (out / "annotated.mp4").stat().st_size > 0
    assert (out / "timeline.png").stat().st_size > 0
    printed = capsys.readouterr().out
    assert "keyframe 1:" in printed
    assert "annotated.mp4" in printed


def test_config_file_and_flags_win(clip: SyntheticClip, tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("weights: none\ntopk: 2\nmethod: hirescam\nmin_gap: 0.2\n")
    out = tmp_path / "out"
    assert (
        main(
            [
                "analyze",
                str(clip.path),
                "-o",
                str(out),
                "--config",
                str(config),
                "--topk",
                "1",
                "--no-render",
                "--quiet",
            ]
        )
        == 0
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["topk"] == 1  # the flag wins
    assert summary["method"] == "hirescam"  # from the file
    assert not (out / "annotated.mp4").exists()
    assert pd.read_csv(out / "keyframes.csv").image.isna().all()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--method", "nope"], "method"),
        (["--target", "nope"], "not a class"),
        (["--model", "resnet5000"], "resnet5000"),
        (["--layer", "block9"], "block9"),
        (["--weights", "/no/such/weights.pth"], "weights.pth"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(
    clip: SyntheticClip,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    needle: str,
) -> None:
    base = ["analyze", str(clip.path), "-o", str(tmp_path / "o"), "--no-render", "--quiet"]
    if "--weights" not in args:
        base += ["--weights", "none"]
    assert main(base + args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert needle in err
    assert "Traceback" not in err
    assert not (tmp_path / "o" / "frames.csv").exists()


def test_bad_video_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake = tmp_path / "fake.mp4"
    fake.write_text("not a video")
    assert main(["analyze", str(fake), "-o", str(tmp_path / "o"), "--weights", "none"]) == 2
    err = capsys.readouterr().err
    assert str(fake) in err
    assert err.count("\n") == 1


def test_models_lists_every_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models"]) == 0
    table = capsys.readouterr().out
    for name in (
        "r3d_18",
        "mc3_18",
        "r2plus1d_18",
        "s3d",
        "mvit_v1_b",
        "mvit_v2_s",
        "swin3d_t",
        "swin3d_s",
        "swin3d_b",
        "resnet50",
        "vit_b_16",
        "efficientnet_lite0",
        "videocam_tiny",
    ):
        assert f"\n{name} " in table
    assert main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    r3d = next(r for r in rows if r["name"] == "r3d_18")
    assert (r3d["kind"], r3d["default_layer"]) == ("video", "layer4")
    assert "KINETICS400_V1" in r3d["weights"]
