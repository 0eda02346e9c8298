"""``videocam evaluate``: a classifier and its explanations over a manifest of videos.

Per video: the video-level prediction (as ``--target auto`` chooses it: the top mean window
probability, skipping a declared background class) and whether it matches the label; the
explained target (the label when given, else the prediction); temporal deletion and insertion
curves in attribution order and in random orders (mean over seeds); Average Drop and Increase
in Confidence over the windows (:mod:`.confidence`); with a ground-truth interval, the keyframe
hit rate and the segment IoU; with boxes, the pointing game on the keyframes and on every boxed
frame and the energy-based pointing game; with ``occlusion``, the temporal occlusion baseline
scored as the maps are (:mod:`.occlusion`); and with ``sanity``, the rank correlation of the maps
with those of the model randomised block by block (:mod:`.sanity`). A video that fails is
recorded with its error and the run goes on.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from videocam.analysis import (
    auto_class,
    class_name,
    package_versions,
    resolve_class,
    run_analysis_keeping_frames,
    with_method,
)
from videocam.config import AnalyzeConfig
from videocam.errors import VideocamError
from videocam.evaluate.confidence import confidence_change
from videocam.evaluate.metrics import (
    box_pointing,
    curve_masks,
    keyframe_hit_rate,
    normalised_auc,
    order_by_attribution,
    segment_iou,
)
from videocam.evaluate.occlusion import occlusion_importance, occlusion_keyframes
from videocam.evaluate.rescoring import score_masks
from videocam.evaluate.sanity import SANITY_THRESHOLD, randomisation_steps, sanity_rank_corrs
from videocam.manifest import ManifestEntry, read_manifest

if TYPE_CHECKING:
    import pandas as pd

    from videocam.analysis import Analysis, PassFrames
    from videocam.models import LoadedModel

logger = logging.getLogger(__name__)

#: The per-video metrics, averaged over the videos in the summary.
_MEAN_COLUMNS = [
    "deletion_auc",
    "insertion_auc",
    "deletion_auc_random",
    "insertion_auc_random",
    "average_drop",
    "increase_in_confidence",
    "keyframe_hit_rate",
    "segment_iou",
    "pointing_keyframes",
    "pointing_boxed",
    "energy_pointing",
    "occlusion_deletion_auc",
    "occlusion_insertion_auc",
    "occlusion_keyframe_hit_rate",
    "sanity_rank_corr",
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
    """The target's mean window probability on a video with some frames made neutral.

    Masks are over the analysis's frames (``frames.csv`` rows); scores are remembered by mask,
    and :meth:`score_all` scores many masks in one sweep over the windows.
    """

    def __init__(
        self,
        loaded: LoadedModel,
        frames: PassFrames,
        target: int,
        *,
        batch: int,
        autocast: bool = False,
    ) -> None:
        self.loaded, self.frames, self.target = loaded, frames, target
        self.batch, self.autocast = batch, autocast
        self._memo: dict[bytes, float] = {}

    def score_all(self, masks: np.ndarray) -> np.ndarray:
        """Scores of bool masks (n_masks, n_rows), float64 (n_masks,)."""
        masks = np.asarray(masks, dtype=bool)
        keys = [np.packbits(kept).tobytes() for kept in masks]
        todo = {key: kept for key, kept in zip(keys, masks, strict=True) if key not in self._memo}
        if todo:
            scores = score_masks(
                self.loaded,
                self.frames,
                self.target,
                np.stack(list(todo.values())),
                batch=self.batch,
                autocast=self.autocast,
            )
            self._memo.update(zip(todo, scores.tolist(), strict=True))
        return np.asarray([self._memo[key] for key in keys], dtype=np.float64)

    def __call__(self, kept: np.ndarray) -> float:
        """The target's score with only the ``kept`` frames left in."""
        return float(self.score_all(np.asarray(kept, dtype=bool)[None])[0])


