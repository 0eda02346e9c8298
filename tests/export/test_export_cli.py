"""``videocam export``: default and given outputs, exit codes, one-line errors, the missing
extra, and WebVTT without it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from videocam.cli import EXPORT_FORMATS, main
from videocam.export import FORMATS

from support.results import write_batch, write_result


def test_cli_lists_the_export_formats() -> None:
    assert EXPORT_FORMATS == FORMATS


@pytest.mark.parametrize("fmt", ["otio", "edl", "vtt"])
def test_default_output_inside_result(
    tmp_path: Path, fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("otio_cmx3600_adapter")
    write_result(tmp_path)
    assert main(["export", fmt, str(tmp_path)]) == 0
    assert capsys.readouterr().out == f"wrote {tmp_path / f'keyframes.{fmt}'}\n"
    assert not list(tmp_path.glob(".*tmp-*"))  # atomic: no temporary file left


def test_output_file_and_quiet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_result(tmp_path / "r")
    out = tmp_path / "sub" / "chapters.vtt"
    assert main(["export", "vtt", str(tmp_path / "r"), "-o", str(out), "--quiet"]) == 0
    assert out.read_text().startswith("WEBVTT\n")
    assert capsys.readouterr().out == ""


def test_output_to_an_existing_folder_uses_the_default_name(tmp_path: Path) -> None:
    write_result(tmp_path / "r")
    (tmp_path / "elsewhere").mkdir()
    assert main(["export", "vtt", str(tmp_path / "r"), "-o", str(tmp_path / "elsewhere")]) == 0
    assert (tmp_path / "elsewhere" / "keyframes.vtt").is_file()


def test_missing_file_exit_2_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_result(tmp_path)
    (tmp_path / "keyframes.csv").unlink()
    assert main(["export", "vtt", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"videocam: error: {tmp_path}: keyframes.csv is missing")
    assert err.count("\n") == 1
    assert "Traceback" not in err


def test_bad_format_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as info:
        main(["export", "srt", str(tmp_path)])
    assert info.value.code == 2


def test_missing_extra_is_one_line_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_result(tmp_path)
    monkeypatch.setitem(sys.modules, "opentimelineio", None)  # import raises ImportError
    for fmt in ("otio", "edl"):
        assert main(["export", fmt, str(tmp_path)]) == 2
        assert capsys.readouterr().err == (
            f"videocam: error: videocam export {fmt} needs OpenTimelineIO: "
            "pip install 'videocam[interchange]'\n"
        )
    assert main(["export", "vtt", str(tmp_path)]) == 0  # WebVTT needs no extra
    assert not (tmp_path / "keyframes.otio").exists()


def test_missing_cmx_adapter_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("opentimelineio")
    write_result(tmp_path)
    monkeypatch.setitem(sys.modules, "otio_cmx3600_adapter", None)
    assert main(["export", "edl", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        "videocam: error: videocam export edl needs OpenTimelineIO's CMX 3600 adapter "
        "(otio-cmx3600-adapter): pip install 'videocam[interchange]'\n"
    )


def test_batch_edl_exits_3_when_a_video_cannot_be_exported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("otio_cmx3600_adapter")
    out = write_batch(tmp_path / "out", [("a.mp4", "ok"), ("b.mp4", "failed"), ("c.mp4", "ok")])
    write_result(out / "c.mp4", fps="15", video_path="/videos/c.mp4")  # no SMPTE timecode
    assert main(["export", "edl", str(out)]) == 3
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [
        f"wrote {out / 'a.mp4' / 'keyframes.edl'}",
        "2 videos with a result, 1 not exported",
        "left out, no result: b.mp4 (failed)",
    ]
    assert "c.mp4: not exported" in captured.err
    assert "15 fps" in captured.err
    assert not (out / "c.mp4" / "keyframes.edl").exists()


def test_batch_edl_to_a_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = write_batch(tmp_path / "out", [("a.mp4", "ok")])
    (tmp_path / "x.edl").write_text("")
    assert main(["export", "edl", str(out), "-o", str(tmp_path / "x.edl")]) == 2
    assert "not a folder" in capsys.readouterr().err
