"""Average Drop and Increase in Confidence per window, as torch-cam 0.5 defines them
(``torchcam.metrics.ClassificationMetric`` with a softmax; Chattopadhay et al., "Grad-CAM++",
WACV 2018, section 5.1).

For each window of the analysis: its own map of the target (layer resolution, from the pass),
min-max scaled to [0, 1] (``(E - min) / (max - min + 1e-8)``), resized to the model input with
(bi/tri)linear interpolation (``align_corners=False``) and multiplied into the window's
normalised model input. With ``p`` the target's probability on the window and ``p'`` on the
explanation-masked window: drop = ``max(0, p - p') / (p + 1e-7)``, increase = ``p < p'``.
The video's ``average_drop`` and ``increase_in_confidence`` are their means over the windows
(lower drop and higher increase: the map keeps what the model needs).

Memory: one batch of windows (their frames from the pass's store) at a time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from videocam.runtime import autocast as autocast_context
from videocam.runtime import model_input

if TYPE_CHECKING:
    import torch

    from videocam.analysis import PassFrames
    from videocam.models import LoadedModel

__all__ = ["confidence_change", "explanation_masks", "window_confidence"]

#: torch-cam's guards: the map's min-max scaling and the drop's denominator.
_SCALE_EPS = 1e-8
_DROP_EPS = 1e-7


def explanation_masks(maps: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
    """Window maps (b, *S) min-max scaled to [0, 1] per window and resized to ``size``.

    Args:
        maps: float, shape (b, *S), 1 to 3 positional axes.
        size: the model input's positional size, as many axes as S.

    Returns:
        float32, shape (b, *size).
    """
    import torch.nn.functional as F

    maps = maps.float()
    dims = tuple(range(1, maps.ndim))
    maps = maps - maps.amin(dim=dims, keepdim=True)
    maps = maps / (maps.amax(dim=dims, keepdim=True) + _SCALE_EPS)
    mode = {1: "linear", 2: "bilinear", 3: "trilinear"}[len(size)]
    return F.interpolate(maps[:, None], size=size, mode=mode, align_corners=False)[:, 0]


def window_confidence(probs: np.ndarray, masked_probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per window: (drop, increase) from the target's probability without and with the mask.

    Returns:
        float64 drop ``max(0, p - p') / (p + 1e-7)`` and bool increase ``p < p'``, shape (b,).
    """
    p = np.asarray(probs, dtype=np.float64)
    masked = np.asarray(masked_probs, dtype=np.float64)
    return np.maximum(p - masked, 0.0) / (p + _DROP_EPS), p < masked


def confidence_change(
    loaded: LoadedModel,
    frames: PassFrames,
    target: int,
    *,
    batch: int,
    autocast: bool = False,
) -> tuple[float, float]:
    """The video's ``(average_drop, increase_in_confidence)`` over the windows of its pass.

    Args:
        frames: the analysis's frames and windows, with ``window_maps``.
        target: the explained class.
        batch: windows per forward.
    """
    import torch

    if frames.window_maps is None or len(frames.window_maps) != len(frames.plan):
        raise RuntimeError("the pass kept no window maps")
    plan = frames.plan
    drops = 0.0
    increases = 0
    for start in range(0, len(plan), batch):
        stop = min(start + batch, len(plan))
        positions = plan[start:stop]
        first = int(positions.min())
        block = frames.store.read(first, int(positions.max()) + 1)
        inputs = model_input(loaded, block[positions - first])
        maps = torch.from_numpy(frames.window_maps.read(start, stop)).to(inputs.device)
        if loaded.kind == "frame":
            maps = maps[:, 0]  # (b, h, w): one frame per window
        masks = explanation_masks(maps, tuple(inputs.shape[2:]))
        with torch.inference_mode(), autocast_context(loaded.device, autocast):
            both = loaded.module(torch.cat([inputs, masks[:, None].to(inputs.dtype) * inputs]))
            probs = torch.softmax(both.float(), dim=1)[:, target].cpu().numpy()
        drop, increase = window_confidence(probs[: stop - start], probs[stop - start :])
        drops += float(drop.sum())
        increases += int(increase.sum())
    return drops / len(plan), increases / len(plan)
