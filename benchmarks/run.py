"""End to end: `videocam analyze` against the limit, pytorch-grad-cam, memory and rendering.

One run, one table per section, one JSON file (default ``benchmarks/results/run_<device>.json``):

- **throughput**: per case, ``videocam analyze --no-render`` (in-process, through the CLI's own
  ``main``, so it includes loading the model, decoding, the CAM pass, scoring and writing the
  files) against two loops written here over the *same windows*: the **limit** (decord decodes
  resized to the model's input, every frame normalised once, forward only under
  ``torch.inference_mode``, the same batch size) and what a user does today (the same decoding,
  then pytorch-grad-cam's ``GradCAM`` called on each batch of windows, targets None). After a
  warm-up of each, the three run interleaved in every repeat, in alternating order (cases whose
  limit takes under 5 s get three times the repeats); ratios are medians of the per-repeat
  ratios, so a burst of load on a shared machine hits both terms of a ratio. Peak resident
  memory of each case comes from one more ``analyze`` run in a fresh process; the share of
  videocam's CPU time spent in the kernel and its page faults per frame from ``getrusage``.
  Per-frame models on a real clip run with a named target and with ``auto``. ``--load N``
  starts N CPU-bound processes that compete for the cores meanwhile.
- **memory**: peak RSS of ``analyze`` on a 1-minute and an 8-minute video, each in a fresh
  process, with and without rendering; and of ``evaluate --steps 2`` on the same lengths at
  160x96.
- **policy**: whole ``analyze --no-render`` processes with ``OMP_WAIT_POLICY`` PASSIVE
  (videocam's default) and ACTIVE (OpenMP's), idle and with one CPU-bound process competing.
- **render**: frames/s of the render pass (the annotated clip at source resolution) against
  PyAV decoding and re-encoding the same video and nothing else: with the annotated clip's
  libx264 settings, and with PyAV's defaults; wall and CPU seconds, at least 5 interleaved
  repeats.

Inputs are made here (synthetic 640x360 H.264 at 25 fps); real footage from
``../shared/data/videos`` is added when that folder exists. Weights: ``videocam_tiny`` uses its
bundled weights, torchvision models random ones (``--weights none``): cost does not depend on
them.

    python benchmarks/run.py                    # CPU, everything (about 25 minutes on 2 cores)
    python benchmarks/run.py --quick            # short inputs, 1 repeat: a smoke run
    python benchmarks/run.py --only throughput  # one section (throughput, memory, render)
    python benchmarks/run.py --only memory --long  # 1 against 60 minutes at 30 fps
    python benchmarks/run.py --only throughput --load 1 \
        --json benchmarks/results/run_cpu_loaded.json  # one CPU-bound process competing
    python benchmarks/run.py --only policy      # OMP_WAIT_POLICY PASSIVE / ACTIVE, idle / loaded
    python benchmarks/run.py --device cuda      # GPU: r3d_18, r2plus1d_18, mvit_v2_s at native
                                                # sizes: clips/s and peak GPU memory
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import functools
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REAL_VIDEOS = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "videos"
SECTIONS = ("throughput", "memory", "render", "policy")
#: Cases whose limit takes less than this many seconds get three times the repeats.
_SHORT_CASE_S = 5.0


@dataclass(frozen=True)
class Case:
    """One throughput case: a model on a video, with what it is meant to show."""

    name: str
    model: str
    weights: str
    video: Path
    bound: str  # "model" or "decode": which cost dominates
    pgc: bool = True  # run the pytorch-grad-cam loop
    target: str = "auto"  # videocam's --target


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved timed repeats")
    parser.add_argument("--quick", action="store_true", help="short inputs and 1 repeat")
    parser.add_argument("--only", choices=SECTIONS, action="append", help="run these sections")
    parser.add_argument("--cases", help="comma-separated throughput case names to run")
    parser.add_argument(
        "--long",
        action="store_true",
        help="memory: 1 against 60 minutes at 30 fps, 160x96, and a batch worker",
    )
    parser.add_argument(
        "--json",
        type=Path,
        help="output (default benchmarks/results/run_DEV.json; with --quick bench-out/)",
    )
    parser.add_argument("--workdir", type=Path, help="keep the generated videos here")
    parser.add_argument(
        "--load",
        type=int,
        default=0,
        help="CPU-bound processes competing for the cores during the throughput section",
    )
    parser.add_argument("--child", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    return args


# -- child process: one `videocam analyze`, its peak memory ------------------------------------


def _child(argv: list[str]) -> None:
    """Run the CLI once in this (fresh) process and print its time and peak RSS as JSON."""
    from videocam.cli import main as cli_main

    start = time.perf_counter()
    code = cli_main(argv)
    seconds = time.perf_counter() - start
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # worker processes
    print(
        json.dumps(
            {
                "code": code,
                "seconds": seconds,
                "peak_rss_mb": _peak_rss_mb(),
                "children_peak_rss_mb": children,
            }
        )
    )


def _peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM).

    Not ``ru_maxrss``: after fork and exec it keeps the parent's peak at the fork, which here is
    a process holding several models.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _fresh_process(argv: list[str], policy: str | None = None) -> dict[str, Any]:
    """``videocam argv`` in a fresh process (OMP_WAIT_POLICY ``policy``, default PASSIVE)."""
    env = {**os.environ, "OMP_WAIT_POLICY": policy or os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
    out = subprocess.run(
        [sys.executable, __file__, "--child", *argv],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if result["code"] != 0:
        raise RuntimeError(f"videocam {' '.join(argv)} exited {result['code']}: {out.stderr}")
    return result


# -- inputs --------------------------------------------------------------------------------------


def _make_video(
    path: Path, seconds: float, size: tuple[int, int] = (360, 640), fps: int = 25
) -> Path:
    from videocam.synthetic import ClipSpec, iter_frames, write_frames

    if path.exists():
        return path
    n_frames = round(seconds * fps)
    spec = ClipSpec(
        n_frames=n_frames,
        size=size,
        fps=fps,  # type: ignore[arg-type]
        seed=7,
        event="move_right",
        event_start=n_frames // 3,
        event_len=min(40, max(1, n_frames // 4)),
    )
    partial = path.with_name(path.name + ".part.mp4")
    write_frames(partial, iter_frames(spec), fps, preset="ultrafast", gop=50)
    partial.replace(path)
    return path


# -- the three contenders ----------------------------------------------------------------------


class _Contenders:
    """The limit, videocam and the pytorch-grad-cam loop for one case, ready to time."""

    def __init__(self, case: Case, device: Any, out_dir: Path) -> None:
        import torch

        from videocam.analysis import window_plan
        from videocam.config import AnalyzeConfig
        from videocam.io import open_video
        from videocam.models import load_model
        from videocam.runtime import auto_batch

        self.case = case
        self.device = device
        self.out_dir = out_dir
        torch.manual_seed(0)
        self.loaded = load_model(case.model, weights=case.weights, device=str(device))
        with open_video(case.video) as source:
            self.meta = source.meta
        self.n_frames = self.meta.n_frames
        self.plan = window_plan(self.loaded, AnalyzeConfig(), self.n_frames)
        self.batch = auto_batch(self.loaded, self.plan.shape[1])
        self.pgc_model: Any = None
        if case.pgc:
            # A user's model: trainable parameters (pytorch-grad-cam backpropagates into them).
            self.pgc_model = copy.deepcopy(self.loaded.module).requires_grad_(True).eval()

    def _sync(self) -> None:
        import torch

        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def _decoded_inputs(self) -> Iterator[Any]:
        """Decode the whole video resized (decord), normalise each frame once, batch windows."""
        import decord
        import numpy as np
        import torch

        height, width = self.loaded.preprocess.size
        reader = decord.VideoReader(
            str(self.case.video), ctx=decord.cpu(0), height=height, width=width
        )
        chunks = [
            reader.get_batch(list(range(s, min(s + 64, len(reader))))).asnumpy()
            for s in range(0, len(reader), 64)
        ]
        frames = torch.from_numpy(np.concatenate(chunks))
        if self.device.type == "cuda":  # pinned and asynchronous, as videocam copies
            frames = frames.pin_memory().to(self.device, non_blocking=True)
        normalised = self.loaded.preprocess(frames)  # (n, 3, H, W)
        for start in range(0, len(self.plan), self.batch):
            rows = torch.from_numpy(self.plan[start : start + self.batch]).to(self.device)
            if self.loaded.kind == "frame":
                yield normalised[rows[:, 0]]
            else:
                yield normalised[rows].permute(0, 2, 1, 3, 4).contiguous()  # (b, 3, T, H, W)

    def limit(self) -> None:
        import torch

        with torch.inference_mode():
            for inputs in self._decoded_inputs():
                self.loaded.module(inputs)
        self._sync()

    def videocam(self) -> None:
        """``analyze --no-render`` end to end. On the CPU through the CLI's own ``main`` (model
        loading included: 1-4 % of these runs). On a GPU, where loading the model and probing
        the batch size would dominate a short clip, on the limit's preloaded model with its
        batch size (``run_analysis`` and the files, as the CLI does after loading)."""
        if self.device.type != "cuda":
            from videocam.cli import main as cli_main

            code = cli_main(self.cli_args(self.out_dir / "videocam"))
            if code != 0:
                raise RuntimeError(f"videocam analyze exited {code}")
        else:
            from videocam.analysis import run_analysis
            from videocam.config import AnalyzeConfig

            config = AnalyzeConfig(
                model=self.case.model,
                weights=self.case.weights,
                device="cuda",
                render=False,
                batch_size=self.batch,
            )
            run_analysis(self.case.video, self.loaded, config).save(self.out_dir / "videocam")
        self._sync()

    def cli_args(self, out: Path) -> list[str]:
        return [
            "analyze",
            str(self.case.video),
            "-o",
            str(out),
            "--no-render",
            "--quiet",
            "--model",
            self.case.model,
            "--weights",
            self.case.weights,
            "--device",
            self.device.type,
            "--target",
            self.case.target,
        ]

    def pytorch_grad_cam(self, max_batches: int | None = None) -> None:
        from pytorch_grad_cam import GradCAM

        layer = self.pgc_model.get_submodule(self.loaded.layer)
        with GradCAM(model=self.pgc_model, target_layers=[layer]) as cam:
            for n, inputs in enumerate(self._decoded_inputs()):
                if max_batches is not None and n >= max_batches:
                    break
                cam(input_tensor=inputs, targets=None)
        self.pgc_model.zero_grad(set_to_none=True)
        self._sync()


def _timed(fn: Callable[[], None], device: Any) -> tuple[float, float | None]:
    """(seconds, peak GPU MB or None)."""
    import torch

    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    fn()
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if cuda else None
    return seconds, peak


def _with_usage(fn: Callable[[], None], usage: list[dict[str, float]]) -> None:
    """Run ``fn``; append its CPU seconds (user + system), system seconds and minor page
    faults (this process, every thread) to ``usage``."""
    before = resource.getrusage(resource.RUSAGE_SELF)
    fn()
    after = resource.getrusage(resource.RUSAGE_SELF)
    sys_s = after.ru_stime - before.ru_stime
    usage.append(
        {
            "cpu_s": after.ru_utime - before.ru_utime + sys_s,
            "sys_s": sys_s,
            "faults": after.ru_minflt - before.ru_minflt,
        }
    )


@contextlib.contextmanager
def _competitors(n: int) -> Iterator[int]:
    """``n`` CPU-bound processes competing for the cores while the context is open."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(max(0, n))]
    try:
        yield len(procs)
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def _throughput(
    cases: list[Case], device: Any, repeats: int, workdir: Path, competing: int = 0
) -> list[dict[str, Any]]:
    rows = []
    for case in cases:
        load_before = os.getloadavg()
        contenders = _Contenders(case, device, workdir / f"out_{case.name}")
        usage: list[dict[str, float]] = []
        fns: dict[str, Callable[[], None]] = {
            "limit": contenders.limit,
            "videocam": functools.partial(_with_usage, contenders.videocam, usage),
        }
        if contenders.pgc_model is not None:
            fns["pytorch_grad_cam"] = contenders.pytorch_grad_cam
        print(
            f"[{case.name}] {case.model} on {case.video.name}: {contenders.n_frames} frames, "
            f"{len(contenders.plan)} windows of {contenders.plan.shape[1]}, "
            f"batch {contenders.batch}",
            flush=True,
        )
        # Warm-up: thread pools, allocators, and the imports of videocam's first call.
        warm_limit, _ = _timed(contenders.limit, device)
        _timed(contenders.videocam, device)
        usage.clear()
        if contenders.pgc_model is not None:
            _timed(functools.partial(contenders.pytorch_grad_cam, max_batches=1), device)
        times: dict[str, list[float]] = {key: [] for key in fns}
        gpu_peaks: dict[str, float | None] = {}
        # Short cases get more repeats: a burst of load on a shared machine lasts seconds.
        n_repeats = repeats * 3 if warm_limit < _SHORT_CASE_S else repeats
        for repeat in range(n_repeats):
            # Alternate the order, so that drift in load does not favour one contender.
            order = list(fns.items()) if repeat % 2 == 0 else list(fns.items())[::-1]
            for key, fn in order:
                seconds, peak = _timed(fn, device)
                times[key].append(seconds)
                gpu_peaks[key] = peak
            print(
                f"  repeat {repeat + 1}: "
                + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items())
                + f"  (load {os.getloadavg()[0]:.2f})",
                flush=True,
            )
        load_after = os.getloadavg()
        fresh = _fresh_process(contenders.cli_args(workdir / f"rss_{case.name}"))
        median = {key: statistics.median(values) for key, values in times.items()}

        def paired(numerator: str, denominator: str, times: dict[str, list[float]] = times) -> Any:
            if numerator not in times or denominator not in times:
                return None
            pairs = zip(times[numerator], times[denominator], strict=True)
            return statistics.median(a / b for a, b in pairs)

        n_windows = len(contenders.plan)
        rows.append(
            {
                "case": case.name,
                "bound": case.bound,
                "model": case.model,
                "weights": case.weights,
                "input": "x".join(
                    str(v)
                    for v in (
                        (contenders.plan.shape[1], *contenders.loaded.preprocess.size)
                        if contenders.loaded.kind == "video"
                        else contenders.loaded.preprocess.size
                    )
                ),
                "video": case.video.name,
                "video_size": f"{contenders.meta.width}x{contenders.meta.height}",
                "n_frames": contenders.n_frames,
                "n_windows": n_windows,
                "batch": contenders.batch,
                "videocam_s": median["videocam"],
                "limit_s": median["limit"],
                "pytorch_grad_cam_s": median.get("pytorch_grad_cam"),
                "frames_per_s": contenders.n_frames / median["videocam"],
                "clips_per_s": n_windows / median["videocam"],
                "limit_clips_per_s": n_windows / median["limit"],
                "ratio_to_limit": paired("videocam", "limit"),
                "pytorch_grad_cam_over_videocam": paired("pytorch_grad_cam", "videocam"),
                "peak_rss_mb": fresh["peak_rss_mb"],
                "peak_gpu_mb": gpu_peaks,
                "target": case.target,
                # CPU time in the kernel, and page faults, of videocam's runs (all threads).
                "kernel_share": statistics.median(u["sys_s"] / u["cpu_s"] for u in usage),
                "page_faults_per_frame": statistics.median(u["faults"] for u in usage)
                / contenders.n_frames,
                "competing_processes": competing,
                "repeats": n_repeats,
                "times_s": times,
                "load_avg_before": load_before,
                "load_avg_after": load_after,
            }
        )
        del contenders
    return rows


