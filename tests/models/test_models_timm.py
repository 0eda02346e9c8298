"""timm:NAME per frame: timm's own tiny test architectures (and a DeiT at a small size) built
with random weights, saved as state dicts and loaded back; timm's data config; default layers
and reshapes; the weights options and their errors (offline included)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from videocam.errors import ConfigError, ModelLoadError
from videocam.models import load_model

timm = pytest.importorskip("timm")

from support.hf_models import save_timm  # noqa: E402
from support.layers import layer_activations  # noqa: E402

CASES = {
    # name: (create kwargs, default layer, maps at the default layer for 2 frames)
    "test_resnet": ({}, "layer4", (2, 96, 5, 5)),
    "test_convnext": ({}, "stages.3", (2, 64, 5, 5)),
    "test_efficientnet": ({}, "blocks.4", (2, 64, 5, 5)),
    "test_vit": ({}, "blocks.5.norm1", (2, 64, 10, 10)),
    "deit_tiny_distilled_patch16_224": ({"img_size": 64}, "blocks.11.norm1", (2, 192, 4, 4)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_timm_model_from_a_state_dict(name: str, tmp_path: Path) -> None:
    kwargs, layer, shape = CASES[name]
    file = save_timm(name, tmp_path / f"{name}.pth", **kwargs)
    loaded = load_model(f"timm:{name}", weights=file)
    assert (loaded.kind, loaded.layer, loaded.weights) == ("frame", layer, str(file))
    reference = timm.create_model(name, pretrained=False, **kwargs)
    config = timm.data.resolve_model_data_config(reference)
    expected_size = (64, 64) if kwargs else tuple(config["input_size"][1:])
    assert loaded.preprocess.size == expected_size
    assert loaded.preprocess.mean == pytest.approx(tuple(config["mean"]))
    assert loaded.preprocess.std == pytest.approx(tuple(config["std"]))
    activations, logits = layer_activations(loaded, torch.randn(2, 3, *loaded.preprocess.size))
    assert tuple(activations.shape) == shape
    assert logits.shape == (2, 1000)
    assert loaded.categories is not None
    assert loaded.categories[:2] == ("tench", "goldfish")
    assert loaded.sources is not None
    assert "not applied" in loaded.sources["resize"]  # interpolation and crop_pct
    assert "timm.data.ImageNetInfo" in loaded.sources["categories"]


def test_vit_with_a_pooled_head_uses_the_block_output(tmp_path: Path) -> None:
    file = save_timm("test_vit", tmp_path / "v.pth", global_pool="avg")
    # The pooling is an architecture argument the file cannot carry: build it the same way.
    loaded = load_model("timm:test_vit", weights="none")
    assert loaded.layer == "blocks.5.norm1"
    from videocam.models.timm_zoo import timm_default_layer

    pooled = timm.create_model("test_vit", pretrained=False, global_pool="avg")
    pooled.load_state_dict(torch.load(file, weights_only=True))
    assert timm_default_layer(pooled)[0] == "blocks.5"


def test_another_head_size_and_labels(tmp_path: Path) -> None:
    file = save_timm("test_convnext", tmp_path / "c.pth", num_classes=3)
    loaded = load_model("timm:test_convnext", weights=file)
    assert loaded.categories is None
    assert layer_activations(loaded, torch.randn(1, 3, 160, 160))[1].shape == (1, 3)
    named = load_model("timm:test_convnext", weights=file, labels=["a", "b", "c"])
    assert named.categories == ("a", "b", "c")
    with pytest.raises(ConfigError, match="2 labels given but timm:test_convnext has 3"):
        load_model("timm:test_convnext", weights=file, labels=["a", "b"])


def test_any_input_size_for_cnns_not_for_fixed_vits(tmp_path: Path) -> None:
    resnet = load_model("timm:test_resnet", weights="none", input_size=(96, 128))
    assert resnet.preprocess.size == (96, 128)
    with pytest.raises(ConfigError, match="only accepts 224x224"):
        load_model("timm:deit_tiny_distilled_patch16_224", weights="none", input_size=(96, 96))


def test_weights_file_that_does_not_fit(tmp_path: Path) -> None:
    file = save_timm("test_resnet", tmp_path / "r.pth")
    with pytest.raises(ModelLoadError, match="do not fit timm:test_convnext"):
        load_model("timm:test_convnext", weights=file)


def test_unknown_names_and_tags() -> None:
    with pytest.raises(ModelLoadError, match="did you mean: resnet50"):
        load_model("timm:resnet5O", weights="none")
    with pytest.raises(ModelLoadError, match=r"no pretrained tag 'nope' for test_resnet.*r160"):
        load_model("timm:test_resnet", weights="nope")
    with pytest.raises(ModelLoadError, match="needs a model name"):
        load_model("timm:")


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


@pytest.mark.parametrize("weights", ["DEFAULT", "r160_in1k"])
def test_pretrained_offline_is_one_line(offline: None, weights: str) -> None:
    with pytest.raises(ModelLoadError) as info:
        load_model("timm:test_resnet", weights=weights)
    message = str(info.value)
    assert "\n" not in message
    assert "timm:test_resnet" in message
    assert "--weights /path/to/test_resnet.pth" in message
    assert "state_dict()" in message


def test_missing_timm_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "timm", None)
    with pytest.raises(ModelLoadError, match=r"needs the package timm.*videocam\[hf\]"):
        load_model("timm:test_resnet", weights="none")


def test_channels_last_stages_are_moved(tmp_path: Path) -> None:
    loaded = load_model("timm:test_maxvit", weights="none")  # NCHW; fixed 160x160
    activations, _ = layer_activations(loaded, torch.randn(1, 3, 160, 160))
    assert activations.shape[0] == 1
    assert activations.ndim == 4
    from videocam.models.layers import ChannelsLastToFirst
    from videocam.models.timm_zoo import timm_reshape

    swin = timm.create_model(
        "swin_tiny_patch4_window7_224",
        pretrained=False,
        depths=(1, 1, 1, 1),
        embed_dim=32,
        num_heads=(1, 1, 2, 2),
    )
    assert isinstance(timm_reshape(swin, "layers.3", name="swin"), ChannelsLastToFirst)
    assert timm_reshape(swin, "head.fc", name="swin") is None
