"""The analysis of one video, composed: open, sample, the single pass, score, result.

Pass 1 (here) streams frames resized in the decoder to the model's input size, runs every
window through the model once (:class:`~videocam.runtime.SinglePass`) and keeps only
low-resolution maps and numbers; rendering (``Analysis.save``) is a second, sequential pass at
output resolution (:mod:`videocam.analysis.outputs`).
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from videocam.analysis.detections import (
    detector_summary,
    detector_warnings,
    keyframe_detections,
)
from videocam.analysis.domain import domain_warnings, synthetic_footage_check
from videocam.analysis.result import (
    Analysis,
    RenderOptions,
    frame_table,
    keyframe_table,
    segment_table,
    track_table,
)
from videocam.analysis.summary import Windows, analysis_warnings, build_summary
from videocam.analysis.targets import (
    choose_auto_target,
    class_name,
    ranked_classes,
    resolve_class,
)
from videocam.config import DEFAULT_METHOD, DETECTOR_METHOD, AnalyzeConfig
from videocam.errors import VideoOpenError
from videocam.io import FrameSource, decode_reproducibly, sample_indices, stand_ins
from videocam.render.keyframes import keyframe_image_name
from videocam.runtime import SinglePass, auto_batch, cpu_threads
from videocam.scoring import score_frames
from videocam.temporal import FrameMaps, RowStore, plan_windows

if TYPE_CHECKING:
    import pandas as pd

    from videocam.io.base import DecodeReport
    from videocam.models import LoadedModel
    from videocam.runtime import Explained
    from videocam.scoring import VideoScores

logger = logging.getLogger(__name__)


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
        detector=config.detector,
        score_threshold=config.score_threshold,
        prompts=config.prompts,
        negatives=config.negatives,
    )


def default_method(loaded: LoadedModel) -> str:
    """The CAM method when none is asked for: EigenCAM for object detectors (gradient-free:
    the usual choice for detectors), Grad-CAM otherwise."""
    return DETECTOR_METHOD if loaded.detector is not None else DEFAULT_METHOD


def with_method(config: AnalyzeConfig, loaded: LoadedModel) -> AnalyzeConfig:
    """``config`` with its method filled in (:func:`default_method`) when it names none."""
    return config if config.method is not None else config.replace(method=default_method(loaded))


def sampled_indices(source: FrameSource, config: AnalyzeConfig) -> np.ndarray:
    """The frames ``config`` asks for (its step, sampling rate and time range), in order."""
    return sample_indices(
        source.times_s,
        stride=config.frame_step,
        fps=config.sample_fps,
        start_s=config.start_s,
        end_s=config.end_s,
    )


def window_stride(loaded: LoadedModel, config: AnalyzeConfig, clip_len: int) -> int:
    """Frames between window starts: 1 for frame models, else ``--stride`` or half a window."""
    if loaded.kind == "frame":
        return 1
    return config.stride or max(1, clip_len // 2)


def window_plan(loaded: LoadedModel, config: AnalyzeConfig, n_frames: int) -> np.ndarray:
    """Window positions for ``n_frames`` sampled frames: (n_windows, T); T = 1 for frame models."""
    from videocam.models.spec import DEFAULT_CLIP_LEN

    if loaded.kind == "frame":
        return np.arange(n_frames, dtype=np.int64)[:, None]
    clip_len = config.clip_len or loaded.clip_len or DEFAULT_CLIP_LEN
    return plan_windows(n_frames, clip_len, window_stride(loaded, config, clip_len))


@dataclass
class PassFrames:
    """The frames an analysis's single pass fed the model, for re-scoring the same windows.

    Attributes:
        store: uint8 rows (H, W, 3) at the model's input size, one per sampled position
            (undecodable frames stood in for, as the model saw them).
        plan: int64, shape (n_windows, T): the windows' positions.
        row_of_position: int64, shape (n_positions,): the ``frames`` row (decoded frames only)
            whose frame each position holds.
        neutral: uint8, shape (H, W, 3): the decoded frames' temporal mean.
        window_maps: float32 rows (t', h, w), one per window of ``plan``: the window's own map
            of the explained class (raw scale, layer resolution; t' = 1 for frame models).
    """

    store: RowStore
    plan: np.ndarray
    row_of_position: np.ndarray
    neutral: np.ndarray = field(repr=False)
    window_maps: RowStore | None = None

    def close(self) -> None:
        """Close the store of frames (and of per-window maps, when kept)."""
        self.store.close()
        if self.window_maps is not None:
            self.window_maps.close()

    def __enter__(self) -> PassFrames:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def run_analysis(
    video: Path, loaded: LoadedModel, config: AnalyzeConfig, *, progress: bool = False
) -> Analysis:
    """The analysis with the model already loaded (batch mode reuses one model)."""
    analysis, _ = _run(video, loaded, config, progress=progress, keep_frames=False)
    return analysis


def run_analysis_keeping_frames(
    video: Path, loaded: LoadedModel, config: AnalyzeConfig, *, progress: bool = False
) -> tuple[Analysis, PassFrames]:
    """:func:`run_analysis`, and the frames its pass fed the model (the caller closes them)."""
    analysis, frames = _run(video, loaded, config, progress=progress, keep_frames=True)
    assert frames is not None
    return analysis, frames


def _run(
    video: Path, loaded: LoadedModel, config: AnalyzeConfig, *, progress: bool, keep_frames: bool
) -> tuple[Analysis, PassFrames | None]:
    config = with_method(config, loaded)
    # The decoding policy may run the analysis again with another decoder (damaged data).
    return decode_reproducibly(
        video,
        config.backend,
        lambda source: _analyse(source, loaded, config, progress=progress, keep=keep_frames),
    )


def _analyse(
    source: FrameSource, loaded: LoadedModel, config: AnalyzeConfig, *, progress: bool, keep: bool
) -> tuple[Analysis, PassFrames | None]:
    """Sample, the single pass, score, result: one video, already open."""
    from videocam.models.detectors import fit_to_video

    started = time.perf_counter()
    loaded = fit_to_video(loaded, source.meta.height, source.meta.width)
    indices = sampled_indices(source, config)
    if len(indices) == 0:
        raise VideoOpenError(
            f"{source.path}: no frames in the requested time range "
            f"[{config.start_s}, {config.end_s}) s (video lasts {source.meta.duration_s:.2f} s)"
        )
    plan = window_plan(loaded, config, len(indices))
    method = str(config.method)
    batch = config.batch_size or auto_batch(loaded, plan.shape[1], method, config.autocast)
    explicit = None if config.target == "auto" else resolve_class(config.target, loaded)
    single = SinglePass(
        loaded,
        source,
        indices,
        plan,
        method=method,
        batch=batch,
        autocast=config.autocast,
        progress=progress,
        keep_frames=keep,
    )
    named, top = _tracks_asked(config, loaded)
    with cpu_threads() as threads:
        explained = single.explain(
            explicit,
            lambda probs: choose_auto_target(probs, loaded)[0],
            tracks=named,
            top_tracks=top,
            rank=lambda probs: ranked_classes(probs, loaded),
        )
    windows = Windows(
        n_windows=len(plan),
        clip_len=plan.shape[1],
        stride=window_stride(loaded, config, plan.shape[1]),
        batch_size=batch,
        background_decoding=single.background_decoding,
        torch_threads=threads,
        oom_splits=single.oom_splits,
    )
    # Undecodable frames were stood in for inside the windows; they get no row: frames.csv
    # lists decoded frames only, with their own indices and times.
    decoded = ~np.isin(indices, np.asarray(source.skipped_indices, dtype=np.int64))
    try:
        kept = _pass_frames(explained, plan, indices, decoded, source) if keep else None
        analysis = _result(
            source, loaded, config, explained, windows, indices, decoded, explicit is None, started
        )
    except BaseException:
        if explained.frames is not None:
            explained.frames.close()
        raise
    finally:
        explained.maps.close()
    return analysis, kept


def _with_detections(
    source: FrameSource,
    loaded: LoadedModel,
    explained: Explained,
    indices: np.ndarray,
    times: np.ndarray,
    scores: VideoScores,
) -> tuple[pd.DataFrame, VideoScores]:
    """The detector's boxes on the keyframes, and the scores with each keyframe's box the
    explained detection's (the map's where a keyframe has none: no evidence floor)."""
    meta = source.meta
    detections, boxes = keyframe_detections(
        source,
        loaded,
        explained.target,
        indices[scores.keyframes],
        times[scores.keyframes],
        frame_size=(meta.height, meta.width),
    )
    kept = [d if d[0] >= 0 else m for d, m in zip(boxes, scores.boxes, strict=True)]
    return detections, dataclasses.replace(scores, boxes=kept)


def _warnings(
    source: FrameSource,
    loaded: LoadedModel,
    explained: Explained,
    windows: Windows,
    decode: DecodeReport,
    footage: dict[str, Any] | None,
    auto: bool,
) -> list[str]:
    """What the run should warn about (logged here, and recorded in summary.json)."""
    meta = source.meta
    warnings = analysis_warnings(meta, decode, loaded, explained.layer_shape, windows.clip_len)
    warnings += detector_warnings(loaded, explained.class_probs, explained.target)
    warnings += domain_warnings(
        loaded, footage, explained.class_probs, explained.class_wins, explained.target, auto
    )
    for message in warnings:
        logger.warning("%s: %s", meta.path, message)
    return warnings


def _result(
    source: FrameSource,
    loaded: LoadedModel,
    config: AnalyzeConfig,
    explained: Explained,
    windows: Windows,
    indices: np.ndarray,
    decoded: np.ndarray,
    auto: bool,
    started: float,
) -> Analysis:
    """Score the decoded frames of the pass and assemble the result."""
    meta = source.meta
    indices = indices[decoded]
    times = source.times_s[indices]
    target_score = explained.target_score[decoded]
    maps = explained.maps
    positions = np.flatnonzero(decoded)
    scores = score_frames(
        maps.means[decoded],
        maps.maxes[decoded],
        lambda p: maps.read(int(positions[p]), int(positions[p]) + 1)[0],
        times,
        target_score,
        (meta.height, meta.width),
        topk=config.topk,
        min_gap_s=config.min_gap,
        keyframe_floor=config.keyframe_floor,
        evidence_floor=config.evidence_floor,
        evidence_ratio=config.evidence_ratio,
        box_threshold=config.box_threshold,
        box_max_area=config.box_max_area,
    )
    detections = None
    if loaded.detector is not None:
        detections, scores = _with_detections(source, loaded, explained, indices, times, scores)
    tracks, track_scale = _track_curves(explained, decoded)
    decode = source.decode_report()
    footage = synthetic_footage_check(source, loaded, indices)
    warnings = _warnings(source, loaded, explained, windows, decode, footage, auto)
    timings = {**explained.seconds, "cam_s": sum(explained.seconds.values())}
    timings["analysis_s"] = time.perf_counter() - started
    summary = build_summary(
        meta=meta,
        loaded=loaded,
        config=config,
        explained=explained,
        auto=auto,
        windows=windows,
        n_frames=len(indices),
        decode=decode,
        decoder=source.decoder,
        scores=scores,
        target_score=target_score,
        track_scale=track_scale,
        timings_s=timings,
        warnings=warnings,
    )
    if loaded.detector is not None:
        summary["detector"] = detector_summary(loaded)
    if footage is not None:
        summary["training_footage_check"] = footage
    image_name = keyframe_image_name if config.render else None
    track_rows = None
    if explained.tracks:
        names = [(c.class_index, class_name(loaded, c.class_index)) for c in explained.tracks]
        track_rows = track_table(indices, times, names, *tracks)
    return Analysis(
        frames=frame_table(indices, times, scores, target_score),
        keyframes=keyframe_table(indices, times, scores, image_name),
        segments=segment_table(indices, times, scores),
        cams=scaled_cams(maps, positions, scores.cam_scale),
        meta=meta,
        summary=summary,
        class_probs=explained.class_probs,
        render_options=RenderOptions.from_config(config),
        tracks=track_rows,
        detections=detections,
    )


#: Scaled maps (float16) of a video held in memory up to this size; beyond, in a file mapped
#: read-only (pages the OS can drop), so that a long video's maps never fill the memory.
CAMS_MEMORY_BYTES = 16 * 2**20


def scaled_cams(maps: FrameMaps, positions: np.ndarray, scale: float) -> np.ndarray:
    """float16 (len(positions), h, w) in [0, 1]: the maps of ``positions`` divided by ``scale``,
    read and written in chunks; in memory when small, else memory-mapped from an anonymous
    temporary file (``Analysis.cams`` stays a numpy array either way)."""
    shape = (len(positions), *maps.map_shape)
    row_bytes = 2 * int(np.prod(maps.map_shape, dtype=np.int64))
    chunk = max(1, (4 * 2**20) // max(1, row_bytes))
    if len(positions) * row_bytes <= CAMS_MEMORY_BYTES:
        out = np.empty(shape, dtype=np.float16)
        for start in range(0, len(positions), chunk):
            out[start : start + chunk] = _scaled_chunk(
                maps, positions[start : start + chunk], scale
            )
        return out
    with tempfile.TemporaryFile(prefix="videocam-cams-") as handle:  # unlinked: never left behind
        for start in range(0, len(positions), chunk):
            handle.write(_scaled_chunk(maps, positions[start : start + chunk], scale).tobytes())
        handle.flush()
        return np.memmap(handle, dtype=np.float16, mode="r", shape=shape)


def _scaled_chunk(maps: FrameMaps, positions: np.ndarray, scale: float) -> np.ndarray:
    """The maps of increasing ``positions`` / ``scale``, float16."""
    first, last = int(positions[0]), int(positions[-1])
    rows = maps.read(first, last + 1)[positions - first]
    return (rows / np.float32(scale)).astype(np.float16)


def _tracks_asked(config: AnalyzeConfig, loaded: LoadedModel) -> tuple[list[int], int]:
    """``--tracks``: (classes named, how many of the most probable classes to add); without
    it, every prompt of a model asked in words."""
    if config.tracks is None:
        if loaded.prompts is not None:
            return list(range(len(loaded.prompts.texts))), 0
        return [], 0
    if isinstance(config.tracks, int):
        return [], config.tracks
    return [resolve_class(t, loaded) for t in config.tracks], 0


def _track_curves(
    explained: Explained, decoded: np.ndarray
) -> tuple[tuple[list[np.ndarray], list[np.ndarray]], float]:
    """Each track's attribution and score over the decoded frames, attribution on one scale
    shared by every track (their maps' common maximum), and that scale."""
    peaks = [float(t.map_max[decoded].max()) for t in explained.tracks if decoded.any()]
    scale = max(peaks, default=0.0) or 1.0
    attribution = [t.map_mean[decoded] / scale for t in explained.tracks]
    return (attribution, [t.target_score[decoded] for t in explained.tracks]), scale


def _pass_frames(
    explained: Explained,
    plan: np.ndarray,
    indices: np.ndarray,
    decoded: np.ndarray,
    source: FrameSource,
) -> PassFrames:
    """The kept frames of the pass, with their mapping to rows and the neutral frame."""
    kept = explained.frames
    assert kept is not None
    assert kept.total is not None
    row = np.cumsum(decoded) - 1
    row_of_position = row[stand_ins(indices, source.skipped_indices)]
    # The mean of the decoded frames: stand-ins repeat a decoded frame, take them out again.
    total = kept.total.copy()
    for position in np.flatnonzero(~decoded).tolist():
        total -= kept.store.read(position, position + 1)[0]
    neutral = (total / max(1, int(decoded.sum()))).round().astype(np.uint8)
    return PassFrames(kept.store, plan, row_of_position.astype(np.int64), neutral, kept.window_maps)
