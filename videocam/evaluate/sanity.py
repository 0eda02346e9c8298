"""The model-parameter randomisation check (Adebayo et al., "Sanity Checks for Saliency Maps",
NeurIPS 2018, cascading randomisation), on video: ``evaluate --sanity``.

The steps are the model's top-level blocks that hold parameters (descending through a wrapper
with a single such block), from the head downwards: step k re-initialises the first k of them,
cumulatively, in a copy of the model (each module's own ``reset_parameters``, else a normal
draw with std 0.02, seeded; BatchNorm statistics reset too). At each step the video is analysed
again with the same method, layer and target as the trained model's analysis, and its per-frame
maps (``cams``, all frames and positions together) are compared with the trained ones by the
Spearman rank correlation (average ranks for ties). A method whose maps barely change when the
whole model is random (correlation above :data:`SANITY_THRESHOLD` at the last step, on average
over the videos) depends on the input more than on what the model learnt, and is flagged.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from torch import nn

    from videocam.config import AnalyzeConfig
    from videocam.models import LoadedModel

__all__ = [
    "SANITY_THRESHOLD",
    "cascade",
    "randomisation_steps",
    "reinitialise",
    "sanity_rank_corrs",
    "spearman",
]

#: A method is flagged when its maps keep a mean rank correlation above this with the trained
#: model's once every step is randomised (Adebayo et al. call such maps "insensitive").
SANITY_THRESHOLD = 0.5
#: The std of the normal draw for parameters whose module has no ``reset_parameters``.
_FALLBACK_STD = 0.02


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """The Spearman rank correlation of two arrays of the same size (flattened; ties get
    their average rank).

    Two constant arrays give 1.0 when equal, else 0.0; one constant array gives 0.0 (the map
    changed, its order carries nothing).
    """
    from scipy.stats import rankdata

    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"spearman: arrays of {x.size} and {y.size} values")
    flat_x, flat_y = bool(np.all(x == x[0])), bool(np.all(y == y[0]))
    if flat_x or flat_y:
        return 1.0 if flat_x and flat_y and x[0] == y[0] else 0.0
    rx, ry = rankdata(x) - (x.size + 1) / 2, rankdata(y) - (y.size + 1) / 2
    return float(np.dot(rx, ry) / np.sqrt(np.dot(rx, rx) * np.dot(ry, ry)))


def randomisation_steps(module: nn.Module) -> list[str]:
    """Dotted names of the blocks the cascade re-initialises, head first.

    The top-level children that hold parameters, in reverse registration order; a module whose
    only parameter-holding child is a wrapper (and that has no parameters of its own) is
    descended into. Names are layer names (relative to
    :func:`~videocam.models.layers.layer_root`).
    """
    from videocam.models.layers import layer_root

    prefix, root = "", layer_root(module)
    while True:
        holders = [(n, c) for n, c in root.named_children() if _has_parameters(c)]
        own = any(True for _ in root.parameters(recurse=False))
        if len(holders) == 1 and not own and any(True for _ in holders[0][1].children()):
            prefix, root = f"{prefix}{holders[0][0]}.", holders[0][1]
            continue
        return [f"{prefix}{name}" for name, _ in reversed(holders)]


def _has_parameters(module: nn.Module) -> bool:
    return any(True for _ in module.parameters())


def reinitialise(module: nn.Module, seed: int) -> None:
    """Draw ``module``'s parameters afresh, in place: each submodule's ``reset_parameters``
    (BatchNorm's also resets its running statistics), then a normal draw (std 0.02) for any
    parameter left; the global random state is left as it was."""
    import torch

    devices = [p.device for p in module.parameters() if p.device.type == "cuda"][:1]
    with torch.random.fork_rng(devices=devices), torch.no_grad():
        torch.manual_seed(seed)
        done: set[int] = set()
        for sub in module.modules():
            reset = getattr(sub, "reset_parameters", None)
            if callable(reset):
                reset()
                done.update(id(p) for p in sub.parameters(recurse=False))
        for parameter in module.parameters():
            if id(parameter) not in done:
                parameter.normal_(0.0, _FALLBACK_STD)


def cascade(loaded: LoadedModel, steps: list[str]) -> Iterator[LoadedModel]:
    """The cascade's models, one per step: model k has ``steps[:k + 1]`` re-initialised
    (step i seeded with i), the rest trained. One copy of the network, changed in place from
    step to step (take each model before asking for the next); ``loaded`` is untouched."""
    from videocam.models.layers import resolve_layer

    module = copy.deepcopy(loaded.module)
    randomised = dataclasses.replace(loaded, module=module)
    for i, name in enumerate(steps):
        reinitialise(resolve_layer(module, name), seed=i)
        yield randomised


def sanity_rank_corrs(
    video: Path,
    loaded: LoadedModel,
    steps: list[str],
    config: AnalyzeConfig,
    target: int,
    trained_cams: np.ndarray,
) -> list[float]:
    """The Spearman rank correlation of each cascade step's per-frame maps of ``target`` with
    the trained model's, one per step.

    Args:
        steps: :func:`randomisation_steps` of ``loaded.module``.
        config: the trained analysis's configuration (its method and layer).
        trained_cams: float, shape (n_frames, h, w): the trained analysis's ``cams``.
    """
    from videocam.analysis import run_analysis

    run = config.replace(target=target, render=False, tracks=None)
    return [
        spearman(run_analysis(video, model, run).cams, trained_cams)
        for model in cascade(loaded, steps)
    ]
