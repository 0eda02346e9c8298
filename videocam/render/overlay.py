"""Pixel work shared by every renderer, in pure numpy: colormaps, map resizing, blending, boxes.

Layouts: frames ``(H, W, 3) uint8 RGB`` (or a batch ``(B, H, W, 3)``); maps ``(h, w)`` or
``(n, h, w)`` float in [0, 1]; boxes ``(x0, y0, x1, y1)`` in pixels with x1/y1 exclusive.

Blending is done in 16-bit integer arithmetic with the opacity quantised to 1/256, which is exact
at the ends (opacity 0 returns the frame, opacity 1 the colormap colour) and about twice as fast
as float32 on large frames.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from videocam._interp import resize_bilinear

__all__ = [
    "YUV_MATRICES",
    "blend_heatmap",
    "blend_layers",
    "blend_plane",
    "colormap_lut",
    "draw_box",
    "heat_index",
    "heat_layers",
    "heat_levels",
    "heat_opacity",
    "resize_bilinear",
    "rgb_to_yuv",
    "rgb_to_yuv420",
    "yuv_blend_tables",
]

#: Luma weights (Kr, Kb) of the Y'CbCr matrices the annotated clip is blended in.
YUV_MATRICES: dict[str, tuple[float, float]] = {"bt709": (0.2126, 0.0722), "bt601": (0.299, 0.114)}


@lru_cache(maxsize=16)
def colormap_lut(name: str = "jet") -> np.ndarray:
    """A matplotlib colormap as a lookup table.

    Args:
        name: a matplotlib colormap name (``jet``, ``inferno``, ``turbo``...).

    Returns:
        uint8, shape (256, 3), read-only: entry ``i`` is the colour of ``i / 255``, rounded.

    Raises:
        ValueError: unknown colormap name.
    """
    import matplotlib

    try:
        cmap = matplotlib.colormaps[name]
    except KeyError as exc:
        raise ValueError(f"unknown colormap {name!r} (see matplotlib.colormaps)") from exc
    rgba = np.asarray(cmap(np.linspace(0.0, 1.0, 256)), dtype=np.float64)
    lut = np.rint(rgba[:, :3] * 255.0).astype(np.uint8)
    lut.setflags(write=False)
    return lut


def heat_opacity(heat: np.ndarray, alpha: float) -> np.ndarray:
    """Per-pixel opacity of the heatmap: ``alpha * heat * (2 - heat)``.

    An ease-out curve: heat 0 leaves the frame untouched and the opacity rises gently from there
    (no visible contour where the map first leaves 0, as a square root would draw), while
    moderate attribution is already clearly coloured (heat 0.5 gets 3/4 of ``alpha``). Since the
    maps share one scale for the whole video, a quiet frame keeps a faint overlay.
    """
    h = np.clip(heat, 0.0, 1.0, dtype=np.float32)
    return np.float32(alpha) * h * (np.float32(2.0) - h)


def heat_index(heat: np.ndarray) -> np.ndarray:
    """Heat in [0, 1] (clipped; NaN -> 0) quantised to colormap levels: uint8 ``round(255 h)``."""
    scaled = np.nan_to_num(np.asarray(heat, dtype=np.float32)) * np.float32(255.0)
    np.clip(scaled, 0.0, 255.0, out=scaled)
    np.rint(scaled, out=scaled)
    return scaled.astype(np.uint8)


def heat_levels(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Upsample low-resolution maps straight to colormap levels.

    Same result as ``heat_index(resize_bilinear(maps, size))``, but the clipping and scaling are
    done on the small maps (bilinear weights are convex, so the result stays in range), which
    saves several full-size passes per frame.

    Args:
        maps: float, shape (h, w) or (n, h, w), in [0, 1] (clipped; NaN -> 0).
        size: (H, W) of the result.

    Returns:
        uint8, shape (H, W) or (n, H, W).
    """
    small = np.nan_to_num(np.asarray(maps, dtype=np.float32))
    small = np.clip(small, 0.0, 1.0) * np.float32(255.0)
    levels = resize_bilinear(small, size)
    np.rint(levels, out=levels)
    np.clip(levels, 0.0, 255.0, out=levels)
    return levels.astype(np.uint8)


