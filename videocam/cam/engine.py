"""The CAM engine: one forward pass gives the class activation maps and the logits.

Cost (DESIGN.md, decision 2): gradients are taken at the target layer only. Parameters are frozen
for the duration of the call, and the target layer's forward hook hands the rest of the model a
fresh leaf in place of the layer's output, so nothing before the layer records a graph and
``torch.autograd.grad`` runs back through the head alone. No parameter ``.grad`` is ever written.

Side effects: none. Hooks are removed, each module's training flag and each parameter's
``requires_grad`` are restored in ``finally`` blocks, also when the forward raises; inputs are
never modified. Device and dtype follow the model and its inputs; nothing is copied to the host.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from videocam.cam.methods import get_method
from videocam.errors import CamError, LayerNotFoundError
from videocam.models.layers import layer_name
from videocam.models.layers import resolve_layer as find_layer

__all__ = [
    "CamOutput",
    "ReshapeFn",
    "Targets",
    "cam_and_output",
    "compute_cam",
    "resolve_layer",
    "upsample_cam",
]

ReshapeFn = Callable[[Tensor, torch.Size], Tensor]
"""``(layer output, model input shape) -> activations (N, C, *S)``.

Gets the target layer's output (its first element when the layer returns a tuple, as
torchvision's MViT blocks do) and the model input's shape; returns the activations with channels
second, e.g. transformer tokens ``(N, L, C)`` -> ``(N, C, T, H, W)``, or channels-last
``(N, T, H, W, C)`` -> ``(N, C, T, H, W)``. It is applied to the activations and to their
gradients alike, so it must only rearrange (and may drop, e.g. a class token) elements.
"""

Targets = int | Sequence[int] | Tensor | Callable[[Tensor], Tensor] | None
"""What to explain, per sample. See :func:`cam_and_output`."""

_INTERPOLATION = {1: "linear", 2: "bilinear", 3: "trilinear"}


@dataclass(frozen=True)
class CamOutput:
    """The result of one CAM forward pass.

    Attributes:
        cams: float32, shape (N, *S), >= 0, detached: the raw map at the layer's resolution.
        output: float32, shape of the model output (logits (N, K) for a classifier), detached.
    """

    cams: Tensor
    output: Tensor


def resolve_layer(model: nn.Module, layer: str | nn.Module) -> tuple[str, nn.Module]:
    """Find the target layer inside ``model``.

    Args:
        model: the model.
        layer: a dotted name (``"layer4"``, ``"features.6"``, ``"features.-1"``) or a module
            inside ``model``.

    Returns:
        ``(canonical dotted name, module)``.

    Raises:
        LayerNotFoundError: no such layer; the message suggests close or top-level names.
    """
    if isinstance(layer, nn.Module):
        return layer_name(model, layer), layer
    if not isinstance(layer, str):
        raise LayerNotFoundError(
            f"layer: expected a dotted name or an nn.Module; got {type(layer).__name__}"
        )
    module = find_layer(model, layer)
    return layer_name(model, module), module


def upsample_cam(cams: Tensor, size: Sequence[int]) -> Tensor:
    """Resize maps to ``size``: linear, bilinear or trilinear by the number of axes.

    Args:
        cams: shape (N, *S) with 1 to 3 axes in S.
        size: the target S, e.g. the input's (T, H, W) or (H, W).

    Returns:
        shape (N, *size), same dtype; ``align_corners=False``.
    """
    size = tuple(size)
    if cams.ndim - 1 != len(size) or len(size) not in _INTERPOLATION:
        raise CamError(
            f"upsample: cannot resize maps of shape {tuple(cams.shape)} to {size}: "
            "expected 1 to 3 positional axes matching the input's"
        )
    resized = F.interpolate(
        cams[:, None], size=size, mode=_INTERPOLATION[len(size)], align_corners=False
    )
    return resized[:, 0]


def compute_cam(
    model: nn.Module,
    inputs: Tensor,
    layer: str | nn.Module,
    targets: Targets,
    method: str = "gradcam",
    upsample: bool = False,
    *,
    reshape: ReshapeFn | None = None,
    autocast: bool | torch.dtype = False,
) -> Tensor:
    """Class activation maps of ``model`` at ``layer`` for ``inputs``.

    Args:
        model: returns logits (N, K) for ``inputs``.
        inputs: float, shape (N, C, T, H, W) or (N, C, H, W), on the model's device.
        layer: dotted name or module of the target layer.
        targets: one class index per sample (a list, a 1-D integer tensor, or one int for
            all), a callable ``output -> (N,)`` of float scores or integer class indices, or
            None for each sample's top class. See :func:`cam_and_output`.
        method: one of :data:`videocam.cam.METHODS`.
        upsample: resize the maps to the input's (T, H, W) or (H, W).
        reshape: turns the layer output into (N, C, *S); see :data:`ReshapeFn`.
        autocast: run the forward under ``torch.autocast`` (True: bfloat16, or a dtype).

    Returns:
        float32, shape (N, *S) (or (N, *inputs.shape[2:]) with ``upsample``), >= 0, detached:
        the raw map, ReLU applied, not normalised.
    """
    cams = cam_and_output(
        model, inputs, layer, targets, method, reshape=reshape, autocast=autocast
    ).cams
    return upsample_cam(cams, inputs.shape[2:]) if upsample else cams


def cam_and_output(
    model: nn.Module,
    inputs: Tensor,
    layer: str | nn.Module,
    targets: Targets = None,
    method: str = "gradcam",
    *,
    reshape: ReshapeFn | None = None,
    autocast: bool | torch.dtype = False,
) -> CamOutput:
    """One forward pass: the maps at ``layer`` and the model's output.

    ``targets`` says which score to explain, per sample:

    - ``None``: each sample's top class (argmax of its logits);
    - an ``int``: that class for every sample;
    - a sequence of ints or a 1-D integer tensor of length N: one class per sample;
    - a callable on the model output returning a tensor of shape (N,). Its dtype decides what
      it means: floating point = per-sample *scores* to differentiate (e.g.
      ``lambda out: out[:, 3]``); integer = per-sample *class indices* (e.g.
      ``lambda out: out.argmax(1)``).

    Gradient-based methods differentiate the chosen logit (before any softmax). ``eigencam``
    uses no gradient and ignores the targets' values (their length is still checked); its
    forward runs under ``torch.no_grad``.

    Args:
        model: the model; put in eval mode for the call, every module's flag restored after.
        inputs: float, shape (N, C, ...), on the model's device; not modified.
        layer: dotted name or module of the target layer.
        targets: see above.
        method: one of :data:`videocam.cam.METHODS`.
        reshape: turns the layer output into (N, C, *S); see :data:`ReshapeFn`.
        autocast: run the forward under ``torch.autocast(inputs.device.type, dtype)`` (True:
            bfloat16). CAM arithmetic stays in float32.

    Returns:
        :class:`CamOutput` with ``cams`` float32 (N, *S) and ``output`` float32, both detached.

    Raises:
        LayerNotFoundError: unknown layer.
        CamError: bad targets, method, inputs or autocast value; the layer did not run exactly
            once, or the explained score does not depend on it.
    """
    cam_method = get_method(method)
    if not isinstance(inputs, Tensor) or inputs.ndim < 2 or inputs.shape[0] == 0:
        got = tuple(inputs.shape) if isinstance(inputs, Tensor) else type(inputs).__name__
        raise CamError(f"inputs: expected a tensor of shape (N, C, ...) with N >= 1; got {got}")
    n_samples = inputs.shape[0]
    layer_name, module = resolve_layer(model, layer)
    autocast_dtype = _autocast_dtype(autocast)
    with torch.inference_mode(False):  # indices get saved for backward: no inference tensors
        choice = _TargetChoice.parse(targets, n_samples, inputs.device)
    autocast_context = torch.autocast(
        device_type=inputs.device.type,
        dtype=autocast_dtype or torch.bfloat16,
        enabled=autocast_dtype is not None,
    )

    if not cam_method.needs_gradients:
        with (
            _eval_mode(model, freeze_parameters=False),
            _capture(module, as_leaf=False) as captured,
            torch.no_grad(),
        ):
            with autocast_context:
                output = model(inputs)
            _check_output(output, n_samples)
            activations = _single(captured, layer_name)
            activations = _reshaped(activations, reshape, inputs.shape, layer_name)
            cams = cam_method.function(activations, None)
        return CamOutput(cams=cams.detach(), output=output.detach().float())

    with (
        _eval_mode(model, freeze_parameters=True),
        _capture(module, as_leaf=True) as captured,
        torch.inference_mode(False),
        torch.enable_grad(),
    ):
        with autocast_context:
            output = model(inputs)
        _check_output(output, n_samples)
        leaf = _single(captured, layer_name)
        if not output.requires_grad:
            raise _not_on_path(layer_name)
        activations = _reshaped(leaf.detach(), reshape, inputs.shape, layer_name)
        scores = choice.scores(output)
        (gradients,) = torch.autograd.grad(scores.sum(), leaf, allow_unused=True)
        if gradients is None:
            raise _not_on_path(layer_name)
        gradients = _reshaped(gradients, reshape, inputs.shape, layer_name)
        cams = cam_method.function(activations, gradients)
    return CamOutput(cams=cams.detach(), output=output.detach().float())


def _autocast_dtype(autocast: bool | torch.dtype) -> torch.dtype | None:
    if autocast is True:
        return torch.bfloat16
    if autocast is False:
        return None
    if isinstance(autocast, torch.dtype):
        return autocast
    raise CamError(f"autocast: expected a bool or a torch.dtype; got {autocast!r}")


def _check_output(output: Any, n_samples: int) -> None:
    if not isinstance(output, Tensor) or output.ndim < 1 or output.shape[0] != n_samples:
        got = tuple(output.shape) if isinstance(output, Tensor) else type(output).__name__
        raise CamError(
            f"model output: expected a tensor with {n_samples} samples, like logits "
            f"({n_samples}, K); got {got}"
        )


def _not_on_path(layer_name: str) -> CamError:
    return CamError(
        f"layer {layer_name!r}: the explained score does not depend on its output; "
        "choose a layer on the path from the input to the output"
    )


def _single(captured: list[Tensor], layer_name: str) -> Tensor:
    if len(captured) != 1:
        raise CamError(
            f"layer {layer_name!r} ran {len(captured)} times in one forward pass; "
            "choose a layer that runs exactly once"
        )
    return captured[0]


def _reshaped(
    activations: Tensor, reshape: ReshapeFn | None, input_shape: torch.Size, layer_name: str
) -> Tensor:
    result = reshape(activations, input_shape) if reshape is not None else activations
    if not isinstance(result, Tensor) or result.ndim < 3:
        got = tuple(result.shape) if isinstance(result, Tensor) else type(result).__name__
        raise CamError(
            f"layer {layer_name!r}: expected activations (N, C, *S) with at least one "
            f"positional axis; got {got}. Pass reshape= for token or channels-last outputs"
        )
    return result


@contextmanager
def _eval_mode(model: nn.Module, *, freeze_parameters: bool) -> Iterator[None]:
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
def _capture(module: nn.Module, *, as_leaf: bool) -> Iterator[list[Tensor]]:
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
        passed_on = leaf.clone()
        if isinstance(output, tuple):
            return (passed_on, *output[1:])
        if isinstance(output, list):
            return [passed_on, *output[1:]]
        return passed_on

    handle = module.register_forward_hook(hook)
    try:
        yield captured
    finally:
        handle.remove()


@dataclass(frozen=True)
class _TargetChoice:
    """Parsed ``targets``: fixed class indices, a callable, or None (top class)."""

    indices: Tensor | None = None
    max_index: int | None = None  # known without a device sync when the indices came from Python
    function: Callable[[Tensor], Tensor] | None = None

    @classmethod
    def parse(cls, targets: Targets, n_samples: int, device: torch.device) -> _TargetChoice:
        if targets is None:
            return cls()
        if callable(targets):
            return cls(function=targets)
        if isinstance(targets, Tensor):
            if targets.ndim == 0:
                targets = targets.expand(n_samples)
            if targets.ndim != 1 or targets.dtype.is_floating_point or targets.dtype == torch.bool:
                raise CamError(
                    "targets: expected a 1-D integer tensor of class indices; got shape "
                    f"{tuple(targets.shape)} dtype {targets.dtype}"
                )
            _check_length(len(targets), n_samples)
            max_index = None
            if targets.device.type == "cpu":  # cheap to check here; no device sync
                _check_nonnegative(int(targets.min()))
                max_index = int(targets.max())
            # clone(): the caller's tensor may be an inference tensor, which autograd cannot save
            indices = targets.to(device=device, dtype=torch.long).clone()
            return cls(indices=indices, max_index=max_index)
        if isinstance(targets, numbers.Integral) and not isinstance(targets, bool):
            values = [int(targets)] * n_samples
        elif isinstance(targets, Sequence) and not isinstance(targets, (str, bytes)):
            if not all(_is_int(t) for t in targets):
                raise CamError(f"targets: expected class indices (ints); got {list(targets)[:8]!r}")
            values = [int(t) for t in targets]
            _check_length(len(values), n_samples)
        else:
            raise CamError(
                "targets: expected None, an int, a sequence of ints, a 1-D integer tensor or a "
                f"callable on the model output; got {type(targets).__name__}"
            )
        _check_nonnegative(min(values))
        indices = torch.tensor(values, dtype=torch.long, device=device)
        return cls(indices=indices, max_index=max(values))

    def scores(self, output: Tensor) -> Tensor:
        """Per-sample scores (N,) to differentiate, taken from ``output``."""
        n_samples = output.shape[0]
        if self.function is not None:
            chosen = self.function(output)
            if not isinstance(chosen, Tensor) or tuple(chosen.shape) != (n_samples,):
                got = tuple(chosen.shape) if isinstance(chosen, Tensor) else type(chosen).__name__
                raise CamError(
                    f"targets: the callable must return a tensor of shape ({n_samples},); got {got}"
                )
            if chosen.dtype.is_floating_point:
                if not chosen.requires_grad:
                    raise CamError(
                        "targets: the callable returned float scores that do not depend on the "
                        "model output; return scores computed from it, or integer class indices"
                    )
                return chosen
            if chosen.dtype == torch.bool or chosen.is_complex():
                raise CamError(
                    f"targets: the callable returned dtype {chosen.dtype}; expected float "
                    "scores or integer class indices"
                )
            return _gather_logits(output, chosen.detach().long())
        if self.indices is None:
            return _gather_logits(output, output.detach().argmax(dim=1))
        if self.max_index is not None and output.ndim == 2 and self.max_index >= output.shape[1]:
            raise CamError(
                f"targets: class index {self.max_index} out of range for a model with "
                f"{output.shape[1]} classes"
            )
        return _gather_logits(output, self.indices)


def _gather_logits(output: Tensor, indices: Tensor) -> Tensor:
    if output.ndim != 2:
        raise CamError(
            f"targets: class indices need logits of shape (N, K); the model returned "
            f"{tuple(output.shape)}; pass a callable that returns per-sample scores"
        )
    return output.gather(1, indices[:, None])[:, 0]


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_length(length: int, n_samples: int) -> None:
    if length != n_samples:
        raise CamError(f"targets: expected one class index per sample ({n_samples}); got {length}")


def _check_nonnegative(smallest: int) -> None:
    if smallest < 0:
        raise CamError(f"targets: class indices must be >= 0; got {smallest}")
