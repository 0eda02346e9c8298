"""Command line: ``videocam SUBCOMMAND ...`` (also ``python -m videocam``).

A thin layer: parse arguments, configure logging, call the library, and turn errors into exit
codes (:data:`EXIT_CODES`, also printed by ``videocam --help``): 0 success; 1 internal error (a
bug); 2 bad arguments, unusable input or a fault of the environment (a full disk...), with one
line on stderr; 3 ``batch``, ``evaluate`` and ``export`` when some videos failed; 130 after
SIGINT (Ctrl-C) and 143 after SIGTERM, with nothing half-written.

Help texts take their defaults from :class:`~videocam.config.AnalyzeConfig` (and argparse's own
defaults) and the method names from the registry :data:`videocam.cam.METHODS`, when the help is
shown (:class:`~videocam.cli.options.Parser`), so none is copied here. The options are in
:mod:`videocam.cli.options`, the subcommands in :mod:`videocam.cli.commands`.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from videocam.cli.commands import EXPORT_FORMATS, SUBCOMMANDS, build_parser
from videocam.cli.options import (
    EXIT_CODES,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_SOME_FAILED,
    EXIT_TERMINATED,
    EXIT_USAGE,
    analysis_config,
    format_default,
    logger,
    shown_default,
)
from videocam.errors import VideocamError

__all__ = [
    "EXIT_CODES",
    "EXIT_INTERNAL",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_SOME_FAILED",
    "EXIT_TERMINATED",
    "EXIT_USAGE",
    "EXPORT_FORMATS",
    "SUBCOMMANDS",
    "Terminated",
    "analysis_config",
    "build_parser",
    "format_default",
    "main",
    "shown_default",
]


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
    except Exception as exc:  # noqa: BLE001 - any other error: exit 1, an internal error
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
