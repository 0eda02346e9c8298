"""PyAVSource.iter_yuv420: the decoder's own Y'CbCr 4:2:0 planes, the same frames, indices and
times as the RGB reads, upright, limited range, in one declared matrix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from videocam.errors import DecodeError
from videocam.io import PyAVSource, YUVColour
from videocam.io.pyav_backend import _choose_colour, _FrameColour
from videocam.render.overlay import rgb_to_yuv
from videocam.synthetic import ClipSpec, SyntheticClip, make_clip, read_barcode, write_frames

from support.media import corrupt_packets, write_resolution_change


def to_rgb(y: np.ndarray, u: np.ndarray, v: np.ndarray, matrix: str) -> np.ndarray:
    """Limited-range 4:2:0 planes back to RGB (chroma repeated over its 2x2 block)."""
    kr, kb = {"bt709": (0.2126, 0.0722), "bt601": (0.299, 0.114)}[matrix]
    height, width = y.shape
    up = [np.repeat(np.repeat(c, 2, 0), 2, 1)[:height, :width].astype(np.float64) for c in (u, v)]
    luma = (y.astype(np.float64) - 16.0) * 255.0 / 219.0
    cb, cr = ((c - 128.0) * 255.0 / 224.0 for c in up)
    r = luma + 2.0 * (1.0 - kr) * cr
    b = luma + 2.0 * (1.0 - kb) * cb
    g = (luma - kr * r - kb * b) / (1.0 - kr - kb)
    return np.stack([r, g, b], axis=-1)


def yuv_frames(path: Path, **kwargs: object) -> tuple[list[int], list[float], list[np.ndarray]]:
    """(indices, times, RGB frames converted back from the planes) of a whole read."""
    with PyAVSource(path) as source:
        matrix = source.yuv_colour.matrix
        frames = list(source.iter_yuv420(**kwargs))  # type: ignore[arg-type]
        return (
            [f.index for f in frames],
            [f.time_s for f in frames],
            [to_rgb(f.y, f.u, f.v, matrix) for f in frames],
        )


def test_same_frames_indices_and_times_as_the_rgb_read(seek_clip: SyntheticClip) -> None:
    with PyAVSource(seek_clip.path) as source:
        assert source.yuv_colour == YUVColour("bt601", 6, 2, 2)  # untagged SD: BT.601
        frames = list(source.iter_yuv420())
        rgb = source.read(np.arange(source.meta.n_frames))
        matrix = source.yuv_colour.matrix
    assert [f.index for f in frames] == list(range(150))
    np.testing.assert_allclose([f.time_s for f in frames], seek_clip.times_s, atol=1e-6)
    first = frames[0]
    assert first.y.shape == (64, 96)
    assert first.u.shape == first.v.shape == (32, 48)
    assert first.y.dtype == np.uint8
    # An H.264 yuv420p source at its own size: views of the decoder's frame, no conversion.
    assert not first.y.flags.owndata
    assert [read_barcode(to_rgb(f.y, f.u, f.v, matrix)) for f in frames] == list(range(150))
    # The same pixels as the RGB read, up to the chroma upsampling of each.
    back = np.stack([to_rgb(f.y, f.u, f.v, matrix) for f in frames])
    assert np.abs(back - rgb).mean() < 3.0


def test_indices_subset(seek_clip: SyntheticClip) -> None:
    with PyAVSource(seek_clip.path) as source:
        got = [f.index for f in source.iter_yuv420(np.array([3, 70, 71, 149]))]
        assert got == [3, 70, 71, 149]
        with pytest.raises(ValueError, match="increasing"):
            list(source.iter_yuv420(np.array([5, 4])))


def test_rgb_source_is_converted_to_limited_range(
    lossless_clip: SyntheticClip, lossless_frames: np.ndarray
) -> None:
    """libx264rgb (RGB planes) goes through swscale: limited-range planes in the chosen matrix."""
    with PyAVSource(lossless_clip.path) as source:
        matrix = source.yuv_colour.matrix
        frames = list(source.iter_yuv420())
    assert matrix == "bt601"
    y = np.stack([f.y for f in frames]).astype(np.float64)
    expected = rgb_to_yuv(lossless_frames, matrix)[..., 0]
    assert np.abs(y - expected).max() <= 1.0  # swscale's rounding
    assert y.min() >= 16
    assert y.max() <= 235


def test_full_range_source_is_converted_to_limited_range(tmp_path: Path) -> None:
    """MJPEG (yuvj420p, full range): black and white land on 16 and 235."""
    import av

    path = tmp_path / "mjpeg.mkv"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mjpeg", rate=25)
        stream.width, stream.height = 64, 48
        stream.pix_fmt = "yuvj420p"
        for value in (0, 255):
            frame = np.full((48, 64, 3), value, dtype=np.uint8)
            av_frame = av.VideoFrame.from_ndarray(frame, format="rgb24").reformat(format="yuvj420p")
            container.mux(stream.encode(av_frame))
        container.mux(stream.encode(None))
    with PyAVSource(path) as source:
        black, white = list(source.iter_yuv420())
    assert abs(int(np.median(black.y)) - 16) <= 1
    assert abs(int(np.median(white.y)) - 235) <= 1
    assert abs(int(np.median(white.u)) - 128) <= 1


def test_gif_source(gif_clip: SyntheticClip) -> None:
    indices, _, frames = yuv_frames(gif_clip.path)
    assert indices == list(range(12))
    assert [read_barcode(f) for f in frames] == list(range(12))


@pytest.mark.parametrize("size", [(32, 48), (17, 33)])
def test_resized_planes(seek_clip: SyntheticClip, size: tuple[int, int]) -> None:
    with PyAVSource(seek_clip.path) as source:
        frame = next(iter(source.iter_yuv420(np.array([10]), size=size)))
        reference = source.read([10], size=size)[0]
        matrix = source.yuv_colour.matrix
    height, width = size
    assert frame.y.shape == size
    assert frame.u.shape == frame.v.shape == ((height + 1) // 2, (width + 1) // 2)
    assert np.abs(to_rgb(frame.y, frame.u, frame.v, matrix) - reference).mean() < 6.0


@pytest.mark.parametrize("rotation", [90, 270])
def test_rotated_source_comes_upright(tmp_path: Path, rotation: int) -> None:
    spec = ClipSpec(n_frames=6, size=(96, 64), seed=6, event="grow", barcode=True)
    clip = make_clip(tmp_path / f"r{rotation}.mp4", spec, lossless=True, rotation=rotation)
    with PyAVSource(clip.path) as source:
        reference = source.read(np.arange(6))
        frames = list(source.iter_yuv420())
        matrix = source.yuv_colour.matrix
    assert reference.shape[1:3] == (96, 64)
    for frame, expected in zip(frames, reference, strict=True):
        assert frame.y.shape == (96, 64)
        assert frame.u.shape == (48, 32)
        back = to_rgb(frame.y, frame.u, frame.v, matrix)
        assert read_barcode(back) == frame.index
        assert np.abs(back - expected).mean() < 4.0


def test_damaged_frames_are_skipped_and_counted(tmp_path: Path) -> None:
    spec = ClipSpec(n_frames=60, size=(64, 96), seed=5, event="move_right", barcode=True)
    clean = make_clip(tmp_path / "clean.mp4", spec)
    damaged = corrupt_packets(clean.path, tmp_path / "damaged.mp4", (5, 17))
    with PyAVSource(damaged) as source:
        indices = [f.index for f in source.iter_yuv420()]
        assert indices == [i for i in range(60) if i not in (5, 17)]
        assert source.skipped_indices == (5, 17)


def test_nothing_decodable_is_an_error(tmp_path: Path) -> None:
    frames = np.zeros((3, 32, 32, 3), dtype=np.uint8)
    path = write_frames(tmp_path / "three.mp4", frames, 25)
    with PyAVSource(path) as source:
        source._decode_frames = lambda indices: iter(())  # type: ignore[method-assign]
        with pytest.raises(DecodeError, match=r"three\.mp4: none of the 3 frames"):
            list(source.iter_yuv420())


@pytest.mark.parametrize(
    ("space", "size", "expected"),
    [
        (1, (360, 640), YUVColour("bt709", 1, 1, 1)),  # tagged BT.709, even at SD
        (5, (1080, 1920), YUVColour("bt601", 5, 1, 1)),  # tagged BT.470BG, even at HD
        (6, (480, 640), YUVColour("bt601", 6, 1, 1)),
        (2, (576, 720), YUVColour("bt601", 6, 1, 1)),  # untagged SD: what players assume
        (2, (720, 1280), YUVColour("bt709", 1, 1, 1)),  # untagged HD
        (9, (2160, 3840), YUVColour("bt709", 1, 1, 1)),  # BT.2020: converted to BT.709
        (0, (270, 480), YUVColour("bt601", 6, 1, 1)),  # RGB (GIF)
    ],
)
def test_colour_choice(space: int, size: tuple[int, int], expected: YUVColour) -> None:
    first = _FrameColour(pix_fmt="yuv420p", colorspace=space, color_range=1, primaries=1, trc=1)
    assert _choose_colour(first, *size) == expected


def test_mid_stream_resolution_change_is_scaled_to_the_video_size(tmp_path: Path) -> None:
    path = write_resolution_change(tmp_path / "switch.ts")
    with PyAVSource(path) as source:
        assert (source.meta.height, source.meta.width) == (48, 64)
        frames = list(source.iter_yuv420())
        batches = list(source.iter_batches(batch_size=4))
    assert {f.y.shape for f in frames} == {(48, 64)}
    assert {f.u.shape for f in frames} == {(24, 32)}
    assert len(frames) >= 6  # the join may cost a frame or two, never the whole read
    greys = [int(np.median(to_rgb(f.y, f.u, f.v, "bt601"))) for f in frames]
    assert all(abs(g - 60) <= 3 for g in greys[:4])
    assert abs(greys[-1] - 200) <= 3
    rgb = np.concatenate([b.frames for b in batches])
    assert rgb.shape[1:] == (48, 64, 3)
    assert len(rgb) == len(frames)
    assert abs(int(np.median(rgb[0])) - 60) <= 3
    assert abs(int(np.median(rgb[-1])) - 200) <= 3


# -- joined streams: decord would decode them wrongly, so auto takes PyAV ----------------------


def test_size_change_found_in_joined_streams_only(tmp_path: Path) -> None:
    from videocam.io.probe import find_size_change, probe_stream

    joined = write_resolution_change(tmp_path / "joined.ts", frames_per_part=20)
    assert find_size_change(joined) == ("the picture changes size from 64x48 to 80x64 at 0.80 s")
    assert probe_stream(joined).size_change == find_size_change(joined)
    plain = write_resolution_change(tmp_path / "plain.ts", parts=((48, 64, 60), (48, 64, 200)))
    assert find_size_change(plain) is None
    # Formats that are not joined by concatenation are not scanned at all.
    mp4 = write_frames(tmp_path / "clip.mp4", np.zeros((3, 48, 64, 3), np.uint8), 25)
    assert probe_stream(mp4).size_change is None


def test_auto_backend_takes_pyav_for_a_size_change(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from videocam.io import open_video

    joined = write_resolution_change(tmp_path / "joined.ts", frames_per_part=20)
    with open_video(joined) as source:
        assert source.meta.backend == "pyav"
        assert (source.meta.height, source.meta.width) == (48, 64)
        list(source.iter_batches(size=(24, 32)))
        assert source.decode_report()["size_changes"] == [{"frame": 20, "width": 80, "height": 64}]
    # Asked for by name, decord is used, with a warning that says what goes wrong.
    with caplog.at_level("WARNING", logger="videocam.io"), open_video(joined, "decord") as source:
        assert source.meta.backend == "decord"
    assert "decord returns wrong frames after that point" in caplog.text
    # A stream that keeps its size stays with decord.
    plain = write_resolution_change(tmp_path / "plain.ts", parts=((48, 64, 60), (48, 64, 200)))
    with open_video(plain) as source:
        assert source.meta.backend == "decord"
        assert "size_changes" not in source.decode_report()


def test_repeated_timestamps_are_reported(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Recordings joined byte for byte restart their timestamps: decord indexes every packet
    but hands out frames by a timestamp two of them share (an earlier version crashed drawing
    the timeline); PyAV is chosen, keeps one frame per timestamp and says how many it left out.
    """
    from videocam.io import open_video

    joined = write_resolution_change(
        tmp_path / "restart.ts", parts=((48, 64, 60), (48, 64, 200)), restart_timestamps=True
    )
    with caplog.at_level("WARNING", logger="videocam.io"), open_video(joined) as source:
        assert source.meta.backend == "pyav"
        assert source.decoder.reason == "decord indexes 10 frames, PyAV's demuxer finds 5"
        assert source.meta.n_frames == 5
        assert np.array_equal(source.times_s, np.arange(5) / 25)
        assert source.decode_report()["repeated_timestamps"] == 5
    assert "5 frame(s) repeat an earlier frame's timestamp" in caplog.text
