"""Footage in the wild, end to end through the CLI (in-process, on tmp_path).

Unusable inputs exit 2 with one line on stderr that names the file and the reason, no traceback
and no output folder; odd but valid inputs exit 0 with one frames.csv row per decoded frame at
the stream's own timestamps. The same input and config give the same frames.csv.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from videocam.cli import main
from videocam.synthetic import (
    ClipSpec,
    SyntheticClip,
    make_clip,
    read_barcode,
    render_clip,
    write_frames,
)

from support.floats import assert_same_table
from support.media import (
    corrupt_mp4_index,
    corrupt_packets,
    remux,
    truncate,
    video_packets,
    write_audio,
)

#: Frames whose packets are damaged in the damaged clip (non-key frames; keyframes every 12).
DAMAGED = (5, 17, 30, 31)
#: Irregular steps of 40 ms and 100 ms (variable frame rate), on the writer's millisecond grid.
VFR_TIMES = np.cumsum([0.0] + [0.04 if i % 3 else 0.1 for i in range(23)])


def analyze(video: Path, out: Path, *extra: str, render: bool = False) -> int:
    """``videocam analyze`` in-process with the bundled tiny model at seeded random weights."""
    import torch

    torch.manual_seed(0)
    args = ["analyze", str(video), "-o", str(out), "--weights", "none", "--quiet", *extra]
    if not render:
        args.append("--no-render")
    return main(args)


def stream_times(path: Path) -> np.ndarray:
    """Presentation times of every frame as the container stores them, first frame at 0."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        pts = sorted(p.pts for p in container.demux(stream) if p.size and p.pts is not None)
        time_base = float(stream.time_base)
    return (np.asarray(pts, dtype=np.float64) - pts[0]) * time_base


def check_ok(
    code: int, capfd: pytest.CaptureFixture[str], out: Path, indices: list[int], times: np.ndarray
) -> pd.DataFrame:
    captured = capfd.readouterr()
    assert code == 0, captured.err
    assert captured.err == ""
    frames = pd.read_csv(out / "frames.csv")
    assert frames.frame_index.tolist() == indices
    np.testing.assert_allclose(frames.time_s.to_numpy(), times, atol=1e-6)
    assert np.isfinite(frames.attribution).all()
    assert (frames.attribution >= 0).all()
    assert len(np.load(out / "cams.npy")) == len(indices)
    return frames


def summary(out: Path) -> dict:  # type: ignore[type-arg]
    return json.loads((out / "summary.json").read_text())  # type: ignore[no-any-return]


# -- the corpus --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("wild")


@pytest.fixture(scope="module")
def plain_clip(corpus: Path) -> SyntheticClip:
    return make_clip(corpus / "plain.mp4", ClipSpec(n_frames=24, size=(64, 80), seed=11))


@pytest.fixture(scope="module")
def faststart_clip(corpus: Path, plain_clip: SyntheticClip) -> Path:
    return remux(plain_clip.path, corpus / "faststart.mp4", options={"movflags": "faststart"})


@pytest.fixture(scope="module")
def damaged_source(corpus: Path) -> SyntheticClip:
    spec = ClipSpec(n_frames=60, size=(64, 96), seed=5, event="move_right", barcode=True)
    return make_clip(corpus / "undamaged.mp4", spec)


# -- unusable inputs: exit 2, one line, nothing written ---------------------------------------


def _missing(path: Path, _: SyntheticClip, __: Path) -> Path:
    return path


def _directory(path: Path, _: SyntheticClip, __: Path) -> Path:
    path.mkdir()
    return path


def _empty(path: Path, _: SyntheticClip, __: Path) -> Path:
    path.touch()
    return path


def _text(path: Path, _: SyntheticClip, __: Path) -> Path:
    path.write_text("frame,label\n1,car\n" * 100)
    return path


def _random(path: Path, _: SyntheticClip, __: Path) -> Path:
    path.write_bytes(np.random.default_rng(3).integers(0, 256, 80_000, dtype=np.uint8).tobytes())
    return path


def _cut_index_at_end(path: Path, plain: SyntheticClip, _: Path) -> Path:
    return truncate(plain.path, path, Fraction(1, 2))


def _cut_faststart(path: Path, _: SyntheticClip, faststart: Path) -> Path:
    return truncate(faststart, path, Fraction(2, 3))


def _bad_index(path: Path, _: SyntheticClip, faststart: Path) -> Path:
    return corrupt_mp4_index(faststart, path)


def _audio_only(path: Path, _: SyntheticClip, __: Path) -> Path:
    return write_audio(path, 0.5)


def _header_then_noise(path: Path, plain: SyntheticClip, _: Path) -> Path:
    noise = np.random.default_rng(4).integers(0, 256, 100_000, dtype=np.uint8).tobytes()
    path.write_bytes(plain.path.read_bytes()[:64] + noise)
    return path


def _all_frames_garbled(path: Path, _: SyntheticClip, faststart: Path) -> Path:
    data = bytearray(faststart.read_bytes())
    rng = np.random.default_rng(5)
    for _, pos, size, _ in video_packets(faststart):
        data[pos : pos + size] = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    return path


