"""The analysis pipeline: decode → model → CAM → per-frame maps → scores → outputs.

Pass 1 (always) streams frames resized in the decoder to the model's input size, runs windows
(video models) or frame batches (per-frame models) and keeps only the low-resolution per-frame
maps and numbers. With ``target="auto"`` a forward-only scan first finds the video's top class
(mean of the window probabilities, skipping a model's declared background class), so the maps
explain the class of the whole video. Rendering (``Analysis.save``) is a second, sequential pass
at output resolution. Memory does not grow with the video beyond n_frames x h x w maps.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from videocam.config import AnalyzeConfig
from videocam.errors import ConfigError, VideoOpenError
from videocam.io import FrameSource, VideoMeta, open_video, sample_indices
from videocam.render.keyframes import keyframe_image_name
from videocam.scoring import (
    cam_box,
    find_segments,
    frame_attribution,
    scale_cams,
    select_keyframes,
)
from videocam.temporal import WindowFuser, plan_windows

if TYPE_CHECKING:
    import pandas as pd
    import torch

    from videocam.models import LoadedModel

logger = logging.getLogger(__name__)

FRAME_COLUMNS = ["frame_index", "time_s", "attribution", "target_score", "is_keyframe"]
KEYFRAME_COLUMNS = ["rank", "frame_index", "time_s", "attribution", "x0", "y0", "x1", "y1", "image"]
SEGMENT_COLUMNS = ["start_frame", "end_frame", "start_s", "end_s", "peak_frame", "attribution"]


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
        indices = sample_indices(
            source.times_s,
            stride=config.frame_step,
            fps=config.sample_fps,
            start_s=config.start_s,
            end_s=config.end_s,
        )
        if len(indices) == 0:
            raise VideoOpenError(
                f"{video}: no frames in the requested time range "
                f"[{config.start_s}, {config.end_s}) s (video lasts {meta.duration_s:.2f} s)"
            )
        times = source.times_s[indices]
        plan = window_plan(loaded, config, len(indices))
        batch = config.batch_size or _auto_batch(loaded)
        runner = _Runner(loaded, config, source, indices, plan, batch, progress)

        target_info: dict[str, Any]
        if config.target == "auto":
            t0 = time.perf_counter()
            mean_probs = runner.scan()
            timings["scan_s"] = time.perf_counter() - t0
            target, target_info = choose_auto_target(mean_probs, loaded)
        else:
            target = resolve_class(config.target, loaded)
            target_info = {"auto": False}
        t0 = time.perf_counter()
        cams, target_score, layer_shape = runner.explain(target)
        timings["cam_s"] = time.perf_counter() - t0

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


def _auto_batch(loaded: LoadedModel) -> int:
    """Windows (or frames) per forward: small on CPU, larger on a GPU."""
    on_gpu = loaded.device.type == "cuda"
    if loaded.kind == "frame":
        return 32 if on_gpu else 8
    return 8 if on_gpu else 2


class _Runner:
    """Streams windows of frames through the model (pass 1: scan; pass 2: explain)."""

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

    def _window_batches(self, desc: str) -> Iterator[tuple[np.ndarray, torch.Tensor]]:
        """Yield (plan rows (b, T), model input on the device) in window order.

        Frames are decoded once, sequentially, and held only while a pending window needs them.
        """
        from tqdm import tqdm

        loaded, plan = self.loaded, self.plan
        held: dict[int, np.ndarray] = {}
        next_window = 0
        decoded_upto = -1
        pending: list[int] = []
        bar = tqdm(total=len(plan), desc=desc, unit="win", disable=not self.progress, leave=False)

        def flush(rows: list[int]) -> tuple[np.ndarray, torch.Tensor]:
            block = np.stack([np.stack([held[p] for p in plan[r]]) for r in rows])
            bar.update(len(rows))
            return plan[rows], model_input(loaded, block)

        decode_batch = max(32, plan.shape[1] * 2)
        batches = self.source.iter_batches(
            self.indices, size=loaded.preprocess.size, batch_size=decode_batch
        )
        # Positions in the sampled stream run 0..n-1 in decode order.
        position = 0
        try:
            for frame_batch in batches:
                for frame in frame_batch.frames:
                    held[position] = frame
                    position += 1
                decoded_upto = position - 1
                while next_window < len(plan) and plan[next_window].max() <= decoded_upto:
                    pending.append(next_window)
                    next_window += 1
                    if len(pending) == self.batch:
                        yield flush(pending)
                        pending = []
                        lowest = plan[next_window].min() if next_window < len(plan) else position
                        for p in [p for p in held if p < lowest]:
                            del held[p]
            if pending:
                yield flush(pending)
        finally:
            bar.close()

    def scan(self) -> np.ndarray:
        """Forward only over every window: the mean class probability over windows, (K,)."""
        import torch

        module = self.loaded.module
        total: torch.Tensor | None = None
        count = 0
        with torch.inference_mode(), _autocast(self.loaded, self.config):
            for _, inputs in self._window_batches("scan"):
                probs = torch.softmax(module(inputs).float(), dim=1).sum(0)
                total = probs if total is None else total + probs
                count += inputs.shape[0]
        assert total is not None
        return (total / count).cpu().numpy()

    def explain(self, target: int) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
        """CAM for ``target`` over every window, fused per frame.

        Returns:
            (maps float32 (n_frames, h, w), target score (n_frames,), the layer's map shape).
        """
        import torch

        from videocam.cam import cam_and_output

        loaded = self.loaded
        n = len(self.indices)
        fuser = WindowFuser(n)
        maps: np.ndarray | None = None
        scores = np.zeros(n, dtype=np.float64)
        layer_shape: tuple[int, ...] = ()

        def collect(done: Iterator[tuple[int, np.ndarray, np.ndarray]]) -> None:
            nonlocal maps
            for position, frame_map, frame_scores in done:
                if maps is None:
                    maps = np.zeros((n, *frame_map.shape), dtype=np.float32)
                maps[position] = frame_map
                scores[position] = frame_scores[0]

        for rows, inputs in self._window_batches("explain"):
            result = cam_and_output(
                loaded.module,
                inputs,
                loaded.layer,
                targets=[target] * inputs.shape[0],
                method=self.config.method,
                reshape=loaded.reshape,
                autocast=self.config.autocast,
            )
            probs = torch.softmax(result.output.float(), dim=1)[:, target]
            # One transfer per batch of windows.
            window_maps = result.cams.float().cpu().numpy()
            window_probs = probs.cpu().numpy()
            if loaded.kind == "frame":
                window_maps = window_maps[:, None]  # (b, 1, h, w): one time step
            layer_shape = tuple(window_maps.shape[1:])
            for row, window_map, p in zip(rows, window_maps, window_probs, strict=True):
                fuser.add(row, window_map, np.array([p]))
            collect(fuser.pop_final())
        collect(fuser.finish())
        assert maps is not None
        return maps, scores, layer_shape


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
