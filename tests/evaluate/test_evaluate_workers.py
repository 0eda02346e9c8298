"""``videocam evaluate --workers N --engine local|ray --resume``: videos evaluated in workers,
results kept per video, tables assembled as a run in one process assembles them: the same rows,
statuses and labels, the same numbers up to float32 rounding (support/floats.py: processes with
other thread counts may sum in another order)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from videocam.analysis import load_configured_model
from videocam.batch import FAILURE_COLUMNS, WORKER_CRASH
from videocam.cli import main
from videocam.config import AnalyzeConfig
from videocam.evaluate import (
    METRIC_COLUMNS,
    EvaluateTask,
    evaluate_manifest,
    run_evaluation,
    save_evaluation,
)
from videocam.evaluate.jobs import RESULT_FILE, WORK_DIR, plan_evaluation
from videocam.synthetic import write_frames

from support.batch import CRASHING_MODEL
from support.batch import clip as _clip
from support.floats import approx_runs, assert_same_table

FAST = ["--device", "cpu", "--quiet", "--steps", "4", "--random-seeds", "1"]
#: Columns that differ between runs (wall time).
TIMED = ["seconds"]
#: Columns that average over random orders (their number is an option).
RANDOM_ORDERS = ["deletion_auc_random", "insertion_auc_random"]


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three small "grow" clips (one with a ground-truth interval) and a missing video."""
    folder = tmp_path_factory.mktemp("evaluate_workers")
    for i in range(3):
        _clip(folder / f"clip{i}.mp4", seed=3_100_000 + i)
    rows = [
        "path,label,event_start_s,event_end_s",
        "clip0.mp4,grow,0.2,0.6",
        "clip1.mp4,grow,,",
        "clip2.mp4,,,",
        "missing.mp4,grow,,",
    ]
    path = folder / "manifest.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.fixture(scope="module")
