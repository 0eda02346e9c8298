"""Score-CAM and Ablation-CAM in the engine: batches sized by memory, one set of perturbed
forwards per window for every class, the head replay and its fallback, targets."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from videocam.cam import cam_and_output, cam_and_output_classes, compute_cam
from videocam.cam import perturbation as perturbation_module

PERTURBATION_METHODS = ["scorecam", "ablationcam"]


class _BatchSizes:
    """Records the batch size of every call of ``module`` (a forward pre-hook)."""

    def __init__(self, module: nn.Module) -> None:
        self.sizes: list[int] = []
        self.handle = module.register_forward_pre_hook(
            lambda m, args: self.sizes.append(int(args[0].shape[0]))
        )

    def close(self) -> list[int]:
        self.handle.remove()
        return self.sizes


@pytest.mark.parametrize("n_dims", [2, 3])
@pytest.mark.parametrize("method", PERTURBATION_METHODS)
def test_batches_sized_by_memory_give_the_same_maps(
    small_cnn, monkeypatch, n_dims: int, method: str
) -> None:
    model = small_cnn(n_dims)
    x = torch.randn(2, 3, *((4,) if n_dims == 3 else ()), 12, 12)
    head = _BatchSizes(model.fc)
    together = compute_cam(model, x, "features.4", [1, 3], method)
    sizes_together = head.close()
    # 6 channels: every channel's copy fits one forward per sample (+1 untouched forward;
    # Ablation-CAM also replays the untouched copy once, to check the replay).
    extra = 1 if method == "ablationcam" else 0
    assert sizes_together == [2, 6 + extra, 6]

    monkeypatch.setattr(perturbation_module, "PERTURBATION_BATCH_BYTES", 1)  # one copy a forward
    head = _BatchSizes(model.fc)
    alone = compute_cam(model, x, "features.4", [1, 3], method)
    sizes_alone = head.close()
    assert sizes_alone == [2, 1 + extra] + [1] * 11
    torch.testing.assert_close(alone, together, rtol=1e-5, atol=1e-6)
    assert together.amax() > 0


@pytest.mark.parametrize("method", PERTURBATION_METHODS)
def test_every_class_of_a_window_comes_from_one_set_of_perturbed_forwards(
    small_cnn, method: str
) -> None:
    model = small_cnn(3)
    x = torch.randn(2, 3, 4, 10, 10)
    calls = _BatchSizes(model.features[0])
    one = cam_and_output_classes(model, x, "features.4", [2], method)
    n_one = len(calls.sizes)
    three = cam_and_output_classes(
        model, x, "features.4", torch.tensor([[0, 2, 4], [1, 2, 3]]), method
    )
    assert len(calls.close()) == 2 * n_one  # the same forwards for three classes as for one
    assert three.cams.shape == (2, 3, 2, 5, 5)
    torch.testing.assert_close(three.cams[:, 1:2], one.cams)
    for m, classes in enumerate(([0, 1], [2, 2], [4, 3])):
        expected = compute_cam(model, x, "features.4", classes, method)
        torch.testing.assert_close(three.cams[:, m], expected, rtol=1e-5, atol=1e-6)
    with torch.no_grad():
        torch.testing.assert_close(three.output, model(x))


@pytest.mark.parametrize("method", PERTURBATION_METHODS)
def test_target_forms_agree(small_cnn, method: str) -> None:
    model = small_cnn(2)
    x = torch.randn(3, 3, 12, 12)
    reference = compute_cam(model, x, "features.4", [2, 2, 2], method)
    assert reference.amax() > 0
    for targets in (
        2,
        torch.tensor([2, 2, 2]),
        lambda out: out[:, 2],  # float scores, taken on the perturbed outputs
        lambda out: torch.full((out.shape[0],), 2),  # class indices, from the untouched output
    ):
        torch.testing.assert_close(compute_cam(model, x, "features.4", targets, method), reference)
    with torch.no_grad():
        top = model(x).argmax(dim=1).tolist()
    torch.testing.assert_close(
        compute_cam(model, x, "features.4", None, method),
        compute_cam(model, x, "features.4", top, method),
    )


class _SkipConcat(nn.Module):
    """A head that concatenates a tensor from before the target layer: it cannot take more
    rows than the input has, so Ablation-CAM must run the input repeated."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.layer = nn.Sequential(nn.Conv2d(4, 5, 3, padding=1), nn.ReLU())
        self.fc = nn.Linear(5 + 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stem = torch.relu(self.stem(x))
        features = self.layer(stem).mean(dim=(2, 3))
        return self.fc(torch.cat([features, stem.mean(dim=(2, 3))], dim=1))


def _ablation_by_definition(model: nn.Module, x: torch.Tensor, targets: list[int]) -> torch.Tensor:
    """Ablation-CAM one channel and one single-sample forward at a time."""
    with torch.no_grad():
        logits = model(x)
        a = model.layer(torch.relu(model.stem(x)))
    maps = []
    for n, k in enumerate(targets):
        weights = []
        for c in range(a.shape[1]):
            ablated = a[n : n + 1].clone()
            ablated[:, c] = 0
            handle = model.layer.register_forward_hook(lambda m, i, o, z=ablated: z)
            with torch.no_grad():
                y_c = float(model(x[n : n + 1])[0, k])
            handle.remove()
            weights.append((float(logits[n, k]) - y_c) / float(logits[n, k]))
        maps.append(torch.relu(torch.einsum("c,chw->hw", torch.tensor(weights), a[n])))
    return torch.stack(maps)


def test_ablation_falls_back_to_repeated_inputs_where_the_head_cannot_be_replayed() -> None:
    model = _SkipConcat().eval()
    x = torch.randn(2, 3, 8, 8)
    stem = _BatchSizes(model.stem)
    cams = compute_cam(model, x, "layer", [0, 2], "ablationcam")
    sizes = stem.close()
    # the untouched forward, the failed replay (one row), then the input repeated per channel
    assert sizes == [2, 1, 5, 5]
    torch.testing.assert_close(
        cams, _ablation_by_definition(model, x, [0, 2]), rtol=1e-5, atol=1e-6
    )
    assert cams.amax() > 0


def test_ablation_replays_the_head_alone_where_it_can(small_cnn) -> None:
    model = small_cnn(2)
    x = torch.randn(2, 3, 8, 8)
    first = _BatchSizes(model.features[0])
    head = _BatchSizes(model.fc)
    compute_cam(model, x, "features.4", [0, 1], "ablationcam")
    # the layers before the target run on one sample per forward; the head on every copy
    assert first.close() == [2, 1, 1]
    assert head.close() == [2, 7, 6]


@pytest.mark.parametrize("method", PERTURBATION_METHODS)
def test_autocast_bfloat16_close_to_float32(small_cnn, method: str) -> None:
    model = small_cnn(3)
    x = torch.randn(2, 3, 4, 16, 16)
    reference = compute_cam(model, x, "features.4", [0, 1], method)
    result = cam_and_output(model, x, "features.4", [0, 1], method, autocast=True)
    assert result.cams.dtype == torch.float32
    assert result.output.dtype == torch.float32
    assert torch.corrcoef(torch.stack([result.cams.flatten(), reference.flatten()]))[0, 1] > 0.98


def test_a_replayed_head_takes_larger_batches_than_whole_forwards(small_cnn, monkeypatch) -> None:
    """Ablation-CAM sizes its first batch for whole-model copies; once the head is known to
    replay alone, for copies of the layer's output and what follows it."""
    model = small_cnn(2)
    x = torch.randn(1, 3, 12, 12)
    expected = compute_cam(model, x, "features.4", [2], "ablationcam")
    # One whole copy: input 3x12x12 + 3 x conv1's 8x12x12 floats = 15552 bytes; one replayed
    # copy: 3 x the layer's 6x6x6 floats = 2592 bytes. The budget fits 1 of the first, 6 of these.
    monkeypatch.setattr(perturbation_module, "PERTURBATION_BATCH_BYTES", 15552)
    head = _BatchSizes(model.fc)
    got = compute_cam(model, x, "features.4", [2], "ablationcam")
    assert head.close() == [1, 2, 5]  # untouched; untouched + channel 0; channels 1-5 at once
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
