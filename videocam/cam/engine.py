"""The CAM engine: one forward pass gives the class activation maps and the logits.

Cost (about one plain forward; benchmarks/cam_overhead.py): gradients are taken at the target
layer only. Parameters are frozen for the duration of the call, and the target layer's forward
hook hands the rest of the model a fresh leaf in place of the layer's output, so nothing before
the layer records a graph and ``torch.autograd.grad`` runs back through the head alone. No
parameter ``.grad`` is ever written.

Side effects: none. Hooks are removed, each module's training flag and each parameter's
``requires_grad`` are restored in ``finally`` blocks, also when the forward raises; inputs are
never modified. Device and dtype follow the model and its inputs; nothing is copied to the host.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from videocam.cam.hooks import capture, check_output, eval_mode, reshaped, single_capture
from videocam.cam.methods import CamMethod, get_method
from videocam.cam.perturbation import (
    PerturbationResult,
    ScoreFactory,
    ScoreFn,
    perturbation_cams,
)
from videocam.cam.targets import (
    Classes,
    TargetChoice,
    Targets,
    class_matrix,
    gather_logits,
)
from videocam.errors import CamError, LayerNotFoundError
from videocam.models.layers import ReshapeFn, layer_name, resolve_layer

__all__ = [
    "CamOutput",
    "ReshapeFn",
    "Targets",
    "cam_and_output",
    "cam_and_output_classes",
    "compute_cam",
    "target_layer",
    "upsample_cam",
]

#: Gradient elements computed at once by :func:`cam_and_output_classes` (128 MB of float32):
#: the classes are processed in chunks of at most this many ``M x N x C x *S`` elements.
_GRADIENT_CHUNK_ELEMENTS = 2**25

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


def target_layer(model: nn.Module, layer: str | nn.Module) -> tuple[str, nn.Module]:
    """The target layer inside ``model`` and its canonical name (a name, or the module itself).

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
    module = resolve_layer(model, layer)
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
        The raw map, ReLU applied, not normalised: float32, shape (N, *S) (or
            (N, *inputs.shape[2:]) with ``upsample``), >= 0, detached.
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
    forward runs under ``torch.no_grad``. ``scorecam`` and ``ablationcam`` run one perturbed
    forward per channel of the layer (batched by memory, :mod:`videocam.cam.perturbation`) and
    score each with the target: the chosen logit, or the callable's float score on the
    perturbed outputs.

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
    cam_method, n_samples, layer_name, module, autocast_context = _prepare(
        model, inputs, layer, method, autocast
    )
    with torch.inference_mode(False):  # indices get saved for backward: no inference tensors
        choice = TargetChoice.parse(targets, n_samples, inputs.device)

    if cam_method.perturbation is not None:
        result = _perturbation(
            model,
            inputs,
            (module, layer_name, cam_method),
            lambda output: _target_scores(choice, output),
            reshape,
            autocast_context,
        )
        return CamOutput(cams=result.cams[:, 0], output=result.output)

    if not cam_method.needs_gradients:
        with (
            eval_mode(model, freeze_parameters=False),
            capture(module, as_leaf=False) as captured,
            torch.no_grad(),
        ):
            with autocast_context:
                output = model(inputs)
            check_output(output, n_samples)
            activations = single_capture(captured, layer_name)
            activations = reshaped(activations, reshape, inputs.shape, layer_name)
            cams = cam_method.function(activations, None)
        return CamOutput(cams=cams.detach(), output=output.detach().float())

    with (
        eval_mode(model, freeze_parameters=True),
        capture(module, as_leaf=True) as captured,
        torch.inference_mode(False),
        torch.enable_grad(),
    ):
        with autocast_context:
            output = model(inputs)
        check_output(output, n_samples)
        leaf = single_capture(captured, layer_name)
        if not output.requires_grad:
            raise _not_on_path(layer_name)
        activations = reshaped(leaf.detach(), reshape, inputs.shape, layer_name)
        scores = choice.scores(output)
        (gradients,) = torch.autograd.grad(scores.sum(), leaf, allow_unused=True)
        if gradients is None:
            raise _not_on_path(layer_name)
        gradients = reshaped(gradients, reshape, inputs.shape, layer_name)
        cams = cam_method.function(activations, gradients)
    return CamOutput(cams=cams.detach(), output=output.detach().float())


def _perturbation(
    model: nn.Module,
    inputs: Tensor,
    layer: tuple[nn.Module, str, CamMethod],
    scores_for: ScoreFactory,
    reshape: ReshapeFn | None,
    autocast_context: Any,
) -> PerturbationResult:
    """A perturbation method's maps (``layer``: the module, its name and the method), the
    model held in eval mode meanwhile."""
    module, name, cam_method = layer
    with eval_mode(model, freeze_parameters=False):
        return perturbation_cams(
            model,
            inputs,
            module,
            name,
            cam_method,
            scores_for,
            reshape=reshape,
            autocast_context=autocast_context,
        )


