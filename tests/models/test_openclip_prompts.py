"""``--model openclip:NAME --prompt TEXT``: tiny open_clip models (a ViT image tower of 2 blocks
on 32x32 frames) registered from a config file, their weights saved as a state dict and passed
as ``--weights FILE``. The score equals open_clip's own forward (softmax of its logits; sigmoid
with a logit bias), Grad-CAM at the default layer equals one computed by hand, and the errors are
one line, exit 2."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch

import videocam
from videocam.cam import compute_cam
from videocam.cli import main
from videocam.io import open_video
from videocam.models import LoadedModel, load_model
from videocam.runtime import model_input

from support.hf_models import gradcam_by_hand, layer_tokens_with_grad, square_on_noise

open_clip = pytest.importorskip("open_clip")

PROMPTS = ("a red square", "a blue circle")
N_FRAMES = 6
CONTEXT = 16
NAMES = {"softmax": "videocam-test-tiny-vit", "sigmoid": "videocam-test-tiny-vit-bias"}


def _config(bias: bool) -> dict[str, Any]:
    config: dict[str, Any] = {
        "embed_dim": 16,
        "vision_cfg": {
            "image_size": 32,
            "layers": 2,
            "width": 32,
            "patch_size": 8,
            "head_width": 16,
        },
        "text_cfg": {
            "context_length": CONTEXT,
            "vocab_size": 49408,
            "width": 32,
            "heads": 2,
            "layers": 2,
        },
    }
    if bias:
        config["init_logit_bias"] = -2.0
        config["init_logit_scale"] = 1.5
    return config


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The tiny configs registered with open_clip, and a random state dict of each."""
    root = tmp_path_factory.mktemp("openclip")
    configs = root / "configs"
    configs.mkdir()
    for score, name in NAMES.items():
        (configs / f"{name}.json").write_text(json.dumps(_config(score == "sigmoid")))
    open_clip.add_model_config(configs)
    files = {}
    for i, (score, name) in enumerate(NAMES.items()):
        torch.manual_seed(i)
        model = open_clip.create_model(name, pretrained=None)
        files[score] = root / f"{name}.pt"
        torch.save(model.state_dict(), files[score])
    return files


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("openclip_video") / "clip.mp4"
    return square_on_noise(path, N_FRAMES, (40, 40, 230), step=4, seed=5, top=10)


def _load(score: str, files: dict[str, Path], **options: Any) -> LoadedModel:
    return load_model(
        f"openclip:{NAMES[score]}", weights=str(files[score]), prompts=PROMPTS, **options
    )


def _inputs(loaded: LoadedModel, video: Path) -> torch.Tensor:
    with open_video(video) as source:
        frames = source.read(list(range(N_FRAMES)), size=loaded.preprocess.size)
    return model_input(loaded, frames[:, None])


@pytest.mark.parametrize("score", ["softmax", "sigmoid"])
def test_scores_are_open_clips_own(score: str, weights: dict[str, Path], video: Path) -> None:
    loaded = _load(score, weights, negatives=["a photo of a cat"])
    x = _inputs(loaded, video)
    reference = open_clip.create_model(NAMES[score], pretrained=None).eval()
    reference.load_state_dict(torch.load(weights[score], weights_only=True))
    tokenizer = open_clip.get_tokenizer(NAMES[score])
    texts = [*PROMPTS, "a photo of a cat"] if score == "softmax" else list(PROMPTS)
    with torch.no_grad():
        image, text, scale, *bias = reference(x, tokenizer(texts))
        logits = scale * image @ text.t()
        if score == "sigmoid":
            want = torch.sigmoid(logits + bias[0])
        else:
            want = torch.softmax(logits, dim=1)[:, : len(PROMPTS)]
        got = loaded.module(x)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    assert loaded.prompts is not None
    assert loaded.prompts.score == score
    assert loaded.layer == "visual.transformer.resblocks.1.ln_1"
    assert loaded.preprocess.size == (32, 32)


def test_gradcam_of_a_prompt_by_hand(weights: dict[str, Path], video: Path) -> None:
    loaded = _load("softmax", weights)
    x = _inputs(loaded, video)
    tokens = layer_tokens_with_grad(loaded, x, 0)  # (N, 1 + 16, C), batch first
    n, _, c = tokens.shape
    a = tokens[:, 1:].detach().reshape(n, 4, 4, c).permute(0, 3, 1, 2)
    g = tokens.grad[:, 1:].reshape(n, 4, 4, c).permute(0, 3, 1, 2)
    by_hand = gradcam_by_hand(a, g)
    engine = compute_cam(loaded.module, x, loaded.layer, [0] * n, reshape=loaded.reshape)
    torch.testing.assert_close(engine, by_hand, rtol=1e-4, atol=1e-9)
    assert float(by_hand.max()) > 0


def test_analysis_tracks_every_prompt(weights: dict[str, Path], video: Path) -> None:
    analysis = videocam.analyze(
        video,
        f"openclip:{NAMES['sigmoid']}",
        weights=str(weights["sigmoid"]),
        prompts=list(PROMPTS),
        render=False,
        topk=2,
        min_gap=0.1,
    )
    tracks = analysis.tracks
    assert tracks is not None
    assert sorted(set(zip(tracks.class_index, tracks.class_name, strict=True))) == [
        (0, PROMPTS[0]),
        (1, PROMPTS[1]),
    ]
    assert analysis.summary["target"]["name"] == PROMPTS[0]
    assert analysis.summary["prompts"]["score"] == "sigmoid"
    assert analysis.summary["prompts"]["logit_bias"] == pytest.approx(-2.0)
    assert analysis.summary["model"]["sources"]["weights"].startswith("file ")
    assert isinstance(analysis.frames, pd.DataFrame)


def test_cli_errors_are_one_line(
    weights: dict[str, Path], video: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    base = ["analyze", str(video), "-o", str(out), "--no-render", "--quiet"]
    model = ["--model", f"openclip:{NAMES['softmax']}"]
    cases = [
        ([*model, "--prompt", "a dog"], "needs --weights"),
        ([*model, "--weights", str(weights["softmax"])], "--prompt TEXT"),
        (["--model", "openclip:no-such-model", "--prompt", "a dog"], "not an open_clip model"),
        (
            [*model, "--weights", str(weights["softmax"]), "--prompt", " ".join(["dog"] * CONTEXT)],
            f"at most {CONTEXT}",
        ),
    ]
    for args, words in cases:
        assert main([*base, *args]) == 2, words
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1, err
        assert words in err
    assert not out.exists()