def evaluate_video(
    entry: ManifestEntry,
    loaded: LoadedModel,
    config: AnalyzeConfig,
    *,
    steps: int = 10,
    random_seeds: int = 3,
    sanity_steps: list[str] | None = None,
    occlusion: int = 0,
) -> tuple[dict[str, Any], dict[str, np.ndarray], list[float] | None]:
    """Metrics of one video (see the module docstring), its curves (relative to the
    untouched score): ``deletion``, ``insertion``, ``deletion_random``, ``insertion_random``,
    and with ``sanity_steps`` (:func:`.sanity.randomisation_steps`) the maps' rank correlation
    with the trained model's at each step of the cascade (else None). ``occlusion`` > 0 adds
    the temporal occlusion baseline with runs of that many frames.

    One pass of the analysis (the label as the target when given, else ``auto``) gives the
    maps, the prediction and the frames; the curves re-score those frames in one sweep; the
    sanity check analyses the video once more per step.
    """
    started = time.perf_counter()
    label = resolve_class(_as_target(entry.label), loaded) if entry.label is not None else None
    run = config.replace(target="auto" if label is None else label, render=False)
    analysis, frames = run_analysis_keeping_frames(entry.path, loaded, run)
    with frames:
        predicted = auto_class(analysis.class_probs, loaded)
        target = analysis.target[0]
        n_frames = len(analysis.frames)
        order = order_by_attribution(analysis.frames.attribution.to_numpy())
        masks = _masks_per_curve(order, steps, random_seeds)
        from videocam.models.detectors import fit_to_video

        scorer = TargetScorer(
            # A detector ran at the size fitted to this video; its frames were kept at it.
            fit_to_video(loaded, analysis.meta.height, analysis.meta.width),
            frames,
            target,
            batch=analysis.summary["windows"]["batch_size"],
            autocast=config.autocast,
        )
        every_mask = [m for group in masks.values() for m in group]
        everything = np.concatenate([np.ones((1, n_frames), bool), *every_mask])
        scorer.score_all(everything)  # one sweep over the windows for every curve
        reference = scorer(np.ones(n_frames, dtype=bool))
        curves = {
            name: np.mean([scorer.score_all(m) for m in group], axis=0)
            for name, group in masks.items()
        }
        baseline = (
            _occlusion_metrics(scorer, analysis, entry, config, occlusion, steps, reference)
            if occlusion
            else {}
        )
        average_drop, increase = confidence_change(
            loaded,
            frames,
            target,
            batch=analysis.summary["windows"]["batch_size"],
            autocast=config.autocast,
        )
    row = _metrics_row(entry, loaded, analysis, label, predicted, curves, reference)
    row["average_drop"] = average_drop
    row["increase_in_confidence"] = increase
    row.update(baseline)
    sanity = None
    if sanity_steps:
        sanity = sanity_rank_corrs(
            entry.path, loaded, sanity_steps, config, target, np.asarray(analysis.cams)
        )
        row["sanity_rank_corr"] = sanity[-1]
    row["n_frames"] = n_frames
    row["seconds"] = round(time.perf_counter() - started, 3)
    row["status"] = "ok"
    row["error"] = ""
    relative = {k: v / reference if reference > 0 else v for k, v in curves.items()}
    return row, relative, sanity


def _masks_per_curve(
    order: np.ndarray, steps: int, random_seeds: int
) -> dict[str, list[np.ndarray]]:
    """The masks of each curve: ``deletion`` and ``insertion`` in attribution ``order``, and
    ``deletion_random`` and ``insertion_random`` in ``random_seeds`` random orders (seeded)."""
    rng = np.random.default_rng(0)
    n_frames = len(order)
    orders = {"": [order], "_random": [rng.permutation(n_frames) for _ in range(random_seeds)]}
    return {
        f"{kind}{suffix}": [curve_masks(o, steps, inserting=kind == "insertion") for o in group]
        for suffix, group in orders.items()
        for kind in ("deletion", "insertion")
    }


def _occlusion_metrics(
    scorer: TargetScorer,
    analysis: Analysis,
    entry: ManifestEntry,
    config: AnalyzeConfig,
    run: int,
    steps: int,
    reference: float,
) -> dict[str, float]:
    """The occlusion baseline's deletion and insertion areas (frames in decreasing importance)
    and, with an interval, its keyframes' hit rate."""
    frames = analysis.frames
    importance = occlusion_importance(scorer.score_all, len(frames), run)
    order = order_by_attribution(importance)
    masks = {
        k: curve_masks(order, steps, inserting=k == "insertion") for k in ("deletion", "insertion")
    }
    scorer.score_all(np.concatenate(list(masks.values())))  # both curves in one sweep
    metrics = {
        f"occlusion_{kind}_auc": normalised_auc(scorer.score_all(kind_masks), reference)
        for kind, kind_masks in masks.items()
    }
    if entry.event_start_s is not None and entry.event_end_s is not None:
        times = frames.time_s.to_numpy()
        keyframes = occlusion_keyframes(
            importance,
            times,
            frames.target_score.to_numpy(),
            topk=config.topk,
            min_gap_s=config.min_gap,
            keyframe_floor=config.keyframe_floor,
            evidence_floor=config.evidence_floor,
            evidence_ratio=config.evidence_ratio,
        )
        metrics["occlusion_keyframe_hit_rate"] = keyframe_hit_rate(
            times[keyframes], entry.event_start_s, entry.event_end_s
        )
    return metrics


