"""CMX 3600 EDL, written by OpenTimelineIO's own CMX 3600 adapter (``videocam export edl``).

An EDL holds one video track of cuts, so one video per file. The EDL is the whole source, cut at
every segment's start and end: one event per piece, in order, record timecode equal to source
timecode (both from ``00:00:00:00``, so the EDL conforms to the untouched video and a locator's
timecode means the same on either side). Every event's clip name is the video's file name (what
editors match media by); segments and keyframes are locators (``* LOC:``), a segment green at
its first frame, a keyframe red at its frame, named with the rank or number, the class and the
attribution.

Timecode counts frames at the video's rate, which must be a SMPTE timecode rate: 23.976, 24, 25,
29.97, 30, 47.952, 48, 50, 59.94 or 60 fps. 29.97 and 59.94 are drop-frame (``HH:MM:SS;FF``,
frames 0 and 1 skipped at each minute but every tenth), the others non-drop; an ``FCM:`` line
says which (the adapter does not write one). A constant-rate video is cut at its own frames; a
variable-rate video (presentation times off ``frame_index / fps``) at its presentation times,
rounded to the nearest frame of the SMPTE rate nearest its average rate (within 5 %). Any other
rate (a 15 fps camera, say) is refused with one line: export ``otio`` or ``vtt`` instead.
"""

from __future__ import annotations

import itertools
from fractions import Fraction
from pathlib import Path
from typing import Any

from videocam.errors import ConfigError
from videocam.export.deps import import_cmx3600, import_otio
from videocam.export.otio import KEYFRAME_COLOR, SEGMENT_COLOR
from videocam.export.result import VideoResult

__all__ = ["DROP_FRAME_RATES", "SMPTE_RATES", "edl_rate", "edl_text", "edl_timeline"]

#: The frame rates SMPTE timecode (and so an EDL) counts in.
SMPTE_RATES: tuple[Fraction, ...] = (
    Fraction(24000, 1001),
    Fraction(24),
    Fraction(25),
    Fraction(30000, 1001),
    Fraction(30),
    Fraction(48000, 1001),
    Fraction(48),
    Fraction(50),
    Fraction(60000, 1001),
    Fraction(60),
)
#: The rates whose timecode is drop-frame.
DROP_FRAME_RATES = (Fraction(30000, 1001), Fraction(60000, 1001))

#: CMX 3600 numbers events with three digits.
MAX_EVENTS = 999

#: How far a video's rate may be from a SMPTE rate and still count as it: a constant rate is
#: the same rate written another way (``2997/100`` for 29.97); a variable rate's average is
#: rounded to the nearest SMPTE rate within 5 %.
_SAME_RATE = 1e-4
_NEAR_RATE = 0.05


def _rate_name(rate: Fraction) -> str:
    return f"{float(rate):.3f}".rstrip("0").rstrip(".")


def edl_rate(video: VideoResult) -> tuple[Fraction, bool]:
    """The EDL's timecode rate for ``video``, and whether it is the video's own rate.

    Raises:
        ConfigError: no SMPTE rate fits (module docstring).
    """
    fps = video.fps
    nearest = min(SMPTE_RATES, key=lambda r: abs(r / fps - 1))
    off = abs(float(nearest / fps) - 1)
    if off <= _SAME_RATE:
        return nearest, True
    if off <= _NEAR_RATE and not video.clock.constant_rate:
        return nearest, False
    rates = ", ".join(_rate_name(r) for r in SMPTE_RATES)
    raise ConfigError(
        f"{video.folder}: an EDL counts SMPTE timecode at {rates} fps, and this video runs at "
        f"{_rate_name(fps)} fps: export otio or vtt instead"
    )


def _title(text: str) -> str:
    """CMX 3600 titles: printable ASCII, at most 70 characters."""
    clean = "".join(c if 32 <= ord(c) < 127 else "?" for c in " ".join(text.split()))
    return clean[:70] or "videocam"