def _target_scores(choice: TargetChoice, output: Tensor) -> ScoreFn:
    """The explained score of sample ``n`` on a batch of its perturbed outputs: (B, 1)."""
    indices = choice.class_indices(output)
    if indices is not None:
        if output.ndim != 2:
            gather_logits(output, indices)  # raises: class indices need logits (N, K)
        return lambda n, rows: rows[:, indices[n]][:, None]

    def from_callable(n: int, rows: Tensor) -> Tensor:
        values = choice.called(rows)
        if not values.dtype.is_floating_point:
            raise CamError("targets: the callable returned class indices for perturbed outputs")
        return values.float()[:, None]

    return from_callable


def _prepare(
    model: nn.Module,
    inputs: Tensor,
    layer: str | nn.Module,
    method: str,
    autocast: bool | torch.dtype,
) -> tuple[CamMethod, int, str, nn.Module, torch.autocast]:
    """What every CAM call checks and resolves first: (method, N, layer name, layer module,
    the autocast context)."""
    cam_method = get_method(method)
    if not isinstance(inputs, Tensor) or inputs.ndim < 2 or inputs.shape[0] == 0:
        got = tuple(inputs.shape) if isinstance(inputs, Tensor) else type(inputs).__name__
        raise CamError(f"inputs: expected a tensor of shape (N, C, ...) with N >= 1; got {got}")
    layer_name, module = target_layer(model, layer)
    return cam_method, int(inputs.shape[0]), layer_name, module, autocast_for(inputs, autocast)


def autocast_for(inputs: Tensor, autocast: bool | torch.dtype) -> torch.autocast:
    """The autocast context of a CAM call on ``inputs``' device (disabled for ``False``)."""
    autocast_dtype = _autocast_dtype(autocast)
    return torch.autocast(
        device_type=inputs.device.type,
        dtype=autocast_dtype or torch.bfloat16,
        enabled=autocast_dtype is not None,
    )


def cam_and_output_classes(
    model: nn.Module,
    inputs: Tensor,
    layer: str | nn.Module,
    classes: Classes,
    method: str = "gradcam",
    *,
    reshape: ReshapeFn | None = None,
    autocast: bool | torch.dtype = False,
) -> CamOutput:
    """One forward pass, the maps of several classes per sample.

    The forward runs once; the gradients of the M chosen logits of every sample are taken in one
    batched backward through the head alone (``torch.autograd.grad(..., is_grads_batched=True)``,
    the layers before the target layer record no graph). Map ``[n, m]`` equals what
    :func:`cam_and_output` gives for sample ``n`` with target ``classes[n, m]``.

    Args:
        model: returns logits (N, K) for ``inputs``.
        inputs: float, shape (N, C, ...), on the model's device; not modified.
        layer: dotted name or module of the target layer.
        classes: class indices, the same M for every sample (a sequence of ints or a 1-D integer
            tensor) or M per sample (an integer tensor (N, M)); or a callable on the logits
            returning either form, so the choice can depend on the output without leaving the
            device.
        method: one of :data:`videocam.cam.METHODS`. ``eigencam`` gives one map per sample,
            broadcast over the M classes; ``scorecam`` and ``ablationcam`` take the M classes'
            scores from the same perturbed forwards (one set per sample, see
            :mod:`videocam.cam.perturbation`).
        reshape: turns the layer output into (N, C, *S); see :data:`ReshapeFn`.
        autocast: as in :func:`cam_and_output`; CAM arithmetic stays in float32.

    Returns:
        :class:`CamOutput` with ``cams`` float32 (N, M, *S), >= 0, and ``output`` float32 (N, K),
        both detached.

    Raises:
        LayerNotFoundError: unknown layer.
        CamError: bad classes, method or inputs; the layer did not run exactly once, or the
            logits do not depend on it.
    """
    cam_method, n_samples, layer_name, module, autocast_context = _prepare(
        model, inputs, layer, method, autocast
    )
    if cam_method.perturbation is not None:

        def chosen_scores(output: Tensor) -> ScoreFn:
            chosen = logit_classes(classes, output)
            return lambda n, rows: rows[:, chosen[n]]

        result = _perturbation(
            model,
            inputs,
            (module, layer_name, cam_method),
            chosen_scores,
            reshape,
            autocast_context,
        )
        return CamOutput(cams=result.cams, output=result.output)

    needs_gradients = cam_method.needs_gradients
    with (
        eval_mode(model, freeze_parameters=needs_gradients),
        capture(module, as_leaf=needs_gradients) as captured,
        torch.inference_mode(False),
        torch.enable_grad() if needs_gradients else torch.no_grad(),
    ):
        with autocast_context:
            output = model(inputs)
        check_output(output, n_samples)
        chosen = logit_classes(classes, output)
        leaf = single_capture(captured, layer_name)
        activations = reshaped(leaf.detach(), reshape, inputs.shape, layer_name)
        cams = class_maps(
            output, leaf, activations, chosen, cam_method, reshape, inputs.shape, layer_name
        )
    return CamOutput(cams=cams.detach(), output=output.detach().float())


