"""Every CAM method against maps computed by hand on fixed-weight 2-D and 3-D models."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from videocam.cam import (
    METHODS,
    CamError,
    ablationcam,
    compute_cam,
    eigencam,
    get_method,
    gradcam_plus_plus,
    scorecam,
    scorecam_masks,
    xgradcam,
)
from videocam.errors import VideocamError

TARGETS = [0, 1]  # one class per sample: the two samples explain different classes


def _activations(x: np.ndarray) -> np.ndarray:
    """The fixed model's target-layer output: A_0 = x, A_1 = 2 - x; shape (N, 2, *S)."""
    return np.concatenate([x, 2.0 - x], axis=1)


def _relu(a: np.ndarray) -> np.ndarray:
    return np.maximum(a, 0.0)


def _weighted(weights: np.ndarray, a: np.ndarray) -> np.ndarray:
    """ReLU(Σ_c w_c A_c) for one sample: weights (C,), a (C, *S)."""
    return _relu(sum(w * a_c for w, a_c in zip(weights, a, strict=True)))


def _expected_linear_head(method: str, a: np.ndarray, w: np.ndarray) -> np.ndarray:
    """One sample, linear head with class weights w (C,): d(logit)/dA_c = w_c / P everywhere."""
    p = a[0].size
    sums = a.reshape(2, -1).sum(axis=1)
    if method in ("gradcam", "hirescam"):  # constant gradient: the two coincide
        return _weighted(w / p, a)
    if method == "layercam":
        return _weighted(_relu(w / p), a)
    if method == "xgradcam":
        return _weighted(w / p * sums / (sums + 1e-7), a)
    if method == "gradcam++":
        # alpha = g² / (2g² + S g³) = 1 / (2 + S g); w_c = Σ_pos ReLU(g) alpha = P ReLU(g) alpha
        alpha = 1.0 / (2.0 + sums * w / p)
        return _weighted(p * _relu(w / p) * alpha, a)
    raise AssertionError(method)


def _expected_square_head(method: str, a: np.ndarray, w: np.ndarray) -> np.ndarray:
    """One sample, head = w · mean(A²): d(logit)/dA_c = 2 w_c A_c / P, varying by position."""
    p = a[0].size
    g = np.stack([2.0 * w[c] * a[c] / p for c in range(2)])
    sums = a.reshape(2, -1).sum(axis=1)
    if method == "gradcam":
        return _weighted(g.reshape(2, -1).mean(axis=1), a)
    if method == "hirescam":
        return _relu((g * a).sum(axis=0))
    if method == "layercam":
        return _relu((_relu(g) * a).sum(axis=0))
    if method == "xgradcam":
        return _weighted((g * a).reshape(2, -1).sum(axis=1) / (sums + 1e-7), a)
    if method == "gradcam++":
        weights = []
        for c in range(2):
            num = g[c] ** 2
            den = 2 * g[c] ** 2 + sums[c] * g[c] ** 3
            alpha = np.zeros_like(num)
            ok = (g[c] != 0) & (den != 0)
            alpha[ok] = num[ok] / den[ok]
            weights.append((_relu(g[c]) * alpha).sum())
        return _weighted(np.array(weights), a)
    raise AssertionError(method)


GRADIENT_METHODS = [m for m in METHODS if get_method(m).needs_gradients]
#: The gradient methods whose maps the two helpers above compute in closed form.
WEIGHTED_METHODS = ["gradcam", "gradcam++", "xgradcam", "hirescam", "layercam"]


@pytest.mark.parametrize("n_dims", [2, 3])
@pytest.mark.parametrize("method", WEIGHTED_METHODS)
@pytest.mark.parametrize("square", [False, True], ids=["linear-head", "square-head"])
def test_fixed_model_matches_hand_computed_map(
    n_dims: int, method: str, square: bool, fixed_model, fixed_input, head_weight
) -> None:
    model = fixed_model(n_dims, square=square)
    x = fixed_input(n_dims)
    cams = compute_cam(model, x, "0", TARGETS, method)

    a = _activations(x.double().numpy())
    expected_fn = _expected_square_head if square else _expected_linear_head
    w = head_weight.double().numpy()
    expected = np.stack([expected_fn(method, a[i], w[k]) for i, k in enumerate(TARGETS)])
    assert cams.dtype == torch.float32
    assert cams.shape == x.shape[:1] + x.shape[2:]
    assert expected.max() > 0  # the case is not trivially all-zero
    np.testing.assert_allclose(cams.numpy(), expected, rtol=1e-5, atol=1e-6)


