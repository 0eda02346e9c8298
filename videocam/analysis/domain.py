"""Whether a video is the kind of footage the model can speak about: a model trained on synthetic
clips only, met with other footage, and an ``auto`` target the model never actually saw.

**Synthetic footage.** A model that declares synthetic training data
(:attr:`~videocam.models.LoadedModel.synthetic_only`: the bundled ``videocam_tiny``) has only
seen :mod:`videocam.synthetic` clips: smooth low-contrast backgrounds with flat squares of six
saturated colours (its palette). Up to :data:`SAMPLE_FRAMES` frames, spread over the analysed
ones and decoded at the model's input size, are measured: the share of pixels within
:data:`PALETTE_DISTANCE` (RGB, 0-255) of a palette colour, and the median over pixels of the
grey-level gradient ``|dx| + |dy|``. The footage is like the training clips when the median
frame has at least :data:`MIN_PALETTE_SHARE` of palette pixels and a median gradient of at most
:data:`MAX_MEDIAN_GRADIENT`; otherwise summary.json and stderr warn.

Measured at 64x64 (``videocam_tiny``'s input) on 8 frames of each clip: 22 synthetic clips
(sizes 72x128 to 360x480, 1-5 distractors, with and without barcode, every event class and
none) and the demo clip have a palette share of 0.014-0.136 in every frame and a median
gradient of 1.67-2.33; the 11 real clips of the project's test footage have a palette share of
at most 0.005 in every frame (0 in nine of them), and median gradients of 2.0-28.3 (the gradient
alone does not separate a grey parking lot from a synthetic background; the palette does).

**An auto target the model never saw.** With ``--target auto`` and a declared background class,
``auto`` explains the most probable non-background class. When that class's video-level
probability is below the background's *and* it is the most probable class in no window, the
model saw no such event anywhere: the class was only the least unlikely one, and its maps and
keyframes say little; summary.json and stderr warn. (Below the background alone is normal for a
short event in a long clip, as in the demo: 40 of 200 frames.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from videocam.analysis.targets import class_name
from videocam.synthetic import PALETTE

if TYPE_CHECKING:
    from videocam.io import FrameSource
    from videocam.models import LoadedModel

#: Frames measured, spread evenly over the analysed ones.
SAMPLE_FRAMES = 8
#: A pixel is a palette pixel within this Euclidean RGB distance of a palette colour.
PALETTE_DISTANCE = 40.0
#: Synthetic-like footage: at least this share of palette pixels in the median frame...
MIN_PALETTE_SHARE = 0.01
#: ...and at most this median grey-level gradient (|dx| + |dy|, 0-255 levels).
MAX_MEDIAN_GRADIENT = 3.0


def footage_statistics(frames: np.ndarray) -> dict[str, float]:
    """The two statistics of the module docstring, medians over ``frames`` (n, H, W, 3) uint8."""
    pixels = frames.astype(np.float32)
    palette = PALETTE.astype(np.float32)
    distance = np.sqrt(((pixels[..., None, :] - palette) ** 2).sum(axis=-1)).min(axis=-1)
    share = (distance <= PALETTE_DISTANCE).mean(axis=(1, 2))
    grey = pixels.mean(axis=-1)
    gradient = np.abs(np.diff(grey, axis=2))[:, :-1, :] + np.abs(np.diff(grey, axis=1))[:, :, :-1]
    per_frame = np.median(gradient.reshape(len(frames), -1), axis=1)
    return {
        "palette_share": round(float(np.median(share)), 4),
        "median_gradient": round(float(np.median(per_frame)), 4),
    }


def synthetic_footage_check(
    source: FrameSource, loaded: LoadedModel, indices: np.ndarray
) -> dict[str, Any] | None:
    """For a model trained on synthetic clips only: the statistics of the analysed frames
    ``indices`` and whether they are like the training clips (summary.json
    ``training_footage_check``); None for other models."""
    if not loaded.synthetic_only or len(indices) == 0:
        return None
    picks = np.unique(np.linspace(0, len(indices) - 1, min(SAMPLE_FRAMES, len(indices))).round())
    frames = source.read(indices[picks.astype(np.int64)], size=loaded.preprocess.size)
    stats = footage_statistics(frames)
    like = (
        stats["palette_share"] >= MIN_PALETTE_SHARE
        and stats["median_gradient"] <= MAX_MEDIAN_GRADIENT
    )
    return {
        **stats,
        "frames": len(picks),
        "like_training_data": bool(like),
        "rule": (
            f"like the synthetic training clips when the median frame has >= "
            f"{MIN_PALETTE_SHARE:g} of its pixels within {PALETTE_DISTANCE:g} (RGB) of the "
            f"synthetic palette and a median grey gradient <= {MAX_MEDIAN_GRADIENT:g}"
        ),
    }


def domain_warnings(
    loaded: LoadedModel,
    footage: dict[str, Any] | None,
    class_probs: np.ndarray,
    class_wins: np.ndarray,
    target: int,
    auto: bool,
) -> list[str]:
    """The warnings of the module docstring, for summary.json and stderr."""
    warnings = []
    if footage is not None and not footage["like_training_data"]:
        warnings.append(
            f"{loaded.name} was trained on synthetic clips only (squares moving on smooth "
            "backgrounds) and this footage is unlike them (palette share "
            f"{footage['palette_share']:.3f}, median gradient {footage['median_gradient']:g}; "
            f"its training clips: >= {MIN_PALETTE_SHARE:g} and <= {MAX_MEDIAN_GRADIENT:g}): "
            "its class and maps say nothing reliable here; use a model trained on real "
            "footage, e.g. --model efficientnet_lite0 (ImageNet, bundled) or r3d_18 "
            "(Kinetics-400)"
        )
    background = loaded.background_class
    if (
        auto
        and background is not None
        and background != target
        and len(class_wins) == len(class_probs) > max(background, target)
        and class_probs[target] < class_probs[background]
        and class_wins[target] == 0
    ):
        warnings.append(
            f"the auto target {class_name(loaded, target)} ({class_probs[target]:.3f} over the "
            f"video) is below {class_name(loaded, background)} ({class_probs[background]:.3f}) "
            "and the most probable class in no window: the model sees no such event here; "
            "its keyframes and maps show where the least unlikely class scores, not an event"
        )
    return warnings