def logit_classes(classes: Classes, output: Tensor) -> Tensor:
    """``classes`` as a long (N, M) matrix for logits ``output`` (N, K)."""
    if output.ndim != 2:
        raise CamError(
            f"classes: class indices need logits of shape (N, K); the model returned "
            f"{tuple(output.shape)}"
        )
    return class_matrix(classes, output)


def class_maps(
    output: Tensor,
    leaf: Tensor,
    activations: Tensor,
    chosen: Tensor,
    cam_method: CamMethod,
    reshape: ReshapeFn | None,
    input_shape: torch.Size,
    layer_name: str,
) -> Tensor:
    """The maps of M classes per sample from a forward that recorded ``leaf``.

    The gradients of the chosen logits are taken in chunks of classes, each in one batched
    backward through the head (the graph from ``leaf`` to ``output``). A class-free method
    (EigenCAM) gives one map per sample, repeated for the M classes.

    Args:
        output: logits (N, K), with a graph back to ``leaf``.
        leaf: the layer's raw output (requires grad, for a gradient method).
        activations: ``leaf`` detached and reshaped to (N, C, *S).
        chosen: long (N, M): the classes of each sample.
        cam_method: a gradient method or a class-free one.
        reshape: turns the layer output into (N, C, *S).
        input_shape: the shape of the model input (for ``reshape``).
        layer_name: for error messages.

    Returns:
        float32 (N, M, *S), >= 0.
    """
    if cam_method.class_free:
        cams = cam_method.function(activations, None)
        return cams[:, None].expand(-1, chosen.shape[1], *cams.shape[1:])
    if not output.requires_grad:
        raise _not_on_path(layer_name)
    n_samples, n_classes = chosen.shape
    step = max(1, _GRADIENT_CHUNK_ELEMENTS // max(1, leaf.numel()))
    parts = []
    for start in range(0, n_classes, step):
        block = chosen[:, start : start + step].T  # (m, N)
        m = block.shape[0]
        one_hot = torch.zeros((m, *output.shape), dtype=output.dtype, device=output.device)
        one_hot.scatter_(2, block[:, :, None], 1.0)
        gradients = _batched_gradients(output, leaf, one_hot)
        if gradients is None:
            raise _not_on_path(layer_name)
        gradients = reshaped(gradients.flatten(0, 1), reshape, input_shape, layer_name)
        repeated = activations.expand(m, *activations.shape).flatten(0, 1)
        maps = cam_method.function(repeated, gradients)
        parts.append(maps.unflatten(0, (m, n_samples)).transpose(0, 1))
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)


def _batched_gradients(output: Tensor, leaf: Tensor, one_hot: Tensor) -> Tensor | None:
    """d(one_hot[j] . output)/d(leaf) for every j: shape (m, *leaf.shape).

    One vectorised backward (``is_grads_batched``); a loop of backwards where an operation of
    the head has no batching rule.
    """
    try:
        (gradients,) = torch.autograd.grad(
            output,
            leaf,
            grad_outputs=one_hot,
            retain_graph=True,  # the next chunk of classes, or the fallback below, needs it
            is_grads_batched=True,
            allow_unused=True,
        )
        return gradients
    except torch.OutOfMemoryError:
        raise
    except (RuntimeError, NotImplementedError):
        pass
    columns = []
    for j in range(one_hot.shape[0]):
        (gradient,) = torch.autograd.grad(
            output,
            leaf,
            grad_outputs=one_hot[j],
            retain_graph=True,
            allow_unused=True,
        )
        if gradient is None:
            return None
        columns.append(gradient)
    return torch.stack(columns)


def _autocast_dtype(autocast: bool | torch.dtype) -> torch.dtype | None:
    if autocast is True:
        return torch.bfloat16
    if autocast is False:
        return None
    if isinstance(autocast, torch.dtype):
        return autocast
    raise CamError(f"autocast: expected a bool or a torch.dtype; got {autocast!r}")


def _not_on_path(layer_name: str) -> CamError:
    return CamError(
        f"layer {layer_name!r}: the explained score does not depend on its output; "
        "choose a layer on the path from the input to the output"
    )
