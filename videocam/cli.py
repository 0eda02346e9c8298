"""Command line: ``videocam SUBCOMMAND ...`` (also ``python -m videocam``).

A thin layer: parse arguments, configure logging, call the library, and turn errors into exit
codes (:data:`EXIT_CODES`, also printed by ``videocam --help``): 0 success; 1 internal error (a
bug); 2 bad arguments, unusable input or a fault of the environment (a full disk...), with one
line on stderr; 3 ``batch``, ``evaluate`` and ``export`` when some videos failed; 130 after
SIGINT (Ctrl-C) and 143 after SIGTERM, with nothing half-written.

Help texts take their defaults from :class:`~videocam.config.AnalyzeConfig` (and argparse's own
defaults) and the method names from the registry :data:`videocam.cam.METHODS`, when the help is
shown (:class:`_HelpFormatter`), so none is copied here.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from videocam import __version__
from videocam.config import DEFAULT_METHOD, DETECTOR_METHOD, DEVICES, config_fields
from videocam.errors import ConfigError, VideocamError
from videocam.io import BACKEND_CHOICES

if TYPE_CHECKING:
    from videocam.analysis import Analysis
    from videocam.config import AnalyzeConfig

logger = logging.getLogger("videocam")

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
#: After SIGINT (Ctrl-C) and SIGTERM, as shells report death by those signals.
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143
EXIT_SOME_FAILED = 3

#: Every exit code and what it means (``videocam --help`` prints this table).
EXIT_CODES: dict[int, str] = {
    EXIT_OK: "success",
    EXIT_INTERNAL: "internal error (a bug; rerun with --debug for the traceback)",
    EXIT_USAGE: "bad arguments, unusable input, or a fault of the environment such as a full "
    "disk (one line on stderr)",
    EXIT_SOME_FAILED: "batch, evaluate, export: some videos failed (listed in OUT/failures.csv)",
    EXIT_INTERRUPTED: "interrupted (SIGINT, Ctrl-C); nothing half-written is left",
    EXIT_TERMINATED: "terminated (SIGTERM); nothing half-written is left",
}

#: In a help text, replaced by the method names of :data:`videocam.cam.METHODS` when shown.
METHODS_PLACEHOLDER = "{methods}"

#: Set on the actions of the analysis options: the field of AnalyzeConfig whose default the
#: help shows (their argparse default is None: "not given", so that --config can fill it).
_CONFIG_FIELD = "videocam_config_field"


def _method_names() -> str:
    from videocam.cam import METHODS  # imports torch: only when a help text is shown

    return ", ".join(METHODS)


def format_default(value: object) -> str:
    """A default as the help shows it: ``1`` for 1.0, ``a b`` for a pair."""
    if isinstance(value, float):
        return format(value, "g")
    if isinstance(value, (tuple, list)):
        return " ".join(format_default(v) for v in value)
    return str(value)


def shown_default(action: argparse.Action) -> object | None:
    """The default an option's help states: its AnalyzeConfig field's for the analysis options,
    else argparse's; None for flags (store_true/false), for help/version and where there is
    none (the option's help then says what happens without it)."""
    if action.nargs == 0 or action.help in (None, argparse.SUPPRESS):
        return None
    field_name = getattr(action, _CONFIG_FIELD, None)
    if field_name is not None:
        default = {f.name: f.default for f in config_fields()}[field_name]
    else:
        default = action.default
    if default is None or default is argparse.SUPPRESS or isinstance(default, bool):
        return None
    return default


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Help texts with their defaults appended (``(default: X)``, unless the text states the
    default in words) and the method list filled in from the registry, at the time help is
    shown. Descriptions and epilogs keep their line breaks."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help
        if text is None or text == argparse.SUPPRESS:
            return text
        if METHODS_PLACEHOLDER in text:
            text = text.replace(METHODS_PLACEHOLDER, _method_names())
        default = shown_default(action)
        if default is not None and "default" not in text:
            shown = format_default(default).replace("%", "%%")
            text = f"{text} (default: {shown})"
        return text


class _Parser(argparse.ArgumentParser):
    """argparse that exits with code 2 and one line, as the contract says, and shows defaults
    and method names in its help (:class:`_HelpFormatter`)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"videocam: error: {message}\n")


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quiet", action="store_true", help="only errors on stderr")
    parser.add_argument("--debug", action="store_true", help="debug logging and tracebacks")


# -- shared analysis options --------------------------------------------------------------------


def _add_analysis_options(parser: argparse.ArgumentParser) -> None:
    """The options analyze / evaluate / batch share (docs/contract.md). Defaults live in
    :class:`videocam.config.AnalyzeConfig`; None here means "not given" so that a --config file
    fills it and a flag wins over both."""
    g = parser.add_argument_group("model")
    g.add_argument("--config", metavar="FILE.yaml", help="options from a YAML file (flags win)")
    g.add_argument(
        "--model", help="model name (`videocam models`), bundled model, or file.py:function"
    )
    g.add_argument("--weights", help="DEFAULT, a weights name, a local state-dict file, or none")
    g.add_argument("--layer", metavar="DOTTED.NAME", help="target layer (default: the model's)")
    g.add_argument(
        "--frame-model", action="store_true", default=None, help="custom model is per-frame 2D"
    )
    g.add_argument(
        "--detector",
        nargs="?",
        const=True,
        default=None,
        metavar="FILE.py:FUNCTION",
        help="the custom model is an object detector returning torchvision-style detections; "
        "with a builder, it names the model too (torchvision detectors: --model NAME)",
    )
    g.add_argument(
        "--input-size",
        nargs=2,
        type=int,
        metavar=("H", "W"),
        help="frame size fed to the model (default: the weights'; custom models need it)",
    )
    for stat in ("mean", "std"):
        g.add_argument(
            f"--{stat}",
            nargs=3,
            type=float,
            metavar=("R", "G", "B"),
            help=f"normalisation {stat} in [0, 1] (default: the weights', ImageNet for custom)",
        )
    g.add_argument("--labels", metavar="FILE", help="class names, one per line")
    g.add_argument("--device", choices=DEVICES, help="auto uses a GPU when there is one")
    g.add_argument("--autocast", action="store_true", default=None, help="bf16/fp16 forward")
    g.add_argument("--batch-size", type=int, help="windows (or frames) per forward")
    t = parser.add_argument_group("time")
    t.add_argument("--clip-len", type=int, metavar="T", help="window length in frames")
    t.add_argument("--stride", type=int, metavar="S", help="window step in frames")
    t.add_argument("--frame-step", type=int, metavar="N", help="analyse every N-th frame")
    t.add_argument("--sample-fps", type=float, metavar="FPS", help="analyse frames at this rate")
    t.add_argument(
        "--start",
        dest="start_s",
        type=float,
        metavar="SECONDS",
        help="analyse from this time, >= 0 (default: the video's start)",
    )
    t.add_argument(
        "--end",
        dest="end_s",
        type=float,
        metavar="SECONDS",
        help="analyse up to this time, after --start (default: the video's end)",
    )
    t.add_argument("--backend", choices=BACKEND_CHOICES, help="decoder")
    e = parser.add_argument_group("explanation")
    e.add_argument("--target", help="auto, a class index, or a class name")
    e.add_argument(
        "--method",
        help=f"{METHODS_PLACEHOLDER} (default: {DETECTOR_METHOD} for object detectors, "
        f"{DEFAULT_METHOD} otherwise)",
    )
    e.add_argument(
        "--score-threshold",
        type=float,
        metavar="SCORE",
        help="detectors: detections scoring below it count for nothing",
    )
    e.add_argument("--topk", type=int, metavar="K", help="number of keyframes")
    e.add_argument("--min-gap", type=float, metavar="SECONDS", help="least time between keyframes")
    e.add_argument(
        "--keyframe-floor",
        type=float,
        metavar="FRACTION",
        help="keyframes need this fraction of the strongest eligible frame's attribution",
    )
    e.add_argument(
        "--evidence-floor",
        type=float,
        metavar="FRACTION",
        help="keyframes and segments only where the model sees the target: frames whose target "
        "score reaches this fraction of the video's highest have evidence (0 = every frame)",
    )
    e.add_argument(
        "--evidence-ratio",
        type=float,
        metavar="MULTIPLE",
        help="frames whose target score reaches this multiple of the video's median target score "
        "have evidence too, for classes the model sees weakly (0 = the median plays no part)",
    )
    e.add_argument(
        "--tracks",
        metavar="K|A,B,...",
        help="also write tracks.csv: the K most probable classes, or the classes named "
        "(names or indices), each on one attribution scale",
    )
    e.add_argument(
        "--box-threshold",
        type=float,
        metavar="FRACTION",
        help="keyframe boxes bound the region of the map's peak at this fraction of its maximum",
    )
    e.add_argument(
        "--box-max-area",
        type=float,
        metavar="FRACTION",
        help="no box when it would cover more than this share of the frame (1: always a box)",
    )
    r = parser.add_argument_group("output")
    r.add_argument(
        "--no-render",
        dest="render",
        action="store_false",
        default=None,
        help="tables, cams.npy and summary.json only",
    )
    r.add_argument(
        "--render-size",
        nargs=2,
        type=int,
        metavar=("H", "W"),
        help="picture size of annotated.mp4 (default: the source's)",
    )
    r.add_argument("--colormap", help="matplotlib colormap name")
    r.add_argument("--alpha", type=float, help="heatmap opacity")
    fields = {f.name for f in config_fields()}
    for action in parser._actions:
        if action.dest in fields:
            setattr(action, _CONFIG_FIELD, action.dest)


def analysis_config(args: argparse.Namespace) -> AnalyzeConfig:
    """Defaults, then the --config file, then the flags."""
    from videocam.config import config_fields, load_config_file, merge_options

    from_file = load_config_file(args.config) if args.config else {}
    flags = {f.name: getattr(args, f.name, None) for f in config_fields()}
    if isinstance(flags.get("detector"), str):  # --detector FILE.py:FUNCTION names the model
        spec = str(flags["detector"])
        if ":" not in spec:
            raise ConfigError(
                f"--detector {spec!r}: expected a builder path/to/file.py:function or "
                "package.module:function (or --detector alone after --model)"
            )
        if flags.get("model") not in (None, spec):
            raise ConfigError(f"--detector {spec} and --model {flags['model']}: give one model")
        flags.update(model=spec, detector=True)
    return merge_options(from_file, flags)


def _progress(args: argparse.Namespace) -> bool:
    return not args.quiet and sys.stderr.isatty()


# -- subcommands -------------------------------------------------------------------------------


def _add_analyze(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("analyze", help="explain one video: keyframes, tables, annotated clip")
    parser.add_argument("video", help="video file")
    parser.add_argument("-o", "--out", required=True, help="output folder")
    _add_analysis_options(parser)
    _add_common(parser)
    parser.set_defaults(run=_run_analyze)


def check_out_dir(out: str) -> None:
    """Fail before any work when ``out`` cannot become a folder we write into.

    Creates nothing: the nearest existing ancestor must be a writable folder (``out`` itself,
    when it exists). Writing checks again (``ensure_output_dir``).
    """
    import os

    from videocam.errors import OutputError
    from videocam.render.files import not_writable_reason

    folder = Path(out)
    existing = folder
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        where = "" if existing == folder else f" ({existing} is a file)"
        raise OutputError(f"{folder}: cannot create output folder: not a directory{where}")
    if not os.access(existing, os.W_OK | os.X_OK):
        reason = not_writable_reason(existing)
        raise OutputError(f"{folder}: output folder is not writable: {reason}")


def _run_analyze(args: argparse.Namespace) -> int:
    from videocam.analysis import analyze

    check_out_dir(args.out)
    config = analysis_config(args)
    options = config.to_dict()
    model = options.pop("model")
    analysis = analyze(args.video, model, progress=_progress(args), **options)
    out = analysis.save(args.out, progress=_progress(args))
    if not args.quiet:
        _report(analysis, out)
    return EXIT_OK


def _report(analysis: Analysis, out: Path, also: Sequence[str] = ()) -> None:
    """What an analysis found, and its output files (``also``: files the command wrote there
    besides the analysis's own)."""
    index, name = analysis.target
    lines = [f"explained class: {name} ({index}) with {analysis.summary['method']}"]
    for row in analysis.keyframes.itertuples():
        lines.append(
            f"  keyframe {row.rank}: frame {row.frame_index} at {row.time_s:.2f} s, "
            f"attribution {row.attribution:.3f}"
        )
    found = analysis.summary.get("keyframes", {})
    if found and found["found"] < found["requested"]:
        threshold, peak = found["evidence_threshold"], found["peak_target_score"]
        lines.append(
            f"  {found['found']} of the {found['requested']} keyframes asked for: "
            f"{found['why_fewer']} (frames with evidence: {found['frames_with_evidence']}, "
            f"where the target score reaches {threshold:.3g}; its peak is {peak:.3g})"
        )
    tracks = analysis.summary.get("tracks")
    if tracks:
        followed = ", ".join(f"{c['name']} ({c['index']})" for c in tracks["classes"])
        lines.append(f"tracks: {followed}")
    lines.append(f"outputs in {out}:")
    own = [*analysis.summary.get("outputs", []), *also]  # this run's files, as it wrote them
    for name in sorted(own, key=lambda n: Path(n).parts):
        try:
            size = f"{(out / name).stat().st_size / 1024:.0f} KB"
        except OSError:
            size = "since replaced by another run"
        lines.append(f"  {name}  ({size})")
    sys.stdout.write("\n".join(lines) + "\n")


def _add_demo(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("demo", help="analyse a synthetic clip with a known event (offline)")
    parser.add_argument("-o", "--out", required=True, help="output folder")
    parser.add_argument(
        "--method", default=DEFAULT_METHOD, help=f"CAM method: {METHODS_PLACEHOLDER}"
    )
    parser.add_argument(
        "--no-render",
        dest="render",
        action="store_false",
        help="tables, cams.npy and summary.json only",
    )
    _add_common(parser)
    parser.set_defaults(run=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from videocam.demo import run_demo

    result = run_demo(args.out, render=args.render, progress=_progress(args), method=args.method)
    if not args.quiet:
        _report(result.analysis, result.out_dir, also=[result.clip.path.name])
        start, end = result.clip.event_interval_s or (0.0, 0.0)
        n = len(result.analysis.keyframes)
        sys.stdout.write(
            f"known event: {result.clip.truth.event} from {start:.2f} s to {end:.2f} s; "
            f"{result.keyframes_inside} of {n} keyframes fall inside it\n"
        )
    return EXIT_OK


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "evaluate", help="accuracy and faithfulness of the explanations over a manifest"
    )
    parser.add_argument("manifest", help="CSV: path[, label][, event_start_s, event_end_s]")
    parser.add_argument(
        "-o",
        "--out",
        required=True,
        help="output folder (empty, or an earlier evaluate's with --resume); each video's "
        "result is kept in OUT/videos/",
    )
    parser.add_argument(
        "--steps", type=int, default=10, help="deletion/insertion in steps of 1/N of the frames"
    )
    parser.add_argument("--random-seeds", type=int, default=3, help="random orders averaged")
    parser.add_argument(
        "--sanity",
        action="store_true",
        help="model-parameter randomisation check: re-initialise the blocks from the head "
        "down and report the maps' rank correlation with the trained model's",
    )
    parser.add_argument(
        "--occlusion",
        type=int,
        default=0,
        metavar="N",
        help="also score the temporal occlusion baseline: importance = the target's drop when "
        "the N frames around a frame are made neutral (0: off)",
    )
    _add_engine_options(parser)
    _add_analysis_options(parser)
    _add_common(parser)
    parser.set_defaults(run=_run_evaluate)


def _run_evaluate(args: argparse.Namespace) -> int:
    """Exit code 0 when every video was evaluated, 3 when some failed (OUT/failures.csv)."""
    from videocam.evaluate import EvaluateTask, read_manifest, run_evaluation

    if args.steps < 1 or args.random_seeds < 1:
        raise ConfigError("--steps and --random-seeds must be >= 1")
    if args.occlusion < 0:
        raise ConfigError(f"--occlusion must be >= 0 (0: off), got {args.occlusion}")
    check_out_dir(args.out)
    config = analysis_config(args)
    read_manifest(args.manifest)  # fail early on a bad manifest, before starting workers
    task = EvaluateTask(
        steps=args.steps,
        random_seeds=args.random_seeds,
        sanity=args.sanity,
        occlusion=args.occlusion,
    )
    run = run_evaluation(
        args.manifest,
        args.out,
        config,
        task,
        workers=args.workers,
        resume=args.resume,
        engine=args.engine,
        ray_address=args.ray_address,
        progress=_progress(args),
        log_level=logging.DEBUG if args.debug else logging.INFO,
        timeout_s=args.timeout,
    )
    s = run.evaluation.summary
    if not args.quiet:
        accuracy = "n/a" if s["accuracy"] is None else f"{s['accuracy']:.3f}"
        means = ", ".join(f"{k} {v:.3f}" for k, v in s["means"].items() if v is not None)
        skipped = sum(r.status == "skipped-complete" for r in run.results)
        sys.stdout.write(
            f"{s['n_ok']} of {s['n_videos']} videos evaluated ({s['n_failed']} failed, "
            f"{skipped} already complete); accuracy {accuracy}\nmeans: {means}\n"
            f"outputs in {Path(args.out)}\n"
        )
    if s.get("sanity", {}).get("flagged"):
        logger.warning("sanity check: %s", s["sanity"]["message"])
    return run.exit_code


def _add_engine_options(parser: argparse.ArgumentParser) -> None:
    """``--workers``, ``--resume``, ``--engine``, ``--ray-address``, ``--timeout`` (batch and
    evaluate: videos run in worker processes or Ray actors)."""
    parser.add_argument(
        "--workers",
        type=int,
        help="worker processes (default 1) or Ray actors (default: one per GPU of the "
        "cluster, else one per CPU); each loads the model once",
    )
    parser.add_argument(
        "--resume", action="store_true", help="skip complete videos, redo incomplete ones"
    )
    parser.add_argument(
        "--engine",
        choices=["local", "ray"],
        default="local",
        help="where jobs run: worker processes here, or actors on a Ray cluster "
        "(pip install 'videocam[ray]')",
    )
    parser.add_argument(
        "--ray-address",
        metavar="ADDR",
        help="Ray cluster to join (HOST:PORT of 'ray start --head', or auto); default: "
        "$RAY_ADDRESS, else a local Ray for this run. OUT must be on a filesystem every node "
        "mounts at the same path",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="kill a video's worker after this long and list the video as Timeout in "
        "failures.csv (--resume retries it); default: no limit",
    )


def _add_batch(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "batch", help="analyze every video of a folder or manifest, one sub-folder each"
    )
    parser.add_argument(
        "inputs", help="a folder (searched recursively for videos) or a manifest CSV with 'path'"
    )
    parser.add_argument(
        "-o", "--out", required=True, help="output folder (empty, or an earlier batch's)"
    )
    _add_engine_options(parser)
    _add_analysis_options(parser)
    _add_common(parser)
    parser.set_defaults(run=_run_batch)


def _run_batch(args: argparse.Namespace) -> int:
    """Exit code 0 when every video succeeded, 3 when some failed (OUT/failures.csv)."""
    from videocam.batch import STATUS_OK, STATUS_SKIPPED, run_batch

    config = analysis_config(args)
    report = run_batch(
        args.inputs,
        args.out,
        config,
        workers=args.workers,
        resume=args.resume,
        engine=args.engine,
        ray_address=args.ray_address,
        progress=_progress(args),
        log_level=logging.DEBUG if args.debug else logging.INFO,
        timeout_s=args.timeout,
    )
    if not args.quiet:
        failed = report.failures
        sys.stdout.write(
            f"{len(report.results)} videos: {report.count(STATUS_OK)} analysed, "
            f"{report.count(STATUS_SKIPPED)} already complete, {len(failed)} failed "
            f"({report.seconds:.1f} s); index: {report.out_dir / 'index.csv'}\n"
        )
        if failed:
            sys.stdout.write(f"failures: {report.out_dir / 'failures.csv'}\n")
        if report.skipped:
            sys.stdout.write(
                f"{len(report.skipped)} file(s) skipped, not videos: "
                f"{report.out_dir / 'skipped.csv'}\n"
            )
    return report.exit_code


def _add_models(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "models",
        help="list the models --model accepts, or describe one: kind, layer, input size, "
        "weights and classes",
    )
    parser.add_argument(
        "name",
        nargs="?",
        metavar="NAME",
        help="a name --model accepts: print its kind, default layer, input size, weights and "
        "classes (INDEX NAME, one per line)",
    )
    parser.add_argument(
        "--weights",
        default="DEFAULT",
        help="with NAME: the weights to describe (a weights name, a local state-dict file, "
        "or none)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    _add_common(parser)
    parser.set_defaults(run=_run_models)


def _run_model_card(args: argparse.Namespace) -> int:
    """``videocam models NAME``: ``key: value`` lines, then one ``INDEX NAME`` line a class."""
    import dataclasses

    from videocam.models import describe_model

    card = describe_model(args.name, weights=args.weights)
    if args.json:
        sys.stdout.write(json.dumps(dataclasses.asdict(card), indent=2) + "\n")
        return EXIT_OK
    kind = {"video": "video (windows of frames)", "frame": "frame (run per frame)"}[card.kind]
    if card.task == "detection":
        kind += ", object detector"
    size = (
        "follows each video (the detector's own resize rule)" if card.task == "detection" else "-"
    )
    if card.input_size is not None:
        size = f"{card.input_size[0]}x{card.input_size[1]}"
    elif card.source == "custom":
        size = "none: pass --input-size H W"
    weights = card.weights
    if card.weights_choices:
        weights += f" (--weights takes {', '.join(card.weights_choices)}, a file or none)"
    n = card.num_classes if card.num_classes is not None else "unknown"
    lines = [
        f"model: {card.name}",
        f"source: {card.source}",
        f"kind: {kind}",
        f"default layer: {card.default_layer or 'none: pass --layer DOTTED.NAME'}",
        f"input size: {size}",
        f"clip length: {card.clip_len if card.clip_len is not None else '-'}",
        f"weights: {weights}",
    ]
    if card.background_class is not None and card.categories:
        lines.append(
            f"background class: {card.background_class} {card.categories[card.background_class]}"
        )
    lines += [f"note: {note}" for note in card.notes]
    if card.categories is None:
        lines.append(f"classes: {n}, unnamed (name them with --labels FILE, one per line)")
    else:
        lines.append(f"classes: {len(card.categories)}")
        lines += [f"{index} {name}" for index, name in enumerate(card.categories)]
    sys.stdout.write("\n".join(lines) + "\n")
    return EXIT_OK


def _run_models(args: argparse.Namespace) -> int:
    import dataclasses

    from videocam.models import list_models

    if args.name is not None:
        return _run_model_card(args)
    infos = list_models()
    if args.json:
        sys.stdout.write(json.dumps([dataclasses.asdict(i) for i in infos], indent=2) + "\n")
        return EXIT_OK
    rows: list[tuple[str, ...]] = [
        ("name", "kind", "default layer", "weights", "input", "clip", "source")
    ]
    families: list[tuple[str, ...]] = [("prefix", "family", "kind", "default layer", "tokens")]
    for i in infos:
        if i.family is not None:
            families.append((i.name, i.family, i.kind, i.default_layer, i.note or "-"))
            continue
        size = f"{i.input_size[0]}x{i.input_size[1]}" if i.input_size else "-"
        weights = ", ".join(i.weights) if i.weights else "-"
        clip = str(i.clip_len) if i.clip_len else "-"
        rows.append((i.name, i.kind, i.default_layer, weights, size, clip, i.source))
    _write_table(rows)
    sys.stdout.write(
        "\n"
        + textwrap.fill(
            "Families: hf:ID_OR_DIR is a Hugging Face transformers classifier, a Hub model ID "
            "or a save_pretrained directory (classes, clip length, input size and mean/std from "
            "its own files); timm:NAME is any of timm's image classifiers, run per frame (input "
            "size and mean/std from timm's data config; --weights DEFAULT, a pretrained TAG, a "
            "file or none). Both need pip install 'videocam[hf]'.",
            width=100,
        )
        + "\n"
    )
    _write_table(families)
    sys.stdout.write(
        "\nAlso: a custom builder path/to/file.py:function or package.module:function "
        "(--frame-model for per-frame models); --weights takes DEFAULT, a listed name, "
        "a local state-dict file, or none.\n"
    )
    return EXIT_OK


def _write_table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    for r in rows:
        sys.stdout.write(
            "  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() + "\n"
        )


#: ``videocam export FORMAT`` (videocam.export.FORMATS; listed here so that building the parser
#: imports nothing heavy).
EXPORT_FORMATS = ("otio", "edl", "vtt")

_EXPORT_DESCRIPTION = """\
Write the keyframes and segments of RESULT for other tools:
  otio  an OpenTimelineIO timeline: the source video as a clip, a marker per keyframe (rank,
        class, attribution, target score), a ranged marker per segment, in frames at the
        video's own rate
  edl   a CMX 3600 EDL: the source cut at the segments, keyframes and segments as locators
        (SMPTE rates: 23.976, 24, 25, 29.97 drop-frame, 30, 48, 50, 59.94, 60)
  vtt   WebVTT chapters for HTML5 players: a chapter at every keyframe, segment start and
        segment end, each until the next

RESULT is an analyze output folder or a batch OUT; only frames.csv, keyframes.csv,
segments.csv and summary.json are read, so older results export without re-analysis.
Default output: RESULT/keyframes.otio, RESULT/keyframes.edl, RESULT/keyframes.vtt.
A batch OUT: otio writes one timeline with one track per video (OUT/keyframes.otio or FILE);
edl and vtt write one file per video (OUT/SUB/keyframes.edl, or FOLDER/SUB.edl with
-o FOLDER). Exit 3 when some videos of a batch could not be exported (each named on stderr).
otio and edl need OpenTimelineIO: pip install 'videocam[interchange]'.
"""


def _add_export(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "export",
        help="keyframes and segments as OpenTimelineIO, CMX 3600 EDL or WebVTT chapters",
        description=_EXPORT_DESCRIPTION,
    )
    parser.add_argument("format", choices=EXPORT_FORMATS, help="otio, edl or vtt")
    parser.add_argument("result", help="an analyze output folder or a batch OUT")
    parser.add_argument(
        "-o",
        "--out",
        metavar="FILE",
        help="file to write (default: inside RESULT, keyframes.otio|edl|vtt; an existing "
        "folder: that name inside it); for edl and vtt of a batch OUT, a folder (one "
        "SUB.edl|vtt per video)",
    )
    _add_common(parser)
    parser.set_defaults(run=_run_export)


def _run_export(args: argparse.Namespace) -> int:
    """Exit code 0, or 3 when some videos of a batch OUT could not be exported."""
    from videocam.export import export_result

    report = export_result(args.format, args.result, args.out)
    if not args.quiet:
        results = report.results
        lines = [f"wrote {path}" for path in report.written]
        if results.is_batch:
            lines.append(
                f"{len(results.videos)} videos with a result, {len(report.failed)} not exported"
            )
        if results.missing:
            listed = ", ".join(f"{sub} ({status})" for sub, status in results.missing)
            lines.append(f"left out, no result: {listed}")
        sys.stdout.write("\n".join(lines) + "\n")
    return EXIT_SOME_FAILED if report.failed else EXIT_OK


# -- subcommands -------------------------------------------------------------------------------


def _add_info(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("info", help="print a video's metadata as JSON")
    parser.add_argument("video", help="video file")
    parser.add_argument("--backend", default="auto", choices=BACKEND_CHOICES, help="decoder")
    _add_common(parser)
    parser.set_defaults(run=_run_info)


def _run_info(args: argparse.Namespace) -> int:
    from videocam.io import open_video

    with open_video(args.video, args.backend) as source:
        meta = source.meta.to_dict()
    sys.stdout.write(json.dumps(meta, indent=2) + "\n")
    return EXIT_OK


SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_analyze,
    _add_demo,
    _add_evaluate,
    _add_batch,
    _add_models,
    _add_info,
    _add_export,
]


def build_parser() -> argparse.ArgumentParser:
    """The ``videocam`` command line: every subcommand, its options and their help."""
    parser = _Parser(
        prog="videocam",
        description="Explain what a video classifier looks at, frame by frame.",
        epilog="exit codes:\n"
        + "\n".join(f"  {code:<4} {meaning}" for code, meaning in EXIT_CODES.items()),
    )
    parser.add_argument("--version", action="version", version=f"videocam {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="SUBCOMMAND", parser_class=_Parser)
    for add in SUBCOMMANDS:
        add(sub)
    return parser


@contextmanager
def _logging_for(args: argparse.Namespace) -> Iterator[None]:
    """videocam's records on stderr at the level the flags ask for, for the duration of one
    command; the package logger's handlers, level and propagation are restored afterwards, so
    that ``main`` called from Python (a notebook, a test) leaves the caller's logging as it was."""
    level = logging.WARNING
    if getattr(args, "debug", False):
        level = logging.DEBUG
    elif getattr(args, "quiet", False):
        level = logging.ERROR
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("videocam: %(levelname)s: %(message)s"))
    saved = (logger.handlers[:], logger.level, logger.propagate)
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False
    try:
        yield
    finally:
        logger.handlers[:], logger.propagate = saved[0], saved[2]
        logger.setLevel(saved[1])


class Terminated(BaseException):
    """SIGTERM arrived: unwinds like Ctrl-C, so that every ``finally`` removes what is staged."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


@contextmanager
def _terminate_cleanly() -> Iterator[None]:
    """SIGTERM raises :class:`Terminated` in the main thread for the duration (the default
    would end the process at once and leave staged outputs behind)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _signal_cause(exc: BaseException) -> bool | None:
    """True when ``exc`` was caused by SIGTERM (:class:`Terminated`), False by SIGINT, else
    None (looked for along its chain of causes)."""
    seen: BaseException | None = exc
    for _ in range(20):
        if seen is None:
            return None
        if isinstance(seen, Terminated):
            return True
        if isinstance(seen, KeyboardInterrupt):
            return False
        seen = seen.__cause__ or seen.__context__
    return None


def _one_line(message: object) -> str:
    """An error message on one line: a newline in a file name is shown as ``\\n``."""
    return str(message).replace("\r", "\\r").replace("\n", "\\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    from videocam.runtime.process import prepare_process

    # Before any command imports torch: OpenMP's wait policy, the allocator (and the workers
    # of batch and evaluate inherit the environment).
    prepare_process()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    with _logging_for(args):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    """The command's exit code: errors as one line on stderr (see the module docstring)."""
    try:
        with _terminate_cleanly():
            return int(args.run(args))
    except VideocamError as exc:
        if args.debug:
            logger.exception("failed")
        sys.stderr.write(f"videocam: error: {_one_line(exc)}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        sys.stderr.write("videocam: interrupted\n")
        return EXIT_INTERRUPTED
    except Terminated:
        sys.stderr.write("videocam: terminated\n")
        return EXIT_TERMINATED
    except Exception as exc:
        # A signal that arrived inside a C extension (pandas, numpy...) can surface as a
        # SystemError caused by it: still an interrupt, not a bug.
        cause = _signal_cause(exc)
        if cause is not None:
            sys.stderr.write(f"videocam: {'terminated' if cause else 'interrupted'}\n")
            return EXIT_TERMINATED if cause else EXIT_INTERRUPTED
        if args.debug:
            logger.exception("internal error")
        else:
            sys.stderr.write(
                f"videocam: internal error: {type(exc).__name__}: {_one_line(exc)} "
                "(rerun with --debug)\n"
            )
        return EXIT_INTERNAL
