"""Keyframe hit rate of the bundled model on held-out synthetic event clips.

For each clip (seeds >= 3,000,000: never used in training or validation) with one event at a
random time, ``videocam.analyze`` runs with ``videocam_tiny`` and ``--target auto``; a keyframe is a
hit when its time falls inside the known event interval. Prints a table and writes JSON.

    python benchmarks/keyframe_hits.py [--clips 20] [--method gradcam]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

SEED_START = 3_000_000


def main() -> None:
    from videocam.analysis import analyze
    from videocam.models import load_model
    from videocam.synthetic import EVENT_CLASSES, make_clip, random_event_spec

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=20)
    parser.add_argument("--method", default="gradcam")
    parser.add_argument("--topk", type=int, default=5)
    parser.add_argument("--min-gap", type=float, default=0.5)
    parser.add_argument("--json", default="benchmarks/results/keyframe_hits.json")
    args = parser.parse_args()

    model = load_model("videocam_tiny", device="cpu")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.clips):
            spec = random_event_spec(SEED_START + i, EVENT_CLASSES[1 + i % 4], max_frames=240)
            clip = make_clip(Path(tmp) / f"clip{i}.mp4", spec)
            start_s, end_s = clip.event_interval_s or (0.0, 0.0)
            t0 = time.perf_counter()
            result = analyze(
                clip.path,
                model,
                render=False,
                method=args.method,
                topk=args.topk,
                min_gap=args.min_gap,
            )
            seconds = time.perf_counter() - t0
            times = result.keyframes.time_s.to_numpy()
            hits = int(((times >= start_s) & (times < end_s)).sum())
            rows.append(
                {
                    "seed": spec.seed,
                    "event": spec.event,
                    "explained": result.target[1],
                    "n_frames": spec.n_frames,
                    "event_s": [round(start_s, 3), round(end_s, 3)],
                    "keyframes": len(times),
                    "hits": hits,
                    "top1_hit": bool(len(times) and start_s <= times[0] < end_s),
                    "seconds": round(seconds, 3),
                }
            )
            print(rows[-1], flush=True)
    n_key = sum(r["keyframes"] for r in rows)
    summary = {
        "clips": len(rows),
        "method": args.method,
        "topk": args.topk,
        "min_gap": args.min_gap,
        "keyframe_hit_rate": sum(r["hits"] for r in rows) / max(1, n_key),
        "top1_hit_rate": sum(r["top1_hit"] for r in rows) / max(1, len(rows)),
        "class_correct": sum(r["event"] == r["explained"] for r in rows) / max(1, len(rows)),
        "mean_keyframes": n_key / max(1, len(rows)),
        "mean_seconds_per_clip": float(np.mean([r["seconds"] for r in rows])),
    }
    print("\n" + "\n".join(f"{k:24s} {v}" for k, v in summary.items()))
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"summary": summary, "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
