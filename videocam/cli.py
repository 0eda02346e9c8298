"""Command line: ``videocam SUBCOMMAND ...`` (also ``python -m videocam``).

A thin layer: parse arguments, configure logging, call the library, and turn errors into exit
codes (0 success, 2 bad arguments or unusable input with one line on stderr, 1 internal error).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence

from videocam import __version__
from videocam.errors import VideocamError

logger = logging.getLogger("videocam")

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse that exits with code 2 and one line, as the contract says."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"videocam: error: {message}\n")


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quiet", action="store_true", help="only errors on stderr")
    parser.add_argument("--debug", action="store_true", help="debug logging and tracebacks")


# -- subcommands -------------------------------------------------------------------------------


def _add_info(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("info", help="print a video's metadata as JSON")
    parser.add_argument("video", help="video file")
    parser.add_argument("--backend", default="auto", choices=["auto", "decord", "pyav"])
    _add_common(parser)
    parser.set_defaults(run=_run_info)


def _run_info(args: argparse.Namespace) -> int:
    from videocam.io import open_video

    with open_video(args.video, args.backend) as source:
        meta = source.meta.to_dict()
    sys.stdout.write(json.dumps(meta, indent=2) + "\n")
    return EXIT_OK


SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [_add_info]


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="videocam",
        description="Explain what a video classifier looks at, frame by frame.",
    )
    parser.add_argument("--version", action="version", version=f"videocam {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="SUBCOMMAND", parser_class=_Parser)
    for add in SUBCOMMANDS:
        add(sub)
    return parser


def _configure_logging(args: argparse.Namespace) -> None:
    level = logging.WARNING
    if getattr(args, "debug", False):
        level = logging.DEBUG
    elif getattr(args, "quiet", False):
        level = logging.ERROR
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("videocam: %(levelname)s: %(message)s"))
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    _configure_logging(args)
    try:
        return int(args.run(args))
    except VideocamError as exc:
        if args.debug:
            logger.exception("failed")
        sys.stderr.write(f"videocam: error: {exc}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        sys.stderr.write("videocam: interrupted\n")
        return 130
    except Exception as exc:
        if args.debug:
            logger.exception("internal error")
        else:
            sys.stderr.write(
                f"videocam: internal error: {type(exc).__name__}: {exc} (rerun with --debug)\n"
            )
        return EXIT_INTERNAL