def _metrics_row(
    entry: ManifestEntry,
    loaded: LoadedModel,
    analysis: Analysis,
    label: int | None,
    predicted: int,
    curves: dict[str, np.ndarray],
    reference: float,
) -> dict[str, Any]:
    """One metrics.csv row, but for its bookkeeping columns."""
    row: dict[str, Any] = {
        "path": str(entry.path),
        "label": class_name(loaded, label) if label is not None else "",
        "predicted": class_name(loaded, predicted),
        "correct": (label == predicted) if label is not None else None,
        "target": class_name(loaded, analysis.target[0]),
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
    if entry.boxes is not None:
        row.update(box_metrics(analysis, entry.boxes))
    return row


def box_metrics(
    analysis: Analysis, boxes: dict[int, tuple[float, float, float, float]]
) -> dict[str, float]:
    """``pointing_keyframes``, ``pointing_boxed`` and ``energy_pointing``: the pointing game
    over the boxed keyframes and over every boxed analysed frame, and the mean share of the map
    in the box over the latter (:func:`.metrics.box_pointing`); NaN where no frame counts."""
    size = (analysis.meta.height, analysis.meta.width)
    frames = analysis.frames
    hits, energies, keyframe_hits = [], [], []
    for row, (index, is_keyframe) in enumerate(
        zip(frames.frame_index.tolist(), frames.is_keyframe.tolist(), strict=True)
    ):
        if index in boxes:
            hit, energy = box_pointing(analysis.cams[row], size, boxes[index])
            hits.append(hit)
            energies.append(energy)
            if is_keyframe:
                keyframe_hits.append(hit)
    return {
        "pointing_keyframes": _mean_or_nan(keyframe_hits),
        "pointing_boxed": _mean_or_nan(hits),
        "energy_pointing": _mean_or_nan(energies),
    }


def _mean_or_nan(values: list[bool] | list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


_AUC_COLUMNS = {
    "deletion": "deletion_auc",
    "insertion": "insertion_auc",
    "deletion_random": "deletion_auc_random",
    "insertion_random": "insertion_auc_random",
}


def _as_target(label: str) -> int | str:
    return int(label) if label.lstrip("-").isdigit() else label


@dataclass(frozen=True)
class VideoResult:
    """What one video contributes to an evaluation: its metrics.csv row, its curves (relative
    to the untouched score; empty when it failed) and its maps' rank correlations per sanity
    step (None without ``--sanity`` or when it failed)."""

    row: dict[str, Any]
    curves: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    sanity: list[float] | None = None


def failed_row(entry: ManifestEntry, error_type: str, message: str) -> dict[str, Any]:
    """The metrics.csv row of a video that failed (``error``: its type and message, on one
    line)."""
    return {
        "path": str(entry.path),
        "label": entry.label or "",
        "status": "failed",
        "error": f"{error_type}: {' '.join(message.split())}",
    }


def model_info(loaded: LoadedModel) -> dict[str, Any]:
    """summary.json's ``model``."""
    return {"name": loaded.name, "weights": loaded.weights, "layer": loaded.layer}


def evaluate_manifest(
    manifest: str | Path,
    loaded: LoadedModel,
    config: AnalyzeConfig,
    *,
    steps: int = 10,
    random_seeds: int = 3,
    sanity: bool = False,
    occlusion: int = 0,
    progress: bool = False,
) -> Evaluation:
    """Evaluate every video of ``manifest`` in this process, one after the other; failures are
    recorded, not raised. ``sanity`` adds the model-parameter randomisation check
    (:mod:`.sanity`), ``occlusion`` > 0 the temporal occlusion baseline with runs of that many
    frames (:mod:`.occlusion`). ``videocam evaluate`` runs the same per video in worker
    processes instead (:func:`videocam.evaluate.jobs.run_evaluation`)."""
    from tqdm import tqdm

    config = with_method(config, loaded)  # the summary names the method the model got

    entries = read_manifest(manifest)
    results: list[VideoResult] = []
    steps_randomised = randomisation_steps(loaded.module) if sanity else None
    for entry in tqdm(entries, desc="evaluate", unit="video", disable=not progress):
        try:
            results.append(
                VideoResult(
                    *evaluate_video(
                        entry,
                        loaded,
                        config,
                        steps=steps,
                        random_seeds=random_seeds,
                        sanity_steps=steps_randomised,
                        occlusion=occlusion,
                    )
                )
            )
        except Exception as exc:  # one video's failure must not end the run
            if not isinstance(exc, VideocamError):
                logger.debug("%s failed", entry.path, exc_info=True)
            logger.warning("%s: %s", entry.path, exc)
            results.append(VideoResult(failed_row(entry, type(exc).__name__, str(exc))))
    return assemble_evaluation(
        results,
        model_info(loaded),
        config,
        steps=steps,
        random_seeds=random_seeds,
        occlusion=occlusion,
        sanity_steps=steps_randomised,
    )


def assemble_evaluation(
    results: list[VideoResult],
    model: dict[str, Any],
    config: AnalyzeConfig,
    *,
    steps: int,
    random_seeds: int,
    occlusion: int,
    sanity_steps: list[str] | None,
) -> Evaluation:
    """The evaluation of the videos whose ``results`` are given (in manifest order): the
    metrics table, the mean curves and the summary (``model``: :func:`model_info`)."""
    import pandas as pd

    all_curves: dict[str, list[np.ndarray]] = {}
    corrs: list[tuple[str, list[float]]] = []
    for result in results:
        if result.sanity is not None:
            corrs.append((str(result.row["path"]), result.sanity))
        for name, curve in result.curves.items():
            all_curves.setdefault(name, []).append(curve)
    metrics = pd.DataFrame([r.row for r in results]).reindex(columns=METRIC_COLUMNS)
    mean_curves = {name: np.mean(curves, axis=0) for name, curves in all_curves.items()}
    summary = _summary(metrics, model, config, steps, random_seeds, mean_curves)
    summary["occlusion_run"] = occlusion or None
    if sanity_steps is not None:
        summary.update(_sanity_summary(str(config.method), sanity_steps, corrs))
    return Evaluation(metrics=metrics, summary=summary, curves=mean_curves)


def _sanity_summary(
    method: str, steps: list[str], corrs: list[tuple[str, list[float]]]
) -> dict[str, Any]:
    """summary.json's ``sanity_rank_corr`` (per video and step, and the mean per step) and
    ``sanity`` (the verdict)."""
    mean = np.mean([c for _, c in corrs], axis=0).tolist() if corrs else None
    flagged = mean is not None and mean[-1] > SANITY_THRESHOLD
    return {
        "sanity_rank_corr": {
            "steps": steps,
            "videos": [{"path": path, "rank_corr": c} for path, c in corrs],
            "mean": mean,
        },
        "sanity": {
            "method": method,
            "threshold": SANITY_THRESHOLD,
            "flagged": flagged,
            "message": (
                f"{method}: the maps barely change when the model is randomised (mean rank "
                f"correlation {mean[-1]:.3f} > {SANITY_THRESHOLD} with every step "
                "re-initialised): they do not reflect what the model learnt"
                if flagged and mean is not None
                else ""
            ),
            "definition": "cascading model-parameter randomisation (Adebayo et al. 2018): "
            "step k re-initialises the k blocks nearest the head (seeded); each step's maps of "
            "the same target are compared with the trained model's by Spearman rank "
            "correlation over all frames and positions; flagged when the mean over the videos "
            f"at the last step exceeds {SANITY_THRESHOLD}",
        },
    }


def _summary(
    metrics: pd.DataFrame,
    model: dict[str, Any],
    config: AnalyzeConfig,
    steps: int,
    random_seeds: int,
    curves: dict[str, np.ndarray],
) -> dict[str, Any]:
    import pandas as pd

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
            "average_drop": "mean over the windows of max(0, p - p') / (p + 1e-7), p the "
            "target's probability on the window, p' on the window multiplied by its own map "
            "(min-max scaled to [0, 1], resized linearly to the input); torch-cam 0.5's "
            "ClassificationMetric (lower = the map keeps what the model needs)",
            "increase_in_confidence": "share of the windows where p < p' (higher = better)",
            "predicted": "top mean window probability, skipping a declared background class",
            "pointing_keyframes": "with boxes: share of the boxed keyframes whose map maximum "
            "(map upsampled bilinearly to the frame) lies in the frame's box",
            "pointing_boxed": "the same over every analysed frame with a box",
            "energy_pointing": "with boxes: mean over the boxed frames of the share of the "
            "upsampled map's mass inside the box",
            "occlusion": "with --occlusion N: each frame's importance is the drop in the "
            "target's mean window probability when the N frames around it are replaced by the "
            "neutral frame; occlusion_deletion_auc / occlusion_insertion_auc order the frames "
            "by it, occlusion_keyframe_hit_rate takes keyframes from it by the CAM keyframes' "
            "rule",
            "sanity_rank_corr": "with --sanity: Spearman rank correlation of the maps with the "
            "trained model's once every block is re-initialised (see sanity)",
        },
        "model": model,
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
