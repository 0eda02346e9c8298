"""Linear interpolation with half-sample centres (``align_corners=False``), in numpy.

One implementation for every place that resizes: window maps along time (temporal), maps to
frame size for boxes (scoring) and heatmaps (render). Same results as
``torch.nn.functional.interpolate`` in its linear/bilinear modes.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np


@lru_cache(maxsize=128)
def _taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The two source pixels and the weight of the second, per output pixel (half-pixel centres)."""
    if n_in < 1 or n_out < 1:
        raise ValueError(f"sizes must be >= 1, got {n_in} -> {n_out}")
    src = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    src = np.maximum(src, 0.0)
    lo = np.minimum(np.floor(src).astype(np.intp), n_in - 1)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = (src - lo).astype(np.float32)
    for arr in (lo, hi, frac):
        arr.setflags(write=False)
    return lo, hi, frac


@lru_cache(maxsize=128)
def interpolation_matrix(n_out: int, n_in: int) -> np.ndarray:
    """Linear-interpolation weights along one axis, half-pixel centres (``align_corners=False``).

    Source coordinate of output pixel ``i`` is ``(i + 0.5) * n_in / n_out - 0.5``, clamped at 0,
    as in ``torch.nn.functional.interpolate`` and OpenCV's ``INTER_LINEAR``.

    Returns:
        float32, shape (n_out, n_in); rows sum to 1. :func:`resize_bilinear` applies the same
        weights as two-tap gathers, which is cheaper than the matrix product.
    """
    lo, hi, frac = _taps(n_in, n_out)
    matrix = np.zeros((n_out, n_in), dtype=np.float32)
    rows = np.arange(n_out)
    np.add.at(matrix, (rows, lo), 1.0 - frac)
    np.add.at(matrix, (rows, hi), frac)
    matrix.setflags(write=False)
    return matrix


def resize_axis(arr: np.ndarray, n_out: int, axis: int) -> np.ndarray:
    """Linear interpolation along one axis: ``a[lo] + (a[lo + 1] - a[lo]) * frac``."""
    lo, _, frac = _taps(arr.shape[axis], n_out)
    # Differences between neighbours, 0 after the last sample (where hi == lo).
    step = np.diff(arr, axis=axis, append=np.take(arr, [-1], axis=axis))
    shape = [1] * arr.ndim
    shape[axis] = n_out
    out = np.take(arr, lo, axis=axis)
    delta = np.take(step, lo, axis=axis)
    delta *= frac.reshape(shape)
    out += delta
    return out


def resize_bilinear(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of one map or a stack of maps, separable (columns, then rows).

    Equivalent to ``Ry @ m @ Rx.T`` with :func:`interpolation_matrix` weights, computed as two-tap
    gathers: the columns of the small map first, then whole rows (contiguous copies). This avoids
    BLAS, whose threads spin badly on busy shared cores, and is several times faster than the
    matrix product or gathers along the last axis at video sizes.

    Args:
        maps: float, shape (h, w) or (n, h, w).
        size: (H, W) of the result.

    Returns:
        float32, shape (H, W) or (n, H, W); equals ``torch.nn.functional.interpolate(...,
        mode="bilinear", align_corners=False)`` to float32 rounding.
    """
    arr = np.asarray(maps, dtype=np.float32)
    if arr.ndim not in (2, 3):
        raise ValueError(f"maps must have shape (h, w) or (n, h, w), got {arr.shape}")
    out_h, out_w = (int(v) for v in size)
    return resize_axis(resize_axis(arr, out_w, arr.ndim - 1), out_h, arr.ndim - 2)
