"""Reading what the exports are made from: the four contract files of an ``analyze`` output
folder (frames.csv, keyframes.csv, segments.csv, summary.json), or of every complete video of a
``batch`` OUT (its index.csv names them).

Nothing else is read (not cams.npy, not the video), so a folder written by an older videocam
exports without re-analysis. A folder that lacks a file, or holds one that cannot be read, is a
:class:`~videocam.errors.ConfigError` naming the folder and the file.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from videocam.analysis.layout import FRAMES_CSV, KEYFRAMES_CSV, SEGMENTS_CSV, SUMMARY_JSON
from videocam.batch import STATUS_OK, STATUS_SKIPPED
from videocam.batch.runner import INDEX_FILE
from videocam.errors import ConfigError
from videocam.render.chapters import Chapter, FrameClock, analysis_chapters

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)

__all__ = ["CONTRACT_FILES", "ResultSet", "VideoResult", "read_result", "read_results"]

#: The files an export reads from an ``analyze`` output folder.
CONTRACT_FILES = (FRAMES_CSV, KEYFRAMES_CSV, SEGMENTS_CSV, SUMMARY_JSON)

#: The columns each table must have (older folders have at least these).
_REQUIRED_COLUMNS = {
    FRAMES_CSV: ("frame_index", "time_s"),
    KEYFRAMES_CSV: ("rank", "frame_index", "time_s", "attribution"),
    SEGMENTS_CSV: ("start_frame", "end_frame", "start_s", "end_s", "attribution"),
}


@dataclass(frozen=True)
class VideoResult:
    """One video's analysis, as its output folder holds it.

    Attributes:
        folder: the output folder.
        name: what tracks and messages call it: the sub-folder name in a batch, else the
            video's file name.
        frames, keyframes, segments: the tables (keyframes in rank order, segments in time
            order).
        summary: summary.json.
    """

    folder: Path
    name: str
    frames: pd.DataFrame = field(repr=False)
    keyframes: pd.DataFrame = field(repr=False)
    segments: pd.DataFrame = field(repr=False)
    summary: dict[str, Any] = field(repr=False)

    @property
    def video(self) -> dict[str, Any]:
        """summary.json ``video``: the source's metadata."""
        return dict(self.summary["video"])

    @property
    def video_path(self) -> str:
        """The source video as summary.json records it."""
        return str(self.video["path"])

    @property
    def video_name(self) -> str:
        """The source video's file name."""
        return Path(self.video_path).name

    @cached_property
    def fps(self) -> Fraction:
        """The frame rate: ``video.fps_fraction`` (older folders: ``video.fps``)."""
        video = self.video
        raw = video.get("fps_fraction")
        try:
            if raw:
                fps = Fraction(str(raw))
            else:
                fps = Fraction(float(video["fps"])).limit_denominator(1001)
        except (KeyError, ValueError, TypeError, ZeroDivisionError) as exc:
            raise ConfigError(
                f"{self.folder / SUMMARY_JSON}: no usable frame rate in 'video' "
                f"(fps_fraction {raw!r})"
            ) from exc
        if fps <= 0:
            raise ConfigError(f"{self.folder / SUMMARY_JSON}: frame rate {fps} is not positive")
        return fps

    @property
    def n_frames(self) -> int:
        """Frames in the video (summary.json's ``video.n_frames``)."""
        return int(self.video["n_frames"])

    @property
    def duration_s(self) -> float:
        """The video's length in seconds."""
        return float(self.video["duration_s"])

    @property
    def target(self) -> tuple[int | None, str]:
        """(index, name) of the explained class."""
        target = self.summary.get("target") or {}
        index = target.get("index")
        return (None if index is None else int(index)), str(target.get("name", "?"))

    @property
    def label(self) -> str:
        """The explained class's name."""
        return self.target[1]

    @cached_property
    def clock(self) -> FrameClock:
        """Frame index -> presentation time, from frames.csv and the frame rate."""
        return FrameClock.from_frames(
            self.frames, fps=self.fps, n_frames=self.n_frames, duration_s=self.duration_s
        )

    @cached_property
    def target_scores(self) -> dict[int, float]:
        """frames.csv ``target_score`` by frame index (empty when the column is absent)."""
        if "target_score" not in self.frames.columns:
            return {}
        return dict(
            zip(
                self.frames["frame_index"].astype(int).tolist(),
                self.frames["target_score"].astype(float).tolist(),
                strict=True,
            )
        )

    def chapters(self) -> list[Chapter]:
        """The chapters of this video (:func:`videocam.render.chapters.analysis_chapters`):
        the same as its annotated clip's."""
        return analysis_chapters(
            self.frames, self.keyframes, self.segments, clock=self.clock, label=self.label
        )

    def media_path(self) -> str:
        """The source video for a media reference: the recorded path, made absolute against
        the current folder when it is relative and found there (a warning otherwise: the
        editor will ask to relink it)."""
        path = Path(self.video_path)
        if path.is_absolute():
            return str(path)
        if path.exists():
            return str(path.resolve())
        logger.warning(
            "%s: the source video %s is a relative path not found from here; the export refers "
            "to it as recorded (relink it in the editor)",
            self.folder,
            path,
        )
        return path.as_posix()


@dataclass(frozen=True)
class ResultSet:
    """What an export reads from RESULT.

    Attributes:
        folder: RESULT.
        videos: the videos with a result: one for an ``analyze`` folder, every complete video
            of a batch OUT in index.csv order.
        is_batch: RESULT is a batch OUT.
        missing: for a batch, ``(sub-folder, status)`` of the videos without a result
            (failed, pending).
    """

    folder: Path
    videos: list[VideoResult]
    is_batch: bool = False
    missing: list[tuple[str, str]] = field(default_factory=list)


