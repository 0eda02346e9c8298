"""Keyframes where the model sees the class: splices of real footage, before and after the
evidence rule.

Each case splices a stretch of a real clip in which an ImageNet class is plainly visible (bottles,
trucks on a highway, a grocery store) into real footage without it, at a known time, and explains
that class with ``efficientnet_lite0`` (real ImageNet weights, per frame). Reported per evidence
floor (0 = the rule before: attribution alone), over every splice: keyframe precision (share of
the ``--topk 5 --min-gap 0.5`` keyframes inside the spliced interval of 1.5 s in 9.5 s), the
number of keyframes, and segment IoU (frames).

The model runs once per splice (``evidence_floor=0``); the floors are then applied to its
per-frame attribution and target score with the same scoring functions the analysis uses (and
the default floor is checked against a full analysis of one splice).

Needs the real footage in ``../shared/data/videos`` (the licences are next to the files).

    python benchmarks/keyframe_evidence.py [--json benchmarks/results/keyframe_evidence.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

VIDEOS = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "videos"
FPS = 12.5
SIZE = (270, 480)  # H, W of the splices
BACKGROUND_S = 8.0
INSERT_S = 1.5
FLOORS = (0.0, 0.1, 0.25, 0.5)
TOPK = 5
#: Room for 3 keyframes inside a 1.5-s splice (the default 1.0 s leaves 1 or 2).
MIN_GAP_S = 0.5


@dataclass(frozen=True)
class Splice:
    """``INSERT_S`` seconds of ``source`` from ``source_at`` put at ``insert_at`` into
    ``BACKGROUND_S`` seconds of ``background`` from ``background_at``; explain ``target``."""

    name: str
    target: str
    source: str
    source_at: float
    background: str
    background_at: float
    insert_at: float


SPLICES = [
    Splice(
        "bottle in a room",
        "water bottle",
        "intel_bottle-detection.mp4",
        4.0,
        "intel_one-by-one-person-detection.mp4",
        10.0,
        3.0,
    ),
    Splice(
        "bottle in a room, late",
        "water bottle",
        "intel_bottle-detection.mp4",
        20.0,
        "intel_one-by-one-person-detection.mp4",
        60.0,
        5.5,
    ),
    Splice(
        "bottle on a road",
        "water bottle",
        "intel_bottle-detection.mp4",
        30.0,
        "intel_car-detection.mp4",
        5.0,
        2.0,
    ),
    Splice(
        "bottle on a highway",
        "pop bottle",
        "intel_bottle-detection.mp4",
        12.0,
        "udacity_solidWhiteRight.mp4",
        0.0,
        4.0,
    ),
    Splice(
        "truck in a room",
        "trailer truck",
        "udacity_solidWhiteRight.mp4",
        1.0,
        "intel_one-by-one-person-detection.mp4",
        30.0,
        2.5,
    ),
    Splice(
        "truck in a room, late",
        "trailer truck",
        "udacity_solidWhiteRight.mp4",
        5.0,
        "intel_one-by-one-person-detection.mp4",
        100.0,
        5.0,
    ),
    Splice(
        "truck among bottles",
        "trailer truck",
        "udacity_solidWhiteRight.mp4",
        3.0,
        "intel_bottle-detection.mp4",
        8.0,
        3.5,
    ),
    Splice(
        "grocery store on a road",
        "grocery store",
        "intel_store-aisle-detection_fromgif.mp4",
        0.5,
        "intel_car-detection.mp4",
        15.0,
        3.0,
    ),
    Splice(
        "grocery store in a room",
        "grocery store",
        "intel_store-aisle-detection_fromgif.mp4",
        1.5,
        "intel_one-by-one-person-detection.mp4",
        80.0,
        1.0,
    ),
    # The same kind of scene on both sides of the cut: street or highway into street or highway.
    Splice(
        "racer at a crossing",
        "racer",
        "udacity_vehicle_test_video.mp4",
        0.0,
        "intel_car-detection.mp4",
        12.0,
        3.0,
    ),
    Splice(
        "racer on a highway",
        "racer",
        "udacity_vehicle_test_video.mp4",
        0.0,
        "udacity_solidWhiteRight.mp4",
        0.0,
        5.0,
    ),
    Splice(
        "truck at a crossing",
        "trailer truck",
        "udacity_solidWhiteRight.mp4",
        2.0,
        "intel_car-detection.mp4",
        20.0,
        4.0,
    ),
    Splice(
        "suits on a road",
        "suit",
        "intel_one-by-one-person-detection.mp4",
        40.0,
        "intel_car-detection.mp4",
        2.0,
        2.0,
    ),
]


def _stretch(path: Path, start_s: float, seconds: float) -> np.ndarray:
    """uint8 (n, H, W, 3): the frames of ``path`` nearest to ``start_s + k / FPS``."""
    from videocam.io import open_video

    with open_video(path) as source:
        ticks = start_s + np.arange(round(seconds * FPS)) / FPS
        nearest = np.clip(np.searchsorted(source.times_s, ticks), 0, source.meta.n_frames - 1)
        return source.read(nearest, size=SIZE)


def make_splice(splice: Splice, path: Path) -> tuple[float, float]:
    """Write the spliced clip; returns the inserted interval (start_s, end_s)."""
    from videocam.synthetic import write_frames

    background = _stretch(VIDEOS / splice.background, splice.background_at, BACKGROUND_S)
    inserted = _stretch(VIDEOS / splice.source, splice.source_at, INSERT_S)
    at = round(splice.insert_at * FPS)
    frames = np.concatenate([background[:at], inserted, background[at:]])
    write_frames(path, frames, FPS, gop=25)
    return at / FPS, (at + len(inserted)) / FPS


def score(analysis: Any, floor: float, interval: tuple[float, float]) -> dict[str, float]:
    """Keyframes and segments of one analysis under one evidence floor."""
    from videocam.config import AnalyzeConfig
    from videocam.evaluate.metrics import keyframe_hit_rate, segment_iou
    from videocam.scoring import evidence_mask, find_segments, select_keyframes

    defaults = AnalyzeConfig()
    frames = analysis.frames
    times = frames.time_s.to_numpy()
    attribution = frames.attribution.to_numpy()
    evidence = evidence_mask(frames.target_score.to_numpy(), floor)
    keys = select_keyframes(
        attribution,
        times,
        TOPK,
        MIN_GAP_S,
        floor=defaults.keyframe_floor,
        eligible=evidence,
    )
    segments = find_segments(attribution, eligible=evidence)
    start, end = interval
    inside = (times[keys] >= start) & (times[keys] < end)
    return {
        "precision": keyframe_hit_rate(times[keys], start, end),
        "keyframes": len(keys),
        "inside": int(inside.sum()),
        "segment_iou": segment_iou(
            times, [(times[s.start], times[s.end]) for s in segments], start, end
        ),
    }


def main() -> None:
    from videocam.analysis import analyze
    from videocam.config import AnalyzeConfig
    from videocam.models import load_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default="benchmarks/results/keyframe_evidence.json")
    args = parser.parse_args()
    if not VIDEOS.is_dir():
        raise SystemExit(f"real footage not found at {VIDEOS}")
    loaded = load_model("efficientnet_lite0", device="cpu")
    default_floor = AnalyzeConfig().evidence_floor
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, splice in enumerate(SPLICES):
            path = Path(tmp) / f"splice{i}.mp4"
            interval = make_splice(splice, path)
            started = time.perf_counter()
            options = {"target": splice.target, "topk": TOPK, "min_gap": MIN_GAP_S, "render": False}
            analysis = analyze(path, loaded, evidence_floor=0.0, **options)
            seconds = time.perf_counter() - started
            scores = analysis.frames.target_score.to_numpy()
            inside = (analysis.frames.time_s >= interval[0]) & (
                analysis.frames.time_s < interval[1]
            )
            row: dict[str, Any] = {
                "splice": splice.name,
                "target": splice.target,
                "interval_s": list(interval),
                "peak_score_inside": float(scores[inside].max()),
                "peak_score_outside": float(scores[~inside].max()),
                "seconds": round(seconds, 2),
                "floors": {str(f): score(analysis, f, interval) for f in FLOORS},
            }
            if i == 0:  # the analysis with the default floor picks what the offline rule picks
                full = analyze(path, loaded, **options)
                offline = score(analysis, default_floor, interval)
                assert len(full.keyframes) == offline["keyframes"], (full.keyframes, offline)
            rows.append(row)
            per_floor = "  ".join(
                f"{f:g}: {row['floors'][str(f)]['inside']}/{row['floors'][str(f)]['keyframes']}"
                for f in FLOORS
            )
            print(f"{splice.name:26s} {splice.target:14s} {per_floor}", flush=True)
    summary = []
    for f in FLOORS:
        stats = [r["floors"][str(f)] for r in rows]
        summary.append(
            {
                "evidence_floor": f,
                # Pooled over every keyframe of every splice (a splice may have none).
                "precision": sum(s["inside"] for s in stats)
                / max(1, sum(s["keyframes"] for s in stats)),
                "mean_keyframes": float(np.mean([s["keyframes"] for s in stats])),
                "segment_iou": float(np.mean([s["segment_iou"] for s in stats])),
            }
        )
    print(f"\n{'evidence floor':>14s} {'precision':>9s} {'keyframes':>9s} {'segment IoU':>11s}")
    for s in summary:
        mark = "  (default)" if s["evidence_floor"] == default_floor else ""
        print(
            f"{s['evidence_floor']:14g} {s['precision']:9.3f} {s['mean_keyframes']:9.2f} "
            f"{s['segment_iou']:11.3f}{mark}"
        )
    result = {
        "splices": len(rows),
        "model": "efficientnet_lite0",
        "topk": TOPK,
        "min_gap_s": MIN_GAP_S,
        "default_floor": default_floor,
        "summary": summary,
        "rows": rows,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
