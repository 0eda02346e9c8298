"""The OpenTimelineIO timeline, read back with opentimelineio: the source as a clip, frame-exact
markers at the video's own rate (constant and variable), metadata, and one track per video of a
batch OUT."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from videocam.export import export_result, read_result, read_results

from support.results import write_batch, write_result

otio = pytest.importorskip("opentimelineio")


def _read(path: Path) -> object:
    return otio.adapters.read_from_file(str(path))


def _ranges(clip: object) -> list[tuple[str, float, float, float, str]]:
    return [
        (
            m.name,
            m.marked_range.start_time.value,
            m.marked_range.duration.value,
            m.marked_range.start_time.rate,
            m.color,
        )
        for m in clip.markers  # type: ignore[attr-defined]
    ]


def test_timeline_of_one_video_at_2997(tmp_path: Path) -> None:
    write_result(tmp_path, fps="30000/1001", n_frames=300)  # keyframes 84, 99; segment 75-114
    report = export_result("otio", tmp_path)
    assert report.written == [tmp_path / "keyframes.otio"]
    timeline = _read(tmp_path / "keyframes.otio")
    assert timeline.name == "clip.mp4"
    (track,) = timeline.tracks
    (clip,) = track
    rate = 30000 / 1001
    assert clip.media_reference.target_url == "file:///videos/clip.mp4"
    available = clip.media_reference.available_range
    assert (available.start_time.value, available.duration.value) == (0, 300)
    assert available.duration.rate == rate
    assert clip.source_range == available
    assert _ranges(clip) == [
        ("segment 1: move_right", 75, 40, rate, "GREEN"),  # frames 75-114, inclusive
        ("keyframe 1: move_right", 84, 0, rate, "RED"),
        ("keyframe 2: move_right", 99, 0, rate, "RED"),
    ]
    key = clip.markers[1]
    data = dict(key.metadata["videocam"])
    data["box"] = list(data["box"])  # an OTIO AnyVector
    assert data == {
        "kind": "keyframe",
        "rank": 1,
        "class": "move_right",
        "class_index": 1,
        "frame_index": 84,
        "time_s": round(84 * 1001 / 30000, 6),
        "attribution": 0.5,
        "target_score": 0.75,
        "box": [1, 2, 30, 40],
    }
    assert key.comment == "attribution 0.500, target score 0.750, frame 84 at 2.803 s"
    segment = dict(clip.markers[0].metadata["videocam"])
    assert (segment["start_frame"], segment["end_frame"], segment["peak_frame"]) == (75, 114, 75)
    assert (segment["attribution"], segment["target_score"]) == (0.3, 0.75)
    # Frame-exact: the marker's time is the frame's presentation time.
    assert key.marked_range.start_time.to_seconds() == pytest.approx(84 * 1001 / 30000)


def test_variable_rate_markers_come_from_the_presentation_times(tmp_path: Path) -> None:
    # 25 fps nominal, but frames 50.. are presented 0.5 s late (a pause in the recording).
    times = [i / 25 + (0.5 if i >= 50 else 0.0) for i in range(100)]
    write_result(
        tmp_path,
        fps="25",
        n_frames=100,
        times_s=times,
        keyframes=[(60, 0.5)],
        segments=[(55, 64, 0.3)],
    )
    result = read_result(tmp_path)
    assert not result.clock.constant_rate
    export_result("otio", tmp_path)
    (clip,) = _read(tmp_path / "keyframes.otio").tracks[0]
    assert _ranges(clip) == [
        # Frames 55-64: 2.7 s to 3.1 s, 67.5 and 77.5 frames at 25 fps, rounded halves up.
        ("segment 1: move_right", 68, 10, 25, "GREEN"),
        ("keyframe 1: move_right", 73, 0, 25, "RED"),  # 2.9 s = frame 72.5
    ]
    assert clip.markers[1].metadata["videocam"]["frame_index"] == 60
    duration = clip.media_reference.available_range.duration
    assert duration.value == 113  # 4.46 s + one frame = 4.5 s, 112.5 frames
    assert clip.metadata["videocam"]["constant_frame_rate"] is False


def test_batch_out_is_one_track_per_video(tmp_path: Path) -> None:
    write_batch(tmp_path, [("a.mp4", "ok"), ("b.mp4", "failed"), ("c.mp4", "ok")], fps="30")
    report = export_result("otio", tmp_path)
    assert report.written == [tmp_path / "keyframes.otio"]
    assert report.results.missing == [("b.mp4", "failed")]
    timeline = _read(tmp_path / "keyframes.otio")
    assert [t.name for t in timeline.tracks] == ["a.mp4", "c.mp4"]
    assert [t[0].media_reference.target_url for t in timeline.tracks] == [
        "file:///videos/a.mp4",
        "file:///videos/c.mp4",
    ]
    assert all(len(t) == 1 and len(t[0].markers) == 3 for t in timeline.tracks)


def test_output_file_and_relative_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    result = write_result(tmp_path / "r", video_path="clip.mp4")
    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.WARNING):
        export_result("otio", result, tmp_path / "new" / "t.otio")  # parents are created
    clip = _read(tmp_path / "new" / "t.otio").tracks[0][0]
    assert clip.media_reference.target_url == "clip.mp4"  # as recorded: not found from here
    assert "relative path not found" in caplog.text
    (tmp_path / "clip.mp4").write_bytes(b"")
    export_result("otio", result, tmp_path / "t2.otio")
    clip = _read(tmp_path / "t2.otio").tracks[0][0]
    assert clip.media_reference.target_url == f"file://{tmp_path.resolve() / 'clip.mp4'}"


def test_no_keyframes_still_gives_the_clip(tmp_path: Path) -> None:
    write_result(tmp_path, keyframes=[], segments=[])
    export_result("otio", tmp_path)
    (clip,) = _read(tmp_path / "keyframes.otio").tracks[0]
    assert list(clip.markers) == []
    assert read_results(tmp_path).videos[0].clock.constant_rate
