"""How much does a CAM cost over plain inference? (The goal: at most 1.1x.)

Times, on the same batch and in one run: the forward pass alone (``torch.inference_mode``),
``videocam.compute_cam`` (Grad-CAM, gradients at the target layer only), and pytorch-grad-cam's
``GradCAM`` (full backward) when it is installed. Models: r3d_18 (layer4, a 16-frame clip batch),
resnet50 run per frame (layer4), and a VideoMAE-base-sized transformers model (12 blocks of 768,
16 frames at 224², tubelets 2x16x16: 1568 tokens, 400 classes; its default layer, the last
block's output, with the tubelet reshape) when transformers is installed. Weights are random:
cost does not depend on them. Each timing is the median of ``--repeats`` after one warm-up; the
three contenders run interleaved within each repeat so that drift in machine load hits them
alike.

Then, per window, what each method costs against Grad-CAM on the same window (``methods``):
``eigengradcam`` (one backward, an SVD per sample), ``ablationcam`` (one perturbed head replay per
channel of the layer, batched by memory) and ``scorecam`` (one whole-model forward per channel,
batched by memory). Models: the bundled ``videocam_tiny`` (block4, 128 channels) and r3d_18
(layer4, 512 channels), one 16-frame window each, and the bundled ``efficientnet_lite0`` per
frame (_conv_head, 1280 channels), one frame. Score-CAM runs ``--method-repeats`` once by
default: on r3d_18 it is 512 forwards.

The object-detector case times ``fasterrcnn_mobilenet_v3_large_fpn`` (random weights) the way
``analyze`` runs it: the detector as a class scorer (``DetectionScores``: each class's detection
mass) on 16 frames of 240x320 fed at that size, its default layer ``backbone.body.16``; plain
forward, EigenCAM (the detectors' default, gradient-free) and Grad-CAM (the gradient of the top
class's mass above the default ``--score-threshold`` 0.5). Random weights score every class
near 1/91 (and every proposal alike), under torchvision's own 0.05 floor, so nothing would be
detected: the class logits are scaled to a spread of 8, so that the proposals' top class scores
about 0.53 and each frame keeps the detector's 100 best detections (``detections_per_frame``),
as on a busy street; the post-processing and the Grad-CAM backward through the RoI heads then do
the work they do with real weights (the box head runs on all 1000 proposals either way).

Usage: python benchmarks/cam_overhead.py [--repeats 5] [--quick] [--json PATH] [--device cpu]
       [--skip-videomae] [--method-repeats 1] [--skip-methods] [--cases classifiers detector]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

DEFAULT_JSON = Path("benchmarks/results/cam_overhead.json")
CASES = ("classifiers", "detector")
#: The detector case: 16 frames of 240x320, explained at the detector's default layer.
DETECTOR = "fasterrcnn_mobilenet_v3_large_fpn"
DETECTOR_FRAMES, DETECTOR_SIZE = 16, (240, 320)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per contender")
    parser.add_argument(
        "--json",
        type=Path,
        default=None,
        help=f"where to write results (default {DEFAULT_JSON}; with some --cases only, "
        "cam_overhead_CASE.json beside it, so a partial run never replaces the full one)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="small batches and 1 repeat: a smoke run"
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument(
        "--skip-pytorch-grad-cam", action="store_true", help="time forward and videocam only"
    )
    parser.add_argument(
        "--skip-videomae", action="store_true", help="leave out the VideoMAE-base case"
    )
    parser.add_argument(
        "--videomae-batch", type=int, default=1, help="clips per batch of the VideoMAE case"
    )
    parser.add_argument(
        "--method-repeats", type=int, default=1, help="timed runs per method and window"
    )
    parser.add_argument(
        "--skip-methods", action="store_true", help="skip the per-window cost of each method"
    )
    parser.add_argument(
        "--cases",
        nargs="+",
        choices=CASES,
        default=list(CASES),
        help="classifiers (r3d_18, resnet50, VideoMAE, and each method's cost) and/or "
        "detector (fasterrcnn_mobilenet_v3_large_fpn)",
    )
    args = parser.parse_args(argv)
    if args.method_repeats < 1:
        parser.error("--method-repeats must be >= 1")
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    if args.json is None:
        cases = sorted(set(args.cases))
        partial = "" if cases == sorted(CASES) else "_" + "_".join(cases)
        args.json = DEFAULT_JSON.with_name(f"cam_overhead{partial}.json")
    return args


def _grad_cam_class(args: argparse.Namespace) -> tuple[Any, str]:
    """pytorch-grad-cam's GradCAM (None when skipped or missing) and a note saying why not."""
    if args.skip_pytorch_grad_cam:
        return None, "pytorch-grad-cam skipped (--skip-pytorch-grad-cam)"
    try:
        from pytorch_grad_cam import GradCAM
    except ImportError:
        return None, "pytorch-grad-cam not installed: its column is empty"
    return GradCAM, ""


