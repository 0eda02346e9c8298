"""The bundled video model ``videocam_tiny``: shipped files, held-out accuracy, the trainer.

Held-out clips use seeds >= 2_000_000 (every seed >= 1_000_000 is held out of training; the
trainer's own validation uses 1_000_000..1_100_499), encoded to H.264 and decoded at 64x64 like
the pipeline's input.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch

import videocam
from videocam.demo import DEMO_SPEC
from videocam.io import open_video
from videocam.models.tiny import build_tiny
from videocam.synthetic import EVENT_CLASSES, ClipSpec, make_clip

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "train_tiny.py"
ASSETS = Path(videocam.__file__).resolve().parent / "assets"
WEIGHTS = ASSETS / "videocam_tiny.pt"
SIDECAR = ASSETS / "videocam_tiny.json"
TEST_SEED = 2_000_000


@pytest.fixture(scope="module")
def trainer() -> ModuleType:
    """``scripts/train_tiny.py`` as a module: the data and metrics the shipped numbers use."""
    spec = importlib.util.spec_from_file_location("videocam_train_tiny", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def meta() -> dict:
    return json.loads(SIDECAR.read_text())


@pytest.fixture(scope="module")
def model(meta: dict) -> torch.nn.Module:
    net = build_tiny(len(meta["classes"]), width=meta["width"])
    net.load_state_dict(torch.load(WEIGHTS, map_location="cpu", weights_only=True))
    return net.eval()


def test_weights_file_is_small_and_a_plain_state_dict(meta: dict) -> None:
    assert WEIGHTS.stat().st_size < 5 * 1024 * 1024
    state = torch.load(WEIGHTS, map_location="cpu", weights_only=True)
    assert isinstance(state, dict)
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    expected = build_tiny(len(meta["classes"]), width=meta["width"]).state_dict()
    assert list(state) == list(expected)
    assert {k: tuple(v.shape) for k, v in state.items()} == {
        k: tuple(v.shape) for k, v in expected.items()
    }
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())


def test_sidecar_fields(meta: dict) -> None:
    assert meta["classes"] == list(EVENT_CLASSES)
    assert meta["input_size"] == [64, 64]
    assert meta["clip_len"] == 16
    assert meta["background_class"] == 0
    assert meta["layer"] == "block4"
    assert isinstance(meta["width"], int)
    assert meta["width"] >= 1
    assert len(meta["mean"]) == 3
    assert len(meta["std"]) == 3
    assert all(s > 0 for s in meta["std"])
    assert meta["val_accuracy"] >= 0.95
    assert meta["val_clip_accuracy"] >= 0.9
    assert 0.0 <= meta["pointing_game"] <= 1.0
    assert 0 < meta["train_seconds"] <= 15 * 60
    assert meta["torch_version"]
    config = meta["train_config"]
    assert config["quick"] is False
    train_lo, train_hi = config["train_seeds"]
    val_lo, val_hi = config["val_seeds"]
    assert 0 <= train_lo <= train_hi < 1_000_000 <= val_lo <= val_hi
    for key in ("seed", "epochs", "lr", "batch_size", "width", "n_train_clips"):
        assert key in config
    assert config["width"] == meta["width"]


def test_held_out_window_accuracy(trainer: ModuleType, model: torch.nn.Module) -> None:
    cfg = trainer.Config()

    def spec_of(seed: int) -> ClipSpec:
        return trainer.clip_spec(
            seed, sizes=trainer.VAL_SIZES, n_frames=cfg.n_frames, event_len=cfg.event_len
        )

    seeds = range(TEST_SEED, TEST_SEED + 10)
    assert [spec_of(s).event for s in seeds[:5]] == [None, *EVENT_CLASSES[1:]]
    clips = trainer.make_clips(seeds, spec_of, "held-out")
    result = trainer.window_accuracy(model, clips, stride=8)
    assert result["n_event_windows"] >= 8
    assert result["n_background_windows"] >= 20
    assert result["accuracy"] >= 0.9, result


def _decode(trainer: ModuleType, path: Path, spec: ClipSpec):  # -> trainer.Clip
    """Decode a make_clip file at 64x64 as the pipeline does, with the clip's ground truth."""
    made = make_clip(path, spec)
    with open_video(made.path) as source:
        frames = np.concatenate([b.frames for b in source.iter_batches(size=(64, 64))])
    return trainer.Clip(
        spec=spec,
        frames=torch.from_numpy(frames),
        label=made.truth.label,
        event_frames=made.truth.event_frames,
        boxes=made.truth.boxes,
    )


