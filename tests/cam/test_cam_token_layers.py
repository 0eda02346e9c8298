"""The CAM engine's guarantees on hf: and timm: models at their (token) default layers.

Every method of the contract agrees with its formula applied to activations and gradients taken
by hand (a full backward from the input, independent of the engine's leaf trick); Grad-CAM is
also written out. No parameter ``.grad`` is written, hooks, training flags and ``requires_grad``
are as before, nothing before the target layer records a graph (head-only backward), and the
several-classes entry the pipeline uses equals one call per class (TimeSformer's per-frame
layout included, where the batch of gradients is flattened with the frames).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from videocam.cam import METHODS, cam_and_output_classes, compute_cam, get_method
from videocam.models import LoadedModel, load_model, resolve_layer

pytest.importorskip("transformers")
pytest.importorskip("timm")

from support.cam_reference import perturbation_by_definition
from support.hf_models import save_hf, save_timm

HF = ("videomae", "timesformer", "vivit", "vit", "deit", "dinov2_with_registers", "beit")
TIMM = ("test_vit", "test_resnet")


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, LoadedModel]:
    root = tmp_path_factory.mktemp("cam_models")
    loaded = {f: load_model(f"hf:{save_hf(f, root / f, seed=3)}") for f in HF}
    for name in TIMM:
        loaded[name] = load_model(
            f"timm:{name}", weights=save_timm(name, root / f"{name}.pth", seed=3)
        )
    return loaded


def _input(loaded: LoadedModel, batch: int = 2, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    h, w = loaded.preprocess.size
    shape = (batch, 3, loaded.clip_len, h, w) if loaded.kind == "video" else (batch, 3, h, w)
    return torch.randn(shape, generator=generator)


def _by_hand(
    loaded: LoadedModel, x: torch.Tensor, targets: list[int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """(A, g) at the layer, reshaped: the full graph from an input that requires grad."""
    captured: list[torch.Tensor] = []

    def hook(module: nn.Module, inputs: Any, output: Any) -> None:
        first = output[0] if isinstance(output, tuple) else output
        first.retain_grad()
        captured.append(first)

    handle = resolve_layer(loaded.module, loaded.layer).register_forward_hook(hook)
    try:
        with torch.enable_grad():
            leaf = x.clone().requires_grad_(True)
            logits = loaded.module(leaf)
            logits[torch.arange(len(targets)), torch.tensor(targets)].sum().backward()
    finally:
        handle.remove()
    (output,) = captured
    assert output.grad is not None
    reshape = loaded.reshape or (lambda t, shape: t)
    return reshape(output.detach(), x.shape), reshape(output.grad, x.shape)


def _perturbed_by_definition(
    loaded: LoadedModel, x: torch.Tensor, targets: list[int], method: str, grid: torch.Size
) -> torch.Tensor:
    """Score-CAM / Ablation-CAM one channel and one forward at a time. Ablating channel c of
    the token grid zeroes feature c of every patch token of the raw (rows, tokens, C) output —
    the leading class / distillation / register tokens are not on the grid and stay — or
    channel c of a (rows, C, H, W) feature map."""
    positions = int(torch.tensor(grid[2:]).prod())

    def ablate(raw: torch.Tensor, c: int) -> torch.Tensor:
        if raw.ndim == 4:  # a CNN's feature map
            raw[:, c] = 0
        else:  # tokens: positions / rows patch tokens per row, after the leading ones
            leading = raw.shape[1] - positions // raw.shape[0]
            raw[:, leading:, c] = 0
        return raw

    reshape = loaded.reshape or (lambda t, shape: t)
    module = resolve_layer(loaded.module, loaded.layer)
    return perturbation_by_definition(method, loaded.module, x, module, targets, reshape, ablate)


ALL = [*HF, *TIMM]


@pytest.mark.parametrize("name", ALL)
def test_every_method_agrees_with_its_formula(name: str, models: dict[str, LoadedModel]) -> None:
    loaded = models[name]
    x = _input(loaded)
    targets = [0, 2]
    activations, gradients = _by_hand(loaded, x, targets)
    for method in METHODS:
        cams = compute_cam(loaded.module, x, loaded.layer, targets, method, reshape=loaded.reshape)
        assert cams.shape == (2, *activations.shape[2:])
        spec = get_method(method)
        atol = 1e-6
        if spec.perturbation:
            expected = _perturbed_by_definition(loaded, x, targets, method, activations.shape)
            # Ablation-CAM divides float32 logit differences by the logit: ~1e-5 absolute.
            atol = 2e-5
        else:
            expected = spec.function(activations, gradients if spec.needs_gradients else None)
        torch.testing.assert_close(cams, expected, rtol=1e-4, atol=atol, msg=method)
    # Grad-CAM written out: w_c = mean over positions of g_c; map = ReLU(sum_c w_c A_c).
    positions = tuple(range(2, activations.ndim))
    weights = gradients.mean(dim=positions, keepdim=True)
    expected = torch.relu((weights * activations).sum(dim=1))
    cams = compute_cam(loaded.module, x, loaded.layer, targets, "gradcam", reshape=loaded.reshape)
    torch.testing.assert_close(cams, expected, rtol=1e-4, atol=1e-6)
    assert cams.amax() > 0
    assert cams.flatten(1).std(dim=1).min() > 0


def _state(model: nn.Module) -> tuple[list[bool], list[bool], list[tuple[int, int, int, int]]]:
    return (
        [m.training for m in model.modules()],
        [p.requires_grad for p in model.parameters()],
        [
            (
                len(m._forward_hooks),
                len(m._forward_pre_hooks),
                len(m._backward_hooks),
                len(getattr(m, "_backward_pre_hooks", {})),
            )
            for m in model.modules()
        ],
    )


@pytest.mark.parametrize("name", ["videomae", "timesformer", "vit", "test_vit"])
def test_side_effects_none(name: str, models: dict[str, LoadedModel]) -> None:
    loaded = models[name]
    model = loaded.module
    modules = list(model.modules())
    parameters = list(model.parameters())
    first_layer = "norm_pre" if name.startswith("test_") else f"{name}.embeddings"
    recorded: list[bool] = []
    probe = resolve_layer(model, first_layer).register_forward_hook(
        lambda m, i, o: recorded.append((o[0] if isinstance(o, tuple) else o).requires_grad)
    )
    # An unusual starting state, to see that it is restored rather than reset.
    modules[1].train()
    modules[-1].train()
    parameters[0].requires_grad_(True)
    parameters[-1].requires_grad_(True)
    try:
        before = _state(model)
        x = _input(loaded)
        for method in METHODS:
            compute_cam(model, x, loaded.layer, None, method, reshape=loaded.reshape)
        cam_and_output_classes(model, x, loaded.layer, [0, 1], reshape=loaded.reshape)
        after = _state(model)
    finally:
        probe.remove()
        for p in parameters:
            p.requires_grad_(False)
        model.eval()
    assert after == before
    assert all(p.grad is None for p in parameters)
    # Head-only backward: the layers before the target layer recorded no graph at all.
    assert recorded
    assert not any(recorded)


@pytest.mark.parametrize("name", ["videomae", "timesformer", "vivit", "deit", "test_vit"])
def test_several_classes_equal_one_call_each(name: str, models: dict[str, LoadedModel]) -> None:
    loaded = models[name]
    x = _input(loaded, batch=3, seed=5)
    for method in ("gradcam", "hirescam", "eigencam"):
        several = cam_and_output_classes(
            loaded.module, x, loaded.layer, [2, 0, 1], method, reshape=loaded.reshape
        )
        for j, cls in enumerate([2, 0, 1]):
            single = compute_cam(
                loaded.module, x, loaded.layer, cls, method, reshape=loaded.reshape
            )
            torch.testing.assert_close(several.cams[:, j], single, rtol=1e-4, atol=1e-6)


def test_hf_models_keep_no_hooks_of_their_own(tmp_path: Path) -> None:
    """transformers adds output-recording hooks only when hidden states are asked for; a CAM
    call leaves a model with exactly the hooks it had."""
    loaded = load_model(f"hf:{save_hf('vivit', tmp_path / 'v')}")
    count = sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in loaded.module.modules())
    compute_cam(loaded.module, _input(loaded), loaded.layer, 0, reshape=loaded.reshape)
    after = sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in loaded.module.modules())
    assert after == count == 0
