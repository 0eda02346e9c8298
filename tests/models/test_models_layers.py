"""Target layers: dotted-name resolution and the token / channels-last reshapes (exact values)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from videocam.errors import ConfigError, LayerNotFoundError
from videocam.models import resolve_layer
from videocam.models.layers import ChannelsLastToFirst, ConvGeometry, TokensToGrid, layer_name


def _net() -> nn.Module:
    net = nn.Module()
    net.features = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 8, 3))
    net.blocks = nn.ModuleList([nn.Identity(), nn.Linear(2, 2)])
    net.head = nn.Linear(8, 2)
    return net


def test_resolves_dotted_and_negative_indices() -> None:
    net = _net()
    assert resolve_layer(net, "features.2") is net.features[2]
    assert resolve_layer(net, "features.-1") is net.features[2]
    assert resolve_layer(net, "blocks.1") is net.blocks[1]
    assert resolve_layer(net, "head") is net.head
    assert layer_name(net, resolve_layer(net, "features.-1")) == "features.2"


def test_missing_layer_names_it_and_suggests() -> None:
    net = _net()
    with pytest.raises(LayerNotFoundError, match=r"'featrues.2' not found in toy; did you mean"):
        resolve_layer(net, "featrues.2", model_name="toy")
    with pytest.raises(LayerNotFoundError, match=r"features\.3"):
        resolve_layer(net, "features.3")
    with pytest.raises(LayerNotFoundError, match="top-level layers: features, blocks, head"):
        resolve_layer(net, "zzz")
    with pytest.raises(LayerNotFoundError, match="non-empty"):
        resolve_layer(net, "")


def test_conv_geometry() -> None:
    conv = nn.Conv3d(3, 8, kernel_size=(3, 7, 7), stride=(2, 4, 4), padding=(1, 3, 3))
    geometry = ConvGeometry.of(conv, 3)
    assert geometry.apply((16, 224, 224)) == (8, 56, 56)
    assert geometry.apply((15, 223, 225)) == tuple(conv(torch.zeros(1, 3, 15, 223, 225)).shape[2:])


def test_tokens_to_grid_exact_order() -> None:
    # Patch embedding 2x2 stride 2 on a (T=4, H=4, W=6) input → grid (2, 2, 3), then a pooling
    # stage halving H and W → (2, 1, 2). Tokens carry their own position index.
    reshape = TokensToGrid(
        patch=ConvGeometry((2, 2, 2), (2, 2, 2), (0, 0, 0)),
        stages=(ConvGeometry((3, 3, 3), (1, 2, 2), (1, 1, 1)),),
        description="toy layer",
    )
    input_shape = torch.Size((2, 3, 4, 4, 6))
    assert reshape.grids(input_shape) == [(2, 2, 3), (2, 1, 2)]
    n, c, positions = 2, 5, 12
    tokens = torch.zeros(n, 1 + positions, c)
    tokens[:, 0] = -1.0  # class token, must be dropped
    for p in range(positions):
        tokens[:, 1 + p] = torch.arange(c) * 100 + p
    out = reshape(tokens, input_shape)
    assert out.shape == (n, c, 2, 2, 3)
    for t in range(2):
        for h in range(2):
            for w in range(3):
                p = (t * 2 + h) * 3 + w  # row-major (t, h, w) order, as conv.flatten(2) gives
                assert torch.equal(out[1, :, t, h, w], torch.arange(c) * 100.0 + p)
    # The second stage's grid is matched by token count.
    assert reshape(torch.zeros(n, 1 + 4, c), input_shape).shape == (n, c, 2, 1, 2)


def test_tokens_to_grid_mismatch_is_a_clear_error() -> None:
    reshape = TokensToGrid(
        patch=ConvGeometry((16, 16), (16, 16), (0, 0)),
        description="vit_b_16 layer encoder.ln",
        expected_input=(224, 224),
    )
    assert reshape(torch.zeros(1, 197, 8), torch.Size((1, 3, 224, 224))).shape == (1, 8, 14, 14)
    with pytest.raises(ConfigError, match=r"vit_b_16 layer encoder.ln: 196 tokens.*224x224"):
        reshape(torch.zeros(1, 197, 8), torch.Size((1, 3, 112, 112)))
    with pytest.raises(ConfigError, match=r"expected tokens"):
        reshape(torch.zeros(1, 8, 14, 14), torch.Size((1, 3, 224, 224)))


def test_channels_last_to_first() -> None:
    x = torch.arange(2 * 3 * 4 * 5 * 6, dtype=torch.float32).view(2, 3, 4, 5, 6)  # (N,T,H,W,C)
    out = ChannelsLastToFirst("swin3d")(x, torch.Size((2, 3, 6, 128, 160)))
    assert out.shape == (2, 6, 3, 4, 5)
    assert torch.equal(out[1, 5, 2, 3, 4], x[1, 2, 3, 4, 5])
    with pytest.raises(ConfigError, match="channels-last"):
        ChannelsLastToFirst("swin3d")(x[0], torch.Size((2, 3, 6, 128, 160)))


def _indexed(batch: int, positions: int, channels: int, prefix: int = 0) -> torch.Tensor:
    """Tokens whose every channel holds its own position index (prefix tokens: -1)."""
    index = torch.arange(positions, dtype=torch.float32)
    tokens = index[None, :, None].expand(batch, positions, channels)
    lead = torch.full((batch, prefix, channels), -1.0)
    return torch.cat([lead, tokens], dim=1)


def test_patch_tokens_thw_order_and_prefix() -> None:
    from videocam.models.layers import PatchTokens

    reshape = PatchTokens((2, 8, 8), prefix=1, order="thw", description="toy")
    shape = torch.Size((2, 3, 6, 24, 40))  # grid 3 x 3 x 5
    grid = reshape(_indexed(2, 45, 4, prefix=1), shape)
    assert grid.shape == (2, 4, 3, 3, 5)
    assert grid[1, 0, 2, 1, 3] == (2 * 3 + 1) * 5 + 3
    # Before the class token is added (the patch embedding): the grid alone.
    assert torch.equal(reshape(_indexed(2, 45, 4), shape), grid)


def test_patch_tokens_hwt_order() -> None:
    from videocam.models.layers import PatchTokens

    reshape = PatchTokens((1, 8, 8), prefix=1, order="hwt")
    shape = torch.Size((1, 3, 5, 24, 24))  # grid 5 x 3 x 3, tokens space-major
    grid = reshape(_indexed(1, 45, 2, prefix=1), shape)
    t, h, w = 4, 2, 1
    assert grid[0, 0, t, h, w] == (h * 3 + w) * 5 + t


def test_patch_tokens_frames_and_patches_layouts() -> None:
    from videocam.models.layers import PatchTokens

    shape = torch.Size((2, 3, 5, 24, 24))  # grid 5 x 3 x 3
    rows = torch.arange(2 * 5 * 10, dtype=torch.float32).reshape(2 * 5, 10, 1)  # (N·T, 1+9, 1)
    frames = PatchTokens((1, 8, 8), prefix=1, order="hwt", layout="frames")(rows, shape)
    assert frames.shape == (2, 1, 5, 3, 3)
    n, t, h, w = 1, 3, 2, 0
    assert frames[n, 0, t, h, w] == rows[n * 5 + t, 1 + h * 3 + w, 0]
    per_patch = torch.arange(2 * 9 * 5, dtype=torch.float32).reshape(2 * 9, 5, 1)  # (N·h·w, T, 1)
    patches = PatchTokens((1, 8, 8), layout="patches", order="hwt")(per_patch, shape)
    assert patches[n, 0, t, h, w] == per_patch[(n * 3 + h) * 3 + w, t, 0]
    # Several classes' gradients flattened into the batch: B comes from the tensor.
    assert PatchTokens((1, 8, 8), 1, "hwt", "frames")(rows.repeat(3, 1, 1), shape).shape[0] == 6


def test_patch_tokens_errors_name_the_grid() -> None:
    from videocam.models.layers import PatchTokens

    reshape = PatchTokens(
        (16, 16), prefix=1, order="hw", description="vit layer x", expected_input=(224, 224)
    )
    with pytest.raises(ConfigError, match=r"vit layer x.*14x14 token grid.*exactly 224x224"):
        reshape(torch.zeros(1, 1 + 100, 8), torch.Size((1, 3, 224, 224)))
    with pytest.raises(ValueError, match="order"):
        PatchTokens((2, 8, 8), order="hw")
    # A channels-last patch embedding (timm, dynamic image size) keeps its grid.
    nhwc = torch.randn(1, 14, 14, 8)
    assert torch.equal(reshape(nhwc, torch.Size((1, 3, 224, 224))), nhwc.permute(0, 3, 1, 2))
