"""The bundled video model ``videocam_tiny``: a small 3D CNN and its default configuration.

The architecture lives here so that the trainer (``scripts/train_tiny.py``) and the loader build
exactly the same network. Input (N, 3, T, H, W), normalised; output logits (N, K).

With the default configuration (T=16, 64x64) the target layer ``block4`` yields a
(N, 8·width, T/2, H/8, W/8) = (N, 128, 8, 8, 8) spatiotemporal map.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = [
    "TINY_BACKGROUND_CLASS",
    "TINY_CLASSES",
    "TINY_CLIP_LEN",
    "TINY_INPUT_SIZE",
    "TINY_LAYER",
    "TINY_MEAN",
    "TINY_META_FILE",
    "TINY_STD",
    "TINY_SYNTHETIC_DATA",
    "TINY_WEIGHTS_FILE",
    "TINY_WIDTH",
    "TinyVideoNet",
    "build_tiny",
]

#: Defaults used when the sidecar ``videocam_tiny.json`` is absent; the json wins when present.
TINY_CLASSES: tuple[str, ...] = ("background", "move_right", "move_left", "grow", "shrink")
TINY_BACKGROUND_CLASS = 0
TINY_INPUT_SIZE: tuple[int, int] = (64, 64)
TINY_CLIP_LEN = 16
TINY_MEAN: tuple[float, float, float] = (0.45, 0.45, 0.45)
TINY_STD: tuple[float, float, float] = (0.225, 0.225, 0.225)
TINY_WIDTH = 16
TINY_LAYER = "block4"
#: File names inside the ``videocam/assets`` package folder.
TINY_WEIGHTS_FILE = "videocam_tiny.pt"
TINY_META_FILE = "videocam_tiny.json"
#: ``"training_data"`` of a sidecar json whose weights saw synthetic clips only (made by
#: :mod:`videocam.synthetic`): :attr:`~videocam.models.spec.LoadedModel.synthetic_only`.
TINY_SYNTHETIC_DATA = "synthetic"


def _conv_block(in_channels: int, out_channels: int, stride: tuple[int, int, int]) -> nn.Sequential:
    # Not in-place: forward hooks on the block hand its output to the CAM engine untouched.
    return nn.Sequential(
        nn.Conv3d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False),
        nn.BatchNorm3d(out_channels),
        nn.ReLU(inplace=False),
    )


class TinyVideoNet(nn.Module):
    """A four-block 3D CNN with global average pooling and a linear head.

    Blocks and the (T, H, W) stride each applies:
    ``block1`` (1, 2, 2) → ``block2`` (2, 2, 2) → ``block3`` (1, 2, 2) → ``block4`` (1, 1, 1),
    so ``block4`` sees T/2 × H/8 × W/8 positions with 8·width channels.

    Args:
        num_classes: number of output logits K.
        width: channels of ``block1``; later blocks use 2×, 4× and 8× that.
        dropout: dropout probability before the head (active in training only).
    """

    def __init__(self, num_classes: int, width: int = TINY_WIDTH, dropout: float = 0.2) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        if width < 1:
            raise ValueError(f"width must be >= 1, got {width}")
        self.num_classes = num_classes
        self.width = width
        self.block1 = _conv_block(3, width, (1, 2, 2))
        self.block2 = _conv_block(width, 2 * width, (2, 2, 2))
        self.block3 = _conv_block(2 * width, 4 * width, (1, 2, 2))
        self.block4 = _conv_block(4 * width, 8 * width, (1, 1, 1))
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(8 * width, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv3d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm3d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, K) of a normalised clip batch ``x`` (N, 3, T, H, W)."""
        x = self.block4(self.block3(self.block2(self.block1(x))))
        x = self.pool(x).flatten(1)
        return self.fc(self.dropout(x))


def build_tiny(num_classes: int, **kwargs: float) -> TinyVideoNet:
    """Build the ``videocam_tiny`` architecture (random init); ``kwargs`` go to TinyVideoNet."""
    width = int(kwargs.pop("width", TINY_WIDTH))
    dropout = float(kwargs.pop("dropout", 0.2))
    if kwargs:
        raise TypeError(f"build_tiny() got unexpected arguments: {', '.join(sorted(kwargs))}")
    return TinyVideoNet(num_classes, width=width, dropout=dropout)
