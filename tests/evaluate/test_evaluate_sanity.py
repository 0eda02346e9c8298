"""``evaluate --sanity``: cascading model-parameter randomisation (Adebayo et al. 2018)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from videocam.cli import main
from videocam.evaluate.sanity import (
    SANITY_THRESHOLD,
    cascade,
    randomisation_steps,
    reinitialise,
    spearman,
)
from videocam.models import load_model
from videocam.models.tiny import TinyVideoNet

from support.batch import clip, page_data


def test_spearman_hand_cases() -> None:
    # One swap among four: 1 - 6 Σd² / (n (n² - 1)) = 1 - 6·2 / 60.
    assert spearman(np.array([1, 2, 3, 4]), np.array([1, 3, 2, 4])) == pytest.approx(0.8)
    # Ties get average ranks (1, 2.5, 2.5, 4): 4.5 / sqrt(4.5 · 5).
    tied = spearman(np.array([[1, 2], [2, 3]]), np.array([10, 20, 30, 40]))
    assert tied == pytest.approx(4.5 / np.sqrt(22.5), rel=1e-12)
    assert spearman(np.array([3, 2, 1]), np.array([0.1, 5, 9])) == pytest.approx(-1.0)
    assert spearman(np.zeros(5), np.zeros(5)) == 1.0
    assert spearman(np.zeros(5), np.arange(5)) == 0.0
    with pytest.raises(ValueError, match="4 and 3 values"):
        spearman(np.zeros(4), np.zeros(3))


def test_steps_run_from_the_head_down_and_descend_a_wrapper() -> None:
    net = TinyVideoNet(num_classes=3)
    assert randomisation_steps(net) == ["fc", "block4", "block3", "block2", "block1"]
    wrapped = nn.Sequential(nn.Sequential(net))
    assert randomisation_steps(wrapped)[:2] == ["0.0.fc", "0.0.block4"]


def test_reinitialise_is_seeded_complete_and_leaves_the_global_state() -> None:
    torch.manual_seed(0)
    trained = TinyVideoNet(num_classes=3)
    with torch.no_grad():
        for p in trained.parameters():
            p.add_(1.0)  # nothing equals a fresh draw by chance
        trained.block4[1].running_mean.fill_(5.0)
    a, b = TinyVideoNet(num_classes=3), TinyVideoNet(num_classes=3)
    a.load_state_dict(trained.state_dict())
    b.load_state_dict(trained.state_dict())
    state = torch.random.get_rng_state()
    reinitialise(a.block4, seed=3)
    reinitialise(b.block4, seed=3)
    assert torch.equal(torch.random.get_rng_state(), state)
    for (name, pa), pb, pt in zip(
        a.block4.named_parameters(), b.block4.parameters(), trained.block4.parameters(), strict=True
    ):
        assert torch.equal(pa, pb), name
        assert not torch.equal(pa, pt), name
    assert float(a.block4[1].running_mean.abs().max()) == 0.0


def test_cascade_is_cumulative_and_leaves_the_model_alone() -> None:
    loaded = load_model("videocam_tiny", device="cpu")
    before = {k: v.clone() for k, v in loaded.module.state_dict().items()}
    steps = randomisation_steps(loaded.module)
    changed = []
    for model in cascade(loaded, steps):
        now = model.module.state_dict()
        changed.append(sorted({k.split(".")[0] for k in now if not torch.equal(now[k], before[k])}))
    assert changed == [
        ["fc"],
        ["block4", "fc"],
        ["block3", "block4", "fc"],
        ["block2", "block3", "block4", "fc"],
        ["block1", "block2", "block3", "block4", "fc"],
    ]
    after = loaded.module.state_dict()
    assert all(torch.equal(after[k], before[k]) for k in before)


#: A model whose target layer holds no parameter: Eigen-CAM's maps there cannot depend on the
#: weights, so randomising them leaves the maps as they were and the check must flag it.
PARAMETER_FREE_FEATURES = """
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.AvgPool3d((1, 4, 4))
        self.head = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3, 4)))


def build() -> nn.Module:
    torch.manual_seed(0)
    return Net()
"""


def test_maps_that_ignore_the_weights_are_flagged(tmp_path: Path) -> None:
    model = tmp_path / "model.py"
    model.write_text(PARAMETER_FREE_FEATURES)
    video = clip(tmp_path / "a.mp4", seed=31, n_frames=16)
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(f"path,label\n{video.name},1\n")
    out = tmp_path / "out"
    args = ["evaluate", str(manifest), "-o", str(out), "--model", f"{model}:build"]
    args += ["--layer", "features", "--input-size", "32", "32", "--clip-len", "8"]
    args += ["--method", "eigencam", "--sanity", "--steps", "2", "--random-seeds", "1"]
    assert main([*args, "--device", "cpu", "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    corr = summary["sanity_rank_corr"]
    assert corr["steps"] == ["head"]
    assert corr["videos"] == [{"path": str(video), "rank_corr": [1.0]}]
    assert corr["mean"] == [1.0]
    assert summary["sanity"]["flagged"] is True
    assert "eigencam: the maps barely change" in summary["sanity"]["message"]
    metrics = pd.read_csv(out / "metrics.csv")
    assert metrics.sanity_rank_corr.tolist() == [1.0]
    assert page_data(out / "report.html")["summary"]["sanity"]["flagged"] is True


def test_gradcam_on_the_trained_tiny_model_decorrelates(tmp_path: Path) -> None:
    video = clip(tmp_path / "a.mp4", seed=32, n_frames=32)
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(f"path,label\n{video.name},grow\n")
    out = tmp_path / "out"
    args = ["evaluate", str(manifest), "-o", str(out), "--sanity", "--steps", "2"]
    assert main([*args, "--random-seeds", "1", "--device", "cpu", "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    corr = summary["sanity_rank_corr"]
    assert corr["steps"] == ["fc", "block4", "block3", "block2", "block1"]
    (video_corr,) = corr["videos"]
    assert len(video_corr["rank_corr"]) == 5
    assert corr["mean"] == video_corr["rank_corr"]
    assert all(abs(c) < SANITY_THRESHOLD for c in video_corr["rank_corr"])
    assert abs(video_corr["rank_corr"][-1]) < 0.2  # fully random: about 0 (-0.06 here)
    assert summary["sanity"]["flagged"] is False
    assert summary["sanity"]["message"] == ""
    metrics = pd.read_csv(out / "metrics.csv")
    assert metrics.sanity_rank_corr.tolist() == [video_corr["rank_corr"][-1]]
    assert summary["means"]["sanity_rank_corr"] == video_corr["rank_corr"][-1]
