"""summary.json of one analysis: its schema in one place, the warnings an analysis raises, and
the package versions it records."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from videocam.analysis.targets import class_name, top_classes

if TYPE_CHECKING:
    from videocam.config import AnalyzeConfig
    from videocam.io import DecoderChoice, DecodeReport, VideoMeta
    from videocam.models import LoadedModel
    from videocam.runtime import Explained

ATTRIBUTION_DEFINITION = (
    "mean over map positions of the frame's CAM after dividing all frames' maps by "
    "their common maximum (one factor for the whole video)"
)
SEGMENTS_DEFINITION = (
    "runs at or above median + 0.25 (peak - median) that reach median + 0.5 (peak - median)"
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
    """

    n_windows: int
    clip_len: int
    stride: int
    batch_size: int
    background_decoding: bool
    torch_threads: int


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
    cam_scale: float,
    timings_s: dict[str, float],
    warnings: list[str],
) -> dict[str, Any]:
    """summary.json's content (JSON-ready)."""
    target: dict[str, Any] = {
        "index": explained.target,
        "name": class_name(loaded, explained.target),
        "auto": auto,
        "video_top_classes": top_classes(explained.class_probs, loaded),
    }
    if auto:
        if loaded.background_class is not None:
            target["skipped_background_class"] = class_name(loaded, loaded.background_class)
        target["single_pass"] = {
            "candidates_per_window": explained.candidates_per_window,
            "windows_recomputed": explained.n_recomputed,
        }
    return {
        "video": meta.to_dict(),
        "model": {
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
        },
        "method": config.method,
        "target": target,
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
        },
        "cam_scale": cam_scale,
        "attribution_definition": ATTRIBUTION_DEFINITION,
        "segments_definition": SEGMENTS_DEFINITION,
        "config": config.to_dict(),
        "versions": package_versions(),
        "timings_s": {k: round(v, 4) for k, v in timings_s.items()},
        "warnings": warnings,
    }
