"""Writing an evaluation's output folder: metrics.csv, summary.json, curves.png and the review
page."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from videocam.analysis.layout import REPORT_HTML

if TYPE_CHECKING:
    from videocam.evaluate.runner import Evaluation

__all__ = ["save_evaluation"]


def save_evaluation(evaluation: Evaluation, out_dir: str | Path) -> Path:
    """Write metrics.csv, summary.json, curves.png and report.html (the review page) into
    ``out_dir`` (each atomically)."""
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
