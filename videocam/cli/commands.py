"""The command line's subcommands: each one's options (``_add_*``) and what it runs
(``_run_*``), and the parser of them all."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from videocam import __version__
from videocam.config import DEFAULT_METHOD
from videocam.errors import ConfigError
from videocam.io import BACKEND_CHOICES

if TYPE_CHECKING:
    from videocam.analysis import Analysis

from videocam.cli.options import (
    EXIT_CODES,
    EXIT_OK,
    EXIT_SOME_FAILED,
    METHODS_PLACEHOLDER,
    Parser,
    add_analysis_options,
    add_common,
    add_engine_options,
    analysis_config,
    engine_options,
    logger,
    show_progress,
)

# -- subcommands -------------------------------------------------------------------------------


def _add_analyze(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("analyze", help="explain one video: keyframes, tables, annotated clip")
    parser.add_argument("video", help="video file")
    parser.add_argument("-o", "--out", required=True, help="output folder")
    add_analysis_options(parser)
    add_common(parser)
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
    analysis = analyze(args.video, model, progress=show_progress(args), **options)
    out = analysis.save(args.out, progress=show_progress(args))
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
    add_common(parser)
    parser.set_defaults(run=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from videocam.demo import run_demo

    result = run_demo(
        args.out, render=args.render, progress=show_progress(args), method=args.method
    )
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
    add_engine_options(parser)
    add_analysis_options(parser)
    add_common(parser)
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
        **engine_options(args),
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
    add_engine_options(parser)
    add_analysis_options(parser)
    add_common(parser)
    parser.set_defaults(run=_run_batch)


def _run_batch(args: argparse.Namespace) -> int:
    """Exit code 0 when every video succeeded, 3 when some failed (OUT/failures.csv)."""
    from videocam.batch import STATUS_OK, STATUS_SKIPPED, run_batch

    config = analysis_config(args)
    report = run_batch(
        args.inputs,
        args.out,
        config,
        **engine_options(args),
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
    add_common(parser)
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
    add_common(parser)
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
    add_common(parser)
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
    parser = Parser(
        prog="videocam",
        description="Explain what a video classifier looks at, frame by frame.",
        epilog="exit codes:\n"
        + "\n".join(f"  {code:<4} {meaning}" for code, meaning in EXIT_CODES.items()),
    )
    parser.add_argument("--version", action="version", version=f"videocam {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="SUBCOMMAND", parser_class=Parser)
    for add in SUBCOMMANDS:
        add(sub)
    return parser
