"""``videocam evaluate`` end to end with the bundled model on synthetic clips."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from videocam.cli import main
from videocam.errors import ConfigError
from videocam.evaluate import METRIC_COLUMNS, read_manifest
from videocam.synthetic import ClipSpec, make_clip

from support.batch import page_data


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("evaluate")
    rows = ["path,label,event_start_s,event_end_s"]
    for i, event in enumerate(("move_left", "grow")):
        spec = ClipSpec(
            n_frames=96,
            size=(96, 128),
            seed=2_500_000 + i,
            event=event,
            event_start=40,
            event_len=28,
        )
        clip = make_clip(folder / f"clip{i}.mp4", spec)
        start, end = clip.event_interval_s or (0, 0)
        rows.append(f"clip{i}.mp4,{event},{start},{end}")
    rows.append("missing.mp4,grow,,")
    path = folder / "manifest.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_evaluate_records_failures_and_finishes(
    manifest: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "eval"
    assert main(["evaluate", str(manifest), "-o", str(out), "--random-seeds", "2"]) == 3
    metrics = pd.read_csv(out / "metrics.csv", keep_default_na=False)
    assert list(metrics.columns) == METRIC_COLUMNS
    assert metrics.status.tolist() == ["ok", "ok", "failed"]
    assert "missing.mp4: no such file" in metrics.error[2]
    ok = metrics[metrics.status == "ok"]
    assert ok.correct.tolist() == ["True", "True"]
    assert ok.predicted.tolist() == ["move_left", "grow"]
    # The bundled model's explanations are faithful: deleting the frames it points at first
    # hurts more than deleting random frames, and inserting them first helps more.
    assert (ok.deletion_auc.astype(float) < ok.deletion_auc_random.astype(float)).all()
    assert (ok.insertion_auc.astype(float) > ok.insertion_auc_random.astype(float)).all()
    assert (ok.keyframe_hit_rate.astype(float) == 1.0).all()
    assert (ok.segment_iou.astype(float) > 0.4).all()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["accuracy"] == 1.0
    assert summary["config"]["method"] == "gradcam"  # the model's default, named
    assert summary["n_failed"] == 1
    assert summary["confusion_matrix"]["classes"] == ["grow", "move_left"]
    assert summary["confusion_matrix"]["matrix"] == [[1, 0], [0, 1]]
    assert len(summary["curves"]["deletion"]) == 11
    assert (out / "curves.png").stat().st_size > 0
    assert "2 of 3 videos evaluated (1 failed, 0 already complete)" in capsys.readouterr().out
    # The review page embeds the metrics and the summary as they are in the files.
    data = page_data(out / "report.html")
    assert [r["status"] for r in data["rows"]] == ["ok", "ok", "failed"]
    assert data["summary"]["confusion_matrix"] == summary["confusion_matrix"]


def test_manifest_errors(tmp_path: Path) -> None:
    bad = tmp_path / "m.csv"
    bad.write_text("video\nx.mp4\n")
    with pytest.raises(ConfigError, match="'path' column"):
        read_manifest(bad)
    bad.write_text("path,event_start_s\nx.mp4,1.0\n")
    with pytest.raises(ConfigError, match="line 2: give both"):
        read_manifest(bad)
    bad.write_text("path,label\nsub/x.mp4,3\n")
    (entry,) = read_manifest(bad)
    assert entry.path == tmp_path / "sub" / "x.mp4"
    assert entry.label == "3"
    with pytest.raises(ConfigError, match="manifest not found"):
        read_manifest(tmp_path / "nope.csv")
