"""Chapters of an analysis: the frame clock (constant and variable rates), the flat chapter list
and its WebVTT text, with exact expected values."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pandas as pd
import pytest

from videocam.render.chapters import (
    Chapter,
    FrameClock,
    analysis_chapters,
    format_vtt_timestamp,
    webvtt,
)

from support.results import write_result


def _tables(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    return tuple(pd.read_csv(folder / f) for f in ("frames.csv", "keyframes.csv", "segments.csv"))  # type: ignore[return-value]


def _chapters(folder: Path, fps: str, n_frames: int, duration_s: float) -> list[Chapter]:
    frames, keyframes, segments = _tables(folder)
    clock = FrameClock.from_frames(
        frames, fps=Fraction(fps), n_frames=n_frames, duration_s=duration_s
    )
    return analysis_chapters(frames, keyframes, segments, clock=clock, label="move_right")


def test_chapters_tile_the_video_at_keyframes_and_segment_edges(tmp_path: Path) -> None:
    write_result(tmp_path, fps="25", n_frames=200)  # keyframes 84, 99; segment 75-114
    assert _chapters(tmp_path, "25", 200, 8.0) == [
        Chapter(0, 3000, "Start", "start"),
        Chapter(3000, 3360, "Segment 1 (attribution 0.300)", "segment-1"),
        Chapter(3360, 3960, "Keyframe 1: move_right (attribution 0.500, score 0.75)", "keyframe-1"),
        Chapter(3960, 4600, "Keyframe 2: move_right (attribution 0.400, score 0.75)", "keyframe-2"),
        Chapter(4600, 8000, "After segment 1", "segment-1-end"),
    ]


def test_chapter_times_round_up_to_the_millisecond_of_the_frame(tmp_path: Path) -> None:
    # 29.97 fps: frame 31 is presented at 1.034367 s; a chapter at 1.034 s would show frame 30.
    write_result(tmp_path, fps="30000/1001", n_frames=100, keyframes=[(31, 0.5)], segments=[])
    chapters = _chapters(tmp_path, "30000/1001", 100, 3.336667)
    assert [(c.start_ms, c.end_ms, c.ident) for c in chapters] == [
        (0, 1035, "start"),
        (1035, 3336, "keyframe-1"),  # the end of the video rounds down
    ]


def test_moments_in_one_millisecond_share_a_chapter(tmp_path: Path) -> None:
    write_result(tmp_path, keyframes=[(75, 0.5)], segments=[(75, 199, 0.3)])
    chapters = _chapters(tmp_path, "25", 200, 8.0)
    # The segment runs to the end of the video: no "After segment" chapter.
    assert chapters == [
        Chapter(0, 3000, "Start", "start"),
        Chapter(
            3000,
            8000,
            "Segment 1 (attribution 0.300) / Keyframe 1: move_right (attribution 0.500, "
            "score 0.75)",
            "segment-1+keyframe-1",
        ),
    ]


def test_no_keyframe_and_no_segment_means_no_chapters(tmp_path: Path) -> None:
    write_result(tmp_path, keyframes=[], segments=[])
    assert _chapters(tmp_path, "25", 200, 8.0) == []


def test_a_moment_at_zero_needs_no_start_chapter(tmp_path: Path) -> None:
    write_result(tmp_path, keyframes=[(0, 0.5)], segments=[])
    assert [c.ident for c in _chapters(tmp_path, "25", 200, 8.0)] == ["keyframe-1"]


def test_constant_rate_clock() -> None:
    frames = pd.DataFrame({"frame_index": [0, 2, 4], "time_s": [0.0, 0.08, 0.16]})
    clock = FrameClock.from_frames(frames, fps=Fraction(25), n_frames=6, duration_s=0.24)
    assert clock.constant_rate
    assert clock.time_of(2) == 0.08
    assert clock.time_of(3) == pytest.approx(0.12)  # not analysed: index / fps
    assert clock.end_of(5) == 0.24  # the last frame ends with the video
    assert [clock.frames_at(i) for i in (0, 3, 6)] == [0, 3, 6]
    assert clock.frames_at(3, Fraction(50)) == 6  # at another rate: from the time


def test_variable_rate_clock_uses_the_presentation_times() -> None:
    times = [0.0, 0.05, 0.1, 0.2, 0.25, 0.3]
    frames = pd.DataFrame({"frame_index": range(6), "time_s": times})
    clock = FrameClock.from_frames(frames, fps=Fraction(25), n_frames=6, duration_s=0.34)
    assert not clock.constant_rate
    assert [clock.frames_at(i) for i in range(6)] == [0, 1, 3, 5, 6, 8]  # round(t * 25)
    assert clock.frames_at(6) == 9  # the end: 0.34 s x 25 = 8.5, halves up
    sparse = FrameClock.from_frames(
        frames.iloc[[0, 2, 4]], fps=Fraction(25), n_frames=6, duration_s=0.34
    )
    assert sparse.time_of(1) == pytest.approx(0.05)  # interpolated between 0 and 0.1
    assert sparse.time_of(5) == pytest.approx(0.29)  # one nominal frame after the last


def test_webvtt_text() -> None:
    chapters = [
        Chapter(0, 3000, "Start", "start"),
        Chapter(3000, 3723004, "Keyframe 1: a<b & c>d --> e", "keyframe-1"),
    ]
    assert webvtt(chapters, note="made by\nvideocam --> here") == (
        "WEBVTT\n"
        "\n"
        "NOTE\n"
        "made by videocam -> here\n"
        "\n"
        "start\n"
        "00:00:00.000 --> 00:00:03.000\n"
        "Start\n"
        "\n"
        "keyframe-1\n"
        "00:00:03.000 --> 01:02:03.004\n"
        "Keyframe 1: a&lt;b &amp; c&gt;d --&gt; e\n"
    )
    assert webvtt([]) == "WEBVTT\n"


def test_webvtt_refuses_overlapping_or_empty_chapters() -> None:
    with pytest.raises(ValueError, match="overlap"):
        webvtt([Chapter(0, 2000, "a", "a"), Chapter(1000, 3000, "b", "b")])
    with pytest.raises(ValueError, match="overlap"):
        webvtt([Chapter(1000, 1000, "a", "a")])


def test_vtt_timestamps() -> None:
    assert format_vtt_timestamp(0) == "00:00:00.000"
    assert format_vtt_timestamp(59_999) == "00:00:59.999"
    assert format_vtt_timestamp(3_723_004) == "01:02:03.004"
    assert format_vtt_timestamp(360_000_000) == "100:00:00.000"
    with pytest.raises(ValueError, match="negative"):
        format_vtt_timestamp(-1)
