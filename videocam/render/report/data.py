"""The data the review pages embed: compact per-frame arrays (curves as base64 typed arrays),
the scales of the timeline's lanes, the numbers a page shows about a video, and JSON that is
safe inside an HTML ``<script>`` element.

Pure numpy and standard library; nothing here knows about HTML beyond :func:`script_json`.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from videocam.render.files import _jsonable
from videocam.render.timeline import evidence_level, score_axis_top

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "encode_array",
    "finite",
    "script_json",
    "segment_share",
    "track_curves",
    "video_page_data",
    "video_stats",
]

# Characters that must not appear raw in a <script> element's text (they could close it, open a
# comment or an entity) or that older JavaScript parsers treat as line ends.
_SCRIPT_ESCAPES = {
    ord("<"): "\\u003c",
    ord(">"): "\\u003e",
    ord("&"): "\\u0026",
    0x2028: "\\u2028",
    0x2029: "\\u2029",
}


def script_json(obj: Any) -> str:
    """``obj`` as JSON text that can sit inside ``<script type="application/json">`` as is.

    Every non-ASCII character is written as a ``\\u`` escape of four hex digits (lone surrogates of
    undecodable file names included, so the page's bytes are always valid UTF-8), and ``<``,
    ``>``, ``&``, U+2028 and U+2029 too: the text cannot end the element (``</script>``), open
    a comment (``<!--``) or be read as markup, whatever the strings hold. NaN and infinities
    become ``null``; numpy values become numbers and lists.
    """
    options: dict[str, Any] = {"ensure_ascii": True, "allow_nan": False, "separators": (",", ":")}
    try:
        # Plain data (most of a batch's 10,000 rows) goes straight through; numpy values on
        # the way are converted one by one.
        text = json.dumps(obj, default=_jsonable, **options)
    except (ValueError, TypeError):
        # A NaN or infinity somewhere (or a key json refuses): the whole walk makes them null.
        text = json.dumps(_jsonable(obj), **options)
    return text.translate(_SCRIPT_ESCAPES)


def encode_array(values: np.ndarray | Sequence[float], dtype: str = "<f4") -> str:
    """A 1-D array as base64 of its little-endian bytes (``<f4``, ``<f8``, ``<i4``), which the
    page reads into a typed array without parsing numbers; NaN survives (a gap)."""
    array = np.ascontiguousarray(np.asarray(values).reshape(-1), dtype=np.dtype(dtype))
    return base64.b64encode(array.tobytes()).decode("ascii")


def segment_share(frame_index: np.ndarray, segments: pd.DataFrame) -> float | None:
    """Share of the analysed frames that lie inside a segment (None without frames)."""
    indices = np.asarray(frame_index, dtype=np.int64)
    if not len(indices):
        return None
    inside = np.zeros(len(indices), dtype=bool)
    for start, end in zip(segments.start_frame, segments.end_frame, strict=True):
        inside |= (indices >= int(start)) & (indices <= int(end))
    return float(inside.mean())


def video_stats(frames: pd.DataFrame, segments: pd.DataFrame) -> dict[str, float | None]:
    """The numbers the pages show about one video: ``peak_target_score``, ``peak_attribution``
    (the largest over its frames) and ``segment_share`` (:func:`segment_share`)."""

    def peak(column: str) -> float | None:
        values = frames[column].to_numpy(dtype=np.float64)
        values = values[~np.isnan(values)]
        return float(values.max()) if len(values) else None

    return {
        "peak_target_score": peak("target_score"),
        "peak_attribution": peak("attribution"),
        "segment_share": segment_share(frames.frame_index.to_numpy(), segments),
    }


def track_curves(frames: pd.DataFrame, tracks: pd.DataFrame) -> list[dict[str, Any]]:
    """Per class of a long-format tracks table (``frame_index``, ``class_index``,
    ``class_name``, ``attribution``, ``target_score``), its curves aligned with ``frames``'
    rows (NaN where a frame has no row), in order of first appearance."""
    order = frames.frame_index.to_numpy(dtype=np.int64)
    position = {int(f): p for p, f in enumerate(order.tolist())}
    out: list[dict[str, Any]] = []
    for _, group in tracks.groupby("class_index", sort=False):
        rows = np.array([position.get(int(f), -1) for f in group.frame_index], dtype=np.int64)
        found = rows >= 0
        curves = {}
        for column in ("attribution", "target_score"):
            curve = np.full(len(order), np.nan)
            if column in group.columns:
                curve[rows[found]] = group[column].to_numpy(dtype=np.float64)[found]
            curves[column] = curve
        class_index = int(group["class_index"].iloc[0])
        name = group["class_name"].iloc[0] if "class_name" in group.columns else class_index
        out.append({"class_index": class_index, "class_name": str(name), **curves})
    return out


def _curve(values: np.ndarray) -> dict[str, Any]:
    finite = values[~np.isnan(values)]
    return {"values": encode_array(values), "max": float(finite.max()) if len(finite) else 0.0}


def finite(value: Any) -> float | None:
    """A finite float, else None (JSON has no NaN)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _keyframe_records(frames: pd.DataFrame, keyframes: pd.DataFrame) -> list[dict[str, Any]]:
    """The keyframes as the page shows them, each with its frame's target score."""
    score_of = dict(
        zip(
            frames.frame_index.astype(int).tolist(),
            frames.target_score.astype(float).tolist(),
            strict=True,
        )
    )
    kf = []
    for row in keyframes.to_dict("records"):
        image = row.get("image")
        kf.append(
            {
                "rank": int(row["rank"]),
                "frame_index": int(row["frame_index"]),
                "time_s": float(row["time_s"]),
                "attribution": finite(row["attribution"]),
                "target_score": finite(score_of.get(int(row["frame_index"]))),
                "image": image if isinstance(image, str) else "",
            }
        )
    return kf


def _segment_records(frames: pd.DataFrame, segments: pd.DataFrame) -> list[dict[str, Any]]:
    """The segments as the page shows them, each with its peak frame's time."""
    times = frames.time_s.to_numpy(dtype=np.float64)
    time_of = dict(zip(frames.frame_index.astype(int).tolist(), times.tolist(), strict=True))
    return [
        {
            "start_frame": int(row["start_frame"]),
            "end_frame": int(row["end_frame"]),
            "start_s": float(row["start_s"]),
            "end_s": float(row["end_s"]),
            "peak_frame": int(row["peak_frame"]),
            "peak_s": time_of.get(int(row["peak_frame"])),
            "attribution": finite(row["attribution"]),
        }
        for row in segments.to_dict("records")
    ]


def _track_lanes(frames: pd.DataFrame, tracks: pd.DataFrame) -> list[dict[str, Any]]:
    """One timeline lane per followed class (:func:`track_curves`), its curves encoded."""
    return [
        {
            "class_index": track["class_index"],
            "class_name": track["class_name"],
            "attribution": _curve(track["attribution"]),
            "target_score": _curve(track["target_score"]),
        }
        for track in track_curves(frames, tracks)
    ]


def video_page_data(
    *,
    frames: pd.DataFrame,
    keyframes: pd.DataFrame,
    segments: pd.DataFrame,
    summary: Mapping[str, Any],
    tracks: pd.DataFrame | None = None,
    video: str = "annotated.mp4",
    name: str = "",
    tags: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Everything the page of one video embeds, JSON-ready.

    Per-frame arrays travel as base64 typed arrays (``time_s`` float64, curves float32, with
    their largest value); the score lane's scale as timeline.png has it (``score_top``,
    :func:`~videocam.render.timeline.score_axis_top`, and ``evidence_level``, the evidence
    floor's score, :func:`~videocam.render.timeline.evidence_level`); tables as lists of
    records; ``summary`` as given.
    """
    times = frames.time_s.to_numpy(dtype=np.float64)
    scores = frames.target_score.to_numpy(dtype=np.float64)
    floor = finite((summary.get("keyframes") or {}).get("evidence_floor"))
    threshold = finite((summary.get("keyframes") or {}).get("evidence_threshold"))
    kf = _keyframe_records(frames, keyframes)
    segs = _segment_records(frames, segments)
    lanes = _track_lanes(frames, tracks) if tracks is not None and len(tracks) else []
    fps = finite((summary.get("video") or {}).get("fps"))
    return {
        "kind": "video",
        "name": name,
        "video": video,
        "fps": fps,
        "n_frames": len(times),
        "start_s": float(times[0]) if len(times) else 0.0,
        "end_s": float(times[-1]) if len(times) else 0.0,
        "time_s": encode_array(times, "<f8"),
        "frame_index": encode_array(frames.frame_index.to_numpy(), "<i4"),
        "attribution": _curve(frames.attribution.to_numpy(dtype=np.float64)),
        "target_score": _curve(scores),
        "score_top": score_axis_top(scores),
        "evidence_level": evidence_level(scores, floor, threshold),
        "keyframes": kf,
        "segments": segs,
        "tracks": lanes,
        "stats": video_stats(frames, segments),
        "tags": dict(tags or {}),
        "summary": dict(summary),
    }