def runs(manifest: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """OUT of ``--workers 1`` and ``--workers 2`` over the manifest."""
    outs = {}
    for workers in ("1", "2"):
        out = tmp_path_factory.mktemp("eval") / f"w{workers}"
        assert main(["evaluate", str(manifest), "-o", str(out), "--workers", workers, *FAST]) == 3
        outs[workers] = out
    return outs


def _metrics(out: Path) -> pd.DataFrame:
    """metrics.csv less the wall times; empty cells NaN, so that metric columns are floats."""
    return pd.read_csv(out / "metrics.csv").drop(columns=TIMED)


def _summary(out: Path) -> dict[str, object]:
    summary = json.loads((out / "summary.json").read_text())
    kept = {k: summary[k] for k in ("means", "curves", "accuracy", "n_ok", "failures", "model")}
    return {**kept, "method": summary["config"]["method"]}  # the model's default: named


def test_workers_give_the_one_process_results(
    runs: dict[str, Path], manifest: Path, tmp_path: Path
) -> None:
    one, two = runs["1"], runs["2"]
    metrics = _metrics(two)
    assert list(pd.read_csv(two / "metrics.csv").columns) == METRIC_COLUMNS
    assert metrics.status.tolist() == ["ok", "ok", "ok", "failed"]
    assert metrics.error[3].startswith("VideoOpenError: ")
    assert "missing.mp4" in metrics.error[3]
    assert pd.notna(metrics.keyframe_hit_rate[0])
    assert pd.isna(metrics.keyframe_hit_rate[1])
    assert_same_table(_metrics(one), metrics)  # 2 threads in one worker, 1 in each of two
    assert _summary(one) == approx_runs(_summary(two))
    assert _summary(two)["method"] == "gradcam"  # no --method: the bundled model's default
    # ... and the same as evaluate_manifest in this process.
    config = AnalyzeConfig(device="cpu")  # as FAST sets it
    serial = evaluate_manifest(
        manifest, load_configured_model(config), config, steps=4, random_seeds=1
    )
    save_evaluation(serial, tmp_path)
    assert_same_table(_metrics(tmp_path), metrics)
    assert _summary(tmp_path) == approx_runs(_summary(two))
    failures = pd.read_csv(two / "failures.csv")
    assert list(failures.columns) == FAILURE_COLUMNS
    assert failures.output.tolist() == [f"{WORK_DIR}/missing.mp4"]
    assert (two / WORK_DIR / "missing.mp4" / "log.txt").is_file()
    assert sorted(p.name for p in (two / WORK_DIR / "clip0.mp4").iterdir()) == [RESULT_FILE]
    assert not list(two.rglob("*.tmp-*"))
    assert (two / "curves.png").stat().st_size > 0
    assert (two / "report.html").is_file()


def test_resume_redoes_only_the_missing_videos(
    runs: dict[str, Path], manifest: Path, tmp_path: Path
) -> None:
    out = tmp_path / "w1"  # a copy: the other tests read the runs as they were made
    shutil.copytree(runs["1"], out)
    before = _metrics(out)
    # An interrupted run: clip1 never finished, and nothing was assembled yet.
    (out / WORK_DIR / "clip1.mp4" / RESULT_FILE).unlink()
    for name in ("metrics.csv", "summary.json", "report.html", "curves.png", "failures.csv"):
        (out / name).unlink()
    kept = (out / WORK_DIR / "clip0.mp4" / RESULT_FILE).stat().st_mtime_ns
    config = AnalyzeConfig(device="cpu")  # as FAST sets it
    task = EvaluateTask(steps=4, random_seeds=1)
    run = run_evaluation(manifest, out, config, task, resume=True)
    statuses = [r.status for r in run.results]
    assert statuses == ["skipped-complete", "ok", "skipped-complete", "failed"]
    assert run.exit_code == 3
    assert (out / WORK_DIR / "clip0.mp4" / RESULT_FILE).stat().st_mtime_ns == kept
    assert_same_table(_metrics(out), before)  # clip1 evaluated again, in another process
    # Other options (more random orders) invalidate every recorded result.
    run = run_evaluation(manifest, out, config, EvaluateTask(steps=4, random_seeds=2), resume=True)
    assert [r.status for r in run.results] == ["ok", "ok", "ok", "failed"]
    after = _metrics(out)
    assert_same_table(after.drop(columns=RANDOM_ORDERS), before.drop(columns=RANDOM_ORDERS))
    # Two random orders averaged instead of one: far more than rounding apart.
    ok = before.status == "ok"
    random_orders = after.deletion_auc_random[ok], before.deletion_auc_random[ok]
    assert not np.allclose(*random_orders, rtol=0, atol=1e-3)
    # Without --resume an OUT holding results is refused, and left as it is.
    assert main(["evaluate", str(manifest), "-o", str(out), *FAST]) == 2
    pd.testing.assert_frame_equal(_metrics(out), after, check_exact=True)  # the same file


def test_a_crashing_worker_fails_one_video_only(tmp_path: Path) -> None:
    model = tmp_path / "model.py"
    model.write_text(CRASHING_MODEL)
    _clip(tmp_path / "a.mp4", seed=20)
    write_frames(tmp_path / "b_crash.mp4", [np.full((48, 64, 3), 128, np.uint8)] * 16, 25)
    _clip(tmp_path / "c.mp4", seed=21)
    manifest = tmp_path / "m.csv"
    manifest.write_text("path\na.mp4\nb_crash.mp4\nc.mp4\n")
    out = tmp_path / "out"
    args = ["evaluate", str(manifest), "-o", str(out), "--model", f"{model}:build"]
    args += ["--layer", "features", "--input-size", "32", "32", "--clip-len", "8"]
    assert main([*args, "--workers", "2", *FAST]) == 3
    metrics = pd.read_csv(out / "metrics.csv", keep_default_na=False)
    assert metrics.status.tolist() == ["ok", "failed", "ok"]
    assert metrics.error[1].startswith(f"{WORKER_CRASH}: the worker process died with signal")
    assert "SIGSEGV" in metrics.error[1]
    assert (metrics.deletion_auc[[0, 2]] != "").all()
    failures = pd.read_csv(out / "failures.csv")
    assert failures.error_type.tolist() == [WORKER_CRASH]
    log = (out / WORK_DIR / "b_crash.mp4" / "log.txt").read_text()
    assert "SIGSEGV" in log
    assert "in forward" in log
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_ok"] == 2
    assert summary["n_failed"] == 1


@pytest.mark.slow
@pytest.mark.timeout(1200)  # the slowest test: 48 s + 285 s on 2 cores under a load of 14
def test_ray_gives_the_local_engines_results(
    ray_cluster: str, runs: dict[str, Path], manifest: Path, tmp_path: Path
) -> None:
    out = tmp_path / "ray"
    args = ["evaluate", str(manifest), "-o", str(out), "--engine", "ray", "--workers", "2"]
    assert main([*args, *FAST]) == 3
    assert_same_table(_metrics(out), _metrics(runs["2"]))
    assert pd.read_csv(out / "failures.csv").error_type.tolist() == ["VideoOpenError"]
    assert not list(out.glob(".*.tmp-*"))  # stderr captures, probe


def test_plan_and_fingerprint(tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label\nsub/a.mp4,grow\nb.mp4,\nsub/a.mp4,shrink\n")
    out = tmp_path / "out"
    jobs = plan_evaluation(manifest, out)
    assert [j.name for j in jobs] == ["sub__a.mp4", "b.mp4", "sub__a.mp4-line4"]
    assert jobs[2].out_dir == out / WORK_DIR / "sub__a.mp4-line4"
    assert [j.entry.label for j in jobs] == ["grow", None, "shrink"]
    task, config = EvaluateTask(), AnalyzeConfig()
    digest = task.fingerprint(config, jobs[0].entry)
    assert digest == EvaluateTask().fingerprint(AnalyzeConfig(), jobs[0].entry)
    # The label, the options and the analysis options each shape the result.
    assert digest != task.fingerprint(config, jobs[2].entry)
    assert digest != EvaluateTask(occlusion=3).fingerprint(config, jobs[0].entry)
    assert digest != task.fingerprint(AnalyzeConfig(method="gradcam++"), jobs[0].entry)
