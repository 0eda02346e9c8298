"""Keyframes and segments where the model sees the class: splices of real footage, per evidence
rule.

Each case splices a stretch of a real clip in which an ImageNet class is on screen into real
footage without it, at a known time, and explains that class with ``efficientnet_lite0`` (real
ImageNet weights, per frame), ``--topk 5 --min-gap 0.5``. Two sets:

- ``confident``: 13 splices of 1.5 s into 8 s, of classes the model is fairly sure of (bottles,
  trucks, a grocery store, a racing car, suits: peaks 0.07 to 0.69);
- ``weak``: 11 splices of 3.8 to 5 s into 8 s, of classes whose probability peaks below 0.05
  while the object is plainly on screen (a grey cardigan, a sweatshirt, a black T-shirt read as
  "jersey", cars on a highway or seen from above read as a minivan, a convertible or a sports
  car), tens to hundreds of times their level in the footage around them; two show a
  person walking in.

Reported per evidence rule (:func:`rules`: the rule before, the default and the candidates it
was chosen among), for each set and for all splices: keyframe precision (share of the keyframes
inside the spliced interval, pooled over splices), keyframes returned inside the interval
against the keyframes the interval allows (``min(topk, floor(interval / min_gap))``, pooled),
mean keyframes per splice and segment IoU (frames; mean and worst over splices).

The model runs once per splice (evidence off); each rule is then applied to the per-frame
attribution and target score with the same scoring functions the analysis uses (the default
rule is checked against a full analysis of one splice). ``--cache DIR`` keeps each splice's
per-frame numbers (times, attribution, target score) so that trying rules does not re-run the
model; delete it after changing how attribution is computed.

Needs the real footage in ``../shared/data/videos`` (the licences are next to the files;
``--videos DIR`` elsewhere).

    python benchmarks/keyframe_evidence.py [--json benchmarks/results/keyframe_evidence.json]
        [--cache DIR] [--videos DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

VIDEOS = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "videos"
MODEL = "efficientnet_lite0"
FPS = 12.5
SIZE = (270, 480)  # H, W of the splices
BACKGROUND_S = 8.0
INSERT_S = 1.5
TOPK = 5
#: Room for 3 keyframes inside a 1.5-s splice (the default 1.0 s leaves 1 or 2).
MIN_GAP_S = 0.5


@dataclass(frozen=True)
class Splice:
    """``seconds`` of ``source`` from ``source_at`` put at ``insert_at`` into ``BACKGROUND_S``
    seconds of ``background`` from ``background_at``; explain ``target``."""

    name: str
    target: str
    source: str
    source_at: float
    background: str
    background_at: float
    insert_at: float
    seconds: float = INSERT_S


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


#: Classes the model sees weakly while the object is plainly on screen (peaks below 0.05, tens of
#: times the background footage's level): a grey cardigan, a sweatshirt, a black T-shirt
#: ("jersey"), cars on a highway or seen from above read as a minivan, a convertible, a sports car.
WEAK_SPLICES = [
    Splice(
        "T-shirt among bottles",
        "jersey",
        "intel_one-by-one-person-detection.mp4",
        78.0,
        "intel_bottle-detection.mp4",
        28.0,
        3.0,
        4.0,
    ),
    Splice(
        "cardigan on a highway",
        "cardigan",
        "intel_one-by-one-person-detection.mp4",
        104.0,
        "udacity_solidWhiteRight.mp4",
        0.0,
        3.0,
        4.0,
    ),
    Splice(
        "sweatshirt among bottles",
        "sweatshirt",
        "intel_one-by-one-person-detection.mp4",
        100.0,
        "intel_bottle-detection.mp4",
        25.0,
        3.5,
        4.0,
    ),
    Splice(
        "T-shirt on a highway",
        "jersey",
        "intel_one-by-one-person-detection.mp4",
        77.0,
        "udacity_solidWhiteRight.mp4",
        0.0,
        2.0,
        4.0,
    ),
    Splice(
        "highway minivan in a room",
        "minivan",
        "udacity_solidWhiteRight.mp4",
        1.5,
        "intel_one-by-one-person-detection.mp4",
        44.0,
        2.5,
        4.0,
    ),
    Splice(
        "convertible among bottles",
        "convertible",
        "udacity_solidWhiteRight.mp4",
        3.0,
        "intel_bottle-detection.mp4",
        10.0,
        4.0,
        4.0,
    ),
    Splice(
        "sports car from above in a room",
        "sports car",
        "intel_car-detection.mp4",
        14.7,
        "intel_one-by-one-person-detection.mp4",
        0.0,
        3.0,
        3.8,
    ),
    Splice(
        "minivan from above among bottles",
        "minivan",
        "intel_car-detection.mp4",
        14.7,
        "intel_bottle-detection.mp4",
        25.0,
        2.0,
        3.8,
    ),
    Splice(
        "sweatshirt walking in on a highway",
        "sweatshirt",
        "intel_one-by-one-person-detection.mp4",
        124.2,
        "udacity_solidWhiteRight.mp4",
        0.0,
        4.0,
        5.0,
    ),
    Splice(
        "cardigan walking in on a highway",
        "cardigan",
        "intel_one-by-one-person-detection.mp4",
        92.8,
        "udacity_solidWhiteRight.mp4",
        0.0,
        2.5,
        5.0,
    ),
    Splice(
        "cars from above among bottles",
        "sports car",
        "intel_car-detection.mp4",
        14.6,
        "intel_bottle-detection.mp4",
        25.0,
        4.5,
        4.0,
    ),
]


def _stretch(path: Path, start_s: float, seconds: float) -> np.ndarray:
    """uint8 (n, H, W, 3): the frames of ``path`` nearest to ``start_s + k / FPS``."""
    from videocam.io import open_video

    with open_video(path) as source:
        ticks = start_s + np.arange(round(seconds * FPS)) / FPS
        nearest = np.clip(np.searchsorted(source.times_s, ticks), 0, source.meta.n_frames - 1)
        return source.read(nearest, size=SIZE)


def make_splice(splice: Splice, path: Path, videos: Path) -> tuple[float, float]:
    """Write the spliced clip; returns the inserted interval (start_s, end_s)."""
    from videocam.synthetic import write_frames

    background = _stretch(videos / splice.background, splice.background_at, BACKGROUND_S)
    inserted = _stretch(videos / splice.source, splice.source_at, splice.seconds)
    at = round(splice.insert_at * FPS)
    frames = np.concatenate([background[:at], inserted, background[at:]])
    write_frames(path, frames, FPS, gop=25)
    return at / FPS, (at + len(inserted)) / FPS


@dataclass(frozen=True)
class PerFrame:
    """One splice's analysis with evidence off: what every rule is applied to."""

    interval: tuple[float, float]
    times: np.ndarray
    attribution: np.ndarray
    target_score: np.ndarray
    seconds: float  # the analysis's time (0 when read from the cache)


