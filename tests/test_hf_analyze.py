"""hf: and timm: models end to end through ``videocam.analyze`` and the CLI.

Random tiny models of every family give complete outputs with maps of the right shape; models
trained for a few seconds to tell a red square from a blue one or from none (a green look-alike
always beside it) show that the maps follow the red square as it crosses the frame: VideoMAE
(windows of 4 frames, tubelets of 2, mean-pooled head) with Grad-CAM, a per-frame ViT (hf:,
class-token head) and timm's test ViT with HiResCAM.

Why those: over three training seeds these followed the square every time; Grad-CAM on the tiny
class-token models (ViT, timm's ViT, TimeSformer) and HiResCAM on TimeSformer did in only one or
two of three — a 150-step toy model does not always learn a localised solution, and Grad-CAM's
position-averaged weights read a class token's head less faithfully than HiResCAM's element-wise
ones. TimeSformer's geometry is proved by the perturbation tests (tests/models) instead.

The training is seeded (0) and runs on one thread with deterministic algorithms
(support/hf_models.py), so it lands in the same place on every machine but for the CPU's own
kernels. Those were measured by running the same training with ATen's, oneDNN's and MKL's
generic kernels instead of AVX2 ones: VideoMAE and the ViT gave the same maps to the last digit,
timm's ViT (128x128) did not (its share of frames 1.0 -> 0.75, Spearman 0.84 -> 0.82). The
thresholds (TRAINED, TIMM_FOLLOWS) sit below the lowest value over seeds 0-10 (AVX2, one
thread) of the models that learned a localised solution: share of frames / Spearman at least
1.0 / 0.935 (VideoMAE), 0.833 / 0.822 (ViT), 0.708 / 0.653 (timm's ViT), against about 0.5 / 0
for maps that ignore the square. Some seeds learn no such solution, and no threshold would pass
them: VideoMAE's seed 7 (maps elsewhere), the ViT's seeds 7 and 8 (never told the colours apart)
and 10 (maps away from the square); so the seed stays fixed.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import videocam
from videocam.cli import main
from videocam.synthetic import write_frames

pytest.importorskip("transformers")
pytest.importorskip("timm")

from support.hf_models import (
    COLOURS,
    DISTRACTOR,
    TASK_CLASSES,
    draw_square,
    save_hf,
    save_timm,
    train_colour_task,
    train_timm_colour_task,
)

SIZE = 64  # frames of the test videos; the models see them at 32x32
SIDE = 20  # the square, 10 px at the model's size as in training
N_FRAMES = 24


def _moving_square_video(path: Path, seed: int = 0) -> list[tuple[int, int, int, int]]:
    """A red square crossing left to right along the top, a still green one at the bottom.
    Returns the red square's box (x0, y0, x1, y1) per frame."""
    rng = np.random.default_rng(seed)
    frames, boxes = [], []
    for i in range(N_FRAMES):
        frame = rng.integers(0, 60, size=(SIZE, SIZE, 3)).astype(np.uint8)
        draw_square(frame, 40, 6, SIDE, DISTRACTOR)
        left = round(2 + i * (SIZE - SIDE - 4) / (N_FRAMES - 1))
        draw_square(frame, 4, left, SIDE, COLOURS[0])
        frames.append(frame)
        boxes.append((left, 4, left + SIDE, 4 + SIDE))
    write_frames(path, frames, fps=8, lossless=True)
    return boxes


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[int, ...]]]:
    path = tmp_path_factory.mktemp("hf_video") / "moving.mp4"
    boxes = _moving_square_video(path)
    return path, boxes


def _check_complete(analysis: videocam.Analysis, map_shape: tuple[int, int]) -> None:
    """Every table, map and summary entry; a random model's maps may be all zero (Grad-CAM's
    ReLU), so only the trained models below are asked for contrast."""
    assert len(analysis.frames) == N_FRAMES
    assert list(analysis.frames.frame_index) == list(range(N_FRAMES))
    assert analysis.cams.shape == (N_FRAMES, *map_shape)
    cams = analysis.cams.astype(np.float32)
    assert np.isfinite(cams).all()
    assert cams.min() >= 0
    assert cams.max() <= 1
    assert analysis.frames.target_score.between(0, 1).all()
    summary = analysis.summary
    assert summary["model"]["sources"]["layer"].startswith("family default")
    assert summary["n_frames_analysed"] == N_FRAMES


