"""Preprocess: uint8 frames → normalised float32, channels at axis 1, exact values."""

from __future__ import annotations

import pytest
import torch

from videocam.models import Preprocess

PRE = Preprocess(size=(2, 3), mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))


def _expected(value: int, channel: int) -> float:
    return (value / 255.0 - PRE.mean[channel]) / PRE.std[channel]


def test_clip_layout_and_exact_values() -> None:
    # frames (N=2, T=4, H=2, W=3, RGB): every pixel of clip n, frame t, channel c is 10n+5t+c·100.
    frames = torch.zeros(2, 4, 2, 3, 3, dtype=torch.uint8)
    for n in range(2):
        for t in range(4):
            for c in range(3):
                frames[n, t, :, :, c] = 10 * n + 5 * t + 100 * c
    out = PRE(frames)
    assert out.shape == (2, 3, 4, 2, 3)
    assert out.dtype == torch.float32
    assert out.is_contiguous()
    for n in range(2):
        for t in range(4):
            for c in range(3):
                expected = torch.full((2, 3), _expected(10 * n + 5 * t + 100 * c, c))
                torch.testing.assert_close(out[n, c, t], expected, rtol=1e-6, atol=1e-6)


def test_extremes() -> None:
    frames = torch.zeros(1, 2, 3, 3, dtype=torch.uint8)
    frames[:, 1] = 255  # row 1 white, row 0 black
    out = PRE(frames)
    assert out.shape == (1, 3, 2, 3)
    for c in range(3):
        assert out[0, c, 0, 0].item() == pytest.approx(-PRE.mean[c] / PRE.std[c], rel=1e-6)
        assert out[0, c, 1, 2].item() == pytest.approx((1 - PRE.mean[c]) / PRE.std[c], rel=1e-6)


def test_single_frames_layout() -> None:
    frames = torch.randint(0, 256, (5, 2, 3, 3), dtype=torch.uint8)
    out = PRE(frames)
    assert out.shape == (5, 3, 2, 3)
    mean = torch.tensor(PRE.mean).view(1, 3, 1, 1)
    std = torch.tensor(PRE.std).view(1, 3, 1, 1)
    expected = (frames.permute(0, 3, 1, 2).double() / 255 - mean) / std
    torch.testing.assert_close(out.double(), expected, rtol=1e-6, atol=1e-6)


def test_rejects_wrong_inputs() -> None:
    with pytest.raises(TypeError, match="uint8"):
        PRE(torch.zeros(1, 2, 3, 3))
    with pytest.raises(ValueError, match="frames are 4x4 but the model expects 2x3"):
        PRE(torch.zeros(1, 4, 4, 3, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"\(N, T, H, W, 3\)"):
        PRE(torch.zeros(1, 3, 2, 4, dtype=torch.uint8))  # channels first


def test_validates_fields() -> None:
    with pytest.raises(ValueError, match="std"):
        Preprocess((2, 2), (0.5, 0.5, 0.5), (0.5, 0.0, 0.5))
    with pytest.raises(ValueError, match="size"):
        Preprocess((0, 2), (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))


@pytest.mark.gpu
def test_runs_on_the_frames_device() -> None:
    frames = torch.randint(0, 256, (1, 2, 2, 3, 3), dtype=torch.uint8, device="cuda")
    out = PRE(frames)
    assert out.device == frames.device
    torch.testing.assert_close(out.cpu(), PRE(frames.cpu()))