@pytest.mark.parametrize("event", EVENT_CLASSES[1:])
def test_auto_target_finds_a_short_event_in_a_long_clip(
    trainer: ModuleType, model: torch.nn.Module, tmp_path: Path, event: str
) -> None:
    """Short events in long videos: a 24-frame event in 128 frames, made as the demo does."""
    spec = ClipSpec(n_frames=128, size=(128, 160), seed=TEST_SEED + 100, event=event, event_len=24)
    decoded = _decode(trainer, tmp_path / "long.mp4", spec)
    probs = trainer.window_probs(model, decoded, trainer.pipeline_starts(128, 8))
    # Most windows see no event: background wins the plain mean, the auto target skips it.
    assert int(probs.mean(0).argmax()) == 0
    assert trainer.auto_target(probs) == EVENT_CLASSES.index(event)


def test_demo_clip_auto_target_and_peak_frame(
    trainer: ModuleType, model: torch.nn.Module, tmp_path: Path
) -> None:
    """The demo's own clip: ``auto`` explains its event and the strongest frame lies in it."""
    spec = DEMO_SPEC
    decoded = _decode(trainer, tmp_path / "demo.mp4", spec)
    probs = trainer.window_probs(model, decoded, trainer.pipeline_starts(spec.n_frames, 8))
    assert trainer.auto_target(probs) == EVENT_CLASSES.index(spec.event)
    fused = trainer.fused_pointing_game(model, [decoded])
    assert fused["peak_frame_in_event"] == 1.0
    assert fused["tolerant_rate"] >= 0.8, fused


def test_gradcam_points_at_the_event_object(trainer: ModuleType, model: torch.nn.Module) -> None:
    cfg = trainer.Config()

    def spec_of(seed: int) -> ClipSpec:
        return trainer.clip_spec(
            seed, sizes=trainer.VAL_SIZES, n_frames=cfg.n_frames, event_len=cfg.event_len
        )

    clips = trainer.make_clips(range(TEST_SEED + 1, TEST_SEED + 9), spec_of, "pointing")
    result = trainer.pointing_game(model, clips, n_windows=16)
    assert result["n_windows"] >= 8
    assert result["rate"] >= 0.5, result
    assert result["tolerant_rate"] >= 0.8, result


def test_load_model_reads_the_shipped_files(meta: dict, model: torch.nn.Module) -> None:
    """``load_model("videocam_tiny")`` takes its classes and preprocessing from the json."""
    from videocam.models import load_model

    loaded = load_model("videocam_tiny")
    assert loaded.kind == "video"
    assert loaded.layer == meta["layer"]
    assert list(loaded.categories) == meta["classes"]
    assert loaded.background_class == meta["background_class"]
    assert loaded.clip_len == meta["clip_len"]
    assert list(loaded.preprocess.size) == meta["input_size"]
    assert list(loaded.preprocess.mean) == pytest.approx(meta["mean"])
    assert list(loaded.preprocess.std) == pytest.approx(meta["std"])
    x = torch.randn(2, 3, 16, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(loaded.module(x), model(x), rtol=0, atol=0)


@pytest.mark.slow
def test_quick_training_writes_loadable_files(tmp_path: Path) -> None:
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--out", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "val_accuracy" in run.stdout
    meta = json.loads((tmp_path / "videocam_tiny.json").read_text())
    assert meta["classes"] == list(EVENT_CLASSES)
    assert meta["train_config"]["quick"] is True
    state = torch.load(tmp_path / "videocam_tiny.pt", map_location="cpu", weights_only=True)
    build_tiny(len(meta["classes"]), width=meta["width"]).load_state_dict(state)
