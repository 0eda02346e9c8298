"""Batch planning: list the input videos and give each a stable, unique, safe sub-folder name.

A folder is searched recursively for videos: files with an extension of
:data:`~videocam.io.VIDEO_EXTENSIONS`, and any other file that ``analyze`` would read as a video
(:func:`~videocam.io.why_not_a_video`); every other file is skipped with its reason
(:class:`Skipped`), as is a folder holding a batch's outputs; hidden files and folders are not
searched. A manifest CSV lists the videos in its ``path`` column (relative paths resolve
against the manifest's folder). Videos are planned in a deterministic order (sorted relative
paths; manifest order), and every name is a function of the video's path alone, so a rerun over
the same inputs finds the same sub-folders (``--resume`` depends on it).

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
from videocam.io import VIDEO_EXTENSIONS, why_not_a_video

logger = logging.getLogger(__name__)

#: Held while a batch (or an evaluation) writes into its OUT; removed when it ends.
LOCK_FILE = ".batch.lock"
#: A folder holding one of these is a batch's output folder (never searched for inputs): the
#: lock while it runs, the batch's summary (batch.json) from its end on.
OUTPUT_MARKERS = (LOCK_FILE, "batch.json")

#: Names a sub-folder must not take (the batch's own files in OUT).
RESERVED_NAMES: frozenset[str] = frozenset(
    {
        "index.csv",
        "failures.csv",
        "skipped.csv",
        "moments.csv",
        "batch.json",
        "report.html",
        LOCK_FILE,
    }
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


@dataclass(frozen=True)
class Skipped:
    """A file (or folder) of the input folder that is not analysed, and why (``skipped.csv``)."""

    path: Path
    reason: str


@dataclass(frozen=True)
class FolderScan:
    """What a folder search finds: the videos, sorted by relative path, and what it skips."""

    videos: list[Path]
    skipped: list[Skipped]


def is_batch_output(folder: str | os.PathLike[str]) -> bool:
    """Whether ``folder`` holds a batch's (or an evaluation's) outputs: its lock while it runs,
    its ``batch.json`` afterwards."""
    return any(os.path.exists(os.path.join(folder, name)) for name in OUTPUT_MARKERS)


def scan_folder(folder: Path, *, exclude: Path | None = None) -> FolderScan:
    """The videos under ``folder`` (recursive) and the files skipped, with their reasons.

    A file is a video when its extension is one of :data:`~videocam.io.VIDEO_EXTENSIONS`, or
    when ``analyze`` would read it as one (:func:`~videocam.io.why_not_a_video`, which opens
    it). Hidden files and folders are not searched, nor is ``exclude`` (the batch's OUT, when it
    lies inside the input folder); a folder holding a batch's outputs is skipped whole.
    """
    excluded = os.path.realpath(exclude) if exclude is not None else None
    found: list[Path] = []
    skipped: list[Skipped] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        kept = []
        for d in sorted(dirnames):
            full = os.path.join(dirpath, d)
            if d.startswith(".") or os.path.realpath(full) == excluded:
                continue
            if is_batch_output(full):
                skipped.append(Skipped(Path(full), "a batch's output folder (not searched)"))
                continue
            kept.append(d)
        dirnames[:] = kept
        for f in filenames:
            if f.startswith("."):
                continue
            path = Path(dirpath, f)
            reason = None
            if os.path.splitext(f)[1].lower() not in VIDEO_EXTENSIONS:
                reason = why_not_a_video(path)
            if reason is None:
                found.append(path)
            else:
                skipped.append(Skipped(path, reason))

    def relative(p: Path) -> str:
        return p.relative_to(folder).as_posix()

    return FolderScan(
        videos=sorted(found, key=relative),
        skipped=sorted(skipped, key=lambda s: relative(s.path)),
    )


def find_videos(folder: Path, *, exclude: Path | None = None) -> list[Path]:
    """The videos of :func:`scan_folder`."""
    return scan_folder(folder, exclude=exclude).videos


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


@dataclass(frozen=True)
class Plan:
    """The videos of a batch, each with its sub-folder, and the files of the input folder that
    are skipped (none for a manifest: its entries are all analysed, or fail)."""

    jobs: list[Job]
    skipped: list[Skipped]


def plan_jobs(inputs: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> list[Job]:
    """The jobs of :func:`plan_batch`."""
    return plan_batch(inputs, out_dir).jobs


def plan_batch(inputs: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> Plan:
    """List the videos of a folder or manifest CSV, each with its sub-folder in ``out_dir``,
    and the files of a folder that are not videos.

    Raises:
        ConfigError: ``inputs`` is missing, neither a folder nor a ``.csv`` manifest, a folder
            without videos, or a bad manifest (see
            :func:`videocam.manifest.read_manifest`).
    """
    source = Path(inputs)
    if source.is_dir():
        scan = scan_folder(source, exclude=Path(out_dir))
        if not scan.videos:
            extensions = " ".join(sorted(VIDEO_EXTENSIONS))
            others = f"; {len(scan.skipped)} other file(s) skipped" if scan.skipped else ""
            raise ConfigError(
                f"{source}: no video files found (extensions: {extensions}, or any file "
                f"FFmpeg reads as a video{others})"
            )
        return Plan(_make_jobs(scan.videos, source, Path(out_dir)), scan.skipped)
    if not source.exists():
        raise ConfigError(f"{source}: no such folder or manifest")
    if source.suffix.lower() != ".csv":
        raise ConfigError(
            f"{source}: INPUTS must be a folder of videos or a manifest .csv with a 'path' "
            "column (for one video, use `videocam analyze`)"
        )
    from videocam.manifest import read_manifest

    entries = read_manifest(source)
    return Plan(_make_jobs((e.path for e in entries), source.parent, Path(out_dir)), [])
