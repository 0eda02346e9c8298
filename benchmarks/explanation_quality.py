"""How right and how faithful the explanations are, per CAM method, against model-free baselines.

On held-out synthetic event clips (seeds >= 4,000,000: disjoint from the bundled model's training
and validation seeds), with the bundled model ``videocam_tiny`` explaining the true class:

- hit@3: share of the top-3 keyframes (min gap 0.5 s) that fall inside the event interval;
- pointing: share of those keyframes inside the event whose map maximum (upsampled to the frame)
  lies in the event object's box — the pointing game on keyframes;
- deletion AUC (normalised, lower = more faithful) in attribution order, and the same for random
  orders (mean of 3 seeds, the same orders for every method);
- time per video of the analysis (decode, scan, CAM; no rendering);
- sanity: the Spearman rank correlation of the maps with those of the model with every block
  re-initialised (the last step of ``evaluate --sanity``'s cascade), on the first
  ``--sanity-clips`` clips; near 0 = the maps depend on what the model learnt.

Model-free keyframe baselines: uniform sampling (3 evenly spaced frames) and motion-energy peaks
(mean absolute frame difference, top 3 with the same min gap; its pointing uses the largest pixel
difference; its deletion order is by motion energy). Model-based baseline: temporal occlusion
(``evaluate --occlusion``): each frame's importance is the target's drop when the 5 frames around
it are made neutral; keyframes by the CAM keyframes' rule on it, deletion order by it; no map, so
no pointing.

    python benchmarks/explanation_quality.py [--clips 20] [--quick] [--methods gradcam,scorecam]
        [--sanity-clips 5]
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

SEED_START = 4_000_000
TOPK = 3
MIN_GAP_S = 0.5
OCCLUSION_RUN = 5


def inside_box(point_yx: tuple[int, int], box: np.ndarray) -> bool:
    y, x = point_yx
    x0, y0, x1, y1 = (int(v) for v in box)
    return x0 >= 0 and x0 <= x < x1 and y0 <= y < y1


@dataclass(frozen=True)
class ClipContext:
    """What scoring a clip's keyframes needs."""

    times: np.ndarray
    start_s: float
    end_s: float
    boxes: np.ndarray
    scorer: Any
    reference: float


def record(
    stats: dict[str, list[float]],
    ctx: ClipContext,
    keys: np.ndarray,
    points: list[tuple[int, int]] | None,
    order: np.ndarray | None,
    seconds: float,
) -> None:
    """Add one clip's hit@3, pointing hits, deletion AUC and time to ``stats``."""
    from videocam.evaluate import deletion_curve, normalised_auc

    inside = (ctx.times[keys] >= ctx.start_s) & (ctx.times[keys] < ctx.end_s)
    stats["hit"].append(float(np.mean(inside)) if len(keys) else 0.0)
    if points is not None:  # uniform sampling points at nothing
        stats["point"].extend(
            float(inside_box(p, ctx.boxes[k]))
            for k, p, hit in zip(keys, points, inside, strict=True)
            if hit and ctx.boxes[k, 0] >= 0
        )
    if order is not None:
        stats["del"].append(normalised_auc(deletion_curve(order, ctx.scorer), ctx.reference))
    stats["seconds"].append(seconds)


def clip_specs(n: int) -> list[Any]:
    from videocam.synthetic import EVENT_CLASSES, random_event_spec

    return [
        random_event_spec(SEED_START + i, EVENT_CLASSES[1 + i % 4], max_frames=200)
        for i in range(n)
    ]


