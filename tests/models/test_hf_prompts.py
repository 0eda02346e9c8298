"""Asking in words (``--prompt``): tiny random CLIP and SigLIP models saved with their tokenizer
and processor, loaded back as ``hf:DIR``.

A random dual encoder understands no text, so these check the mechanics with exact values: the
score equals transformers' own ``logits_per_image`` softmax / sigmoid for the same inputs, the
map equals a Grad-CAM computed by hand at the default layer and the engine's ``compute_cam`` on
the adapter, the text encoder runs once per run, every prompt is a track, ``auto`` explains the
prompt with the most evidence, and bad input is one line and exit 2.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

import videocam
from videocam.analysis import TRACK_COLUMNS
from videocam.cam import METHODS, compute_cam
from videocam.cli import main
from videocam.errors import ConfigError, ModelLoadError
from videocam.io import open_video
from videocam.models import LoadedModel, load_model
from videocam.models.prompting import DEFAULT_NEGATIVES
from videocam.runtime import model_input
from videocam.synthetic import write_frames

from support.batch import page_data
from support.hf_models import (
    BLUE,
    COLOURS,
    DISTRACTOR,
    SHAPE_PROMPTS,
    TEXT_LEN,
    build_dual,
    draw_circle,
    draw_square,
    gradcam_by_hand,
    layer_tokens_with_grad,
    save_dual,
    save_hf,
    square_on_noise,
    tiny_tokenizer,
    train_shape_clip,
)

transformers = pytest.importorskip("transformers")

PROMPTS = ("a red square", "a blue circle", "a green dog")
N_FRAMES = 8


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 frames of 48x48 noise with a bright square crossing them."""
    path = tmp_path_factory.mktemp("prompt_video") / "clip.mp4"
    return square_on_noise(path, N_FRAMES, (230, 40, 40), step=3, seed=3)


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("duals")
    return {family: save_dual(family, root / family) for family in ("clip", "siglip", "xclip")}


def _inputs(loaded: LoadedModel, video: Path) -> torch.Tensor:
    """The video's frames as the single pass feeds them to the model."""
    with open_video(video) as source:
        frames = source.read(list(range(N_FRAMES)), size=loaded.preprocess.size)
    return model_input(loaded, frames[:, None])


def _inputs_frames(loaded: LoadedModel, video: Path) -> torch.Tensor:
    """The video's frames (N, 3, H, W) as the model's preprocessing gives them."""
    with open_video(video) as source:
        frames = source.read(list(range(N_FRAMES)), size=loaded.preprocess.size)
    return loaded.preprocess(torch.from_numpy(frames))


def _reference_scores(
    folder: Path, family: str, texts: tuple[str, ...], x: torch.Tensor, n_prompts: int
) -> torch.Tensor:
    """Each prompt's score from transformers' own forward of the saved model."""
    auto = transformers.AutoModel.from_pretrained(str(folder)).eval()
    tokenizer = tiny_tokenizer()
    if family == "siglip":
        ids = tokenizer(list(texts), padding="max_length", max_length=TEXT_LEN)["input_ids"]
        inputs = {"input_ids": torch.tensor(ids)}
    else:
        encoded = tokenizer(list(texts), padding=True)
        inputs = {k: torch.tensor(encoded[k]) for k in ("input_ids", "attention_mask")}
    with torch.no_grad():
        logits = auto(pixel_values=x, **inputs).logits_per_image
    if family == "siglip":
        return torch.sigmoid(logits[:, :n_prompts])
    return torch.softmax(logits, dim=1)[:, :n_prompts]


@pytest.mark.parametrize(
    ("family", "prompts", "negatives"),
    [
        ("clip", PROMPTS, ("a photo of a cat",)),
        ("clip", PROMPTS[:1], None),  # one prompt: the default negatives give the contrast
        ("siglip", PROMPTS, None),
    ],
)
def test_scores_are_the_models_own_probabilities(
    family: str,
    prompts: tuple[str, ...],
    negatives: tuple[str, ...] | None,
    folders: dict[str, Path],
    video: Path,
) -> None:
    loaded = load_model(f"hf:{folders[family]}", prompts=prompts, negatives=negatives)
    x = _inputs(loaded, video)
    got = loaded.module(x)
    used = negatives or (DEFAULT_NEGATIVES if family == "clip" and len(prompts) == 1 else ())
    want = _reference_scores(folders[family], family, (*prompts, *used), x, len(prompts))
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    assert loaded.categories == prompts
    assert loaded.prompts is not None
    assert loaded.prompts.negatives == used
    assert loaded.prompts.negatives_default == (
        negatives is None and family == "clip" and len(prompts) == 1
    )
    assert loaded.prompts.score == ("sigmoid" if family == "siglip" else "softmax")
    assert torch.equal(loaded.class_scores(got), got.float())  # already probabilities
    if family == "siglip":
        assert loaded.prompts.logit_bias == pytest.approx(-0.75)
        assert loaded.prompts.logit_scale == pytest.approx(float(np.exp(1.5)), rel=1e-6)


