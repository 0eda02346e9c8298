"""Every torchvision video classifier and the bundled tiny model: built with random weights, a
forward at a valid input, and the default layer's activations reshaped to (N, C, t, h, w)."""

from __future__ import annotations

import pytest
import torch

from videocam.errors import ConfigError
from videocam.models import load_model

from support.layers import layer_activations

CASES = [
    # model, input (N, 3, T, H, W), expected activations (N, C, t, h, w) at the default layer
    ("r3d_18", (1, 3, 16, 112, 112), (1, 512, 2, 7, 7)),
    ("mc3_18", (1, 3, 16, 112, 112), (1, 512, 16, 7, 7)),
    ("r2plus1d_18", (1, 3, 16, 112, 112), (1, 512, 2, 7, 7)),
    ("r3d_18", (2, 3, 4, 32, 32), (2, 512, 1, 2, 2)),  # smaller clips work too
    ("s3d", (1, 3, 14, 224, 224), (1, 1024, 2, 7, 7)),  # 14 frames, 7x7: the least S3D takes
    ("swin3d_t", (2, 3, 4, 64, 64), (2, 768, 2, 2, 2)),
    ("swin3d_s", (1, 3, 4, 64, 64), (1, 768, 2, 2, 2)),
    ("swin3d_b", (1, 3, 4, 64, 64), (1, 1024, 2, 2, 2)),
    ("videocam_tiny", (2, 3, 16, 64, 64), (2, 128, 8, 8, 8)),
    pytest.param("swin3d_t", (1, 3, 16, 224, 224), (1, 768, 8, 7, 7), marks=pytest.mark.slow),
    # MViT accepts exactly the 16x224x224 it is built for.
    pytest.param("mvit_v1_b", (1, 3, 16, 224, 224), (1, 768, 8, 7, 7), marks=pytest.mark.slow),
    pytest.param("mvit_v2_s", (1, 3, 16, 224, 224), (1, 768, 8, 7, 7), marks=pytest.mark.slow),
]


@pytest.mark.parametrize(("name", "input_shape", "expected"), CASES)
def test_default_layer_gives_n_c_t_h_w(
    name: str, input_shape: tuple[int, ...], expected: tuple[int, ...]
) -> None:
    torch.manual_seed(0)
    loaded = load_model(name, weights="none")
    assert loaded.kind == "video"
    assert loaded.clip_len == 16
    assert loaded.weights == "none"
    x = torch.randn(input_shape)
    activations, logits = layer_activations(loaded, x)
    assert tuple(activations.shape) == expected
    n_classes = 5 if name == "videocam_tiny" else 400
    assert logits.shape == (input_shape[0], n_classes)
    assert loaded.categories is not None
    assert len(loaded.categories) == n_classes


def test_mvit_reshape_keeps_token_values_and_checks_the_input() -> None:
    loaded = load_model("mvit_v2_s", weights="none")
    assert loaded.reshape is not None
    tokens = torch.randn(2, 1 + 8 * 7 * 7, 768)
    grid = loaded.reshape(tokens, torch.Size((2, 3, 16, 224, 224)))
    assert grid.shape == (2, 768, 8, 7, 7)
    # position (t, h, w) is token 1 + (t*7 + h)*7 + w
    assert torch.equal(grid[1, :, 3, 2, 5], tokens[1, 1 + (3 * 7 + 2) * 7 + 5])
    with pytest.raises(ConfigError, match=r"needs an input of exactly 16x224x224"):
        loaded.reshape(tokens, torch.Size((2, 3, 8, 224, 224)))
    # Earlier blocks are on finer grids: blocks.0 keeps the 8x56x56 patch grid.
    early = load_model("mvit_v2_s", weights="none", layer="blocks.0")
    assert early.reshape is not None
    out = early.reshape(torch.zeros(1, 1 + 8 * 56 * 56, 96), torch.Size((1, 3, 16, 224, 224)))
    assert out.shape == (1, 96, 8, 56, 56)


def test_swin3d_norm_layer_is_channels_last_too() -> None:
    loaded = load_model("swin3d_t", weights="none", layer="norm")
    activations, _ = layer_activations(loaded, torch.randn(1, 3, 4, 64, 64))
    assert activations.shape == (1, 768, 2, 2, 2)


def test_cnn_layers_need_no_reshape() -> None:
    assert load_model("s3d", weights="none").reshape is None
    assert load_model("mc3_18", weights="none", layer="layer3").reshape is None