def _level_tables(lut: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Per heat level and channel: ``keep = 256 - a``, ``add = colour * a + 128``."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    lut = np.asarray(lut)
    if lut.shape != (256, 3):
        raise ValueError(f"lut must have shape (256, 3), got {lut.shape}")
    levels = np.arange(256, dtype=np.float32) / np.float32(255.0)
    weight = np.rint(heat_opacity(levels, alpha) * 256.0).astype(np.uint16)[:, None]
    add = lut.astype(np.uint16) * weight + np.uint16(128)
    keep = np.repeat(np.uint16(256) - weight, 3, axis=1)
    return keep, add


def heat_layers(
    heat: np.ndarray, lut: np.ndarray, alpha: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """Precompute what blending a map needs, so frames that share a map reuse it.

    Args:
        heat: float, shape (..., H, W), in [0, 1] (clipped), or uint8 levels from
            :func:`heat_levels` / :func:`heat_index`.
        lut: uint8, shape (256, 3), from :func:`colormap_lut`.
        alpha: opacity at heat 1, in [0, 1].

    Returns:
        ``(keep, add)``: uint16, both shape (..., H, W, 3) and C-contiguous, with
        ``keep = 256 - a`` and ``add = colour * a + 128`` where ``a = round(256 * opacity)`` and
        the opacity is taken at the heat's colormap level; the blend is
        ``(frame * keep + add) >> 8``. ``keep`` repeats the weight over the channels so that the
        per-frame blend runs on contiguous arrays (a broadcast channel axis is ~8x slower).
    """
    keep_table, add_table = _level_tables(lut, alpha)
    index = heat if np.asarray(heat).dtype == np.uint8 else heat_index(heat)
    index = np.asarray(index).astype(np.intp)  # np.take's fast path wants native indices
    return np.take(keep_table, index, axis=0), np.take(add_table, index, axis=0)


def blend_layers(
    frames: np.ndarray,
    keep: np.ndarray,
    add: np.ndarray,
    out: np.ndarray | None = None,
    scratch: np.ndarray | None = None,
) -> np.ndarray:
    """Blend precomputed :func:`heat_layers` into frames.

    Args:
        frames: uint8, shape (..., H, W, 3).
        keep, add: from :func:`heat_layers`, broadcastable to ``frames``.
        out: optional uint8 array shaped like ``frames`` to write into (may be ``frames``).
        scratch: optional uint16 array shaped like ``frames``, reused between calls to save
            allocations.

    Returns:
        uint8, shape of ``frames``.
    """
    # frame * keep + add <= 255 * 256 + 128 < 2**16: no overflow in uint16.
    acc = np.multiply(frames, keep, out=scratch, dtype=np.uint16)
    acc += add
    acc >>= 8
    if out is None:
        return acc.astype(np.uint8)
    np.copyto(out, acc, casting="unsafe")
    return out


def blend_heatmap(
    frame: np.ndarray, heat: np.ndarray, lut: np.ndarray, alpha: float = 0.5
) -> np.ndarray:
    """Alpha-blend a colour-mapped heatmap into a frame (or a batch of frames).

    The heat is quantised to the 256 colormap levels, looked up in ``lut`` and blended with
    opacity ``alpha * heat * (2 - heat)`` per pixel (see :func:`heat_opacity`): heat 0 leaves
    the frame unchanged; heat 1 with ``alpha=1`` gives the colormap colour.

    Args:
        frame: uint8, shape (H, W, 3) or (B, H, W, 3).
        heat: float, shape (H, W) or (B, H, W), in [0, 1] (clipped).
        lut: uint8, shape (256, 3), from :func:`colormap_lut`.
        alpha: opacity at heat 1, in [0, 1].

    Returns:
        uint8, same shape as ``frame`` (a new array).
    """
    frame = np.asarray(frame)
    if frame.dtype != np.uint8 or frame.ndim not in (3, 4) or frame.shape[-1] != 3:
        raise ValueError(f"frame must be uint8 (H, W, 3) or (B, H, W, 3), got {frame.shape}")
    heat = np.asarray(heat)
    if heat.shape[-2:] != frame.shape[-3:-1]:
        raise ValueError(f"heat shape {heat.shape} does not match frame shape {frame.shape}")
    keep, add = heat_layers(heat, lut, alpha)
    return blend_layers(frame, keep, add)


def draw_box(
    frame: np.ndarray,
    box: Sequence[int] | np.ndarray,
    color: Sequence[int] = (255, 255, 255),
    thickness: int = 2,
) -> np.ndarray:
    """Draw a rectangle outline in place, inside the box, clipped to the frame.

    Args:
        frame: uint8, shape (H, W, 3); modified in place.
        box: (x0, y0, x1, y1) in pixels, x1/y1 exclusive; the outline covers the ``thickness``
            outermost rows and columns of the box (parts outside the frame are not drawn).
        color: RGB.
        thickness: line width in pixels (>= 1).

    Returns:
        ``frame``.
    """
    x0, y0, x1, y1 = (int(v) for v in box)
    if thickness < 1:
        raise ValueError(f"thickness must be >= 1, got {thickness}")
    height, width = frame.shape[:2]
    if x1 <= x0 or y1 <= y0:
        return frame
    t = min(thickness, x1 - x0, y1 - y0)
    rgb = np.asarray(color, dtype=np.uint8)

    def fill(ya: int, yb: int, xa: int, xb: int) -> None:
        ya, yb = max(ya, 0), min(yb, height)
        xa, xb = max(xa, 0), min(xb, width)
        if ya < yb and xa < xb:
            frame[ya:yb, xa:xb] = rgb

    fill(y0, y0 + t, x0, x1)  # top
    fill(y1 - t, y1, x0, x1)  # bottom
    fill(y0, y1, x0, x0 + t)  # left
    fill(y0, y1, x1 - t, x1)  # right
    return frame


# -- Y'CbCr: blending straight into the decoded planes ---------------------------------------


def _matrix(name: str) -> tuple[float, float]:
    try:
        return YUV_MATRICES[name]
    except KeyError as exc:
        raise ValueError(f"matrix must be one of {sorted(YUV_MATRICES)}, got {name!r}") from exc


def rgb_to_yuv(rgb: np.ndarray, matrix: str = "bt709") -> np.ndarray:
    """RGB to limited-range Y'CbCr (Y' in [16, 235], Cb/Cr in [16, 240]), unrounded.

    Args:
        rgb: shape (..., 3), values in [0, 255].
        matrix: a key of :data:`YUV_MATRICES`.

    Returns:
        float64, shape (..., 3): Y', Cb, Cr.
    """
    kr, kb = _matrix(matrix)
    rgb = np.asarray(rgb, dtype=np.float64)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    luma = kr * r + (1.0 - kr - kb) * g + kb * b
    return np.stack(
        [
            16.0 + luma * (219.0 / 255.0),
            128.0 + (b - luma) * (224.0 / 255.0 / (2.0 * (1.0 - kb))),
            128.0 + (r - luma) * (224.0 / 255.0 / (2.0 * (1.0 - kr))),
        ],
        axis=-1,
    )


def rgb_to_yuv420(
    rgb: np.ndarray, matrix: str = "bt709"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An RGB picture as 4:2:0 planes: full-resolution Y', Cb and Cr of each 2x2 block's mean.

    The matrix is affine, so the chroma of the mean colour is the mean of the pixels' chroma.

    Args:
        rgb: uint8, shape (H, W, 3).
        matrix: a key of :data:`YUV_MATRICES`.

    Returns:
        uint8 ``(y (H, W), u ((H+1)//2, (W+1)//2), v (same))``, rounded; odd edges average the
        pixels they have.
    """
    kr, kb = _matrix(matrix)
    f = np.asarray(rgb, dtype=np.float32)
    height, width = f.shape[:2]
    luma = f[..., 0] * np.float32(kr * 219 / 255)
    luma += f[..., 1] * np.float32((1 - kr - kb) * 219 / 255)
    luma += f[..., 2] * np.float32(kb * 219 / 255)
    luma += np.float32(16.5)  # + 0.5: truncation below rounds
    y = luma.astype(np.uint8)
    if height % 2 or width % 2:  # repeat the last row/column: the mean of what there is
        f = np.pad(f, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")
    mean = f[0::2, 0::2] + f[1::2, 0::2]
    mean += f[0::2, 1::2]
    mean += f[1::2, 1::2]
    mean *= np.float32(0.25)
    uv = np.rint(rgb_to_yuv(mean, matrix)[..., 1:]).astype(np.uint8)
    return y, np.ascontiguousarray(uv[..., 0]), np.ascontiguousarray(uv[..., 1])


@lru_cache(maxsize=8)
def yuv_blend_tables(
    colormap: str = "jet", alpha: float = 0.5, matrix: str = "bt709"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The heatmap blend of :func:`blend_heatmap` as one lookup per Y'CbCr sample.

    Entry ``level << 8 | value`` of a plane's table is ``(value * keep + add) >> 8`` with the
    weights of :func:`heat_layers`, where the colour is the colormap's colour at ``level`` in
    limited-range Y'CbCr (rounded). Blending in Y'CbCr is blending in RGB, since the matrix is
    affine and the weights sum to one; Cb/Cr are blended at 4:2:0 resolution with the level of
    the top-left luma sample of each 2x2 block.

    Returns:
        three read-only uint8 arrays of 65536 entries (Y', Cb, Cr), for :func:`blend_plane`.
    """
    colours = np.clip(np.rint(rgb_to_yuv(colormap_lut(colormap), matrix)), 0, 255)
    keep, add = _level_tables(colours.astype(np.uint8), alpha)
    values = np.arange(256, dtype=np.uint32)[None, :, None]
    tables = (values * keep[:, None, :] + add[:, None, :]) >> 8  # (level, value, plane)
    out = []
    for plane in range(3):
        table = np.ascontiguousarray(tables[..., plane], dtype=np.uint8).reshape(-1)
        table.setflags(write=False)
        out.append(table)
    return out[0], out[1], out[2]


def blend_plane(
    plane: np.ndarray,
    levels: np.ndarray,
    table: np.ndarray,
    out: np.ndarray | None = None,
    scratch: np.ndarray | None = None,
) -> np.ndarray:
    """Blend heat ``levels`` (uint8, from :func:`heat_levels`) into one Y'CbCr plane.

    Args:
        plane: uint8, shape (H, W).
        levels: uint8, shape (H, W).
        table: one of :func:`yuv_blend_tables`.
        out: optional uint8 (H, W) to write into (may be a strided view, or ``plane``).
        scratch: optional uint16 (H, W), reused between calls.

    Returns:
        uint8, shape (H, W): ``table[levels << 8 | plane]``.
    """
    index = np.left_shift(levels, 8, out=scratch, dtype=np.uint16)
    np.bitwise_or(index, plane, out=index)
    if out is None:
        out = np.empty(plane.shape, dtype=np.uint8)
    # Every index is < 65536 == len(table): "wrap" skips the bounds check and the buffering.
    return np.take(table, index, out=out, mode="wrap")