def _cache_key(splice: Splice) -> str:
    spec = {"splice": asdict(splice), "fps": FPS, "size": SIZE, "background_s": BACKGROUND_S}
    spec["model"] = MODEL
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def per_frame(splice: Splice, loaded: Any, videos: Path, tmp: Path, cache: Path | None) -> PerFrame:
    """The splice's per-frame times, attribution and target score (evidence off)."""
    from videocam.analysis import analyze

    cached = cache / f"{_cache_key(splice)}.npz" if cache else None
    if cached is not None and cached.exists():
        with np.load(cached) as data:
            start, end = data["interval"].tolist()
            return PerFrame(
                (start, end), data["times"], data["attribution"], data["target_score"], 0.0
            )
    path = tmp / "splice.mp4"
    interval = make_splice(splice, path, videos)
    started = time.perf_counter()
    analysis = analyze(path, loaded, evidence_floor=0.0, **_options(splice))
    frames = analysis.frames
    result = PerFrame(
        interval,
        frames.time_s.to_numpy(),
        frames.attribution.to_numpy(),
        frames.target_score.to_numpy(),
        time.perf_counter() - started,
    )
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        with open(cached.with_suffix(".tmp"), "wb") as f:
            np.savez(
                f,
                interval=np.array(interval),
                times=result.times,
                attribution=result.attribution,
                target_score=result.target_score,
            )
        cached.with_suffix(".tmp").replace(cached)
    return result


def _options(splice: Splice) -> dict[str, Any]:
    return {"target": splice.target, "topk": TOPK, "min_gap": MIN_GAP_S, "render": False}


def allowed_keyframes(interval: tuple[float, float]) -> int:
    """Keyframes the interval has room for: its length over the least gap, at most topk."""
    return min(TOPK, int(np.floor((interval[1] - interval[0]) / MIN_GAP_S + 1e-9)))


def select(frames: PerFrame, evidence: np.ndarray) -> np.ndarray:
    """The splice's keyframes (positions) under one rule's evidence, as the analysis picks them."""
    from videocam.config import AnalyzeConfig
    from videocam.scoring import select_keyframes

    floor = AnalyzeConfig().keyframe_floor
    return select_keyframes(
        frames.attribution, frames.times, TOPK, MIN_GAP_S, floor=floor, eligible=evidence
    )


