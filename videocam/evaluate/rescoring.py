"""Perturbation re-scoring: the target's mean window probability with some frames replaced by
the neutral frame, for many masks at once, in one sweep over the windows an analysis ran.

The frames come from the analysis's own pass (:class:`~videocam.analysis.PassFrames`: kept in
memory up to a bound, then in an anonymous temporary file), so a video is decoded once for its
maps and its curves, and memory stays flat with the video's length: the sweep holds one batch
of windows' frames, the masks (n_masks x n_frames booleans) and O(n_masks) sums.

Within a batch of windows, each window is run once per distinct pattern of kept frames that
the masks give it (a window no mask touches runs once for all of them), and a window with no
frame kept is the all-neutral window, whose probability is the same everywhere and is computed
once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from videocam.runtime import autocast as autocast_context
from videocam.runtime import model_input

if TYPE_CHECKING:
    from videocam.analysis import PassFrames
    from videocam.models import LoadedModel


def score_masks(
    loaded: LoadedModel,
    frames: PassFrames,
    target: int,
    masks: np.ndarray,
    *,
    batch: int,
    autocast: bool = False,
) -> np.ndarray:
    """The target's probability, averaged over the windows, under each mask of kept frames.

    Args:
        frames: the frames and windows of the analysis.
        target: the class whose probability is scored.
        masks: bool, shape (n_masks, n_rows): the analysis's frames (its ``frames`` rows) to
            keep; the others are replaced by ``frames.neutral``.
        batch: windows per forward.

    Returns:
        float64, shape (n_masks,).
    """
    masks = np.asarray(masks, dtype=bool)
    kept = masks[:, frames.row_of_position]  # (n_masks, n_positions)
    forward = _Forward(loaded, target, autocast)
    plan = frames.plan
    totals = np.zeros(len(masks), dtype=np.float64)
    neutral_prob: float | None = None
    for start in range(0, len(plan), batch):
        positions = plan[start : start + batch]  # (b, T)
        first = int(positions.min())
        block = frames.store.read(first, int(positions.max()) + 1)
        windows = block[positions - first]  # (b, T, H, W, 3)
        patterns = kept[:, positions]  # (n_masks, b, T)
        jobs: list[tuple[int, np.ndarray]] = []  # (window, its kept slots)
        job_of = np.empty((len(positions), len(masks)), dtype=np.int64)
        for j in range(len(positions)):
            unique, inverse = np.unique(patterns[:, j], axis=0, return_inverse=True)
            ids = np.empty(len(unique), dtype=np.int64)
            for u, pattern in enumerate(unique):
                ids[u] = -1 if not pattern.any() else len(jobs)
                if pattern.any():
                    jobs.append((j, pattern))
            job_of[j] = ids[inverse.reshape(-1)]
        probs = np.empty(len(jobs), dtype=np.float64)
        for s in range(0, len(jobs), batch):
            chunk = jobs[s : s + batch]
            inputs = np.stack(
                [
                    np.where(pattern[:, None, None, None], windows[j], frames.neutral)
                    for j, pattern in chunk
                ]
            )
            probs[s : s + len(chunk)] = forward(inputs)
        if (job_of < 0).any() and neutral_prob is None:
            neutral = np.broadcast_to(frames.neutral, windows.shape[1:])[None]
            neutral_prob = float(forward(neutral)[0])
        values = np.full(job_of.shape, neutral_prob or 0.0)
        run = job_of >= 0
        values[run] = probs[job_of[run]]
        totals += values.sum(axis=0)
    return totals / len(plan)


class _Forward:
    """The target's probability for uint8 windows (b, T, H, W, 3): forward only."""

    def __init__(self, loaded: LoadedModel, target: int, autocast: bool) -> None:
        self.loaded, self.target, self.autocast = loaded, target, autocast

    def __call__(self, windows: np.ndarray) -> np.ndarray:
        import torch

        loaded = self.loaded
        with torch.inference_mode(), autocast_context(loaded.device, self.autocast):
            output = loaded.module(model_input(loaded, windows)).float()
            return loaded.class_scores(output)[:, self.target].cpu().numpy()
