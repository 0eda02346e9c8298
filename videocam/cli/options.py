"""The command line's options: exit codes, the help formatter that shows defaults from
AnalyzeConfig and the method registry, and the option groups analyze, evaluate and batch share."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TYPE_CHECKING, Any

from videocam.config import DEFAULT_METHOD, DETECTOR_METHOD, DEVICES, config_fields
from videocam.errors import ConfigError
from videocam.io import BACKEND_CHOICES

if TYPE_CHECKING:
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


class Parser(argparse.ArgumentParser):
    """argparse that exits with code 2 and one line, as the contract says, and shows defaults
    and method names in its help (:class:`_HelpFormatter`)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def error(self, message: str) -> None:  # type: ignore[override]
        """A usage error: the message on stderr and exit code 2 (argparse's own is 2 too)."""
        self.exit(EXIT_USAGE, f"videocam: error: {message}\n")


def add_common(parser: argparse.ArgumentParser) -> None:
    """``--quiet`` and ``--debug``, which every subcommand takes."""
    parser.add_argument("--quiet", action="store_true", help="only errors on stderr")
    parser.add_argument("--debug", action="store_true", help="debug logging and tracebacks")


# -- shared analysis options --------------------------------------------------------------------


def add_analysis_options(parser: argparse.ArgumentParser) -> None:
    """The options analyze / evaluate / batch share (docs/contract.md). Defaults live in
    :class:`videocam.config.AnalyzeConfig`; None here means "not given" so that a --config file
    fills it and a flag wins over both.

    Longer than 80 lines on purpose: one ``add_argument`` per option, in the order ``--help``
    shows them, reads as the option table itself; split, the table would be in pieces."""
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
    e.add_argument(
        "--target",
        help="auto, a class index, or a class name (--prompt without --target: the first prompt)",
    )
    e.add_argument(
        "--prompt",
        dest="prompts",
        action="append",
        metavar="TEXT",
        help="with an image–text model (hf: CLIP, SigLIP, X-CLIP; openclip:): what to look for, "
        "in words; "
        "repeatable, each prompt a class and a track, the first the target",
    )
    e.add_argument(
        "--negative",
        dest="negatives",
        action="append",
        metavar="TEXT",
        help="a contrast prompt for CLIP's softmax over prompts (repeatable; default with one "
        "prompt: a generic set)",
    )
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


def show_progress(args: argparse.Namespace) -> bool:
    """Whether to draw progress bars: not with ``--quiet``, and only on a terminal."""
    return not args.quiet and sys.stderr.isatty()


def add_engine_options(parser: argparse.ArgumentParser) -> None:
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


def engine_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments :func:`~videocam.batch.run_batch` and
    :func:`~videocam.evaluate.run_evaluation` take from :func:`add_engine_options`' flags (and
    ``--quiet``/``--debug``)."""
    return {
        "workers": args.workers,
        "resume": args.resume,
        "engine": args.engine,
        "ray_address": args.ray_address,
        "progress": show_progress(args),
        "log_level": logging.DEBUG if args.debug else logging.INFO,
        "timeout_s": args.timeout,
    }
