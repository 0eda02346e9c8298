"""The CAM engine: targets, shapes, layers, side effects, autocast, and a moving object."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from videocam.cam import (
    METHODS,
    CamError,
    CamOutput,
    cam_and_output,
    compute_cam,
    get_method,
    target_layer,
)
from videocam.errors import LayerNotFoundError, VideocamError

from support.cam_reference import perturbation_by_definition


def _all_hooks_gone(model: nn.Module) -> bool:
    return all(
        not m._forward_hooks and not m._forward_pre_hooks and not m._backward_hooks
        for m in model.modules()
    )


# --- targets ------------------------------------------------------------------------------


def test_target_forms_agree(small_cnn) -> None:
    model = small_cnn(2)
    x = torch.randn(3, 3, 12, 12)
    reference = compute_cam(model, x, "features.3", [2, 2, 2])
    assert reference.amax(dim=(1, 2)).min() > 0
    for targets in (
        2,
        (2, 2, 2),
        torch.tensor([2, 2, 2]),
        torch.tensor(2),
        lambda out: out[:, 2],  # per-sample scores
        lambda out: torch.full((out.shape[0],), 2),  # per-sample class indices
    ):
        torch.testing.assert_close(compute_cam(model, x, "features.3", targets), reference)


def test_none_and_class_chooser_explain_the_top_class(small_cnn) -> None:
    model = small_cnn(2)
    x = torch.randn(4, 3, 12, 12)
    with torch.no_grad():
        top = model(x).argmax(dim=1).tolist()
    expected = compute_cam(model, x, "features.3", top, "layercam")
    torch.testing.assert_close(compute_cam(model, x, "features.3", None, "layercam"), expected)
    chooser = compute_cam(model, x, "features.3", lambda out: out.argmax(1), "layercam")
    torch.testing.assert_close(chooser, expected)


def test_per_sample_targets_differ(small_cnn) -> None:
    model = small_cnn(2)
    x = torch.randn(1, 3, 12, 12).expand(2, -1, -1, -1)
    cams = compute_cam(model, x, "features.3", [0, 1], "hirescam")
    torch.testing.assert_close(cams[0], compute_cam(model, x[:1], "features.3", [0], "hirescam")[0])
    torch.testing.assert_close(cams[1], compute_cam(model, x[:1], "features.3", [1], "hirescam")[0])
    assert not torch.allclose(cams[0], cams[1])


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        ([0, 1], r"one class index per sample \(3\); got 2"),
        (torch.tensor([0, 1, 2, 3]), r"one class index per sample \(3\); got 4"),
        ([0, 1, 9], "class index 9 out of range for a model with 5 classes"),
        ([0, -1, 2], "must be >= 0"),
        ([0.5, 1, 2], "expected class indices"),
        (torch.tensor([0.0, 1.0, 2.0]), "integer tensor"),
        ("cat", "expected None, an int"),
        (True, "expected None, an int"),
        (lambda out: out[:2, 0], r"shape \(3,\)"),
        (lambda out: out[:, 0].detach(), "do not depend on the model output"),
        (lambda out: out[:, 0] > 0, "dtype torch.bool"),
    ],
)
def test_bad_targets_raise_a_clear_error(small_cnn, targets, message: str) -> None:
    model = small_cnn(2)
    x = torch.randn(3, 3, 8, 8)
    with pytest.raises(CamError, match=message) as info:
        compute_cam(model, x, "features.3", targets)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, VideocamError)
    assert _all_hooks_gone(model)


# --- layers -------------------------------------------------------------------------------


def test_unknown_layer_names_close_and_available_layers(small_cnn) -> None:
    model = small_cnn(2)
    with pytest.raises(LayerNotFoundError, match=r"'features\.9'.*features\.\d.*top-level.*fc"):
        compute_cam(model, torch.randn(1, 3, 8, 8), "features.9", [0])
    with pytest.raises(LayerNotFoundError, match="top-level layers: features, pool"):
        target_layer(model, "zzz")
    with pytest.raises(LayerNotFoundError, match="not a submodule"):
        target_layer(model, nn.Conv2d(1, 1, 1))


def test_layer_as_module_or_name(small_cnn) -> None:
    model = small_cnn(2)
    x = torch.randn(2, 3, 8, 8)
    assert target_layer(model, model.features[3]) == ("features.3", model.features[3])
    torch.testing.assert_close(
        compute_cam(model, x, model.features[3], [0, 1]),
        compute_cam(model, x, "features.3", [0, 1]),
    )


def test_layer_that_runs_twice_or_off_the_output_path_is_rejected() -> None:
    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 1)
            self.side = nn.Conv2d(3, 3, 1)
            self.fc = nn.Linear(3, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.side(x)  # computed and thrown away
            return self.fc(self.conv(self.conv(x)).mean(dim=(2, 3)))

    model = Twice()
    x = torch.randn(1, 3, 4, 4)
    with pytest.raises(CamError, match="ran 2 times"):
        compute_cam(model, x, "conv", [0])
    with pytest.raises(CamError, match="'side': the explained score does not depend on its output"):
        compute_cam(model, x, "side", [0])
    assert _all_hooks_gone(model)


# --- shapes -------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_shapes_2d_3d_and_upsampled(small_cnn, method: str) -> None:
    x2 = torch.randn(2, 3, 10, 14)
    assert compute_cam(small_cnn(2), x2, "features.3", [0, 1], method).shape == (2, 5, 7)
    up2 = compute_cam(small_cnn(2), x2, "features.3", [0, 1], method, upsample=True)
    assert up2.shape == (2, 10, 14)
    x3 = torch.randn(2, 3, 6, 10, 14)
    assert compute_cam(small_cnn(3), x3, "features.3", [0, 1], method).shape == (2, 3, 5, 7)
    up3 = compute_cam(small_cnn(3), x3, "features.3", [0, 1], method, upsample=True)
    assert up3.shape == (2, 6, 10, 14)
    for cams in (up2, up3):
        assert cams.dtype == torch.float32
        assert not cams.requires_grad
        assert cams.min() >= 0


def test_upsample_is_trilinear_interpolation_of_the_raw_map(small_cnn) -> None:
    model = small_cnn(3)
    x = torch.randn(1, 3, 6, 10, 14)
    raw = compute_cam(model, x, "features.3", [1])
    up = compute_cam(model, x, "features.3", [1], upsample=True)
    expected = nn.functional.interpolate(
        raw[:, None], size=(6, 10, 14), mode="trilinear", align_corners=False
    )[:, 0]
    torch.testing.assert_close(up, expected)


def test_cam_and_output_gives_maps_and_logits(small_cnn) -> None:
    model = small_cnn(3)
    x = torch.randn(2, 3, 4, 8, 8)
    result = cam_and_output(model, x, "features.3", [3, 4], "gradcam++")
    assert isinstance(result, CamOutput)
    with torch.no_grad():
        torch.testing.assert_close(result.output, model(x))
    assert result.output.dtype == torch.float32
    assert not result.output.requires_grad
    torch.testing.assert_close(
        result.cams, compute_cam(model, x, "features.3", [3, 4], "gradcam++")
    )


class _TokenBlock(nn.Module):
    """Returns ``(tokens, thw)`` like torchvision's MViT blocks."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.mix = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor, thw: tuple[int, int, int]):
        return torch.relu(self.mix(x)), thw


