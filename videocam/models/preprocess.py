"""Turning decoded uint8 frames into a model's normalised input tensor.

Frames are expected at the model's input size already (the decoder resizes): the whole frame is
resized, never cropped, because videocam explains the full frame the user sees. This differs from
torchvision's evaluation presets (resize the short side, then centre-crop).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import torch

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "Preprocess"]

#: Default statistics for custom models (ImageNet, in [0, 1] units).
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preprocess:
    """Per-channel normalisation of RGB frames, on the frames' own device.

    Attributes:
        size: (H, W) the frames must already have (whole frame resized, no crop).
        mean: per-channel mean of RGB in [0, 1] units.
        std: per-channel standard deviation in [0, 1] units, all > 0.
    """

    size: tuple[int, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def __post_init__(self) -> None:
        if len(self.size) != 2 or any(int(s) != s or s < 1 for s in self.size):
            raise ValueError(f"size must be two positive integers (H, W), got {self.size!r}")
        if len(self.mean) != 3 or not all(math.isfinite(m) for m in self.mean):
            raise ValueError(f"mean must be three finite numbers (R, G, B), got {self.mean!r}")
        if len(self.std) != 3 or not all(math.isfinite(s) and s > 0 for s in self.std):
            raise ValueError(f"std must be three positive numbers (R, G, B), got {self.std!r}")

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        """Normalise frames: ``(frames / 255 - mean) / std``, channels moved to axis 1.

        Args:
            frames: uint8 RGB, shape (N, T, H, W, 3) for clips or (N, H, W, 3) for single frames,
                with (H, W) == ``size``.

        Returns:
            float32 on ``frames.device``, shape (N, 3, T, H, W) or (N, 3, H, W), contiguous.
        """
        if frames.dtype != torch.uint8:
            raise TypeError(f"frames must be uint8 RGB, got dtype {frames.dtype}")
        if frames.ndim not in (4, 5) or frames.shape[-1] != 3:
            raise ValueError(
                f"frames must be (N, T, H, W, 3) or (N, H, W, 3), got shape {tuple(frames.shape)}"
            )
        height, width = frames.shape[-3], frames.shape[-2]
        if (height, width) != tuple(self.size):
            raise ValueError(
                f"frames are {height}x{width} but the model expects {self.size[0]}x{self.size[1]}: "
                "resize them (whole frame, no crop) before preprocessing"
            )
        mean, std = _constants(self.mean, self.std, frames.device)
        # Normalise while channels are last (a broadcast over the last axis), then move them once.
        x = frames.to(torch.float32).div_(255.0).sub_(mean).div_(std)
        return x.movedim(-1, 1).contiguous()


@lru_cache(maxsize=32)
def _constants(
    mean: tuple[float, float, float], std: tuple[float, float, float], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """``mean`` and ``std`` as float32 tensors on ``device``, made once per device: a tensor
    built from Python numbers is a pageable copy, which on a GPU synchronises the host."""
    values = torch.tensor([mean, std], dtype=torch.float32).to(device)
    return values[0], values[1]
