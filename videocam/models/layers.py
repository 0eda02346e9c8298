"""Target layers: finding them by dotted name, and reshaping their output to (N, C, *S).

The CAM engine works on activations shaped (N, C, *S). CNN layers already give that; transformer
layers do not, so each such model carries a reshape function (``ReshapeFn``):

* token sequences with a class token (ViT, MViT): (N, 1 + t·h·w, C) → drop the class token →
  (N, C, t, h, w), the grid inferred from the input shape and the model's patch/pooling strides;
* channels-last maps (Swin, Swin3D): (N, *S, C) → (N, C, *S).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from videocam.errors import ConfigError, LayerNotFoundError

__all__ = [
    "ChannelsLastToFirst",
    "ConvGeometry",
    "ReshapeFn",
    "TokensToGrid",
    "layer_name",
    "resolve_layer",
]

ReshapeFn = Callable[[torch.Tensor, torch.Size], torch.Tensor]
"""``(layer output, model input shape) -> activations (N, C, *S)``.

Gets the target layer's output (its first element when the layer returns a tuple, as
torchvision's MViT blocks do) and the model input's shape; returns the activations with channels
second, e.g. transformer tokens ``(N, L, C)`` -> ``(N, C, T, H, W)``, or channels-last
``(N, T, H, W, C)`` -> ``(N, C, T, H, W)``. The CAM engine applies it to the activations and to
their gradients alike, so it must only rearrange (and may drop, e.g. a class token) elements.
"""


def resolve_layer(module: nn.Module, dotted: str, *, model_name: str | None = None) -> nn.Module:
    """Return the submodule named ``dotted`` (e.g. ``"layer4"``, ``"features.6"``).

    Integer parts index ``nn.Sequential`` / ``nn.ModuleList`` children, negative ones included
    (``"features.-1"`` is the last feature block).

    Raises:
        LayerNotFoundError: naming the layer and suggesting close names.
    """
    if not isinstance(dotted, str) or not dotted.strip():
        raise LayerNotFoundError(f"layer name must be a non-empty dotted name, got {dotted!r}")
    current = module
    for part in dotted.strip().split("."):
        child: nn.Module | None = None
        if isinstance(current, (nn.Sequential, nn.ModuleList)) and _is_int(part):
            index = int(part)
            if -len(current) <= index < len(current):
                child = current[index]
        else:
            child = current._modules.get(part)
        if child is None:
            raise LayerNotFoundError(_not_found_message(module, dotted, model_name))
        current = child
    return current


def layer_name(module: nn.Module, layer: nn.Module) -> str:
    """The canonical dotted name of ``layer`` inside ``module`` ("" for the module itself)."""
    for name, candidate in module.named_modules(remove_duplicate=False):
        if candidate is layer:
            return name
    raise LayerNotFoundError(
        f"{type(layer).__name__} is not a submodule of {type(module).__name__}"
    )


def _is_int(text: str) -> bool:
    return text.lstrip("-").isdigit()


def _not_found_message(module: nn.Module, dotted: str, model_name: str | None) -> str:
    names = [name for name, _ in module.named_modules() if name]
    where = f" in {model_name or type(module).__name__}"
    close = difflib.get_close_matches(dotted, names, n=5, cutoff=0.6)
    hint = f"; did you mean: {', '.join(close)}" if close else ""
    top = [name for name, _ in module.named_children()][:12]
    return f"layer {dotted!r} not found{where}{hint} (top-level layers: {', '.join(top) or 'none'})"


@dataclass(frozen=True)
class ChannelsLastToFirst:
    """Reshape for channels-last layer outputs: (N, *S, C) → (N, C, *S).

    Attributes:
        description: names the model and layer in error messages.
    """

    description: str = "layer"

    def __call__(self, activations: torch.Tensor, input_shape: torch.Size) -> torch.Tensor:
        if activations.ndim != len(input_shape):
            raise ConfigError(
                f"{self.description}: expected a channels-last output with {len(input_shape)} "
                f"dimensions for an input of shape {tuple(input_shape)}, "
                f"got {tuple(activations.shape)}"
            )
        return activations.movedim(-1, 1)


@dataclass(frozen=True)
class ConvGeometry:
    """Kernel, stride and padding of a convolution or pooling, per spatial(-temporal) axis."""

    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]

    def apply(self, size: Sequence[int]) -> tuple[int, ...]:
        """Output size of this operation for an input of ``size``."""
        return tuple(
            (s + 2 * p - k) // st + 1
            for s, k, st, p in zip(size, self.kernel, self.stride, self.padding, strict=True)
        )

    @classmethod
    def of(cls, op: nn.Module, ndim: int) -> ConvGeometry:
        """Geometry of a convolution or pooling module over ``ndim`` axes."""
        layer: Any = op  # kernel_size/stride/padding are untyped module attributes
        return cls(
            kernel=_tuple(layer.kernel_size, ndim),
            stride=_tuple(layer.stride, ndim),
            padding=_tuple(layer.padding, ndim),
        )


def _tuple(value: int | Sequence[int], ndim: int) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * ndim
    return tuple(int(v) for v in value)


@dataclass(frozen=True)
class TokensToGrid:
    """Reshape for token sequences with a leading class token: (N, 1 + L, C) → (N, C, *grid).

    The token grid is inferred from the model input's shape: the patch embedding's geometry
    gives the first grid, each pooling stage the next. The layer's token count must equal the size
    of one of these grids (plus the class token); otherwise the input does not have the size the
    model was built for and a ConfigError says so.

    Attributes:
        patch: geometry of the patch embedding (e.g. MViT's Conv3d 3x7x7 stride 2x4x4).
        stages: geometry of each token pooling along the network, in order.
        description: names the model and layer in error messages.
        expected_input: the (T, H, W) or (H, W) input the model was built for, for messages.
    """

    patch: ConvGeometry
    stages: tuple[ConvGeometry, ...] = ()
    description: str = "layer"
    expected_input: tuple[int, ...] | None = None

    def grids(self, input_shape: Sequence[int]) -> list[tuple[int, ...]]:
        """Token grids, from the patch embedding on, for a model input of ``input_shape``."""
        ndim = len(self.patch.kernel)
        grid = self.patch.apply(tuple(input_shape)[-ndim:])
        grids = [grid]
        for stage in self.stages:
            grid = stage.apply(grid)
            if grid != grids[-1]:
                grids.append(grid)
        return grids

    def __call__(self, activations: torch.Tensor, input_shape: torch.Size) -> torch.Tensor:
        if activations.ndim != 3:
            raise ConfigError(
                f"{self.description}: expected tokens (N, 1 + positions, C), "
                f"got shape {tuple(activations.shape)}"
            )
        n_positions = activations.shape[1] - 1
        grids = self.grids(input_shape)
        for grid in grids:
            if math.prod(grid) == n_positions:
                tokens = activations[:, 1:, :]
                return tokens.transpose(1, 2).reshape(
                    activations.shape[0], activations.shape[2], *grid
                )
        expected = ""
        if self.expected_input is not None:
            expected = f"; the model needs an input of exactly {_fmt_size(self.expected_input)}"
        raise ConfigError(
            f"{self.description}: {n_positions} tokens (+1 class token) fit none of the token "
            f"grids {grids} of an input of shape {tuple(input_shape)}{expected}"
        )


def _fmt_size(size: Sequence[int]) -> str:
    return "x".join(str(s) for s in size)