def edl_timeline(video: VideoResult) -> tuple[Any, Fraction]:
    """The one-track timeline the EDL is written from, and its timecode rate."""
    otio = import_otio("edl")
    rate, own_rate = edl_rate(video)
    clock_rate = None if own_rate else rate
    clock = video.clock
    r = float(rate)

    def at(index: int) -> int:
        return clock.frames_at(index, clock_rate)

    total = at(video.n_frames)
    segments = []  # (start, end, number, attribution)
    for number, row in enumerate(video.segments.to_dict("records"), start=1):
        start = min(max(at(int(row["start_frame"])), 0), total)
        end = min(max(at(int(row["end_frame"]) + 1), start), total)
        if end > start:
            segments.append((start, end, number, float(row["attribution"])))
    cuts = sorted({0, total, *(s for s, _, _, _ in segments), *(e for _, e, _, _ in segments)})
    pieces = [(a, b) for a, b in itertools.pairwise(cuts) if b > a]
    if len(pieces) > MAX_EVENTS:
        raise ConfigError(
            f"{video.folder}: {len(pieces)} events, more than the {MAX_EVENTS} a CMX 3600 EDL "
            "holds: export otio or vtt instead"
        )
    path = video.media_path()
    label = video.label
    available = otio.opentime.TimeRange(
        otio.opentime.RationalTime(0, r), otio.opentime.RationalTime(total, r)
    )
    track = otio.schema.Track(name=video.name, kind=otio.schema.TrackKind.Video)
    clips = []
    for a, b in pieces:
        clip = otio.schema.Clip(
            name=Path(path).name,
            media_reference=otio.schema.ExternalReference(
                target_url=path, available_range=available
            ),
            source_range=otio.opentime.TimeRange(
                otio.opentime.RationalTime(a, r), otio.opentime.RationalTime(b - a, r)
            ),
        )
        clips.append((a, b, clip))
        track.append(clip)

    def locate(position: int, name: str, color: str) -> None:
        for a, b, clip in clips:
            if a <= position < b:
                clip.markers.append(
                    otio.schema.Marker(
                        name=name,
                        marked_range=otio.opentime.TimeRange(
                            otio.opentime.RationalTime(position, r),
                            otio.opentime.RationalTime(0, r),
                        ),
                        color=color,
                    )
                )
                return

    moments = [
        (start, 0, f"segment {number} {label} attribution {attribution:.3f}", SEGMENT_COLOR)
        for start, _, number, attribution in segments
    ]
    for row in video.keyframes.to_dict("records"):
        name = f"keyframe {int(row['rank'])} {label} attribution {float(row['attribution']):.3f}"
        moments.append((at(int(row["frame_index"])), 1, name, KEYFRAME_COLOR))
    for position, _, name, color in sorted(moments):
        locate(position, name, color)
    timeline = otio.schema.Timeline(name=_title(Path(path).name))
    timeline.tracks.append(track)
    return timeline, rate


def edl_text(video: VideoResult) -> str:
    """The CMX 3600 EDL of ``video`` (its events, locators and timecode rates: docs/contract.md,
    ``videocam export``, and the module docstring).

    Raises:
        ConfigError: the video's rate has no SMPTE timecode, it needs more than 999 events, or
            OpenTimelineIO or its CMX 3600 adapter is not installed.
    """
    cmx_3600 = import_cmx3600()
    timeline, rate = edl_timeline(video)
    text: str = cmx_3600.write_to_string(timeline, rate=float(rate), style="avid")
    fcm = "FCM: DROP FRAME" if rate in DROP_FRAME_RATES else "FCM: NON-DROP FRAME"
    head, _, rest = text.partition("\n")
    text = f"{head}\n{fcm}\n{rest}" if head.startswith("TITLE:") else f"{fcm}\n\n{text}"
    return text if text.endswith("\n") else text + "\n"
