"""The synthetic clip generator: deterministic, truthful boxes, readable barcodes."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from videocam.synthetic import (
    EVENT_CLASSES,
    ClipSpec,
    draw_barcode,
    make_truth,
    read_barcode,
    render_clip,
)

from support.media import corrupt_mp4_index, truncate


def test_deterministic_by_seed() -> None:
    a, _ = render_clip(ClipSpec(n_frames=8, seed=5))
    b, _ = render_clip(ClipSpec(n_frames=8, seed=5))
    c, _ = render_clip(ClipSpec(n_frames=8, seed=6))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("index", [0, 1, 255, 4097, 65535])
def test_barcode_roundtrip(index: int) -> None:
    frame = np.full((60, 90, 3), 100, np.uint8)
    draw_barcode(frame, index)
    assert read_barcode(frame) == index


@pytest.mark.parametrize("event", EVENT_CLASSES[1:])
def test_event_interval_and_boxes(event: str) -> None:
    spec = ClipSpec(n_frames=40, size=(64, 80), seed=2, event=event, event_start=10, event_len=12)
    frames, truth = render_clip(spec)
    assert truth.event_frames == (10, 22)
    assert truth.label == EVENT_CLASSES.index(event)
    present = truth.boxes[:, 0] >= 0
    assert present.tolist() == [10 <= i < 22 for i in range(40)]
    # The object is drawn exactly in its box: pixels inside differ from the frame without it.
    empty, _ = render_clip(ClipSpec(n_frames=40, size=(64, 80), seed=2, event=None))
    for i in (10, 16, 21):
        x0, y0, x1, y1 = truth.boxes[i]
        changed = np.any(frames[i] != empty[i], axis=2)
        ys, xs = np.nonzero(changed)
        assert (ys.min(), xs.min(), ys.max() + 1, xs.max() + 1) == (y0, x0, y1, x1)
    centres = (truth.boxes[present, 0] + truth.boxes[present, 2]) / 2
    sizes = truth.boxes[present, 2] - truth.boxes[present, 0]
    if event == "move_right":
        assert np.all(np.diff(centres) > 0)
    elif event == "move_left":
        assert np.all(np.diff(centres) < 0)
    elif event == "grow":
        assert np.all(np.diff(sizes) >= 0)
        assert sizes[-1] > sizes[0]
    else:
        assert np.all(np.diff(sizes) <= 0)
        assert sizes[-1] < sizes[0]


def test_background_clip_has_no_event() -> None:
    truth = make_truth(ClipSpec(n_frames=20, event=None))
    assert truth.label == 0
    assert truth.event_frames is None
    assert np.all(truth.boxes == -1)


def test_bad_spec() -> None:
    with pytest.raises(ValueError, match="event"):
        ClipSpec(event="explode")


def test_truncate_keeps_the_first_bytes(tmp_path: Path) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(bytes(range(256)) * 4 + b"x")  # 1025 bytes
    assert truncate(src, tmp_path / "a", Fraction(2, 3)).read_bytes() == src.read_bytes()[:683]
    assert truncate(src, tmp_path / "b", 10).read_bytes() == bytes(range(10))
    assert src.stat().st_size == 1025


def test_corrupt_mp4_index_overwrites_the_sample_tables_only(tmp_path: Path) -> None:
    src = tmp_path / "src.mp4"
    # The tables, with filler between them, as in a moov atom.
    tables = [b"stsz", b"stco", b"stts"]
    src.write_bytes(b"".join(b"." * 100 + t + b"\x00" * 70 for t in tables))
    data = corrupt_mp4_index(src, tmp_path / "bad.mp4").read_bytes()
    original = src.read_bytes()
    assert len(data) == len(original)
    changed = [i for i in range(len(data)) if data[i] != original[i]]
    starts = [original.find(t) + 4 for t in tables]
    assert changed == [i for start in starts for i in range(start, start + 60)]
    text = tmp_path / "text.mp4"
    text.write_text("not a video\n")
    with pytest.raises(ValueError, match=r"text\.mp4: no stsz table: not an mp4/mov file"):
        corrupt_mp4_index(text, tmp_path / "c.mp4")
