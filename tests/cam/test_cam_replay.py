"""The head replay: maps from kept layer outputs equal the maps of the original forward, and
heads that read the input around the target layer are told apart."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from videocam.cam import METHODS, CamError, cam_and_output_classes, get_method
from videocam.cam.replay import (
    StandIn,
    forward_with_layer_output,
    replay_classes,
    replay_stand_in,
)

REPLAYABLE = [m for m in METHODS if get_method(m).perturbation is None]


class SkipAround(nn.Module):
    """A CNN whose head adds a pooled copy of the input to the target layer's output."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())
        self.head = nn.Linear(4, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.features(x) + x.mean(dim=1, keepdim=True)  # the input, around the layer
        return self.head(a.mean(dim=(2, 3)))


class BatchFromInput(nn.Module):
    """A CNN whose head reshapes with the input's batch size, as efficientnet_lite does."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.ReLU())
        self.head = nn.Linear(4, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch = x.shape[0]
        return self.head(self.features(x).view(batch, 4, -1).mean(-1))


class FoldsTime(nn.Module):
    """A per-frame layer with time folded into the batch (N·T rows), as TimeSformer does."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.frames = nn.Conv2d(3, 4, 3, padding=1)
        self.head = nn.Linear(4, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, 3, T, H, W)
        n, c, t, h, w = x.shape
        folded = self.frames(x.transpose(1, 2).reshape(n * t, c, h, w))
        return self.head(folded.reshape(n, t, 4, h, w).mean(dim=(1, 3, 4)))


@pytest.mark.parametrize("method", REPLAYABLE)
def test_replayed_maps_equal_the_forward_maps(small_cnn, method: str) -> None:
    model = small_cnn(2)
    x = torch.randn(4, 3, 12, 12, generator=torch.Generator().manual_seed(1))
    classes = [0, 3, 4]
    direct = cam_and_output_classes(model, x, "features.3", classes, method)
    output, kept = forward_with_layer_output(model, x, "features.3")
    torch.testing.assert_close(output, direct.output)
    replayed = replay_classes(
        model,
        "features.3",
        kept,
        classes,
        method,
        stand_in=StandIn((3, 12, 12), batched=False),
        input_shape=(3, 12, 12),
    )
    torch.testing.assert_close(replayed.output, direct.output, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(replayed.cams, direct.cams, rtol=1e-5, atol=1e-6)


def test_replay_leaves_the_model_as_it_was(small_cnn) -> None:
    model = small_cnn(2).train()
    flags = [p.requires_grad for p in model.parameters()]
    x = torch.randn(2, 3, 12, 12)
    _, kept = forward_with_layer_output(model, x, "features.3")
    replay_classes(
        model,
        "features.3",
        kept,
        [1],
        stand_in=StandIn((3, 12, 12), False),
        input_shape=(3, 12, 12),
    )
    assert model.training
    assert [p.requires_grad for p in model.parameters()] == flags
    assert all(p.grad is None for p in model.parameters())
    assert all(not m._forward_hooks for m in model.modules())


def _random(*shape: int) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(0))


def test_sequential_heads_replay_on_one_sample(small_cnn) -> None:
    assert replay_stand_in(small_cnn(2), _random(1, 3, 12, 12), "features.3") == StandIn(
        (3, 12, 12), batched=False
    )
    assert replay_stand_in(small_cnn(3), _random(1, 3, 4, 12, 12), "features.3") == StandIn(
        (3, 4, 12, 12), batched=False
    )


def test_a_head_that_takes_its_batch_from_the_input_replays_on_small_samples() -> None:
    model = BatchFromInput()
    stand_in = replay_stand_in(model, _random(1, 3, 96, 96), "features", smaller=(16, 32))
    assert stand_in == StandIn((3, 16, 16), batched=True)
    x = torch.randn(3, 3, 96, 96)
    direct = cam_and_output_classes(model, x, "features", [0, 4])
    _, kept = forward_with_layer_output(model, x, "features")
    replayed = replay_classes(
        model, "features", kept, [0, 4], stand_in=stand_in, input_shape=(3, 96, 96)
    )
    torch.testing.assert_close(replayed.cams, direct.cams, rtol=1e-5, atol=1e-6)


def test_a_head_that_reads_the_input_does_not_replay() -> None:
    assert replay_stand_in(SkipAround(), _random(1, 3, 48, 48), "features") is None


def test_a_layer_that_folds_time_into_the_batch_does_not_replay() -> None:
    assert replay_stand_in(FoldsTime(), _random(1, 3, 2, 8, 8), "frames") is None


def test_perturbation_methods_are_not_replayed(small_cnn) -> None:
    model = small_cnn(2)
    _, kept = forward_with_layer_output(model, torch.randn(1, 3, 12, 12), "features.3")
    with pytest.raises(CamError, match="cannot be replayed"):
        replay_classes(
            model,
            "features.3",
            kept,
            [0],
            "scorecam",
            stand_in=StandIn((3, 12, 12), batched=False),
            input_shape=(3, 12, 12),
        )
