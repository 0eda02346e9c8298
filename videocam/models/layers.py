"""Target layers: finding them by dotted name, and reshaping their output to (N, C, *S).

The CAM engine works on activations shaped (N, C, *S). CNN layers already give that; transformer
layers do not, so each such model carries a reshape function (``ReshapeFn``):

* token sequences with a class token (ViT, MViT): (N, 1 + t·h·w, C) → drop the class token →
  (N, C, t, h, w), the grid inferred from the input shape and the model's patch/pooling strides;
* patch and tubelet tokens of Hugging Face and timm transformers (:class:`PatchTokens`): leading
  class / distillation / register tokens dropped, the grid from the input shape and the patch
  (tubelet) size, in the token order of each family — ``(t, h, w)`` for VideoMAE and ViViT,
  ``(h, w, t)`` for TimeSformer — and TimeSformer's per-frame and per-patch layouts inside its
  divided space-time blocks;
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
    "PatchTokens",
    "ReshapeFn",
    "TokensToGrid",
    "layer_name",
    "layer_root",
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
    (``"features.-1"`` is the last feature block). Names are relative to :func:`layer_root`.

    Raises:
        LayerNotFoundError: naming the layer and suggesting close names.
    """
    if not isinstance(dotted, str) or not dotted.strip():
        raise LayerNotFoundError(f"layer name must be a non-empty dotted name, got {dotted!r}")
    current = layer_root(module)
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
    """The canonical dotted name of ``layer`` inside ``module`` ("" for the module itself),
    as :func:`resolve_layer` takes it (relative to :func:`layer_root`)."""
    if layer is module:
        return ""
    for name, candidate in layer_root(module).named_modules(remove_duplicate=False):
        if candidate is layer:
            return name
    raise LayerNotFoundError(
        f"{type(layer).__name__} is not a submodule of {type(module).__name__}"
    )


def layer_root(module: nn.Module) -> nn.Module:
    """The module whose dotted names are ``module``'s layer names.

    ``module`` itself, unless it is an adapter that runs a model registered as its child and
    names that child in a ``layer_root_name`` attribute
    (:class:`~videocam.models.hf.HFClassifier`): then that child, so that layer names
    (``--layer``, ``LoadedModel.layer``, summary.json) are the wrapped model's own, without the
    adapter's prefix.
    """
    name = getattr(module, "layer_root_name", None)
    child = module._modules.get(name) if isinstance(name, str) else None
    return child if child is not None else module


def _is_int(text: str) -> bool:
    return text.lstrip("-").isdigit()


def _not_found_message(module: nn.Module, dotted: str, model_name: str | None) -> str:
    root = layer_root(module)
    names = [name for name, _ in root.named_modules() if name]
    where = f" in {model_name or type(module).__name__}"
    close = difflib.get_close_matches(dotted, names, n=5, cutoff=0.6)
    hint = f"; did you mean: {', '.join(close)}" if close else ""
    top = [name for name, _ in root.named_children()][:12]
    return f"layer {dotted!r} not found{where}{hint} (top-level layers: {', '.join(top) or 'none'})"


@dataclass(frozen=True)
class ChannelsLastToFirst:
    """Reshape for channels-last layer outputs: (N, *S, C) → (N, C, *S).

    Attributes:
        description: names the model and layer in error messages.
    """

    description: str = "layer"

    def __call__(self, activations: torch.Tensor, input_shape: torch.Size) -> torch.Tensor:
        """Move the channels of a channels-last output to axis 1."""
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
        """The patch tokens (the class token dropped) as maps on the first grid that fits."""
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


#: How :class:`PatchTokens` finds the grid positions in a layer's output.
TOKEN_LAYOUTS = ("sequence", "frames", "patches")


