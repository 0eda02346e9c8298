"""Chapters: an analysis's keyframes and segments as one flat list of titled chapters, the frame
clock that places them in time, and their WebVTT text.

One list serves every player: the chapters of ``annotated.mp4`` (:mod:`videocam.render.video`),
``videocam export vtt`` and the review report's player. The rules (docs/contract.md):

- A chapter starts at every keyframe, every segment start and every segment end (the frame
  after the segment's last frame); a ``Start`` chapter covers the time before the first of them.
  Moments in the same millisecond share one chapter whose title joins theirs with `` / ``.
- Each chapter runs until the next one starts, the last one until the end of the video: the
  chapters never overlap, never nest and leave no gap, which is what HTML5 players, mpv and VLC
  all handle (nested WebVTT chapters are valid but most players list or highlight them wrongly).
- Times are the frames' presentation times, in whole milliseconds rounded up, so that seeking
  to a chapter shows its frame itself rather than the one before it (a frame at 1.0343 s starts
  its chapter at 1.035 s); the end of the video is rounded down.

:class:`FrameClock` maps source frame indices to presentation times and to frame counts at a
rate, for constant and variable frame rates alike; the exports (:mod:`videocam.export`) use it
too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "CONSTANT_RATE_TOLERANCE",
    "Chapter",
    "FrameClock",
    "analysis_chapters",
    "format_vtt_timestamp",
    "webvtt",
]

#: A video has a constant frame rate when every analysed frame's presentation time lies within
#: this fraction of a frame of ``frame_index / fps`` (timestamps rounded to a coarse time base,
#: such as Matroska's milliseconds, stay well inside it).
CONSTANT_RATE_TOLERANCE = 0.05


@dataclass(frozen=True)
class FrameClock:
    """Source frame index -> presentation time, from the analysed frames' own times.

    Attributes:
        frame_index: int64, shape (n,): the analysed frames (frames.csv ``frame_index``),
            strictly increasing.
        time_s: float64, shape (n,): their presentation times (frames.csv ``time_s``).
        fps: the video's frame rate (summary.json ``video.fps_fraction``): its average rate for
            variable-rate video.
        n_frames: frames in the video.
        duration_s: from the first frame's start to the last frame's end.
    """

    frame_index: np.ndarray
    time_s: np.ndarray
    fps: Fraction
    n_frames: int
    duration_s: float

    @classmethod
    def from_frames(
        cls, frames: pd.DataFrame, *, fps: Fraction, n_frames: int, duration_s: float
    ) -> FrameClock:
        """The clock of a frames table (columns ``frame_index``, ``time_s``)."""
        order = np.argsort(frames["frame_index"].to_numpy(dtype=np.int64), kind="stable")
        index = frames["frame_index"].to_numpy(dtype=np.int64)[order]
        times = frames["time_s"].to_numpy(dtype=np.float64)[order]
        return cls(index, times, Fraction(fps), int(n_frames), float(duration_s))

    @cached_property
    def constant_rate(self) -> bool:
        """Every analysed frame is presented at ``frame_index / fps`` (within
        :data:`CONSTANT_RATE_TOLERANCE` of a frame)."""
        if self.fps <= 0:
            return False
        if len(self.frame_index) == 0:
            return True
        drift = np.abs(self.time_s * float(self.fps) - self.frame_index)
        return bool(drift.max() <= CONSTANT_RATE_TOLERANCE)

    def time_of(self, index: int) -> float:
        """Presentation time (s) of source frame ``index``; ``n_frames`` gives the video's end.

        An analysed frame's is its own; another frame's is ``index / fps`` at a constant rate,
        and with a variable rate interpolated linearly between the analysed frames around it
        (one nominal frame duration per frame beyond them).
        """
        index = int(index)
        if index >= self.n_frames:
            return self.duration_s
        known = self.frame_index
        at = int(np.searchsorted(known, index))
        if at < len(known) and known[at] == index:
            return float(self.time_s[at])
        if self.constant_rate or len(known) == 0:
            return float(Fraction(index) / self.fps)
        step = 1.0 / float(self.fps)
        if index < known[0]:
            return max(0.0, float(self.time_s[0]) - (int(known[0]) - index) * step)
        if index > known[-1]:
            later = float(self.time_s[-1]) + (index - int(known[-1])) * step
            return min(later, self.duration_s)
        return float(np.interp(index, known, self.time_s))

    def end_of(self, index: int) -> float:
        """When source frame ``index`` stops being shown: the next frame's time."""
        return self.time_of(int(index) + 1)

    def frames_at(self, index: int, rate: Fraction | None = None) -> int:
        """Source frame ``index`` as a whole frame count at ``rate`` (default the video's).

        At the video's own constant rate this is ``index`` itself (``n_frames`` for the end);
        otherwise the presentation time times ``rate``, rounded to the nearest frame (halves
        up).
        """
        index = int(index)
        if self.constant_rate and (rate is None or rate == self.fps):
            return min(index, self.n_frames)
        return math.floor(self.time_of(index) * float(self.fps if rate is None else rate) + 0.5)


@dataclass(frozen=True)
class Chapter:
    """One chapter: ``[start_ms, end_ms)`` of the presentation, a title and an identifier.

    Attributes:
        start_ms: start in whole milliseconds.
        end_ms: end (exclusive), after ``start_ms``.
        title: plain text (escaped where a format needs it, as :func:`webvtt` does).
        ident: a stable name (``start``, ``keyframe-1``, ``segment-2``, ``segment-2-end``, or
            several joined by ``+``): the WebVTT cue identifier.
    """

    start_ms: int
    end_ms: int
    title: str
    ident: str

    @property
    def start_s(self) -> float:
        """The chapter's start in seconds."""
        return self.start_ms / 1000

    @property
    def end_s(self) -> float:
        """The chapter's end in seconds."""
        return self.end_ms / 1000


