"""The temporal occlusion baseline: importance = the target's drop when a run of frames around
a frame is made neutral."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from videocam.analysis import run_analysis_keeping_frames
from videocam.cli import main
from videocam.config import AnalyzeConfig
from videocam.evaluate import TargetScorer
from videocam.evaluate.occlusion import (
    occlusion_importance,
    occlusion_keyframes,
    occlusion_masks,
)
from videocam.models import load_model
from videocam.runtime import model_input
from videocam.synthetic import ClipSpec, make_clip


def test_masks_hide_the_run_around_each_frame() -> None:
    hidden = ~occlusion_masks(5, 3)
    assert hidden.astype(int).tolist() == [
        [1, 1, 0, 0, 0],
        [1, 1, 1, 0, 0],
        [0, 1, 1, 1, 0],
        [0, 0, 1, 1, 1],
        [0, 0, 0, 1, 1],
    ]
    # An even run reaches one frame further ahead than behind: i - 1 .. i + 2.
    assert (~occlusion_masks(4, 4))[1].astype(int).tolist() == [1, 1, 1, 1]
    assert (~occlusion_masks(4, 4))[0].astype(int).tolist() == [1, 1, 1, 0]
    assert (~occlusion_masks(3, 1)).astype(int).tolist() == np.eye(3, dtype=int).tolist()
    with pytest.raises(ValueError, match="run must be >= 1"):
        occlusion_masks(3, 0)


def test_importance_is_the_drop_exact() -> None:
    # A score that is the kept share of fixed frame weights: hiding frame i's run of 3 drops it
    # by the weights of the run, a tenth each.
    weights = np.array([1.0, 0.0, 2.0, 0.0, 0.0, 3.0])

    def score_all(masks: np.ndarray) -> np.ndarray:
        return masks.astype(np.float64) @ weights / 10

    importance = occlusion_importance(score_all, 6, 3)
    np.testing.assert_allclose(importance, [0.1, 0.3, 0.2, 0.2, 0.3, 0.3], rtol=0, atol=1e-15)
    times = np.arange(6) / 2.0
    rule = {"keyframe_floor": 0, "evidence_floor": 0, "evidence_ratio": 10}
    keyframes = occlusion_keyframes(importance, times, np.ones(6), topk=2, min_gap_s=1.0, **rule)
    # Frames 1, 4, 5 tie at 0.3: the earliest first, then the next one >= 1 s away.
    assert keyframes.tolist() == [1, 4]


def test_importance_on_the_tiny_model_equals_rerunning_each_occluded_video(
    tmp_path: Path,
) -> None:
    spec = ClipSpec(n_frames=20, size=(48, 64), seed=51, event="grow", event_start=6, event_len=8)
    clip = make_clip(tmp_path / "a.mp4", spec)
    tiny = load_model("videocam_tiny", device="cpu")
    config = AnalyzeConfig(render=False, device="cpu", target=3, clip_len=8, stride=4)
    analysis, frames = run_analysis_keeping_frames(clip.path, tiny, config)
    with frames:
        scorer = TargetScorer(tiny, frames, 3, batch=4)
        importance = occlusion_importance(scorer.score_all, len(analysis.frames), 5)
        stream = frames.store.read(0, len(frames.store))

        def rerun(hidden: slice) -> float:
            video = stream.copy()
            video[hidden] = frames.neutral
            with torch.inference_mode():
                logits = tiny.module(model_input(tiny, video[frames.plan]))
            return float(torch.softmax(logits.float(), dim=1)[:, 3].mean())

        untouched = rerun(slice(0, 0))
        expected = [untouched - rerun(slice(max(0, i - 2), i + 3)) for i in range(20)]
    np.testing.assert_allclose(importance, expected, rtol=1e-5, atol=1e-7)
    assert importance[6:14].mean() > importance[:4].mean()  # the event's frames matter most


def test_evaluate_scores_the_occlusion_baseline(tmp_path: Path) -> None:
    spec = ClipSpec(n_frames=48, size=(48, 64), seed=52, event="grow", event_start=16, event_len=20)
    clip = make_clip(tmp_path / "a.mp4", spec)
    start, end = clip.event_interval_s or (0, 0)
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(f"path,label,event_start_s,event_end_s\na.mp4,grow,{start},{end}\n")
    out = tmp_path / "out"
    args = ["evaluate", str(manifest), "-o", str(out), "--steps", "4", "--random-seeds", "2"]
    assert main([*args, "--occlusion", "5", "--device", "cpu", "--quiet"]) == 0
    row = pd.read_csv(out / "metrics.csv").iloc[0]
    # Frames ordered by their occlusion drop: deleting them first hurts more than at random.
    assert row.occlusion_deletion_auc < row.deletion_auc_random
    assert row.occlusion_insertion_auc > row.insertion_auc_random
    assert row.occlusion_keyframe_hit_rate == 1.0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["occlusion_run"] == 5
    assert summary["means"]["occlusion_deletion_auc"] == pytest.approx(row.occlusion_deletion_auc)
    assert main([*args[:3], str(tmp_path / "o2"), "--occlusion", "-1"]) == 2
    assert not (tmp_path / "o2").exists()