@dataclass(frozen=True)
class PatchTokens:
    """Reshape for patch / tubelet tokens: (…, tokens, C) → (N, C, t, h, w) or (N, C, h, w).

    The grid is the model input's size divided by ``patch`` along each axis (floor, as a
    convolution of kernel = stride = patch gives): ``(T // pt, H // ph, W // pw)`` for video,
    ``(H // ph, W // pw)`` for images. ``prefix`` tokens (class, distillation, register tokens)
    come first and are dropped; a layer before they are added (the patch embedding) has none,
    so a token count of exactly the grid is accepted too, and so is an image patch embedding
    that keeps its grid channels-last, (N, h, w, C) (timm's with ``dynamic_img_size``).

    Layouts (``layout``):

    * ``"sequence"``: (B, prefix + t·h·w, C), positions flattened in ``order`` — ``"thw"``
      (a Conv3d's output flattened: VideoMAE, ViViT, image ViTs with ``"hw"``) or ``"hwt"``
      (TimeSformer: space-major, time-minor);
    * ``"frames"``: (B·t, prefix + h·w, C), one row per frame (TimeSformer's spatial attention,
      where each frame carries a copy of the class token);
    * ``"patches"``: (B·h·w, t, C), one row per spatial patch (TimeSformer's temporal attention).

    B is taken from the tensor itself (the CAM engine also passes gradients of several classes
    flattened into the batch), so only the grid comes from ``input_shape``.

    Attributes:
        patch: input elements per token along each axis: (pt, ph, pw) or (ph, pw).
        prefix: leading tokens that are not grid positions.
        order: ``"thw"``, ``"hwt"`` or ``"hw"``: the order positions are flattened in.
        layout: one of :data:`TOKEN_LAYOUTS`.
        description: names the model and layer in error messages.
        expected_input: the (T, H, W) or (H, W) the model was built for, for messages.
    """

    patch: tuple[int, ...]
    prefix: int = 0
    order: str = "thw"
    layout: str = "sequence"
    description: str = "layer"
    expected_input: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if len(self.patch) not in (2, 3) or min(self.patch) < 1:
            raise ValueError(f"patch must be 2 or 3 positive sizes, got {self.patch!r}")
        axes = "thw" if len(self.patch) == 3 else "hw"
        if sorted(self.order) != sorted(axes):
            raise ValueError(f"order {self.order!r} does not name the axes {axes!r}")
        if self.layout not in TOKEN_LAYOUTS:
            raise ValueError(f"layout must be one of {TOKEN_LAYOUTS}, got {self.layout!r}")
        if self.layout != "sequence" and len(self.patch) != 3:
            raise ValueError(f"layout {self.layout!r} needs a video patch (pt, ph, pw)")

    def grid(self, input_shape: Sequence[int]) -> tuple[int, ...]:
        """The token grid, (t, h, w) or (h, w), of a model input of ``input_shape``."""
        size = tuple(input_shape)[-len(self.patch) :]
        return tuple(int(s) // p for s, p in zip(size, self.patch, strict=True))

    def __call__(self, activations: torch.Tensor, input_shape: torch.Size) -> torch.Tensor:
        """The patch tokens as (N, C, t, h, w) or (N, C, h, w) maps on the patch grid."""
        grid = self.grid(input_shape)
        if activations.ndim == 4 and len(grid) == 2 and tuple(activations.shape[1:3]) == grid:
            return activations.permute(0, 3, 1, 2)  # a patch embedding that keeps (N, h, w, C)
        if activations.ndim != 3 or min(grid) < 1:
            raise self._mismatch(activations, input_shape, grid)
        if self.layout == "frames":
            return self._frames(activations, input_shape, grid)
        if self.layout == "patches":
            return self._patches(activations, input_shape, grid)
        tokens = self._strip_prefix(activations, math.prod(grid), input_shape, grid)
        batch, channels = tokens.shape[0], tokens.shape[2]
        stored = tuple(
            grid["thw".index(a)] if len(grid) == 3 else grid["hw".index(a)] for a in self.order
        )
        cube = tokens.reshape(batch, *stored, channels)
        # Axes of `cube` after the batch are in `order`; bring channels first, then t, h, w.
        natural = "thw" if len(grid) == 3 else "hw"
        permutation = [0, cube.ndim - 1, *(1 + self.order.index(a) for a in natural)]
        return cube.permute(*permutation)

    def _strip_prefix(
        self,
        tokens: torch.Tensor,
        positions: int,
        input_shape: torch.Size,
        grid: tuple[int, ...],
    ) -> torch.Tensor:
        count = tokens.shape[1]
        if count == positions + self.prefix:
            return tokens[:, self.prefix :, :]
        if count == positions:
            return tokens
        raise self._mismatch(tokens, input_shape, grid)

    def _frames(
        self, activations: torch.Tensor, input_shape: torch.Size, grid: tuple[int, ...]
    ) -> torch.Tensor:
        t, h, w = grid
        if activations.shape[0] % t:
            raise self._mismatch(activations, input_shape, grid)
        tokens = self._strip_prefix(activations, h * w, input_shape, grid)
        batch, channels = activations.shape[0] // t, activations.shape[2]
        return tokens.reshape(batch, t, h, w, channels).permute(0, 4, 1, 2, 3)

    def _patches(
        self, activations: torch.Tensor, input_shape: torch.Size, grid: tuple[int, ...]
    ) -> torch.Tensor:
        t, h, w = grid
        if activations.shape[0] % (h * w) or activations.shape[1] != t:
            raise self._mismatch(activations, input_shape, grid)
        batch, channels = activations.shape[0] // (h * w), activations.shape[2]
        return activations.reshape(batch, h, w, t, channels).permute(0, 4, 3, 1, 2)

    def _mismatch(
        self, activations: torch.Tensor, input_shape: torch.Size, grid: tuple[int, ...]
    ) -> ConfigError:
        positions = "x".join(str(g) for g in grid)
        prefix = f" (+{self.prefix} leading)" if self.prefix else ""
        if self.layout == "frames":
            wanted = f"(batch·{grid[0]}, {grid[1] * grid[2]}{prefix} tokens, C)"
        elif self.layout == "patches":
            wanted = f"(batch·{grid[1] * grid[2]}, {grid[0]} tokens, C)"
        else:
            wanted = f"(batch, {math.prod(grid)}{prefix} tokens, C)"
        expected = ""
        if self.expected_input is not None:
            expected = f"; the model needs an input of exactly {_fmt_size(self.expected_input)}"
        return ConfigError(
            f"{self.description}: output of shape {tuple(activations.shape)} does not fit the "
            f"{positions} token grid of an input of shape {tuple(input_shape)}: expected "
            f"{wanted}{expected}"
        )
