"""Agreement with the reference implementations: captum and pytorch-grad-cam 1.5.7.

pytorch-grad-cam min-max normalises and resizes its output, so its raw maps are rebuilt from
its own recorded activations and gradients with its own ``get_cam_image`` (the method-specific
part) followed by the ReLU that its ``compute_cam_per_layer`` applies before scaling.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from videocam.cam import compute_cam

captum_attr = pytest.importorskip("captum.attr")


def _assert_relative_close(actual: torch.Tensor, expected, rel: float) -> None:
    """max |actual - expected| <= rel * max |expected| (and the reference is not all zero)."""
    expected = torch.as_tensor(np.asarray(expected), dtype=torch.float64)
    actual = actual.double()
    assert actual.shape == expected.shape
    scale = expected.abs().max()
    assert scale > 0
    error = (actual - expected).abs().max()
    assert error <= rel * scale, f"relative error {float(error / scale):.3g} > {rel}"


@pytest.fixture(scope="module")
def r3d() -> nn.Module:
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    return torchvision.models.video.r3d_18(weights=None).eval()


def _cases(small_cnn, r3d):
    torch.manual_seed(5)
    return {
        "cnn2d": (small_cnn(2), "features.3", torch.randn(2, 3, 16, 20), [1, 4]),
        "r3d_18": (r3d, "layer4", torch.randn(2, 3, 8, 64, 64), [3, 250]),
    }


@pytest.mark.parametrize("case", ["cnn2d", "r3d_18"])
def test_gradcam_matches_captum(small_cnn, r3d, case: str) -> None:
    model, layer_name, x, targets = _cases(small_cnn, r3d)[case]
    layer = model.get_submodule(layer_name)
    expected = captum_attr.LayerGradCam(model, layer).attribute(
        x, target=targets, relu_attributions=True
    )
    model.zero_grad(set_to_none=True)
    ours = compute_cam(model, x, layer_name, targets, "gradcam")
    _assert_relative_close(ours, expected[:, 0].detach(), 1e-5)


def _pytorch_grad_cam_raw(cam_class, model, layer, x, targets):
    """The raw (ReLU'd, unscaled) map of a pytorch-grad-cam method, plus its A and g."""
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    outputs = [ClassifierOutputTarget(k) for k in targets]
    with cam_class(model=model, target_layers=[layer]) as cam:
        cam(input_tensor=x, targets=outputs)
        activations = cam.activations_and_grads.activations[0].numpy()
        gradients = cam.activations_and_grads.gradients[0].numpy()
        raw = cam.get_cam_image(x, layer, outputs, activations, gradients, False)
    model.zero_grad(set_to_none=True)
    return np.maximum(raw, 0), activations, gradients


PYTORCH_GRAD_CAM_METHODS = {
    "gradcam": "GradCAM",
    "hirescam": "HiResCAM",
    "xgradcam": "XGradCAM",
    "layercam": "LayerCAM",
}


@pytest.mark.parametrize("case", ["cnn2d", "r3d_18"])
@pytest.mark.parametrize("method", list(PYTORCH_GRAD_CAM_METHODS))
def test_matches_pytorch_grad_cam(small_cnn, r3d, case: str, method: str) -> None:
    pgc = pytest.importorskip("pytorch_grad_cam")
    model, layer_name, x, targets = _cases(small_cnn, r3d)[case]
    cam_class = getattr(pgc, PYTORCH_GRAD_CAM_METHODS[method])
    expected, _, _ = _pytorch_grad_cam_raw(
        cam_class, model, model.get_submodule(layer_name), x, targets
    )
    ours = compute_cam(model, x, layer_name, targets, method)
    _assert_relative_close(ours, expected, 1e-4)


def _gradcam_plus_plus_no_eps(a: np.ndarray, g: np.ndarray) -> np.ndarray:
    """The contract's Grad-CAM++ in float64 numpy, written independently of the package."""
    a, g = a.astype(np.float64), g.astype(np.float64)
    axes = tuple(range(2, a.ndim))
    sum_a = a.sum(axis=axes, keepdims=True)
    den = 2 * g**2 + sum_a * g**3
    ok = (g != 0) & (den != 0)
    alpha = np.where(ok, g**2 / np.where(ok, den, 1.0), 0.0)
    weights = (np.maximum(g, 0) * alpha).sum(axis=axes)
    return np.maximum(np.einsum("nc,nc...->n...", weights, a), 0)


@pytest.mark.parametrize("case", ["cnn2d", "r3d_18"])
def test_gradcam_plus_plus_matches_the_formula_on_real_gradients(small_cnn, r3d, case: str) -> None:
    """Checked on pytorch-grad-cam's recorded A and g; its own map differs by its 1e-6 epsilon."""
    pgc = pytest.importorskip("pytorch_grad_cam")
    model, layer_name, x, targets = _cases(small_cnn, r3d)[case]
    layer = model.get_submodule(layer_name)
    _, a, g = _pytorch_grad_cam_raw(pgc.GradCAMPlusPlus, model, layer, x, targets)
    ours = compute_cam(model, x, layer_name, targets, "gradcam++")
    _assert_relative_close(ours, _gradcam_plus_plus_no_eps(a, g), 1e-4)


def test_pytorch_grad_cam_epsilon_changes_gradcam_plus_plus_on_small_gradients() -> None:
    """Why the contract drops the epsilon: with gradients ~1e-4, 1e-6 dominates 2g² (~2e-8)."""
    pgc = pytest.importorskip("pytorch_grad_cam")
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()
    )
    model.append(nn.Linear(8, 2))
    with torch.no_grad():
        model[-1].weight.mul_(1e-1)
    x = torch.rand(1, 3, 24, 24)
    with_eps, a, g = _pytorch_grad_cam_raw(pgc.GradCAMPlusPlus, model, model[1], x, [0])
    assert np.abs(g).max() < 1e-3
    ours = compute_cam(model, x, "1", [0], "gradcam++")
    _assert_relative_close(ours, _gradcam_plus_plus_no_eps(a, g), 1e-4)
    with_eps = torch.as_tensor(with_eps).double()
    assert (ours.double() - with_eps).abs().max() > 0.1 * with_eps.abs().max()


