"""What the CAM engine explains per sample: class indices, a callable on the model output, or
the top class; several classes per sample as a matrix. Validated on the host where the indices
come from Python, so a bad index is an error here, not a device-side assert."""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from videocam.errors import CamError

__all__ = ["Classes", "TargetChoice", "Targets", "class_matrix", "gather_logits"]

Targets = int | Sequence[int] | Tensor | Callable[[Tensor], Tensor] | None
"""What to explain, per sample. See :func:`cam_and_output`."""

Classes = Sequence[int] | Tensor | Callable[[Tensor], Tensor]
"""Several classes to explain per sample. See :func:`cam_and_output_classes`."""


def class_matrix(classes: Classes, output: Tensor) -> Tensor:
    """``classes`` as a long tensor (N, M) on the output's device, range-checked."""
    n_samples, n_logits = output.shape
    chosen: Any = classes(output.detach()) if callable(classes) else classes
    if isinstance(chosen, Tensor):
        if chosen.dtype.is_floating_point or chosen.dtype == torch.bool or chosen.is_complex():
            raise CamError(f"classes: expected integer class indices; got dtype {chosen.dtype}")
        matrix = chosen.to(device=output.device, dtype=torch.long)
        if matrix.device.type == "cpu" and matrix.numel():  # cheap here; no device sync
            _check_nonnegative(int(matrix.min()))
            if int(matrix.max()) >= n_logits:
                raise CamError(
                    f"classes: class index {int(matrix.max())} out of range for a model with "
                    f"{n_logits} classes"
                )
    elif isinstance(chosen, Sequence) and not isinstance(chosen, (str, bytes)):
        if not chosen or not all(_is_int(c) for c in chosen):
            raise CamError(f"classes: expected class indices (ints); got {list(chosen)[:8]!r}")
        values = [int(c) for c in chosen]
        _check_nonnegative(min(values))
        if max(values) >= n_logits:
            raise CamError(
                f"classes: class index {max(values)} out of range for a model with "
                f"{n_logits} classes"
            )
        matrix = torch.tensor(values, dtype=torch.long, device=output.device)
    else:
        raise CamError(
            "classes: expected a sequence of ints, an integer tensor (M,) or (N, M), or a "
            f"callable on the logits; got {type(chosen).__name__}"
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
    max_index: int | None = None  # known without a device sync when the indices came from Python
    function: Callable[[Tensor], Tensor] | None = None

    @classmethod
    def parse(cls, targets: Targets, n_samples: int, device: torch.device) -> TargetChoice:
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
            return gather_logits(output, chosen.detach().long())
        if self.indices is None:
            return gather_logits(output, output.detach().argmax(dim=1))
        if self.max_index is not None and output.ndim == 2 and self.max_index >= output.shape[1]:
            raise CamError(
                f"targets: class index {self.max_index} out of range for a model with "
                f"{output.shape[1]} classes"
            )
        return gather_logits(output, self.indices)


def gather_logits(output: Tensor, indices: Tensor) -> Tensor:
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
