"""Peak resident memory of streaming a whole video, 1-minute against 8-minute input.

Each measurement runs in a fresh process (so peaks don't mix) that streams every frame through
``FrameSource.iter_batches`` and reports its own peak RSS. For comparison it also measures the
naive use of decord (native-size ``get_batch`` chunks), which grows with video length on real
footage (decord issues #197/#208).

    python benchmarks/decode_memory.py            # 640x360 @ 25 fps, 1 and 8 minutes
    python benchmarks/decode_memory.py --quick    # 10 s and 80 s, same ratio
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASES = [
    # (label, backend, size); size None = native
    ("decord resized 112x112", "decord", (112, 112)),
    ("decord native", "decord", None),
    ("pyav resized 112x112", "pyav", (112, 112)),
    ("pyav native", "pyav", None),
    ("naive decord get_batch native (not used)", "naive", None),
]


def child(path: str, backend: str, size: str) -> None:
    """Stream the whole video; print frames, seconds and peak RSS as JSON."""
    import numpy as np

    start = time.perf_counter()
    n = 0
    checksum = 0
    if backend == "naive":
        import decord

        reader = decord.VideoReader(path)
        for lo in range(0, len(reader), 32):
            frames = reader.get_batch(list(range(lo, min(lo + 32, len(reader))))).asnumpy()
            n += len(frames)
            checksum += int(frames[:, 0, 0, 0].sum())
    else:
        from videocam.io import open_video

        hw = None if size == "native" else tuple(int(v) for v in size.split("x"))
        with open_video(path, backend) as source:
            for batch in source.iter_batches(size=hw, batch_size=32):  # type: ignore[arg-type]
                n += len(batch)
                checksum += int(np.asarray(batch.frames[:, 0, 0, 0]).sum())
    seconds = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"frames": n, "seconds": seconds, "peak_rss_mb": peak_kb / 1024}))


def make_video(path: Path, seconds: int, size: tuple[int, int], fps: int) -> None:
    from videocam.synthetic import ClipSpec, iter_frames, write_frames

    spec = ClipSpec(n_frames=seconds * fps, size=size, fps=fps, seed=7, event=None, barcode=True)
    write_frames(path, iter_frames(spec), fps, preset="ultrafast", gop=50)


def measure(path: Path, backend: str, size: tuple[int, int] | None) -> dict[str, float]:
    arg = "native" if size is None else f"{size[0]}x{size[1]}"
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(path), backend, arg],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="10 s and 80 s videos")
    parser.add_argument("--json", default="benchmarks/results/decode_memory.json")
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    short_s, long_s = (10, 80) if args.quick else (60, 480)
    size, fps = (360, 640), 25
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        videos = {}
        for seconds in (short_s, long_s):
            path = Path(tmp) / f"video_{seconds}s.mp4"
            t0 = time.perf_counter()
            make_video(path, seconds, size, fps)
            print(f"made {path.name} ({seconds} s) in {time.perf_counter() - t0:.0f} s", flush=True)
            videos[seconds] = path
        for label, backend, hw in CASES:
            short = measure(videos[short_s], backend, hw)
            long = measure(videos[long_s], backend, hw)
            rows.append(
                {
                    "case": label,
                    "short_peak_rss_mb": round(short["peak_rss_mb"], 1),
                    "long_peak_rss_mb": round(long["peak_rss_mb"], 1),
                    "ratio": round(long["peak_rss_mb"] / short["peak_rss_mb"], 3),
                    "long_fps": round(long["frames"] / long["seconds"], 1),
                }
            )
            print(rows[-1], flush=True)
    short_h, long_h = f"{short_s}s RSS MB", f"{long_s}s RSS MB"
    header = f"{'case':42s} {short_h:>12s} {long_h:>12s} {'ratio':>6s} {'frames/s':>9s}"
    print("\n" + header)
    for r in rows:
        print(
            f"{r['case']:42s} {r['short_peak_rss_mb']:12.1f} {r['long_peak_rss_mb']:12.1f} "
            f"{r['ratio']:6.3f} {r['long_fps']:9.1f}"
        )
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    result = {
        "video": {"size": list(size), "fps": fps, "short_s": short_s, "long_s": long_s},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "rows": rows,
    }
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