def _ms_up(seconds: float) -> int:
    """Seconds to whole milliseconds, rounded up (to the microsecond first, so that 3.36 s is
    3360 ms and not 3361)."""
    micros = round(seconds * 1_000_000)
    return -(-micros // 1000)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def analysis_chapters(
    frames: pd.DataFrame,
    keyframes: pd.DataFrame,
    segments: pd.DataFrame,
    *,
    clock: FrameClock,
    label: str,
) -> list[Chapter]:
    """The chapters of an analysis (the module's rules), in time order.

    Args:
        frames: frames.csv (``frame_index``; ``target_score`` when present gives each
            keyframe's score).
        keyframes: keyframes.csv (``rank``, ``frame_index``, ``attribution``).
        segments: segments.csv (``start_frame``, ``end_frame``, ``attribution``), numbered
            1, 2... in time order.
        clock: the video's frame clock.
        label: the explained class, named in the keyframes' titles.

    Returns:
        Chapters that tile ``[0, end of video)`` without gaps or overlaps; empty when there is
        no keyframe and no segment.
    """
    scores: dict[int, float] = {}
    if "target_score" in frames.columns:
        scores = dict(
            zip(
                frames["frame_index"].astype(int).tolist(),
                frames["target_score"].astype(float).tolist(),
                strict=True,
            )
        )
    label = _one_line(label)
    # (start_ms, order within a millisecond, ident, title)
    moments: list[tuple[int, int, str, str]] = []
    ordered = segments.sort_values("start_frame", kind="stable")
    for number, row in enumerate(ordered.to_dict("records"), start=1):
        end = clock.end_of(int(row["end_frame"]))
        moments.append((_ms_up(end), 0, f"segment-{number}-end", f"After segment {number}"))
        moments.append(
            (
                _ms_up(clock.time_of(int(row["start_frame"]))),
                1,
                f"segment-{number}",
                f"Segment {number} (attribution {float(row['attribution']):.3f})",
            )
        )
    for row in keyframes.sort_values("rank", kind="stable").to_dict("records"):
        index, rank = int(row["frame_index"]), int(row["rank"])
        details = f"attribution {float(row['attribution']):.3f}"
        score = scores.get(index)
        if score is not None and math.isfinite(score):
            details += f", score {score:.2f}"
        moments.append(
            (
                _ms_up(clock.time_of(index)),
                2,
                f"keyframe-{rank}",
                f"Keyframe {rank}: {label} ({details})",
            )
        )
    end_ms = math.floor(round(clock.duration_s * 1_000_000) / 1000)
    moments = sorted(m for m in moments if m[0] < end_ms)
    if not moments:
        return []
    starts: list[tuple[int, list[str], list[str]]] = []
    for start, _, ident, title in moments:
        if starts and starts[-1][0] == start:
            starts[-1][1].append(ident)
            starts[-1][2].append(title)
        else:
            starts.append((start, [ident], [title]))
    if starts[0][0] > 0:
        starts.insert(0, (0, ["start"], ["Start"]))
    chapters = []
    for i, (start, idents, titles) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else end_ms
        chapters.append(Chapter(start, end, " / ".join(titles), "+".join(idents)))
    return chapters


def format_vtt_timestamp(ms: int) -> str:
    """``HH:MM:SS.mmm`` (hours two digits or more), as WebVTT cue timings write them."""
    if ms < 0:
        raise ValueError(f"a WebVTT timestamp cannot be negative: {ms} ms")
    seconds, millis = divmod(int(ms), 1000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}"


def _vtt_text(text: str) -> str:
    """Plain text as WebVTT cue text: one line, ``&``, ``<`` and ``>`` as character references
    (so no ``-->`` can appear either)."""
    return _one_line(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def webvtt(chapters: Sequence[Chapter], *, note: str | None = None) -> str:
    """WebVTT text of ``chapters``: for ``<track kind="chapters">`` in any HTML5 player.

    The file is ``WEBVTT``, an optional ``NOTE`` block, then one cue per chapter in time order:
    its identifier, ``HH:MM:SS.mmm --> HH:MM:SS.mmm`` and its title, cues separated by a blank
    line, LF line endings, UTF-8. Titles are escaped (``&amp;``, ``&lt;``, ``&gt;``).

    Args:
        chapters: non-overlapping, in time order (as :func:`analysis_chapters` returns them).
        note: a comment for people reading the file (folded into one ``NOTE`` block).

    Raises:
        ValueError: the chapters overlap, are out of order or are empty in time.
    """
    lines = ["WEBVTT", ""]
    if note:
        # A NOTE block ends at a blank line and may not hold "-->".
        text = " ".join(note.split()).replace("-->", "->")
        lines += ["NOTE", text, ""]
    previous_end = 0
    for chapter in chapters:
        if chapter.end_ms <= chapter.start_ms or chapter.start_ms < previous_end:
            raise ValueError(f"chapters must be in order and not overlap: {chapter}")
        previous_end = chapter.end_ms
        ident = _one_line(chapter.ident).replace("-->", "->")
        timing = (
            f"{format_vtt_timestamp(chapter.start_ms)} --> {format_vtt_timestamp(chapter.end_ms)}"
        )
        lines += [ident, timing, _vtt_text(chapter.title), ""]
    return "\n".join(lines)
