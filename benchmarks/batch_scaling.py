"""Speed-up of ``videocam batch`` from 1 to 2 workers, local engine and Ray engine, in one run.

Makes synthetic clips, then runs ``videocam batch`` (a fresh process each time, as a user would)
over them with ``--engine local`` and ``--engine ray`` (a local Ray started by the batch), 1 and
2 workers, bundled model, ``--no-render``. The four cases are interleaved (the order rotates
each round) so that other work on a shared machine hits them alike; the table gives medians,
and the JSON every run with the load average before it.

    python benchmarks/batch_scaling.py               # 8 clips of 60 s, 3 rounds
    python benchmarks/batch_scaling.py --quick       # 4 clips of 8 s, 1 round

Each case runs twice: with the cores shared out among the workers (what the engines do by
default: 1 worker = 2 torch threads on 2 cores) and with one torch thread per worker
(``OMP_NUM_THREADS=1``), which isolates the gain of a second worker from that of threads.

Wall time includes start-up: the local engine spawns worker processes that import torch and
load the model; the Ray engine also starts a local Ray (a few seconds) before its actors do the
same. "work" is the sum of the videos' own analysis seconds (index.csv).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

#: (engine, workers, torch threads per worker: "shared" = the engine shares the cores out).
CASES = [
    (engine, workers, threads)
    for threads in ("shared", "1")
    for engine in ("local", "ray")
    for workers in (1, 2)
]
RESULTS = Path(__file__).resolve().parent / "results" / "batch_scaling.json"


def make_inputs(folder: Path, n_clips: int, n_frames: int) -> None:
    from videocam.synthetic import make_clip

    folder.mkdir(parents=True, exist_ok=True)
    events = ["grow", "move_right", "move_left", "shrink"]
    for i in range(n_clips):
        make_clip(
            folder / f"clip{i}.mp4",
            n_frames=n_frames,
            size=(180, 320),
            event=events[i % len(events)],
            seed=100 + i,
        )


def run_case(inputs: Path, out: Path, engine: str, workers: int, threads: str) -> dict[str, Any]:
    import pandas as pd

    command = [sys.executable, "-m", "videocam", "batch", str(inputs), "-o", str(out)]
    command += ["--engine", engine, "--workers", str(workers), "--no-render", "--quiet"]
    command += ["--device", "cpu"]
    env = {**os.environ, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
    env.pop("OMP_NUM_THREADS", None)  # "shared": each engine shares the cores out itself
    if threads != "shared":
        env["OMP_NUM_THREADS"] = threads
    env.pop("RAY_ADDRESS", None)  # a local Ray, started by the batch
    load = os.getloadavg()[0]
    started = time.perf_counter()
    code = subprocess.run(command, env=env, check=False).returncode
    wall = time.perf_counter() - started
    if code != 0:
        raise RuntimeError(f"{' '.join(command)} exited {code}")
    index = pd.read_csv(out / "index.csv")
    batch = json.loads((out / "batch.json").read_text())
    return {
        "engine": engine,
        "workers": workers,
        "threads": threads,
        "wall_s": round(wall, 3),
        "batch_s": batch["seconds"],
        "work_s": round(float(index.seconds.sum()), 3),
        "videos": len(index),
        "load_avg_1m_before": round(load, 2),
    }


def _threads(row: dict[str, Any]) -> str:
    if row["threads"] != "shared":
        return str(row["threads"])
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{max(1, (cores or 1) // int(row['workers']))} (cores shared out)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each clip")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="4 clips of 8 s, 1 round")
    args = parser.parse_args()
    if args.quick:
        args.clips, args.seconds, args.rounds = 4, 8.0, 1
    n_frames = round(args.seconds * 25)

    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="batch_scaling_") as tmp:
        inputs = Path(tmp) / "in"
        make_inputs(inputs, args.clips, n_frames)
        for round_index in range(args.rounds):
            shift = round_index % len(CASES)
            for engine, workers, threads in CASES[shift:] + CASES[:shift]:
                out = Path(tmp) / f"out-{round_index}-{engine}-{workers}-{threads}"
                run = run_case(inputs, out, engine, workers, threads)
                run["round"] = round_index
                runs.append(run)
                print(
                    f"round {round_index}: {engine} x{workers} threads {threads}: "
                    f"{run['wall_s']:.1f} s "
                    f"(load {run['load_avg_1m_before']})",
                    file=sys.stderr,
                )

    table: list[dict[str, Any]] = []
    for engine, workers, threads in CASES:
        mine = [
            r
            for r in runs
            if (r["engine"], r["workers"], r["threads"]) == (engine, workers, threads)
        ]
        walls = [float(r["wall_s"]) for r in mine]
        table.append(
            {
                "engine": engine,
                "workers": workers,
                "threads": threads,
                "wall_s_median": round(statistics.median(walls), 2),
                "wall_s_min": round(min(walls), 2),
                "wall_s_max": round(max(walls), 2),
                "work_s_median": round(
                    statistics.median(float(r["work_s"]) for r in mine),
                    2,
                ),
            }
        )
    for row in table:
        one = next(
            r
            for r in table
            if (r["engine"], r["threads"], r["workers"]) == (row["engine"], row["threads"], 1)
        )
        row["speedup_vs_1"] = round(float(one["wall_s_median"]) / float(row["wall_s_median"]), 2)

    loads = [float(r["load_avg_1m_before"]) for r in runs]
    header = (
        "| engine | workers | threads/worker | wall s, median (min-max) | speed-up vs 1 "
        "| work s, median |"
    )
    print(f"{args.clips} clips x {args.seconds:g} s (180x320, 25 fps), bundled model, --no-render")
    print(header)
    print("|---|---|---|---|---|---|")
    for row in table:
        print(
            f"| {row['engine']} | {row['workers']} | {_threads(row)} | {row['wall_s_median']:.1f} "
            f"({row['wall_s_min']:.1f}-{row['wall_s_max']:.1f}) | "
            f"{row['speedup_vs_1']:.2f}x | {row['work_s_median']:.1f} |"
        )
    print(
        f"load average (1 min) before the runs: median {statistics.median(loads):.2f}, "
        f"{min(loads):.2f}-{max(loads):.2f}; {os.cpu_count()} cores"
    )

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "clips": args.clips,
        "clip_seconds": args.seconds,
        "clip_size": [180, 320],
        "rounds": args.rounds,
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "load_avg_1m": {
            "median": statistics.median(loads),
            "min": min(loads),
            "max": max(loads),
        },
        "table": table,
        "runs": runs,
    }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS}", file=sys.stderr)


if __name__ == "__main__":
    main()
