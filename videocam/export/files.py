"""``export_result``: read RESULT, build the chosen format, and write it atomically where the
command line says (``videocam export otio|edl|vtt RESULT [-o FILE]``).

Where the files go:

- an ``analyze`` folder: one file, ``RESULT/keyframes.{otio,edl,vtt}`` or ``FILE`` (an
  existing folder ``FILE`` gets the default name inside);
- a ``batch`` OUT, ``otio``: one timeline with one track per video, ``OUT/keyframes.otio`` or
  ``FILE`` (likewise);
- a ``batch`` OUT, ``edl`` and ``vtt``: one file per video (an EDL holds one track, and a
  chapters track belongs to one video), ``OUT/SUB/keyframes.{edl,vtt}``, or
  ``FOLDER/SUB.{edl,vtt}`` when ``-o FOLDER`` is given.

A batch's videos without a result (failed, pending) are listed in the report and left out; a
video the format cannot hold (an EDL of a 15 fps video) is reported with its reason and the
others are still written.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from videocam.errors import ConfigError, VideocamError
from videocam.export.deps import MissingExtraError
from videocam.export.result import ResultSet, VideoResult, read_results
from videocam.render.files import atomic_write, ensure_output_dir

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_NAMES", "FORMATS", "ExportReport", "export_result"]

#: ``videocam export FORMAT``.
FORMATS: tuple[str, ...] = ("otio", "edl", "vtt")

#: The file each format writes into RESULT (or each batch sub-folder) by default.
DEFAULT_NAMES = {"otio": "keyframes.otio", "edl": "keyframes.edl", "vtt": "keyframes.vtt"}


@dataclass(frozen=True)
class ExportReport:
    """What an export wrote.

    Attributes:
        format: ``otio``, ``edl`` or ``vtt``.
        results: what was read from RESULT.
        written: the files written.
        failed: ``(video, reason)`` of videos the format could not hold (batch only).
    """

    format: str
    results: ResultSet
    written: list[Path] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)


def _write_text(text: str, path: Path) -> Path:
    ensure_output_dir(path.parent)
    with atomic_write(path) as tmp:
        tmp.write_text(text, encoding="utf-8", newline="\n")
    return path


def _builder(fmt: str) -> Callable[[VideoResult], str]:
    if fmt == "edl":
        from videocam.export.edl import edl_text

        return edl_text
    from videocam.export.vtt import webvtt_chapters

    return webvtt_chapters


def export_result(
    fmt: str, result: str | os.PathLike[str], out: str | os.PathLike[str] | None = None
) -> ExportReport:
    """Export RESULT (an ``analyze`` folder or a ``batch`` OUT) as ``fmt``: what
    ``videocam export`` does (docs/contract.md; where files go: the module docstring).

    Args:
        fmt: ``otio``, ``edl`` or ``vtt``.
        result: the folder.
        out: the file to write (a folder for ``edl`` and ``vtt`` of a batch OUT); default
            inside RESULT.

    Raises:
        ConfigError: unknown format, RESULT unusable, the format cannot hold the (only) video,
            a missing optional dependency.
        OutputError: a file cannot be written.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    results = read_results(result)
    report = ExportReport(format=fmt, results=results)
    target = None if out is None else Path(out)
    one_file = fmt == "otio" or not results.is_batch
    if one_file and target is not None and target.is_dir():
        target = target / DEFAULT_NAMES[fmt]  # -o an existing folder: the default name there
    if fmt == "otio":
        from videocam.export.otio import otio_json

        name = f"{results.folder.resolve().name} (videocam batch)" if results.is_batch else None
        text = otio_json(results.videos, name=name)
        path = target or results.folder / DEFAULT_NAMES[fmt]
        report.written.append(_write_text(text, path))
        return report
    build = _builder(fmt)
    if not results.is_batch:
        video = results.videos[0]
        path = target or video.folder / DEFAULT_NAMES[fmt]
        report.written.append(_write_text(build(video), path))
        return report
    if target is not None and target.exists() and not target.is_dir():
        raise ConfigError(
            f"{target}: not a folder: for a batch OUT, export {fmt} writes one file per video "
            "into the folder -o names"
        )
    for video in results.videos:
        try:
            text = build(video)
        except MissingExtraError:
            raise  # fails every video alike
        except VideocamError as exc:
            report.failed.append((video.name, str(exc)))
            logger.warning("%s: not exported: %s", video.name, exc)
            continue
        suffix = Path(DEFAULT_NAMES[fmt]).suffix
        path = (
            target / f"{video.name}{suffix}"
            if target is not None
            else video.folder / DEFAULT_NAMES[fmt]
        )
        report.written.append(_write_text(text, path))
    return report
