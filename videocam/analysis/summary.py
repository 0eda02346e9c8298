"""summary.json of one analysis: its schema in one place, the warnings an analysis raises, and
the package versions it records."""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from videocam.analysis.targets import class_name, top_classes
from videocam.runtime.process import allocator_setting
from videocam.scoring import BOXES_DEFINITION, EVIDENCE_ENTER_FACTORS, EVIDENCE_LOWEST

if TYPE_CHECKING:
    import numpy as np

    from videocam.config import AnalyzeConfig
    from videocam.io import DecoderChoice, DecodeReport, VideoMeta
    from videocam.models import LoadedModel
    from videocam.runtime import Explained
    from videocam.scoring import VideoScores

ATTRIBUTION_DEFINITION = (
    "mean over map positions of the frame's CAM after dividing all frames' maps by "
    "their common maximum (one factor for the whole video)"
)
SEGMENTS_DEFINITION = (
    "runs of frames with evidence at or above median + 0.25 (peak - median) that reach "
    "median + 0.5 (peak - median); median over all frames, peak over the frames with evidence"
)
_PEAK_FACTOR, _BASELINE_FACTOR = EVIDENCE_ENTER_FACTORS
EVIDENCE_DEFINITION = (
    "a frame passes when its target score reaches evidence_threshold = min(evidence_floor x "
    "the highest target score, evidence_ratio x the median target score (evidence_baseline)), "
    f"at least min(evidence_floor, {EVIDENCE_LOWEST:g}) x the highest; "
    "gaps of at most evidence_gap_s seconds between passing frames are bridged; a run of "
    f"passing frames has evidence when it reaches evidence_enter = min({_PEAK_FACTOR:g} "
    f"evidence_floor x the highest (at most the highest), {_BASELINE_FACTOR:g} evidence_ratio x "
    "the median) somewhere; with evidence_ratio 0 the median plays no part; a frame whose "
    "score is 0 never has evidence, and with evidence_floor 0 every frame has it; only frames "
    "with evidence are keyframes or inside segments"
)
KEYFRAMES_DEFINITION = (
    "frames with evidence in decreasing attribution, at least min_gap seconds apart, at least "
    "keyframe_floor x the strongest such frame's attribution, at most topk"
)
TRACKS_DEFINITION = (
    "per followed class: the mean of its fused map divided by the maximum of every followed "
    "class's maps (one scale for all tracks and the whole video); target_score is that "
    "class's probability averaged as in frames.csv"
)
#: Packages whose versions summary.json records.
VERSIONED_PACKAGES = ("videocam", "torch", "torchvision", "decord", "av", "numpy", "pandas")


def package_versions() -> dict[str, str]:
    """Installed versions of :data:`VERSIONED_PACKAGES` ("not installed" when absent)."""
    out = {}
    for package in VERSIONED_PACKAGES:
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = "not installed"
    return out


@dataclass(frozen=True)
class Windows:
    """How the sampled stream was cut into windows and batched.

    Attributes:
        n_windows: windows in the plan.
        clip_len: frames per window (1 for frame models).
        stride: frames between window starts.
        batch_size: windows (or frames) per forward.
        background_decoding: a thread decoded while the model ran.
        torch_threads: torch's threads during the pass.
        oom_splits: out-of-memory errors the pass recovered from by halving its batches.
    """

    n_windows: int
    clip_len: int
    stride: int
    batch_size: int
    background_decoding: bool
    torch_threads: int
    oom_splits: int = 0


def analysis_warnings(
    meta: VideoMeta,
    decode: DecodeReport,
    loaded: LoadedModel,
    layer_shape: tuple[int, ...],
    clip_len: int,
) -> list[str]:
    """What a reviewer should know about how far to trust this analysis."""
    warnings = []
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
    if decode.get("repeated_timestamps"):
        warnings.append(
            f"{decode['repeated_timestamps']} frame(s) repeat an earlier frame's timestamp (the "
            "timestamps restart part-way, as in joined recordings) and were left out; re-mux "
            "the file with fresh timestamps to analyse them"
        )
    if loaded.kind == "video" and layer_shape and layer_shape[0] * 4 <= clip_len:
        warnings.append(
            f"layer {loaded.layer} has {layer_shape[0]} time step(s) for {clip_len}-frame "
            "windows: the maps are coarse in time (choose an earlier layer for finer timing)"
        )
    return warnings


