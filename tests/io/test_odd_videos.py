"""Odd but valid videos, over every backend: rotation metadata, damaged packets, odd sizes, one
frame, audio only. Each decodes what can be decoded, upright, with the source's own indices and
times, or fails with a typed one-line error."""

from __future__ import annotations

import struct
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from videocam.errors import DecodeError, VideoOpenError
from videocam.io import BACKENDS, FrameBatch, FrameSource, dense_frames, open_video, stand_ins
from videocam.synthetic import (
    ClipSpec,
    SyntheticClip,
    make_clip,
    read_barcode,
    render_clip,
    write_frames,
)

from support.media import corrupt_packets, video_packets, write_audio

ROTATED_SPEC = ClipSpec(n_frames=20, size=(96, 64), seed=6, event="grow", barcode=True)
#: Non-key frames whose packets get damaged (keyframes every 12 frames): one B-frame of the first
#: group of pictures, one frame of the second, two in a row in the third; groups 4 and 5 intact.
DAMAGED = (5, 17, 30, 31)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def read_all(source: FrameSource, **kwargs: object) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(indices, times, frames) of a whole streamed read."""
    batches = list(source.iter_batches(**kwargs))  # type: ignore[arg-type]
    return (
        np.concatenate([b.indices for b in batches]),
        np.concatenate([b.times_s for b in batches]),
        np.concatenate([b.frames for b in batches]),
    )


# -- rotation ----------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=[90, 180, 270])
def rotated_clip(request: pytest.FixtureRequest, video_dir: Path) -> SyntheticClip:
    rotation = int(request.param)
    path = video_dir / f"rotated{rotation}.mp4"
    return make_clip(path, ROTATED_SPEC, lossless=True, rotation=rotation)


def tkhd_matrix(path: Path) -> tuple[float, ...]:
    """The video track's display matrix as stored in the mp4 (a, b, u, c, d, v, x, y, w)."""
    data = path.read_bytes()
    at = data.find(b"tkhd")
    assert at > 0, "expected a tkhd box"
    assert data[at + 4] == 0, "expected a version-0 tkhd box"
    # After the box type: version/flags 4, times 8, track id 4, reserved 4, duration 4,
    # reserved 8, layer/group/volume/reserved 8, then the 3x3 matrix.
    raw = struct.unpack(">9i", data[at + 44 : at + 80])
    return tuple(v / (1 << 30) if i % 3 == 2 else v / (1 << 16) for i, v in enumerate(raw))


def test_rotation_convention_matches_players(backend: str, video_dir: Path) -> None:
    """A clip tagged "rotate 90" (the matrix phones write for portrait video) is shown turned
    90 degrees clockwise: the marker in the coded top-left corner ends top-right."""
    coded = np.full((3, 32, 48, 3), 40, dtype=np.uint8)
    coded[:, :8, :8] = (255, 0, 0)  # red marker, coded top-left
    path = write_frames(video_dir / "marker90.mp4", coded, lossless=True, rotation=90)
    # QuickTime's matrix for 90 degrees clockwise: x' = -y, y' = x (then translated).
    assert tkhd_matrix(path) == (0.0, 1.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 1.0)
    with open_video(path, backend) as source:
        assert source.meta.rotation == 90
        assert (source.meta.height, source.meta.width) == (48, 32)
        frame = source.read([1])[0]
    np.testing.assert_array_equal(frame, np.rot90(coded[1], k=-1))
    assert tuple(frame[2, -3]) == (255, 0, 0)  # top-right


def test_rotation_read_back_by_pyav_directly(video_dir: Path) -> None:
    """The writer stores FFmpeg's counterclockwise display-matrix angle as -rotation."""
    import av

    frames = np.zeros((2, 16, 32, 3), dtype=np.uint8)
    path = write_frames(video_dir / "angle270.mp4", frames, lossless=True, rotation=270)
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
        assert frame.rotation == 90  # counterclockwise; players turn 270 clockwise


def test_rotated_frames_are_upright(backend: str, rotated_clip: SyntheticClip) -> None:
    drawn, _ = render_clip(ROTATED_SPEC)
    with open_video(rotated_clip.path, backend) as source:
        meta = source.meta
        assert meta.rotation == int(rotated_clip.path.stem.removeprefix("rotated"))
        assert (meta.height, meta.width) == ROTATED_SPEC.size
        indices, times, frames = read_all(source, batch_size=7)
        assert indices.tolist() == list(range(20))
        np.testing.assert_allclose(times, rotated_clip.times_s, atol=1e-6)
        np.testing.assert_array_equal(frames, drawn)
        np.testing.assert_array_equal(source.read([19, 0, 7]), drawn[[19, 0, 7]])


