"""What the CAM engine explains per sample: class indices, a callable on the model output, or
the top class; several classes per sample as a matrix.

Indices are validated on the host before they go to the device, so a bad index is an error
here, not a device-side assert (which, on CUDA, poisons the context for every later call in
the process). :class:`ClassIndices` is the exception that keeps the hot loop free of host
synchronisations: indices already on the device and known to be valid (built once per run,
or the top-k of the model's own output), used as they are."""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from videocam.errors import CamError

__all__ = ["ClassIndices", "Classes", "TargetChoice", "Targets", "class_matrix", "gather_logits"]

Targets = int | Sequence[int] | Tensor | Callable[[Tensor], Tensor] | None
"""What to explain, per sample. See :func:`cam_and_output`."""


@dataclass(frozen=True)
class ClassIndices:
    """Class indices already on the model's device and known to be in range: shape (M,) or
    (N, M), long. Build them once with :meth:`on` (validated on the host, one copy); the
    engine then uses them with no check and no copy.
    """

    tensor: Tensor
    #: The largest index when known (checked against the model's classes on the host).
    largest: int | None = None

    @classmethod
    def on(
        cls, device: torch.device, values: Sequence[int], n_classes: int | None = None
    ) -> ClassIndices:
        """Validate ``values`` (ints, >= 0, < ``n_classes`` when given) and copy them once."""
        if not values or not all(_is_int(v) for v in values):
            raise CamError(f"classes: expected class indices (ints); got {list(values)[:8]!r}")
        ints = [int(v) for v in values]
        _check_nonnegative(min(ints))
        if n_classes is not None and max(ints) >= n_classes:
            raise _out_of_range(max(ints), n_classes)
        return cls(torch.tensor(ints, dtype=torch.long).to(device), max(ints))


Classes = Sequence[int] | Tensor | ClassIndices | Callable[[Tensor], Tensor | ClassIndices]
"""Several classes to explain per sample. See :func:`cam_and_output_classes`."""


def class_matrix(classes: Classes, output: Tensor) -> Tensor:
    """``classes`` as a long tensor (N, M) on the output's device, range-checked.

    Host data (ints, CPU tensors) is checked before the copy. A tensor already on another
    device is checked with one host synchronisation (pass :class:`ClassIndices` to avoid it).
    """
    n_samples, n_logits = output.shape
    chosen: Any = classes(output.detach()) if callable(classes) else classes
    if isinstance(chosen, ClassIndices):
        if chosen.largest is not None and chosen.largest >= n_logits:
            raise _out_of_range(chosen.largest, n_logits)
        matrix = chosen.tensor
    elif isinstance(chosen, Tensor):
        if chosen.dtype.is_floating_point or chosen.dtype == torch.bool or chosen.is_complex():
            raise CamError(f"classes: expected integer class indices; got dtype {chosen.dtype}")
        if chosen.numel():
            # On the host: cheap. On a device: one synchronisation, but never a device assert.
            smallest, largest = (int(v) for v in torch.aminmax(chosen))
            _check_nonnegative(smallest)
            if largest >= n_logits:
                raise _out_of_range(largest, n_logits)
        matrix = chosen.to(device=output.device, dtype=torch.long)
    elif isinstance(chosen, Sequence) and not isinstance(chosen, (str, bytes)):
        matrix = ClassIndices.on(output.device, chosen, n_logits).tensor
    else:
        raise CamError(
            "classes: expected a sequence of ints, an integer tensor (M,) or (N, M), "
            f"ClassIndices, or a callable on the logits; got {type(chosen).__name__}"
        )
    if matrix.ndim == 1:
        matrix = matrix[None].expand(n_samples, -1)
    if matrix.ndim != 2 or matrix.shape[0] != n_samples or matrix.shape[1] == 0:
        raise CamError(
            f"classes: expected shape (M,) or ({n_samples}, M) with M >= 1; "
            f"got {tuple(matrix.shape)}"
        )
    return matrix


@dataclass(frozen=True)
class TargetChoice:
    """Parsed ``targets``: fixed class indices, a callable, or None (top class)."""

    indices: Tensor | None = None
    max_index: int | None = None  # checked on the host against the output's classes
    function: Callable[[Tensor], Tensor] | None = None

    @classmethod
    def parse(cls, targets: Targets, n_samples: int, device: torch.device) -> TargetChoice:
        """Read ``targets`` (None, an index, indices per sample or a callable) for ``n_samples``."""
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
            # Checked before the copy (on a device: one synchronisation, never a device assert).
            smallest, max_index = (int(v) for v in torch.aminmax(targets))
            _check_nonnegative(smallest)
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
        indices = torch.tensor(values, dtype=torch.long).to(device)
        return cls(indices=indices, max_index=max(values))

    def scores(self, output: Tensor) -> Tensor:
        """Per-sample scores (N,) to differentiate, taken from ``output``."""
        if self.function is not None:
            chosen = self.called(output)
            if chosen.dtype.is_floating_point:
                if not chosen.requires_grad:
                    raise CamError(
                        "targets: the callable returned float scores that do not depend on the "
                        "model output; return scores computed from it, or integer class indices"
                    )
                return chosen
            return gather_logits(output, chosen.detach().long())
        indices = self.class_indices(output)
        assert indices is not None  # only a callable gives float scores
        return gather_logits(output, indices)

    def class_indices(self, output: Tensor) -> Tensor | None:
        """Each sample's class index, long (N,); None when the callable gives float scores."""
        if self.function is not None:
            chosen = self.called(output)
            return None if chosen.dtype.is_floating_point else chosen.detach().long()
        if self.indices is None:
            return output.detach().argmax(dim=1)
        if self.max_index is not None and output.ndim == 2 and self.max_index >= output.shape[1]:
            raise CamError(
                f"targets: class index {self.max_index} out of range for a model with "
                f"{output.shape[1]} classes"
            )
        return self.indices

    def called(self, output: Tensor) -> Tensor:
        """The callable on ``output``: float scores or integer class indices, shape (rows,)."""
        assert self.function is not None
        n_samples = output.shape[0]
        chosen = self.function(output)
        if not isinstance(chosen, Tensor) or tuple(chosen.shape) != (n_samples,):
            got = tuple(chosen.shape) if isinstance(chosen, Tensor) else type(chosen).__name__
            raise CamError(
                f"targets: the callable must return a tensor of shape ({n_samples},); got {got}"
            )
        if chosen.dtype == torch.bool or chosen.is_complex():
            raise CamError(
                f"targets: the callable returned dtype {chosen.dtype}; expected float "
                "scores or integer class indices"
            )
        return chosen


def gather_logits(output: Tensor, indices: Tensor) -> Tensor:
    """The logit of each sample's class: ``output[i, indices[i]]`` (a CamError unless (N, K))."""
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


def _out_of_range(index: int, n_classes: int) -> CamError:
    return CamError(
        f"classes: class index {index} out of range for a model with {n_classes} classes"
    )


def _check_nonnegative(smallest: int) -> None:
    if smallest < 0:
        raise CamError(f"targets: class indices must be >= 0; got {smallest}")
