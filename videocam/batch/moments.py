"""A prompt search over a footage library (``batch --prompt``): ``OUT/moments.csv``, every
finished video's keyframes in one table, strongest first.

The moments are ranked by ``target_score`` — the prompt's probability, which means the same in
every video — then by ``attribution`` (which is on each video's own scale, so it only breaks
ties), then by video and time. ``target_score`` is the keyframe's row of the video's
``frames.csv``; ``image`` is the keyframe's image relative to OUT (empty without rendering).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from videocam.analysis.layout import FRAMES_CSV, KEYFRAMES_CSV
from videocam.batch.job import STATUS_OK, STATUS_SKIPPED, JobResult
from videocam.render.files import write_csv

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["MOMENTS_FILE", "MOMENT_COLUMNS", "moment_rows", "write_moments"]

MOMENTS_FILE = "moments.csv"
MOMENT_COLUMNS = ["rank", "video", "frame_index", "time_s", "target_score", "attribution", "image"]


def _video_moments(out_dir: Path, result: JobResult, name: str) -> pd.DataFrame | None:
    """One finished video's keyframes with their target scores (None when its tables are
    missing or unreadable)."""
    import pandas as pd

    sub = out_dir / result.output
    try:
        keyframes = pd.read_csv(sub / KEYFRAMES_CSV)
        frames = pd.read_csv(sub / FRAMES_CSV, usecols=["frame_index", "target_score"])
    except (OSError, ValueError):
        return None
    table = keyframes.merge(frames, on="frame_index", how="left")
    images = table["image"].fillna("").astype(str) if "image" in table else ""
    table["image"] = [f"{result.output}/{image}" if image else "" for image in images]
    table["video"] = name
    table["output"] = result.output
    return table


def moment_rows(
    out_dir: Path, results: Iterable[JobResult], names: Mapping[str, str]
) -> pd.DataFrame:
    """The table of :data:`MOMENT_COLUMNS` (module docstring) over the finished videos of
    ``results``, and ``output`` (the video's sub-folder); ``names`` gives each sub-folder's
    video as shown (its output name else)."""
    import pandas as pd

    tables = [
        _video_moments(out_dir, result, names.get(result.output, result.output))
        for result in results
        if result.status in (STATUS_OK, STATUS_SKIPPED)
    ]
    found = [t for t in tables if t is not None and len(t)]
    if not found:
        return pd.DataFrame(columns=[*MOMENT_COLUMNS, "output"])
    table = pd.concat(found, ignore_index=True)
    table = table.sort_values(
        ["target_score", "attribution", "video", "time_s"],
        ascending=[False, False, True, True],
        kind="stable",
        na_position="last",
    ).reset_index(drop=True)
    table["rank"] = range(1, len(table) + 1)
    return table[[*MOMENT_COLUMNS, "output"]]


def write_moments(
    out_dir: Path, results: Iterable[JobResult], names: Mapping[str, str]
) -> pd.DataFrame:
    """Write ``OUT/moments.csv`` (atomically) and return its table (with ``output``)."""
    table = moment_rows(out_dir, results, names)
    write_csv(table[MOMENT_COLUMNS], out_dir / MOMENTS_FILE)
    return table
