"""The registry: what `videocam models` lists, name and weights resolution, errors, options."""

from __future__ import annotations

import subprocess
import sys
import urllib.error
from pathlib import Path

import pytest
import torch
import torchvision.models as tvm

from videocam.errors import ConfigError, ModelLoadError
from videocam.models import ModelInfo, list_models, load_model, resolve_device

VIDEO_ROWS = {
    # name: (default layer, weights names, input size)
    "r3d_18": ("layer4", ("KINETICS400_V1",), (112, 112)),
    "mc3_18": ("layer4", ("KINETICS400_V1",), (112, 112)),
    "r2plus1d_18": ("layer4", ("KINETICS400_V1",), (112, 112)),
    "s3d": ("features.15", ("KINETICS400_V1",), (224, 224)),
    "mvit_v1_b": ("blocks.15", ("KINETICS400_V1",), (224, 224)),
    "mvit_v2_s": ("blocks.15", ("KINETICS400_V1",), (224, 224)),
    "swin3d_t": ("features.6", ("KINETICS400_V1",), (224, 224)),
    "swin3d_s": ("features.6", ("KINETICS400_V1",), (224, 224)),
    "swin3d_b": ("features.6", ("KINETICS400_V1", "KINETICS400_IMAGENET22K_V1"), (224, 224)),
}


@pytest.fixture(scope="module")
def rows() -> dict[str, ModelInfo]:
    """The model names (the hf: / timm: family rows aside: their names are patterns)."""
    infos = [info for info in list_models() if info.family is None]
    names = [info.name for info in infos]
    assert len(names) == len(set(names)), "duplicate model names"
    return {info.name: info for info in infos}


def test_family_rows_come_last_and_are_unique() -> None:
    infos = list_models()
    families = [(i.name, i.family) for i in infos if i.family is not None]
    assert len(families) == len(set(families))
    assert [i.family is not None for i in infos] == sorted(i.family is not None for i in infos)
    assert {name for name, _ in families} == {"hf:ID_OR_DIR", "timm:NAME", "openclip:NAME"}
    assert {("hf:ID_OR_DIR", "clip"), ("hf:ID_OR_DIR", "siglip")} <= set(families)
    for info in infos:
        if info.family is not None:
            assert info.source in ("transformers", "timm", "open_clip")
            assert info.note


def test_lists_every_torchvision_video_model(rows: dict[str, ModelInfo]) -> None:
    assert set(tvm.list_models(module=tvm.video)) == set(VIDEO_ROWS)
    for name, (layer, weights, size) in VIDEO_ROWS.items():
        assert rows[name] == ModelInfo(
            name=name,
            kind="video",
            default_layer=layer,
            weights=weights,
            input_size=size,
            clip_len=16,
            source="torchvision",
        )


def test_lists_every_torchvision_image_model_as_frame(rows: dict[str, ModelInfo]) -> None:
    image_names = tvm.list_models(module=tvm)
    assert len(image_names) >= 80
    for name in image_names:
        info = rows[name]
        assert info.kind == "frame"
        assert info.source == "torchvision"
        assert info.clip_len is None
        assert not info.default_layer.startswith("("), f"{name} has no pinned default layer"
        assert info.weights
        assert "DEFAULT" not in info.weights
    assert rows["resnet50"].weights == ("IMAGENET1K_V1", "IMAGENET1K_V2")
    assert rows["resnet50"].default_layer == "layer4"
    assert rows["inception_v3"].input_size == (299, 299)
    assert rows["vit_h_14"].input_size == (518, 518)  # DEFAULT is the SWAG end-to-end weights


def test_lists_bundled_models(rows: dict[str, ModelInfo]) -> None:
    assert rows["efficientnet_lite0"] == ModelInfo(
        "efficientnet_lite0", "frame", "_conv_head", ("bundled",), (224, 224), None, "bundled"
    )
    tiny = rows["videocam_tiny"]
    assert (tiny.kind, tiny.default_layer, tiny.weights, tiny.source) == (
        "video",
        "block4",
        ("bundled",),
        "bundled",
    )
    detectors = tvm.list_models(module=tvm.detection)
    assert len(rows) == 9 + 2 + len(tvm.list_models(module=tvm)) + len(detectors)


def test_importing_models_does_not_import_torchvision() -> None:
    code = "import sys, videocam.models; print('torchvision' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == "False"


def test_unknown_model_suggests_close_names() -> None:
    with pytest.raises(ModelLoadError, match=r"unknown model 'r3d18'.*did you mean: r3d_18"):
        load_model("r3d18")


def test_model_name_is_case_insensitive() -> None:
    loaded = load_model("R3D_18", weights="none")
    assert loaded.name == "r3d_18"


def test_unknown_weights_name_lists_valid_ones() -> None:
    with pytest.raises(ModelLoadError) as info:
        load_model("r3d_18", weights="IMAGENET1K_V1")
    message = str(info.value)
    assert "'IMAGENET1K_V1'" in message
    assert "DEFAULT, KINETICS400_V1" in message
    assert "none" in message
    assert "\n" not in message