def test_square_head_separates_the_methods(fixed_model, fixed_input) -> None:
    """With a position-dependent gradient the methods give different maps (the test bites)."""
    model = fixed_model(2, square=True)
    x = fixed_input(2)
    maps = {m: compute_cam(model, x, "0", TARGETS, m) for m in GRADIENT_METHODS}
    for i, first in enumerate(GRADIENT_METHODS):
        for second in GRADIENT_METHODS[i + 1 :]:
            assert not torch.allclose(maps[first], maps[second]), (first, second)


@pytest.mark.parametrize("n_dims", [2, 3])
@pytest.mark.parametrize(
    ("gain", "sign"), [((1.0, 2.0), 1.0), ((1.0, -3.0), -1.0)], ids=["positive", "flipped"]
)
def test_eigencam_matches_hand_computed_projection(
    n_dims: int, gain: tuple[float, float], sign: float, fixed_model, fixed_input
) -> None:
    """A_c = u_c x + b_c is rank one after centring: projection = ±|u| (x - mean x).

    The sign follows the channel-mean activation mean(u) x + const, i.e. the sign of mean(u).
    """
    model = fixed_model(n_dims, channel_gain=gain)
    x = fixed_input(n_dims)
    cams = compute_cam(model, x, "0", None, "eigencam")

    xs = x[:, 0].double().numpy()
    centred = xs - xs.reshape(len(xs), -1).mean(axis=1).reshape(-1, *[1] * n_dims)
    expected = _relu(sign * np.linalg.norm(gain) * centred)
    np.testing.assert_allclose(cams.numpy(), expected, rtol=1e-5, atol=1e-5)


def _eigen_projection(x: np.ndarray) -> np.ndarray:
    """The contract's EigenCAM of one sample x (C, *S) in float64 numpy."""
    flat = x.reshape(len(x), -1).T  # (P, C)
    centred = flat - flat.mean(axis=0)
    projection = centred @ np.linalg.svd(centred, full_matrices=False)[2][0]
    m = flat.mean(axis=1)
    sign = -1.0 if np.dot(projection, m - m.mean()) < 0 else 1.0
    return _relu(sign * projection).reshape(x.shape[1:])


@pytest.mark.parametrize("n_dims", [2, 3])
@pytest.mark.parametrize("square", [False, True], ids=["linear-head", "square-head"])
def test_eigengradcam_is_eigencam_of_gradient_times_activation(
    n_dims: int, square: bool, fixed_model, fixed_input, head_weight
) -> None:
    """Linear head: g_c = w_c / P, so g ⊙ A = (w_c u_c / P) x + const is rank one after
    centring: map = ReLU(sign(Σ_c v_c) |v| (x - mean x)), v_c = w_c u_c / P (gains u = (1, -1)).
    Square head: g_c = 2 w_c A_c / P, checked against the SVD written out in numpy."""
    model = fixed_model(n_dims, square=square)
    x = fixed_input(n_dims)
    cams = compute_cam(model, x, "0", TARGETS, "eigengradcam")
    a = _activations(x.double().numpy())
    w = head_weight.double().numpy()
    p = a[0, 0].size
    expected = []
    for i, k in enumerate(TARGETS):
        if square:
            g = 2.0 * w[k].reshape(2, *[1] * n_dims) * a[i] / p
            expected.append(_eigen_projection(g * a[i]))
        else:
            v = w[k] * np.array([1.0, -1.0]) / p
            centred = a[i, 0] - a[i, 0].mean()
            expected.append(_relu(np.sign(v.sum()) * np.linalg.norm(v) * centred))
    expected = np.stack(expected)
    assert expected.max() > 0
    np.testing.assert_allclose(cams.numpy(), expected, rtol=1e-5, atol=1e-5)


def _head_logit(model, a: np.ndarray, k: int, square: bool) -> float:
    """The fixed model's logit k for target-layer activations a (2, *S)."""
    w = model[-1].weight.detach().double().numpy()[k]
    b = float(model[-1].bias.detach()[k])
    h = a**2 if square else a
    return float(w @ h.reshape(2, -1).mean(axis=1) + b)