def _read_csv(path: Path) -> pd.DataFrame:
    import pandas as pd

    try:
        table = pd.read_csv(path)
    except pd.errors.EmptyDataError as exc:
        raise ConfigError(f"{path}: empty file (no header)") from exc
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise ConfigError(f"{path}: cannot read: {_reason(exc)}") from exc
    missing = [c for c in _REQUIRED_COLUMNS[path.name] if c not in table.columns]
    if missing:
        raise ConfigError(f"{path}: missing column(s) {', '.join(missing)}")
    return table


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc).strip()
    return text.splitlines()[-1] if text else type(exc).__name__


def _read_summary(path: Path) -> dict[str, Any]:
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {_reason(exc)}") from exc
    video = summary.get("video") if isinstance(summary, dict) else None
    if not isinstance(video, dict):
        raise ConfigError(f"{path}: no 'video' metadata")
    absent = [k for k in ("path", "n_frames", "duration_s") if k not in video]
    if "fps_fraction" not in video and "fps" not in video:
        absent.append("fps_fraction")
    if absent:
        raise ConfigError(f"{path}: 'video' lacks {', '.join(absent)}")
    return summary


def _check_folder(folder: Path) -> None:
    if not folder.exists():
        raise ConfigError(f"{folder}: no such folder")
    if not folder.is_dir():
        raise ConfigError(
            f"{folder}: not a folder (RESULT is an analyze output folder or a batch OUT)"
        )


def read_result(folder: str | os.PathLike[str], *, name: str | None = None) -> VideoResult:
    """Read an ``analyze`` output folder's contract files.

    Args:
        folder: the output folder.
        name: what to call the video (default: its file name).

    Raises:
        ConfigError: the folder is missing, lacks one of :data:`CONTRACT_FILES`, or holds one
            that cannot be read or is inconsistent (one line naming the folder and the file).
    """
    import pandas as pd

    folder = Path(folder)
    _check_folder(folder)
    absent = [f for f in CONTRACT_FILES if not (folder / f).is_file()]
    if absent:
        verb = "is" if len(absent) == 1 else "are"
        raise ConfigError(
            f"{folder}: {', '.join(absent)} {verb} missing (an analyze output folder holds "
            f"{', '.join(CONTRACT_FILES)})"
        )
    summary = _read_summary(folder / SUMMARY_JSON)
    frames = _read_csv(folder / FRAMES_CSV)
    keyframes = _read_csv(folder / KEYFRAMES_CSV).sort_values("rank", kind="stable")
    segments = _read_csv(folder / SEGMENTS_CSV).sort_values("start_frame", kind="stable")
    result = VideoResult(
        folder=folder,
        name=name or Path(str(summary["video"]["path"])).name,
        frames=frames.reset_index(drop=True),
        keyframes=keyframes.reset_index(drop=True),
        segments=segments.reset_index(drop=True),
        summary=summary,
    )
    n = result.n_frames
    for file, values in (
        (FRAMES_CSV, frames["frame_index"]),
        (KEYFRAMES_CSV, keyframes["frame_index"]),
        (SEGMENTS_CSV, pd.concat([segments["start_frame"], segments["end_frame"]])),
    ):
        if len(values) and (values.min() < 0 or values.max() >= n):
            raise ConfigError(
                f"{folder / file}: frame indices outside the video's {n} frames (summary.json)"
            )
    if len(segments) and (segments["end_frame"] < segments["start_frame"]).any():
        raise ConfigError(f"{folder / SEGMENTS_CSV}: a segment ends before it starts")
    _ = result.fps  # validated here, once
    return result


def read_results(folder: str | os.PathLike[str]) -> ResultSet:
    """Read RESULT: an ``analyze`` output folder (summary.json) or a ``batch`` OUT (index.csv:
    every video whose status is ``ok`` or ``skipped-complete``, in index order).

    Raises:
        ConfigError: RESULT is neither, a video of the batch listed as complete lacks a file,
            or no video of the batch has a result.
    """
    import pandas as pd

    folder = Path(folder)
    _check_folder(folder)
    index_path = folder / INDEX_FILE
    if not index_path.is_file() and not any((folder / f).exists() for f in CONTRACT_FILES):
        raise ConfigError(
            f"{folder}: neither an analyze output folder ({SUMMARY_JSON} is missing) nor a "
            f"batch OUT ({INDEX_FILE} is missing)"
        )
    if (folder / SUMMARY_JSON).is_file() or not index_path.is_file():
        return ResultSet(folder=folder, videos=[read_result(folder)])
    try:
        index = pd.read_csv(index_path, keep_default_na=False, dtype=str)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ConfigError(f"{index_path}: cannot read: {_reason(exc)}") from exc
    absent = [c for c in ("output", "status") if c not in index.columns]
    if absent:
        raise ConfigError(f"{index_path}: missing column(s) {', '.join(absent)}")
    videos, missing = [], []
    for row in index.itertuples(index=False):
        sub, status = str(row.output), str(row.status)
        if status not in (STATUS_OK, STATUS_SKIPPED):
            missing.append((sub, status))
            continue
        videos.append(read_result(folder / sub, name=sub))
    if not videos:
        counts = ", ".join(f"{n} {s}" for s, n in _count(s for _, s in missing).items())
        raise ConfigError(f"{folder}: no video of this batch has a result ({counts or 'none'})")
    return ResultSet(folder=folder, videos=videos, is_batch=True, missing=missing)


def _count(values: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return counts
