"""OpenTimelineIO: a timeline with each source video as a clip, a marker per keyframe and a
ranged marker per segment (``videocam export otio``).

The timeline has one video track per video (one for an ``analyze`` folder; for a batch OUT one
per complete video, in index.csv order, named after its sub-folder), each holding one clip: the
whole source, with an external media reference to the video's path (summary.json) whose
available range is the video's duration at its own rate.

Times are ``RationalTime`` at the video's rate (summary.json ``video.fps_fraction``, e.g.
``30000/1001``), in whole frames:

- constant frame rate (every analysed frame's presentation time within 5 % of a frame of
  ``frame_index / fps``): the frame index itself, so a marker sits exactly on its frame;
- variable frame rate: the frame's presentation time (frames.csv ``time_s``) times the rate,
  rounded to the nearest frame (the frame an editor shows at that time at the nominal rate);
  the exact ``time_s`` is in the marker's metadata.

Markers live on the clip, in the media's time: a keyframe is a point (duration 0) named
``keyframe R: CLASS``, red; a segment spans its frames, first to last inclusive, named
``segment N: CLASS``, green. Each marker's metadata holds, under ``"videocam"``, the numbers
(``attribution``, ``target_score``, frame index, ``time_s``, box, image), and its comment says
them in words.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from videocam import __version__
from videocam.export.deps import import_otio
from videocam.export.result import VideoResult

__all__ = ["KEYFRAME_COLOR", "SEGMENT_COLOR", "otio_json", "otio_timeline"]

#: Marker colours (OpenTimelineIO ``MarkerColor`` names, also CMX 3600 locator colours).
KEYFRAME_COLOR = "RED"
SEGMENT_COLOR = "GREEN"


def _number(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _score(video: VideoResult, index: int) -> float | None:
    score = video.target_scores.get(int(index))
    return None if score is None else _number(score)


def _mean_score(video: VideoResult, first: int, last: int) -> float | None:
    scores = [s for i, s in video.target_scores.items() if first <= i <= last and math.isfinite(s)]
    return sum(scores) / len(scores) if scores else None


def _words(attribution: float | None, score: float | None, extra: str) -> str:
    parts = [f"attribution {attribution:.3f}" if attribution is not None else ""]
    if score is not None:
        parts.append(f"target score {score:.3f}")
    parts.append(extra)
    return ", ".join(p for p in parts if p)


def keyframe_markers(video: VideoResult, otio: Any) -> list[Any]:
    """The keyframes of ``video`` as point markers, in rank order."""
    rate = float(video.fps)
    index_label, label = video.target
    markers = []
    for row in video.keyframes.to_dict("records"):
        frame, rank = int(row["frame_index"]), int(row["rank"])
        time_s = float(row["time_s"])
        attribution, score = _number(row["attribution"]), _score(video, frame)
        data: dict[str, Any] = {
            "kind": "keyframe",
            "rank": rank,
            "class": label,
            "class_index": index_label,
            "frame_index": frame,
            "time_s": time_s,
            "attribution": attribution,
            "target_score": score,
        }
        box = [row.get(c) for c in ("x0", "y0", "x1", "y1")]
        numbers = [float(v) for v in box if isinstance(v, int | float)]
        if len(numbers) == 4 and all(math.isfinite(v) for v in numbers):
            data["box"] = [int(v) for v in numbers]  # x1, y1 exclusive; all -1: no box
        image = row.get("image")
        if isinstance(image, str) and image:
            data["image"] = image
        marker = otio.schema.Marker(
            name=f"keyframe {rank}: {label}",
            marked_range=otio.opentime.TimeRange(
                otio.opentime.RationalTime(video.clock.frames_at(frame), rate),
                otio.opentime.RationalTime(0, rate),
            ),
            color=KEYFRAME_COLOR,
            metadata={"videocam": data},
        )
        marker.comment = _words(attribution, score, f"frame {frame} at {time_s:.3f} s")
        markers.append(marker)
    return markers


def segment_markers(video: VideoResult, otio: Any) -> list[Any]:
    """The segments of ``video`` as ranged markers (first to last frame), in time order."""
    rate = float(video.fps)
    index_label, label = video.target
    clock = video.clock
    markers = []
    for number, row in enumerate(video.segments.to_dict("records"), start=1):
        first, last = int(row["start_frame"]), int(row["end_frame"])
        start = clock.frames_at(first)
        end = max(clock.frames_at(last + 1), start + 1)
        attribution, score = _number(row["attribution"]), _mean_score(video, first, last)
        data: dict[str, Any] = {
            "kind": "segment",
            "number": number,
            "class": label,
            "class_index": index_label,
            "start_frame": first,
            "end_frame": last,
            "start_s": float(row["start_s"]),
            "end_s": float(row["end_s"]),
            "attribution": attribution,
            "target_score": score,
        }
        peak = row.get("peak_frame")
        if isinstance(peak, int | float) and math.isfinite(peak):
            data["peak_frame"] = int(peak)
        marker = otio.schema.Marker(
            name=f"segment {number}: {label}",
            marked_range=otio.opentime.TimeRange(
                otio.opentime.RationalTime(start, rate),
                otio.opentime.RationalTime(end - start, rate),
            ),
            color=SEGMENT_COLOR,
            metadata={"videocam": data},
        )
        marker.comment = _words(
            attribution,
            score,
            f"frames {first}-{last}, {clock.time_of(first):.3f}-{clock.end_of(last):.3f} s "
            "(mean attribution and target score)",
        )
        markers.append(marker)
    return markers


def _clip_metadata(video: VideoResult) -> dict[str, Any]:
    summary = video.summary
    index, name = video.target
    model = summary.get("model") or {}
    return {
        "result": str(video.folder),
        "class": name,
        "class_index": index,
        "method": summary.get("method"),
        "model": model.get("name"),
        "layer": model.get("layer"),
        "fps": str(video.fps),
        "constant_frame_rate": video.clock.constant_rate,
        "n_keyframes": len(video.keyframes),
        "n_segments": len(video.segments),
    }


def video_track(video: VideoResult, otio: Any) -> Any:
    """One video's track: its clip (the whole source) with its markers in time order."""
    rate = float(video.fps)
    available = otio.opentime.TimeRange(
        otio.opentime.RationalTime(0, rate),
        otio.opentime.RationalTime(video.clock.frames_at(video.n_frames), rate),
    )
    path = video.media_path()
    url = otio.url_utils.url_from_filepath(path) if Path(path).is_absolute() else path
    reference = otio.schema.ExternalReference(target_url=url, available_range=available)
    clip = otio.schema.Clip(
        name=video.video_name,
        media_reference=reference,
        source_range=available,
        metadata={"videocam": _clip_metadata(video)},
    )
    markers = keyframe_markers(video, otio) + segment_markers(video, otio)
    markers.sort(key=lambda m: m.marked_range.start_time.value)
    clip.markers.extend(markers)
    track = otio.schema.Track(name=video.name, kind=otio.schema.TrackKind.Video)
    track.append(clip)
    return track


def otio_timeline(videos: Sequence[VideoResult], *, name: str | None = None) -> Any:
    """An ``opentimelineio.schema.Timeline``: one track per video (its clips and markers:
    docs/contract.md, ``videocam export``, and the module docstring).

    Args:
        videos: the videos, in track order.
        name: the timeline's name (default: the video's file name, or ``videocam`` for
            several).

    Raises:
        ConfigError: OpenTimelineIO is not installed (``pip install 'videocam[interchange]'``).
    """
    otio = import_otio("otio")
    if not videos:
        raise ValueError("otio_timeline needs at least one video")
    title = name or (videos[0].video_name if len(videos) == 1 else "videocam")
    timeline = otio.schema.Timeline(
        name=title,
        metadata={"videocam": {"version": __version__, "videos": len(videos)}},
    )
    for video in videos:
        timeline.tracks.append(video_track(video, otio))
    return timeline


def otio_json(videos: Sequence[VideoResult], *, name: str | None = None) -> str:
    """:func:`otio_timeline` as ``.otio`` JSON text."""
    otio = import_otio("otio")
    text: str = otio.adapters.write_to_string(otio_timeline(videos, name=name), "otio_json")
    return text if text.endswith("\n") else text + "\n"