# family, expected per-frame map (h, w), clip length
RANDOM_CASES = {
    "videomae": ((4, 4), 4),
    "timesformer": ((4, 4), 4),
    "vivit": ((4, 4), 4),
    "vit": ((4, 4), None),
    "dinov2_with_registers": ((4, 4), None),
}


@pytest.mark.parametrize("family", sorted(RANDOM_CASES))
def test_random_families_end_to_end(family: str, video: tuple[Path, list], tmp_path: Path) -> None:
    shape, clip_len = RANDOM_CASES[family]
    directory = save_hf(family, tmp_path / family, processor={})
    analysis = videocam.analyze(video[0], f"hf:{directory}", render=False, topk=3, min_gap=0.2)
    _check_complete(analysis, shape)
    model = analysis.summary["model"]
    assert model["kind"] == ("video" if clip_len else "frame")
    assert model["n_classes"] == 3
    assert model["sources"]["family"] == family
    assert analysis.summary["windows"]["clip_len"] == (clip_len or 1)


@pytest.mark.parametrize(("name", "shape"), [("test_resnet", (5, 5)), ("test_vit", (10, 10))])
def test_timm_end_to_end(
    name: str, shape: tuple[int, int], video: tuple[Path, list], tmp_path: Path
) -> None:
    weights = save_timm(name, tmp_path / f"{name}.pth")
    analysis = videocam.analyze(
        video[0], f"timm:{name}", weights=str(weights), render=False, topk=2, min_gap=0.2
    )
    _check_complete(analysis, shape)
    assert analysis.summary["model"]["weights"] == str(weights)
    assert analysis.summary["model"]["n_classes"] == 1000  # ImageNet names from timm
    assert analysis.summary["model"]["input_size"] == [160, 160]


def _follows(cams: np.ndarray, boxes: list[tuple[int, ...]]) -> tuple[float, float]:
    """How the maps follow the red square along its path (the band of rows it crosses; the green
    look-alike sits still below it and may draw attribution too): (share of frames whose map is
    higher on the cells the square covers than on the rest of the band, Spearman correlation of
    the band's maximum column with the square's centre)."""
    _, h, w = cams.shape
    cell_h, cell_w = SIZE / h, SIZE / w
    centres_y = (np.arange(h) + 0.5) * cell_h
    centres_x = (np.arange(w) + 0.5) * cell_w
    y0, y1 = boxes[0][1], boxes[0][3]
    band = (centres_y >= y0 - cell_h / 2) & (centres_y <= y1 + cell_h / 2)
    higher, peaks = [], []
    for frame, (x0, _, x1, _) in zip(cams.astype(np.float32), boxes, strict=True):
        rows = frame[band]  # (band rows, w)
        on = (centres_x >= x0 - cell_w / 2) & (centres_x <= x1 + cell_w / 2)
        higher.append(rows[:, on].mean() > rows[:, ~on].mean() if (~on).any() else True)
        peaks.append(centres_x[int(rows.max(axis=0).argmax())])
    truth = [(x0 + x1) / 2 for x0, _, x1, _ in boxes]
    rho = pd.Series(peaks).corr(pd.Series(truth), method="spearman")
    return float(np.mean(higher)), float(rho)


def _assert_follows(
    analysis: videocam.Analysis, boxes: list, thresholds: tuple[float, float]
) -> None:
    assert analysis.target[0] == 0  # it sees the red square
    assert float(analysis.cams.max()) == pytest.approx(1.0, abs=1e-3)
    assert len(analysis.keyframes) >= 1
    higher, rho = _follows(analysis.cams, boxes)
    least_higher, least_rho = thresholds
    assert higher >= least_higher, f"maps higher on the red square in {higher:.0%} of frames"
    assert rho >= least_rho, f"the band's peak column against the square's: Spearman {rho:.2f}"