@pytest.mark.parametrize(
    ("family", "layer", "prefix"),
    [
        ("clip", "vision_model.encoder.layers.1.layer_norm1", 1),
        ("siglip", "vision_model.encoder.layers.1", 0),
    ],
)
def test_gradcam_of_a_prompt_by_hand(
    family: str, layer: str, prefix: int, folders: dict[str, Path], video: Path
) -> None:
    """Grad-CAM of a prompt's score at the default layer: the mean gradient over the 4x4 patch
    grid weighs the channels (class token left out), as computed here from hooks."""
    loaded = load_model(f"hf:{folders[family]}", prompts=PROMPTS)
    assert loaded.layer == layer
    x = _inputs(loaded, video)
    tokens = layer_tokens_with_grad(loaded, x, 1)
    n, _, c = tokens.shape
    a = tokens[:, prefix:].detach().reshape(n, 4, 4, c).permute(0, 3, 1, 2)
    g = tokens.grad[:, prefix:].reshape(n, 4, 4, c).permute(0, 3, 1, 2)
    by_hand = gradcam_by_hand(a, g)
    engine = compute_cam(loaded.module, x, loaded.layer, [1] * n, reshape=loaded.reshape)
    torch.testing.assert_close(engine, by_hand, rtol=1e-4, atol=1e-9)
    assert float(by_hand.max()) > 0


@pytest.mark.parametrize("method", METHODS)
def test_every_method_runs_on_a_prompt(method: str, folders: dict[str, Path], video: Path) -> None:
    loaded = load_model(f"hf:{folders['clip']}", prompts=PROMPTS[:2])
    x = _inputs(loaded, video)[:2]
    cams = compute_cam(loaded.module, x, loaded.layer, [1, 0], method, reshape=loaded.reshape)
    assert cams.shape == (2, 4, 4)
    assert torch.isfinite(cams).all()
    assert float(cams.min()) >= 0


