"""Token geometry of the hf: and timm: transformers, proved on the models themselves.

Perturb one tubelet (video) or patch (image) of the input; at the layer right after the patch
embedding only the token the reshape puts at that (t, h, w) may change, every other position and
every class / distillation / register token staying bit-identical. Grids are chosen so that no
two axes have the same length where the family allows it (a swapped t/h/w order cannot pass),
and several positions are probed, corners and interior.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from videocam.models import LoadedModel, ReshapeFn, load_model, resolve_layer
from videocam.models.hf import embedding_layer

pytest.importorskip("transformers")
pytest.importorskip("timm")

from support.hf_models import save_hf, save_timm

# family -> (config overrides giving an asymmetric grid, input (T, H, W) or (H, W), patch)
HF_CASES = {
    # tubelets 2x8x8 on 6x24x40 -> grid 3x3x5
    "videomae": ({"num_frames": 6, "image_size": [24, 40]}, (6, 24, 40), (2, 8, 8)),
    # tubelets 2x8x8 on 4x24x40 -> grid 2x3x5
    "vivit": ({"num_frames": 4, "image_size": [24, 40]}, (4, 24, 40), (2, 8, 8)),
    # one frame x 8x8 on 5x24x24 -> grid 5x3x3 (TimeSformer's blocks need a square image)
    "timesformer": ({"num_frames": 5, "image_size": 24}, (5, 24, 24), (1, 8, 8)),
    # 8x8 patches on 24x40 -> grid 3x5
    "vit": ({"image_size": [24, 40]}, (24, 40), (8, 8)),
    "deit": ({"image_size": [24, 40]}, (24, 40), (8, 8)),
    "dinov2_with_registers": ({"image_size": 24}, (24, 24), (8, 8)),
    "beit": ({"image_size": 24}, (24, 24), (8, 8)),
}

# leading tokens that are not positions: class, distillation, register tokens
PREFIX = {
    "videomae": 0,
    "vivit": 1,
    "timesformer": 1,
    "vit": 1,
    "deit": 2,
    "dinov2_with_registers": 4,
    "beit": 1,
}


def _capture(loaded: LoadedModel, layer: str, x: torch.Tensor) -> torch.Tensor:
    captured: list[torch.Tensor] = []

    def hook(module: torch.nn.Module, inputs: object, output: object) -> None:
        first = output[0] if isinstance(output, tuple) else output
        captured.append(first.detach().clone())  # type: ignore[union-attr]

    handle = resolve_layer(loaded.module, layer).register_forward_hook(hook)
    try:
        with torch.no_grad():
            loaded.module(x)
    finally:
        handle.remove()
    (output,) = captured
    return output


def _reshape_for(loaded: LoadedModel, layer: str) -> ReshapeFn:
    name = loaded.name
    relayered = load_model(name, weights=loaded.weights, layer=layer)
    assert relayered.reshape is not None
    return relayered.reshape


def _positions(grid: tuple[int, ...]) -> list[tuple[int, ...]]:
    corners = [tuple(0 for _ in grid), tuple(g - 1 for g in grid)]
    middle = tuple(g // 2 for g in grid)
    mixed = tuple((i % 2) * (g - 1) for i, g in enumerate(grid))
    other = tuple(min(1, g - 1) if i == len(grid) - 1 else 0 for i, g in enumerate(grid))
    return list(dict.fromkeys([*corners, middle, mixed, other]))


def _perturbed(x: torch.Tensor, position: tuple[int, ...], patch: tuple[int, ...]) -> torch.Tensor:
    y = x.clone()
    index = [slice(None), slice(None)]
    for p, size in zip(position, patch, strict=True):
        index.append(slice(p * size, (p + 1) * size))
    y[tuple(index)] += 3.0
    return y


def _check_only(
    before: torch.Tensor,
    after: torch.Tensor,
    reshape: ReshapeFn,
    input_shape: torch.Size,
    position: tuple[int, ...],
    prefix: int,
) -> None:
    grid_before = reshape(before, input_shape)
    grid_after = reshape(after, input_shape)
    changed = (grid_after - grid_before).abs().amax(dim=1)[0]  # (t, h, w) or (h, w)
    expected = torch.zeros_like(changed, dtype=torch.bool)
    expected[position] = True
    assert torch.equal(changed > 0, expected), (
        f"perturbing {position} changed {torch.nonzero(changed > 0).tolist()}"
    )
    if prefix and before.shape[1] > changed.numel():  # the prefix tokens are in this output
        assert torch.equal(before[:, :prefix], after[:, :prefix])


@pytest.mark.parametrize("family", sorted(HF_CASES))
def test_hf_one_tubelet_moves_one_token(family: str, tmp_path: Path) -> None:
    overrides, size, patch = HF_CASES[family]
    directory = save_hf(family, tmp_path / family, **overrides)
    loaded = load_model(f"hf:{directory}")
    model = loaded.module.hf_model  # type: ignore[attr-defined]
    layer = embedding_layer(model)
    reshape = _reshape_for(loaded, layer)
    torch.manual_seed(1)
    x = torch.randn(1, 3, *size)
    grid = tuple(s // p for s, p in zip(size, patch, strict=True))
    before = _capture(loaded, layer, x)
    assert before.shape[1] == PREFIX[family] + torch.Size(grid).numel()
    assert tuple(reshape(before, x.shape).shape[2:]) == grid
    for position in _positions(grid):
        after = _capture(loaded, layer, _perturbed(x, position, patch))
        _check_only(before, after, reshape, x.shape, position, PREFIX[family])


def test_timesformer_frame_and_patch_layouts(tmp_path: Path) -> None:
    """Inside a divided space-time block: the temporal LayerNorm sees one row per patch
    (N·h·w, T, C) and has not mixed anything yet; the spatial LayerNorm sees one row per frame
    (N·T, 1 + h·w, C) after the temporal attention has mixed each patch over time, so a
    perturbation at (t, h, w) reaches every t at that (h, w) and nothing else."""
    overrides, size, patch = HF_CASES["timesformer"]
    directory = save_hf("timesformer", tmp_path / "tsf", **overrides)
    loaded = load_model(f"hf:{directory}")
    grid = (5, 3, 3)
    torch.manual_seed(2)
    x = torch.randn(2, 3, *size)
    temporal = "timesformer.encoder.layer.0.temporal_layernorm"
    spatial = "timesformer.encoder.layer.0.layernorm_before"
    reshape_t, reshape_s = _reshape_for(loaded, temporal), _reshape_for(loaded, spatial)
    before_t, before_s = _capture(loaded, temporal, x), _capture(loaded, spatial, x)
    assert before_t.shape[:2] == (2 * 3 * 3, 5)
    assert before_s.shape[:2] == (2 * 5, 1 + 3 * 3)
    for position in _positions(grid):
        y = _perturbed(x, position, patch)
        _check_only(before_t, _capture(loaded, temporal, y), reshape_t, x.shape, position, 0)
        changed = (
            (reshape_s(_capture(loaded, spatial, y), x.shape) - reshape_s(before_s, x.shape))
            .abs()
            .amax(dim=1)[0]
        )
        _, h, w = position
        expected = torch.zeros(grid, dtype=torch.bool)
        expected[:, h, w] = True
        assert torch.equal(changed > 0, expected)


TIMM_CASES = {
    # name: (create_model kwargs, input (H, W), patch, prefix)
    "test_vit": ({}, (160, 96), (16, 16), 1),  # dynamic_img_size: any size, grid 10x6
    "deit_tiny_distilled_patch16_224": ({"img_size": (48, 80)}, (48, 80), (16, 16), 2),
    "vit_small_patch16_224": (
        {"img_size": (48, 80), "reg_tokens": 4, "depth": 2, "embed_dim": 64, "num_heads": 2},
        (48, 80),
        (16, 16),
        5,
    ),
}


@pytest.mark.parametrize("name", sorted(TIMM_CASES))
def test_timm_one_patch_moves_one_token(name: str, tmp_path: Path) -> None:
    kwargs, size, patch, prefix = TIMM_CASES[name]
    import timm

    torch.manual_seed(0)
    module = timm.create_model(name, pretrained=False, **kwargs).eval()
    # The architecture arguments a file cannot carry (depth, register tokens) are built in;
    # the image size is read back from the file's position table.
    loaded = load_model(f"timm:{name}", weights="none")
    if kwargs:
        loaded = _loaded_around(loaded, module)
    layer = "norm_pre"  # after the patch embedding, the prefix tokens and the positions
    reshape = _reshape_for_timm(loaded, layer)
    x = torch.randn(1, 3, *size)
    grid = tuple(s // p for s, p in zip(size, patch, strict=True))
    before = _capture(loaded, layer, x)
    assert before.shape[1] == prefix + grid[0] * grid[1]
    for position in _positions(grid):
        after = _capture(loaded, layer, _perturbed(x, position, patch))
        _check_only(before, after, reshape, x.shape, position, prefix)


def _loaded_around(loaded: LoadedModel, module: torch.nn.Module) -> LoadedModel:
    import dataclasses

    return dataclasses.replace(loaded, module=module)


def _reshape_for_timm(loaded: LoadedModel, layer: str) -> ReshapeFn:
    from videocam.models.timm_zoo import timm_reshape

    reshape = timm_reshape(loaded.module, layer, name=loaded.name)
    assert reshape is not None
    return reshape


def test_timm_file_carries_the_image_size(tmp_path: Path) -> None:
    """A ViT fine-tuned at another size: the file's position table gives the size back."""
    weights = save_timm("deit_tiny_distilled_patch16_224", tmp_path / "d.pth", img_size=48)
    loaded = load_model("timm:deit_tiny_distilled_patch16_224", weights=weights)
    assert loaded.preprocess.size == (48, 48)
    x = torch.randn(1, 3, 48, 48)
    tokens = _capture(loaded, loaded.layer, x)
    assert loaded.reshape is not None
    assert loaded.reshape(tokens, x.shape).shape == (1, 192, 3, 3)
