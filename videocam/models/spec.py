"""The records the model registry hands out: what a model is, and a model ready to run."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from videocam.models.layers import ReshapeFn
from videocam.models.preprocess import Preprocess

__all__ = ["Built", "LoadedModel", "ModelInfo", "ReshapeFactory"]


@dataclass(frozen=True)
class ModelInfo:
    """One row of ``videocam models``.

    Attributes:
        name: what ``--model`` accepts.
        kind: ``"video"`` (input (N, 3, T, H, W)) or ``"frame"`` (input (N, 3, H, W), run
            per frame).
        default_layer: the tested default target layer (``--layer``).
        weights: names ``--weights`` accepts besides ``DEFAULT``, a local file and ``none``.
        input_size: (H, W) of the default weights' preprocessing.
        clip_len: default window length in frames (video models), None for frame models.
        source: ``"torchvision"`` or ``"bundled"``.
    """

    name: str
    kind: str
    default_layer: str
    weights: tuple[str, ...]
    input_size: tuple[int, int] | None
    clip_len: int | None
    source: str


@dataclass(frozen=True)
class LoadedModel:
    """A model ready for explanation: in eval mode, on ``device``, parameters frozen.

    Attributes:
        name: the model name (or the custom builder spec).
        kind: ``"video"`` (input (N, 3, T, H, W)) or ``"frame"`` (input (N, 3, H, W)).
        module: the network, ``eval()``, on ``device``, ``requires_grad=False`` everywhere.
        layer: canonical dotted name of the target layer (validated to exist).
        reshape: turns the layer's output into (N, C, *S); None when it already is.
        preprocess: uint8 frames → normalised input.
        categories: class names (index → name), None when unknown.
        weights: what was loaded: an enum name (``"KINETICS400_V1"``), ``"none"``, a file path,
            ``"bundled"`` or ``"builder"`` (a custom builder's own module).
        clip_len: default window length for video models, None for frame models.
        background_class: a class ``--target auto`` should skip, else None.
        device: where ``module`` lives.
    """

    name: str
    kind: str
    module: nn.Module
    layer: str
    reshape: ReshapeFn | None
    preprocess: Preprocess
    categories: tuple[str, ...] | None
    weights: str
    clip_len: int | None
    background_class: int | None
    device: torch.device


#: Builds the reshape for (module, canonical layer name); returns None for (N, C, *S) outputs.
ReshapeFactory = Callable[[nn.Module, str], "ReshapeFn | None"]


@dataclass(frozen=True)
class Built:
    """What a model source (torchvision, bundled, custom) hands the registry (internal).

    Attributes:
        fixed_input: the (T, H, W) or (H, W) the network was built for and only accepts
            (MViT, ViT), else None.
        num_classes: the number of logits when known (checks ``labels``).
    """

    module: nn.Module
    kind: str
    weights: str
    preprocess: Preprocess | None
    categories: tuple[str, ...] | None
    clip_len: int | None
    background_class: int | None
    default_layer: str | None
    num_classes: int | None
    reshape_factory: ReshapeFactory | None = None
    fixed_input: tuple[int, ...] | None = None