# -- memory: 1 minute against 8 minutes --------------------------------------------------------


def _memory(workdir: Path, quick: bool, device: Any, long: bool = False) -> list[dict[str, Any]]:
    """Peak RSS of one-minute against longer videos, each in a fresh process.

    Default: 1 and 8 minutes at 25 fps (640x360 for ``analyze``; 160x96 for ``evaluate``).
    ``long``: 1 and 60 minutes at 30 fps (108,000 frames), every case at 160x96 (per-frame
    state, not pixels, is what could grow), and a batch worker too.
    """
    fps = 30 if long else 25
    short_s, long_s = (10, 80) if quick else ((60, 3600) if long else (60, 480))
    size = (96, 160) if long else (360, 640)
    videos = {
        s: _make_video(workdir / f"memory_{s}s_{fps}fps_{size[1]}.mp4", s, size, fps)
        for s in (short_s, long_s)
    }
    common = ["--quiet", "--model", "videocam_tiny", "--device", device.type]
    cases: dict[str, Callable[[int], list[str]]] = {}
    for render in (False, True):
        name = "analyze" + ("" if render else " --no-render")
        cases[name] = lambda seconds, render=render: [
            "analyze",
            str(videos[seconds]),
            "-o",
            str(workdir / f"mem_{seconds}_{render}"),
            *common,
            *([] if render else ["--no-render"]),
        ]
    # evaluate on small frames (its per-frame state, not pixels, is what could grow).
    small = {
        s: _make_video(workdir / f"memory_small_{s}s_{fps}fps.mp4", s, (96, 160), fps)
        for s in videos
    }
    manifests = {}
    for seconds, video in small.items():
        manifests[seconds] = workdir / f"manifest_{seconds}s_{fps}fps.csv"
        manifests[seconds].write_text(f"path\n{video}\n")
    cases["evaluate --steps 2"] = lambda seconds: [
        "evaluate",
        str(manifests[seconds]),
        "-o",
        str(workdir / f"eval_{seconds}"),
        "--steps",
        "2",
        *common,
    ]
    if long:  # a batch of one video: the worker process's peak (the batch's children)
        cases["batch worker"] = lambda seconds: [
            "batch",
            str(manifests[seconds]),
            "-o",
            str(workdir / f"batch_{seconds}"),
            *common,
        ]
    rows = []
    for name, argv_of in cases.items():
        result = {}
        for seconds in videos:
            shutil.rmtree(workdir / f"batch_{seconds}", ignore_errors=True)
            shutil.rmtree(workdir / f"eval_{seconds}", ignore_errors=True)  # OUT must be empty
            result[seconds] = _fresh_process(argv_of(seconds))
            print(f"  memory {name} {seconds} s: {result[seconds]}", flush=True)
        # batch and evaluate run each video in a worker process: its peak is what grows.
        in_worker = name == "batch worker" or name.startswith("evaluate")
        key = "children_peak_rss_mb" if in_worker else "peak_rss_mb"
        rows.append(
            {
                "case": name,
                "model": "videocam_tiny",
                "fps": fps,
                "size": list(size if name.startswith("analyze") else (96, 160)),
                "short_s": short_s,
                "long_s": long_s,
                "short_peak_rss_mb": result[short_s][key],
                "long_peak_rss_mb": result[long_s][key],
                "ratio": result[long_s][key] / result[short_s][key],
                "long_frames_per_s": long_s * fps / result[long_s]["seconds"],
                "load_avg": os.getloadavg(),
            }
        )
    return rows


