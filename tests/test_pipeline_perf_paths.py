"""The pipeline's fast paths: background decoding, window batches, fusion, the spill store."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import videocam.analysis as analysis
import videocam.runtime as runtime
from videocam.cam import CamError, cam_and_output, cam_and_output_classes
from videocam.config import AnalyzeConfig
from videocam.errors import DecodeError
from videocam.io import FrameBatch, FrameSource
from videocam.models import load_model
from videocam.runtime import feed, resources, single_pass
from videocam.synthetic import SyntheticClip, make_clip
from videocam.temporal import (
    FrameAccumulator,
    RowStore,
    WindowFuser,
    iter_window_blocks,
    plan_windows,
)


def _decode_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "videocam-decode"]


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> SyntheticClip:
    path = tmp_path_factory.mktemp("perf_paths") / "clip.mp4"
    return make_clip(path, n_frames=80, size=(48, 64), event="grow", seed=2, event_start=30)


# --- background decoding -----------------------------------------------------------------


def _failing_source(monkeypatch: pytest.MonkeyPatch, after_batches: int) -> None:
    """Make every video source fail with DecodeError mid-stream."""
    real_iter = FrameSource.iter_batches

    def iter_batches(self, *args, **kwargs) -> Iterator[FrameBatch]:  # type: ignore[no-untyped-def]
        for n, batch in enumerate(real_iter(self, *args, **kwargs)):
            if n == after_batches:
                raise DecodeError(f"{self.path}: cannot decode frames: injected damage")
            yield batch

    monkeypatch.setattr(FrameSource, "iter_batches", iter_batches)


@pytest.mark.parametrize("background", [True, False])
def test_decode_error_mid_stream_propagates_and_no_thread_is_left(
    clip: SyntheticClip, monkeypatch: pytest.MonkeyPatch, background: bool
) -> None:
    monkeypatch.setattr(resources, "background_decoding", lambda device: background)
    _failing_source(monkeypatch, after_batches=1)  # 32 frames decode, then the error
    torch.manual_seed(0)
    with pytest.raises(DecodeError, match="injected damage"):
        analysis.analyze(clip.path, "videocam_tiny", weights="none", device="cpu", render=False)
    assert not _decode_threads()


def test_model_error_stops_the_decoder(
    clip: SyntheticClip, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = {"n": 0}

    def failing_cam(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 2:
            raise CamError("injected failure in the model")
        return cam_and_output_classes(*args, **kwargs)

    import videocam.cam

    monkeypatch.setattr(videocam.cam, "cam_and_output_classes", failing_cam)
    monkeypatch.setattr(resources, "background_decoding", lambda device: True)
    monkeypatch.setattr(feed, "PREFETCH_BATCHES", 1)  # the producer blocks on a full queue
    torch.manual_seed(0)
    with pytest.raises(CamError, match="injected failure"):
        analysis.analyze(clip.path, "videocam_tiny", weights="none", device="cpu", render=False)
    assert calls["n"] == 2
    assert not _decode_threads()


def test_prefetch_hands_over_items_in_order_and_stops_early() -> None:
    produced = []

    def numbers() -> Iterator[int]:
        for i in range(1000):
            produced.append(i)
            yield i

    with runtime.Prefetch(numbers, depth=2) as items:
        got = [next(items) for _ in range(5)]
    assert got == [0, 1, 2, 3, 4]
    assert len(produced) <= 5 + 2 + 1  # bounded read-ahead
    assert not _decode_threads()
    with runtime.Prefetch(lambda: iter(range(7)), depth=3) as items:
        assert list(items) == list(range(7))
    assert not _decode_threads()


def test_prefetch_reraises_the_producers_exception() -> None:
    def broken() -> Iterator[int]:
        yield 1
        raise DecodeError("bad frame 2")

    with runtime.Prefetch(broken, depth=1) as items:
        assert next(items) == 1
        with pytest.raises(DecodeError, match="bad frame 2"):
            next(items)
    assert not _decode_threads()


def test_decoding_overlaps_the_consumer() -> None:
    # While the consumer works, the producer keeps decoding (up to its queue's depth).
    ready = threading.Event()

    def slow_producer() -> Iterator[int]:
        yield 0
        yield 1
        ready.set()
        yield 2

    with runtime.Prefetch(slow_producer, depth=2) as items:
        assert next(items) == 0
        assert ready.wait(timeout=5)  # produced ahead without the consumer asking
        assert list(items) == [1, 2]


# --- windows -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n_frames", "clip_len", "stride", "batch", "chunk"),
    [(50, 16, 8, 2, 32), (50, 16, 8, 3, 7), (5, 8, 4, 2, 3), (40, 1, 1, 8, 16), (33, 8, 8, 1, 5)],
)
def test_window_blocks_hold_the_right_frames(n_frames, clip_len, stride, batch, chunk) -> None:
    frames = np.arange(n_frames, dtype=np.uint8)[:, None, None, None] * np.ones(
        (1, 2, 3, 3), dtype=np.uint8
    )
    plan = plan_windows(n_frames, clip_len, stride)
    chunks = (frames[i : i + chunk] for i in range(0, n_frames, chunk))
    seen = []
    for rows, block in iter_window_blocks(chunks, plan, batch):
        assert len(rows) <= batch
        assert block.shape == (len(rows), clip_len, 2, 3, 3)
        np.testing.assert_array_equal(block[:, :, 0, 0, 0], plan[rows])
        seen.extend(rows.tolist())
    assert seen == list(range(len(plan)))


def test_window_blocks_need_the_whole_stream() -> None:
    plan = plan_windows(20, 8, 4)
    frames = np.zeros((10, 1, 1, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="ended"):
        list(iter_window_blocks([frames], plan, 2))


def test_accumulator_equals_window_fuser() -> None:
    rng = np.random.default_rng(0)
    plan = plan_windows(45, 16, 6)
    maps = rng.random((len(plan), 2, 3, 4)).astype(np.float32)
    scores = rng.random((len(plan), 3))
    fuser = WindowFuser(45)
    expected = []
    for row, window_map, s in zip(plan, maps, scores, strict=True):
        fuser.add(row, window_map, s)
        expected.extend(fuser.pop_final())
    expected.extend(fuser.finish())
    accumulator = FrameAccumulator(45, (3, 4), 3)
    for start in range(0, len(plan), 4):
        accumulator.add(plan[start : start + 4], maps[start : start + 4], scores[start : start + 4])
    got_maps, got_scores = accumulator.result()
    np.testing.assert_allclose(got_maps, np.stack([m for _, m, _ in expected]), rtol=1e-6)
    np.testing.assert_allclose(got_scores, np.stack([s for _, _, s in expected]), rtol=1e-12)


def test_accumulator_pads_short_streams_and_reports_gaps() -> None:
    plan = plan_windows(3, 8, 4)  # [0 0 0 1 2 2 2 2]
    accumulator = FrameAccumulator(3, (1,), 1)
    accumulator.add(plan, np.ones((1, 2, 1), np.float32), np.ones((1, 1)))
    maps, scores = accumulator.result()
    np.testing.assert_allclose(maps[:, 0], 1.0)
    np.testing.assert_allclose(scores[:, 0], 1.0)
    gap = FrameAccumulator(3, (1,), 1)
    gap.add(np.array([[0], [2]]), np.ones((2, 1, 1), np.float32), np.ones((2, 1)))
    with pytest.raises(ValueError, match="frame 1 was not covered"):
        gap.result()


# --- spill store ---------------------------------------------------------------------------


def test_row_store_spills_past_its_bound_and_reads_back(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    rows = rng.random((50, 3, 4)).astype(np.float32)
    with RowStore((3, 4), np.float32, memory_bytes=10 * 48, directory=tmp_path) as store:
        for start in range(0, 50, 7):
            store.append(rows[start : start + 7])
        assert len(store) == 50
        assert store.spilled
        np.testing.assert_array_equal(store.read(0, 50), rows)
        np.testing.assert_array_equal(store.read(8, 13), rows[8:13])  # across the boundary
        np.testing.assert_array_equal(store.read(30, 31), rows[30:31])
        with pytest.raises(IndexError):
            store.read(40, 51)
        with pytest.raises(ValueError, match="expected shape"):
            store.append(np.zeros((1, 4, 3), np.float32))
    assert not list(tmp_path.iterdir())  # the temporary file is gone (it never had a name)


def test_row_store_in_memory_keeps_copies() -> None:
    store = RowStore((2,), np.int64)
    values = np.array([[1, 2], [3, 4]])
    store.append(values)
    values[:] = 0
    np.testing.assert_array_equal(store.read(0, 2), [[1, 2], [3, 4]])
    assert not store.spilled
    store.close()
    assert len(store) == 0


def test_pipeline_spills_and_matches_in_memory(
    clip: SyntheticClip, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded = load_model("videocam_tiny", device="cpu")
    config = AnalyzeConfig(render=False, device="cpu")
    in_memory = analysis.run_analysis(clip.path, loaded, config)
    monkeypatch.setattr(single_pass, "STORE_MEMORY_BYTES", 1)  # everything to the file
    monkeypatch.setattr(single_pass, "FUSE_CHUNK_BYTES", 1)  # one window at a time
    spilled = analysis.run_analysis(clip.path, loaded, config)
    np.testing.assert_array_equal(spilled.cams, in_memory.cams)
    np.testing.assert_array_equal(spilled.frames.target_score, in_memory.frames.target_score)


# --- the engine's several-class entry ------------------------------------------------------


def test_several_classes_equal_one_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = load_model("videocam_tiny", device="cpu")
    x = torch.randn(3, 3, 16, 64, 64)
    per_sample = torch.tensor([[1, 4], [0, 2], [3, 3]])
    monkeypatch.setattr("videocam.cam.engine._GRADIENT_CHUNK_ELEMENTS", 1)  # one class a chunk
    for classes in (per_sample, lambda out: per_sample):
        got = cam_and_output_classes(loaded.module, x, loaded.layer, classes, "gradcam++")
        assert got.cams.shape == (3, 2, 8, 8, 8)
        for m in range(2):
            expected = cam_and_output(
                loaded.module, x, loaded.layer, per_sample[:, m], "gradcam++"
            ).cams
            torch.testing.assert_close(got.cams[:, m], expected, rtol=1e-5, atol=1e-6)
    shared = cam_and_output_classes(loaded.module, x, loaded.layer, [2], "gradcam")
    torch.testing.assert_close(
        shared.cams[:, 0], cam_and_output(loaded.module, x, loaded.layer, 2, "gradcam").cams
    )
    assert all(p.grad is None for p in loaded.module.parameters())


def test_several_classes_bad_input() -> None:
    loaded = load_model("videocam_tiny", weights="none", device="cpu")
    x = torch.randn(2, 3, 16, 64, 64)
    with pytest.raises(CamError, match="out of range"):
        cam_and_output_classes(loaded.module, x, loaded.layer, [7], "gradcam")
    with pytest.raises(CamError, match="expected shape"):
        cam_and_output_classes(loaded.module, x, loaded.layer, torch.zeros(3, 2, dtype=torch.long))
    with pytest.raises(CamError, match="integer"):
        cam_and_output_classes(loaded.module, x, loaded.layer, torch.zeros(2))
    with pytest.raises(CamError, match="class indices"):
        cam_and_output_classes(loaded.module, x, loaded.layer, [])


def test_cpu_threads_are_bounded_and_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    threads = torch.get_num_threads()
    monkeypatch.setattr(resources, "available_cpus", lambda: 1)
    with runtime.cpu_threads():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == threads


def test_background_decoding_gives_the_same_result_and_leaves_no_thread(
    clip: SyntheticClip, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded = load_model("videocam_tiny", device="cpu")
    config = AnalyzeConfig(render=False, device="cpu")
    # Both ways whatever the machine: torch on every core (no background thread) or not.
    monkeypatch.setattr(resources, "background_decoding", lambda device: False)
    inline = analysis.run_analysis(clip.path, loaded, config)
    monkeypatch.setattr(resources, "background_decoding", lambda device: True)
    threaded = analysis.run_analysis(clip.path, loaded, config)
    assert threaded.summary["execution"]["background_decoding"] is True
    assert inline.summary["execution"]["background_decoding"] is False
    np.testing.assert_array_equal(threaded.cams, inline.cams)
    np.testing.assert_array_equal(threaded.frames.target_score, inline.frames.target_score)
    assert not _decode_threads()


def test_background_decoding_only_with_cores_to_spare(monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = load_model("videocam_tiny", weights="none", device="cpu")
    threads = torch.get_num_threads()
    monkeypatch.setattr(resources, "available_cpus", lambda: threads)
    assert not runtime.background_decoding(loaded.device)
    monkeypatch.setattr(resources, "available_cpus", lambda: threads + 2)
    assert runtime.background_decoding(loaded.device)


def test_per_frame_maps_on_disk_match_in_memory(
    clip: SyntheticClip, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Long videos: the fused maps stream to a temporary file and ``Analysis.cams`` is a
    read-only memory map of one; the numbers are the same as in memory."""
    import videocam.analysis.compose as compose
    import videocam.temporal.frames as frames

    loaded = load_model("videocam_tiny", device="cpu")
    config = AnalyzeConfig(render=False, device="cpu", tracks=2)
    in_memory = analysis.run_analysis(clip.path, loaded, config)
    assert not isinstance(in_memory.cams, np.memmap)
    monkeypatch.setattr(frames, "MAPS_MEMORY_BYTES", 1)  # every frame's map to the file
    monkeypatch.setattr(compose, "CAMS_MEMORY_BYTES", 1)  # the scaled maps mapped from a file
    monkeypatch.setattr(single_pass, "FUSE_CHUNK_BYTES", 1)  # frames handed out window by window
    on_disk = analysis.run_analysis(clip.path, loaded, config)
    assert isinstance(on_disk.cams, np.memmap)
    assert not on_disk.cams.flags.writeable
    np.testing.assert_array_equal(on_disk.cams, in_memory.cams)
    pd.testing.assert_frame_equal(on_disk.frames, in_memory.frames)
    pd.testing.assert_frame_equal(on_disk.keyframes, in_memory.keyframes)
    assert on_disk.tracks is not None
    assert in_memory.tracks is not None
    pd.testing.assert_frame_equal(on_disk.tracks, in_memory.tracks)