def test_default_weights_offline_is_one_clear_line(offline_hub: Path) -> None:
    with pytest.raises(ModelLoadError) as info:
        load_model("r3d_18")  # weights="DEFAULT"
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("could not download KINETICS400_V1 weights for r3d_18")
    assert "https://download.pytorch.org/models/r3d_18-b3b3357e.pth" in message
    assert "--weights /path/to/r3d_18-b3b3357e.pth" in message
    assert str(offline_hub / "r3d_18-b3b3357e.pth") in message
    assert isinstance(info.value.__cause__, urllib.error.URLError)


def test_enum_weights_come_from_the_hub_cache_when_present(offline_hub: Path) -> None:
    torch.manual_seed(0)
    reference = tvm.video.r3d_18(weights=None)
    offline_hub.mkdir(parents=True)
    torch.save(reference.state_dict(), offline_hub / "r3d_18-b3b3357e.pth")
    loaded = load_model("r3d_18", weights="kinetics400_v1")  # case-insensitive
    assert loaded.weights == "KINETICS400_V1"
    assert loaded.categories is not None
    assert len(loaded.categories) == 400
    assert loaded.categories[0] == "abseiling"
    assert torch.equal(loaded.module.fc.weight, reference.fc.weight)
    # DEFAULT resolves to the same enum member, and the qualified spelling works too.
    assert load_model("r3d_18", weights="DEFAULT").weights == "KINETICS400_V1"
    assert load_model("r3d_18", weights="R3D_18_Weights.KINETICS400_V1").weights == (
        "KINETICS400_V1"
    )


def test_loaded_model_is_frozen_eval_on_device() -> None:
    loaded = load_model("r3d_18", weights=None, device="cpu")
    assert loaded.device == torch.device("cpu")
    assert not loaded.module.training
    assert all(not p.requires_grad for p in loaded.module.parameters())
    assert all(p.device.type == "cpu" for p in loaded.module.parameters())
    assert loaded.weights == "none"
    assert loaded.kind == "video"
    assert loaded.clip_len == 16
    assert loaded.background_class is None
    assert loaded.reshape is None
    assert loaded.preprocess.size == (112, 112)
    assert loaded.preprocess.mean == (0.43216, 0.394666, 0.37645)
    assert loaded.preprocess.std == (0.22803, 0.22145, 0.216989)


def test_resolve_device() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    with pytest.raises(ConfigError, match="device must be auto, cpu or cuda"):
        resolve_device("tpu-ish")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            resolve_device("cuda")


def test_labels_override_categories(tmp_path: Path) -> None:
    labels = tmp_path / "labels.txt"
    labels.write_text("background\nright\r\nleft\ngrow\nshrink\n\n", encoding="utf-8")
    loaded = load_model("videocam_tiny", weights="none", labels=labels)
    assert loaded.categories == ("background", "right", "left", "grow", "shrink")
    loaded = load_model("videocam_tiny", weights="none", labels=["a", "b", "c", "d", "e"])
    assert loaded.categories == ("a", "b", "c", "d", "e")


def test_labels_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="2 labels given but videocam_tiny has 5 classes"):
        load_model("videocam_tiny", weights="none", labels=["a", "b"])
    with pytest.raises(ConfigError, match="labels file not found"):
        load_model("videocam_tiny", weights="none", labels=tmp_path / "missing.txt")
    gap = tmp_path / "gap.txt"
    gap.write_text("a\n\nb\nc\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="line 2 is empty"):
        load_model("videocam_tiny", weights="none", labels=gap)
    with pytest.raises(ConfigError, match="400 classes"):
        load_model("r3d_18", weights="none", labels=["only", "three", "names"])


def test_num_classes() -> None:
    loaded = load_model("r3d_18", weights="none", num_classes=3, labels=["x", "y", "z"])
    assert loaded.module.fc.out_features == 3
    assert loaded.categories == ("x", "y", "z")
    assert load_model("r3d_18", weights="none", num_classes=3).categories is None
    with pytest.raises(ModelLoadError, match="have 400 classes, not num_classes=3"):
        load_model("r3d_18", weights="KINETICS400_V1", num_classes=3)
    with pytest.raises(ConfigError, match="num_classes must be a positive integer"):
        load_model("r3d_18", weights="none", num_classes=0)


def test_option_validation() -> None:
    with pytest.raises(ConfigError, match="std must be three positive numbers"):
        load_model("videocam_tiny", weights="none", std=(0.2, 0.0, 0.2))
    with pytest.raises(ConfigError, match="mean must be three numbers"):
        load_model("videocam_tiny", weights="none", mean=(0.5, 0.5))
    with pytest.raises(ConfigError, match="input size must be two"):
        load_model("videocam_tiny", weights="none", input_size=(64,))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="applies to custom models only"):
        load_model("r3d_18", weights="none", frame_model=True)


def test_known_model_preprocessing_overrides() -> None:
    loaded = load_model(
        "r3d_18", weights="none", input_size=(128, 160), mean=(0.5, 0.5, 0.5), std=(1, 1, 1)
    )
    assert loaded.preprocess.size == (128, 160)
    assert loaded.preprocess.mean == (0.5, 0.5, 0.5)
    assert loaded.preprocess.std == (1.0, 1.0, 1.0)


def test_fixed_size_models_refuse_other_sizes() -> None:
    with pytest.raises(ConfigError, match="vit_b_32 only accepts 224x224 frames"):
        load_model("vit_b_32", weights="none", input_size=(112, 112))