def build_summary(
    *,
    meta: VideoMeta,
    loaded: LoadedModel,
    config: AnalyzeConfig,
    explained: Explained,
    auto: bool,
    windows: Windows,
    n_frames: int,
    decode: DecodeReport,
    decoder: DecoderChoice,
    scores: VideoScores,
    target_score: np.ndarray,
    track_scale: float,
    timings_s: dict[str, float],
    warnings: list[str],
) -> dict[str, Any]:
    """summary.json's content (JSON-ready)."""
    summary: dict[str, Any] = {
        "video": meta.to_dict(),
        "model": _model_report(loaded, explained),
        "method": config.method,
        "target": _target_report(loaded, explained, auto),
        "windows": {
            "n_windows": windows.n_windows,
            "clip_len": windows.clip_len,
            "stride": windows.stride,
            "batch_size": windows.batch_size,
        },
        "n_frames_analysed": n_frames,
        "decode": decode,
        "decoder": decoder.to_dict(),
        "execution": {
            "background_decoding": windows.background_decoding,
            "torch_threads": windows.torch_threads,
            "out_of_memory_splits": windows.oom_splits,
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default (active)"),
            "allocator": allocator_setting(),
        },
        "cam_scale": scores.cam_scale,
        "keyframes": _keyframe_report(config, scores, target_score),
        "attribution_definition": ATTRIBUTION_DEFINITION,
        "evidence_definition": EVIDENCE_DEFINITION,
        "keyframes_definition": KEYFRAMES_DEFINITION,
        "segments_definition": SEGMENTS_DEFINITION,
        "boxes_definition": BOXES_DEFINITION,
        "config": config.to_dict(),
        "versions": package_versions(),
        "timings_s": {k: round(v, 4) for k, v in timings_s.items()},
        "warnings": warnings,
    }
    if explained.tracks:
        summary["tracks"] = _tracks_report(loaded, explained, track_scale)
    if loaded.prompts is not None:
        summary["prompts"] = loaded.prompts.to_dict()
    return summary


def _target_report(loaded: LoadedModel, explained: Explained, auto: bool) -> dict[str, Any]:
    """summary.json's ``target``: the explained class, and how ``--target auto`` chose it."""
    target: dict[str, Any] = {
        "index": explained.target,
        "name": class_name(loaded, explained.target),
        "auto": auto,
        "video_top_classes": top_classes(explained.class_probs, loaded, explained.class_wins),
    }
    if auto:
        if loaded.background_class is not None:
            target["skipped_background_class"] = class_name(loaded, loaded.background_class)
        target["single_pass"] = {
            "candidates_per_window": explained.candidates_per_window,
            "windows_recomputed": explained.n_recomputed,
            "windows_replayed": explained.n_replayed,
        }
    return target


def _model_report(loaded: LoadedModel, explained: Explained) -> dict[str, Any]:
    """summary.json's ``model``: what ran, at which layer, on which input."""
    return {
        "name": loaded.name,
        "kind": loaded.kind,
        "weights": loaded.weights,
        "layer": loaded.layer,
        "layer_map_shape": list(explained.layer_shape),
        "input_size": list(loaded.preprocess.size),
        "mean": list(loaded.preprocess.mean),
        "std": list(loaded.preprocess.std),
        "device": str(loaded.device),
        "n_classes": len(loaded.categories) if loaded.categories else None,
        **({"sources": dict(loaded.sources)} if loaded.sources is not None else {}),
    }


def _tracks_report(loaded: LoadedModel, explained: Explained, track_scale: float) -> dict[str, Any]:
    """summary.json's ``tracks``: the followed classes and their one scale."""
    return {
        "classes": [
            {
                "index": t.class_index,
                "name": class_name(loaded, t.class_index),
                "mean_prob": float(explained.class_probs[t.class_index]),
            }
            for t in explained.tracks
        ],
        "scale": track_scale,
        "definition": TRACKS_DEFINITION,
    }


def _keyframe_report(
    config: AnalyzeConfig, scores: VideoScores, target_score: np.ndarray
) -> dict[str, Any]:
    """How many keyframes were asked for and found, and what limited them."""
    found = len(scores.keyframes)
    report: dict[str, Any] = {
        "requested": config.topk,
        "found": found,
        "peak_target_score": float(target_score.max()) if len(target_score) else 0.0,
        # evidence_floor, evidence_ratio, the baseline, threshold and enter levels, the gap
        # bridged and frames_with_evidence: the rule and its numbers for this video.
        **scores.evidence.numbers(),
    }
    if found < config.topk:
        report["why_fewer"] = (
            "no frame has evidence (the target's score is 0 throughout)"
            if not scores.evidence.mask.any()
            else f"only {found} frame(s) with evidence reach {config.keyframe_floor:g} x the "
            f"strongest one's attribution at least {config.min_gap:g} s apart"
        )
    return report