# -- OpenMP's wait policy, idle and loaded -----------------------------------------------------


def _policy(workdir: Path, quick: bool, repeats: int) -> list[dict[str, Any]]:
    """Whole ``analyze --no-render`` processes with OMP_WAIT_POLICY PASSIVE (what videocam sets
    when the user has not) and ACTIVE (OpenMP's default spin-waiting), on an idle machine and
    with one CPU-bound process competing: wall seconds, interleaved, alternating order."""
    video = REAL_VIDEOS.resolve() / "intel_car-detection.mp4"
    model, target = "efficientnet_lite0", "468"
    if quick or not video.exists():
        video = _make_video(workdir / "policy_10s.mp4", 10, (224, 224))
        model, target = "videocam_tiny", "auto"
    argv = [
        "analyze",
        str(video),
        "-o",
        str(workdir / "policy"),
        "--no-render",
        "--quiet",
        "--model",
        model,
        "--target",
        target,
    ]
    rows = []
    for competing in (0, 1):
        times: dict[str, list[float]] = {"PASSIVE": [], "ACTIVE": []}
        with _competitors(competing):
            for repeat in range(repeats):
                order = list(times) if repeat % 2 == 0 else list(times)[::-1]
                for policy in order:
                    times[policy].append(_fresh_process(argv, policy)["seconds"])
                print(f"  policy, {competing} competing, repeat {repeat + 1}: {times}", flush=True)
        passive, active = (statistics.median(times[p]) for p in ("PASSIVE", "ACTIVE"))
        rows.append(
            {
                "model": model,
                "video": video.name,
                "competing_processes": competing,
                "passive_s": passive,
                "active_s": active,
                "active_over_passive": active / passive,
                "times_s": times,
                "load_avg": os.getloadavg(),
            }
        )
    return rows