def test_rotated_resize_is_the_upright_size(backend: str, rotated_clip: SyntheticClip) -> None:
    with open_video(rotated_clip.path, backend) as source:
        for size in [(48, 32), (64, 64), (40, 60)]:
            indices, _, frames = read_all(source, size=size, batch_size=8)
            assert frames.shape == (20, *size, 3)
            assert [read_barcode(f) for f in frames] == indices.tolist()
            assert source.read([13], size=size).shape == (1, *size, 3)
            assert read_barcode(source.read([13], size=size)[0]) == 13


# -- damaged packets ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def damaged_clip(damaged_copy: Callable[[Path, tuple[int, ...]], Path], video_dir: Path) -> Path:
    return damaged_copy(video_dir / "damaged.mp4", DAMAGED)


@pytest.mark.parametrize("size", [None, (32, 48)])
def test_damaged_packets_are_skipped(
    backend: str, damaged_clip: Path, clean_clip: SyntheticClip, size: tuple[int, int] | None
) -> None:
    with open_video(damaged_clip, backend) as source:
        assert source.meta.n_frames == 60
        indices, times, frames = read_all(source, size=size, batch_size=16)
        expected = [i for i in range(60) if i not in DAMAGED]
        assert indices.tolist() == expected
        # Indices and times keep the source's own mapping around the gaps.
        np.testing.assert_allclose(times, clean_clip.times_s[expected], atol=1e-6)
        assert source.skipped_indices == DAMAGED
        assert source.decode_errors == 4
        report = source.decode_report()
        assert report["decode_errors"] == 4
        assert report["skipped_frames"] == list(DAMAGED)
        # Keyframes and whole groups of pictures after the damage decode exactly.
        intact = [i for i in expected if i in (0, 12, 24) or i >= 36]
        got = dict(zip(indices.tolist(), frames, strict=True))
        assert [read_barcode(got[i]) for i in intact] == intact
        # A second pass counts each damaged frame once.
        read_all(source, size=size)
        assert source.decode_errors == 4


def test_damaged_frame_random_access(backend: str, damaged_clip: Path) -> None:
    with open_video(damaged_clip, backend) as source:
        assert [read_barcode(f) for f in source.read([48, 0, 40])] == [48, 0, 40]
        with pytest.raises(DecodeError, match=r"damaged\.mp4: frame 17 cannot be decoded"):
            source.read([16, 17])
        assert 17 in source.skipped_indices
        assert [read_barcode(f) for f in source.read([59, 36])] == [59, 36]


def test_concealed_damage_is_flagged_by_pyav(
    backend: str, clean_clip: SyntheticClip, video_dir: Path
) -> None:
    """Zeroed packet tails: FFmpeg conceals the errors and flags the frames corrupt. PyAV
    reports them; decord does not expose the flag, so it decodes the same frames uncounted."""
    path = corrupt_packets(clean_clip.path, video_dir / "holes.mp4", DAMAGED, mode="zeros")
    with open_video(path, backend) as source:
        indices, _, _ = read_all(source)
        assert indices.tolist() == list(range(60))
        assert source.skipped_indices == ()
        if source.meta.backend == "pyav":
            assert source.corrupt_indices == DAMAGED
            assert source.decode_errors == 4
        else:
            assert source.decode_errors in (0, 4)


def test_no_frame_decodes(backend: str, video_dir: Path) -> None:
    """A sound index over data that is all garbage: a typed error, not an empty result."""
    clip = make_clip(video_dir / "tobegarbled.mp4", ClipSpec(n_frames=24, size=(64, 96)))
    data = bytearray(clip.path.read_bytes())
    rng = np.random.default_rng(0)
    for _, pos, size, _ in video_packets(clip.path):
        data[pos : pos + size] = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
    path = video_dir / "garbled.mp4"
    path.write_bytes(bytes(data))
    fails = pytest.raises((VideoOpenError, DecodeError), match=r"garbled\.mp4")
    with fails as info, open_video(path, backend) as source:
        read_all(source)
    assert "\n" not in str(info.value)


def test_stand_ins() -> None:
    indices = np.array([3, 5, 6, 9, 10, 12], dtype=np.int64)
    assert stand_ins(indices, []).tolist() == [0, 1, 2, 3, 4, 5]
    assert stand_ins(indices, [5, 6, 12]).tolist() == [0, 0, 0, 3, 4, 4]
    assert stand_ins(indices, [3, 5, 10, 77]).tolist() == [2, 2, 2, 3, 3, 5]
    with pytest.raises(DecodeError, match="none of the 6 frames"):
        stand_ins(indices, indices.tolist())


