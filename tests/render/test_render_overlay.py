"""Colormap tables, bilinear resizing, heatmap blending and boxes (pure numpy)."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest

from videocam._interp import interpolation_matrix
from videocam.render.overlay import (
    blend_heatmap,
    blend_plane,
    colormap_lut,
    draw_box,
    heat_index,
    heat_levels,
    heat_opacity,
    resize_bilinear,
    rgb_to_yuv,
    rgb_to_yuv420,
    yuv_blend_tables,
)


@pytest.mark.parametrize("name", ["jet", "inferno", "turbo"])
def test_colormap_lut_matches_matplotlib(name: str) -> None:
    lut = colormap_lut(name)
    assert lut.shape == (256, 3)
    assert lut.dtype == np.uint8
    cmap = matplotlib.colormaps[name]
    for level in (0, 1, 128, 254, 255):
        expected = np.rint(np.asarray(cmap(level / 255)[:3]) * 255).astype(np.uint8)
        np.testing.assert_array_equal(lut[level], expected)
    assert colormap_lut(name) is lut  # computed once
    assert not lut.flags.writeable


def test_colormap_lut_unknown_name() -> None:
    with pytest.raises(ValueError, match="no_such_map"):
        colormap_lut("no_such_map")


@pytest.mark.parametrize(
    ("src", "dst"),
    [((7, 7), (48, 64)), ((2, 3), (5, 4)), ((8, 8), (3, 17)), ((1, 1), (4, 4)), ((5, 9), (5, 9))],
)
def test_resize_bilinear_equals_torch(src: tuple[int, int], dst: tuple[int, int]) -> None:
    torch = pytest.importorskip("torch")
    maps = np.random.default_rng(1).random((3, *src)).astype(np.float32)
    expected = torch.nn.functional.interpolate(
        torch.from_numpy(maps)[:, None], size=dst, mode="bilinear", align_corners=False
    )[:, 0].numpy()
    out = resize_bilinear(maps, dst)
    assert out.dtype == np.float32
    assert out.shape == (3, *dst)
    np.testing.assert_allclose(out, expected, atol=1e-5, rtol=0)
    np.testing.assert_allclose(resize_bilinear(maps[0], dst), expected[0], atol=1e-5, rtol=0)
    # Same weights as the matrix form.
    matrix = interpolation_matrix(dst[0], src[0]) @ maps @ interpolation_matrix(dst[1], src[1]).T
    np.testing.assert_allclose(out, matrix, atol=1e-6, rtol=0)


def test_resize_matrix_rows_sum_to_one() -> None:
    matrix = interpolation_matrix(33, 7)
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0, atol=1e-6)
    assert (matrix >= 0).all()


def _frame(shape: tuple[int, ...] = (6, 8, 3), seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def test_blend_heat_zero_leaves_frame() -> None:
    frame = _frame()
    out = blend_heatmap(frame, np.zeros((6, 8)), colormap_lut("jet"), alpha=1.0)
    np.testing.assert_array_equal(out, frame)
    assert out is not frame


def test_blend_full_heat_full_alpha_gives_lut_colour() -> None:
    lut = colormap_lut("jet")
    out = blend_heatmap(_frame(), np.ones((6, 8)), lut, alpha=1.0)
    np.testing.assert_array_equal(out, np.broadcast_to(lut[255], out.shape))
    # alpha 0: the frame, whatever the heat.
    frame = _frame()
    np.testing.assert_array_equal(blend_heatmap(frame, np.ones((6, 8)), lut, alpha=0.0), frame)


def test_blend_matches_float_formula_and_batches() -> None:
    lut = colormap_lut("inferno")
    frames = _frame((3, 6, 8, 3), seed=2)
    heat = np.random.default_rng(3).random((3, 6, 8)).astype(np.float32)
    out = blend_heatmap(frames, heat, lut, alpha=0.6)
    level = np.rint(heat * 255).astype(int)
    opacity = heat_opacity(level / 255, 0.6)[..., None]
    expected = frames * (1 - opacity) + lut[level] * opacity
    assert np.abs(out - expected).max() <= 1.0
    for k in range(3):
        np.testing.assert_array_equal(blend_heatmap(frames[k], heat[k], lut, 0.6), out[k])


def test_opacity_grows_with_heat() -> None:
    opacity = heat_opacity(np.linspace(0, 1, 11), 0.5)
    assert opacity[0] == 0
    assert opacity[-1] == pytest.approx(0.5)
    assert (np.diff(opacity) > 0).all()


def test_blend_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="does not match"):
        blend_heatmap(_frame(), np.zeros((5, 8)), colormap_lut("jet"))


def _box_mask(shape: tuple[int, int], box: tuple[int, int, int, int], t: int) -> np.ndarray:
    """Reference: pixels of the box whose distance to its border is < t."""
    x0, y0, x1, y1 = box
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]]
    inside = (xs >= x0) & (xs < x1) & (ys >= y0) & (ys < y1)
    inner = (xs >= x0 + t) & (xs < x1 - t) & (ys >= y0 + t) & (ys < y1 - t)
    return inside & ~inner


@pytest.mark.parametrize(
    ("box", "thickness"),
    [
        ((2, 3, 8, 9), 1),
        ((2, 3, 8, 9), 2),
        ((-4, -2, 5, 4), 2),
        ((6, 7, 20, 30), 3),
        ((1, 1, 3, 3), 5),
    ],
)
def test_draw_box_pixels_exactly_on_border(box: tuple[int, int, int, int], thickness: int) -> None:
    frame = np.zeros((10, 12, 3), dtype=np.uint8)
    out = draw_box(frame, box, color=(255, 0, 7), thickness=thickness)
    assert out is frame
    mask = _box_mask((10, 12), box, thickness)
    np.testing.assert_array_equal(frame[mask], np.broadcast_to([255, 0, 7], (mask.sum(), 3)))
    assert (frame[~mask] == 0).all()


def test_draw_box_outside_frame_draws_nothing() -> None:
    frame = np.zeros((10, 12, 3), dtype=np.uint8)
    draw_box(frame, (20, 20, 30, 30))
    draw_box(frame, (5, 5, 5, 9))  # empty box
    assert not frame.any()


def test_heat_levels_equal_index_of_resized_map() -> None:
    maps = np.random.default_rng(4).random((2, 7, 7)).astype(np.float16)
    maps[0, 0, 0], maps[1, 3, 3] = 1.3, np.nan  # out of range and NaN are cleaned first
    levels = heat_levels(maps, (48, 64))
    assert levels.dtype == np.uint8
    assert levels.shape == (2, 48, 64)
    clean = np.clip(np.nan_to_num(maps.astype(np.float32)), 0, 1)
    expected = heat_index(resize_bilinear(clean, (48, 64)))
    assert np.abs(levels.astype(int) - expected).max() <= 1
    assert (levels.astype(int) != expected).mean() < 0.01
    np.testing.assert_array_equal(heat_levels(np.ones((3, 3)), (5, 4)), 255)
    np.testing.assert_array_equal(heat_levels(np.zeros((3, 3)), (5, 4)), 0)


# -- Y'CbCr -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("matrix", "rgb", "expected"),
    [
        # Limited range: black and white on 16 and 235, grey on neutral chroma.
        ("bt709", (0, 0, 0), (16.0, 128.0, 128.0)),
        ("bt709", (255, 255, 255), (235.0, 128.0, 128.0)),
        ("bt601", (128, 128, 128), (16.0 + 128 * 219 / 255, 128.0, 128.0)),
        # Rec. 601 red: Y = 16 + 219 * 0.299; Rec. 709 blue: Y = 16 + 219 * 0.0722,
        # Cr = 128 - 112 * 0.0722 / (1 - 0.2126).
        ("bt601", (255, 0, 0), (81.481, 90.203, 240.0)),
        ("bt709", (0, 0, 255), (31.8118, 240.0, 117.7302)),
    ],
)
def test_rgb_to_yuv_reference_values(
    matrix: str, rgb: tuple[int, int, int], expected: tuple[float, float, float]
) -> None:
    np.testing.assert_allclose(rgb_to_yuv(np.array(rgb), matrix), expected, atol=1e-3)


def test_rgb_to_yuv_rejects_unknown_matrix() -> None:
    with pytest.raises(ValueError, match="bt2020"):
        rgb_to_yuv(np.zeros(3), "bt2020")


@pytest.mark.parametrize("shape", [(4, 6), (5, 7)])
def test_rgb_to_yuv420_is_the_block_mean_of_each_pixel(shape: tuple[int, int]) -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (*shape, 3), dtype=np.uint8)
    y, u, v = rgb_to_yuv420(rgb, "bt601")
    full = rgb_to_yuv(rgb, "bt601")
    np.testing.assert_array_equal(y, np.rint(full[..., 0]))
    chroma = ((shape[0] + 1) // 2, (shape[1] + 1) // 2)
    assert u.shape == v.shape == chroma
    for plane, channel in ((u, 1), (v, 2)):
        for i in range(chroma[0]):
            for j in range(chroma[1]):
                block = full[2 * i : 2 * i + 2, 2 * j : 2 * j + 2, channel]
                assert abs(int(plane[i, j]) - block.mean()) <= 0.5 + 1e-4


def test_yuv_blend_heat_zero_leaves_plane_and_full_heat_gives_colour() -> None:
    tables = yuv_blend_tables("jet", 1.0, "bt709")
    values = np.arange(256, dtype=np.uint8)[None, :]
    colour = np.rint(rgb_to_yuv(colormap_lut("jet")[255], "bt709"))
    for table, expected in zip(tables, colour, strict=True):
        assert table.shape == (65536,)
        assert not table.flags.writeable
        zero = blend_plane(values, np.zeros_like(values), table)
        np.testing.assert_array_equal(zero, values)
        full = blend_plane(values, np.full_like(values, 255), table)
        np.testing.assert_array_equal(full, np.full_like(values, expected))


def test_yuv_blend_equals_rgb_blend_converted() -> None:
    """Blending in Y'CbCr is blending in RGB: the affine matrix commutes with the weights."""
    rng = np.random.default_rng(3)
    frame = rng.integers(0, 256, (1, 64, 3), dtype=np.uint8)
    levels = rng.integers(0, 256, (1, 64), dtype=np.uint8)
    rgb_blend = blend_heatmap(frame, levels / 255.0, colormap_lut("inferno"), alpha=0.7)
    expected = rgb_to_yuv(rgb_blend, "bt601")
    planes = np.rint(rgb_to_yuv(frame, "bt601")).astype(np.uint8)
    tables = yuv_blend_tables("inferno", 0.7, "bt601")
    for channel, table in enumerate(tables):
        got = blend_plane(planes[..., channel], levels, table)
        # Both sides round once per step (colours, pixel values, the blend): within 1.5 levels.
        assert np.abs(got - expected[..., channel]).max() <= 1.5


def test_blend_plane_into_strided_output() -> None:
    table = yuv_blend_tables("jet", 0.5, "bt601")[0]
    plane = np.random.default_rng(1).integers(0, 256, (6, 8), dtype=np.uint8)
    levels = np.random.default_rng(2).integers(0, 256, (6, 8), dtype=np.uint8)
    canvas = np.zeros((10, 16), dtype=np.uint8)
    blend_plane(plane, levels, table, out=canvas[2:8, 4:12])
    expected = table[levels.astype(np.intp) * 256 + plane]
    np.testing.assert_array_equal(canvas[2:8, 4:12], expected)
    assert canvas[:2].sum() == 0
    assert canvas[:, :4].sum() == 0