def main() -> None:
    from videocam.analysis import run_analysis, run_analysis_keeping_frames
    from videocam.cam import METHODS
    from videocam.config import AnalyzeConfig
    from videocam.evaluate import (
        TargetScorer,
        deletion_curve,
        normalised_auc,
        order_by_attribution,
    )
    from videocam.evaluate.occlusion import occlusion_importance, occlusion_keyframes
    from videocam.evaluate.sanity import cascade, randomisation_steps, spearman
    from videocam.models import load_model
    from videocam.scoring import resize_bilinear, select_keyframes
    from videocam.synthetic import make_clip, render_clip

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="4 clips")
    parser.add_argument("--random-seeds", type=int, default=3)
    parser.add_argument("--json", default="benchmarks/results/explanation_quality.json")
    parser.add_argument(
        "--sanity-clips", type=int, default=5, help="clips the sanity figure is measured on"
    )
    parser.add_argument(
        "--methods", default=",".join(METHODS), help="CAM methods, comma-separated (default: all)"
    )
    args = parser.parse_args()
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        parser.error(f"--methods: unknown {', '.join(unknown)}; known: {', '.join(METHODS)}")
    n_clips = 4 if args.quick else args.clips

    loaded = load_model("videocam_tiny", device="cpu")
    *_, randomised = cascade(loaded, randomisation_steps(loaded.module))  # every block random
    base = AnalyzeConfig(
        model="videocam_tiny", topk=TOPK, min_gap=MIN_GAP_S, keyframe_floor=0.0, render=False
    )
    per_method: dict[str, dict[str, list[float]]] = {
        name: {"hit": [], "point": [], "del": [], "seconds": [], "sanity": []}
        for name in (*methods, "occlusion", "uniform", "motion energy")
    }
    random_aucs: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, spec in enumerate(clip_specs(n_clips)):
            clip = make_clip(Path(tmp) / f"clip{i}.mp4", spec)
            start_s, end_s = clip.event_interval_s or (0.0, 0.0)
            label = clip.truth.label
            boxes = clip.truth.boxes
            times = clip.times_s
            n = spec.n_frames
            config = base.replace(target=label)
            # The frames the analysis fed the model, for re-scoring (the same for every method).
            first, frames = run_analysis_keeping_frames(clip.path, loaded, config)
            batch = first.summary["windows"]["batch_size"]
            scorer = TargetScorer(loaded, frames, label, batch=batch)
            reference = scorer(np.ones(n, dtype=bool))
            rng = np.random.default_rng(0)
            clip_random = [
                normalised_auc(deletion_curve(rng.permutation(n), scorer), reference)
                for _ in range(args.random_seeds)
            ]
            random_aucs.append(float(np.mean(clip_random)))

            ctx = ClipContext(times, start_s, end_s, boxes, scorer, reference)

            for method in methods:
                t0 = time.perf_counter()
                analysis = run_analysis(clip.path, loaded, config.replace(method=method))
                seconds = time.perf_counter() - t0
                keys = analysis.keyframes.frame_index.to_numpy()
                points = []
                for k in keys:
                    up = resize_bilinear(analysis.cams[k].astype(np.float32), spec.size)
                    points.append(np.unravel_index(int(np.argmax(up)), up.shape))
                order = order_by_attribution(analysis.frames.attribution.to_numpy())
                record(per_method[method], ctx, keys, points, order, seconds)
                if i < args.sanity_clips:
                    random_maps = run_analysis(clip.path, randomised, config.replace(method=method))
                    per_method[method]["sanity"].append(spearman(random_maps.cams, analysis.cams))

            t0 = time.perf_counter()
            importance = occlusion_importance(scorer.score_all, n, OCCLUSION_RUN)
            keys = occlusion_keyframes(
                importance,
                times,
                first.frames.target_score.to_numpy(),
                topk=TOPK,
                min_gap_s=MIN_GAP_S,
                keyframe_floor=base.keyframe_floor,
                evidence_floor=base.evidence_floor,
                evidence_ratio=base.evidence_ratio,
            )
            order = order_by_attribution(importance)
            seconds = time.perf_counter() - t0 + first.summary["timings_s"]["analysis_s"]
            record(per_method["occlusion"], ctx, keys, None, order, seconds)

            # Baselines on the original frames (no model).
            original, _ = render_clip(spec)
            t0 = time.perf_counter()
            uniform = ((np.arange(TOPK) + 0.5) * n / TOPK).astype(np.int64)
            record(per_method["uniform"], ctx, uniform, None, None, time.perf_counter() - t0)
            t0 = time.perf_counter()
            diff = np.abs(np.diff(original.astype(np.int16), axis=0)).sum(axis=3)
            diff = np.concatenate([diff[:1], diff])  # frame 0 takes frame 1's difference
            energy = diff.reshape(n, -1).mean(axis=1)
            keys = select_keyframes(energy, times, TOPK, MIN_GAP_S)
            points = [np.unravel_index(int(np.argmax(diff[k])), diff[k].shape) for k in keys]
            record(
                per_method["motion energy"],
                ctx,
                keys,
                points,
                order_by_attribution(energy),
                time.perf_counter() - t0,
            )
            print(
                f"clip {i + 1}/{n_clips}: {spec.event}, random deletion AUC {random_aucs[-1]:.3f}",
                flush=True,
            )
            frames.close()

    rows = []
    for name, stats in per_method.items():
        rows.append(
            {
                "method": name,
                "hit_at_3": float(np.mean(stats["hit"])),
                "pointing": float(np.mean(stats["point"])) if stats["point"] else None,
                "deletion_auc": float(np.mean(stats["del"])) if stats["del"] else None,
                "deletion_auc_random": float(np.mean(random_aucs)),
                "seconds_per_video": float(np.mean(stats["seconds"])),
                "sanity_rank_corr": float(np.mean(stats["sanity"])) if stats["sanity"] else None,
            }
        )
    header = (
        f"{'method':14s} {'hit@3':>6s} {'pointing':>9s} {'del AUC':>8s} {'random':>7s} "
        f"{'s/video':>8s} {'sanity':>7s}"
    )
    print("\n" + header)
    for r in rows:
        point = "-" if r["pointing"] is None else f"{r['pointing']:.3f}"
        dele = "-" if r["deletion_auc"] is None else f"{r['deletion_auc']:.3f}"
        sanity = "-" if r["sanity_rank_corr"] is None else f"{r['sanity_rank_corr']:.3f}"
        print(
            f"{r['method']:14s} {r['hit_at_3']:6.3f} {point:>9s} {dele:>8s} "
            f"{r['deletion_auc_random']:7.3f} {r['seconds_per_video']:8.3f} {sanity:>7s}"
        )
    result = {
        "clips": n_clips,
        "seeds": [SEED_START, SEED_START + n_clips - 1],
        "topk": TOPK,
        "min_gap_s": MIN_GAP_S,
        "occlusion_run": OCCLUSION_RUN,
        "sanity_clips": min(args.sanity_clips, n_clips),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average": os.getloadavg(),
        },
        "rows": rows,
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