@pytest.mark.parametrize("n_dims", [2, 3])
@pytest.mark.parametrize("square", [False, True], ids=["linear-head", "square-head"])
def test_ablationcam_matches_hand_computed_map(
    n_dims: int, square: bool, fixed_model, fixed_input
) -> None:
    """w_c = (y - y_c) / y, y_c the logit once A_c is 0; linear head: y - y_c = w_kc mean A_c."""
    model = fixed_model(n_dims, square=square)
    x = fixed_input(n_dims)
    cams = compute_cam(model, x, "0", TARGETS, "ablationcam")
    a = _activations(x.double().numpy())
    expected = []
    for i, k in enumerate(TARGETS):
        y = _head_logit(model, a[i], k, square)
        weights = []
        for c in range(2):
            ablated = a[i].copy()
            ablated[c] = 0.0
            weights.append((y - _head_logit(model, ablated, k, square)) / y)
        if not square:
            w = model[-1].weight.detach().double().numpy()[k]
            linear = w * a[i].reshape(2, -1).mean(axis=1) / y
            np.testing.assert_allclose(weights, linear, rtol=1e-12)
        expected.append(_weighted(np.array(weights), a[i]))
    expected = np.stack(expected)
    assert expected.max() > 0
    np.testing.assert_allclose(cams.numpy(), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("n_dims", [2, 3])
@pytest.mark.parametrize("square", [False, True], ids=["linear-head", "square-head"])
def test_scorecam_matches_hand_computed_map(
    n_dims: int, square: bool, fixed_model, fixed_input
) -> None:
    """The 1x1 layer keeps the input's size, so channel c's mask is min-max(A_c) itself; the
    masked input x m_c gives activations (x m_c, 2 - x m_c); w = softmax over c of their logit."""
    model = fixed_model(n_dims, square=square)
    x = fixed_input(n_dims)
    cams = compute_cam(model, x, "0", TARGETS, "scorecam")
    a = _activations(x.double().numpy())
    expected = []
    for i, k in enumerate(TARGETS):
        logits = []
        for c in range(2):
            mask = (a[i, c] - a[i, c].min()) / (a[i, c].max() - a[i, c].min() + 1e-8)
            masked = x[i, 0].double().numpy() * mask
            logits.append(_head_logit(model, np.stack([masked, 2.0 - masked]), k, square))
        weights = np.exp(logits - np.max(logits))
        expected.append(_weighted(weights / weights.sum(), a[i]))
    expected = np.stack(expected)
    assert expected.max() > 0
    np.testing.assert_allclose(cams.numpy(), expected, rtol=1e-5, atol=1e-5)


def test_scorecam_masks_are_aligned_corner_upsampling_scaled_to_unit_range() -> None:
    a = torch.tensor([[[[0.0, 2.0], [4.0, 6.0]], [[1.0, 1.0], [1.0, 1.0]]]])  # (1, 2, 2, 2)
    masks = scorecam_masks(a, (3, 3))
    assert masks.shape == (1, 2, 3, 3)
    # align_corners=True: the corners keep the map's values, the centre is their mean
    expected = torch.tensor([[0.0, 1.0, 2.0], [2.0, 3.0, 4.0], [4.0, 5.0, 6.0]]) / (6.0 + 1e-8)
    torch.testing.assert_close(masks[0, 0], expected)
    assert torch.equal(masks[0, 1], torch.zeros(3, 3))  # a constant channel: (m - min) = 0
    with pytest.raises(CamError, match="scorecam: cannot upsample"):
        scorecam_masks(a, (4, 3, 3))


def test_ablationcam_zero_logit_gives_zero_weights_and_scorecam_is_a_softmax() -> None:
    a = torch.rand(1, 3, 2, 2) + 0.5
    scores = torch.tensor([[[1.0, 2.0, 3.0]]])
    assert torch.equal(ablationcam(a, scores, torch.zeros(1, 1)), torch.zeros(1, 1, 2, 2))
    weights = torch.softmax(scores[0, 0], dim=0)
    torch.testing.assert_close(
        scorecam(a, scores, torch.zeros(1, 1))[0, 0], torch.einsum("c,chw->hw", weights, a[0])
    )
    halved = ablationcam(a, scores, torch.full((1, 1), 4.0))[0, 0]
    torch.testing.assert_close(halved, torch.einsum("c,chw->hw", (4.0 - scores[0, 0]) / 4, a[0]))


def test_eigencam_restores_thread_count() -> None:
    threads = torch.get_num_threads()
    eigencam(torch.rand(2, 8, 3, 4))
    assert torch.get_num_threads() == threads


def _gradcam_plus_plus_reference(a: np.ndarray, g: np.ndarray) -> np.ndarray:
    """The contract's Grad-CAM++ in float64 numpy, one channel at a time, no epsilon."""
    n, c = a.shape[:2]
    maps = []
    for i in range(n):
        weights = np.zeros(c)
        for ch in range(c):
            gc, ac = g[i, ch].ravel(), a[i, ch].ravel()
            den = 2 * gc**2 + ac.sum() * gc**3
            alpha = np.where((gc != 0) & (den != 0), gc**2 / np.where(den == 0, 1, den), 0.0)
            weights[ch] = (np.maximum(gc, 0) * alpha).sum()
        maps.append(_weighted(weights, a[i]))
    return np.stack(maps)


def test_gradcam_plus_plus_zero_gradient_and_zero_denominator_give_zero_alpha() -> None:
    # Channel 0: sum A = -2 and g = 1 at every position -> denominator 2 - 2 = 0 -> alpha = 0.
    # Channel 1: g = 0 everywhere -> alpha = 0. Channel 2: ordinary.
    a = torch.tensor([[[-1.0, -1.0], [1.0, 2.0], [0.5, 1.5]]])
    g = torch.tensor([[[1.0, 1.0], [0.0, 0.0], [0.2, 0.4]]])
    result = gradcam_plus_plus(a, g)
    assert torch.isfinite(result).all()
    expected = _gradcam_plus_plus_reference(a.double().numpy(), g.double().numpy())
    np.testing.assert_allclose(result.numpy(), expected, rtol=1e-6)
    # only channel 2 contributes: w_2 = Σ g²/(2g² + 2 g³) · g
    w2 = sum(gv * gv**2 / (2 * gv**2 + 2.0 * gv**3) for gv in (0.2, 0.4))
    np.testing.assert_allclose(result.numpy(), [[w2 * 0.5, w2 * 1.5]], rtol=1e-6)


def test_gradcam_plus_plus_random_nd_matches_reference() -> None:
    gen = torch.Generator().manual_seed(3)
    a = torch.rand(2, 4, 2, 3, 5, generator=gen)
    g = torch.randn(2, 4, 2, 3, 5, generator=gen) * 1e-4  # tiny gradients: where eps would bite
    g[0, 1, 0, 0, 0] = 0.0
    expected = _gradcam_plus_plus_reference(a.double().numpy(), g.double().numpy())
    np.testing.assert_allclose(gradcam_plus_plus(a, g).numpy(), expected, rtol=1e-4, atol=1e-12)


def test_methods_accept_low_precision_and_return_float32() -> None:
    a = torch.rand(1, 3, 4, 4).bfloat16()
    g = torch.randn(1, 3, 4, 4).bfloat16()
    for name in GRADIENT_METHODS:
        assert get_method(name).function(a, g).dtype == torch.float32
    assert xgradcam(a, g).shape == (1, 4, 4)
    assert eigencam(a).dtype == torch.float32


def test_registry_has_one_spelling_per_method() -> None:
    assert METHODS == (
        "gradcam",
        "gradcam++",
        "xgradcam",
        "hirescam",
        "layercam",
        "eigencam",
        "eigengradcam",
        "scorecam",
        "ablationcam",
    )
    assert [get_method(m).name for m in METHODS] == list(METHODS)
    assert [m for m in METHODS if not get_method(m).needs_gradients] == [
        "eigencam",
        "scorecam",
        "ablationcam",
    ]
    assert [m for m in METHODS if get_method(m).class_free] == ["eigencam"]
    assert {m: get_method(m).perturbation for m in METHODS if get_method(m).perturbation} == {
        "scorecam": "mask",
        "ablationcam": "ablate",
    }
    for bad in ("GradCAM", "grad-cam", "gradcampp", ""):
        with pytest.raises(CamError, match="method") as info:
            get_method(bad)
        assert isinstance(info.value, ValueError)
        assert isinstance(info.value, VideocamError)
