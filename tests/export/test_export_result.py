"""Reading RESULT: the contract's files only, batch OUTs, and one clear line for a folder that
cannot be exported."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import pytest

from videocam.errors import ConfigError
from videocam.export import read_result, read_results

from support.results import write_batch, write_result


def test_reads_only_the_contract_files(tmp_path: Path) -> None:
    write_result(tmp_path, fps="30000/1001", n_frames=120)
    result = read_result(tmp_path)
    assert result.fps == Fraction(30000, 1001)
    assert (result.n_frames, result.label, result.video_name) == (120, "move_right", "clip.mp4")
    assert list(result.keyframes["rank"]) == [1, 2]
    assert result.clock.constant_rate
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "frames.csv",
        "keyframes.csv",
        "segments.csv",
        "summary.json",
    ]


def test_older_summary_without_fps_fraction(tmp_path: Path) -> None:
    write_result(tmp_path, fps="30000/1001")
    summary = json.loads((tmp_path / "summary.json").read_text())
    del summary["video"]["fps_fraction"]
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    assert read_result(tmp_path).fps == Fraction(30000, 1001)  # from fps 29.97002997...


@pytest.mark.parametrize("missing", ["frames.csv", "keyframes.csv", "segments.csv", "summary.json"])
def test_a_missing_file_is_one_line_naming_folder_and_file(tmp_path: Path, missing: str) -> None:
    write_result(tmp_path)
    (tmp_path / missing).unlink()
    with pytest.raises(ConfigError) as info:
        read_results(tmp_path)
    message = str(info.value)
    assert message.startswith(f"{tmp_path}: {missing} is missing")
    assert "\n" not in message


def test_unusable_folders(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such folder"):
        read_results(tmp_path / "absent")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="not a folder"):
        read_results(tmp_path / "file")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="neither an analyze output folder"):
        read_results(tmp_path / "empty")


@pytest.mark.parametrize(
    ("file", "content", "reason"),
    [
        ("keyframes.csv", "", "empty file"),
        ("keyframes.csv", "rank,frame_index\n1,3\n", "missing column\\(s\\) time_s, attribution"),
        ("summary.json", "{not json", "cannot read"),
        ("summary.json", '{"video": {"path": "a.mp4"}}', "'video' lacks n_frames"),
        (
            "segments.csv",
            "start_frame,end_frame,start_s,end_s,attribution\n5,500,0,0,0\n",
            "frame indices outside",
        ),
    ],
)
def test_damaged_files(tmp_path: Path, file: str, content: str, reason: str) -> None:
    write_result(tmp_path)
    (tmp_path / file).write_text(content)
    with pytest.raises(ConfigError, match=f"^{tmp_path / file}: {reason}"):
        read_results(tmp_path)


def test_batch_out_lists_the_videos_with_a_result(tmp_path: Path) -> None:
    rows = [("a.mp4", "ok"), ("b.mp4", "failed"), ("c.mp4", "skipped-complete")]
    write_batch(tmp_path, [*rows, ("d.mp4", "pending")])
    results = read_results(tmp_path)
    assert results.is_batch
    assert [v.name for v in results.videos] == ["a.mp4", "c.mp4"]
    assert results.missing == [("b.mp4", "failed"), ("d.mp4", "pending")]


def test_batch_without_any_result(tmp_path: Path) -> None:
    write_batch(tmp_path, [("a.mp4", "failed"), ("b.mp4", "failed")])
    with pytest.raises(ConfigError, match=r"no video of this batch has a result \(2 failed\)"):
        read_results(tmp_path)


def test_batch_video_listed_ok_but_incomplete(tmp_path: Path) -> None:
    write_batch(tmp_path, [("a.mp4", "ok")])
    (tmp_path / "a.mp4" / "segments.csv").unlink()
    with pytest.raises(ConfigError, match=f"^{tmp_path / 'a.mp4'}: segments.csv is missing"):
        read_results(tmp_path)
