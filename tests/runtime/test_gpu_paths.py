"""The CUDA path's decisions, checked on the CPU with the CUDA calls stubbed at their boundary:
batch sizes from memory, the memoised probe, GPUs for batch workers, host-side validation of
class indices, device constants made once, bfloat16 autocast, recovery from out-of-memory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import videocam.cam
from videocam.analysis import run_analysis
from videocam.batch.engine import LocalEngine
from videocam.batch.ray_engine import gpu_actor_threads
from videocam.cam import CamError, ClassIndices
from videocam.cam.targets import class_matrix
from videocam.config import AnalyzeConfig
from videocam.models import load_model
from videocam.models.preprocess import Preprocess, _constants
from videocam.runtime import autocast, resources
from videocam.synthetic import SyntheticClip, make_clip

GB = 2**30


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> SyntheticClip:
    path = tmp_path_factory.mktemp("gpu_paths") / "clip.mp4"
    return make_clip(path, n_frames=48, size=(48, 64), event="grow", seed=3, event_start=16)


# --- batch sizes --------------------------------------------------------------------------------


def test_batch_from_memory_counts_reserved_memory_and_shares_it() -> None:
    # 0.4 x (10 GB free + 2 GB reserved but unallocated) = 4.8 GB; 1 GB a window.
    assert resources.batch_from_memory(GB, 10 * GB, 4 * GB, 2 * GB) == 4
    assert resources.batch_from_memory(GB, 10 * GB, 4 * GB, 2 * GB, workers=2) == 2
    assert resources.batch_from_memory(GB, 10 * GB, 4 * GB, 2 * GB, workers=8) == 1  # at least 1
    assert resources.batch_from_memory(1, 80 * GB, 0, 0) == resources.MAX_CUDA_BATCH


def test_cuda_batch_is_probed_once_per_model_and_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = load_model("videocam_tiny", weights="none", device="cpu")
    probes: list[tuple[int, str, bool]] = []

    def probe(loaded: object, clip_len: int, method: str, autocast: bool) -> int:
        probes.append((clip_len, method, autocast))
        return GB

    monkeypatch.setattr(resources, "_probe_window_bytes", probe)
    monkeypatch.setattr(resources, "_device_memory", lambda device: (10 * GB, 0, 0))
    monkeypatch.setenv(resources.WORKERS_PER_DEVICE_ENV, "2")
    assert resources.cuda_batch(loaded, 16, "gradcam") == 2
    assert resources.cuda_batch(loaded, 16, "gradcam") == 2
    assert resources.cuda_batch(loaded, 16, "gradcam", autocast=True) == 2
    assert resources.cuda_batch(loaded, 8, "gradcam") == 2
    assert probes == [(16, "gradcam", False), (16, "gradcam", True), (8, "gradcam", False)]
    other = load_model("videocam_tiny", weights="none", device="cpu")
    resources.cuda_batch(other, 16, "gradcam")  # another model: probed again
    assert len(probes) == 4


# --- GPUs for batch workers -----------------------------------------------------------------------


def test_visible_gpus(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2, 3")
    assert resources.visible_gpus() == ["2", "3"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert resources.visible_gpus() == []
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    for name in ("nvidia1", "nvidia0", "nvidiactl", "nvidia-uvm", "null"):
        (tmp_path / name).touch()
    monkeypatch.setattr(resources, "_DEV", tmp_path)
    assert resources.visible_gpus() == ["0", "1"]
    monkeypatch.setattr(resources, "_DEV", tmp_path / "absent")
    assert resources.visible_gpus() == []


def test_workers_spread_round_robin_and_replacements_take_the_free_gpu() -> None:
    gpus = ["0", "1"]
    load: dict[str, int] = {}
    order = []
    for _ in range(3):
        gpu = resources.least_loaded_gpu(gpus, load)
        load[gpu] = load.get(gpu, 0) + 1
        order.append(gpu)
    assert order == ["0", "1", "0"]
    load["1"] -= 1  # the worker on GPU 1 died
    assert resources.least_loaded_gpu(gpus, load) == "1"
    assert resources.worker_gpu_env("1", 2) == {
        "CUDA_VISIBLE_DEVICES": "1",
        resources.WORKERS_PER_DEVICE_ENV: "2",
    }


def test_local_engine_uses_gpus_unless_told_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    assert LocalEngine(AnalyzeConfig(device="auto"), workers=3).gpus == ["0", "1"]
    assert LocalEngine(AnalyzeConfig(device="cpu"), workers=3).gpus == []


def test_ray_gpu_actors_get_the_cores_of_a_node_per_gpu() -> None:
    nodes = [
        {"Alive": True, "Resources": {"CPU": 32.0, "GPU": 4.0}},
        {"Alive": True, "Resources": {"CPU": 16.0, "GPU": 1.0}},
        {"Alive": True, "Resources": {"CPU": 8.0}},  # no GPU: no GPU actor goes there
        {"Alive": False, "Resources": {"CPU": 2.0, "GPU": 2.0}},
    ]
    assert gpu_actor_threads(nodes) == 8
    assert gpu_actor_threads([]) == 1


# --- class indices --------------------------------------------------------------------------------


def test_class_indices_are_checked_on_the_host_before_any_copy() -> None:
    output = torch.zeros(2, 5)
    indices = ClassIndices.on(torch.device("cpu"), [4, 1], 5)
    assert indices.largest == 4
    assert class_matrix(indices, output).tolist() == [[4, 1], [4, 1]]
    with pytest.raises(CamError, match="class index 5 out of range for a model with 5"):
        ClassIndices.on(torch.device("cpu"), [5], 5)
    with pytest.raises(CamError, match="class index 4 out of range for a model with 3"):
        class_matrix(indices, torch.zeros(2, 3))  # known largest, checked without a sync
    with pytest.raises(CamError, match=">= 0"):
        class_matrix(torch.tensor([-1]), output)
    with pytest.raises(CamError, match="class index 7 out of range"):
        class_matrix(torch.tensor([[1], [7]]), output)
    trusted = ClassIndices(torch.tensor([2, 3]))  # e.g. the top-k of the output: no check
    assert class_matrix(lambda out: trusted, output).tolist() == [[2, 3], [2, 3]]


def test_preprocessing_constants_are_made_once_per_device() -> None:
    preprocess = Preprocess(size=(4, 4), mean=(0.1, 0.2, 0.3), std=(0.5, 0.5, 0.5))
    frames = torch.zeros((2, 4, 4, 3), dtype=torch.uint8)
    first = _constants(preprocess.mean, preprocess.std, frames.device)
    before = _constants.cache_info().hits
    for _ in range(3):
        preprocess(frames)
    assert _constants.cache_info().hits == before + 3
    assert _constants(preprocess.mean, preprocess.std, frames.device)[0] is first[0]


def test_autocast_is_bfloat16_on_every_device() -> None:
    with autocast(torch.device("cpu"), True):
        assert torch.get_autocast_dtype("cpu") == torch.bfloat16
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "CUDA is not available": the context is still made
        context = autocast(torch.device("cuda"), True)
    assert context.fast_dtype == torch.bfloat16
    assert not isinstance(autocast(torch.device("cuda"), False), torch.autocast)


# --- out of memory ------------------------------------------------------------------------------


def test_out_of_memory_halves_the_batch_and_gives_the_same_result(
    clip: SyntheticClip, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    loaded = load_model("videocam_tiny", device="cpu")
    config = AnalyzeConfig(render=False, device="cpu", batch_size=4)
    expected = run_analysis(clip.path, loaded, config)
    real = videocam.cam.cam_and_output_classes
    sizes: list[int] = []

    def small_memory(module, inputs, *args, **kwargs):  # type: ignore[no-untyped-def]
        sizes.append(len(inputs))
        if len(inputs) > 1:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(module, inputs, *args, **kwargs)

    monkeypatch.setattr(videocam.cam, "cam_and_output_classes", small_memory)
    got = run_analysis(clip.path, loaded, config)
    assert got.summary["execution"]["out_of_memory_splits"] == 2  # 4 -> 2 -> 1
    assert sizes[:3] == [4, 2, 1]
    assert set(sizes[3:]) == {1}
    assert "out of memory on cpu: 1 windows per forward from now on" in caplog.text
    # Batches of 1 instead of 4: the same maps but for float rounding (1 float16 step here).
    np.testing.assert_allclose(
        got.cams.astype(np.float32), expected.cams.astype(np.float32), rtol=1e-2, atol=1e-6
    )
    np.testing.assert_allclose(got.frames.target_score, expected.frames.target_score, rtol=1e-6)

    def no_memory(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise torch.OutOfMemoryError("CUDA out of memory (simulated)")

    monkeypatch.setattr(videocam.cam, "cam_and_output_classes", no_memory)
    with pytest.raises(torch.OutOfMemoryError):  # one window does not fit: the error stands
        run_analysis(clip.path, loaded, config)


#: A custom model that records, when a worker builds it, the GPU it was given.
RECORDING_MODEL = """
import os
from pathlib import Path

