"""Perturbation CAMs (Score-CAM, Ablation-CAM): one perturbed forward per channel of the target
layer, batched by memory, and the maps of every explained class from those same forwards.

Score-CAM multiplies the input by each channel's upsampled, min-max scaled map and runs the
whole model on each product. Ablation-CAM sets each channel of the layer's output to 0; the
model runs once more on the untouched input, with the layer's output replaced by a batch of
ablated copies, so the layers before the target layer run once per batch of channels rather
than once per channel ("head replay"). Where the head cannot take a batch larger than its input
(it mixes in a tensor of the input's batch size, say), the replay is detected — the untouched
copy must reproduce the model's own output — and every batch falls back to running the input
repeated, as pytorch-grad-cam does.

Batches: as many perturbed copies per forward as fit :data:`PERTURBATION_BATCH_BYTES` (on a GPU,
also at most :data:`CUDA_FREE_SHARE` of its free memory), the bytes of one copy estimated from
the untouched forward: the input plus three times the largest output of any layer; once the
head is known to replay alone, three times the larger of the layer's output and the largest
output after it, since the replay holds only those (r3d_18's layer4, one 16-frame window: 6
copies a forward at first, then 445: 2.4 s instead of 42.5 s for its 512 channels).

Per window, the perturbed forwards run once: their outputs give the scores of every class the
caller asks for (the M classes of :func:`~videocam.cam.cam_and_output_classes`, candidates and
tracks alike), so following several classes costs no extra forward.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from videocam.cam.hooks import capture, check_output, replace_output, reshaped, single_capture
from videocam.cam.methods import CamMethod, scorecam_masks
from videocam.errors import CamError
from videocam.models.layers import ReshapeFn

__all__ = [
    "CUDA_FREE_SHARE",
    "MAX_PERTURBATION_BATCH",
    "PERTURBATION_BATCH_BYTES",
    "PerturbationResult",
    "perturbation_cams",
]

#: Bytes the perturbed copies of one forward may take (the estimate of the module docstring).
PERTURBATION_BATCH_BYTES = 256 * 2**20
#: On a GPU, the share of its free memory the perturbed copies of one forward may take.
CUDA_FREE_SHARE = 0.25
#: The most perturbed copies in one forward.
MAX_PERTURBATION_BATCH = 512

#: ``(sample n, output rows (B, K)) -> scores (B, M)``: the explained scores of sample ``n``.
ScoreFn = Callable[[int, Tensor], Tensor]
#: Built from the untouched output (N, K): the score function of every sample.
ScoreFactory = Callable[[Tensor], ScoreFn]


@dataclass(frozen=True)
class PerturbationResult:
    """What :func:`perturbation_cams` gives.

    Attributes:
        cams: float32 (N, M, *S), >= 0.
        output: float32, the untouched output (N, K).
        batch: perturbed copies per forward.
        head_replay: Ablation-CAM replayed the head alone (None for Score-CAM).
    """

    cams: Tensor
    output: Tensor
    batch: int
    head_replay: bool | None


def perturbation_cams(
    model: nn.Module,
    inputs: Tensor,
    module: nn.Module,
    layer_name: str,
    method: CamMethod,
    scores_for: ScoreFactory,
    *,
    reshape: ReshapeFn | None,
    autocast_context: Any,
    batch_bytes: int | None = None,
) -> PerturbationResult:
    """The maps of a perturbation method, for M scores per sample.

    The caller holds the model in eval mode; this runs under ``torch.no_grad``.

    Args:
        model: the model.
        inputs: float (N, C, *S_in).
        module: the target layer.
        layer_name: its name, for messages.
        method: a method with ``perturbation`` set.
        scores_for: given the untouched output, the explained scores of each sample's rows.
        reshape: the layer's reshape to (N, C, *S).
        autocast_context: entered around every forward.
        batch_bytes: the memory budget of one forward (default :data:`PERTURBATION_BATCH_BYTES`).
    """
    n_samples = int(inputs.shape[0])
    with torch.no_grad():
        with (
            capture(module, as_leaf=False) as captured,
            _largest_output(model, module) as largest,
            autocast_context,
        ):
            output = model(inputs)
        check_output(output, n_samples)
        raw = single_capture(captured, layer_name)
        activations = reshaped(raw, reshape, inputs.shape, layer_name).float()
        output = output.float()
        score_fn = scores_for(output)
        base = torch.stack([score_fn(n, output[n : n + 1])[0] for n in range(n_samples)])
        n_channels = int(activations.shape[1])
        input_bytes = inputs[:1].numel() * inputs.element_size()
        per_copy = input_bytes + 3 * (largest[0] // n_samples)
        rows = _rows_per_forward(per_copy, inputs.device, batch_bytes, n_channels)
        # A replayed head holds one copy of the layer's output and what follows it.
        raw_bytes = raw.numel() * raw.element_size() // n_samples
        per_replayed = 3 * max(raw_bytes, largest[1] // n_samples)
        replay_rows = _rows_per_forward(per_replayed, inputs.device, batch_bytes, n_channels)
        runner: _Masked | _Ablated
        if method.perturbation == "mask":
            runner = _Masked(model, inputs, activations, autocast_context)
        elif method.perturbation == "ablate":
            runner = _Ablated(model, inputs, module, raw, reshape, output, autocast_context)
        else:
            raise CamError(f"method {method.name!r} is not a perturbation method")

        def channel_scores_of(n: int) -> Tensor:
            """(M, C): the scores with each channel perturbed, in batches of copies (larger
            once the head is known to replay alone)."""
            parts, start = [], 0
            while start < n_channels:
                step = replay_rows if runner.head_replay else rows
                stop = min(start + step, n_channels)
                parts.append(score_fn(n, runner.outputs(n, start, stop)))
                start = stop
            return torch.cat(parts).T

        channel_scores = torch.stack([channel_scores_of(n) for n in range(n_samples)])
        cams = method.function(activations, channel_scores, base)
    head_replay = runner.head_replay if isinstance(runner, _Ablated) else None
    batch = replay_rows if head_replay else rows
    return PerturbationResult(cams=cams, output=output, batch=batch, head_replay=head_replay)


def _rows_per_forward(per_copy: int, device: torch.device, budget: int | None, limit: int) -> int:
    """Perturbed copies per forward: the budget over the bytes of one copy, 1 to ``limit``."""
    budget = PERTURBATION_BATCH_BYTES if budget is None else budget
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        budget = min(budget, int(CUDA_FREE_SHARE * free))
    return int(max(1, min(limit, MAX_PERTURBATION_BATCH, budget // max(1, per_copy))))


@contextmanager
def _largest_output(model: nn.Module, layer: nn.Module) -> Iterator[list[int]]:
    """The bytes of the largest tensor any leaf module returns during the forward, in ``[0]``;
    of those returned after ``layer`` (the head a replay runs), in ``[1]``."""
    largest = [0, 0]
    after = [False]

    def hook(_module: nn.Module, _args: Any, output: Any) -> None:
        for value in output if isinstance(output, (tuple, list)) else (output,):
            if isinstance(value, Tensor):
                size = value.numel() * value.element_size()
                largest[0] = max(largest[0], size)
                if after[0]:
                    largest[1] = max(largest[1], size)

    def passed(_module: nn.Module, _args: Any, _output: Any) -> None:
        after[0] = True

    handles = [m.register_forward_hook(hook) for m in model.modules() if not any(m.children())]
    handles.append(layer.register_forward_hook(passed))
    try:
        yield largest
    finally:
        for handle in handles:
            handle.remove()


class _Masked:
    """Score-CAM's forwards: the input times the masks of channels ``start:stop``."""

    head_replay = None

    def __init__(
        self, model: nn.Module, inputs: Tensor, activations: Tensor, autocast_context: Any
    ) -> None:
        self.model, self.inputs, self.activations = model, inputs, activations
        self.autocast_context = autocast_context

    def outputs(self, n: int, start: int, stop: int) -> Tensor:
        masks = scorecam_masks(self.activations[n : n + 1, start:stop], self.inputs.shape[2:])[0]
        masked = self.inputs[n][None] * masks[:, None].to(self.inputs.dtype)
        with self.autocast_context:
            output = self.model(masked)
        check_output(output, stop - start)
        return output.float()


