"""CMX 3600 EDL through OpenTimelineIO's adapter: exact source timecodes at 25, 29.97
(drop-frame) and 30 fps, locators, the rates an EDL cannot count, and a read back."""

from __future__ import annotations

from pathlib import Path

import pytest

from videocam.errors import ConfigError
from videocam.export import edl_text, read_result

from support.results import write_result

pytest.importorskip("otio_cmx3600_adapter")

#: Ten minutes at 29.97 fps: keyframes at 1 min (frame 1800) and 10 min (17982), a segment
#: across the first minute boundary (frames 1798-1805), where drop-frame timecode skips ;00, ;01.
LONG = {
    "n_frames": 18000,
    "keyframes": [(1800, 0.5), (17982, 0.4)],
    "segments": [(1798, 1805, 0.3)],
}


def _events(text: str) -> list[str]:
    """The event lines and the locators, without the clip comments."""
    return [line for line in text.splitlines() if line[:1].isdigit() or line.startswith("* LOC")]


def test_edl_at_25_fps_whole_text(tmp_path: Path) -> None:
    write_result(tmp_path, fps="25", **LONG)  # type: ignore[arg-type]
    clip = [
        "* FROM CLIP NAME:  clip.mp4",
        "* FROM CLIP: /videos/clip.mp4",
        "* OTIO TRUNCATED REEL NAME FROM: clip.mp4",
    ]
    assert edl_text(read_result(tmp_path)).splitlines() == [
        "TITLE: clip.mp4",
        "FCM: NON-DROP FRAME",
        "",
        "001  clipmp4  V     C        00:00:00:00 00:01:11:23 00:00:00:00 00:01:11:23",
        *clip,
        "002  clipmp4  V     C        00:01:11:23 00:01:12:06 00:01:11:23 00:01:12:06",
        *clip,
        "* LOC: 00:01:11:23 GREEN   SEGMENT 1 MOVE_RIGHT ATTRIBUTION 0.300",
        "* LOC: 00:01:12:00 RED     KEYFRAME 1 MOVE_RIGHT ATTRIBUTION 0.500",
        "003  clipmp4  V     C        00:01:12:06 00:12:00:00 00:01:12:06 00:12:00:00",
        *clip,
        "* LOC: 00:11:59:07 RED     KEYFRAME 2 MOVE_RIGHT ATTRIBUTION 0.400",
    ]


def test_edl_at_2997_is_drop_frame(tmp_path: Path) -> None:
    write_result(tmp_path, fps="30000/1001", **LONG)  # type: ignore[arg-type]
    text = edl_text(read_result(tmp_path))
    assert text.splitlines()[1] == "FCM: DROP FRAME"
    assert _events(text) == [
        "001  clipmp4  V     C        00:00:00;00 00:00:59;28 00:00:00;00 00:00:59;28",
        "002  clipmp4  V     C        00:00:59;28 00:01:00;08 00:00:59;28 00:01:00;08",
        "* LOC: 00:00:59;28 GREEN   SEGMENT 1 MOVE_RIGHT ATTRIBUTION 0.300",
        "* LOC: 00:01:00;02 RED     KEYFRAME 1 MOVE_RIGHT ATTRIBUTION 0.500",
        "003  clipmp4  V     C        00:01:00;08 00:10:00;18 00:01:00;08 00:10:00;18",
        "* LOC: 00:10:00;00 RED     KEYFRAME 2 MOVE_RIGHT ATTRIBUTION 0.400",
    ]


def test_edl_at_30_is_non_drop(tmp_path: Path) -> None:
    write_result(tmp_path, fps="30", **LONG)  # type: ignore[arg-type]
    text = edl_text(read_result(tmp_path))
    assert text.splitlines()[1] == "FCM: NON-DROP FRAME"
    assert _events(text) == [
        "001  clipmp4  V     C        00:00:00:00 00:00:59:28 00:00:00:00 00:00:59:28",
        "002  clipmp4  V     C        00:00:59:28 00:01:00:06 00:00:59:28 00:01:00:06",
        "* LOC: 00:00:59:28 GREEN   SEGMENT 1 MOVE_RIGHT ATTRIBUTION 0.300",
        "* LOC: 00:01:00:00 RED     KEYFRAME 1 MOVE_RIGHT ATTRIBUTION 0.500",
        "003  clipmp4  V     C        00:01:00:06 00:10:00:00 00:01:00:06 00:10:00:00",
        "* LOC: 00:09:59:12 RED     KEYFRAME 2 MOVE_RIGHT ATTRIBUTION 0.400",
    ]