# -- render pass -------------------------------------------------------------------------------


def _pyav_transcode(video: Path, out: Path, options: dict[str, str] | None) -> None:
    """Decode and re-encode with libx264 and ``options`` (None: PyAV's defaults); nothing else."""
    import av

    with av.open(str(video)) as source, av.open(str(out), "w") as sink:
        in_stream = source.streams.video[0]
        in_stream.thread_type = "AUTO"
        stream: Any = sink.add_stream("libx264", rate=in_stream.average_rate)
        stream.width, stream.height = in_stream.width, in_stream.height
        stream.pix_fmt = "yuv420p"
        if options is not None:
            stream.options = dict(options)
        for frame in source.decode(in_stream):  # the decoder's own timestamps
            sink.mux(stream.encode(frame.reformat(format="yuv420p")))
        sink.mux(stream.encode(None))


def _render(videos: list[Path], repeats: int, workdir: Path) -> list[dict[str, Any]]:
    """The render pass against PyAV transcodes of the same video: with the annotated clip's
    libx264 settings, and with PyAV's defaults (what ``add_stream("libx264")`` gives). Wall and
    CPU seconds (all threads) of each, interleaved, alternating order."""
    from videocam.analysis import analyze
    from videocam.analysis.outputs import write_annotated_clip
    from videocam.render.video import ENCODER_OPTIONS

    rows = []
    for video in videos:
        analysis = analyze(video, "videocam_tiny", render=False, device="cpu")
        fns: dict[str, Callable[[], Any]] = {
            "render": functools.partial(write_annotated_clip, analysis, workdir / "annotated.mp4"),
            "transcode": functools.partial(
                _pyav_transcode, video, workdir / "same.mp4", ENCODER_OPTIONS
            ),
            "transcode_pyav_defaults": functools.partial(
                _pyav_transcode, video, workdir / "defaults.mp4", None
            ),
        }
        for fn in fns.values():  # warm-up
            fn()
        times: dict[str, list[float]] = {key: [] for key in fns}
        cpu: dict[str, list[float]] = {key: [] for key in fns}
        for repeat in range(repeats):
            order = list(fns.items()) if repeat % 2 == 0 else list(fns.items())[::-1]
            for key, fn in order:
                start, start_cpu = time.perf_counter(), time.process_time()
                fn()
                times[key].append(time.perf_counter() - start)
                cpu[key].append(time.process_time() - start_cpu)
        n = analysis.meta.n_frames
        median = {key: statistics.median(values) for key, values in times.items()}

        def ratio(a: str, b: str, t: dict[str, list[float]] = times) -> float:
            return statistics.median(x / y for x, y in zip(t[a], t[b], strict=True))

        rows.append(
            {
                "video": video.name,
                "size": f"{analysis.meta.width}x{analysis.meta.height}",
                "n_frames": n,
                "encoder_options": dict(ENCODER_OPTIONS),
                "render_frames_per_s": n / median["render"],
                "pyav_transcode_frames_per_s": n / median["transcode"],
                "pyav_defaults_transcode_frames_per_s": n / median["transcode_pyav_defaults"],
                "render_time_over_transcode": ratio("render", "transcode"),
                "render_time_over_pyav_defaults": ratio("render", "transcode_pyav_defaults"),
                "render_cpu_s": statistics.median(cpu["render"]),
                "transcode_cpu_s": statistics.median(cpu["transcode"]),
                "times_s": times,
                "cpu_s": cpu,
                "load_avg": os.getloadavg(),
            }
        )
        print(f"  render {video.name}: {rows[-1]['render_frames_per_s']:.1f} frames/s", flush=True)
    return rows


