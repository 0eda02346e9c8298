"""Evaluation of a classifier and its explanations over many videos (``videocam evaluate``):
the metrics (:mod:`.metrics`), perturbation re-scoring (:mod:`.rescoring`) and the run over a
manifest in one process (:mod:`.runner`) or in workers over batch's engines (:mod:`.jobs`), and
its output folder (:mod:`.outputs`)."""

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
from videocam.evaluate.outputs import save_evaluation
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
