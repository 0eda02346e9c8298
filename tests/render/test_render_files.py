"""Atomic writers and the output folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from videocam.errors import OutputError
from videocam.render.files import (
    atomic_write,
    ensure_output_dir,
    write_csv,
    write_json,
    write_npy,
)


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_atomic_write_success_moves_temp_onto_path(tmp_path: Path) -> None:
    target = tmp_path / "clip.mp4"
    with atomic_write(target) as tmp:
        assert tmp.parent == tmp_path
        assert tmp.name.startswith(".clip.mp4.tmp-")
        assert tmp.suffix == ".mp4"  # the real suffix stays last for format detection
        assert tmp.exists()
        assert not target.exists()
        tmp.write_bytes(b"data")
    assert target.read_bytes() == b"data"
    assert _names(tmp_path) == ["clip.mp4"]


def test_atomic_write_failure_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "table.csv"
    # The failure must happen inside atomic_write, after it wrote (PT012 allowed).
    with pytest.raises(ValueError, match="boom"), atomic_write(target) as tmp:  # noqa: PT012
        tmp.write_text("half")
        raise ValueError("boom")
    assert _names(tmp_path) == []


def test_atomic_write_replaces_existing_only_on_success(tmp_path: Path) -> None:
    target = tmp_path / "summary.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_write(target) as tmp:  # noqa: PT012 - fails inside
        tmp.write_text("new")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert _names(tmp_path) == ["summary.json"]
    with atomic_write(target) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new"
    assert _names(tmp_path) == ["summary.json"]


def test_atomic_write_os_error_in_body_becomes_output_error(tmp_path: Path) -> None:
    target = tmp_path / "cams.npy"
    with pytest.raises(OutputError, match="No space left"), atomic_write(target):
        raise OSError(28, "No space left on device")
    assert _names(tmp_path) == []


def test_atomic_write_unwritable_folder_names_path(tmp_path: Path) -> None:
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("x")
    target = blocker / "frames.csv"
    with pytest.raises(OutputError, match="cannot write") as info, atomic_write(target):
        pytest.fail("the body must not run")
    assert str(target) in str(info.value)
    assert _names(tmp_path) == ["not_a_dir"]


def test_ensure_output_dir(tmp_path: Path) -> None:
    made = ensure_output_dir(tmp_path / "a" / "b")
    assert made.is_dir()
    assert ensure_output_dir(made) == made  # existing folder is fine
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for bad in (blocker, blocker / "sub"):
        with pytest.raises(OutputError) as info:
            ensure_output_dir(bad)
        assert str(bad) in str(info.value)


def test_write_json_converts_numpy_and_nan(tmp_path: Path) -> None:
    obj = {
        "n": np.int64(3),
        "x": np.float32(0.5),
        "flag": np.bool_(True),
        "arr": np.arange(3, dtype=np.int16),
        "nan": float("nan"),
        "inf": np.float64("inf"),
        "nested": [np.array([1.5, np.nan]), (np.uint8(7), Path("/a/b"))],
    }
    path = write_json(obj, tmp_path / "summary.json")
    text = path.read_text()
    assert "NaN" not in text
    assert "Infinity" not in text
    assert "\n  " in text  # indented
    assert json.loads(text) == {
        "n": 3,
        "x": 0.5,
        "flag": True,
        "arr": [0, 1, 2],
        "nan": None,
        "inf": None,
        "nested": [[1.5, None], [7, "/a/b"]],
    }


def test_write_json_unencodable_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        write_json({"bad": object()}, tmp_path / "x.json")
    assert _names(tmp_path) == []


def test_write_csv_and_npy_round_trip(tmp_path: Path) -> None:
    df = pd.DataFrame({"frame_index": [0, 2], "time_s": [0.0, 0.08], "is_keyframe": [True, False]})
    pd.testing.assert_frame_equal(pd.read_csv(write_csv(df, tmp_path / "frames.csv")), df)
    cams = np.random.default_rng(0).random((3, 7, 7)).astype(np.float16)
    loaded = np.load(write_npy(cams, tmp_path / "cams.npy"))
    assert loaded.dtype == np.float16
    np.testing.assert_array_equal(loaded, cams)
    assert _names(tmp_path) == ["cams.npy", "frames.csv"]
