"""Round trips from real outputs: a ``videocam demo`` folder (rendered) exported to all three
formats and read back, the annotated clip's chapters equal to the WebVTT cues, and a real
``batch`` OUT."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from videocam.analysis.outputs import annotated_clip_chapters
from videocam.batch import run_batch
from videocam.config import AnalyzeConfig
from videocam.demo import DemoResult, run_demo
from videocam.export import export_result

from support.batch import clip as batch_clip

otio = pytest.importorskip("opentimelineio")
pytest.importorskip("otio_cmx3600_adapter")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoResult:
    return run_demo(tmp_path_factory.mktemp("export_demo") / "out", render=True)


def _vtt_cues(text: str) -> list[tuple[str, str, str]]:
    lines = text.splitlines()
    return [
        (*lines[i].split(" --> "), lines[i + 1])  # type: ignore[misc]
        for i in range(len(lines))
        if " --> " in lines[i]
    ]


def _ms(stamp: str) -> int:
    hours, minutes, rest = stamp.split(":")
    seconds, millis = rest.split(".")
    return ((int(hours) * 60 + int(minutes)) * 60 + int(seconds)) * 1000 + int(millis)


def test_demo_folder_exports_and_reads_back(demo: DemoResult) -> None:
    import av

    out = demo.out_dir
    for fmt in ("otio", "edl", "vtt"):
        assert export_result(fmt, out).written == [out / f"keyframes.{fmt}"]
    keyframes = pd.read_csv(out / "keyframes.csv")
    segments = pd.read_csv(out / "segments.csv")
    assert len(keyframes)
    assert len(segments)

    # OTIO: the demo clip is 25 fps, so every marker sits on its keyframe's own frame.
    (clip,) = otio.adapters.read_from_file(str(out / "keyframes.otio")).tracks[0]
    assert clip.media_reference.target_url == f"file://{(out / 'input.mp4').resolve()}"
    assert clip.media_reference.available_range.duration.value == 200
    keys = [m for m in clip.markers if m.metadata["videocam"]["kind"] == "keyframe"]
    assert sorted(m.marked_range.start_time.value for m in keys) == sorted(keyframes.frame_index)
    ranged = [m for m in clip.markers if m.metadata["videocam"]["kind"] == "segment"]
    assert [(m.marked_range.start_time.value, m.marked_range.duration.value) for m in ranged] == [
        (s, e - s + 1) for s, e in zip(segments.start_frame, segments.end_frame, strict=True)
    ]

    # EDL: read back with the adapter, the events cut the source at the segments.
    timeline = otio.adapters.read_from_file(str(out / "keyframes.edl"), rate=25)
    cuts = [int(c.source_range.start_time.value) for c in timeline.tracks[0]]
    assert set(segments.start_frame) <= set(cuts)
    located = [m.marked_range.start_time.value for c in timeline.tracks[0] for m in c.markers]
    assert set(keyframes.frame_index) <= set(located)

    # WebVTT and the annotated clip carry the same chapters.
    cues = _vtt_cues((out / "keyframes.vtt").read_text())
    with av.open(str(out / "annotated.mp4")) as container:
        chapters = container.chapters()
    assert [(_ms(a), _ms(b), title) for a, b, title in cues] == [
        (
            int(c["start"] * c["time_base"] * 1000),
            int(c["end"] * c["time_base"] * 1000),
            c["metadata"]["title"],
        )
        for c in chapters
    ]
    expected = annotated_clip_chapters(demo.analysis)
    assert [c["metadata"]["title"] for c in chapters] == [c.title for c in expected]
    titles = " ".join(title for _, _, title in cues)
    assert all(f"Keyframe {r}: move_right" in titles for r in keyframes["rank"])


@pytest.mark.slow
def test_real_batch_out(tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    batch_clip(inputs / "a.mp4", seed=1)
    batch_clip(inputs / "b" / "c.mp4", seed=2)
    config = AnalyzeConfig(weights="none", device="cpu", render=False)
    report = run_batch(inputs, tmp_path / "out", config, workers=1)
    assert report.exit_code == 0
    out = tmp_path / "out"
    written = export_result("otio", out).written
    assert written == [out / "keyframes.otio"]
    timeline = otio.adapters.read_from_file(str(written[0]))
    assert [t.name for t in timeline.tracks] == ["a.mp4", "b__c.mp4"]
    assert [t[0].name for t in timeline.tracks] == ["a.mp4", "c.mp4"]
    for track in timeline.tracks:
        keyframes = pd.read_csv(out / track.name / "keyframes.csv")
        frames = [m.marked_range.start_time.value for m in track[0].markers]
        assert set(keyframes.frame_index) <= set(frames)
    assert export_result("vtt", out).written == [
        out / "a.mp4" / "keyframes.vtt",
        out / "b__c.mp4" / "keyframes.vtt",
    ]
