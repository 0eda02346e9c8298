"""The analysis pipeline: decode → model → CAM → per-frame maps → scores → outputs.

Pass 1 (always) streams frames resized in the decoder to the model's input size (a background
thread decodes while the model runs), runs windows (video models) or frame batches (per-frame
models) through the model **once**, and keeps only low-resolution maps and numbers. With
``target="auto"`` the explained class is the video's top class (mean of the window probabilities,
skipping a model's declared background class), known only at the end: each window keeps the maps
of its candidate classes (one batched backward through the head), and the video-level class's
maps are picked afterwards — exactly those of a forward-only scan followed by a CAM pass with
that class, at the cost of one pass. Rendering (``Analysis.save``) is a second, sequential pass at
output resolution. Memory does not grow with the video beyond n_frames x h x w maps: per-window
results past a bound spill to a temporary file.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from videocam.config import AnalyzeConfig
from videocam.errors import ConfigError, VideoOpenError
from videocam.io import FrameSource, VideoMeta, dense_frames, open_video, sample_indices, stand_ins
from videocam.render.keyframes import keyframe_image_name
from videocam.scoring import (
    cam_box,
    find_segments,
    frame_attribution,
    scale_cams,
    select_keyframes,
)
from videocam.temporal import FrameAccumulator, RowStore, iter_window_blocks, plan_windows

if TYPE_CHECKING:
    import pandas as pd
    import torch

    from videocam.models import LoadedModel

logger = logging.getLogger(__name__)

FRAME_COLUMNS = ["frame_index", "time_s", "attribution", "target_score", "is_keyframe"]
KEYFRAME_COLUMNS = ["rank", "frame_index", "time_s", "attribution", "x0", "y0", "x1", "y1", "image"]
SEGMENT_COLUMNS = ["start_frame", "end_frame", "start_s", "end_s", "peak_frame", "attribution"]

#: Classes whose maps the single pass keeps per window with ``target="auto"``: the top ones by
#: mean probability so far. The video-level target is nearly always among them; a window where
#: it is not is decoded and explained again, so the result is exact either way.
AUTO_CANDIDATES = 32
#: Input values per batch on the CPU (see ``_auto_batch``), and the most windows per batch.
_CPU_BATCH_VALUES = 1_600_000
_MAX_CPU_BATCH = 16
#: Most windows per batch on a GPU (the batch follows from free memory up to this).
_MAX_CUDA_BATCH = 32
#: Frames per decoder call. decord's resident memory climbs to a plateau that grows with the
#: size of its reads when the model runs in between (videocam_tiny, 8-minute against 1-minute
#: video: peak +13 % with 32-frame reads, +4 to 7 % with 16; PyAV stays flat), at no measurable
#: cost in speed.
_DECODE_BATCH_FRAMES = 16
#: Window batches decoded ahead of the model by the background thread (when there is one).
_PREFETCH_BATCHES = 2
#: Bytes of per-window results (each store) held in memory before spilling to a temporary file.
_STORE_MEMORY_BYTES = 16 * 2**20
#: Bytes of kept window maps read back at once when fusing.
_FUSE_CHUNK_BYTES = 8 * 2**20


@dataclass(frozen=True)
class Analysis:
    """The result of analysing one video.

    Attributes:
        frames: one row per analysed frame (``FRAME_COLUMNS``).
        keyframes: one row per keyframe, strongest first (``KEYFRAME_COLUMNS``).
        segments: intervals of high attribution (``SEGMENT_COLUMNS``).
        cams: float16, shape (n_frames, h, w), in [0, 1]: each analysed frame's map at model
            resolution, scaled by one factor for the whole video.
        meta: the source video's metadata.
        summary: what summary.json holds (model, layer, method, target, config, timings...).
    """

    frames: pd.DataFrame
    keyframes: pd.DataFrame
    segments: pd.DataFrame
    cams: np.ndarray = field(repr=False)
    meta: VideoMeta
    summary: dict[str, Any] = field(repr=False)

    @property
    def target(self) -> tuple[int, str]:
        """(index, name) of the explained class."""
        return int(self.summary["target"]["index"]), str(self.summary["target"]["name"])

    def save(
        self, out_dir: str | Path, *, render: bool | None = None, progress: bool = False
    ) -> Path:
        """Write every output file into ``out_dir`` (each one atomically).

        Args:
            out_dir: output folder, created if needed.
            render: write annotated.mp4, timeline.png and keyframes/; default: the analysis
                config's ``render``.
            progress: show a progress bar while rendering.
        """
        from videocam.render.outputs import save_analysis

        if render is None:
            render = bool(self.summary["config"]["render"])
        return save_analysis(self, Path(out_dir), render=render, progress=progress)


def analyze(
    video: str | Path,
    model: str | LoadedModel = "videocam_tiny",
    *,
    progress: bool = False,
    **options: Any,
) -> Analysis:
    """Analyse one video: per-frame attribution, keyframes, segments, maps.

    Args:
        video: the video file.
        model: a model name (see ``videocam models``), a custom builder spec, or a model already
            loaded with :func:`videocam.models.load_model` (then the model options are ignored).
        progress: show progress bars (tqdm, on stderr).
        **options: any field of :class:`videocam.config.AnalyzeConfig` (``method``,
            ``target``, ``topk``, ``min_gap``, ``clip_len``, ``stride``, ``device``...).

    Returns:
        An :class:`Analysis`; call ``.save(out_dir)`` to write the files.
    """
    model_name = model if isinstance(model, str) else model.name
    config = AnalyzeConfig.from_mapping({**options, "model": model_name})
    loaded = load_configured_model(config) if isinstance(model, str) else model
    return run_analysis(Path(video), loaded, config, progress=progress)


def load_configured_model(config: AnalyzeConfig) -> LoadedModel:
    """Load the model the config names (model, weights, layer, preprocessing, device)."""
    from videocam.models import load_model

    return load_model(
        config.model,
        weights=config.weights,
        layer=config.layer,
        frame_model=config.frame_model,
        input_size=config.input_size,
        mean=config.mean,
        std=config.std,
        labels=config.labels,
        device=config.device,
    )


def sampled_indices(source: FrameSource, config: AnalyzeConfig) -> np.ndarray:
    """The frames ``config`` asks for (its step, sampling rate and time range), in order."""
    return sample_indices(
        source.times_s,
        stride=config.frame_step,
        fps=config.sample_fps,
        start_s=config.start_s,
        end_s=config.end_s,
    )


def run_analysis(
    video: Path, loaded: LoadedModel, config: AnalyzeConfig, *, progress: bool = False
) -> Analysis:
    """The pipeline proper, with the model already loaded (batch mode reuses one model)."""
    import pandas as pd

    timings: dict[str, float] = {}
    warnings: list[str] = []
    started = time.perf_counter()
    with open_video(video, config.backend) as source:
        meta = source.meta
        indices = sampled_indices(source, config)
        if len(indices) == 0:
            raise VideoOpenError(
                f"{video}: no frames in the requested time range "
                f"[{config.start_s}, {config.end_s}) s (video lasts {meta.duration_s:.2f} s)"
            )
        times = source.times_s[indices]
        plan = window_plan(loaded, config, len(indices))
        batch = config.batch_size or _auto_batch(loaded, plan.shape[1], config.method)
        runner = _Runner(loaded, config, source, indices, plan, batch, progress)

        target_info: dict[str, Any]
        explicit = None if config.target == "auto" else resolve_class(config.target, loaded)
        t0 = time.perf_counter()
        with _cpu_threads() as torch_threads:
            result = runner.run(explicit)
            try:
                timings["model_pass_s"] = time.perf_counter() - t0
                if explicit is None:
                    target, target_info = choose_auto_target(result.mean_probs, loaded)
                else:
                    target, target_info = explicit, {"auto": False}
                t1 = time.perf_counter()
                cams, target_score, layer_shape = runner.fuse(result, target)
                timings["fuse_s"] = time.perf_counter() - t1
                if explicit is None:
                    target_info["single_pass"] = {
                        "candidates_per_window": int(result.classes.row_shape[0]),
                        "windows_recomputed": runner.n_recomputed,
                    }
            finally:
                result.close()
        timings["cam_s"] = time.perf_counter() - t0
        decode = source.decode_report()
        skipped = np.asarray(source.skipped_indices, dtype=np.int64)
        fallback_reason = source.fallback_reason

    if fallback_reason and config.backend != "pyav":
        # decord gave up on damaged data part-way, at a point that varies from run to run:
        # analyse again with PyAV alone, so that the same input always gives the same result.
        logger.info("%s: %s; analysing again with PyAV", video, fallback_reason)
        analysis = run_analysis(video, loaded, config.replace(backend="pyav"), progress=progress)
        analysis.summary["warnings"].append(f"decoded with PyAV: {fallback_reason}")
        return analysis
    # Frames that cannot be decoded were stood in for inside the windows (dense_frames); they
    # get no row: frames.csv lists decoded frames only, with their own indices and times.
    keep = ~np.isin(indices, skipped)
    if not keep.all():
        indices, times = indices[keep], times[keep]
        cams, target_score = cams[keep], target_score[keep]
    if decode["decode_errors"]:
        warnings.append(
            f"{decode['decode_errors']} damaged frame(s): {len(decode['skipped_frames'])} cannot "
            f"be decoded and have no row, {len(decode['corrupt_frames'])} were decoded with "
            "errors concealed (see summary.json 'decode')"
        )

    for change in decode.get("size_changes", []):
        warnings.append(
            f"the picture changes size part-way: {change['width']}x{change['height']} from "
            f"frame {change['frame']}; such frames were scaled to the video's "
            f"{meta.width}x{meta.height}"
        )
    if loaded.kind == "video" and layer_shape and layer_shape[0] * 4 <= plan.shape[1]:
        warnings.append(
            f"layer {loaded.layer} has {layer_shape[0]} time step(s) for {plan.shape[1]}-frame "
            "windows: the maps are coarse in time (choose an earlier layer for finer timing)"
        )
    scaled, factor = scale_cams(cams)
    attribution = frame_attribution(scaled)
    key_pos = select_keyframes(
        attribution, times, config.topk, config.min_gap, floor=config.keyframe_floor
    )
    segments = find_segments(attribution)
    frame_size = (meta.height, meta.width)
    boxes = [cam_box(scaled[p], frame_size, config.box_threshold) for p in key_pos.tolist()]

    is_key = np.zeros(len(indices), dtype=bool)
    is_key[key_pos] = True
    frames_df = pd.DataFrame(
        {
            "frame_index": indices.astype(np.int64),
            "time_s": times,
            "attribution": attribution,
            "target_score": target_score,
            "is_keyframe": is_key,
        },
        columns=FRAME_COLUMNS,
    )
    keyframes_df = pd.DataFrame(
        [
            {
                "rank": rank,
                "frame_index": int(indices[p]),
                "time_s": float(times[p]),
                "attribution": float(attribution[p]),
                "x0": box[0],
                "y0": box[1],
                "x1": box[2],
                "y1": box[3],
                "image": keyframe_image_name(rank, int(indices[p])) if config.render else "",
            }
            for rank, (p, box) in enumerate(zip(key_pos.tolist(), boxes, strict=True), start=1)
        ],
        columns=KEYFRAME_COLUMNS,
    )
    segments_df = pd.DataFrame(
        [
            {
                "start_frame": int(indices[s.start]),
                "end_frame": int(indices[s.end]),
                "start_s": float(times[s.start]),
                "end_s": float(times[s.end]),
                "peak_frame": int(indices[s.peak]),
                "attribution": s.attribution,
            }
            for s in segments
        ],
        columns=SEGMENT_COLUMNS,
    )
    timings["analysis_s"] = time.perf_counter() - started
    for message in warnings:
        logger.warning("%s: %s", video, message)
    target_name = class_name(loaded, target)
    summary = {
        "video": meta.to_dict(),
        "model": {
            "name": loaded.name,
            "kind": loaded.kind,
            "weights": loaded.weights,
            "layer": loaded.layer,
            "layer_map_shape": list(layer_shape),
            "input_size": list(loaded.preprocess.size),
            "mean": list(loaded.preprocess.mean),
            "std": list(loaded.preprocess.std),
            "device": str(loaded.device),
            "n_classes": len(loaded.categories) if loaded.categories else None,
        },
        "method": config.method,
        "target": {"index": target, "name": target_name, **target_info},
        "windows": {
            "n_windows": int(plan.shape[0]),
            "clip_len": int(plan.shape[1]),
            "stride": _stride(loaded, config, plan.shape[1]),
            "batch_size": batch,
        },
        "n_frames_analysed": len(indices),
        "decode": decode,
        "execution": {
            "background_decoding": runner.background_decoding,
            "torch_threads": torch_threads,
        },
        "cam_scale": factor,
        "attribution_definition": (
            "mean over map positions of the frame's CAM after dividing all frames' maps by "
            "their common maximum (one factor for the whole video)"
        ),
        "segments_definition": (
            "runs at or above median + 0.25 (peak - median) that reach median + 0.5 (peak - median)"
        ),
        "config": config.to_dict(),
        "versions": package_versions(),
        "timings_s": {k: round(v, 4) for k, v in timings.items()},
        "warnings": warnings,
    }
    return Analysis(
        frames=frames_df,
        keyframes=keyframes_df,
        segments=segments_df,
        cams=scaled.astype(np.float16),
        meta=meta,
        summary=summary,
    )


# -- windows and batches ------------------------------------------------------------------------


def window_plan(loaded: LoadedModel, config: AnalyzeConfig, n_frames: int) -> np.ndarray:
    """Window positions for ``n_frames`` sampled frames: (n_windows, T); T = 1 for frame models."""
    if loaded.kind == "frame":
        return np.arange(n_frames, dtype=np.int64)[:, None]
    clip_len = config.clip_len or loaded.clip_len or 16
    stride = _stride(loaded, config, clip_len)
    return plan_windows(n_frames, clip_len, stride)


def _stride(loaded: LoadedModel, config: AnalyzeConfig, clip_len: int) -> int:
    if loaded.kind == "frame":
        return 1
    return config.stride or max(1, clip_len // 2)


def _auto_batch(loaded: LoadedModel, clip_len: int | None = None, method: str = "gradcam") -> int:
    """Windows (or frames) per forward.

    On the CPU a batch of about 1.6M input values: big inputs gain nothing from batching (r3d_18
    at 16x112x112, 2 cores: 0.45 s a window in batches of 2, 0.47 s in batches of 8) and keep
    memory low, while small ones shed per-call overhead (videocam_tiny at 16x64x64: batches of
    8 take 20 % less time than batches of 2). On a GPU it follows from memory: see
    :func:`_cuda_batch`.
    """
    clip_len = clip_len or loaded.clip_len or 16
    if loaded.device.type == "cuda":
        return _cuda_batch(loaded, clip_len, method)
    height, width = loaded.preprocess.size
    values = 3 * height * width * (1 if loaded.kind == "frame" else clip_len)
    return max(1, min(_MAX_CPU_BATCH, _CPU_BATCH_VALUES // values))


def _cuda_batch(loaded: LoadedModel, clip_len: int, method: str) -> int:
    """Windows per batch from free GPU memory: a probe window's peak, within 40 % of the free."""
    import torch

    from videocam.cam import cam_and_output_classes

    device = loaded.device
    height, width = loaded.preprocess.size
    shape = (1, 3, height, width) if loaded.kind == "frame" else (1, 3, clip_len, height, width)
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    cam_and_output_classes(  # with as many classes as the pass keeps
        loaded.module,
        torch.zeros(shape, device=device),
        loaded.layer,
        lambda out: torch.arange(min(AUTO_CANDIDATES, out.shape[1]), device=out.device),
        method,
        reshape=loaded.reshape,
    )
    per_window = max(1, torch.cuda.max_memory_allocated(device) - before)
    free, _ = torch.cuda.mem_get_info(device)
    return int(min(_MAX_CUDA_BATCH, max(1, int(0.4 * free) // per_window)))


@contextmanager
def _cpu_threads() -> Iterator[int]:
    """At most as many torch threads as CPUs this process may use, for the duration.

    torch sizes its pool from the machine's cores; in a container limited by a CPU quota or an
    affinity mask that oversubscribes the cores (and, with OpenMP spin-waiting, slows everything
    down many times). The caller's setting is restored afterwards.
    """
    import torch

    threads = torch.get_num_threads()
    allowed = _available_cpus()
    if threads > allowed:
        torch.set_num_threads(allowed)
    try:
        yield torch.get_num_threads()
    finally:
        if threads > allowed:
            torch.set_num_threads(threads)


def _available_cpus() -> int:
    """CPUs this process may use: its affinity mask, bounded by a cgroup v2 CPU quota."""
    import math
    import os

    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        count = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            count = min(count, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, count)


@dataclass
class _PassResult:
    """What the single pass keeps per window until the target is known (stores in window order).

    Attributes:
        probs: float32 rows (K,): each window's class probabilities.
        classes: int64 rows (M,): the classes whose maps were kept for each window.
        maps: float32 rows (M, *S): those maps, at the layer's resolution (S includes t').
        mean_probs: float32 (K,): mean class probability over windows.
        class_free: the method ignores the class (eigencam): ``maps[:, 0]`` serves every class.
    """

    probs: RowStore
    classes: RowStore
    maps: RowStore
    mean_probs: np.ndarray
    class_free: bool

    def close(self) -> None:
        for store in (self.probs, self.classes, self.maps):
            store.close()


class _Runner:
    """Runs the model once over every window and turns the kept maps into per-frame maps.

    Single pass (``run``): each batch of windows goes through :func:`cam_and_output_classes`,
    which runs the forward once and takes, in one batched backward through the head, the maps of
    M classes: the explicit target, or with ``--target auto`` the ``AUTO_CANDIDATES`` classes
    with the highest mean probability so far (all of them for models with few classes).
    ``fuse`` then picks each window's map of the video-level target; the rare window whose
    candidates missed the target is decoded and explained again, so the maps are exactly those
    of a forward-only scan followed by a CAM pass with the chosen target.
    """

    def __init__(
        self,
        loaded: LoadedModel,
        config: AnalyzeConfig,
        source: FrameSource,
        indices: np.ndarray,
        plan: np.ndarray,
        batch: int,
        progress: bool,
    ) -> None:
        self.loaded = loaded
        self.config = config
        self.source = source
        self.indices = indices
        self.plan = plan
        self.batch = batch
        self.progress = progress
        self.n_recomputed = 0
        self.background_decoding = _background_decoding(loaded)

    # -- decoding -------------------------------------------------------------------------------

    def _decoded_frames(self) -> Iterator[np.ndarray]:
        """uint8 frames (B, H, W, 3) at the model's input size, the sampled stream in order."""
        batches = self.source.iter_batches(
            self.indices, size=self.loaded.preprocess.size, batch_size=self._decode_batch
        )
        # Undecodable frames leave gaps in the batches; windows count positions, so the gaps are
        # filled with a stand-in (the previous decoded frame) and dropped from the results.
        return dense_frames(batches, self.indices)

    @property
    def _decode_batch(self) -> int:
        return _DECODE_BATCH_FRAMES

    def _window_batches(self, desc: str) -> Generator[tuple[np.ndarray, torch.Tensor]]:
        """Yield (plan rows (b,), model input on the device) in window order.

        With ``background_decoding`` a thread decodes (decord releases the GIL while it works),
        at most ``_PREFETCH_BATCHES`` window batches ahead of the model; its errors surface here
        unchanged. Each frame is normalised once, on the device, and windows are gathered from
        the normalised frames still needed (overlapping windows share them).
        """
        import torch
        from tqdm import tqdm

        loaded = self.loaded
        bar = tqdm(
            total=len(self.plan), desc=desc, unit="win", disable=not self.progress, leave=False
        )
        # Each batch of windows needs about batch x stride new frames.
        step = int(self.plan[1, 0] - self.plan[0, 0]) if len(self.plan) > 1 else self.plan.shape[1]
        depth = max(1, -(-_PREFETCH_BATCHES * self.batch * step // self._decode_batch))
        prefetch = _Prefetch if self.background_decoding else _Inline
        try:
            with prefetch(self._decoded_frames, depth=depth) as chunks:
                normalised = (_normalised_frames(loaded, chunk) for chunk in chunks)
                for rows, block in iter_window_blocks(
                    normalised, self.plan, self.batch, concatenate=torch.cat, take=_gather
                ):
                    bar.update(len(rows))
                    if loaded.kind == "frame":
                        yield rows, block[:, 0]  # (b, 3, H, W)
                    else:  # (b, T, 3, H, W) -> (b, 3, T, H, W)
                        yield rows, block.permute(0, 2, 1, 3, 4).contiguous()
        finally:
            bar.close()

    # -- the pass -------------------------------------------------------------------------------

    def run(self, target: int | None) -> _PassResult:
        """The single pass over every window: probabilities and maps of the candidate classes.

        Args:
            target: the class to explain, or None for ``auto`` (decided after the pass).
        """
        import torch

        from videocam.cam import cam_and_output_classes, get_method

        loaded, config = self.loaded, self.config
        class_free = not get_method(config.method).needs_gradients
        background = loaded.background_class
        total: torch.Tensor | None = None
        count = 0
        stores: list[RowStore] = []
        copies = _HostCopies(loaded.device)
        chosen: torch.Tensor | None = None

        def candidates(output: torch.Tensor) -> torch.Tensor:
            # Top classes by mean probability so far (this batch included), on the device.
            nonlocal chosen
            probs = torch.softmax(output.float(), dim=1).sum(0)
            score = probs if total is None else total + probs
            n_classes = score.shape[0]
            if background is not None and 0 <= background < n_classes and n_classes > 1:
                score = score.clone()
                score[background] = -1.0
                n_classes -= 1
            chosen = score.topk(min(AUTO_CANDIDATES, n_classes)).indices
            return chosen

        def store(
            rows: np.ndarray, probs: np.ndarray, classes: np.ndarray, maps: np.ndarray
        ) -> None:
            del rows  # batches arrive in window order
            if not stores:
                stores.extend(
                    RowStore(
                        a.shape[1:],
                        a.dtype,
                        capacity=len(self.plan),
                        memory_bytes=_STORE_MEMORY_BYTES,
                    )
                    for a in (probs, classes, maps)
                )
            for kept, values in zip(stores, (probs, classes, maps), strict=True):
                kept.append(values)

        batches = self._window_batches("analyse")
        try:
            for rows, inputs in batches:
                fixed = class_free or target is not None
                result = cam_and_output_classes(
                    loaded.module,
                    inputs,
                    loaded.layer,
                    [target or 0] if fixed else candidates,
                    config.method,
                    reshape=loaded.reshape,
                    autocast=config.autocast,
                )
                probs = torch.softmax(result.output, dim=1)
                batch_total = probs.sum(0)
                total = batch_total if total is None else total + batch_total
                count += len(rows)
                if fixed or chosen is None:
                    classes = torch.full((len(rows), 1), target or 0, dtype=torch.long)
                else:
                    classes = chosen.expand(len(rows), -1)
                cams = result.cams[:, :1] if class_free else result.cams
                for ready in copies.push(rows, probs, classes, cams):
                    store(*ready)
            for ready in copies.flush():
                store(*ready)
        except BaseException:
            for kept in stores:
                kept.close()
            raise
        finally:
            batches.close()
        assert total is not None
        return _PassResult(
            probs=stores[0],
            classes=stores[1],
            maps=stores[2],
            mean_probs=(total / count).cpu().numpy(),
            class_free=class_free,
        )

    # -- from windows to frames ----------------------------------------------------------------

    def fuse(
        self, result: _PassResult, target: int
    ) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
        """Per-frame maps and target scores of ``target`` from the kept window results.

        Returns:
            (maps float32 (n_frames, h, w), target score (n_frames,), the layer's map shape).
        """
        n_windows = len(self.plan)
        if len(result.maps) != n_windows:
            raise RuntimeError(f"kept {len(result.maps)} windows of {n_windows}")
        map_shape = result.maps.row_shape[1:]
        if self.loaded.kind == "frame":
            map_shape = (1, *map_shape)  # one time step per "window"
        accumulator = FrameAccumulator(len(self.indices), map_shape[1:], 1)
        chunk = max(1, _FUSE_CHUNK_BYTES // max(1, result.maps.row_bytes))
        for start in range(0, n_windows, chunk):
            stop = min(start + chunk, n_windows)
            maps = result.maps.read(start, stop)
            if result.class_free:
                picked = maps[:, 0]
            else:
                hit = result.classes.read(start, stop) == target
                picked = maps[np.arange(stop - start), hit.argmax(axis=1)]
                missed = np.flatnonzero(~hit.any(axis=1))
                if len(missed):
                    picked[missed] = self._recompute(start + missed, target)
            scores = result.probs.read(start, stop)[:, target : target + 1]
            accumulator.add(self.plan[start:stop], picked.reshape(stop - start, *map_shape), scores)
        maps, scores = accumulator.result()
        return maps, scores[:, 0], tuple(map_shape)

    def _recompute(self, rows: np.ndarray, target: int) -> np.ndarray:
        """Maps of ``target`` for windows whose candidates missed it: decoded and run again.

        Returns:
            float32, shape (len(rows), *S) as kept by the pass.
        """
        from videocam.cam import cam_and_output_classes

        loaded = self.loaded
        # The frames the pass used: undecodable ones replaced by the same stand-ins.
        decodable = self.indices[stand_ins(self.indices, self.source.skipped_indices)]
        out = []
        for start in range(0, len(rows), self.batch):
            batch_rows = rows[start : start + self.batch]
            positions = np.unique(self.plan[batch_rows])
            frames = self.source.read(decodable[positions], size=loaded.preprocess.size)
            block = frames[np.searchsorted(positions, self.plan[batch_rows])]
            result = cam_and_output_classes(
                loaded.module,
                model_input(loaded, block),
                loaded.layer,
                [target],
                self.config.method,
                reshape=loaded.reshape,
                autocast=self.config.autocast,
            )
            out.append(result.cams[:, 0].float().cpu().numpy())
        self.n_recomputed += len(rows)
        return np.concatenate(out)


class _Prefetch:
    """Runs an iterator in a background thread, at most ``depth`` items ahead of the consumer.

    Items, the end, and the producer's exception (re-raised as is in the consumer) pass through
    one bounded queue. ``close`` (also on leaving the ``with`` block, error or not) stops the
    producer at its next item and joins the thread: none is ever left running.
    """

    _ITEM, _END, _ERROR = range(3)

    def __init__(self, make_iterator: Callable[[], Iterator[Any]], depth: int) -> None:
        self._queue: queue.Queue[tuple[int, Any]] = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._done = False
        self._thread = threading.Thread(
            target=self._produce, args=(make_iterator,), name="videocam-decode", daemon=True
        )
        self._thread.start()

    def _produce(self, make_iterator: Callable[[], Iterator[Any]]) -> None:
        iterator: Iterator[Any] | None = None
        try:
            iterator = make_iterator()
            for item in iterator:
                if not self._put((self._ITEM, item)):
                    return
            self._put((self._END, None))
        except BaseException as exc:  # handed to the consumer, which re-raises it
            self._put((self._ERROR, exc))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    def _put(self, message: tuple[int, Any]) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(message, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> _Prefetch:
        return self

    def __next__(self) -> Any:
        if self._done:
            raise StopIteration
        kind, value = self._queue.get()
        if kind == self._ITEM:
            return value
        self._done = True
        self._thread.join()
        if kind == self._ERROR:
            raise value
        raise StopIteration

    def close(self) -> None:
        """Stop the producer and wait for it; safe to call twice."""
        self._stop.set()
        self._done = True
        while self._thread.is_alive():
            with suppress(queue.Empty):  # unblock a producer waiting on a full queue
                self._queue.get(timeout=0.05)
        self._thread.join()

    def __enter__(self) -> _Prefetch:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _background_decoding(loaded: LoadedModel) -> bool:
    """Decode in a background thread only where it has cores to itself.

    On a GPU the CPU is free while the model runs, so decoding overlaps fully. On a CPU where
    torch already uses every core it buys nothing (2 shared cores, decode-bound videocam_tiny:
    1.06 s with the thread, 1.04 s without) and decord then holds about 80 MB more at its peak.
    """
    import torch

    if loaded.device.type == "cuda":
        return True
    return _available_cpus() > torch.get_num_threads()


class _Inline:
    """:class:`_Prefetch`'s interface without a thread: the iterator runs in the caller."""

    def __init__(self, make_iterator: Callable[[], Iterator[Any]], depth: int) -> None:
        del depth
        self._iterator = make_iterator()

    def __iter__(self) -> Iterator[Any]:
        return self._iterator

    def __enter__(self) -> Iterator[Any]:
        return self._iterator

    def __exit__(self, *exc_info: object) -> None:
        close = getattr(self._iterator, "close", None)
        if close is not None:
            close()


class _HostCopies:
    """Per-batch results to the host, without a device synchronisation per batch.

    On the CPU the tensors are already there. On CUDA each batch's results are copied into pinned
    host memory asynchronously and handed out one batch later, once their event has completed,
    so the device keeps working on the next batch meanwhile.
    """

    def __init__(self, device: torch.device) -> None:
        self._cuda = device.type == "cuda"
        self._pending: deque[tuple[Any, np.ndarray, list[torch.Tensor]]] = deque()

    def push(self, rows: np.ndarray, *tensors: torch.Tensor) -> Iterator[tuple[Any, ...]]:
        """Queue one batch; yield ``(rows, *numpy arrays)`` of the batches now complete."""
        import torch

        if not self._cuda:
            yield (rows, *(t.detach().numpy() for t in tensors))
            return
        host = []
        for tensor in tensors:
            pinned = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True)
            pinned.copy_(tensor.detach(), non_blocking=True)
            host.append(pinned)
        event = torch.cuda.Event()
        event.record()
        self._pending.append((event, rows, host))
        while len(self._pending) > 1:
            yield self._pop()

    def flush(self) -> Iterator[tuple[Any, ...]]:
        """Yield every batch still queued."""
        while self._pending:
            yield self._pop()

    def _pop(self) -> tuple[Any, ...]:
        event, rows, host = self._pending.popleft()
        event.synchronize()
        return (rows, *(t.numpy() for t in host))


def model_input(loaded: LoadedModel, block: np.ndarray) -> torch.Tensor:
    """Windows of frames to the model's input, on its device.

    Args:
        block: uint8, shape (b, T, H, W, 3) at the model's input size (T = 1 for frame models).

    Returns:
        float32 (b, 3, T, H, W) for video models, (b, 3, H, W) for frame models.
    """
    import torch

    frames = torch.from_numpy(np.ascontiguousarray(block))
    if loaded.device.type == "cuda":
        frames = frames.pin_memory().to(loaded.device, non_blocking=True)
    if loaded.kind == "frame":
        frames = frames[:, 0]  # (b, H, W, 3): one frame per "window"
    return loaded.preprocess(frames)


def _normalised_frames(loaded: LoadedModel, frames: np.ndarray) -> torch.Tensor:
    """uint8 frames (B, H, W, 3) to float32 (B, 3, H, W) on the model's device, normalised.

    The same arithmetic as :func:`model_input`, once per frame instead of once per window slot.
    """
    import torch

    tensor = torch.from_numpy(np.ascontiguousarray(frames))
    if loaded.device.type == "cuda":
        tensor = tensor.pin_memory().to(loaded.device, non_blocking=True)
    return loaded.preprocess(tensor)


def _gather(frames: torch.Tensor, positions: np.ndarray) -> torch.Tensor:
    """``frames[positions]`` for positions (b, T): frames (b, T, *F), a new tensor.

    The index goes to the frames' device without a synchronisation (pinned, non-blocking).
    """
    import torch

    index = torch.from_numpy(positions.reshape(-1))
    if frames.device.type == "cuda":
        index = index.pin_memory().to(frames.device, non_blocking=True)
    return frames.index_select(0, index).unflatten(0, positions.shape)


def window_probabilities(
    loaded: LoadedModel,
    frames: np.ndarray,
    plan: np.ndarray,
    *,
    batch_size: int | None = None,
    autocast: bool = False,
) -> np.ndarray:
    """Class probabilities of every window of frames held in memory (forward only).

    Args:
        frames: uint8, shape (n, H, W, 3) at the model's input size.
        plan: int, shape (n_windows, T): window positions (see :func:`plan_windows`).

    Returns:
        float32, shape (n_windows, K).
    """
    import torch

    batch = batch_size or _auto_batch(loaded)
    out = []
    with torch.inference_mode(), _autocast_for(loaded, autocast):
        for start in range(0, len(plan), batch):
            inputs = model_input(loaded, frames[plan[start : start + batch]])
            out.append(torch.softmax(loaded.module(inputs).float(), dim=1))
    return torch.cat(out).cpu().numpy()


def _autocast(loaded: LoadedModel, config: AnalyzeConfig) -> Any:
    return _autocast_for(loaded, config.autocast)


def _autocast_for(loaded: LoadedModel, enabled: bool) -> Any:
    import contextlib

    import torch

    if not enabled:
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if loaded.device.type == "cpu" else torch.float16
    return torch.autocast(loaded.device.type, dtype=dtype)


# -- targets ------------------------------------------------------------------------------------


def class_name(loaded: LoadedModel, index: int) -> str:
    """The name of class ``index``, or the index as text when the model has no names."""
    if loaded.categories and 0 <= index < len(loaded.categories):
        return loaded.categories[index]
    return str(index)


def choose_auto_target(mean_probs: np.ndarray, loaded: LoadedModel) -> tuple[int, dict[str, Any]]:
    """The video-level class: top mean window probability, skipping a background class."""
    ranked = np.argsort(-mean_probs, kind="stable")
    skipped = loaded.background_class
    choice = next(int(c) for c in ranked if c != skipped or len(ranked) == 1)
    top = [
        {"index": int(c), "name": class_name(loaded, int(c)), "mean_prob": float(mean_probs[c])}
        for c in ranked[:5]
    ]
    info: dict[str, Any] = {"auto": True, "video_top_classes": top}
    if skipped is not None:
        info["skipped_background_class"] = class_name(loaded, skipped)
    logger.info("auto target: %s (%d)", class_name(loaded, choice), choice)
    return choice, info


def resolve_class(target: int | str, loaded: LoadedModel) -> int:
    """A class index from an index or a (case-insensitive) class name; ConfigError if unknown."""
    n_classes = len(loaded.categories) if loaded.categories else None
    if isinstance(target, int):
        if n_classes is not None and target >= n_classes:
            raise ConfigError(f"target {target} is out of range: the model has {n_classes} classes")
        return target
    if not loaded.categories:
        raise ConfigError(
            f"target {target!r}: the model has no class names; give an index or --labels"
        )
    lowered = [c.lower() for c in loaded.categories]
    if target.lower() in lowered:
        return lowered.index(target.lower())
    import difflib

    close = difflib.get_close_matches(target.lower(), lowered, n=3)
    hint = f"; did you mean {', '.join(repr(loaded.categories[lowered.index(c)]) for c in close)}?"
    raise ConfigError(
        f"target {target!r} is not a class of {loaded.name}" + (hint if close else "")
    )


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for package in ("videocam", "torch", "torchvision", "decord", "av", "numpy", "pandas"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = "not installed"
    return out
