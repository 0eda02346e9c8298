"""Localisation: the box around a frame's high-attribution region, in original pixels.

As in the Grad-CAM paper's localisation experiment: upsample the map to the frame, keep the
pixels at or above a fraction of the map's maximum, and box the largest connected region.
"""

from __future__ import annotations

import numpy as np

from videocam._interp import resize_bilinear


def cam_box(
    cam: np.ndarray, frame_size: tuple[int, int], threshold: float = 0.5
) -> tuple[int, int, int, int]:
    """Box around the largest region where the upsampled map is >= ``threshold`` x its maximum.

    Args:
        cam: float, shape (h, w), >= 0: one frame's map at model resolution.
        frame_size: (H, W) of the original frame.
        threshold: fraction of the map's maximum.

    Returns:
        (x0, y0, x1, y1) in pixels of the original frame, x1/y1 exclusive; (-1, -1, -1, -1) when
        the map is zero everywhere.
    """
    from scipy import ndimage

    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    up = resize_bilinear(cam, frame_size)
    peak = float(up.max())
    if peak <= 0:
        return (-1, -1, -1, -1)
    labels, n = ndimage.label(up >= threshold * peak)
    sizes = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    biggest = int(np.argmax(sizes)) + 1
    ys, xs = ndimage.find_objects((labels == biggest).astype(np.int32))[0]
    return (int(xs.start), int(ys.start), int(xs.stop), int(ys.stop))
