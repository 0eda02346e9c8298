"""``videocam evaluate``: a classifier and its explanations over a manifest of videos.

Per video: the video-level prediction (as ``--target auto`` chooses it: the top mean window
probability, skipping a declared background class) and whether it matches the label; the
explained target (the label when given, else the prediction); temporal deletion and insertion
curves in attribution order and in random orders (mean over seeds); and, with a ground-truth
interval, the keyframe hit rate and the segment IoU. A video that fails is recorded with its
error and the run goes on.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from videocam.config import AnalyzeConfig
from videocam.errors import VideocamError
from videocam.evaluate.metrics import (
    deletion_curve,
    insertion_curve,
    keyframe_hit_rate,
    normalised_auc,
    order_by_attribution,
    segment_iou,
)
from videocam.io import open_video
from videocam.manifest import ManifestEntry, read_manifest
from videocam.pipeline import (
    choose_auto_target,
    class_name,
    resolve_class,
    run_analysis,
    sampled_indices,
    window_plan,
    window_probabilities,
)

if TYPE_CHECKING:
    import pandas as pd

    from videocam.models import LoadedModel

logger = logging.getLogger(__name__)

#: The per-video metrics, averaged over the videos in the summary.
_MEAN_COLUMNS = [
    "deletion_auc",
    "insertion_auc",
    "deletion_auc_random",
    "insertion_auc_random",
    "keyframe_hit_rate",
    "segment_iou",
]
METRIC_COLUMNS = [
    "path",
    "label",
    "predicted",
    "correct",
    "target",
    *_MEAN_COLUMNS,
    "n_frames",
    "seconds",
    "status",
    "error",
]


@dataclass
class Evaluation:
    """The result of a manifest evaluation."""

    metrics: pd.DataFrame
    summary: dict[str, Any]
    curves: dict[str, np.ndarray] = field(repr=False)


class TargetScorer:
    """The target's mean window probability on a video with some frames made neutral."""

    def __init__(
        self,
        loaded: LoadedModel,
        frames: np.ndarray,
        plan: np.ndarray,
        target: int,
        config: AnalyzeConfig,
    ) -> None:
        self.loaded, self.frames, self.plan, self.target = loaded, frames, plan, target
        self.config = config
        # The neutral frame: the video's temporal mean (no content of its own, same statistics).
        self.neutral = frames.mean(axis=0).round().astype(np.uint8)
        self._memo: dict[bytes, float] = {}

    def __call__(self, kept: np.ndarray) -> float:
        key = np.packbits(kept).tobytes()
        if key not in self._memo:
            frames = self.frames.copy()
            frames[~kept] = self.neutral
            probs = window_probabilities(
                self.loaded,
                frames,
                self.plan,
                batch_size=self.config.batch_size,
                autocast=self.config.autocast,
            )
            self._memo[key] = float(probs[:, self.target].mean())
        return self._memo[key]


