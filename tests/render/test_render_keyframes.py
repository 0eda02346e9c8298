"""Keyframe images: one full-resolution JPEG per keyframe, heatmap and box drawn."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from videocam.io import open_video
from videocam.render.keyframes import render_keyframes
from videocam.synthetic import make_clip


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("render_keyframes") / "src.mkv"
    make_clip(path, n_frames=12, size=(48, 64), event="move_right", seed=0, lossless=True)
    return path


def _table() -> pd.DataFrame:
    # Rank 2 first: the outputs must come in rank order all the same.
    return pd.DataFrame(
        {
            "rank": [2, 1],
            "frame_index": [3, 9],
            "time_s": [0.12, 0.36],
            "attribution": [0.5, 0.9],
            "x0": [-1, 10],
            "y0": [-1, 12],
            "x1": [-1, 40],
            "y1": [-1, 36],
        }
    )


def test_keyframe_images_written_with_box(clip: Path, tmp_path: Path) -> None:
    cams = {3: np.ones((7, 7), dtype=np.float16), 9: np.zeros((7, 7), dtype=np.float16)}
    result = render_keyframes(clip, tmp_path, keyframes=_table(), cams=cams)
    assert result.paths == ["keyframes/rank01_frame000009.jpg", "keyframes/rank02_frame000003.jpg"]
    assert result.times_s == [0.36, 0.12]
    with open_video(clip) as source:
        frames = source.read([9, 3])
    # Rank 1: heat 0 leaves the frame; the box outline is exactly white, its inside untouched.
    image = result.thumbnails[0]
    assert image.shape == (48, 64, 3)
    x0, y0, x1, y1 = 10, 12, 40, 36
    border = np.zeros((48, 64), dtype=bool)
    border[y0:y1, x0:x1] = True
    border[y0 + 2 : y1 - 2, x0 + 2 : x1 - 2] = False
    assert (image[border] == 255).all()
    np.testing.assert_array_equal(image[~border], frames[0][~border])
    # Rank 2: heat 1 everywhere, no box.
    assert np.abs(result.thumbnails[1].astype(int) - frames[1]).mean() > 20
    for rel, thumb in zip(result.paths, result.thumbnails, strict=True):
        with Image.open(tmp_path / rel) as jpeg:
            assert jpeg.format == "JPEG"
            assert jpeg.size == (64, 48)
            pixels = np.asarray(jpeg.convert("RGB")).astype(int)
        # The JPEG is the thumbnail plus a caption in the top-left corner (and JPEG noise).
        assert np.abs(pixels[30:, 40:] - thumb[30:, 40:]).mean() < 6
    jpeg_box = np.asarray(Image.open(tmp_path / result.paths[0]).convert("RGB"))
    assert jpeg_box[y1 - 1, x0 + 5 : x1 - 5].min() > 200  # bottom edge of the box


def test_keyframe_images_callable_cams_and_paths_only(clip: Path, tmp_path: Path) -> None:
    calls: list[int] = []

    def cam_of(frame_index: int) -> np.ndarray | None:
        calls.append(frame_index)
        return None if frame_index == 3 else np.full((7, 7), 0.5, dtype=np.float32)

    paths = render_keyframes(clip, tmp_path, keyframes=_table(), cams=cam_of).paths
    assert paths == ["keyframes/rank01_frame000009.jpg", "keyframes/rank02_frame000003.jpg"]
    assert sorted(calls) == [3, 9]
    assert sorted(p.name for p in (tmp_path / "keyframes").iterdir()) == [
        "rank01_frame000009.jpg",
        "rank02_frame000003.jpg",
    ]


def test_keyframe_images_missing_map_and_empty_table(clip: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="frame 9"):
        render_keyframes(clip, tmp_path, keyframes=_table(), cams={3: np.zeros((7, 7))})
    empty = render_keyframes(clip, tmp_path / "out", keyframes=_table().iloc[:0], cams={})
    assert empty.paths == []
    assert empty.for_timeline() == []
    assert (tmp_path / "out" / "keyframes").is_dir()
    with pytest.raises(ValueError, match="columns"):
        render_keyframes(clip, tmp_path, keyframes=_table().drop(columns="x0"), cams={})