UNUSABLE: list[tuple[str, Callable[[Path, SyntheticClip, Path], Path], str]] = [
    ("missing.mp4", _missing, "no such file"),
    ("folder", _directory, "is a directory"),
    ("empty.mp4", _empty, "file is empty"),
    ("labels.mp4", _text, "not a video file"),
    ("random.mp4", _random, "not a video file"),
    ("cut.mp4", _cut_index_at_end, "moov atom) is missing"),
    ("short.mp4", _cut_faststart, "file is truncated"),
    ("badindex.mp4", _bad_index, "index is damaged"),
    ("audio.m4a", _audio_only, "no video stream"),
    ("noise.mp4", _header_then_noise, "moov atom) is missing"),
    ("garbled.mp4", _all_frames_garbled, "can be decoded"),
]


@pytest.mark.parametrize(("name", "make", "reason"), UNUSABLE, ids=[c[0] for c in UNUSABLE])
def test_unusable_input(
    name: str,
    make: Callable[[Path, SyntheticClip, Path], Path],
    reason: str,
    tmp_path: Path,
    plain_clip: SyntheticClip,
    faststart_clip: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    video = make(tmp_path / name, plain_clip, faststart_clip)
    out = tmp_path / "out"
    code = analyze(video, out)
    captured = capfd.readouterr()
    assert code == 2
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"videocam: error: {video}: ")
    assert reason in lines[0]
    assert "Traceback" not in captured.err
    assert not out.exists()


@pytest.mark.parametrize("where", ["under_a_file", "is_a_file", "proc"])
def test_unusable_output_folder(
    where: str, tmp_path: Path, plain_clip: SyntheticClip, capfd: pytest.CaptureFixture[str]
) -> None:
    """Tests run as root, where permissions do not stop writes: use paths no one can write."""
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    if where == "under_a_file":
        out = blocker / "out"
    elif where == "is_a_file":
        out = blocker
    else:
        if not Path("/proc/self").is_dir():
            pytest.skip("no /proc")
        out = Path("/proc/videocam-out")
    code = analyze(plain_clip.path, out)
    captured = capfd.readouterr()
    assert code == 2
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"videocam: error: {out}: ")
    assert "output folder" in lines[0]
    assert "Traceback" not in captured.err
    assert blocker.read_text() == "not a folder"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


# -- odd but valid inputs: exit 0, one row per decoded frame ----------------------------------


