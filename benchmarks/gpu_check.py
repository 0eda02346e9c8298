"""The one device check: on a machine with a CUDA GPU, does the CUDA path work, stay free of
host synchronisations in its steady state, and how fast is it?

One command, nothing installed beyond ``.[dev]``, under 8 minutes on one GPU:

1. the GPU-marked tests (``pytest -m gpu``: CPU agreement with TF32 off, no host
   synchronisation per batch under ``torch.cuda.set_sync_debug_mode("error")``, a bad class
   index is an error and not a device-side assert);
2. ``videocam_tiny`` (bundled weights), ``r3d_18`` and ``mvit_v2_s`` (``--weights none``) on a
   synthetic 640x360 clip, each on a preloaded model: clips/s, the analysis ÷ forward-only over
   the same windows and batch size, peak GPU memory, and the host synchronisations counted in
   ``set_sync_debug_mode("warn")`` on a clip and on one twice as long (equal counts: none per
   batch);
3. EigenCAM's batched SVD ÷ the forward it explains (``r3d_18``), to decide whether it needs a
   Gram-matrix eigendecomposition on the GPU;
4. ``benchmarks/run.py --device cuda --quick --only throughput`` (written to ``bench-out/``).

It prints one table (pass / fail per check) and writes ``bench-out/gpu_check.json``.

    python benchmarks/gpu_check.py [--skip-tests] [--skip-run]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
ROOT = Path(__file__).resolve().parents[1]
MODELS = [("videocam_tiny", "DEFAULT"), ("r3d_18", "none"), ("mvit_v2_s", "none")]


def _clip(path: Path, seconds: float) -> Path:
    from videocam.synthetic import ClipSpec, iter_frames, write_frames

    n = round(seconds * 25)
    spec = ClipSpec(n_frames=n, size=(360, 640), seed=7, event="move_right", event_start=n // 3)
    return write_frames(path, iter_frames(spec), 25, preset="ultrafast", gop=50)


def _forward_only(loaded: Any, video: Path, batch: int) -> float:
    """Seconds of the model's forward over every window of ``video`` (decoded beforehand)."""
    import torch

    from videocam.analysis import window_plan
    from videocam.config import AnalyzeConfig
    from videocam.io import open_video
    from videocam.runtime import model_input

    with open_video(video) as source:
        frames = source.read(range(source.meta.n_frames), size=loaded.preprocess.size)
    plan = window_plan(loaded, AnalyzeConfig(), len(frames))
    torch.cuda.synchronize()
    started = time.perf_counter()
    with torch.inference_mode():
        for start in range(0, len(plan), batch):
            loaded.module(model_input(loaded, frames[plan[start : start + batch]]))
    torch.cuda.synchronize()
    return time.perf_counter() - started


def _syncs(loaded: Any, video: Path, config: Any) -> int:
    """Host synchronisations ``set_sync_debug_mode("warn")`` reports during one analysis."""
    import torch

    from videocam.analysis import run_analysis

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            run_analysis(video, loaded, config)
        finally:
            torch.cuda.set_sync_debug_mode(0)
    return sum("synchroniz" in str(w.message) for w in caught)


def check_model(name: str, weights: str, short: Path, long: Path) -> dict[str, Any]:
    import torch

    from videocam.analysis import run_analysis
    from videocam.config import AnalyzeConfig
    from videocam.models import load_model

    torch.manual_seed(0)
    loaded = load_model(name, weights=weights, device="cuda")
    config = AnalyzeConfig(model=name, weights=weights, device="cuda", render=False)
    warm = run_analysis(short, loaded, config)  # probe, caches, cuDNN autotuning
    batch = int(warm.summary["windows"]["batch_size"])
    config = config.replace(batch_size=batch)
    torch.cuda.reset_peak_memory_stats()
    torch.cuda.synchronize()
    started = time.perf_counter()
    analysis = run_analysis(long, loaded, config)
    torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    peak_mb = torch.cuda.max_memory_allocated() / 2**20
    limit = _forward_only(loaded, long, batch)
    syncs_short, syncs_long = _syncs(loaded, short, config), _syncs(loaded, long, config)
    n_windows = int(analysis.summary["windows"]["n_windows"])
    return {
        "check": f"analyze {name}",
        "ok": syncs_short == syncs_long,
        "clips_per_s": n_windows / seconds,
        "over_forward": seconds / limit,
        "peak_gpu_mb": peak_mb,
        "batch": batch,
        "syncs": f"{syncs_short} / {syncs_long}",
    }