def test_analysis_tracks_every_prompt_and_encodes_text_once(
    folders: dict[str, Path], video: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls: list[int] = []
    original = transformers.CLIPModel.get_text_features

    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(transformers.CLIPModel, "get_text_features", counted)
    analysis = videocam.analyze(
        video,
        f"hf:{folders['clip']}",
        prompts=list(PROMPTS),
        negatives=["a photo of a cat"],
        target=0,
        batch_size=2,  # 4 forwards
        render=False,
        topk=2,
        min_gap=0.1,
    )
    assert len(calls) == 1
    loaded = load_model(f"hf:{folders['clip']}", prompts=PROMPTS, negatives=["a photo of a cat"])
    x = _inputs(loaded, video)
    with torch.no_grad():
        scores = loaded.module(x).numpy()
    np.testing.assert_allclose(analysis.frames.target_score, scores[:, 0], rtol=1e-5, atol=1e-7)
    tracks = analysis.tracks
    assert tracks is not None
    assert list(tracks.columns) == TRACK_COLUMNS
    for index, text in enumerate(PROMPTS):
        rows = tracks[tracks.class_index == index]
        assert set(rows.class_name) == {text}
        np.testing.assert_allclose(rows.target_score, scores[:, index], rtol=1e-5, atol=1e-7)
    cams = compute_cam(loaded.module, x, loaded.layer, [0] * N_FRAMES, reshape=loaded.reshape)
    scale = analysis.summary["cam_scale"]
    np.testing.assert_allclose(
        analysis.frames.attribution * scale, cams.mean(dim=(1, 2)).numpy(), rtol=1e-4, atol=1e-9
    )
    prompts = analysis.summary["prompts"]
    assert prompts["texts"] == list(PROMPTS)
    assert prompts["negatives"] == ["a photo of a cat"]
    assert prompts["score"] == "softmax"
    assert "softmax over the 3 prompt(s) and 1 negative(s)" in prompts["definition"]
    assert analysis.summary["target"]["name"] == PROMPTS[0]


def test_auto_explains_the_prompt_with_the_most_evidence(
    folders: dict[str, Path], video: Path
) -> None:
    """The prompts ordered so that the one the model scores highest over the video comes last:
    ``auto`` explains it; without ``--target`` the first prompt is explained."""
    loaded = load_model(f"hf:{folders['siglip']}", prompts=PROMPTS)
    with torch.no_grad():
        means = loaded.module(_inputs(loaded, video)).mean(dim=0).numpy()
    order = np.argsort(means, kind="stable")  # the best last
    assert means[order[-1]] > means[order[-2]]
    prompts = [PROMPTS[i] for i in order]
    options: dict[str, Any] = {"prompts": prompts, "render": False, "topk": 2, "min_gap": 0.1}
    analysis = videocam.analyze(video, f"hf:{folders['siglip']}", target="auto", **options)
    assert analysis.summary["target"]["index"] == len(PROMPTS) - 1
    assert analysis.summary["target"]["name"] == PROMPTS[order[-1]]
    assert analysis.summary["target"]["auto"] is True
    first = videocam.analyze(video, f"hf:{folders['siglip']}", **options)  # no --target
    assert first.summary["target"]["index"] == 0
    assert first.summary["target"]["name"] == prompts[0]
    assert first.summary["config"]["target"] == 0


def test_cli_prompt_search_writes_tracks_and_summary(
    folders: dict[str, Path], video: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    config = tmp_path / "ask.yaml"
    config.write_text("negatives: [a photo of a cat]\ntopk: 2\nmin_gap: 0.1\n", encoding="utf-8")
    args = ["analyze", str(video), "-o", str(out), "--model", f"hf:{folders['clip']}"]
    args += ["--prompt", PROMPTS[0], "--prompt", PROMPTS[1], "--config", str(config)]
    assert main([*args, "--no-render", "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["prompts"]["texts"] == list(PROMPTS[:2])
    assert summary["prompts"]["negatives"] == ["a photo of a cat"]
    assert summary["config"]["prompts"] == list(PROMPTS[:2])
    tracks = pd.read_csv(out / "tracks.csv")
    assert sorted(set(zip(tracks.class_index, tracks.class_name, strict=True))) == [
        (0, PROMPTS[0]),
        (1, PROMPTS[1]),
    ]


def _error_line(capsys: pytest.CaptureFixture[str], args: list[str]) -> str:
    assert main([*args, "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_cli_prompt_errors_are_one_line(
    folders: dict[str, Path], video: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    base = ["analyze", str(video), "-o", str(out), "--no-render"]
    clip = ["--model", f"hf:{folders['clip']}"]
    vit = save_hf("vit", tmp_path / "vit", processor={})
    bare = save_dual("clip", tmp_path / "bare", tokenizer=False)
    capsys.readouterr()  # the saving's progress bars
    assert "'vit' model: --prompt needs an image–text model" in _error_line(
        capsys, [*base, "--model", f"hf:{vit}", "--prompt", "a dog"]
    )
    assert "not an image–text model" in _error_line(
        capsys, [*base, "--model", "videocam_tiny", "--prompt", "a dog"]
    )
    assert "--prompt TEXT" in _error_line(capsys, [*base, *clip])
    assert "empty prompt" in _error_line(capsys, [*base, *clip, "--prompt", "  "])
    assert "need --prompt" in _error_line(capsys, [*base, *clip, "--negative", "a cat"])
    assert "given twice" in _error_line(
        capsys, [*base, *clip, "--prompt", "a cat", "--negative", "a cat"]
    )
    too_long = " ".join(["abc"] * TEXT_LEN)
    assert f"at most {TEXT_LEN}" in _error_line(capsys, [*base, *clip, "--prompt", too_long])
    assert "no tokenizer" in _error_line(
        capsys, [*base, "--model", f"hf:{bare}", "--prompt", "a dog"]
    )
    assert not out.exists()


def test_api_prompt_errors(folders: dict[str, Path]) -> None:
    with pytest.raises(ConfigError, match="--prompt TEXT"):
        load_model(f"hf:{folders['siglip']}")
    with pytest.raises(ConfigError, match="num_classes"):
        load_model(f"hf:{folders['siglip']}", prompts=["a"], num_classes=3)
    with pytest.raises(ConfigError, match="not an image–text model"):
        load_model("videocam_tiny", prompts=["a dog"])


def test_siglip_without_a_pooling_head_is_refused(tmp_path: Path) -> None:
    model = build_dual("siglip")
    model.config.vision_config.vision_use_head = False
    folder = save_dual("siglip", tmp_path / "headless", model=model)
    with pytest.raises(ModelLoadError, match="no head"):
        load_model(f"hf:{folder}", prompts=["a dog"])


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory, video: Path) -> Path:
    """A footage library of two videos: the module's and a darker copy without the square."""
    root = tmp_path_factory.mktemp("library")
    (root / "a").mkdir()
    (root / "a" / "square.mp4").write_bytes(video.read_bytes())
    rng = np.random.default_rng(9)
    frames = [rng.integers(0, 40, size=(48, 48, 3)).astype(np.uint8) for _ in range(N_FRAMES)]
    write_frames(root / "dark.mp4", frames, fps=8, lossless=True)
    return root


def test_batch_prompt_search_writes_ranked_moments(
    folders: dict[str, Path], library: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    args = ["batch", str(library), "-o", str(out), "--model", f"hf:{folders['clip']}"]
    args += ["--prompt", PROMPTS[0], "--prompt", PROMPTS[1], "--topk", "3", "--min-gap", "0.1"]
    assert main([*args, "--device", "cpu", "--quiet"]) == 0
    moments = pd.read_csv(out / "moments.csv", keep_default_na=False)
    assert list(moments.columns) == [
        "rank",
        "video",
        "frame_index",
        "time_s",
        "target_score",
        "attribution",
        "image",
    ]
    assert list(moments["rank"]) == list(range(1, len(moments) + 1))
    assert "a/square.mp4" in set(moments.video)
    assert set(moments.video) <= {"a/square.mp4", "dark.mp4"}  # a video may have no keyframe
    scores = moments.target_score.to_numpy()
    assert (np.diff(scores) <= 0).all()  # strongest first
    index = pd.read_csv(out / "index.csv")
    expected = 0
    for output in index.output:
        keyframes = pd.read_csv(out / output / "keyframes.csv")
        frames = pd.read_csv(out / output / "frames.csv").set_index("frame_index")
        expected += len(keyframes)
        mine = moments[moments.image.str.startswith(f"{output}/")]
        assert sorted(mine.frame_index) == sorted(keyframes.frame_index)
        for row in mine.itertuples():
            assert row.target_score == pytest.approx(frames.target_score[row.frame_index])
            assert (out / row.image).is_file()
    assert len(moments) == expected
    page = page_data(out / "report.html")
    assert page["prompts"] == list(PROMPTS[:2])
    assert [m["rank"] for m in page["moments"]] == list(moments["rank"])
    for shown, row in zip(page["moments"], moments.itertuples(), strict=True):
        output = row.image.split("/")[0]
        assert shown["report"] == f"{output}/report.html"
        assert (out / shown["report"]).is_file()
        assert shown["image"] == row.image
        assert shown["time_s"] == pytest.approx(row.time_s)
    batch = json.loads((out / "batch.json").read_text(encoding="utf-8"))
    assert batch["files"]["moments"] == "moments.csv"
    assert batch["config"]["prompts"] == list(PROMPTS[:2])


def test_evaluate_takes_prompts(folders: dict[str, Path], video: Path, tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(f"path,label\n{video},{PROMPTS[1]}\n", encoding="utf-8")
    out = tmp_path / "eval"
    args = ["evaluate", str(manifest), "-o", str(out), "--model", f"hf:{folders['siglip']}"]
    args += ["--prompt", PROMPTS[0], "--prompt", PROMPTS[1], "--no-render"]
    assert main([*args, "--device", "cpu", "--quiet"]) == 0
    metrics = pd.read_csv(out / "metrics.csv")
    assert list(metrics.label) == [PROMPTS[1]]
    assert metrics.predicted.iloc[0] in PROMPTS[:2]
    assert np.isfinite(metrics.deletion_auc).all()
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["config"]["prompts"] == list(PROMPTS[:2])


def test_models_lists_the_families_asked_in_words() -> None:
    from videocam.models.hf.families import PROMPT_ROWS
    from videocam.models.hf.prompts import PROMPT_FAMILIES

    assert set(PROMPT_ROWS) == set(PROMPT_FAMILIES)
    assert PROMPT_ROWS["clip"][0] == "vision_model.encoder.layers.-1.layer_norm1"
    assert PROMPT_ROWS["siglip"][0].startswith("vision_model.encoder.layers.-1 ")


# -- X-CLIP: windows of frames ---------------------------------------------------------------------


def test_xclip_scores_are_the_models_own(folders: dict[str, Path], video: Path) -> None:
    negatives = ("a photo of a cat",)
    loaded = load_model(f"hf:{folders['xclip']}", prompts=PROMPTS, negatives=negatives)
    assert loaded.kind == "video"
    assert loaded.clip_len == 4
    assert loaded.layer == "vision_model.encoder.layers.0"
    frames = _inputs_frames(loaded, video)
    windows = torch.stack([frames[0:4], frames[4:8]]).permute(0, 2, 1, 3, 4)  # (2, 3, 4, H, W)
    got = loaded.module(windows)
    auto = transformers.AutoModel.from_pretrained(str(folders["xclip"])).eval()
    encoded = tiny_tokenizer()([*PROMPTS, *negatives], padding=True)
    inputs = {k: torch.tensor(encoded[k]) for k in ("input_ids", "attention_mask")}
    with torch.no_grad():
        logits = auto(pixel_values=windows.transpose(1, 2), **inputs).logits_per_video
    want = torch.softmax(logits, dim=1)[:, : len(PROMPTS)]
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    with pytest.raises(ConfigError, match="--clip-len 4"):
        loaded.module(windows[:, :, :3])


def test_xclip_gradcam_by_hand(folders: dict[str, Path], video: Path) -> None:
    """Per-frame token rows (N·T, 1 + 4·4, C) at the default layer: Grad-CAM's weights are the
    mean gradient over time and space, the map (N, T, 4, 4)."""
    loaded = load_model(f"hf:{folders['xclip']}", prompts=PROMPTS)
    frames = _inputs_frames(loaded, video)
    windows = torch.stack([frames[0:4], frames[4:8]]).permute(0, 2, 1, 3, 4)
    tokens = layer_tokens_with_grad(loaded, windows, 2)
    rows, _, c = tokens.shape
    assert rows == 2 * 4
    a = tokens[:, 1:].detach().reshape(2, 4, 4, 4, c).permute(0, 4, 1, 2, 3)
    g = tokens.grad[:, 1:].reshape(2, 4, 4, 4, c).permute(0, 4, 1, 2, 3)
    by_hand = gradcam_by_hand(a, g)
    engine = compute_cam(loaded.module, windows, loaded.layer, [2, 2], reshape=loaded.reshape)
    assert engine.shape == (2, 4, 4, 4)
    torch.testing.assert_close(engine, by_hand, rtol=1e-4, atol=1e-9)
    assert float(by_hand.max()) > 0


def test_xclip_analysis_runs_on_windows(folders: dict[str, Path], video: Path) -> None:
    analysis = videocam.analyze(
        video,
        f"hf:{folders['xclip']}",
        prompts=list(PROMPTS[:2]),
        method="hirescam",
        render=False,
        topk=2,
        min_gap=0.1,
    )
    assert analysis.summary["model"]["kind"] == "video"
    assert analysis.summary["windows"]["clip_len"] == 4
    assert analysis.cams.shape[0] == N_FRAMES
    tracks = analysis.tracks
    assert tracks is not None
    assert sorted(set(tracks.class_name)) == sorted(PROMPTS[:2])
    assert analysis.frames.target_score.between(0, 1).all()


# -- a dual encoder that learned two captions ------------------------------------------------------

TRAINED_SIZE, TRAINED_SIDE, TRAINED_FRAMES = 64, 20, 24


def _shapes_video(path: Path, *, sequential: bool, seed: int) -> list[tuple[int, int, int, int]]:
    """24 frames of 64x64 dark noise with a still green square (bottom right). ``sequential``:
    a red square crosses the top in frames 0-11, a blue disc in frames 12-23; else the red
    square crosses the top while a blue disc stays bottom left. The moving shape's box per
    frame."""
    rng = np.random.default_rng(seed)
    frames, boxes = [], []
    side, size = TRAINED_SIDE, TRAINED_SIZE
    for i in range(TRAINED_FRAMES):
        frame = rng.integers(0, 60, size=(size, size, 3)).astype(np.uint8)
        draw_square(frame, 40, 40, side, DISTRACTOR)
        if sequential:
            left = round(2 + (i % 12) * (size - side - 4) / 11)
            if i < 12:
                draw_square(frame, 4, left, side, COLOURS[0])
            else:
                draw_circle(frame, 4, left, side, BLUE)
        else:
            draw_circle(frame, 40, 4, side, BLUE)
            left = round(2 + i * (size - side - 4) / (TRAINED_FRAMES - 1))
            draw_square(frame, 4, left, side, COLOURS[0])
        frames.append(frame)
        boxes.append((left, 4, left + side, 4 + side))
    write_frames(path, frames, fps=8, lossless=True)
    return boxes


def _pointing(cams: np.ndarray, boxes: list[tuple[int, int, int, int]]) -> float:
    """Share of frames whose map's strongest cell lies on the box (half a cell of slack)."""
    hits = []
    for cam, (x0, y0, x1, y1) in zip(cams.astype(np.float32), boxes, strict=True):
        h, w = cam.shape
        row, col = np.unravel_index(int(cam.argmax()), cam.shape)
        y, x = (row + 0.5) * TRAINED_SIZE / h, (col + 0.5) * TRAINED_SIZE / w
        slack = TRAINED_SIZE / h / 2
        hits.append(x0 - slack <= x <= x1 + slack and y0 - slack <= y <= y1 + slack)
    return float(np.mean(hits))


@pytest.mark.slow
def test_a_trained_dual_encoder_finds_what_it_is_asked(tmp_path: Path) -> None:
    """A tiny CLIP trained for 150 steps to match "a red square" / "a blue circle" to frames
    (a green square always beside them), asked both prompts.

    Measured over training seeds 0, 1 and 2 (Grad-CAM, the default layer): with both shapes in
    every frame, the red prompt's map peaks on the red square in every frame (pointing 1.0, all
    seeds) and the two prompts' maps differ (mean absolute difference 0.27-0.81 on the [0, 1]
    scale: not the identical maps of pytorch-grad-cam #564); with the shapes one after the
    other, the red prompt's keyframes all fall in its half with its map on it (pointing 1.0),
    and each prompt's score is 1.0 in its half and 0.0 in the other. The blue prompt's map
    found the blue disc in one seed of three (the toy model tells blue by the absence of red),
    so it is not asked to. The seed stays fixed (0); thresholds sit below those minima."""
    model = train_shape_clip(steps=150, seed=0)
    settings = {"image_mean": [0.5] * 3, "image_std": [0.5] * 3, "do_center_crop": False}
    folder = save_dual("clip", tmp_path / "shapes", model=model, processor=settings)
    options: dict[str, Any] = {
        "prompts": list(SHAPE_PROMPTS),
        "render": False,
        "topk": 3,
        "min_gap": 0.2,
    }
    both = _shapes_video(tmp_path / "both.mp4", sequential=False, seed=0)
    red = videocam.analyze(tmp_path / "both.mp4", f"hf:{folder}", target=0, **options)
    blue = videocam.analyze(tmp_path / "both.mp4", f"hf:{folder}", target=1, **options)
    assert _pointing(red.cams, both) >= 0.9
    difference = np.abs(red.cams.astype(np.float32) - blue.cams.astype(np.float32)).mean()
    assert difference >= 0.1

    boxes = _shapes_video(tmp_path / "seq.mp4", sequential=True, seed=1)
    first = videocam.analyze(tmp_path / "seq.mp4", f"hf:{folder}", target=0, **options)
    assert len(first.keyframes) >= 1
    assert (first.keyframes.frame_index < 12).all()
    assert _pointing(first.cams[:12], boxes[:12]) >= 0.9
    tracks = first.tracks
    assert tracks is not None
    halves = [(slice(0, 12), slice(12, 24)), (slice(12, 24), slice(0, 12))]
    for index, (mine, other) in enumerate(halves):
        scores = tracks[tracks.class_index == index].target_score.to_numpy()
        assert scores[mine].mean() >= 0.9
        assert scores[other].mean() <= 0.1