def test_dense_frames_fill_every_position() -> None:
    indices = np.array([2, 4, 6, 8, 10, 12, 14], dtype=np.int64)
    decoded = [4, 6, 10]  # 2 (leading), 8 (inner), 12 and 14 (trailing) skipped
    frames = np.arange(7, dtype=np.uint8)[:, None, None, None] * np.ones((1, 2, 3, 3), np.uint8)
    batches = [
        FrameBatch(
            indices=np.array(chunk, dtype=np.int64),
            times_s=np.zeros(len(chunk)),
            frames=frames[np.searchsorted(indices, chunk)],
        )
        for chunk in ([4], [6, 10])
    ]
    dense = np.concatenate(list(dense_frames(batches, indices)))
    assert dense.shape == (7, 2, 3, 3)
    skipped = sorted(set(indices.tolist()) - set(decoded))
    assert (
        dense[:, 0, 0, 0].tolist() == stand_ins(indices, skipped).tolist() == [1, 1, 2, 2, 4, 4, 4]
    )


def test_dense_frames_over_damaged_clip(backend: str, damaged_clip: Path) -> None:
    indices = np.arange(0, 60, 2, dtype=np.int64)  # 30, 32 wanted; 30 is damaged
    with open_video(damaged_clip, backend) as source:
        dense = np.concatenate(list(dense_frames(source.iter_batches(indices), indices)))
        assert len(dense) == 30
        lost = [i for i in indices.tolist() if i in source.skipped_indices]
        assert lost == [30]
        stand = stand_ins(indices, source.skipped_indices)
        assert indices[stand].tolist()[14:17] == [28, 28, 32]
        np.testing.assert_array_equal(dense[15], dense[14])
        assert read_barcode(dense[-1]) == 58


# -- sizes and lengths -------------------------------------------------------------------------


def test_odd_size(backend: str, video_dir: Path) -> None:
    frames = np.random.default_rng(7).integers(0, 256, (6, 17, 33, 3), dtype=np.uint8)
    path = write_frames(video_dir / "odd.mp4", frames, lossless=True)
    with open_video(path, backend) as source:
        assert (source.meta.height, source.meta.width) == (17, 33)
        _, _, decoded = read_all(source, batch_size=4)
        np.testing.assert_array_equal(decoded, frames)
        for size in [(9, 15), (64, 64), (17, 33)]:
            assert read_all(source, size=size)[2].shape == (6, *size, 3)


def test_odd_size_lossy(backend: str, video_dir: Path) -> None:
    """Odd sizes are written as yuv444p (4:2:0 needs even sizes) and decode close to the source."""
    frames, _ = render_clip(ClipSpec(n_frames=5, size=(17, 33), seed=2, event=None))
    path = write_frames(video_dir / "odd_lossy.mp4", frames)
    with open_video(path, backend) as source:
        _, _, decoded = read_all(source)
    assert decoded.shape == frames.shape
    assert np.abs(decoded.astype(int) - frames).mean() < 4


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_single_frame(backend: str, video_dir: Path, suffix: str) -> None:
    spec = ClipSpec(n_frames=1, size=(64, 80), seed=3, barcode=True)
    clip = make_clip(video_dir / f"one{suffix}", spec)
    with open_video(clip.path, backend) as source:
        meta = source.meta
        assert meta.n_frames == 1
        assert meta.fps == Fraction(25)
        assert meta.duration_s == pytest.approx(0.04)
        assert source.times_s.tolist() == [0.0]
        indices, times, _ = read_all(source, size=(32, 32))
        assert indices.tolist() == [0]
        assert times.tolist() == [0.0]
        assert read_barcode(source.read([0, 0])[1]) == 0


def test_single_frame_gif(video_dir: Path) -> None:
    clip = make_clip(video_dir / "one.gif", ClipSpec(n_frames=1, size=(48, 64), barcode=True))
    with open_video(clip.path) as source:
        assert source.meta.backend == "pyav"
        assert source.meta.n_frames == 1
        assert read_barcode(source.read([0])[0]) == 0


# -- no video at all ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["tone.m4a", "tone.mp4", "tone.wav"])
@pytest.mark.parametrize("which", [*BACKENDS, "auto"])
def test_audio_only(which: str, video_dir: Path, name: str) -> None:
    path = video_dir / name
    if not path.exists():
        write_audio(path, 0.5)
    with pytest.raises(VideoOpenError, match=rf"{name}: no video stream \(it holds audio\)$"):
        open_video(path, which)
