"""The single pass of the pipeline against the two-pass reference; the background decoder.

The reference is what the pipeline used to do: a forward-only scan of every window for the
video-level class, then a CAM pass with that class, fused per frame by :class:`WindowFuser`. The
single pass must give the same maps (1e-5) whether the target was among a window's candidate
classes or the window had to be explained again.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from videocam.analysis import (
    choose_auto_target,
    resolve_class,
    run_analysis,
    window_plan,
)
from videocam.analysis.compose import with_method
from videocam.cam import CamOutput, cam_and_output
from videocam.config import AnalyzeConfig
from videocam.io import open_video, sample_indices
from videocam.models import LoadedModel, load_model
from videocam.runtime import SinglePass, auto_batch, model_input, resources, single_pass
from videocam.scoring import frame_attribution, scale_cams
from videocam.synthetic import SyntheticClip, make_clip
from videocam.temporal import WindowFuser


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> SyntheticClip:
    path = tmp_path_factory.mktemp("single_pass") / "clip.mp4"
    return make_clip(path, n_frames=60, size=(72, 96), event="move_right", seed=5, event_start=20)


@pytest.fixture(scope="module")
def tiny() -> LoadedModel:
    return load_model("videocam_tiny", device="cpu")  # the bundled, trained weights


@pytest.fixture(scope="module")
def r3d() -> LoadedModel:
    torch.manual_seed(0)
    return load_model("r3d_18", weights="none", device="cpu")


def _reference(
    video: Path, loaded: LoadedModel, config: AnalyzeConfig
) -> tuple[int, np.ndarray, np.ndarray]:
    """Two passes: forward-only scan for the target, then CAM; (target, maps, target score)."""
    config = with_method(config, loaded)  # the model's default method where none is named
    with open_video(video) as source:
        indices = sample_indices(source.times_s, stride=config.frame_step)
        frames = source.read(indices, size=loaded.preprocess.size)
    plan = window_plan(loaded, config, len(indices))
    batch = config.batch_size or auto_batch(loaded)
    batches = [plan[start : start + batch] for start in range(0, len(plan), batch)]
    if config.target == "auto":
        total = None
        with torch.inference_mode():
            for rows in batches:
                output = loaded.module(model_input(loaded, frames[rows]))
                probs = torch.softmax(output.float(), dim=1).sum(0)
                total = probs if total is None else total + probs
        assert total is not None
        target, _ = choose_auto_target((total / len(plan)).numpy(), loaded)
    else:
        target = resolve_class(config.target, loaded)
    fuser = WindowFuser(len(indices))
    for rows in batches:
        result = cam_and_output(
            loaded.module,
            model_input(loaded, frames[rows]),
            loaded.layer,
            [target] * len(rows),
            config.method,
            reshape=loaded.reshape,
        )
        probs = torch.softmax(result.output, dim=1)[:, target].numpy()
        window_maps = result.cams.numpy()
        if loaded.kind == "frame":
            window_maps = window_maps[:, None]
        for row, window_map, p in zip(rows, window_maps, probs, strict=True):
            fuser.add(row, window_map, np.array([p]))
    fused = list(fuser.finish())
    maps = np.stack([m for _, m, _ in fused])
    scores = np.array([s[0] for _, _, s in fused])
    return target, maps, scores


def _single_pass(
    video: Path, loaded: LoadedModel, config: AnalyzeConfig
) -> tuple[int, np.ndarray, np.ndarray, SinglePass]:
    """(target, maps, target score, the runner: windows recomputed and replayed)."""
    config = with_method(config, loaded)
    with open_video(video) as source:
        indices = sample_indices(source.times_s, stride=config.frame_step)
        plan = window_plan(loaded, config, len(indices))
        batch = config.batch_size or auto_batch(loaded)
        runner = SinglePass(loaded, source, indices, plan, method=config.method, batch=batch)
        explicit = None if config.target == "auto" else resolve_class(config.target, loaded)
        explained = runner.explain(
            explicit, choose=lambda probs: choose_auto_target(probs, loaded)[0]
        )
        with explained.maps as fused:
            maps, scores = fused.read(0, len(fused)), fused.scores.copy()
    return explained.target, maps, scores, runner


@pytest.mark.parametrize(
    ("method", "target"),
    [
        ("gradcam", "auto"),
        ("gradcam++", "auto"),
        ("eigencam", "auto"),
        ("layercam", 2),
        ("eigengradcam", "auto"),
        ("ablationcam", "auto"),
    ],
)
def test_bundled_model_matches_two_passes(tiny, clip: SyntheticClip, method, target) -> None:
    config = AnalyzeConfig(method=method, target=target, render=False, device="cpu")
    ref_target, ref_maps, ref_scores = _reference(clip.path, tiny, config)
    got_target, maps, scores, runner = _single_pass(clip.path, tiny, config)
    assert got_target == ref_target
    # 5 classes, background skipped: every candidate is kept, nothing replayed or recomputed.
    assert (runner.n_recomputed, runner.n_replayed) == (0, 0)
    np.testing.assert_allclose(maps, ref_maps, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(scores, ref_scores, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("kept_bytes", [single_pass.KEPT_OUTPUTS_BYTES, 0])
@pytest.mark.parametrize("candidates", [32, 1])
def test_r3d_matches_two_passes_with_and_without_recomputing(
    r3d,
    clip: SyntheticClip,
    monkeypatch: pytest.MonkeyPatch,
    candidates: int,
    kept_bytes: int,
) -> None:
    monkeypatch.setattr(resources, "AUTO_CANDIDATES", candidates)
    monkeypatch.setattr(single_pass, "KEPT_OUTPUTS_BYTES", kept_bytes)
    # Every other frame, 8-frame windows: 30 frames, 7 windows of 112x112.
    config = AnalyzeConfig(
        model="r3d_18", weights="none", clip_len=8, frame_step=2, render=False, device="cpu"
    )
    ref_target, ref_maps, ref_scores = _reference(clip.path, r3d, config)
    got_target, maps, scores, runner = _single_pass(clip.path, r3d, config)
    assert got_target == ref_target
    # 400 classes, more than the candidates: every window replayed when there is room.
    assert runner.n_replayed == (len(runner.plan) if kept_bytes else 0)
    np.testing.assert_allclose(maps, ref_maps, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(scores, ref_scores, rtol=1e-5, atol=1e-7)


def test_missed_candidates_are_recomputed(
    tiny, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A late event: the running leader is move_right until the move_left windows come. With one
    # candidate per window, the early windows miss the final target and are explained again.
    late = make_clip(
        tmp_path / "late.mp4",
        n_frames=80,
        size=(72, 96),
        event="move_left",
        seed=5,
        event_start=56,
        event_len=20,
    )
    monkeypatch.setattr(resources, "AUTO_CANDIDATES", 1)
    monkeypatch.setattr(single_pass, "KEPT_OUTPUTS_BYTES", 0)  # candidates only, no replay
    # Candidates are chosen per batch: small batches, so the early ones see no event.
    config = AnalyzeConfig(render=False, device="cpu", batch_size=2)
    ref_target, ref_maps, ref_scores = _reference(late.path, tiny, config)
    got_target, maps, scores, runner = _single_pass(late.path, tiny, config)
    assert got_target == ref_target == 2
    assert 0 < runner.n_recomputed < 9
    assert runner.n_replayed == 0
    np.testing.assert_allclose(maps, ref_maps, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(scores, ref_scores, rtol=1e-5, atol=1e-7)


@pytest.fixture(scope="module")
def late_clip(tmp_path_factory: pytest.TempPathFactory) -> SyntheticClip:
    """move_left late in the clip: the running leader early on is another class."""
    path = tmp_path_factory.mktemp("late") / "late.mp4"
    return make_clip(
        path, n_frames=80, size=(72, 96), event="move_left", seed=5, event_start=56, event_len=20
    )


@pytest.mark.parametrize(
    ("kept_bytes", "replayed", "recomputed"),
    [
        # Room for every window: the late target's maps of the early windows come from the
        # head replay, nothing is decoded again (80 frames: 9 windows).
        (single_pass.KEPT_OUTPUTS_BYTES, 9, (0, 0)),
        # Room for one batch: its 2 windows are replayed, the other 7 keep one candidate
        # each, and those that missed the late target are explained again.
        (1, 2, (1, 7)),
    ],
)
def test_kept_layer_outputs_replace_recomputing(
    tiny,
    late_clip: SyntheticClip,
    monkeypatch: pytest.MonkeyPatch,
    kept_bytes: int,
    replayed: int,
    recomputed: tuple[int, int],
) -> None:
    monkeypatch.setattr(resources, "AUTO_CANDIDATES", 1)
    monkeypatch.setattr(single_pass, "KEPT_OUTPUTS_BYTES", kept_bytes)
    config = AnalyzeConfig(render=False, device="cpu", batch_size=2)
    ref_target, ref_maps, ref_scores = _reference(late_clip.path, tiny, config)
    got_target, maps, scores, runner = _single_pass(late_clip.path, tiny, config)
    assert got_target == ref_target == 2
    assert runner.n_replayed == replayed
    assert recomputed[0] <= runner.n_recomputed <= recomputed[1]
    np.testing.assert_allclose(maps, ref_maps, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(scores, ref_scores, rtol=1e-5, atol=1e-7)


def test_a_replay_that_differs_is_explained_again(
    tiny, late_clip: SyntheticClip, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A head that seemed to replay alone but gives other logits for the kept outputs (here
    # made so): every kept window is decoded and explained again, and the maps stay exact.
    monkeypatch.setattr(resources, "AUTO_CANDIDATES", 1)
    replay = SinglePass._replay

    def shifted(self: SinglePass, *args: object) -> CamOutput:
        result = replay(self, *args)  # type: ignore[arg-type]
        return CamOutput(cams=result.cams, output=result.output + torch.arange(5.0))

    monkeypatch.setattr(SinglePass, "_replay", shifted)
    config = AnalyzeConfig(render=False, device="cpu", batch_size=2)
    ref_target, ref_maps, ref_scores = _reference(late_clip.path, tiny, config)
    got_target, maps, scores, runner = _single_pass(late_clip.path, tiny, config)
    assert got_target == ref_target == 2
    assert (runner.n_replayed, runner.n_recomputed) == (0, 9)
    np.testing.assert_allclose(maps, ref_maps, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(scores, ref_scores, rtol=1e-5, atol=1e-7)


def test_frame_model_matches_two_passes(clip: SyntheticClip) -> None:
    torch.manual_seed(0)
    loaded = load_model("resnet18", weights="none", device="cpu")
    config = AnalyzeConfig(model="resnet18", weights="none", frame_step=6, render=False)
    ref_target, ref_maps, ref_scores = _reference(clip.path, loaded, config)
    got_target, maps, scores, runner = _single_pass(clip.path, loaded, config)
    assert runner.n_replayed == 10  # resnet18's 1,000 classes: the head replayed
    assert got_target == ref_target
    np.testing.assert_allclose(maps, ref_maps, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(scores, ref_scores, rtol=1e-5, atol=1e-7)


def test_analysis_numbers_match_two_passes(tiny, clip: SyntheticClip) -> None:
    config = AnalyzeConfig(render=False, device="cpu")
    ref_target, ref_maps, ref_scores = _reference(clip.path, tiny, config)
    analysis = run_analysis(clip.path, tiny, config)
    scaled, factor = scale_cams(ref_maps)
    assert analysis.target[0] == ref_target
    assert analysis.summary["cam_scale"] == pytest.approx(factor, rel=1e-5)
    np.testing.assert_allclose(analysis.frames.attribution, frame_attribution(scaled), atol=1e-6)
    np.testing.assert_allclose(analysis.frames.target_score, ref_scores, rtol=1e-5)
    single = analysis.summary["target"]["single_pass"]
    # Background skipped: the 4 other classes are every window's candidates, nothing replayed.
    assert single == {"candidates_per_window": 4, "windows_recomputed": 0, "windows_replayed": 0}


@pytest.mark.gpu
@pytest.mark.parametrize("autocast", [False, True])
def test_cuda_single_pass_matches_cpu(clip: SyntheticClip, autocast: bool) -> None:
    cpu = load_model("videocam_tiny", device="cpu")
    cuda = load_model("videocam_tiny", device="cuda")
    config = AnalyzeConfig(render=False, device="cpu")
    ref_target, ref_maps, ref_scores = _reference(clip.path, cpu, config)
    cuda_config = config.replace(device="cuda", autocast=autocast)
    got_target, maps, scores, _ = _single_pass(clip.path, cuda, cuda_config)
    assert got_target == ref_target
    tolerance = {"rtol": 5e-2, "atol": 5e-3} if autocast else {"rtol": 1e-3, "atol": 1e-5}
    np.testing.assert_allclose(maps, ref_maps, **tolerance)
    np.testing.assert_allclose(scores, ref_scores, **tolerance)
    analysis = run_analysis(clip.path, cuda, cuda_config)
    assert analysis.summary["windows"]["batch_size"] >= 1


@pytest.mark.gpu
def test_cuda_pass_has_no_host_synchronisation_per_batch(clip: SyntheticClip) -> None:
    """Pinned, non-blocking copies, device constants made once, classes made once: the steady
    state of the pass never waits for the GPU but at the one-batch-late host copies."""
    cuda = load_model("videocam_tiny", device="cuda")
    config = AnalyzeConfig(render=False, device="cuda", batch_size=2)
    run_analysis(clip.path, cuda, config)  # warm-up: caches, cuDNN, the allocator
    for target in (None, 2):
        with open_video(clip.path) as source:
            indices = sample_indices(source.times_s)
            plan = window_plan(cuda, config, len(indices))
            single = SinglePass(cuda, source, indices, plan, method="gradcam", batch=2)
            torch.cuda.set_sync_debug_mode("error")
            try:
                result = single.run(target)
            finally:
                torch.cuda.set_sync_debug_mode(0)
            result.close()


@pytest.mark.gpu
def test_cuda_bad_class_is_an_error_not_a_device_assert() -> None:
    from videocam.cam import CamError, cam_and_output_classes

    cuda = load_model("videocam_tiny", weights="none", device="cuda")
    x = torch.zeros(2, 3, 16, 64, 64, device="cuda")
    for bad in ([7], torch.tensor([7]), torch.tensor([7], device="cuda")):
        with pytest.raises(CamError, match="out of range"):
            cam_and_output_classes(cuda.module, x, cuda.layer, bad)
    # The context is still usable: a device-side assert would fail every later call.
    assert cam_and_output_classes(cuda.module, x, cuda.layer, [1]).cams.shape[0] == 2
