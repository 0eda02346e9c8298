"""The review pages (``report.html``): self-contained HTML a reviewer opens from the output
folder in an ordinary browser, with no server and no network.

- :func:`write_video_report`: one video: the annotated clip in a player, an interactive
  timeline (attribution, target score, segments, keyframes, one lane per class track), the
  keyframe gallery, the segments and the summary; ``#t=SECONDS`` opens it at that time.
- :func:`write_batch_report`: a batch: one row per video, sortable and filterable, with links
  into each video's page at its keyframes' times.
- :func:`write_evaluation_report`: an evaluation: accuracy, confusion matrix, mean curves
  against random order, the per-video table.

Like every renderer, these take plain tables, dicts and relative paths (:mod:`.data` builds what
a page embeds; :mod:`.page` assembles the HTML and its Content-Security-Policy); which pages an
analysis, a batch or an evaluation writes is decided above.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from videocam.render.report.data import (
    encode_array,
    finite,
    script_json,
    segment_share,
    video_page_data,
    video_stats,
)
from videocam.render.report.page import content_security_policy, render_page, write_page

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "batch_row_links",
    "content_security_policy",
    "encode_array",
    "render_page",
    "script_json",
    "segment_share",
    "video_page_data",
    "video_stats",
    "write_batch_report",
    "write_evaluation_report",
    "write_video_report",
]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("videocam")
    except PackageNotFoundError:
        return "unknown"


def _href(*parts: str) -> str:
    """A relative URL from path parts (each may hold ``/``), every segment percent-encoded;
    ``.``, ``..`` and leading ``/`` are dropped, so it stays inside the page's folder."""
    dropped = ("", ".", "..")
    segments = [s for part in parts for s in part.split("/") if s not in dropped]
    return "/".join(quote(s, safe="") for s in segments)