@pytest.mark.parametrize("case", ["cnn2d", "r3d_18"])
def test_eigencam_matches_pytorch_grad_cam_projection_up_to_sign(small_cnn, r3d, case: str) -> None:
    """pytorch-grad-cam leaves the SVD's sign arbitrary; ours follows the mean activation."""
    svd = pytest.importorskip("pytorch_grad_cam.utils.svd_on_activations")
    model, layer_name, x, targets = _cases(small_cnn, r3d)[case]
    activations = {}
    handle = model.get_submodule(layer_name).register_forward_hook(
        lambda m, i, o: activations.setdefault("a", o.detach())
    )
    with torch.no_grad():
        model(x)
    handle.remove()
    a = activations["a"]
    projection = svd.get_2d_projection(a.double().numpy())
    ours = compute_cam(model, x, layer_name, targets, "eigencam")
    channel_mean = a.double().mean(dim=1).flatten(1).numpy()
    for i in range(len(x)):
        p = projection[i].ravel()
        sign = np.sign(np.dot(p - p.mean(), channel_mean[i] - channel_mean[i].mean()))
        _assert_relative_close(ours[i], np.maximum(sign * projection[i], 0), 1e-4)


@pytest.mark.parametrize("case", ["cnn2d", "r3d_18"])
def test_eigengradcam_matches_pytorch_grad_cam_projection_up_to_sign(
    small_cnn, r3d, case: str
) -> None:
    """pytorch-grad-cam's EigenGradCAM: the SVD projection of g ⊙ A, sign left to the SVD."""
    pgc = pytest.importorskip("pytorch_grad_cam")
    model, layer_name, x, targets = _cases(small_cnn, r3d)[case]
    layer = model.get_submodule(layer_name)
    projection, a, g = _pytorch_grad_cam_raw(pgc.EigenGradCAM, model, layer, x, targets)
    # the raw helper applied ReLU; rebuild the signed projection from its recorded A and g
    svd = pytest.importorskip("pytorch_grad_cam.utils.svd_on_activations")
    signed = svd.get_2d_projection((g * a).astype(np.float64))
    np.testing.assert_allclose(projection, np.maximum(signed, 0), rtol=1e-4, atol=1e-7)
    ours = compute_cam(model, x, layer_name, targets, "eigengradcam")
    product_mean = (g * a).astype(np.float64).mean(axis=1).reshape(len(x), -1)
    for i in range(len(x)):
        p = signed[i].ravel()
        sign = np.sign(np.dot(p - p.mean(), product_mean[i] - product_mean[i].mean()))
        _assert_relative_close(ours[i], np.maximum(sign * signed[i], 0), 1e-4)


def _pytorch_grad_cam_gradient_free(cam_class, model, layer, x, targets):
    """The raw map of a gradient-free pytorch-grad-cam method (its weights on its activations,
    ReLU'd, not scaled)."""
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    outputs = [ClassifierOutputTarget(k) for k in targets]
    seen = []
    handle = layer.register_forward_hook(lambda m, i, o: seen.append(o.detach()))
    with torch.no_grad():
        model(x)
    handle.remove()
    activations = seen[0].numpy()
    with cam_class(model=model, target_layers=[layer]) as cam:
        raw = cam.get_cam_image(x, layer, outputs, activations, None, False)
    return np.maximum(raw, 0)


@pytest.mark.parametrize("method", ["scorecam", "ablationcam"])
def test_perturbation_methods_match_pytorch_grad_cam_on_2d(small_cnn, method: str) -> None:
    """On a layer ending in a ReLU, where pytorch-grad-cam's ablation value is 0 too (on a layer
    with negative outputs it ablates to min - 1e7 instead; the contract sets the channel to 0).
    Its Score-CAM and Ablation-CAM crash on 5-D inputs: the 3-D case is checked against the
    definitions in test_cam_methods.py and test_cam_engine.py."""
    pgc = pytest.importorskip("pytorch_grad_cam")
    model = small_cnn(2)
    torch.manual_seed(6)
    x = torch.randn(3, 3, 16, 20)
    targets = [1, 4, 0]
    cam_class = {"scorecam": pgc.ScoreCAM, "ablationcam": pgc.AblationCAM}[method]
    expected = _pytorch_grad_cam_gradient_free(
        cam_class, model, model.get_submodule("features.4"), x, targets
    )
    ours = compute_cam(model, x, "features.4", targets, method)
    _assert_relative_close(ours, expected, 1e-4)