def test_edl_reads_back_with_the_adapter(tmp_path: Path) -> None:
    import opentimelineio as otio

    write_result(tmp_path, fps="30", **LONG)  # type: ignore[arg-type]
    timeline = otio.adapters.read_from_string(edl_text(read_result(tmp_path)), "cmx_3600", rate=30)
    clips = list(timeline.tracks[0])
    assert [(c.source_range.start_time.value, c.source_range.duration.value) for c in clips] == [
        (0, 1798),
        (1798, 8),
        (1806, 18000 - 1806),
    ]
    assert [(m.name, m.marked_range.start_time.value) for m in clips[1].markers] == [
        ("SEGMENT 1 MOVE_RIGHT ATTRIBUTION 0.300", 1798),
        ("KEYFRAME 1 MOVE_RIGHT ATTRIBUTION 0.500", 1800),
    ]


def test_no_segments_is_one_event(tmp_path: Path) -> None:
    write_result(tmp_path, fps="25", keyframes=[(10, 0.5)], segments=[])
    assert _events(edl_text(read_result(tmp_path))) == [
        "001  clipmp4  V     C        00:00:00:00 00:00:08:00 00:00:00:00 00:00:08:00",
        "* LOC: 00:00:00:10 RED     KEYFRAME 1 MOVE_RIGHT ATTRIBUTION 0.500",
    ]


def test_variable_rate_uses_presentation_times_at_the_nearest_smpte_rate(tmp_path: Path) -> None:
    # Frames on the 29.97 grid with every 100th missing: 2970 frames in 100.1 s, 29.67 fps on
    # average, whose nearest SMPTE rate is 29.97. Frame 1811 is presented at grid frame 1829.
    times = [round(i * 1001 / 30000, 6) for i in range(3000) if i % 100 != 99]
    write_result(
        tmp_path,
        fps="2967/100",
        n_frames=len(times),
        times_s=times,
        keyframes=[(1811, 0.5)],
        segments=[(1811, 1811, 0.2)],
    )
    result = read_result(tmp_path)
    assert not result.clock.constant_rate
    assert times[1811] == round(1829 * 1001 / 30000, 6)
    assert _events(edl_text(result)) == [
        "001  clipmp4  V     C        00:00:00;00 00:01:01;01 00:00:00;00 00:01:01;01",
        "002  clipmp4  V     C        00:01:01;01 00:01:01;02 00:01:01;01 00:01:01;02",
        "* LOC: 00:01:01;01 GREEN   SEGMENT 1 MOVE_RIGHT ATTRIBUTION 0.200",
        "* LOC: 00:01:01;01 RED     KEYFRAME 1 MOVE_RIGHT ATTRIBUTION 0.500",
        # The end: 100.0333 s + one frame at 29.67 fps = 100.067 s, grid frame 2999.
        "003  clipmp4  V     C        00:01:01;02 00:01:40;01 00:01:01;02 00:01:40;01",
    ]


@pytest.mark.parametrize(
    ("fps", "fcm", "last"),
    [
        ("24000/1001", "NON-DROP FRAME", "00:00:04:04"),
        ("24", "NON-DROP FRAME", "00:00:04:04"),
        ("48000/1001", "NON-DROP FRAME", "00:00:02:04"),
        ("50", "NON-DROP FRAME", "00:00:02:00"),
        ("60000/1001", "DROP FRAME", "00:00:01;40"),
        ("60", "NON-DROP FRAME", "00:00:01:40"),
    ],
)
def test_other_smpte_rates(tmp_path: Path, fps: str, fcm: str, last: str) -> None:
    write_result(tmp_path, fps=fps, n_frames=100, keyframes=[(10, 0.5)], segments=[])
    lines = edl_text(read_result(tmp_path)).splitlines()
    assert lines[1] == f"FCM: {fcm}"
    assert lines[3].endswith(last)  # 100 frames


@pytest.mark.parametrize("fps", ["15", "10", "25/2", "120"])
def test_rates_without_smpte_timecode_are_refused_in_one_line(tmp_path: Path, fps: str) -> None:
    write_result(tmp_path, fps=fps, n_frames=100, keyframes=[(10, 0.5)], segments=[])
    with pytest.raises(ConfigError) as info:
        edl_text(read_result(tmp_path))
    message = str(info.value)
    assert message.startswith(f"{tmp_path}: an EDL counts SMPTE timecode at 23.976, 24, 25")
    assert message.endswith("fps: export otio or vtt instead")
    assert "\n" not in message


def test_more_than_999_events_is_refused(tmp_path: Path) -> None:
    segments = [(i, i, 0.1) for i in range(1, 1000, 2)]  # 500 one-frame segments, 1001 events
    write_result(tmp_path, fps="25", n_frames=1001, keyframes=[], segments=segments)
    with pytest.raises(ConfigError, match="1001 events, more than the 999"):
        edl_text(read_result(tmp_path))
