"""Bundled models: EfficientNet-Lite0 with its real ImageNet weights, and videocam_tiny."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from videocam.errors import ModelLoadError
from videocam.models import (
    LoadedModel,
    TinyVideoNet,
    build_tiny,
    bundled,
    list_models,
    load_model,
    load_state_dict_file,
)


@pytest.fixture(scope="module")
def lite0() -> LoadedModel:
    return load_model("efficientnet_lite0")


def test_lite0_loads_the_packaged_weights(lite0: LoadedModel) -> None:
    assert lite0.weights == "bundled"
    assert lite0.kind == "frame"
    assert lite0.layer == "_conv_head"
    assert lite0.preprocess.size == (224, 224)
    assert lite0.preprocess.mean == pytest.approx((127 / 255,) * 3)
    assert lite0.preprocess.std == pytest.approx((128 / 255,) * 3)
    assert lite0.categories is not None
    assert len(lite0.categories) == 1000
    assert lite0.categories[0] == "tench"
    assert lite0.categories[817] == "sports car"
    state = load_state_dict_file(bundled.lite0_weights_path())
    loaded = lite0.module.state_dict()
    assert set(state) == set(loaded)
    assert all(torch.equal(state[k], loaded[k]) for k in state)
    # Trained batch-norm statistics, not the initial ones.
    assert not torch.allclose(lite0.module._bn1.running_var, torch.ones(1280))


def test_lite0_predicts_a_distribution_that_is_not_uniform(lite0: LoadedModel) -> None:
    # A synthetic frame: sky gradient over a grey road with a dark box.
    frame = torch.zeros(1, 224, 224, 3, dtype=torch.uint8)
    frame[:, :112] = torch.tensor([120, 160, 220], dtype=torch.uint8)
    frame[:, 112:] = 100
    frame[:, 120:170, 60:160] = 30
    x = lite0.preprocess(frame)
    assert x.shape == (1, 3, 224, 224)
    with torch.no_grad():
        probs = lite0.module(x).softmax(-1)[0]
        activations = lite0.module.extract_features(x)
    assert probs.sum().item() == pytest.approx(1.0, abs=1e-5)
    assert probs.max().item() > 10 / 1000  # far from uniform (1/1000 each)
    assert activations.shape == (1, 1280, 7, 7)


def test_lite0_recognises_a_vehicle_in_real_footage(
    lite0: LoadedModel, shared_videos: Path
) -> None:
    import av

    with av.open(str(shared_videos / "udacity_vehicle_test_video.mp4")) as container:
        frame = next(iter(container.decode(video=0))).to_ndarray(format="rgb24")
    rgb = torch.from_numpy(frame).permute(2, 0, 1)[None].float()
    resized = torch.nn.functional.interpolate(rgb, size=(224, 224), mode="bilinear")
    x = lite0.preprocess(resized.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1))
    with torch.no_grad():
        top5 = lite0.module(x).topk(5).indices[0].tolist()
    vehicles = {"trailer truck", "sports car", "racer", "car wheel", "convertible", "minivan"}
    assert vehicles & {lite0.categories[i] for i in top5}


def test_lite0_random_init() -> None:
    loaded = load_model("efficientnet_lite0", weights="none", num_classes=3)
    assert loaded.weights == "none"
    assert loaded.categories is None
    assert loaded.module(torch.zeros(2, 3, 224, 224)).shape == (2, 3)
    with pytest.raises(ModelLoadError, match="valid: DEFAULT, bundled"):
        load_model("efficientnet_lite0", weights="IMAGENET1K_V1")


def test_tiny_architecture_is_small_and_maps_16x64x64_to_8x8x8() -> None:
    net = build_tiny(4)
    assert isinstance(net, TinyVideoNet)
    n_bytes = sum(p.numel() * p.element_size() for p in net.state_dict().values())
    assert n_bytes < 5 * 2**20
    net.eval()
    with torch.no_grad():
        x = torch.randn(1, 3, 16, 64, 64)
        assert net.block4(net.block3(net.block2(net.block1(x)))).shape == (1, 128, 8, 8, 8)
        assert net(x).shape == (1, 4)
    assert build_tiny(6, width=8).fc.in_features == 64
    with pytest.raises(TypeError, match="unexpected"):
        build_tiny(4, depth=3)


def test_tiny_none_builds_the_default_config(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(bundled, "_assets_root", lambda: tmp_path)  # no assets
    loaded = load_model("videocam_tiny", weights="none")
    assert loaded.categories == ("background", "move_right", "move_left", "grow", "shrink")
    assert loaded.background_class == 0
    assert loaded.clip_len == 16
    assert loaded.preprocess.size == (64, 64)
    assert loaded.layer == "block4"
    frames = torch.randint(0, 256, (1, 16, 64, 64, 3), dtype=torch.uint8)
    with torch.no_grad():
        assert loaded.module(loaded.preprocess(frames)).shape == (1, 5)


def test_tiny_bundled_weights_missing_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(bundled, "_assets_root", lambda: tmp_path)
    for weights in ("DEFAULT", "bundled"):
        with pytest.raises(ModelLoadError, match=r"bundled weights not found.*train_tiny\.py"):
            load_model("videocam_tiny", weights=weights)


def _write_assets(root: Path, meta: dict[str, Any], width: int = 8) -> TinyVideoNet:
    torch.manual_seed(3)
    net = build_tiny(len(meta["classes"]), width=width)
    torch.save(net.state_dict(), root / "videocam_tiny.pt")
    (root / "videocam_tiny.json").write_text(json.dumps(meta), encoding="utf-8")
    return net


def test_tiny_bundled_weights_and_sidecar(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    meta = {
        "classes": ["background", "left", "right"],
        "input_size": [48, 56],
        "clip_len": 8,
        "mean": [0.5, 0.4, 0.3],
        "std": [0.2, 0.25, 0.3],
        "background_class": 0,
        "val_accuracy": 0.97,
    }
    net = _write_assets(tmp_path, meta, width=8)  # width inferred from the state dict
    monkeypatch.setattr(bundled, "_assets_root", lambda: tmp_path)
    loaded = load_model("videocam_tiny")
    assert loaded.weights == "bundled"
    assert loaded.categories == ("background", "left", "right")
    assert loaded.background_class == 0
    assert loaded.clip_len == 8
    assert loaded.preprocess.size == (48, 56)
    assert loaded.preprocess.mean == (0.5, 0.4, 0.3)
    assert loaded.preprocess.std == (0.2, 0.25, 0.3)
    for key, value in net.state_dict().items():
        assert torch.equal(loaded.module.state_dict()[key], value)
    row = {info.name: info for info in list_models()}["videocam_tiny"]
    assert (row.input_size, row.clip_len) == ((48, 56), 8)


def test_tiny_sidecar_is_validated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _write_assets(tmp_path, {"classes": ["a", "b"], "std": [0.1, 0.0, 0.1]})
    monkeypatch.setattr(bundled, "_assets_root", lambda: tmp_path)
    with pytest.raises(ModelLoadError, match=r"videocam_tiny\.json: 'std' must be positive"):
        load_model("videocam_tiny")
    (tmp_path / "videocam_tiny.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ModelLoadError, match="invalid json"):
        load_model("videocam_tiny")
