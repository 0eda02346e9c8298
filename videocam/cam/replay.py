"""Maps from kept layer outputs: a forward that records the target layer's output, and the head
alone replayed on outputs recorded earlier, with the gradients of any class.

When the class to explain is known only after every window has run (``--target auto``), the
single pass can keep each window's layer output instead of the maps of many candidate classes,
and take the chosen class's maps at the end by replaying the part of the model after the layer
(the "head") on them: the model runs on a stand-in input (:class:`StandIn`: one sample of zeros,
or, for a head that takes its batch size from the input, one small sample per row), the
layer's output replaced by the kept rows, so the layers before it do a fraction of a forward's
work instead of running on every window again. This is exact only where the head depends on the
input through the layer alone (no skip connection around it): the caller checks that the
replayed logits equal those of the original forward, as :mod:`videocam.cam.perturbation` does
for Ablation-CAM's replay.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from videocam.cam.engine import (
    CamOutput,
    autocast_for,
    class_maps,
    logit_classes,
    target_layer,
)
from videocam.cam.hooks import (
    capture,
    check_output,
    eval_mode,
    replace_output,
    reshaped,
    single_capture,
)
from videocam.cam.methods import get_method
from videocam.cam.targets import Classes
from videocam.errors import CamError
from videocam.models.layers import ReshapeFn

__all__ = [
    "STAND_IN_SIDES",
    "StandIn",
    "forward_with_layer_output",
    "replay_classes",
    "replay_stand_in",
]

#: Sides of the smaller stand-in inputs a replay tries (see :func:`replay_stand_in`).
STAND_IN_SIDES = (32, 64)


def forward_with_layer_output(
    model: nn.Module,
    inputs: Tensor,
    layer: str | nn.Module,
    *,
    autocast: bool | torch.dtype = False,
) -> tuple[Tensor, Tensor]:
    """One forward without gradients: the model's output and the target layer's raw output.

    Args:
        model: returns logits (N, K) for ``inputs``.
        inputs: float, shape (N, C, ...), on the model's device.
        layer: dotted name or module of the target layer.
        autocast: as in :func:`~videocam.cam.cam_and_output`.

    Returns:
        ``(output (N, K), layer output as the layer returns it)``, both detached.
    """
    layer_name, module = target_layer(model, layer)
    with eval_mode(model, freeze_parameters=False), capture(module, as_leaf=False) as captured:
        with torch.no_grad(), autocast_for(inputs, autocast):
            output = model(inputs)
        check_output(output, int(inputs.shape[0]))
        raw = single_capture(captured, layer_name)
    return output.detach(), raw.detach()


@dataclass(frozen=True)
class StandIn:
    """The input a head replay runs the model on: zeros of ``shape``, with one sample
    (``batched`` False) or as many as the replayed rows (a head that takes its batch size from
    the input, such as efficientnet_lite's ``x.view(bs, -1)``). ``shape`` may be smaller than
    the real inputs' where the layers before the target accept it: those layers' work is then
    a fraction of a forward."""

    shape: tuple[int, ...]
    batched: bool

    def tensor(self, n_rows: int, device: torch.device) -> Tensor:
        """The stand-in input for ``n_rows`` replayed rows."""
        return torch.zeros((n_rows if self.batched else 1, *self.shape), device=device)


def replay_classes(
    model: nn.Module,
    layer: str | nn.Module,
    layer_outputs: Tensor,
    classes: Classes,
    method: str = "gradcam",
    *,
    stand_in: StandIn,
    input_shape: Sequence[int],
    reshape: ReshapeFn | None = None,
    autocast: bool | torch.dtype = False,
) -> CamOutput:
    """The maps of M classes for B kept layer outputs, the head replayed on them alone.

    Args:
        model: the model that produced ``layer_outputs``.
        layer: dotted name or module of the target layer.
        layer_outputs: the layer's raw outputs of B samples, one row each, as
            :func:`forward_with_layer_output` returned them.
        classes: as in :func:`~videocam.cam.cam_and_output_classes`, for the B samples.
        method: a gradient method or a class-free one (not Score-CAM or Ablation-CAM).
        stand_in: what the model runs on (see :func:`replay_stand_in`).
        input_shape: one real input's shape (C, ...), for ``reshape``.
        reshape: turns the layer output into (B, C, *S).
        autocast: as in :func:`forward_with_layer_output`.

    Returns:
        :class:`~videocam.cam.CamOutput`: ``cams`` float32 (B, M, *S) and the replayed
        ``output`` (B, K): compare it with the original forward's before trusting the maps.

    Raises:
        CamError: a perturbation method; the head did not return B rows.
    """
    cam_method = get_method(method)
    if cam_method.perturbation is not None:
        raise CamError(f"method {method!r} cannot be replayed from kept layer outputs")
    layer_name, module = target_layer(model, layer)
    n_samples = int(layer_outputs.shape[0])
    shape = torch.Size((n_samples, *input_shape))
    sample = stand_in.tensor(n_samples, layer_outputs.device)
    with (
        eval_mode(model, freeze_parameters=True),
        torch.inference_mode(False),
        torch.enable_grad(),
    ):
        leaf = layer_outputs.detach().clone().requires_grad_(cam_method.needs_gradients)
        # The head gets a copy: an in-place op there must not alter the kept rows.
        with replace_output(module, leaf.clone()), autocast_for(sample, autocast):
            output = model(sample)
        check_output(output, n_samples)
        chosen = logit_classes(classes, output)
        activations = reshaped(leaf.detach(), reshape, shape, layer_name)
        cams = class_maps(output, leaf, activations, chosen, cam_method, reshape, shape, layer_name)
    return CamOutput(cams=cams.detach(), output=output.detach().float())


def replay_stand_in(
    model: nn.Module,
    sample: Tensor,
    layer: str | nn.Module,
    *,
    autocast: bool | torch.dtype = False,
    smaller: Sequence[int] = STAND_IN_SIDES,
) -> StandIn | None:
    """How the head of ``model`` after ``layer`` can be replayed on kept layer outputs, or None.

    ``sample`` (one input (1, C, ...), random) runs once; its layer output, twice over, is
    replayed on zero stand-ins: one sample of the real shape, then two samples whose last two
    sides are each of ``smaller`` (below the real ones). The first stand-in whose two replayed
    rows give the sample's own output is returned: the head then reads nothing of the input but
    through the layer (and, for a batched stand-in, its batch size). The caller still compares
    every replayed output with the original one.
    """
    output, raw = forward_with_layer_output(model, sample, layer, autocast=autocast)
    if raw.shape[0] != 1 or output.ndim != 2:
        return None  # the layer folds an axis into the batch, or the model is not a classifier
    _, module = target_layer(model, layer)
    tolerance = 1e-4 if autocast is False else 3e-2
    scale = float(output.abs().max()) or 1.0
    real = tuple(int(v) for v in sample.shape[1:])
    tries = [StandIn(real, batched=False)]
    tries += [
        StandIn((*real[:-2], side, side), batched=True)
        for side in sorted(smaller)
        if side < min(real[-2:])
    ]
    for stand_in in tries:
        try:
            with (
                eval_mode(model, freeze_parameters=False),
                torch.no_grad(),
                replace_output(module, torch.cat([raw, raw])),
                autocast_for(sample, autocast),
            ):
                replayed = model(stand_in.tensor(2, sample.device))
        except (RuntimeError, ValueError, IndexError):
            continue
        if not isinstance(replayed, Tensor) or tuple(replayed.shape) != (2, output.shape[1]):
            continue
        if float((replayed.float() - output.float()).abs().max()) <= tolerance * scale:
            return stand_in
    return None