def score(frames: PerFrame, evidence: np.ndarray) -> dict[str, float]:
    """Keyframes and segments of one splice under one rule's evidence."""
    from videocam.evaluate.metrics import keyframe_hit_rate, segment_iou
    from videocam.scoring import find_segments

    times, attribution = frames.times, frames.attribution
    keys = select(frames, evidence)
    segments = find_segments(attribution, eligible=evidence)
    start, end = frames.interval
    inside = (times[keys] >= start) & (times[keys] < end)
    truth = (times >= start) & (times < end)
    return {
        "precision": keyframe_hit_rate(times[keys], start, end),
        "keyframes": len(keys),
        "inside": int(inside.sum()),
        "allowed": allowed_keyframes(frames.interval),
        "segment_iou": segment_iou(
            times, [(times[s.start], times[s.end]) for s in segments], start, end
        ),
        "evidence_inside": float(evidence[truth].mean()),
        "evidence_outside": float(evidence[~truth].mean()),
    }


def pooled(stats: list[dict[str, float]]) -> dict[str, float]:
    """One rule's numbers over a set of splices."""
    keyframes = sum(s["keyframes"] for s in stats)
    return {
        # Pooled over every keyframe of every splice (a splice may have none).
        "precision": sum(s["inside"] for s in stats) / max(1, keyframes),
        "mean_keyframes": float(np.mean([s["keyframes"] for s in stats])),
        "returned": sum(min(s["inside"], s["allowed"]) for s in stats)
        / max(1, sum(s["allowed"] for s in stats)),
        "segment_iou": float(np.mean([s["segment_iou"] for s in stats])),
        "worst_segment_iou": float(np.min([s["segment_iou"] for s in stats])),
    }


Rule = Callable[[np.ndarray, np.ndarray], np.ndarray]


def levels_rule(levels: Callable[[float, float], tuple[float, float]], gap_s: float = 0.0) -> Rule:
    """Evidence at the (threshold, enter) levels ``levels(peak, median)`` of each video, with the
    hysteresis and gap bridging of :func:`videocam.scoring.evidence_runs`."""
    from videocam.scoring import evidence_runs

    def evidence(target_score: np.ndarray, times: np.ndarray) -> np.ndarray:
        threshold, enter = levels(float(target_score.max()), float(np.median(target_score)))
        return evidence_runs(target_score, times, threshold, enter, gap_s)

    return evidence


def log_scale_rule(exit_at: float, enter_at: float, gap_s: float, contrast: float) -> Rule:
    """A candidate: levels a fraction of the way from the median to the peak on a log scale;
    every frame (score > 0) when the peak is less than ``contrast`` x the median."""

    def levels(peak: float, median: float) -> tuple[float, float]:
        if peak < contrast * median:
            return 0.0, 0.0
        return median * (peak / median) ** exit_at, median * (peak / median) ** enter_at

    return levels_rule(levels, gap_s)


def product_rule(**changes: float) -> Rule:
    """:func:`videocam.scoring.find_evidence` with the analysis's defaults, some changed."""
    from videocam.config import AnalyzeConfig
    from videocam.scoring import find_evidence

    settings = {"floor": AnalyzeConfig().evidence_floor, "ratio": AnalyzeConfig().evidence_ratio}
    settings.update(changes)

    def evidence(target_score: np.ndarray, times: np.ndarray) -> np.ndarray:
        return find_evidence(target_score, times, **settings).mask

    return evidence


DEFAULT_RULE = "pass min(median x 10, peak x 0.25), enter min(median x 100, peak x 0.5) (default)"


def rules() -> dict[str, Rule]:
    """Each rule compared: name -> evidence mask of a (target score, times) curve."""
    return {
        "off (attribution alone)": lambda s, t: np.ones(len(s), dtype=bool),
        "peak x 0.25 (before)": levels_rule(lambda p, m: (0.25 * p, 0.25 * p)),
        "peak x 0.1": levels_rule(lambda p, m: (0.1 * p, 0.1 * p)),
        "peak x 0.5": levels_rule(lambda p, m: (0.5 * p, 0.5 * p)),
        "min(median x 5, peak x 0.25)": levels_rule(
            lambda p, m: (min(5 * m, 0.25 * p), min(5 * m, 0.25 * p))
        ),
        "min(median x 10, peak x 0.25)": levels_rule(
            lambda p, m: (min(10 * m, 0.25 * p), min(10 * m, 0.25 * p))
        ),
        "log scale 0.4 / 0.7 of median..peak": log_scale_rule(0.4, 0.7, 0.5, 4.0),
        "peak x 0.25, enter peak x 0.5, gap 0.5 s": product_rule(ratio=0.0),
        "default, no gap bridged": product_rule(gap_s=0.0),
        "default, gap 1 s": product_rule(gap_s=1.0),
        "default, median x 5 (enter x 50)": product_rule(ratio=5.0),
        "default, median x 7 (enter x 70)": product_rule(ratio=7.0),
        "default, enter only at peak x 0.5": levels_rule(
            lambda p, m: (max(min(10 * m, 0.25 * p), 0.01 * p), 0.5 * p), 0.5
        ),
        DEFAULT_RULE: product_rule(),
    }