Case = tuple[str, Callable[[], tuple[Any, Any]], str, tuple[int, ...]]


def _classifier_cases(args: argparse.Namespace, torchvision: Any) -> tuple[list[Case], str]:
    """The classifier rows to measure: (name, build, layer, input shape), and a note."""

    def torchvision_case(builder: Callable[..., Any]) -> Callable[[], tuple[Any, Any]]:
        return lambda: (builder(weights=None), None)

    note = ""
    cases: list[Case] = []
    if "classifiers" not in args.cases:
        return cases, note
    cases += [
        (
            "r3d_18",
            torchvision_case(torchvision.models.video.r3d_18),
            "layer4",
            (1 if args.quick else 4, 3, 16, 112, 112),
        ),
        (
            "resnet50 (per frame)",
            torchvision_case(torchvision.models.resnet50),
            "layer4",
            (4 if args.quick else 16, 3, 224, 224),
        ),
    ]
    if not args.skip_videomae:
        videomae = _videomae_base_case()
        if videomae is None:
            note = "transformers not installed: no VideoMAE row"
        else:
            build, layer = videomae
            cases.append(
                ("VideoMAE-base (hf:)", build, layer, (args.videomae_batch, 3, 16, 224, 224))
            )
    return cases, note


def _print_tables(
    rows: list[dict[str, Any]],
    method_rows: list[dict[str, Any]],
    detector_rows: list[dict[str, Any]],
    note: str,
) -> None:
    if rows:
        _print_table(rows)
    if method_rows:
        print()
        _print_method_table(method_rows)
    if detector_rows:
        print()
        _print_detector_table(detector_rows)
    if note and rows:
        print(f"note: {note}")


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    # Before torch starts OpenMP: spin-waiting threads distort timings on a shared 2-core box.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

    import torch
    import torchvision

    from videocam.cam import compute_cam
    from videocam.models import resolve_layer

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(
        ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    )
    repeats = 1 if args.quick else args.repeats

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def timed(fn: Callable[[], object]) -> float:
        sync()
        start = time.perf_counter()
        fn()
        sync()
        return time.perf_counter() - start

    grad_cam_class, note = _grad_cam_class(args)
    cases, case_note = _classifier_cases(args, torchvision)
    note = "; ".join(filter(None, [note, case_note]))

    def reshaped(reshape: Any, shape: tuple[int, ...]) -> Any:
        return None if reshape is None else (lambda tensor: reshape(tensor, torch.Size(shape)))

    rows = []
    for name, build, layer, shape in cases:
        torch.manual_seed(0)
        model, reshape = build()
        model = model.eval().to(device)
        inputs = torch.randn(*shape, device=device)

        def forward(model=model, inputs=inputs) -> None:
            with torch.inference_mode():
                model(inputs)

        def videocam(model=model, inputs=inputs, layer=layer, reshape=reshape) -> None:
            compute_cam(model, inputs, layer, None, "gradcam", reshape=reshape)

        contenders: dict[str, Callable[[], object]] = {"forward": forward, "videocam": videocam}
        if grad_cam_class is not None:
            transform = reshaped(reshape, shape)

            def pytorch_grad_cam(
                model=model, inputs=inputs, layer=layer, transform=transform
            ) -> None:
                with grad_cam_class(
                    model=model,
                    target_layers=[resolve_layer(model, layer)],
                    reshape_transform=transform,
                ) as cam:
                    cam(input_tensor=inputs, targets=None)
                model.zero_grad(set_to_none=True)

            contenders["pytorch_grad_cam"] = pytorch_grad_cam

        times = _interleaved(contenders, repeats, timed)
        median = {key: statistics.median(values) for key, values in times.items()}
        fastest = {key: min(values) for key, values in times.items()}

        has_pgc = "pytorch_grad_cam" in median
        row = {
            "model": name,
            "layer": layer,
            "batch": "x".join(map(str, shape)),
            "forward_s": median["forward"],
            "videocam_s": median["videocam"],
            "videocam_ratio": median["videocam"] / median["forward"],
            "pytorch_grad_cam_s": median.get("pytorch_grad_cam"),
            "pytorch_grad_cam_ratio": (
                median["pytorch_grad_cam"] / median["forward"] if has_pgc else None
            ),
            "min_s": fastest,
            "videocam_ratio_of_min": fastest["videocam"] / fastest["forward"],
            "videocam_ratio_paired_median": _paired(times, "videocam"),
            "pytorch_grad_cam_ratio_paired_median": (
                _paired(times, "pytorch_grad_cam") if has_pgc else None
            ),
            "times_s": times,
        }
        rows.append(row)
        del model, inputs

    method_rows = (
        []
        if args.skip_methods or "classifiers" not in args.cases
        else _method_costs(args, device, timed)
    )
    detector_rows = []
    if "detector" in args.cases:
        n_frames = 4 if args.quick else DETECTOR_FRAMES
        detector_rows.append(_detector_row(device, n_frames, repeats, timed))

    _print_tables(rows, method_rows, detector_rows, note)
    print(f"device {device}, torch threads {torch.get_num_threads()}, ", end="")
    print(f"median of {repeats} after 1 warm-up")

    result = {
        "benchmark": "cam_overhead",
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "torch_version": torch.__version__,
            "torchvision_version": torchvision.__version__,
            "transformers_version": _version("transformers"),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "processor": platform.processor(),
            "device": str(device),
            "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        },
        "repeats": repeats,
        "quick": args.quick,
        "method": "gradcam",
        "note": note or None,
        "rows": rows,
        "detector_rows": detector_rows,
        "method_repeats": args.method_repeats,
        "methods": method_rows,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    partial = args.json.with_name(args.json.name + ".tmp")
    partial.write_text(json.dumps(result, indent=2) + "\n")
    partial.replace(args.json)
    print(f"wrote {args.json}")
    return 0


def _interleaved(
    contenders: dict[str, Callable[[], object]],
    repeats: int,
    timed: Callable[[Callable[[], object]], float],
) -> dict[str, list[float]]:
    """Each contender's times: one warm-up each, then ``repeats`` rounds, one run of each per
    round, so that drift in machine load hits them alike."""
    for fn in contenders.values():  # warm-up
        timed(fn)
    times: dict[str, list[float]] = {key: [] for key in contenders}
    for _ in range(repeats):
        for key, fn in contenders.items():
            times[key].append(timed(fn))
    return times


def _paired(times: dict[str, list[float]], key: str) -> float:
    """The median of the per-round ratios ``key`` ÷ forward: contenders of one round ran back to
    back, so a load spike on the shared machine inflates both terms of a ratio rather than one
    median."""
    return statistics.median(t / f for t, f in zip(times[key], times["forward"], strict=True))


def _detector_row(
    device: Any, n_frames: int, repeats: int, timed: Callable[[Callable[[], object]], float]
) -> dict[str, Any]:
    """Forward, EigenCAM and Grad-CAM of the detector case, interleaved per repeat."""
    import torch

    from videocam.cam import compute_cam
    from videocam.models import load_model

    torch.manual_seed(0)
    height, width = DETECTOR_SIZE
    loaded = load_model(DETECTOR, weights="none", input_size=DETECTOR_SIZE, device=device)
    scorer: Any = loaded.module
    images = torch.rand(n_frames, 3, height, width, device=device)
    _spread_class_scores(scorer, images[:1])
    layer = loaded.layer
    with torch.inference_mode():
        kept = [len(d.scores) for d in scorer.detect(images)]
        mass = scorer(images)
    top = mass.argmax(1)
    top_mass = mass.gather(1, top[:, None])

    def forward() -> None:
        with torch.inference_mode():
            scorer(images)

    contenders: dict[str, Callable[[], object]] = {
        "forward": forward,
        "eigencam": lambda: compute_cam(scorer, images, layer, None, "eigencam"),
        "gradcam": lambda: compute_cam(scorer, images, layer, None, "gradcam"),
    }
    times = _interleaved(contenders, repeats, timed)
    median = {key: statistics.median(values) for key, values in times.items()}

    return {
        "model": f"{DETECTOR} (per frame)",
        "layer": layer,
        "batch": f"{n_frames}x3x{height}x{width}",
        "detections_per_frame": statistics.median(kept),
        "score_threshold": scorer.score_threshold,
        "top_class_mass_per_frame": float(top_mass.median()),
        "forward_s": median["forward"],
        "forward_per_frame_s": median["forward"] / n_frames,
        "eigencam_s": median["eigencam"],
        "eigencam_ratio": median["eigencam"] / median["forward"],
        "eigencam_ratio_paired_median": _paired(times, "eigencam"),
        "gradcam_s": median["gradcam"],
        "gradcam_ratio": median["gradcam"] / median["forward"],
        "gradcam_ratio_paired_median": _paired(times, "gradcam"),
        "times_s": times,
    }


def _spread_class_scores(scorer: Any, images: Any, logit_std: float = 8.0) -> None:
    """Scale a random Faster R-CNN's class logits to a spread of ``logit_std``: its top class
    then scores above 0.5 and torchvision's own post-processing (0.05 floor, NMS, 100 best)
    keeps detections, as with real weights."""
    import torch

    cls_score = scorer.roi_heads.box_predictor.cls_score
    seen: list[float] = []
    handle = cls_score.register_forward_hook(lambda _m, _a, out: seen.append(float(out.std())))
    try:
        with torch.inference_mode():
            scorer(images)
    finally:
        handle.remove()
    with torch.no_grad():
        cls_score.weight.mul_(logit_std / seen[0])
        cls_score.bias.mul_(logit_std / seen[0])


def _print_detector_table(rows: list[dict[str, Any]]) -> None:
    header = (
        f"{'detector':<42} {'batch':<14} {'forward s':>9} {'eigencam s':>10} {'ratio':>6} "
        f"{'gradcam s':>9} {'ratio':>6} {'paired':>13}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        paired = f"{r['eigencam_ratio_paired_median']:.2f} / {r['gradcam_ratio_paired_median']:.2f}"
        print(
            f"{r['model']:<42} {r['batch']:<14} {r['forward_s']:>9.3f} {r['eigencam_s']:>10.3f} "
            f"{r['eigencam_ratio']:>6.2f} {r['gradcam_s']:>9.3f} {r['gradcam_ratio']:>6.2f} "
            f"{paired:>13}"
        )


def _videomae_base_case() -> tuple[Callable[[], tuple[Any, Any]], str] | None:
    """(build -> (model, reshape), layer) of a random VideoMAE-base-sized classifier, as
    ``--model hf:`` loads one (the adapter, the family's default layer and reshape); None
    without transformers."""
    try:
        import transformers
    except ImportError:
        return None
    from videocam.models.hf import HF_FAMILIES, HFClassifier, default_layer, hf_reshape

    family = HF_FAMILIES["videomae"]
    config = transformers.VideoMAEConfig(num_labels=400)  # base: 12 x 768, 16 x 224², 2x16x16
    # The default layer by the family's rule (the head mean-pools: the last block's output).
    layer = f"videomae.encoder.layer.{config.num_hidden_layers - 1}"

    def build() -> tuple[Any, Any]:
        model = transformers.VideoMAEForVideoClassification(config).eval()
        assert default_layer(model, family, config)[0] == layer
        reshape = hf_reshape(
            model, family, config, layer, name="videomae-base", expected_input=(16, 224, 224)
        )
        return HFClassifier(model, "video", (16, 224, 224), "videomae-base"), reshape

    return build, layer


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None


def _print_table(rows: list[dict[str, Any]]) -> None:
    columns = [  # (title, width, cell)
        ("model", -22, lambda r: r["model"]),
        ("batch", -16, lambda r: r["batch"]),
        ("forward s", 9, lambda r: f"{r['forward_s']:.3f}"),
        ("videocam s", 10, lambda r: f"{r['videocam_s']:.3f}"),
        ("ratio", 6, lambda r: f"{r['videocam_ratio']:.2f}"),
        ("pytorch-grad-cam s", 18, lambda r: _maybe(r["pytorch_grad_cam_s"], ".3f")),
        ("ratio", 6, lambda r: _maybe(r["pytorch_grad_cam_ratio"], ".2f")),
        # median of per-repeat ratios: steadier than the ratio of medians on a shared machine
        ("paired ratio", 12, lambda r: f"{r['videocam_ratio_paired_median']:.2f}"),
    ]

    def line(cells: list[str]) -> str:
        return " ".join(
            f"{cell:<{-width}}" if width < 0 else f"{cell:>{width}}"
            for cell, (_, width, _) in zip(cells, columns, strict=True)
        )

    header = line([title for title, _, _ in columns])
    print(header)
    print("-" * len(header))
    for row in rows:
        print(line([cell(row) for _, _, cell in columns]))


#: The methods timed per window against Grad-CAM.
METHOD_CASES = ("gradcam", "eigengradcam", "ablationcam", "scorecam")


def _method_costs(args: argparse.Namespace, device: Any, timed: Callable) -> list[dict[str, Any]]:
    """Per window: each method's time and its ratio to Grad-CAM on the same window."""
    import torch
    import torchvision

    from videocam.models import load_model

    cases: list[tuple[str, Callable[[], Any], str, tuple[int, ...]]] = [
        (
            "videocam_tiny",
            lambda: load_model("videocam_tiny", device=str(device)).module,
            "block4",
            (1, 3, 16, 112, 112),
        ),
        (
            "r3d_18",
            lambda: torchvision.models.video.r3d_18(weights=None),
            "layer4",
            (1, 3, 16, 112, 112),
        ),
        (
            "efficientnet_lite0 (per frame)",
            lambda: load_model("efficientnet_lite0", device=str(device)).module,
            "_conv_head",
            (1, 3, 224, 224),
        ),
    ]
    if args.quick:
        cases = cases[:1]
    rows = []
    for name, build, layer, shape in cases:
        torch.manual_seed(0)
        model = build().eval().to(device)
        inputs = torch.randn(*shape, device=device)
        channels = int(_layer_channels(model, layer, inputs))
        times = _time_methods(model, inputs, layer, args.method_repeats, timed)
        median = {m: statistics.median(v) for m, v in times.items()}
        row = {
            "model": name,
            "layer": layer,
            "window": "x".join(map(str, shape)),
            "channels": channels,
            "seconds": median,
            "over_gradcam": {m: median[m] / median["gradcam"] for m in METHOD_CASES},
            "times_s": times,
        }
        rows.append(row)
        print(
            f"{name}: " + ", ".join(f"{m} {median[m]:.3f} s" for m in METHOD_CASES),
            flush=True,
        )
    return rows


def _time_methods(
    model: Any, inputs: Any, layer: str, repeats: int, timed: Callable
) -> dict[str, list[float]]:
    """Each method's times on one window, interleaved within each repeat (Score-CAM, the
    slowest, gets no warm-up: its first perturbed forward warms the rest)."""
    from videocam.cam import compute_cam

    def run(method: str) -> Callable[[], Any]:
        return lambda: compute_cam(model, inputs, layer, None, method)

    for method in METHOD_CASES:
        if method != "scorecam":
            timed(run(method))
    times: dict[str, list[float]] = {m: [] for m in METHOD_CASES}
    for _ in range(repeats):
        for method in METHOD_CASES:
            times[method].append(timed(run(method)))
    return times


def _layer_channels(model: Any, layer: str, inputs: Any) -> int:
    import torch

    from videocam.models import resolve_layer

    seen: list[int] = []
    handle = resolve_layer(model, layer).register_forward_hook(
        lambda m, i, o: seen.append(int(o.shape[1]))
    )
    with torch.inference_mode():
        model(inputs)
    handle.remove()
    return seen[0]


def _print_method_table(rows: list[dict[str, Any]]) -> None:
    header = f"{'per window':<32}{'channels':>9}" + "".join(
        f"{m + ' s':>15}{'÷ gradcam':>10}" for m in METHOD_CASES[1:]
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        cells = "".join(
            f"{row['seconds'][m]:>15.3f}{row['over_gradcam'][m]:>10.1f}" for m in METHOD_CASES[1:]
        )
        print(f"{row['model']:<32}{row['channels']:>9}{cells}")
    print(
        "gradcam s per window: "
        + ", ".join(f"{r['model']} {r['seconds']['gradcam']:.3f}" for r in rows)
    )


def _maybe(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


if __name__ == "__main__":
    raise SystemExit(main())
