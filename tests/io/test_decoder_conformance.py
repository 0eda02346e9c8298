"""Every decoder test runs over every backend: same frames, same times, same errors."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from videocam.errors import DecodeError, VideocamError, VideoOpenError
from videocam.io import BACKENDS, FrameSource, open_video, sample_indices
from videocam.synthetic import SyntheticClip, read_barcode

from support.media import corrupt_mp4_index, truncate, video_packets


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def barcodes(frames: np.ndarray) -> list[int]:
    return [read_barcode(frame) for frame in frames]


def read_all(source: FrameSource, **kwargs: object) -> tuple[np.ndarray, np.ndarray]:
    indices, frames = [], []
    for batch in source.iter_batches(**kwargs):  # type: ignore[arg-type]
        assert barcodes(batch.frames) == batch.indices.tolist()
        indices.append(batch.indices)
        frames.append(batch.frames)
    return np.concatenate(indices), np.concatenate(frames)


# -- metadata --------------------------------------------------------------------------------


def test_meta(backend: str, lossless_clip: SyntheticClip) -> None:
    with open_video(lossless_clip.path, backend) as source:
        meta = source.meta
    assert meta.backend == backend
    assert meta.n_frames == 40
    assert (meta.height, meta.width) == (96, 128)
    assert meta.fps == Fraction(25)
    assert isinstance(meta.fps, Fraction)
    assert meta.duration_s == pytest.approx(40 / 25)
    assert meta.codec == "h264"
    assert meta.rotation == 0
    assert meta.path == lossless_clip.path


def test_timestamps_constant_rate(backend: str, seek_clip: SyntheticClip) -> None:
    with open_video(seek_clip.path, backend) as source:
        np.testing.assert_allclose(source.times_s, np.arange(150) / 25, atol=1e-6)


def test_timestamps_variable_rate(backend: str, vfr_clip: SyntheticClip) -> None:
    with open_video(vfr_clip.path, backend) as source:
        np.testing.assert_allclose(source.times_s, vfr_clip.times_s, atol=1e-6)
        # Frames still come in order with their own times.
        indices, _ = read_all(source, batch_size=7)
        assert indices.tolist() == list(range(30))
        # FFmpeg's average rate: frames / duration (the last frame lasts as long as the one before).
        assert source.meta.fps == Fraction(30) / Fraction("1.8")


# -- frame-exact reads -----------------------------------------------------------------------


def test_sequential_read_is_pixel_exact(
    backend: str, lossless_clip: SyntheticClip, lossless_frames: np.ndarray
) -> None:
    with open_video(lossless_clip.path, backend) as source:
        indices, frames = read_all(source, batch_size=16)
    assert indices.tolist() == list(range(40))
    np.testing.assert_array_equal(frames, lossless_frames)


def test_random_access_is_pixel_exact(
    backend: str, lossless_clip: SyntheticClip, lossless_frames: np.ndarray
) -> None:
    order = [39, 0, 17, 17, 5, 38, 1]
    with open_video(lossless_clip.path, backend) as source:
        frames = source.read(order)
    np.testing.assert_array_equal(frames, lossless_frames[order])


def test_random_access_across_keyframes(backend: str, seek_clip: SyntheticClip) -> None:
    order = [149, 3, 120, 64, 65, 12, 0, 100, 99]
    with open_video(seek_clip.path, backend) as source:
        assert barcodes(source.read(order)) == order
        # Interleaving random reads and streams must not disturb either.
        assert barcodes(source.read([140])) == [140]
        indices, _ = read_all(source, indices=[2, 90, 91, 148], batch_size=3)
        assert indices.tolist() == [2, 90, 91, 148]


def test_mkv_container(backend: str, mkv_clip: SyntheticClip) -> None:
    with open_video(mkv_clip.path, backend) as source:
        assert source.meta.n_frames == 150
        assert barcodes(source.read([77, 5])) == [77, 5]
        np.testing.assert_allclose(source.times_s, np.arange(150) / 25, atol=1e-6)


def test_resize_in_decoder(backend: str, seek_clip: SyntheticClip) -> None:
    with open_video(seek_clip.path, backend) as source:
        indices, frames = read_all(source, size=(32, 40), batch_size=64)
        assert frames.shape == (150, 32, 40, 3)
        assert frames.dtype == np.uint8
        assert indices.tolist() == list(range(150))
        assert source.read([10], size=(20, 30)).shape == (1, 20, 30, 3)


def test_stride_and_time_range(backend: str, seek_clip: SyntheticClip) -> None:
    with open_video(seek_clip.path, backend) as source:
        wanted = sample_indices(source.times_s, stride=4, start_s=1.0, end_s=3.0)
        assert wanted.tolist() == list(range(25, 75, 4))
        indices, _ = read_all(source, indices=wanted, size=(32, 48), batch_size=5)
        assert indices.tolist() == wanted.tolist()


def test_target_fps(backend: str, seek_clip: SyntheticClip) -> None:
    with open_video(seek_clip.path, backend) as source:
        wanted = sample_indices(source.times_s, fps=5)
        assert wanted.tolist() == list(range(0, 150, 5))
        indices, _ = read_all(source, indices=wanted)
        assert indices.tolist() == wanted.tolist()


def test_batches_carry_times(backend: str, vfr_clip: SyntheticClip) -> None:
    with open_video(vfr_clip.path, backend) as source:
        batches = list(source.iter_batches(batch_size=8))
    assert [len(b) for b in batches] == [8, 8, 8, 6]
    times = np.concatenate([b.times_s for b in batches])
    np.testing.assert_allclose(times, vfr_clip.times_s, atol=1e-6)


def test_bad_indices(backend: str, seek_clip: SyntheticClip) -> None:
    with open_video(seek_clip.path, backend) as source:
        with pytest.raises(IndexError, match="150"):
            source.read([150])
        with pytest.raises(ValueError, match="increasing"):
            list(source.iter_batches(indices=[3, 2]))
        assert source.read([]).shape == (0, 64, 96, 3)


# -- closing ---------------------------------------------------------------------------------


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_source_is_closed(backend: str, seek_clip: SyntheticClip) -> None:
    with open_video(seek_clip.path, backend) as source:
        next(source.iter_batches(batch_size=4))
    assert source.closed
    with pytest.raises(ValueError, match="closed"):
        source.read([0])
    source.close()  # twice is fine


def test_no_descriptor_leak(backend: str, seek_clip: SyntheticClip, tmp_path: Path) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all" * 100)
    for _ in range(3):  # warm up lazily-opened library files
        with open_video(seek_clip.path, backend) as source:
            source.read([5])
    before = open_fds()
    for _ in range(5):
        with open_video(seek_clip.path, backend) as source:
            source.read([5, 100])
        with pytest.raises(VideoOpenError):
            open_video(bad, backend)
    assert open_fds() <= before


# -- errors ----------------------------------------------------------------------------------


def test_missing_path(backend: str, tmp_path: Path) -> None:
    path = tmp_path / "nope.mp4"
    with pytest.raises(VideoOpenError, match=r"nope\.mp4: no such file"):
        open_video(path, backend)


def test_directory(backend: str, tmp_path: Path) -> None:
    with pytest.raises(VideoOpenError, match="is a directory"):
        open_video(tmp_path, backend)


def test_empty_file(backend: str, tmp_path: Path) -> None:
    path = tmp_path / "empty.mp4"
    path.touch()
    with pytest.raises(VideoOpenError, match=r"empty\.mp4: file is empty"):
        open_video(path, backend)


@pytest.mark.parametrize(
    "content", [b"hello, this is text and not a video\n" * 50, bytes(range(256)) * 64]
)
def test_not_a_video(backend: str, tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "fake.mp4"
    path.write_bytes(content)
    with pytest.raises(VideoOpenError, match=r"fake\.mp4: cannot open video"):
        open_video(path, backend)


def decode_everything(path: Path, backend: str) -> None:
    with open_video(path, backend) as source:
        for _ in source.iter_batches(batch_size=32):
            pass


def test_truncated_index_at_end(backend: str, plain_mp4: Path, tmp_path: Path) -> None:
    """Cut in the middle of an mp4 whose index is at the end: the index is gone."""
    path = truncate(plain_mp4, tmp_path / "cut.mp4", Fraction(1, 2))
    with pytest.raises(VideoOpenError, match=r"cut\.mp4"):
        open_video(path, backend)


def test_truncated_faststart(backend: str, faststart_mp4: Path, tmp_path: Path) -> None:
    """Index at the front, data cut short: opening may work, decoding all frames must not."""
    path = truncate(faststart_mp4, tmp_path / "short.mp4", Fraction(2, 3))
    with pytest.raises((VideoOpenError, DecodeError), match=r"short\.mp4"):
        decode_everything(path, backend)


@pytest.mark.parametrize("packets", [1, 41, 149])
def test_truncated_at_packet_boundary(
    backend: str, faststart_mp4: Path, tmp_path: Path, packets: int
) -> None:
    """Cut exactly after a whole packet: the demuxer sees a clean end of file, and decord on
    its own would read a shorter video without an error."""
    ends = sorted(pos + size for _, pos, size, _ in video_packets(faststart_mp4))  # file order
    assert len(ends) == 150
    path = truncate(faststart_mp4, tmp_path / "cut.mp4", ends[packets - 1])
    expected = (
        r"cut\.mp4: file is truncated: its index lists 150 frames "
        rf"but the data ends after {packets}$"
    )
    with pytest.raises(VideoOpenError, match=expected):
        open_video(path, backend)


def test_corrupted_index(backend: str, faststart_mp4: Path, tmp_path: Path) -> None:
    """Garbage written over the sample tables of the moov atom."""
    path = corrupt_mp4_index(faststart_mp4, tmp_path / "badindex.mp4")
    with pytest.raises((VideoOpenError, DecodeError), match=r"badindex\.mp4"):
        decode_everything(path, backend)


def test_errors_are_one_line(backend: str, tmp_path: Path) -> None:
    path = tmp_path / "fake.mp4"
    path.write_bytes(b"\x00" * 4096)
    with pytest.raises(VideocamError) as info:
        open_video(path, backend)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message


# -- auto backend ----------------------------------------------------------------------------


def test_auto_prefers_decord(seek_clip: SyntheticClip) -> None:
    with open_video(seek_clip.path) as source:
        assert source.meta.backend == "decord"


def test_auto_falls_back_to_pyav_for_gif(
    gif_clip: SyntheticClip, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(VideoOpenError):
        open_video(gif_clip.path, "decord")
    with caplog.at_level("INFO", logger="videocam.io"), open_video(gif_clip.path) as source:
        assert source.meta.backend == "pyav"
        assert source.meta.codec == "gif"
        assert source.meta.n_frames == 12
        assert barcodes(source.read([11, 0, 6])) == [11, 0, 6]
        np.testing.assert_allclose(source.times_s, np.arange(12) * 0.04, atol=1e-6)
    assert "decoding with PyAV" in caplog.text


def test_unknown_backend(seek_clip: SyntheticClip) -> None:
    with pytest.raises(ValueError, match="backend"):
        open_video(seek_clip.path, "opencv")


# -- both backends agree on real footage -------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["udacity_solidWhiteRight.mp4", "intel_asl_walk.mkv", "intel_car-detection.mp4"]
)
def test_backends_agree_on_real_footage(shared_videos: Path, name: str) -> None:
    path = shared_videos / name
    with open_video(path, "decord") as a, open_video(path, "pyav") as b:
        assert a.meta.n_frames == b.meta.n_frames
        assert (a.meta.width, a.meta.height) == (b.meta.width, b.meta.height)
        np.testing.assert_allclose(a.times_s, b.times_s, atol=1e-3)
        order = [a.meta.n_frames - 1, 0, a.meta.n_frames // 2]
        np.testing.assert_array_equal(a.read(order), b.read(order))