# -- tables ------------------------------------------------------------------------------------


Column = tuple[str, Callable[[dict[str, Any]], str]]


def _table(title: str, columns: list[Column], rows: list[dict[str, Any]]) -> None:
    cells = [[cell(row) for _, cell in columns] for row in rows]
    widths = [max([len(t)] + [len(c[i]) for c in cells]) for i, (t, _) in enumerate(columns)]
    print(f"\n{title}")
    print("| " + " | ".join(t.ljust(w) for (t, _), w in zip(columns, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for line in cells:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + " |")


def _fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _print_tables(result: dict[str, Any]) -> None:
    gpu = result["machine"]["device"].startswith("cuda")
    if result.get("throughput"):
        columns: list[Column] = [
            ("case", lambda r: r["case"]),
            ("model (input)", lambda r: f"{r['model']} ({r['input']})"),
            ("video", lambda r: f"{r['video']} {r['video_size']}, {r['n_frames']} fr"),
            ("frames/s", lambda r: f"{r['frames_per_s']:.1f}"),
            ("clips/s", lambda r: f"{r['clips_per_s']:.2f}"),
            ("÷ limit", lambda r: f"{r['ratio_to_limit']:.2f}"),
            (
                "pytorch-grad-cam ÷ videocam",
                lambda r: _fmt(r["pytorch_grad_cam_over_videocam"], ".2f"),
            ),
            ("peak RSS MB", lambda r: f"{r['peak_rss_mb']:.0f}"),
            ("kernel % of CPU", lambda r: f"{100 * r['kernel_share']:.1f}"),
            ("page faults/frame", lambda r: f"{r['page_faults_per_frame']:.0f}"),
        ]
        if gpu:
            columns.append(
                (
                    "peak GPU MB (videocam / limit)",
                    lambda r: (
                        f"{_fmt(r['peak_gpu_mb'].get('videocam'), '.0f')} / "
                        f"{_fmt(r['peak_gpu_mb'].get('limit'), '.0f')}"
                    ),
                )
            )
        competing = result["throughput"][0]["competing_processes"] if result["throughput"] else 0
        _table(
            f"throughput (analyze --no-render, in-process; {competing} competing processes)",
            columns,
            result["throughput"],
        )
    if result.get("policy"):
        _table(
            "OMP_WAIT_POLICY (whole analyze --no-render processes, seconds)",
            [
                ("model", lambda r: f"{r['model']} on {r['video']}"),
                ("competing processes", lambda r: str(r["competing_processes"])),
                ("PASSIVE (videocam's default)", lambda r: f"{r['passive_s']:.1f}"),
                ("ACTIVE (OpenMP's default)", lambda r: f"{r['active_s']:.1f}"),
                ("ACTIVE ÷ PASSIVE", lambda r: f"{r['active_over_passive']:.2f}"),
            ],
            result["policy"],
        )
    if result.get("memory"):
        _table(
            "memory (peak RSS, fresh process each)",
            [
                ("case", lambda r: r["case"]),
                ("short video MB", lambda r: f"{r['short_peak_rss_mb']:.0f} ({r['short_s']} s)"),
                ("long video MB", lambda r: f"{r['long_peak_rss_mb']:.0f} ({r['long_s']} s)"),
                ("ratio", lambda r: f"{r['ratio']:.3f}"),
                ("frames/s (long)", lambda r: f"{r['long_frames_per_s']:.0f}"),
            ],
            result["memory"],
        )
    if result.get("render"):
        _table(
            "render pass (annotated clip at source resolution)",
            [
                ("video", lambda r: f"{r['video']} {r['size']}, {r['n_frames']} fr"),
                ("render frames/s", lambda r: f"{r['render_frames_per_s']:.1f}"),
                (
                    "PyAV transcode, same settings, frames/s",
                    lambda r: f"{r['pyav_transcode_frames_per_s']:.1f}",
                ),
                ("render ÷ same", lambda r: f"{r['render_time_over_transcode']:.2f}"),
                (
                    "CPU s render / same",
                    lambda r: f"{r['render_cpu_s']:.2f} / {r['transcode_cpu_s']:.2f}",
                ),
                (
                    "PyAV transcode, PyAV defaults, frames/s",
                    lambda r: f"{r['pyav_defaults_transcode_frames_per_s']:.1f}",
                ),
                ("render ÷ defaults", lambda r: f"{r['render_time_over_pyav_defaults']:.2f}"),
            ],
            result["render"],
        )
    load = result["load_avg"]
    print(
        f"\n{result['machine']['device']}, {result['machine']['cpu_count']} CPUs, torch threads "
        f"{result['machine']['torch_threads']}; load average {load[0]:.2f} / {load[1]:.2f} / "
        f"{load[2]:.2f} at the end; {result['repeats']} interleaved repeats (3x for short "
        "cases), medians"
    )


# -- main --------------------------------------------------------------------------------------


def _cases(device: Any, workdir: Path, quick: bool) -> list[Case]:
    if device.type == "cuda":
        video = _make_video(
            workdir / ("gpu_10s.mp4" if quick else "gpu_60s.mp4"), 10 if quick else 60
        )
        return [
            Case("gpu-r3d_18", "r3d_18", "none", video, "model"),
            Case("gpu-r2plus1d_18", "r2plus1d_18", "none", video, "model"),
            # Transformer tokens need a reshape_transform in pytorch-grad-cam: not run here.
            Case("gpu-mvit_v2_s", "mvit_v2_s", "none", video, "model", pgc=False),
        ]
    compute = _make_video(
        workdir / ("compute_4s.mp4" if quick else "compute_10s.mp4"), 4 if quick else 10
    )
    decode = _make_video(
        workdir / ("decode_10s.mp4" if quick else "decode_60s.mp4"), 10 if quick else 60
    )
    cases = [
        Case("model-bound", "r3d_18", "none", compute, "model"),
        Case("decode-bound", "videocam_tiny", "DEFAULT", decode, "decode"),
    ]
    real = REAL_VIDEOS.resolve()
    if real.is_dir() and not quick:
        person = real / "intel_one-by-one-person-detection.mp4"
        road = real / "udacity_solidWhiteRight.mp4"
        if person.exists():
            cases.append(Case("real-decode-bound", "videocam_tiny", "DEFAULT", person, "decode"))
        if road.exists():
            cases.append(Case("real-model-bound", "r3d_18", "none", road, "model"))
        cases += _frame_cases(real / "intel_car-detection.mp4")
    return cases


def _frame_cases(video: Path) -> list[Case]:
    """Per-frame models on real footage, a named target and ``auto`` (1,000 classes each):
    efficientnet_lite0 with its offline ImageNet weights, resnet50 with random ones."""
    if not video.exists():
        return []
    return [
        Case(
            f"real-frame-{short}{'-auto' if target == 'auto' else ''}",
            model,
            weights,
            video,
            "model",
            target=target,
        )
        for short, model, weights, named in (
            ("effnet", "efficientnet_lite0", "DEFAULT", "468"),
            ("resnet50", "resnet50", "none", "0"),
        )
        for target in (named, "auto")
    ]


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    # Before torch loads, for every contender alike (the limit and pytorch-grad-cam run in this
    # process too): what videocam's command line sets, OMP_WAIT_POLICY=PASSIVE (spin-waiting
    # threads distort timings on a shared machine) and glibc keeping freed large buffers.
    from videocam.runtime.process import allocator_setting, prepare_process

    prepare_process()
    if args.child is not None:
        _child(args.child)
        return 0

    import torch

    device = torch.device(
        ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    )
    sections = args.only or list(SECTIONS)
    if device.type == "cuda":
        sections = [s for s in sections if s == "throughput"]
    repeats = 1 if args.quick else args.repeats
    # A smoke run never overwrites the published results.
    if args.quick:
        default = f"bench-out/run_{device.type}_quick.json"
    elif args.long:
        default = f"benchmarks/results/memory_long_{device.type}.json"
    else:
        default = f"benchmarks/results/run_{device.type}.json"
    json_path = args.json or Path(default)
    with contextlib.ExitStack() as stack:
        if args.workdir:
            workdir = args.workdir
            workdir.mkdir(parents=True, exist_ok=True)
        else:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="vc-bench-")))
        result: dict[str, Any] = {
            "benchmark": "run",
            "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": {
                "cpu_count": os.cpu_count(),
                "torch_threads": torch.get_num_threads(),
                "torch_version": torch.__version__,
                "python": sys.version.split()[0],
                "platform": platform.platform(),
                "processor": platform.processor(),
                "device": str(device)
                + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""),
                "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
                "allocator": allocator_setting(),
            },
            "repeats": repeats,
            "quick": args.quick,
            "load_avg_start": os.getloadavg(),
        }
        if "throughput" in sections:
            cases = _cases(device, workdir, args.quick)
            if args.cases:
                wanted = {c.strip() for c in args.cases.split(",")}
                cases = [c for c in cases if c.name in wanted]
            with _competitors(args.load) as competing:
                result["throughput"] = _throughput(cases, device, repeats, workdir, competing)
        if "memory" in sections:
            result["memory"] = _memory(workdir, args.quick, device, long=args.long)
        if "policy" in sections:
            result["policy"] = _policy(workdir, args.quick, max(repeats, 3))
        if "render" in sections:
            videos = [
                _make_video(
                    workdir / ("decode_10s.mp4" if args.quick else "decode_60s.mp4"),
                    10 if args.quick else 60,
                )
            ]
            if not args.quick:
                for name in ("udacity_solidWhiteRight.mp4", "udacity_vehicle_test_video.mp4"):
                    if (REAL_VIDEOS / name).exists():
                        videos.append(REAL_VIDEOS.resolve() / name)
            result["render"] = _render(videos, max(repeats, 5), workdir)
        result["load_avg"] = os.getloadavg()
    _print_tables(result)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    partial = json_path.with_name(json_path.name + ".tmp")
    partial.write_text(json.dumps(result, indent=2, default=str) + "\n")
    partial.replace(json_path)
    print(f"wrote {json_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
