"""CAM methods: turn a layer's activations (and gradients) into a class activation map.

Every function here takes activations ``A`` shaped ``(N, C, *S)`` — any number of trailing
positional axes, time and space alike — and, for the gradient methods, ``g = d(score)/dA`` of the
same shape, and returns the raw map ``(N, *S)``: float32, ReLU applied, not normalised. Channel
weights ``(N, C)`` are broadcast over ``*S`` by one code path, so 2-D and 3-D layers share every
line. Inputs are cast to float32 first, so a bfloat16/float16 forward still gets float32 maps.

The one registry of method names is :data:`METHODS`; :func:`get_method` looks a name up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from videocam.errors import CamError

__all__ = [
    "METHODS",
    "CamMethod",
    "eigencam",
    "get_method",
    "gradcam",
    "gradcam_plus_plus",
    "hirescam",
    "layercam",
    "xgradcam",
]

# XGrad-CAM's denominator guard, as in pytorch-grad-cam (the contract fixes it at 1e-7).
_XGRADCAM_EPS = 1e-7


def _flat(x: Tensor) -> Tensor:
    """``(N, C, *S)`` -> float32 ``(N, C, P)`` with ``P = prod(S)``."""
    return x.float().flatten(2)


def _weighted_map(weights: Tensor, activations: Tensor) -> Tensor:
    """``ReLU(Σ_c w_c · A_c)``: weights float32 (N, C), activations (N, C, *S) -> (N, *S)."""
    return torch.relu(torch.einsum("nc,nc...->n...", weights, activations.float()))


def gradcam(activations: Tensor, gradients: Tensor) -> Tensor:
    """Grad-CAM: ``w_c = mean_pos g_c``; map ``= ReLU(Σ_c w_c A_c)``.

    Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via Gradient-based
    Localization", ICCV 2017.
    """
    return _weighted_map(_flat(gradients).mean(dim=-1), activations)


def gradcam_plus_plus(activations: Tensor, gradients: Tensor) -> Tensor:
    """Grad-CAM++: ``w_c = Σ_pos ReLU(g) · α``, ``α = g² / (2g² + (Σ_pos A_c) · g³)``.

    ``α = 0`` where ``g = 0`` or the denominator is 0. No additive epsilon: pytorch-grad-cam's
    1e-6 dominates the denominator when gradients are ~1e-4 and changes the map.
    Map ``= ReLU(Σ_c w_c A_c)``.

    Chattopadhay et al., "Grad-CAM++: Generalized Gradient-Based Visual Explanations for Deep
    Convolutional Networks", WACV 2018, eq. 19.
    """
    g = _flat(gradients)
    g2 = g * g
    g3 = g2 * g
    sum_a = _flat(activations).sum(dim=-1, keepdim=True)
    denominator = 2 * g2 + sum_a * g3
    defined = (g != 0) & (denominator != 0)
    # Divide by 1 where alpha is undefined, then zero it: no inf/nan is ever formed.
    alpha = torch.where(defined, g2 / torch.where(defined, denominator, 1.0), 0.0)
    weights = (torch.relu(g) * alpha).sum(dim=-1)
    return _weighted_map(weights, activations)


def xgradcam(activations: Tensor, gradients: Tensor) -> Tensor:
    """XGrad-CAM: ``w_c = Σ_pos g_c · A_c / (Σ_pos A_c + 1e-7)``; map ``= ReLU(Σ_c w_c A_c)``.

    Fu et al., "Axiom-based Grad-CAM: Towards Accurate Visualization and Explanation of CNNs",
    BMVC 2020.
    """
    a = _flat(activations)
    weights = (_flat(gradients) * a).sum(dim=-1) / (a.sum(dim=-1) + _XGRADCAM_EPS)
    return _weighted_map(weights, activations)


def hirescam(activations: Tensor, gradients: Tensor) -> Tensor:
    """HiResCAM: map ``= ReLU(Σ_c g_c ⊙ A_c)``, element-wise (no pooling of the gradient).

    Draelos & Carin, "Use HiResCAM instead of Grad-CAM for faithful explanations of
    convolutional neural networks", arXiv:2011.08891, 2020.
    """
    return torch.relu((gradients.float() * activations.float()).sum(dim=1))


def layercam(activations: Tensor, gradients: Tensor) -> Tensor:
    """LayerCAM: map ``= ReLU(Σ_c ReLU(g_c) ⊙ A_c)``, element-wise.

    Jiang et al., "LayerCAM: Exploring Hierarchical Class Activation Maps for Localization",
    IEEE TIP 30, 2021.
    """
    return torch.relu((torch.relu(gradients.float()) * activations.float()).sum(dim=1))


def eigencam(activations: Tensor, gradients: Tensor | None = None) -> Tensor:
    """EigenCAM: ReLU of the activations' projection on their first principal direction.

    Per sample, ``X = A`` as ``(P, C)`` (positions × channels), centred over positions;
    ``v`` = first right-singular vector of ``X``; map ``= ReLU(X v)``. The sign of ``v`` is
    arbitrary in the SVD, so it is chosen so that ``X v`` correlates positively with the
    channel-mean activation ``mean_c A_c``. Gradients are not used.

    Muhammad & Yeasin, "Eigen-CAM: Class Activation Map using Principal Components", IJCNN 2020.
    """
    del gradients  # gradient-free; the parameter keeps one signature for every method
    a = _flat(activations)  # (N, C, P)
    x = a.transpose(1, 2)  # (N, P, C)
    x = x - x.mean(dim=1, keepdim=True)
    if x.device.type == "cpu":
        # Small SVDs are orders of magnitude slower with several OpenMP threads than with one
        # on a busy CPU (measured on 2 shared cores: 98x512 took 1.5-2 s with 2 threads, 3-5 ms
        # with 1).
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            vh = torch.linalg.svd(x, full_matrices=False).Vh
        finally:
            torch.set_num_threads(threads)
    else:
        vh = torch.linalg.svd(x, full_matrices=False).Vh
    projection = torch.einsum("npc,nc->np", x, vh[:, 0, :])  # (N, P); zero mean over P
    channel_mean = a.mean(dim=1)
    agreement = (projection * (channel_mean - channel_mean.mean(dim=1, keepdim=True))).sum(dim=1)
    sign = torch.where(agreement < 0, -1.0, 1.0)
    projection = projection * sign[:, None]
    return torch.relu(projection).reshape(activations.shape[:1] + activations.shape[2:])


@dataclass(frozen=True)
class CamMethod:
    """One entry of the method registry.

    Attributes:
        name: the one spelling used everywhere (CLI, config, summary.json).
        function: ``(activations (N, C, *S), gradients (N, C, *S)) -> map (N, *S)``; a
            gradient-free method is called with ``gradients=None``.
        needs_gradients: False for gradient-free methods, which then skip the backward pass.
    """

    name: str
    function: Callable[..., Tensor]
    needs_gradients: bool = True


_REGISTRY: dict[str, CamMethod] = {
    m.name: m
    for m in (
        CamMethod("gradcam", gradcam),
        CamMethod("gradcam++", gradcam_plus_plus),
        CamMethod("xgradcam", xgradcam),
        CamMethod("hirescam", hirescam),
        CamMethod("layercam", layercam),
        CamMethod("eigencam", eigencam, needs_gradients=False),
    )
}

METHODS: tuple[str, ...] = tuple(_REGISTRY)
"""Every accepted method name, in one spelling: ``gradcam``, ``gradcam++``, ``xgradcam``,
``hirescam``, ``layercam``, ``eigencam``."""


def get_method(name: str) -> CamMethod:
    """Look a method up by name.

    Raises:
        CamError: ``name`` is not one of :data:`METHODS` (also a ``ValueError``).
    """
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise CamError(f"method: expected one of {', '.join(METHODS)}; got {name!r}") from None