class _Ablated:
    """Ablation-CAM's forwards: the layer's output of sample ``n`` with one of the channels
    ``start:stop`` set to 0 per copy (see the module docstring for the head replay)."""

    def __init__(
        self,
        model: nn.Module,
        inputs: Tensor,
        module: nn.Module,
        raw: Tensor,
        reshape: ReshapeFn | None,
        output: Tensor,
        autocast_context: Any,
    ) -> None:
        self.model, self.inputs, self.module, self.raw = model, inputs, module, raw
        self.output, self.autocast_context = output, autocast_context
        # The layer's rows per sample: 1, or more where a model folds an axis into the batch
        # (TimeSformer's per-frame (N·T, 1 + h·w, C) and per-patch (N·h·w, T, C) layouts).
        self.rows = int(raw.shape[0]) // int(inputs.shape[0])
        self.positions = _channel_positions(raw[: self.rows], reshape, inputs.shape)
        #: None until the first batch says whether the head can be replayed alone.
        self.head_replay: bool | None = None
        # Agreement of the replayed untouched copy with the model's own output.
        self.tolerance = 1e-4 if raw.dtype == torch.float32 else 3e-2

    def outputs(self, n: int, start: int, stop: int) -> Tensor:
        channels = torch.arange(start, stop, device=self.raw.device)
        copies = self._ablated(n, channels)
        if self.head_replay is None:
            # The untouched copy first: its output must be the model's own.
            probe = torch.cat([self._sample(n), copies])
            result = self._replay(n, probe)
            reference = self.output[n]
            scale = float(reference.abs().max()) or 1.0
            self.head_replay = (
                result is not None
                and result.shape[0] == len(probe) // self.rows
                and float((result[0] - reference).abs().max()) <= self.tolerance * scale
            )
            if self.head_replay:
                assert result is not None
                return result[1:]
        if self.head_replay:
            result = self._replay(n, copies)
            if result is not None and result.shape[0] == len(channels):
                return result
            raise CamError(
                "ablationcam: replaying the head on ablated activations gave "
                f"{None if result is None else tuple(result.shape)}, expected {len(channels)} rows"
            )
        return self._repeated(n, copies)

    def _sample(self, n: int) -> Tensor:
        """Sample ``n``'s rows of the layer's output."""
        return self.raw[n * self.rows : (n + 1) * self.rows]

    def _ablated(self, n: int, channels: Tensor) -> Tensor:
        """Copies of sample ``n``'s layer output, copy ``i`` with channel ``channels[i]`` = 0,
        stacked as the layer returns them (``rows`` rows per copy)."""
        sample = self._sample(n)
        copies = sample.expand(len(channels), *sample.shape).clone()
        if self.positions is None:
            copies[torch.arange(len(channels)), 0, channels] = 0
        else:
            flat = copies.view(len(channels), -1)
            flat[torch.arange(len(channels))[:, None], self.positions[channels]] = 0
        return copies.flatten(0, 1)

    def _replay(self, n: int, copies: Tensor) -> Tensor | None:
        """The model on sample ``n`` alone, the layer's output replaced by ``copies`` (B rows);
        None where the head cannot run on more rows than its input has."""
        try:
            with replace_output(self.module, copies), self.autocast_context:
                output = self.model(self.inputs[n : n + 1])
        except torch.OutOfMemoryError:
            raise
        except (RuntimeError, ValueError):
            return None
        return output.float() if isinstance(output, Tensor) else None

    def _repeated(self, n: int, copies: Tensor) -> Tensor:
        """The model on sample ``n`` repeated B times, the layer's output replaced by ``copies``."""
        count = len(copies) // self.rows
        repeated = self.inputs[n : n + 1].expand(count, *self.inputs.shape[1:]).contiguous()
        with replace_output(self.module, copies), self.autocast_context:
            output = self.model(repeated)
        check_output(output, count)
        return output.float()


def _channel_positions(
    raw: Tensor, reshape: ReshapeFn | None, input_shape: torch.Size
) -> Tensor | None:
    """Where each channel of the reshaped activations lies in the layer's raw output: long
    (C, P) flat indices into one sample's output (``raw``: that sample's rows); None when the
    output is already (N, C, *S).

    Found by passing the flat indices themselves through the reshape, which only rearranges
    (and may drop) elements.
    """
    if reshape is None:
        return None
    index = torch.arange(raw.numel(), dtype=torch.float64, device=raw.device)
    mapped = reshape(index.reshape(raw.shape), torch.Size((1, *input_shape[1:])))
    return mapped[0].flatten(1).round().long()
