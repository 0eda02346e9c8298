"""What ``--tracks 5`` costs: ``videocam analyze --no-render`` with and without it, on the
bundled model and on ``r3d_18``.

Both run through the CLI's own ``main`` in this process (model loading, decoding, the single
pass, scoring, files), interleaved in each repeat, alternating which goes first; the ratio is the
median of the per-repeat ratios. Inputs are synthetic 640x360 H.264 clips made here.

    python benchmarks/tracks_overhead.py [--repeats 5] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

CASES = [
    # (model, weights, seconds of video)
    ("videocam_tiny", "DEFAULT", 60.0),
    ("r3d_18", "none", 10.0),
]


def _video(path: Path, seconds: float) -> Path:
    from videocam.synthetic import ClipSpec, iter_frames, write_frames

    n_frames = round(seconds * 25)
    spec = ClipSpec(
        n_frames=n_frames, size=(360, 640), seed=7, event="move_right", event_start=n_frames // 3
    )
    return write_frames(path, iter_frames(spec), 25, preset="ultrafast", gop=50)


def _timed(argv: list[str]) -> float:
    from videocam.cli import main

    started = time.perf_counter()
    if main(argv) != 0:
        raise RuntimeError(f"videocam {' '.join(argv)} failed")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", default="benchmarks/results/tracks_overhead.json")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for model, weights, seconds in CASES:
            video = _video(Path(tmp) / f"{model}.mp4", seconds)
            base = ["analyze", str(video), "--no-render", "--quiet", "--device", "cpu"]
            base += ["--model", model, "--weights", weights]
            plain = [*base, "-o", str(Path(tmp) / "plain")]
            tracked = [*base, "-o", str(Path(tmp) / "tracks"), "--tracks", "5"]
            _timed(plain)  # warm-up
            _timed(tracked)
            times: dict[str, list[float]] = {"plain": [], "tracks": []}
            for repeat in range(args.repeats):
                order = [("plain", plain), ("tracks", tracked)]
                for name, argv in order if repeat % 2 == 0 else order[::-1]:
                    times[name].append(_timed(argv))
            ratios = [t / p for t, p in zip(times["tracks"], times["plain"], strict=True)]
            row = {
                "model": model,
                "video_s": seconds,
                "plain_s": statistics.median(times["plain"]),
                "tracks_s": statistics.median(times["tracks"]),
                "tracks_over_plain": statistics.median(ratios),
                "times": times,
            }
            rows.append(row)
            print(
                f"{model:14s} {seconds:5.0f} s video: plain {row['plain_s']:.2f} s, "
                f"--tracks 5 {row['tracks_s']:.2f} s, ratio {row['tracks_over_plain']:.3f}",
                flush=True,
            )
    result = {
        "repeats": args.repeats,
        "rows": rows,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average": os.getloadavg(),
        },
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
