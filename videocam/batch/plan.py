"""Batch planning: list the input videos and give each a stable, unique, safe sub-folder name.

A folder is searched recursively for files with a video extension (hidden files and folders,
and folders holding a batch's own outputs, are skipped); a manifest CSV lists them in its
``path`` column (relative paths resolve against the manifest's folder). Videos are planned in a
deterministic order (sorted relative paths; manifest order), and every name is a function of the
video's path alone, so a rerun over the same inputs finds the same sub-folders (``--resume``
depends on it).

Naming: the path relative to the input folder (or manifest folder) with ``/`` turned into
``__`` (``a/clip.mp4`` -> ``a__clip.mp4``). Whenever that is not a faithful, reversible spelling
- characters outside ``[A-Za-z0-9._+-]``, a ``__`` inside a component, a leading dot, a reserved
name, a name over :data:`MAX_NAME_CHARS`, or a video outside the base folder (absolute manifest
entries, ``../``) - a short hash of the full path is appended (``clip.mp4-1a2b3c4d``). Names never
contain a separator and never start with a dot, so no entry can write outside OUT.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from videocam.errors import ConfigError

logger = logging.getLogger(__name__)

#: File extensions (lower case) a folder search takes as videos.
VIDEO_EXTENSIONS: frozenset[str] = frozenset(
    {
        ".mp4",
        ".m4v",
        ".mov",
        ".avi",
        ".mkv",
        ".webm",
        ".mpg",
        ".mpeg",
        ".ts",
        ".mts",
        ".m2ts",
        ".wmv",
        ".flv",
        ".3gp",
        ".ogv",
    }
)

#: A folder holding this file is a batch's output folder (never searched for inputs).
LOCK_FILE = ".batch.lock"

#: Names a sub-folder must not take (the batch's own files in OUT).
RESERVED_NAMES: frozenset[str] = frozenset(
    {"index.csv", "failures.csv", "batch.json", "report.html", LOCK_FILE}
)

#: Longest sub-folder name before the hash suffix.
MAX_NAME_CHARS = 96

_UNSAFE = re.compile(r"[^A-Za-z0-9._+\-]")
_SEPARATOR = "__"


@dataclass(frozen=True)
class Job:
    """One video of a batch.

    Attributes:
        path: the video file, absolute (normalised, symlinks kept).
        name: its sub-folder name inside OUT (see the module docstring).
        out_dir: ``OUT / name``, absolute.
    """

    path: Path
    name: str
    out_dir: Path


def _short_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogateescape")).hexdigest()[:8]


def _absolute(path: str | os.PathLike[str]) -> Path:
    # Lexical normalisation (``a/../b`` -> ``b``) without resolving symlinks, so names follow
    # what the user wrote and do not change when a link target does.
    return Path(os.path.abspath(os.fspath(path)))


def sub_folder_name(video: str | os.PathLike[str], base: str | os.PathLike[str]) -> str:
    """The sub-folder name of ``video`` listed under ``base`` (the input or manifest folder).

    Deterministic, a single path component, never ``.``/``..``/hidden, at most
    ``MAX_NAME_CHARS + 9`` characters; distinct paths get distinct names (up to a 32-bit hash).
    """
    video_abs, base_abs = _absolute(video), _absolute(base)
    try:
        relative = video_abs.relative_to(base_abs).as_posix()
    except ValueError:
        relative = ""
    if relative and relative != ".":
        parts = relative.split("/")
        key = relative
        outside = False
    else:
        parts = [video_abs.name or "video"]
        key = video_abs.as_posix()
        outside = True
    cleaned = [_UNSAFE.sub("_", part) for part in parts]
    name = _SEPARATOR.join(cleaned)
    lossy = (
        outside
        or cleaned != parts
        or any(_SEPARATOR in part for part in parts)
        or name.startswith(".")
        or name in RESERVED_NAMES
        or len(name) > MAX_NAME_CHARS
    )
    if name.startswith("."):
        name = "_" + name[1:]
    name = name[:MAX_NAME_CHARS]
    return f"{name}-{_short_hash(key)}" if lossy else name


def find_videos(folder: Path, *, exclude: Path | None = None) -> list[Path]:
    """Video files under ``folder`` (recursive), sorted by relative path.

    Hidden files and folders are skipped, as are ``exclude`` (the batch's OUT, when it lies
    inside the input folder) and any folder holding a batch's outputs (:data:`LOCK_FILE`).
    """
    excluded = os.path.realpath(exclude) if exclude is not None else None
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        kept = []
        for d in sorted(dirnames):
            full = os.path.join(dirpath, d)
            if d.startswith(".") or os.path.realpath(full) == excluded:
                continue
            if os.path.exists(os.path.join(full, LOCK_FILE)):
                logger.info("%s: skipped (a batch output folder)", full)
                continue
            kept.append(d)
        dirnames[:] = kept
        for f in filenames:
            if not f.startswith(".") and os.path.splitext(f)[1].lower() in VIDEO_EXTENSIONS:
                found.append(Path(dirpath, f))
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def _make_jobs(videos: Iterable[Path], base: Path, out_dir: Path) -> list[Job]:
    seen: set[Path] = set()
    listed: list[tuple[Path, str]] = []
    for video in videos:
        absolute = _absolute(video)
        if absolute in seen:
            logger.warning("%s is listed more than once; analysing it once", absolute)
            continue
        seen.add(absolute)
        listed.append((absolute, sub_folder_name(absolute, base)))
    # Names that differ only by case would share a folder on case-insensitive file systems: add
    # the (path-derived, order-independent) hash to each of them.
    by_fold: dict[str, list[int]] = {}
    for i, (_, name) in enumerate(listed):
        by_fold.setdefault(name.casefold(), []).append(i)
    for indices in by_fold.values():
        if len(indices) > 1:
            for i in indices:
                path, name = listed[i]
                listed[i] = (path, f"{name}-{_short_hash(path.as_posix())}")
    names = [name.casefold() for _, name in listed]
    if len(set(names)) != len(names):  # a hash collision: astronomically unlikely
        raise RuntimeError("batch planning produced two identical sub-folder names")
    out_abs = _absolute(out_dir)
    return [Job(path=path, name=name, out_dir=out_abs / name) for path, name in listed]


def plan_jobs(inputs: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> list[Job]:
    """List the videos of a folder or manifest CSV, each with its sub-folder in ``out_dir``.

    Raises:
        ConfigError: ``inputs`` is missing, neither a folder nor a ``.csv`` manifest, a folder
            without videos, or a bad manifest (see
            :func:`videocam.manifest.read_manifest`).
    """
    source = Path(inputs)
    if source.is_dir():
        videos = find_videos(source, exclude=Path(out_dir))
        if not videos:
            extensions = " ".join(sorted(VIDEO_EXTENSIONS))
            raise ConfigError(f"{source}: no video files found (extensions: {extensions})")
        return _make_jobs(videos, source, Path(out_dir))
    if not source.exists():
        raise ConfigError(f"{source}: no such folder or manifest")
    if source.suffix.lower() != ".csv":
        raise ConfigError(
            f"{source}: INPUTS must be a folder of videos or a manifest .csv with a 'path' "
            "column (for one video, use `videocam analyze`)"
        )
    from videocam.manifest import read_manifest

    entries = read_manifest(source)
    return _make_jobs((e.path for e in entries), source.parent, Path(out_dir))
