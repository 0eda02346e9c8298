"""Perturbation re-scoring over the frames the analysis's single pass kept: the same numbers as
re-running the model on every window of a perturbed copy of the video, one mask at a time."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from videocam.analysis import PassFrames, run_analysis_keeping_frames
from videocam.config import AnalyzeConfig
from videocam.evaluate import TargetScorer, curve_masks, score_masks
from videocam.io import open_video
from videocam.models import LoadedModel, load_model
from videocam.runtime import model_input, single_pass
from videocam.synthetic import ClipSpec, SyntheticClip, make_clip

from support.media import corrupt_packets

SPEC = ClipSpec(n_frames=44, size=(48, 64), seed=11, event="grow", event_start=14, event_len=16)
#: Non-key frames of SPEC's clip whose packets are damaged (keyframes every 12).
DAMAGED = (5, 6, 30)


@pytest.fixture(scope="module")
def tiny() -> LoadedModel:
    return load_model("videocam_tiny", device="cpu")


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> SyntheticClip:
    return make_clip(tmp_path_factory.mktemp("rescoring") / "clip.mp4", SPEC)


def _brute_force(loaded: LoadedModel, frames: PassFrames, target: int, kept: np.ndarray) -> float:
    """The target's mean window probability with every position whose row is not kept made
    neutral: the whole perturbed stream in memory, every window through the model."""
    stream = frames.store.read(0, len(frames.store))
    stream[~kept[frames.row_of_position]] = frames.neutral
    with torch.inference_mode():
        output = loaded.module(model_input(loaded, stream[frames.plan]))
    return float(torch.softmax(output.float(), dim=1)[:, target].mean())


def _masks(n_rows: int) -> np.ndarray:
    rng = np.random.default_rng(3)
    order = rng.permutation(n_rows)
    return np.concatenate(
        [
            np.ones((1, n_rows), bool),
            np.zeros((1, n_rows), bool),
            curve_masks(order, 4, inserting=False),
            rng.random((3, n_rows)) < 0.5,
        ]
    )


def test_kept_frames_are_what_the_model_saw(tiny: LoadedModel, clip: SyntheticClip) -> None:
    config = AnalyzeConfig(render=False, device="cpu")
    analysis, frames = run_analysis_keeping_frames(clip.path, tiny, config)
    with frames, open_video(clip.path) as source:
        decoded = source.read(np.arange(SPEC.n_frames), size=tiny.preprocess.size)
        np.testing.assert_array_equal(frames.store.read(0, SPEC.n_frames), decoded)
        np.testing.assert_array_equal(frames.row_of_position, np.arange(SPEC.n_frames))
        expected = decoded.mean(axis=0, dtype=np.float64).round().astype(np.uint8)
        np.testing.assert_array_equal(frames.neutral, expected)
        assert frames.plan.shape == (analysis.summary["windows"]["n_windows"], 16)


@pytest.mark.parametrize("spill", [False, True])
def test_score_masks_equal_the_brute_force(
    tiny: LoadedModel, clip: SyntheticClip, monkeypatch: pytest.MonkeyPatch, spill: bool
) -> None:
    if spill:
        monkeypatch.setattr(single_pass, "FRAME_MEMORY_BYTES", 1)  # every frame to the file
    config = AnalyzeConfig(render=False, device="cpu", target=3)
    analysis, frames = run_analysis_keeping_frames(clip.path, tiny, config)
    with frames:
        assert frames.store.spilled == spill
        masks = _masks(len(analysis.frames))
        got = score_masks(tiny, frames, 3, masks, batch=3)
        expected = [_brute_force(tiny, frames, 3, kept) for kept in masks]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)


def test_undecodable_frames_follow_their_stand_ins(
    tiny: LoadedModel, clip: SyntheticClip, tmp_path: Path
) -> None:
    damaged = corrupt_packets(clip.path, tmp_path / "damaged.mp4", DAMAGED)
    config = AnalyzeConfig(render=False, device="cpu", target=3, backend="pyav")
    analysis, frames = run_analysis_keeping_frames(damaged, tiny, config)
    with frames:
        rows = analysis.frames.frame_index.to_numpy()
        lost = sorted(set(range(SPEC.n_frames)) - set(rows.tolist()))
        assert set(DAMAGED) <= set(lost)  # and the frames that refer to them
        # A lost frame's position holds the last decoded frame before it.
        expected_rows = [int(np.searchsorted(rows, p, side="right")) - 1 for p in range(44)]
        assert frames.row_of_position.tolist() == expected_rows
        assert frames.row_of_position[[4, 5, 6, 7]].tolist() == [4, 4, 4, 5]
        # The neutral frame is the mean of the decoded frames, stand-ins left out.
        decoded = frames.store.read(0, SPEC.n_frames)[rows]
        expected = decoded.mean(axis=0, dtype=np.float64).round().astype(np.uint8)
        np.testing.assert_array_equal(frames.neutral, expected)
        masks = _masks(len(rows))
        got = score_masks(tiny, frames, 3, masks, batch=4)
        expected_scores = [_brute_force(tiny, frames, 3, kept) for kept in masks]
    np.testing.assert_allclose(got, expected_scores, rtol=1e-5, atol=1e-7)


def test_target_scorer_remembers_masks(
    tiny: LoadedModel, clip: SyntheticClip, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = AnalyzeConfig(render=False, device="cpu", target=3)
    analysis, frames = run_analysis_keeping_frames(clip.path, tiny, config)
    calls: list[int] = []
    real = score_masks

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(len(args[3]))
        return real(*args, **kwargs)

    monkeypatch.setattr("videocam.evaluate.runner.score_masks", counting)
    with frames:
        scorer = TargetScorer(tiny, frames, 3, batch=4)
        masks = _masks(len(analysis.frames))
        distinct = len({kept.tobytes() for kept in masks})
        first = scorer.score_all(masks)
        assert calls == [distinct]  # each distinct mask once, in one sweep
        again = scorer.score_all(masks[::-1])
        assert calls == [distinct]  # nothing new: remembered
        np.testing.assert_array_equal(again, first[::-1])
        assert scorer(masks[2]) == first[2]