import torch
from torch import nn


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Conv3d(3, 4, 3, padding=1)
        self.head = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.features(x)).mean(dim=(2, 3, 4)))


def build() -> nn.Module:
    seen = os.environ.get("CUDA_VISIBLE_DEVICES"), os.environ.get("VIDEOCAM_WORKERS_PER_DEVICE")
    Path(os.environ["GPU_LOG"], str(os.getpid())).write_text(" ".join(map(str, seen)))
    return Net()
"""


@pytest.mark.slow
def test_batch_workers_get_one_gpu_each(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from videocam.cli import main

    from support.batch import clip as make_video

    model = tmp_path / "model.py"
    model.write_text(RECORDING_MODEL)
    for i in range(3):
        make_video(tmp_path / "in" / f"v{i}.mp4", seed=30 + i, n_frames=8)
    log = tmp_path / "gpus"
    log.mkdir()
    monkeypatch.setenv("GPU_LOG", str(log))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")  # two GPUs (none exists: torch uses the CPU)
    args = ["batch", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--workers", "2"]
    args += ["--model", f"{model}:build", "--layer", "features", "--input-size", "32", "32"]
    assert main([*args, "--clip-len", "8", "--no-render", "--quiet"]) == 0
    seen = sorted(p.read_text() for p in log.iterdir())
    assert seen == ["3 1", "5 1"]  # one worker per GPU, each told it is alone on it