# family -> (config overrides, method, least share of frames and Spearman: module docstring);
# the ViT on 4x4 patches (an 8x8 grid)
TRAINED = {
    "videomae": ({}, "gradcam", (0.9, 0.85)),
    "vit": ({"patch_size": 4}, "hirescam", (0.7, 0.7)),
}
#: timm's ViT: least share of frames and Spearman (module docstring).
TIMM_FOLLOWS = (0.6, 0.5)


@pytest.mark.slow
@pytest.mark.parametrize("family", sorted(TRAINED))
def test_maps_follow_the_moving_square(
    family: str, video: tuple[Path, list], tmp_path: Path
) -> None:
    overrides, method, thresholds = TRAINED[family]
    model = train_colour_task(family, steps=150, **overrides)
    directory = save_hf(family, tmp_path / family, model=model, processor={})
    path, boxes = video
    analysis = videocam.analyze(
        path, f"hf:{directory}", method=method, render=False, topk=3, min_gap=0.2
    )
    assert analysis.target[1] == TASK_CLASSES[0]
    _assert_follows(analysis, boxes, thresholds)


@pytest.mark.slow
def test_timm_vit_maps_follow_the_moving_square(video: tuple[Path, list], tmp_path: Path) -> None:
    import torch

    # timm's test ViT has a dynamic image size: trained and run at 128x128 (an 8x8 grid).
    model = train_timm_colour_task("test_vit", steps=150, size=128)
    weights = tmp_path / "test_vit.pth"
    torch.save(model.state_dict(), weights)
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(TASK_CLASSES) + "\n")
    path, boxes = video
    analysis = videocam.analyze(
        path,
        "timm:test_vit",
        weights=str(weights),
        input_size=(128, 128),
        render=False,
        labels=str(labels),
        method="hirescam",
        topk=3,
        min_gap=0.2,
    )
    assert analysis.target[1] == TASK_CLASSES[0]
    assert analysis.cams.shape[1:] == (8, 8)
    _assert_follows(analysis, boxes, TIMM_FOLLOWS)


def test_cli_analyze_hf_writes_every_file(video: tuple[Path, list], tmp_path: Path) -> None:
    directory = save_hf("videomae", tmp_path / "videomae", processor={})
    out = tmp_path / "out"
    code = main(
        [
            "analyze",
            str(video[0]),
            "-o",
            str(out),
            "--model",
            f"hf:{directory}",
            "--topk",
            "2",
            "--min-gap",
            "0.2",
            "--quiet",
        ]
    )
    assert code == 0
    for name in (
        "frames.csv",
        "keyframes.csv",
        "segments.csv",
        "cams.npy",
        "summary.json",
        "annotated.mp4",
        "timeline.png",
    ):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    sources = summary["model"]["sources"]
    assert sources["clip_len"].endswith("config.json num_frames")
    assert sources["categories"].endswith("config.json id2label")
    assert summary["model"]["layer"] == "videomae.encoder.layer.1"
    assert summary["model"]["layer_map_shape"] == [2, 4, 4]


def test_cli_wrong_clip_length_exits_2(
    video: tuple[Path, list], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = save_hf("vivit", tmp_path / "vivit")
    capsys.readouterr()
    code = main(
        [
            "analyze",
            str(video[0]),
            "-o",
            str(tmp_path / "o"),
            "--model",
            f"hf:{directory}",
            "--clip-len",
            "8",
            "--no-render",
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--clip-len 4" in err


def test_cli_hub_id_offline_exits_2(
    video: tuple[Path, list],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    for model in ("hf:MCG-NJU/videomae-base-finetuned-kinetics", "timm:test_resnet"):
        code = main(
            ["analyze", str(video[0]), "-o", str(tmp_path / "o"), "--model", model, "--no-render"]
        )
        assert code == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1
        assert err.startswith("videocam: error: ")
        assert model in err