def check_eigencam() -> dict[str, Any]:
    import torch

    from videocam.cam import compute_cam
    from videocam.models import load_model

    loaded = load_model("r3d_18", weights="none", device="cuda")
    x = torch.randn(8, 3, 16, 112, 112, device="cuda")
    times = {}
    for what in ("forward", "eigencam", "gradcam"):
        for repeat in range(3):
            torch.cuda.synchronize()
            started = time.perf_counter()
            if what == "forward":
                with torch.inference_mode():
                    loaded.module(x)
            else:
                compute_cam(loaded.module, x, loaded.layer, None, what)
            torch.cuda.synchronize()
            if repeat:  # the first is a warm-up
                times[what] = min(times.get(what, 1e9), time.perf_counter() - started)
    return {
        "check": "eigencam ÷ forward (r3d_18, 8 windows)",
        "ok": True,
        "over_forward": times["eigencam"] / times["forward"],
        "note": f"gradcam ÷ forward {times['gradcam'] / times['forward']:.2f}",
    }


def run_subprocess(check: str, argv: list[str], timeout_s: int) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=timeout_s)
        ok = done.returncode == 0
        tail = (done.stdout + done.stderr).strip().splitlines()[-1:] or [""]
    except subprocess.TimeoutExpired:
        ok, tail = False, [f"timed out after {timeout_s} s"]
    return {"check": check, "ok": ok, "seconds": time.perf_counter() - started, "note": tail[0]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-tests", action="store_true")
    parser.add_argument("--skip-run", action="store_true")
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        print("gpu_check: no CUDA device here", file=sys.stderr)
        return 2
    rows: list[dict[str, Any]] = [
        {
            "check": "device",
            "ok": True,
            "note": f"{torch.cuda.get_device_name()}, torch {torch.__version__}, "
            f"CUDA {torch.version.cuda}",
        }
    ]
    if not args.skip_tests:
        pytest = [sys.executable, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider"]
        rows.append(run_subprocess("pytest -m gpu", pytest, 240))
    with tempfile.TemporaryDirectory() as tmp:
        short, long = _clip(Path(tmp) / "short.mp4", 4), _clip(Path(tmp) / "long.mp4", 8)
        for name, weights in MODELS:
            try:
                rows.append(check_model(name, weights, short, long))
            except Exception as exc:  # noqa: BLE001 - one model's failure must not hide the others'
                rows.append({"check": f"analyze {name}", "ok": False, "note": repr(exc)[:120]})
    rows.append(check_eigencam())
    if not args.skip_run:
        run = [sys.executable, "benchmarks/run.py", "--device", "cuda", "--quick"]
        rows.append(run_subprocess("run.py --quick", [*run, "--only", "throughput"], 300))
    header = ("check", "ok", "clips/s", "÷ fwd", "GPU MB", "syncs")
    print("\n{:42s} {:4s} {:>8s} {:>6s} {:>7s} {:>7s}  note".format(*header))
    for r in rows:
        clips = f"{r['clips_per_s']:.1f}" if "clips_per_s" in r else ""
        ratio = f"{r['over_forward']:.2f}" if "over_forward" in r else ""
        memory = f"{r['peak_gpu_mb']:.0f}" if "peak_gpu_mb" in r else ""
        print(
            f"{r['check']:42s} {'yes' if r['ok'] else 'NO':4s} {clips:>8s} {ratio:>6s} "
            f"{memory:>7s} {r.get('syncs', ''):>7s}  {r.get('note', '')}"
        )
    out = ROOT / "bench-out" / "gpu_check.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(rows, indent=2, default=str) + "\n")
    print(f"wrote {out}")
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