def write_video_report(
    path: str | os.PathLike[str],
    *,
    frames: pd.DataFrame,
    keyframes: pd.DataFrame,
    segments: pd.DataFrame,
    summary: Mapping[str, Any],
    tracks: pd.DataFrame | None = None,
    video: str = "annotated.mp4",
    name: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> Path:
    """The review page of one video, written atomically at ``path``.

    Args:
        path: the page (``OUT/report.html``); media paths are relative to its folder.
        frames: frames.csv's table (``frame_index``, ``time_s``, ``attribution``,
            ``target_score``).
        keyframes: keyframes.csv's table (``rank``, ``frame_index``, ``time_s``,
            ``attribution``, ``image``: the image's path relative to the page).
        segments: segments.csv's table.
        summary: summary.json's content (model, target, decode, warnings, timings, versions).
        tracks: optional long-format per-class tracks (``frame_index``, ``time_s``,
            ``class_index``, ``class_name``, ``attribution``, ``target_score``): one timeline
            lane per class.
        video: the clip the player plays, relative to the page.
        name: what the page calls the video (default: the file name in ``summary``).
        tags: the container's metadata tags (``title``...), shown with the video's facts.
    """
    if name is None:
        name = PurePosixPath(str((summary.get("video") or {}).get("path", "video"))).name
    data = video_page_data(
        frames=frames,
        keyframes=keyframes.assign(
            image=[_href(str(i)) if isinstance(i, str) and i else "" for i in keyframes["image"]]
        )
        if "image" in keyframes
        else keyframes.assign(image=""),
        segments=segments,
        summary=summary,
        tracks=tracks,
        video=_href(video),
        name=name,
        tags=tags,
    )
    target = (summary.get("target") or {}).get("name", "")
    text = render_page(
        "video",
        f"{name}: {target} — videocam",
        data,
        footer=f"videocam {_version()} · review page of {name}",
    )
    return write_page(path, text)


def batch_row_links(row: Mapping[str, Any]) -> dict[str, str]:
    """The links of one batch row, relative to the batch page and percent-encoded: ``report``
    (the video's page), ``thumb`` (its top keyframe image), ``log``; each from the row's
    ``output`` sub-folder and the same key's path inside it (``report``,
    ``top_keyframe_image``, ``log``), empty where that is empty."""
    output = str(row.get("output") or "")
    links = {}
    for key, source in (("report", "report"), ("thumb", "top_keyframe_image"), ("log", "log")):
        inside = str(row.get(source) or "")
        links[key] = _href(output, inside) if output and inside else ""
    return links


def _moment(row: Mapping[str, Any]) -> dict[str, Any]:
    """One ranked moment for the batch page, its links relative to the page."""
    output = str(row.get("output") or "")
    image = str(row.get("image") or "")
    inside = str(row.get("report") or "")
    return {
        "rank": int(row["rank"]),
        "video": str(row.get("video") or ""),
        "time_s": float(row["time_s"]),
        "target_score": finite(row.get("target_score")),
        "attribution": finite(row.get("attribution")),
        "image": _href(image) if image else "",
        "report": _href(output, inside) if output and inside else "",
    }


def write_batch_report(
    path: str | os.PathLike[str],
    rows: Sequence[Mapping[str, Any]],
    *,
    title: str = "Batch",
    finished: bool = False,
    model: str = "",
    method: str = "",
    updated_at: str = "",
    prompts: Sequence[str] = (),
    moments: Sequence[Mapping[str, Any]] = (),
) -> Path:
    """The review page of a batch, written atomically at ``path`` (OUT/report.html).

    Args:
        rows: one per video, in plan order: ``name`` (shown, searched), ``output`` (its
            sub-folder, relative to the page), ``status``, ``target``, ``peak_target_score``,
            ``peak_attribution``, ``segment_share``, ``keyframe_times_s`` (rank order), and
            paths relative to the sub-folder, empty when absent: ``report`` (the video's
            page), ``top_keyframe_image``, ``log``; ``error_type``, ``error``.
        title: the page's heading.
        finished: the batch has ended (else the page says it is in progress).
        model, method: shown in the heading.
        updated_at: when the page was written, as shown.
        prompts: a prompt search's texts (``batch --prompt``), shown in the heading.
        moments: a prompt search's ranked moments (moments.csv's rows, strongest first): the
            page lists them ("Search the footage"), each linking into its video's page at its
            time; besides the columns, ``output`` (the video's sub-folder) and ``report``
            (its page inside it, empty when it has none).
    """
    counts = {"videos": len(rows), "ok": 0, "skipped_complete": 0, "failed": 0, "pending": 0}
    key = {"ok": "ok", "skipped-complete": "skipped_complete", "failed": "failed"}
    page_rows = []
    for row in rows:
        status = str(row.get("status") or "")
        counts[key.get(status, "pending")] += 1
        links = batch_row_links(row)
        times = row.get("keyframe_times_s") or []
        page_rows.append(
            {
                "name": str(row.get("name") or row.get("output") or ""),
                "output": str(row.get("output") or ""),
                "status": status,
                "target": str(row.get("target") or ""),
                "peak_target_score": row.get("peak_target_score"),
                "peak_attribution": row.get("peak_attribution"),
                "segment_share": row.get("segment_share"),
                "keyframes": [float(t) for t in times],
                "error_type": str(row.get("error_type") or ""),
                "error": str(row.get("error") or ""),
                **links,
            }
        )
    data = {
        "kind": "batch",
        "title": title,
        "finished": finished,
        "model": model,
        "method": method,
        "updated_at": updated_at,
        "counts": counts,
        "rows": page_rows,
        "prompts": [str(p) for p in prompts],
        "moments": [_moment(m) for m in moments],
    }
    text = render_page(
        "batch", f"{title} — videocam", data, footer=f"videocam {_version()} · batch review page"
    )
    return write_page(path, text)


def _display_names(paths: Sequence[str]) -> list[str]:
    """Paths with their common folder taken off (``/data/a/x.mp4``, ``/data/b/y.mp4`` ->
    ``a/x.mp4``, ``b/y.mp4``); a lone path keeps its file name."""
    if not paths:
        return []
    try:
        common = os.path.commonpath([os.path.dirname(p) for p in paths])
    except ValueError:  # mixed absolute and relative paths
        return list(paths)
    return [os.path.relpath(p, common) if common else p for p in paths]


def write_evaluation_report(
    path: str | os.PathLike[str],
    metrics: pd.DataFrame,
    summary: Mapping[str, Any],
    *,
    title: str = "Evaluation",
) -> Path:
    """The review page of an evaluation, written atomically at ``path`` (OUT/report.html).

    Args:
        metrics: metrics.csv's table, one row per video.
        summary: the evaluation's summary.json content (accuracy, means, curves, confusion
            matrix, model, config).
        title: the page's heading.
    """
    records = metrics.astype(object).where(metrics.notna(), None).to_dict("records")
    names = _display_names([str(r.get("path") or "") for r in records])
    rows = []
    for record, name in zip(records, names, strict=True):
        correct = record.get("correct")
        row = {str(k): v for k, v in record.items()}
        row["name"] = name
        row["correct"] = None if correct is None or correct == "" else bool(correct)
        rows.append(row)
    data = {"kind": "evaluate", "title": title, "summary": dict(summary), "rows": rows}
    text = render_page(
        "evaluate",
        f"{title} — videocam",
        data,
        footer=f"videocam {_version()} · evaluation review page",
    )
    return write_page(path, text)