class _TokenModel(nn.Module):
    """Conv3d patch embedding -> tokens (N, L, C) -> tuple-returning block -> mean -> linear."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.embed = nn.Conv3d(3, 6, kernel_size=(2, 4, 4), stride=(2, 4, 4))
        self.block = _TokenBlock(6)
        self.head = nn.Linear(6, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.embed(x)
        thw = tuple(tokens.shape[2:])
        tokens = tokens.flatten(2).transpose(1, 2)
        tokens, _ = self.block(tokens, thw)
        return self.head(tokens.mean(dim=1))


def _tokens_to_grid(tokens: torch.Tensor, input_shape: torch.Size) -> torch.Tensor:
    t, h, w = input_shape[2] // 2, input_shape[3] // 4, input_shape[4] // 4
    return tokens.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], t, h, w)


@pytest.mark.parametrize("method", METHODS)
def test_tuple_returning_layer_with_token_reshape(method: str) -> None:
    model = _TokenModel().eval()
    x = torch.randn(2, 3, 4, 8, 12)
    cams = compute_cam(model, x, "block", [0, 3], method, reshape=_tokens_to_grid)
    assert cams.shape == (2, 2, 2, 3)

    # Reference: a hand-made leaf on the block's tokens, gradients taken by hand.
    tokens = model.block(model.embed(x).flatten(2).transpose(1, 2), (2, 2, 3))[0]
    leaf = tokens.detach().requires_grad_(True)
    logits = model.head(leaf.mean(dim=1))
    (grad,) = torch.autograd.grad(logits[[0, 1], [0, 3]].sum(), leaf)
    if get_method(method).perturbation:

        def ablate(tokens: torch.Tensor, c: int) -> torch.Tensor:
            tokens[..., c] = 0
            return tokens

        expected = perturbation_by_definition(
            method, model, x, "block", [0, 3], _tokens_to_grid, ablate
        )
    else:
        expected = get_method(method).function(
            _tokens_to_grid(leaf.detach(), x.shape), _tokens_to_grid(grad, x.shape)
        )
    torch.testing.assert_close(cams, expected, rtol=1e-5, atol=1e-6)
    up = compute_cam(model, x, "block", [0, 3], method, upsample=True, reshape=_tokens_to_grid)
    assert up.shape == (2, 4, 8, 12)


def test_layer_without_positional_axes_explains_reshape(small_cnn) -> None:
    with pytest.raises(CamError, match=r"'flatten'.*got \(1, 6\)\. Pass reshape="):
        compute_cam(small_cnn(2), torch.randn(1, 3, 8, 8), "flatten", [0])


class _ChannelsLast(nn.Module):
    """Like Swin3D: features (N, T, H, W, C); the target layer is a LayerNorm over C."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(2)
        self.embed = nn.Conv3d(3, 5, kernel_size=(1, 2, 2), stride=(1, 2, 2))
        self.norm = nn.LayerNorm(5)
        self.head = nn.Linear(5, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.norm(self.embed(x).permute(0, 2, 3, 4, 1))
        return self.head(features.square().mean(dim=(1, 2, 3)))


@pytest.mark.parametrize("method", METHODS)
def test_channels_last_reshape_matches_hand_permuted_layer(method: str) -> None:
    model = _ChannelsLast().eval()
    x = torch.randn(2, 3, 3, 6, 8)
    cams = compute_cam(
        model, x, "norm", [0, 2], method, reshape=lambda a, _shape: a.permute(0, 4, 1, 2, 3)
    )
    assert cams.shape == (2, 3, 3, 4)

    # Reference: the same network written channels-first around a hand-made leaf.
    features = model.norm(model.embed(x).permute(0, 2, 3, 4, 1)).permute(0, 4, 1, 2, 3)
    leaf = features.detach().requires_grad_(True)
    logits = model.head(leaf.square().mean(dim=(2, 3, 4)))
    (grad,) = torch.autograd.grad(logits[[0, 1], [0, 2]].sum(), leaf)
    if get_method(method).perturbation:

        def ablate(features: torch.Tensor, c: int) -> torch.Tensor:
            features[..., c] = 0
            return features

        expected = perturbation_by_definition(
            method, model, x, "norm", [0, 2], lambda a, _s: a.permute(0, 4, 1, 2, 3), ablate
        )
    else:
        expected = get_method(method).function(leaf.detach(), grad)
    torch.testing.assert_close(cams, expected, rtol=1e-5, atol=1e-6)


# --- side effects -------------------------------------------------------------------------


def _assert_untouched(model, x, x_before, training_before, requires_grad_before) -> None:
    assert _all_hooks_gone(model)
    assert all(p.grad is None for p in model.parameters())
    assert [m.training for m in model.modules()] == training_before
    assert [p.requires_grad for p in model.parameters()] == requires_grad_before
    assert torch.equal(x, x_before)
    assert not x.requires_grad
    assert x.grad is None


@pytest.mark.parametrize("method", METHODS)
def test_no_side_effects(small_cnn, method: str) -> None:
    model = small_cnn(3).train()
    model.features[1].eval()  # mixed modes must come back exactly, not as one train(True)
    model.features[0].weight.requires_grad_(False)  # some parameters frozen beforehand
    training_before = [m.training for m in model.modules()]
    requires_grad_before = [p.requires_grad for p in model.parameters()]
    running_mean = model.features[1].running_mean.clone()
    x = torch.randn(2, 3, 4, 8, 8)
    x_before = x.clone()

    seen_training = []
    model.fc.register_forward_pre_hook(lambda m, a: seen_training.append(m.training))
    compute_cam(model, x, "features.3", [0, 1], method)
    model.fc._forward_pre_hooks.clear()

    # eval mode during the call (perturbation methods run the model more than once)
    assert seen_training
    assert not any(seen_training)
    assert len(seen_training) == 1 or get_method(method).perturbation
    _assert_untouched(model, x, x_before, training_before, requires_grad_before)
    torch.testing.assert_close(model.features[1].running_mean, running_mean)


class _Explodes(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.conv(x)
        raise RuntimeError("boom after the target layer")


@pytest.mark.parametrize("method", METHODS)
def test_no_side_effects_when_the_forward_raises(method: str) -> None:
    model = _Explodes().train()
    model.conv.bias.requires_grad_(False)
    training_before = [m.training for m in model.modules()]
    requires_grad_before = [p.requires_grad for p in model.parameters()]
    x = torch.randn(1, 3, 6, 6)
    x_before = x.clone()
    with pytest.raises(RuntimeError, match="boom"):
        compute_cam(model, x, "conv", [0], method)
    _assert_untouched(model, x, x_before, training_before, requires_grad_before)


def test_no_side_effects_when_the_target_callable_raises(small_cnn) -> None:
    model = small_cnn(2).train()
    x = torch.randn(1, 3, 8, 8)

    def bad_target(out: torch.Tensor) -> torch.Tensor:
        raise KeyError("no such class")

    training_before = [m.training for m in model.modules()]
    with pytest.raises(KeyError):
        compute_cam(model, x, "features.3", bad_target)
    n_parameters = len(list(model.parameters()))
    _assert_untouched(model, x, x.clone(), training_before, [True] * n_parameters)


def test_in_place_op_after_the_target_layer(fixed_model, fixed_input) -> None:
    """ReLU(inplace=True) downstream may neither fail on the leaf nor change the activations."""
    plain = fixed_model(2)
    inplace = nn.Sequential(plain[0], nn.ReLU(inplace=True), *list(plain)[1:])
    relu_copy = nn.Sequential(plain[0], nn.ReLU(), *list(plain)[1:])
    x = fixed_input(2)
    for method in METHODS:
        torch.testing.assert_close(
            compute_cam(inplace, x, "0", [0, 1], method),
            compute_cam(relu_copy, x, "0", [0, 1], method),
        )


@pytest.mark.parametrize("mode", [torch.no_grad, torch.inference_mode])
def test_works_inside_no_grad_and_inference_mode(small_cnn, mode) -> None:
    model = small_cnn(2)
    x = torch.randn(2, 3, 8, 8)
    expected = compute_cam(model, x, "features.3", [0, 1])
    with mode():
        x_inner = torch.randn(2, 3, 8, 8).copy_(x)
        cams = compute_cam(model, x_inner, "features.3", [0, 1])
    torch.testing.assert_close(cams, expected)


# --- autocast -----------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["gradcam", "layercam", "eigencam"])
def test_autocast_bfloat16_close_to_float32(small_cnn, method: str) -> None:
    model = small_cnn(3)
    x = torch.randn(2, 3, 4, 16, 16)
    reference = compute_cam(model, x, "features.3", [0, 1], method)
    result = cam_and_output(model, x, "features.3", [0, 1], method, autocast=True)
    assert result.cams.dtype == torch.float32
    assert result.output.dtype == torch.float32
    error = (result.cams - reference).abs().max() / reference.abs().max()
    assert error < 0.05
    assert torch.corrcoef(torch.stack([result.cams.flatten(), reference.flatten()]))[0, 1] > 0.99


def test_autocast_accepts_a_dtype_and_rejects_nonsense(small_cnn) -> None:
    model = small_cnn(2)
    x = torch.randn(1, 3, 8, 8)
    assert compute_cam(model, x, "features.3", [0], autocast=torch.bfloat16).dtype == torch.float32
    with pytest.raises(CamError, match="autocast"):
        compute_cam(model, x, "features.3", [0], autocast="bf16")  # type: ignore[arg-type]


# --- a moving object ----------------------------------------------------------------------


def _bright_pixel_detector() -> nn.Module:
    """Fixed weights: a 3x3 box filter over the mean of RGB, stride 2, ReLU, pool, linear.

    Class 0 = "something bright": its logit grows with brightness anywhere in the clip.
    """
    conv = nn.Conv3d(3, 2, kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))
    fc = nn.Linear(2, 2)
    with torch.no_grad():
        conv.weight.fill_(1.0 / 27)
        conv.weight[1].neg_()
        conv.bias.zero_()
        fc.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
        fc.bias.zero_()
    return nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool3d(1), nn.Flatten(), fc).eval()


