"""CAM methods: turn a layer's activations (and gradients) into a class activation map.

Every function here takes activations ``A`` shaped ``(N, C, *S)`` — any number of trailing
positional axes, time and space alike — and, for the gradient methods, ``g = d(score)/dA`` of the
same shape, and returns the raw map ``(N, *S)``: float32, ReLU applied, not normalised. Channel
weights ``(N, C)`` are broadcast over ``*S`` by one code path, so 2-D and 3-D layers share every
line. Inputs are cast to float32 first, so a bfloat16/float16 forward still gets float32 maps.

The one registry of method names is :data:`METHODS`; :func:`get_method` looks a name up.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from videocam.errors import CamError

__all__ = [
    "METHODS",
    "CamMethod",
    "ablationcam",
    "eigencam",
    "eigengradcam",
    "get_method",
    "gradcam",
    "gradcam_plus_plus",
    "hirescam",
    "layercam",
    "scorecam",
    "scorecam_masks",
    "xgradcam",
]

# XGrad-CAM's denominator guard, as in pytorch-grad-cam (the contract fixes it at 1e-7).
_XGRADCAM_EPS = 1e-7
# Score-CAM's min-max guard, as in pytorch-grad-cam 1.5.7.
_SCORECAM_EPS = 1e-8
_ALIGNED_MODES = {1: "linear", 2: "bilinear", 3: "trilinear"}


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


def eigengradcam(activations: Tensor, gradients: Tensor) -> Tensor:
    """EigenGrad-CAM: :func:`eigencam` on the element-wise product ``g ⊙ A``.

    The projection of ``g ⊙ A`` (centred over positions) on its first right-singular vector,
    ReLU applied; the sign chosen so that it correlates positively with ``mean_c (g ⊙ A)_c``.
    pytorch-grad-cam 1.5.7's ``EigenGradCAM`` (which leaves the sign to the SVD).
    """
    return eigencam(gradients.float() * activations.float())


def scorecam_masks(activations: Tensor, size: Sequence[int]) -> Tensor:
    """Score-CAM's masks: each channel upsampled to the input and min-max scaled to [0, 1].

    Upsampling is (bi/tri)linear with ``align_corners=True`` and the scaling is
    ``(m - min) / (max - min + 1e-8)`` per channel, as pytorch-grad-cam 1.5.7 does it.

    Args:
        activations: shape (N, C, *S), 1 to 3 positional axes.
        size: the input's positional size (same number of axes as S).

    Returns:
        float32, shape (N, C, *size), in [0, 1].
    """
    size = tuple(int(s) for s in size)
    n_axes = activations.ndim - 2
    if n_axes != len(size) or n_axes not in _ALIGNED_MODES:
        raise CamError(
            f"scorecam: cannot upsample a map of shape {tuple(activations.shape[2:])} to the "
            f"input's {size}: the layer must keep the input's positional axes"
        )
    upsampled = F.interpolate(
        activations.float(), size=size, mode=_ALIGNED_MODES[n_axes], align_corners=True
    )
    flat = upsampled.flatten(2)
    low = flat.amin(dim=-1)
    high = flat.amax(dim=-1)
    scale = (high - low + _SCORECAM_EPS).reshape(*low.shape, *([1] * n_axes))
    return (upsampled - low.reshape(scale.shape)) / scale


def scorecam(activations: Tensor, channel_scores: Tensor, base_scores: Tensor) -> Tensor:
    """Score-CAM: ``w_c = softmax_c(y^c)``, ``y^c`` the target logit for the input multiplied
    by channel ``c``'s mask (:func:`scorecam_masks`); map ``= ReLU(Σ_c w_c A_c)``.

    Wang et al., "Score-CAM: Score-Weighted Visual Explanations for Convolutional Neural
    Networks", CVPR Workshops 2020; pytorch-grad-cam 1.5.7's ``ScoreCAM`` (softmax of the
    logits over channels).

    Args:
        activations: shape (N, C, *S).
        channel_scores: shape (N, M, C): the M explained scores of each masked input.
        base_scores: shape (N, M): the scores of the untouched input (not used by Score-CAM).

    Returns:
        float32, shape (N, M, *S), >= 0.
    """
    del base_scores
    return _class_maps(torch.softmax(channel_scores.float(), dim=-1), activations)


def ablationcam(activations: Tensor, channel_scores: Tensor, base_scores: Tensor) -> Tensor:
    """Ablation-CAM: ``w_c = (y - y_c) / y``, ``y`` the target logit, ``y_c`` the same with
    channel ``c`` of the layer's output set to 0; map ``= ReLU(Σ_c w_c A_c)``. Where ``y = 0``
    the weights are 0 (no division by zero).

    Desai & Ramaswamy, "Ablation-CAM: Visual Explanations for Deep Convolutional Network via
    Gradient-free Localization", WACV 2020; pytorch-grad-cam 1.5.7's ``AblationCAM`` (which
    ablates to ``min - 1e7`` instead of 0 on layers whose output has negative values).

    Args:
        activations: shape (N, C, *S).
        channel_scores: shape (N, M, C): ``y_c``.
        base_scores: shape (N, M): ``y``.

    Returns:
        float32, shape (N, M, *S), >= 0.
    """
    y = base_scores.float()[..., None]
    defined = y != 0
    weights = torch.where(defined, (y - channel_scores.float()) / torch.where(defined, y, 1.0), 0.0)
    return _class_maps(weights, activations)


def _class_maps(weights: Tensor, activations: Tensor) -> Tensor:
    """``ReLU(Σ_c w_{m,c} A_c)``: weights (N, M, C), activations (N, C, *S) -> (N, M, *S)."""
    return torch.relu(torch.einsum("nmc,nc...->nm...", weights.float(), activations.float()))


@dataclass(frozen=True)
class CamMethod:
    """One entry of the method registry.

    Attributes:
        name: the one spelling used everywhere (CLI, config, summary.json).
        function: ``(activations (N, C, *S), gradients (N, C, *S)) -> map (N, *S)``; a
            gradient-free method is called with ``gradients=None``. A perturbation method's is
            ``(activations, channel_scores (N, M, C), base_scores (N, M)) -> maps (N, M, *S)``.
        needs_gradients: False for gradient-free methods, which then skip the backward pass.
        perturbation: how a perturbation method changes the model's input or the layer, one
            forward per channel: ``"mask"`` (the input times each channel's upsampled map,
            Score-CAM) or ``"ablate"`` (each channel of the layer's output set to 0,
            Ablation-CAM); None for the others.
    """

    name: str
    function: Callable[..., Tensor]
    needs_gradients: bool = True
    perturbation: str | None = None

    @property
    def class_free(self) -> bool:
        """The map does not depend on the explained class (eigencam): one map serves all."""
        return not self.needs_gradients and self.perturbation is None


_REGISTRY: dict[str, CamMethod] = {
    m.name: m
    for m in (
        CamMethod("gradcam", gradcam),
        CamMethod("gradcam++", gradcam_plus_plus),
        CamMethod("xgradcam", xgradcam),
        CamMethod("hirescam", hirescam),
        CamMethod("layercam", layercam),
        CamMethod("eigencam", eigencam, needs_gradients=False),
        CamMethod("eigengradcam", eigengradcam),
        CamMethod("scorecam", scorecam, needs_gradients=False, perturbation="mask"),
        CamMethod("ablationcam", ablationcam, needs_gradients=False, perturbation="ablate"),
    )
}

METHODS: tuple[str, ...] = tuple(_REGISTRY)
"""Every accepted method name, in one spelling: ``gradcam``, ``gradcam++``, ``xgradcam``,
``hirescam``, ``layercam``, ``eigencam``, ``eigengradcam``, ``scorecam``, ``ablationcam``."""


def get_method(name: str) -> CamMethod:
    """Look a method up by name.

    Raises:
        CamError: ``name`` is not one of :data:`METHODS` (also a ``ValueError``).
    """
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise CamError(f"method: expected one of {', '.join(METHODS)}; got {name!r}") from None
