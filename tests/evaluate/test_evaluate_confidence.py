"""Average Drop and Increase in Confidence per window against torch-cam 0.5's
ClassificationMetric, fed the same window maps, on a video model (3-D) and a frame model (2-D)."""

from __future__ import annotations

import contextlib
import functools
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from videocam.analysis import run_analysis_keeping_frames
from videocam.cam import compute_cam
from videocam.config import AnalyzeConfig
from videocam.evaluate.confidence import confidence_change, explanation_masks, window_confidence
from videocam.models import LoadedModel, load_model
from videocam.runtime import model_input
from videocam.synthetic import make_clip

torchcam_metrics = pytest.importorskip("torchcam.metrics")
torchcam_core = pytest.importorskip("torchcam.methods.core")

FRAME_BUILDER = textwrap.dedent(
    """
    import torch
    from torch import nn

    def build():
        torch.manual_seed(4)
        return nn.Sequential(
            nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 5, 3, stride=2), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(5, 3),
        )
    """
)


class _GivenMaps:
    """A torch-cam extractor that hands torch-cam the window maps of the pass (normalised by
    torch-cam's own code), so the comparison is of the metric, not of the maps."""

    def __init__(self, model: torch.nn.Module, maps: torch.Tensor) -> None:
        self.model, self.maps = model, maps

    def __call__(self, class_idx, scores=None, normalized=True, **kwargs):
        return [torchcam_core._CAM._normalize(self.maps.clone())]

    def fuse_cams(self, cams):
        return cams[0]

    def _hooks_off(self):
        return contextlib.nullcontext()


def _compare(loaded: LoadedModel, video: Path, target: int) -> tuple[float, float]:
    config = AnalyzeConfig(render=False, device="cpu", target=target)
    _, frames = run_analysis_keeping_frames(video, loaded, config)
    with frames:
        ours = confidence_change(loaded, frames, target, batch=3)
        block = frames.store.read(0, len(frames.store))
        inputs = model_input(loaded, block[frames.plan])
        assert frames.window_maps is not None
        maps = torch.from_numpy(frames.window_maps.read(0, len(frames.plan)))
    if loaded.kind == "frame":
        maps = maps[:, 0]
    # The kept maps are each window's own map of the target, as compute_cam gives it.
    expected = compute_cam(loaded.module, inputs, loaded.layer, [target] * len(inputs))
    torch.testing.assert_close(maps, expected, rtol=1e-5, atol=1e-6)
    metric = torchcam_metrics.ClassificationMetric(
        _GivenMaps(loaded.module, maps), functools.partial(torch.softmax, dim=-1)
    )
    metric.update(inputs, class_idx=target)
    reference = metric.summary()
    assert ours[0] == pytest.approx(reference["avg_drop"], rel=1e-4, abs=1e-7)
    assert ours[1] == pytest.approx(reference["conf_increase"], abs=1e-12)
    return ours


def test_video_model_matches_torch_cam(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "clip.mp4", n_frames=40, size=(72, 96), event="move_right")
    tiny = load_model("videocam_tiny", device="cpu")
    average_drop, increase = _compare(tiny, clip.path, target=1)
    assert 0 < average_drop < 1
    assert 0 <= increase <= 1


def test_frame_model_matches_torch_cam(tmp_path: Path) -> None:
    builder = tmp_path / "frames.py"
    builder.write_text(FRAME_BUILDER, encoding="utf-8")
    loaded = load_model(f"{builder}:build", layer="3", input_size=(24, 32), frame_model=True)
    clip = make_clip(tmp_path / "clip.mp4", n_frames=12, size=(48, 64), event="grow")
    average_drop, increase = _compare(loaded, clip.path, target=2)
    assert average_drop + increase > 0  # not a trivial case


def test_window_confidence_by_hand() -> None:
    drop, increase = window_confidence(np.array([0.5, 0.2, 0.4]), np.array([0.25, 0.3, 0.4]))
    np.testing.assert_allclose(drop, [0.25 / (0.5 + 1e-7), 0.0, 0.0])
    assert increase.tolist() == [False, True, False]


def test_explanation_masks_scale_each_window_then_resize() -> None:
    maps = torch.tensor([[[1.0, 3.0]], [[2.0, 2.0]]])  # (2, 1, 2): two windows
    masks = explanation_masks(maps, (1, 4))
    # window 0 scaled to [0, 1] then resized linearly (align_corners=False): 0, .25, .75, 1
    torch.testing.assert_close(masks[0, 0], torch.tensor([0.0, 0.25, 0.75, 1.0]) / (1 + 1e-8))
    assert torch.equal(masks[1], torch.zeros(1, 4))  # a flat map masks everything out