def test_one_frame(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    clip = make_clip(tmp_path / "one.mp4", ClipSpec(n_frames=1, size=(64, 80), seed=1))
    out = tmp_path / "out"
    check_ok(analyze(clip.path, out), capfd, out, [0], np.zeros(1))
    assert summary(out)["video"]["n_frames"] == 1


def test_shorter_than_one_window(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    clip = make_clip(tmp_path / "short.mp4", ClipSpec(n_frames=7, size=(64, 80), seed=2))
    out = tmp_path / "out"
    check_ok(analyze(clip.path, out), capfd, out, list(range(7)), clip.times_s)


def test_odd_size_rendered(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    import av

    frames, _ = render_clip(ClipSpec(n_frames=12, size=(17, 33), seed=3, event=None))
    video = write_frames(tmp_path / "odd.mp4", frames)
    out = tmp_path / "out"
    check_ok(analyze(video, out, render=True), capfd, out, list(range(12)), np.arange(12) / 25)
    meta = summary(out)["video"]
    assert (meta["width"], meta["height"]) == (33, 17)
    with av.open(str(out / "annotated.mp4")) as container:
        stream = container.streams.video[0]
        assert stream.width == 34
        assert stream.height % 2 == 0
        assert stream.height > 17
        assert sum(1 for _ in container.decode(stream)) == 12


def test_4k_portrait(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    frames, _ = render_clip(ClipSpec(n_frames=3, size=(3840, 2160), seed=4, barcode=True))
    video = write_frames(tmp_path / "portrait.mp4", frames, preset="ultrafast")
    out = tmp_path / "out"
    check_ok(analyze(video, out), capfd, out, [0, 1, 2], np.arange(3) / 25)
    meta = summary(out)["video"]
    assert (meta["width"], meta["height"]) == (2160, 3840)
    boxes = pd.read_csv(out / "keyframes.csv")
    assert (boxes.x1 <= 2160).all()
    assert (boxes.y1 <= 3840).all()


def test_gif(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    clip = make_clip(tmp_path / "clip.gif", ClipSpec(n_frames=12, size=(48, 64), seed=5))
    out = tmp_path / "out"
    check_ok(analyze(clip.path, out), capfd, out, list(range(12)), stream_times(clip.path))
    assert summary(out)["video"]["backend"] == "pyav"


def test_rotation_rendered_upright(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """A phone-style clip: coded landscape, display rotation 90. Everything comes out upright:
    metadata, boxes, keyframe images and the annotated clip (checked through its barcodes with
    the heatmap made transparent)."""
    import av
    from PIL import Image

    spec = ClipSpec(n_frames=20, size=(96, 64), seed=6, event="grow", barcode=True)
    clip = make_clip(tmp_path / "phone.mp4", spec, rotation=90)
    with av.open(str(clip.path)) as container:
        coded = container.streams.video[0].codec_context
        assert (coded.height, coded.width) == (64, 96)
    out = tmp_path / "out"
    code = analyze(clip.path, out, "--alpha", "0", render=True)
    check_ok(code, capfd, out, list(range(20)), clip.times_s)
    meta = summary(out)["video"]
    assert (meta["rotation"], meta["width"], meta["height"]) == (90, 64, 96)
    for image in pd.read_csv(out / "keyframes.csv").image:
        with Image.open(out / image) as keyframe:
            assert keyframe.size == (64, 96)
    with av.open(str(out / "annotated.mp4")) as container:
        stream = container.streams.video[0]
        assert stream.width == 64
        assert stream.height > 96
        # The picture is under the strip: its last 96 rows.
        pictures = [f.to_ndarray(format="rgb24")[-96:] for f in container.decode(stream)]
    assert [read_barcode(p) for p in pictures] == list(range(20))


def test_variable_frame_rate(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    spec = ClipSpec(n_frames=24, size=(64, 80), seed=7, event=None)
    clip = make_clip(tmp_path / "vfr.mp4", spec, times_s=VFR_TIMES)
    out = tmp_path / "out"
    frames = check_ok(analyze(clip.path, out), capfd, out, list(range(24)), VFR_TIMES)
    np.testing.assert_allclose(frames.time_s, stream_times(clip.path), atol=1e-6)
    # Not index / fps: the steps are uneven.
    assert len(set(np.round(np.diff(frames.time_s), 3))) == 2


@pytest.mark.parametrize("backend", ["auto", "pyav", "decord"])
def test_damaged_packets(
    backend: str,
    tmp_path: Path,
    damaged_source: SyntheticClip,
    capfd: pytest.CaptureFixture[str],
) -> None:
    video = corrupt_packets(damaged_source.path, tmp_path / "damaged.mp4", DAMAGED)
    decoded = [i for i in range(60) if i not in DAMAGED]
    outs = [tmp_path / "out1", tmp_path / "out2"]
    for out in outs:
        code = analyze(video, out, "--backend", backend)
        check_ok(code, capfd, out, decoded, damaged_source.times_s[decoded])
        report = summary(out)["decode"]
        assert report["decode_errors"] == 4
        assert report["skipped_frames"] == list(DAMAGED)
        assert any("damaged" in w for w in summary(out)["warnings"])
    # Reproducible although decord reports damage at a moment that varies from run to run.
    assert (outs[0] / "frames.csv").read_bytes() == (outs[1] / "frames.csv").read_bytes()


def test_concealed_damage_is_reported(
    tmp_path: Path, damaged_source: SyntheticClip, capfd: pytest.CaptureFixture[str]
) -> None:
    """Frames FFmpeg decodes with errors concealed keep their rows and are counted (PyAV)."""
    video = corrupt_packets(damaged_source.path, tmp_path / "holes.mp4", DAMAGED, mode="zeros")
    out = tmp_path / "out"
    code = analyze(video, out, "--backend", "pyav")
    check_ok(code, capfd, out, list(range(60)), damaged_source.times_s)
    report = summary(out)["decode"]
    assert report == {"decode_errors": 4, "skipped_frames": [], "corrupt_frames": list(DAMAGED)}


# -- determinism -------------------------------------------------------------------------------


def test_same_input_same_frames_csv(
    tmp_path: Path, plain_clip: SyntheticClip, capfd: pytest.CaptureFixture[str]
) -> None:
    outs = [tmp_path / "a", tmp_path / "b"]
    for out in outs:
        assert analyze(plain_clip.path, out, "--backend", "pyav") == 0
    assert (outs[0] / "frames.csv").read_bytes() == (outs[1] / "frames.csv").read_bytes()
    assert np.array_equal(np.load(outs[0] / "cams.npy"), np.load(outs[1] / "cams.npy"))


def test_same_frames_csv_across_processes(tmp_path: Path, plain_clip: SyntheticClip) -> None:
    """Two fresh processes, the bundled weights (no seeding needed), the default backend: the
    same frames and times exactly, the same numbers up to float32 rounding (support/floats.py:
    processes need not sum in the same order)."""
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    runs = [
        subprocess.Popen(
            [
                *(sys.executable, "-m", "videocam", "analyze", str(plain_clip.path)),
                *("-o", str(tmp_path / name), "--no-render", "--quiet"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        for name in ("p1", "p2")
    ]
    for run in runs:
        _, err = run.communicate(timeout=120)
        assert run.returncode == 0, err.decode()[-2000:]
    first, second = (pd.read_csv(tmp_path / name / "frames.csv") for name in ("p1", "p2"))
    assert len(first) == 24
    assert_same_table(first, second)
    pd.testing.assert_series_equal(first.time_s, second.time_s, check_exact=True)