@pytest.mark.parametrize("method", METHODS)
def test_attribution_follows_a_moving_bright_square(method: str) -> None:
    n_frames, size, side = 6, 32, 6
    clip = torch.zeros(1, 3, n_frames, size, size)
    corners = [(2 + 4 * t, 20 - 3 * t) for t in range(n_frames)]  # moves right and up
    for t, (x0, y0) in enumerate(corners):
        clip[0, :, t, y0 : y0 + side, x0 : x0 + side] = 1.0
    cams = compute_cam(_bright_pixel_detector(), clip, "0", [0], method, upsample=True)[0]
    assert cams.shape == (n_frames, size, size)
    for t, (x0, y0) in enumerate(corners):
        row, col = divmod(int(cams[t].argmax()), size)
        assert y0 - 1 <= row <= y0 + side, (t, row, col)
        assert x0 - 1 <= col <= x0 + side, (t, row, col)
        # the stride-2 box filter blurs the map by about 2 pixels around the square
        near = cams[t, max(y0 - 2, 0) : y0 + side + 2, max(x0 - 2, 0) : x0 + side + 2].sum()
        assert near > 0.9 * cams[t].sum()


# --- inputs -------------------------------------------------------------------------------


def test_bad_inputs_raise(small_cnn) -> None:
    model = small_cnn(2)
    with pytest.raises(CamError, match="inputs"):
        compute_cam(model, torch.randn(0, 3, 8, 8), "features.3", [])
    with pytest.raises(CamError, match="inputs"):
        compute_cam(model, [[1.0]], "features.3", [0])  # type: ignore[arg-type]


@pytest.mark.gpu
@pytest.mark.parametrize("method", METHODS)
def test_cuda_matches_cpu(small_cnn, method: str) -> None:
    model = small_cnn(3)
    x = torch.randn(2, 3, 4, 16, 16)
    expected = compute_cam(model, x, "features.3", [0, 1], method)
    result = cam_and_output(model.cuda(), x.cuda(), "features.3", [0, 1], method)
    assert result.cams.device.type == "cuda"
    assert result.output.device.type == "cuda"
    torch.testing.assert_close(result.cams.cpu(), expected, rtol=1e-3, atol=1e-4)
    bf16 = compute_cam(model, x.cuda(), "features.3", [0, 1], method, autocast=True)
    assert bf16.dtype == torch.float32
