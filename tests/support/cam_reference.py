"""Score-CAM and Ablation-CAM computed from their definitions, the slow way, for the CAM tests
(one channel and one forward at a time, in float64 where it matters)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


def perturbation_by_definition(
    method: str,
    model: nn.Module,
    x: torch.Tensor,
    layer: str | nn.Module,
    targets: list[int],
    grid_of: Callable[[torch.Tensor, torch.Size], torch.Tensor],
    ablate: Callable[[torch.Tensor, int], torch.Tensor],
) -> torch.Tensor:
    """Score-CAM / Ablation-CAM from their definitions, one channel and one forward at a time.

    ``grid_of(raw)`` turns the layer's raw output into (N, C, *S); ``ablate(raw, c)`` returns
    the raw output with channel ``c`` of that grid set to 0; both get one sample's rows of the
    raw output (more than one where the model folds an axis into the batch, as TimeSformer).
    """
    module = layer if isinstance(layer, nn.Module) else model.get_submodule(layer)
    seen: list = []
    handle = module.register_forward_hook(lambda m, i, o: seen.append(o))
    with torch.no_grad():
        logits = model(x)
    handle.remove()
    raw = seen[0][0] if isinstance(seen[0], tuple) else seen[0]
    rows = raw.shape[0] // x.shape[0]
    grid = grid_of(raw, x.shape).double()
    maps = []
    for n, k in enumerate(targets):
        scores = []
        for c in range(grid.shape[1]):
            if method == "scorecam":
                mode = "trilinear" if x.ndim == 5 else "bilinear"
                mask = nn.functional.interpolate(
                    grid[n : n + 1, c : c + 1], size=x.shape[2:], mode=mode, align_corners=True
                )[0, 0]
                mask = (mask - mask.min()) / (mask.max() - mask.min() + 1e-8)
                with torch.no_grad():
                    scores.append(float(model(x[n : n + 1] * mask.float())[0, k]))
            else:
                ablated = ablate(raw[n * rows : (n + 1) * rows].clone(), c)

                def swap(m, i, o, ablated=ablated):
                    return (ablated, *o[1:]) if isinstance(o, tuple) else ablated

                handle = module.register_forward_hook(swap)
                with torch.no_grad():
                    scores.append(float(model(x[n : n + 1])[0, k]))
                handle.remove()
        s = torch.tensor(scores, dtype=torch.float64)
        y = float(logits[n, k])
        weights = torch.softmax(s, dim=0) if method == "scorecam" else (y - s) / y
        maps.append(torch.relu(torch.einsum("c,c...->...", weights, grid[n])))
    return torch.stack(maps).float()
