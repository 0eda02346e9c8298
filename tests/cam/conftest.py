"""Tiny models for the CAM tests: fixed weights whose CAMs are known exactly, and seeded CNNs.

The builders are handed to tests as fixtures (``fixed_model``, ``fixed_input``, ``small_cnn``
return the functions), so no test module imports this file.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import pytest
import torch
from torch import nn

# Class weights of the fixed heads: rows = classes, columns = the two channels of the target
# layer. Mixed signs so that the ReLU in LayerCAM and Grad-CAM++ matters.
HEAD_WEIGHT = torch.tensor([[1.0, -0.5], [-2.0, 3.0], [0.5, 0.25]])
HEAD_BIAS = torch.tensor([0.1, -0.2, 0.3])


class Square(nn.Module):
    """A non-linear head step: makes the gradient at the target layer vary by position."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * x


def fixed_model(n_dims: int, *, square: bool = False, channel_gain=(1.0, -1.0)) -> nn.Module:
    """``conv 1x1 (target "0") -> [square] -> global average pool -> flatten -> linear``.

    The target layer's activations are ``A_c = gain_c * x + bias_c`` with bias ``(0, 2)``, on a
    one-channel input of ``n_dims`` positional axes, so every CAM is computable by hand.
    """
    conv_cls = {2: nn.Conv2d, 3: nn.Conv3d}[n_dims]
    pool_cls = {2: nn.AdaptiveAvgPool2d, 3: nn.AdaptiveAvgPool3d}[n_dims]
    conv = conv_cls(1, 2, kernel_size=1)
    fc = nn.Linear(2, 3)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor(channel_gain).reshape(2, 1, *([1] * n_dims)))
        conv.bias.copy_(torch.tensor([0.0, 2.0]))
        fc.weight.copy_(HEAD_WEIGHT)
        fc.bias.copy_(HEAD_BIAS)
    layers: list[nn.Module] = [conv]
    if square:
        layers.append(Square())
    layers += [pool_cls(1), nn.Flatten(), fc]
    return nn.Sequential(*layers)


def fixed_input(n_dims: int, n_samples: int = 2) -> torch.Tensor:
    """Small integer-valued input (N, 1, *S): S = (3, 4) or (2, 3, 4)."""
    shape = (3, 4) if n_dims == 2 else (2, 3, 4)
    gen = torch.Generator().manual_seed(7)
    return torch.randint(-3, 4, (n_samples, 1, *shape), generator=gen).float()


def small_cnn(n_dims: int = 2, seed: int = 0) -> nn.Module:
    """A seeded random CNN (N, 3, *S) -> (N, 5) in eval mode; target layer ``"features.3"``."""
    torch.manual_seed(seed)
    conv = {2: nn.Conv2d, 3: nn.Conv3d}[n_dims]
    norm = {2: nn.BatchNorm2d, 3: nn.BatchNorm3d}[n_dims]
    pool = {2: nn.AdaptiveAvgPool2d, 3: nn.AdaptiveAvgPool3d}[n_dims]
    features = nn.Sequential(
        conv(3, 8, 3, padding=1), norm(8), nn.ReLU(), conv(8, 6, 3, stride=2, padding=1), nn.ReLU()
    )
    model = nn.Sequential(
        OrderedDict(features=features, pool=pool(1), flatten=nn.Flatten(), fc=nn.Linear(6, 5))
    )
    return model.eval()


@pytest.fixture
def head_weight() -> torch.Tensor:
    """The fixed models' class weights (3 classes x 2 channels)."""
    return HEAD_WEIGHT.clone()


@pytest.fixture(name="fixed_model")
def fixed_model_fixture() -> Callable[..., nn.Module]:
    return fixed_model


@pytest.fixture(name="fixed_input")
def fixed_input_fixture() -> Callable[..., torch.Tensor]:
    return fixed_input


@pytest.fixture(name="small_cnn")
def small_cnn_fixture() -> Callable[..., nn.Module]:
    return small_cnn
