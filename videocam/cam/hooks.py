"""Hooks and guards the CAM engines share: eval mode and frozen parameters for the duration of a
call (every flag restored in ``finally``), a forward hook that records (and may replace) the
target layer's output, and the checks on what a model and a layer returned."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn

from videocam.errors import CamError
from videocam.models.layers import ReshapeFn

__all__ = ["capture", "check_output", "eval_mode", "replace_output", "reshaped", "single_capture"]


def check_output(output: Any, n_samples: int) -> None:
    """Raise a CamError unless ``output`` is a tensor with one row per sample."""
    if not isinstance(output, Tensor) or output.ndim < 1 or output.shape[0] != n_samples:
        got = tuple(output.shape) if isinstance(output, Tensor) else type(output).__name__
        raise CamError(
            f"model output: expected a tensor with {n_samples} samples, like logits "
            f"({n_samples}, K); got {got}"
        )


def single_capture(captured: list[Tensor], layer_name: str) -> Tensor:
    """The one output a hooked layer gave in a forward pass (a CamError if it ran more often)."""
    if len(captured) != 1:
        raise CamError(
            f"layer {layer_name!r} ran {len(captured)} times in one forward pass; "
            "choose a layer that runs exactly once"
        )
    return captured[0]


def reshaped(
    activations: Tensor, reshape: ReshapeFn | None, input_shape: torch.Size, layer_name: str
) -> Tensor:
    """The layer's activations as (N, C, ...) maps: ``reshape``'s result when given, checked."""
    result = reshape(activations, input_shape) if reshape is not None else activations
    if not isinstance(result, Tensor) or result.ndim < 3:
        got = tuple(result.shape) if isinstance(result, Tensor) else type(result).__name__
        raise CamError(
            f"layer {layer_name!r}: expected activations (N, C, *S) with at least one "
            f"positional axis; got {got}. Pass reshape= for token or channels-last outputs"
        )
    return result


@contextmanager
def eval_mode(model: nn.Module, *, freeze_parameters: bool) -> Iterator[None]:
    """Eval mode (and frozen parameters) for the duration; each flag restored exactly."""
    modes = [(module, module.training) for module in model.modules()]
    flags = [(p, p.requires_grad) for p in model.parameters()] if freeze_parameters else []
    try:
        model.eval()
        for parameter, _ in flags:
            parameter.requires_grad_(False)
        yield
    finally:
        for parameter, requires_grad in flags:
            parameter.requires_grad_(requires_grad)
        for module, training in modes:
            module.training = training


@contextmanager
def capture(module: nn.Module, *, as_leaf: bool) -> Iterator[list[Tensor]]:
    """Record ``module``'s output (the first element of a tuple) while the context is open.

    With ``as_leaf``, the output is replaced by a fresh leaf that requires grad: parameters are
    frozen and inputs need no grad, so the layers before this one record no graph at all, and
    the backward from the score stops here. The model downstream gets a *copy* of the leaf, so
    an in-place op there (``ReLU(inplace=True)``) neither fails on the leaf nor alters the
    recorded activations. Without ``as_leaf`` the recorded activations are a copy, for the
    same reason.
    """
    captured: list[Tensor] = []

    def hook(_module: nn.Module, _args: Any, output: Any) -> Any:
        first = output[0] if isinstance(output, (tuple, list)) else output
        if not isinstance(first, Tensor):
            raise CamError(
                f"target layer {type(_module).__name__} returned {type(first).__name__}; "
                "expected a tensor (or a tuple whose first element is one)"
            )
        if not as_leaf:
            # A copy: the model downstream may modify the layer output in place.
            captured.append(first.clone())
            return None
        leaf = first.detach().requires_grad_(True)
        captured.append(leaf)
        return _with_first(output, leaf.clone())

    handle = module.register_forward_hook(hook)
    try:
        yield captured
    finally:
        handle.remove()


@contextmanager
def replace_output(module: nn.Module, replacement: Tensor) -> Iterator[None]:
    """``module`` returns ``replacement`` in place of its output (the first element of a tuple)
    while the context is open: the model downstream runs on it, whatever the layer computed.

    ``replacement`` may have more samples than the layer's input: the layers downstream then see
    that many (the perturbation CAMs replay the head on a batch of modified activations).
    """

    def hook(_module: nn.Module, _args: Any, output: Any) -> Any:
        return _with_first(output, replacement)

    handle = module.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def _with_first(output: Any, first: Tensor) -> Any:
    """``output`` with its tensor (or its first element) swapped for ``first``."""
    if isinstance(output, tuple):
        return (first, *output[1:])
    if isinstance(output, list):
        return [first, *output[1:]]
    return first
