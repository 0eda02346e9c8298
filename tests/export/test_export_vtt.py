"""WebVTT chapters from an output folder: the exact file, batch OUTs one file per video."""

from __future__ import annotations

from pathlib import Path

from videocam import __version__
from videocam.export import export_result, read_result, webvtt_chapters

from support.results import write_batch, write_result

EXPECTED = f"""\
WEBVTT

NOTE
Chapters of clip.mp4 by videocam {__version__}: keyframes (rank 1 = highest attribution) and \
segments of high attribution for the class move_right (gradcam). Each chapter runs until the \
next one starts.

start
00:00:00.000 --> 00:00:02.503
Start

segment-1
00:00:02.503 --> 00:00:02.803
Segment 1 (attribution 0.300)

keyframe-1
00:00:02.803 --> 00:00:03.304
Keyframe 1: move_right (attribution 0.500, score 0.75)

keyframe-2
00:00:03.304 --> 00:00:03.838
Keyframe 2: move_right (attribution 0.400, score 0.75)

segment-1-end
00:00:03.838 --> 00:00:10.010
After segment 1
"""


def test_vtt_file_at_2997(tmp_path: Path) -> None:
    # 300 frames at 29.97: frame 75 at 2.5025 s -> 2.503, 84 at 2.8028, 99 at 3.3033, the frame
    # after the segment (115) at 3.837167 -> 3.838 (rounded up), the end at 10.010 s.
    write_result(tmp_path, fps="30000/1001", n_frames=300)
    assert webvtt_chapters(read_result(tmp_path)) == EXPECTED
    report = export_result("vtt", tmp_path)
    assert report.written == [tmp_path / "keyframes.vtt"]
    assert (tmp_path / "keyframes.vtt").read_bytes() == EXPECTED.encode("utf-8")


def test_vtt_of_a_batch_is_one_file_per_video(tmp_path: Path) -> None:
    out = write_batch(tmp_path / "out", [("a.mp4", "ok"), ("b.mp4", "pending"), ("c.mp4", "ok")])
    report = export_result("vtt", out)
    assert report.written == [out / "a.mp4" / "keyframes.vtt", out / "c.mp4" / "keyframes.vtt"]
    folder = tmp_path / "chapters"
    report = export_result("vtt", out, folder)
    assert report.written == [folder / "a.mp4.vtt", folder / "c.mp4.vtt"]
    assert (folder / "a.mp4.vtt").read_text().startswith("WEBVTT\n\nNOTE\n")