def evaluate_video(
    entry: ManifestEntry,
    loaded: LoadedModel,
    config: AnalyzeConfig,
    *,
    steps: int = 10,
    random_seeds: int = 3,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Metrics of one video (see the module docstring) and its curves (relative to the
    untouched score): ``deletion``, ``insertion``, ``deletion_random``, ``insertion_random``."""
    started = time.perf_counter()
    with open_video(entry.path, config.backend) as source:
        indices = sampled_indices(source, config)
        batches = list(source.iter_batches(indices, size=loaded.preprocess.size))
        # Undecodable frames are left out of the batches (and of analysis.frames below).
        indices = np.concatenate([b.indices for b in batches])
        frames = np.concatenate([b.frames for b in batches])
    plan = window_plan(loaded, config, len(indices))
    probs = window_probabilities(
        loaded, frames, plan, batch_size=config.batch_size, autocast=config.autocast
    )
    predicted, _ = choose_auto_target(probs.mean(axis=0), loaded)
    label = resolve_class(_as_target(entry.label), loaded) if entry.label is not None else None
    target = label if label is not None else predicted
    analysis = run_analysis(entry.path, loaded, config.replace(target=target, render=False))

    scorer = TargetScorer(loaded, frames, plan, target, config)
    reference = scorer(np.ones(len(frames), dtype=bool))
    order = order_by_attribution(analysis.frames.attribution.to_numpy())
    curves = {
        "deletion": deletion_curve(order, scorer, steps),
        "insertion": insertion_curve(order, scorer, steps),
    }
    rng = np.random.default_rng(0)
    random_orders = [rng.permutation(len(frames)) for _ in range(random_seeds)]
    curves["deletion_random"] = np.mean(
        [deletion_curve(o, scorer, steps) for o in random_orders], axis=0
    )
    curves["insertion_random"] = np.mean(
        [insertion_curve(o, scorer, steps) for o in random_orders], axis=0
    )
    row: dict[str, Any] = {
        "path": str(entry.path),
        "label": class_name(loaded, label) if label is not None else "",
        "predicted": class_name(loaded, predicted),
        "correct": (label == predicted) if label is not None else None,
        "target": class_name(loaded, target),
    }
    for curve_name, column in _AUC_COLUMNS.items():
        row[column] = normalised_auc(curves[curve_name], reference)
    if entry.event_start_s is not None and entry.event_end_s is not None:
        row["keyframe_hit_rate"] = keyframe_hit_rate(
            analysis.keyframes.time_s.to_numpy(), entry.event_start_s, entry.event_end_s
        )
        row["segment_iou"] = segment_iou(
            analysis.frames.time_s.to_numpy(),
            list(zip(analysis.segments.start_s, analysis.segments.end_s, strict=True)),
            entry.event_start_s,
            entry.event_end_s,
        )
    row["n_frames"] = len(frames)
    row["seconds"] = round(time.perf_counter() - started, 3)
    row["status"] = "ok"
    row["error"] = ""
    relative = {k: v / reference if reference > 0 else v for k, v in curves.items()}
    return row, relative


_AUC_COLUMNS = {
    "deletion": "deletion_auc",
    "insertion": "insertion_auc",
    "deletion_random": "deletion_auc_random",
    "insertion_random": "insertion_auc_random",
}


def _as_target(label: str) -> int | str:
    return int(label) if label.lstrip("-").isdigit() else label


def evaluate_manifest(
    manifest: str | Path,
    loaded: LoadedModel,
    config: AnalyzeConfig,
    *,
    steps: int = 10,
    random_seeds: int = 3,
    progress: bool = False,
) -> Evaluation:
    """Evaluate every video of ``manifest``; failures are recorded, not raised."""
    import pandas as pd
    from tqdm import tqdm

    entries = read_manifest(manifest)
    rows: list[dict[str, Any]] = []
    all_curves: dict[str, list[np.ndarray]] = {}
    for entry in tqdm(entries, desc="evaluate", unit="video", disable=not progress):
        try:
            row, curves = evaluate_video(
                entry, loaded, config, steps=steps, random_seeds=random_seeds
            )
        except Exception as exc:  # one video's failure must not end the run
            if not isinstance(exc, VideocamError):
                logger.debug("%s failed", entry.path, exc_info=True)
            logger.warning("%s: %s", entry.path, exc)
            row = {
                "path": str(entry.path),
                "label": entry.label or "",
                "status": "failed",
                "error": f"{type(exc).__name__}: {exc}",
            }
            curves = {}
        rows.append(row)
        for name, curve in curves.items():
            all_curves.setdefault(name, []).append(curve)
    metrics = pd.DataFrame(rows).reindex(columns=METRIC_COLUMNS)
    mean_curves = {name: np.mean(curves, axis=0) for name, curves in all_curves.items()}
    summary = _summary(metrics, loaded, config, steps, random_seeds, mean_curves)
    return Evaluation(metrics=metrics, summary=summary, curves=mean_curves)


def _summary(
    metrics: pd.DataFrame,
    loaded: LoadedModel,
    config: AnalyzeConfig,
    steps: int,
    random_seeds: int,
    curves: dict[str, np.ndarray],
) -> dict[str, Any]:
    import pandas as pd

    from videocam.pipeline import package_versions

    ok = metrics[metrics.status == "ok"]
    labelled = ok[ok.label.astype(str) != ""]
    summary: dict[str, Any] = {
        "n_videos": len(metrics),
        "n_ok": len(ok),
        "n_failed": int((metrics.status == "failed").sum()),
        "accuracy": float(labelled.correct.astype(bool).mean()) if len(labelled) else None,
        "n_labelled": len(labelled),
        "means": {
            column: (float(ok[column].astype(float).mean()) if ok[column].notna().any() else None)
            for column in _MEAN_COLUMNS
        },
        "curves": {name: [round(float(v), 6) for v in c] for name, c in curves.items()},
        "definitions": {
            "deletion_auc": "area under the target's mean window probability as frames are "
            "replaced by the temporal mean frame in decreasing attribution, 1/steps at a time, "
            "over [0, 1], divided by the untouched score (lower = more faithful)",
            "insertion_auc": "the same inserting frames into an all-neutral video (higher = more "
            "faithful)",
            "random": f"the same in random orders, mean over {random_seeds} seeds",
            "predicted": "top mean window probability, skipping a declared background class",
        },
        "model": {"name": loaded.name, "weights": loaded.weights, "layer": loaded.layer},
        "steps": steps,
        "random_seeds": random_seeds,
        "config": config.to_dict(),
        "versions": package_versions(),
        "failures": metrics[metrics.status == "failed"][["path", "error"]].to_dict("records"),
    }
    if len(labelled):
        classes = sorted(set(labelled.label) | set(labelled.predicted))
        matrix = pd.crosstab(labelled.label, labelled.predicted).reindex(
            index=classes, columns=classes, fill_value=0
        )
        summary["confusion_matrix"] = {
            "classes": classes,
            "rows_are": "label",
            "matrix": matrix.to_numpy().tolist(),
        }
    return summary
