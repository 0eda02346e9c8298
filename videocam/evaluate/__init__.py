"""Evaluation of a classifier and its explanations over many videos (``videocam evaluate``):
the metrics (:mod:`.metrics`), perturbation re-scoring (:mod:`.rescoring`) and the run over a
manifest in one process (:mod:`.runner`) or in workers over batch's engines (:mod:`.jobs`)."""

from __future__ import annotations

from pathlib import Path

from videocam.evaluate.jobs import EvaluateJob, EvaluateTask, EvaluationRun, run_evaluation
from videocam.evaluate.metrics import (
    box_pointing,
    curve_masks,
    deletion_curve,
    insertion_curve,
    keyframe_hit_rate,
    normalised_auc,
    order_by_attribution,
    segment_iou,
)
from videocam.evaluate.rescoring import score_masks
from videocam.evaluate.runner import (
    METRIC_COLUMNS,
    Evaluation,
    TargetScorer,
    evaluate_manifest,
    evaluate_video,
)
from videocam.manifest import ManifestEntry, read_boxes, read_manifest

__all__ = [
    "METRIC_COLUMNS",
    "EvaluateJob",
    "EvaluateTask",
    "Evaluation",
    "EvaluationRun",
    "ManifestEntry",
    "TargetScorer",
    "box_pointing",
    "curve_masks",
    "deletion_curve",
    "evaluate_manifest",
    "evaluate_video",
    "insertion_curve",
    "keyframe_hit_rate",
    "normalised_auc",
    "order_by_attribution",
    "read_boxes",
    "read_manifest",
    "run_evaluation",
    "save_evaluation",
    "score_masks",
    "segment_iou",
]


def save_evaluation(evaluation: Evaluation, out_dir: str | Path) -> Path:
    """Write metrics.csv, summary.json, curves.png and report.html (the review page) into
    ``out_dir`` (each atomically)."""
    from videocam.analysis.result import REPORT_HTML
    from videocam.render.curves import render_curves
    from videocam.render.files import ensure_output_dir, write_csv, write_json
    from videocam.render.report import write_evaluation_report

    out = ensure_output_dir(out_dir)
    write_csv(evaluation.metrics, out / "metrics.csv")
    if evaluation.curves:
        render_curves(out / "curves.png", evaluation.curves, "temporal deletion / insertion")
    write_evaluation_report(
        out / REPORT_HTML, evaluation.metrics, evaluation.summary, title=f"Evaluation {out.name}"
    )
    write_json(evaluation.summary, out / "summary.json")
    return out
