"""torchvision image classifiers run per frame: default layers of every family."""

from __future__ import annotations

import warnings

import pytest
import torch
import torchvision.models as tvm
from torch import nn

from videocam.models import ReshapeFn, load_model, resolve_layer
from videocam.models.torchvision_zoo import (
    derive_default_layer,
    frame_default_layer,
    torchvision_reshape,
)

REPRESENTATIVES = [
    # one model per family: input side, expected default-layer activations (1, C, h, w)
    ("resnet18", 224, (1, 512, 7, 7)),
    ("mobilenet_v3_small", 224, (1, 576, 7, 7)),
    ("efficientnet_b0", 224, (1, 1280, 7, 7)),
    ("squeezenet1_1", 224, (1, 512, 13, 13)),
    ("shufflenet_v2_x0_5", 224, (1, 1024, 7, 7)),
    ("mnasnet0_5", 224, (1, 1280, 7, 7)),
    ("regnet_x_400mf", 224, (1, 400, 7, 7)),
    ("googlenet", 224, (1, 1024, 7, 7)),
    ("convnext_tiny", 224, (1, 768, 7, 7)),
    ("swin_t", 224, (1, 768, 7, 7)),
    ("maxvit_t", 224, (1, 512, 7, 7)),
    ("vit_b_32", 224, (1, 768, 7, 7)),
    pytest.param("densenet121", 224, (1, 1024, 7, 7), marks=pytest.mark.slow),
    pytest.param("inception_v3", 299, (1, 2048, 8, 8), marks=pytest.mark.slow),
    pytest.param("alexnet", 224, (1, 256, 13, 13), marks=pytest.mark.slow),
    pytest.param("vgg11", 224, (1, 512, 14, 14), marks=pytest.mark.slow),
]


def _activations(
    module: nn.Module, layer: str, reshape: ReshapeFn | None, x: torch.Tensor
) -> torch.Tensor:
    captured: list[torch.Tensor] = []

    def hook(mod: nn.Module, inputs: object, output: object) -> None:
        captured.append(output[0] if isinstance(output, tuple) else output)  # type: ignore[arg-type]

    handle = resolve_layer(module, layer).register_forward_hook(hook)
    try:
        with torch.no_grad():
            module(x)
    finally:
        handle.remove()
    raw = captured[-1]
    return reshape(raw, x.shape) if reshape is not None else raw


@pytest.mark.parametrize(("name", "side", "expected"), REPRESENTATIVES)
def test_family_representative(name: str, side: int, expected: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    loaded = load_model(name, weights="none")
    assert loaded.kind == "frame"
    assert loaded.clip_len is None
    assert loaded.preprocess.size == (side, side)
    assert loaded.categories is not None
    assert len(loaded.categories) == 1000
    activations = _activations(
        loaded.module, loaded.layer, loaded.reshape, torch.randn(1, 3, side, side)
    )
    assert tuple(activations.shape) == expected


def _meta_build(name: str) -> nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # googlenet/inception init notice
        with torch.device("meta"):
            return tvm.get_model(name).eval()


IMAGE_MODELS = sorted(tvm.list_models(module=tvm))


@pytest.mark.slow
def test_every_image_model_default_layer_is_the_last_spatial_map() -> None:
    """Built on the meta device (shapes only, no memory): the pinned layer exists, gives a
    (1, C, h, w) map once reshaped, and agrees with the structural rule where one applies."""
    checked = 0
    for name in IMAGE_MODELS:
        layer = frame_default_layer(name)
        assert layer is not None, name
        if name.startswith("regnet"):
            continue  # RegNet computes its widths with tensors: no meta build; see above
        module = _meta_build(name)
        resolve_layer(module, layer, model_name=name)
        derived = derive_default_layer(module)
        if derived is not None:
            assert layer == derived or (layer, derived) == ("features", "features.norm5"), name
        weights = tvm.get_model_weights(name).DEFAULT
        side = int(getattr(module, "image_size", weights.transforms().crop_size[0]))
        x = torch.zeros(1, 3, side, side, device="meta")
        activations = _activations(module, layer, torchvision_reshape(name, module, layer), x)
        n, c, h, w = activations.shape
        assert (n, h) == (1, w), (name, tuple(activations.shape))
        assert c >= 256, (name, tuple(activations.shape))
        assert side / 40 <= h <= side / 12, (name, tuple(activations.shape))
        checked += 1
    assert checked >= 65