def main() -> None:
    from videocam.config import AnalyzeConfig
    from videocam.models import load_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default="benchmarks/results/keyframe_evidence.json")
    parser.add_argument("--cache", type=Path, help="keep per-frame numbers of each splice here")
    parser.add_argument("--videos", type=Path, default=VIDEOS, help="the real footage")
    args = parser.parse_args()
    if not args.videos.is_dir():
        raise SystemExit(f"real footage not found at {args.videos}")
    loaded = load_model(MODEL, device="cpu")
    named = rules()
    sets = {"confident": SPLICES, "weak": WEAK_SPLICES}
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind, splices in sets.items():
            for splice in splices:
                frames = per_frame(splice, loaded, args.videos, Path(tmp), args.cache)
                truth = (frames.times >= frames.interval[0]) & (frames.times < frames.interval[1])
                row: dict[str, Any] = {
                    "splice": splice.name,
                    "set": kind,
                    "target": splice.target,
                    "interval_s": list(frames.interval),
                    "peak_score_inside": float(frames.target_score[truth].max()),
                    "peak_score_outside": float(frames.target_score[~truth].max()),
                    "median_score_outside": float(np.median(frames.target_score[~truth])),
                    "seconds": round(frames.seconds, 2),
                    "rules": {
                        name: score(frames, rule(frames.target_score, frames.times))
                        for name, rule in named.items()
                    },
                }
                rows.append(row)
                per_rule = "  ".join(
                    f"{r['inside']}/{r['keyframes']}/{r['allowed']} {r['segment_iou']:.2f}"
                    for r in row["rules"].values()
                )
                print(f"{splice.name:30s} {row['peak_score_inside']:.4f}  {per_rule}", flush=True)
        check_default(loaded, args.videos, Path(tmp))
    summary = []
    for name in named:
        entry: dict[str, Any] = {"rule": name}
        for kind in (*sets, "all"):
            stats = [r["rules"][name] for r in rows if kind in ("all", r["set"])]
            entry[kind] = pooled(stats)
        summary.append(entry)
    print_table(summary, list(sets))
    result = {
        "splices": {kind: len(s) for kind, s in sets.items()},
        "model": MODEL,
        "topk": TOPK,
        "min_gap_s": MIN_GAP_S,
        "default_rule": DEFAULT_RULE,
        "default": {
            "evidence_floor": AnalyzeConfig().evidence_floor,
            "evidence_ratio": AnalyzeConfig().evidence_ratio,
        },
        "summary": summary,
        "rows": rows,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")


def check_default(loaded: Any, videos: Path, tmp: Path) -> None:
    """A full analysis of a weak-class splice with the default rule has the evidence and the
    keyframes that the offline default rule finds on its per-frame numbers."""
    from videocam.analysis import analyze

    splice = WEAK_SPLICES[-2]
    interval = make_splice(splice, tmp / "splice.mp4", videos)
    full = analyze(tmp / "splice.mp4", loaded, **_options(splice))
    times, score = full.frames.time_s.to_numpy(), full.frames.target_score.to_numpy()
    frames = PerFrame(interval, times, full.frames.attribution.to_numpy(), score, 0.0)
    evidence = product_rule()(score, times)
    assert full.summary["keyframes"]["frames_with_evidence"] == int(evidence.sum())
    offline = select(frames, evidence)
    assert full.keyframes.frame_index.tolist() == offline.tolist(), (full.keyframes, offline)


def print_table(summary: list[dict[str, Any]], sets: list[str]) -> None:
    """One line per rule and set of splices."""
    width = max(len(entry["rule"]) for entry in summary)
    print(
        f"\n{'rule':{width}s} {'set':9s} {'precision':>9s} {'returned':>8s} {'keyframes':>9s} "
        f"{'segment IoU':>11s} {'worst IoU':>9s}"
    )
    for entry in summary:
        for kind in (*sets, "all"):
            s = entry[kind]
            print(
                f"{entry['rule']:{width}s} {kind:9s} {s['precision']:9.3f} {s['returned']:8.3f} "
                f"{s['mean_keyframes']:9.2f} {s['segment_iou']:11.3f} {s['worst_segment_iou']:9.3f}"
            )


if __name__ == "__main__":
    main()
