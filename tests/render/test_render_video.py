"""The annotated clip: playable H.264, the source's frames and timestamps, heatmap visible."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from videocam.errors import OutputError
from videocam.io import open_video
from videocam.render.chapters import Chapter
from videocam.render.video import render_annotated_clip, strip_height
from videocam.synthetic import make_clip

from support.media import write_resolution_change

N_FRAMES = 24


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("render_video") / "src.mp4"
    make_clip(path, n_frames=N_FRAMES, size=(48, 64), event="move_right", seed=0)
    return path


def _read_all(path: Path) -> tuple[np.ndarray, np.ndarray, object]:
    with open_video(path) as source:
        return source.read(np.arange(source.meta.n_frames)), source.times_s.copy(), source.meta


def _picture(frames: np.ndarray, height: int = 48) -> np.ndarray:
    """The picture rows of annotated frames (n, rows, w, 3): under the strip."""
    return frames[:, strip_height(height) : strip_height(height) + height]


def _left_right_cams(n: int) -> np.ndarray:
    cams = np.zeros((n, 4, 8), dtype=np.float16)
    cams[:, :, :4] = 1.0
    return cams


def _render(src: Path, out: Path, frame_indices: np.ndarray, **kwargs: object) -> Path:
    n = len(frame_indices)
    options: dict[str, object] = {
        "cams": _left_right_cams(n),
        "attribution": np.linspace(0.0, 2.0, n),
        "target_score": np.linspace(0.1, 0.9, n),
        "keyframe_indices": frame_indices[[n // 2, n - 1]],
        "label": "move_right",
    }
    options.update(kwargs)
    return render_annotated_clip(src, out, frame_indices=frame_indices, **options)  # type: ignore[arg-type]


def test_annotated_clip_frames_times_size_and_heatmap(clip: Path, tmp_path: Path) -> None:
    out = _render(clip, tmp_path / "annotated.mp4", np.arange(0, N_FRAMES, 2))
    assert out == tmp_path / "annotated.mp4"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["annotated.mp4"]  # no temp left
    src_frames, src_times, src_meta = _read_all(clip)
    frames, times, meta = _read_all(out)
    assert meta.codec == "h264"  # type: ignore[attr-defined]
    assert meta.fps == src_meta.fps  # type: ignore[attr-defined]
    assert len(frames) == N_FRAMES
    np.testing.assert_allclose(times, src_times, atol=1e-3)
    assert frames.shape[1:] == (48 + strip_height(48), 64, 3)
    assert frames.shape[1] % 2 == 0
    assert frames.shape[2] % 2 == 0
    # Heat 1 on the left half, 0 on the right: only the left half changes.
    diff = np.abs(_picture(frames).astype(np.int16) - src_frames).mean(axis=(0, 1, 3))
    assert diff[:24].mean() > 20
    assert diff[40:].mean() < 8  # re-encoding noise only
    assert diff[:24].mean() > 5 * diff[40:].mean()
    # faststart: the index (moov) comes before the media data.
    data = out.read_bytes()
    assert 0 <= data.find(b"moov") < data.find(b"mdat")


def test_chapters_read_back_with_pyav(clip: Path, tmp_path: Path) -> None:
    import av

    # 24 frames at 25 fps: 0.96 s.
    chapters = [
        Chapter(0, 200, "Start", "start"),
        Chapter(200, 480, "Segment 1 (attribution 0.300)", "segment-1"),
        Chapter(480, 960, "Keyframe 1: move_right (attribution 0.500) / né", "keyframe-1"),
    ]
    out = _render(clip, tmp_path / "a.mp4", np.arange(N_FRAMES), chapters=chapters)
    with av.open(str(out)) as container:
        read = container.chapters()
        assert container.duration == 960_000  # the chapters do not lengthen the clip
    assert [
        (c["start"] * c["time_base"] * 1000, c["end"] * c["time_base"] * 1000, c["metadata"])
        for c in read
    ] == [(ch.start_ms, ch.end_ms, {"title": ch.title}) for ch in chapters]
    frames, times, _ = _read_all(out)  # the chapter track leaves the video as it was
    assert len(frames) == N_FRAMES
    np.testing.assert_allclose(times, np.arange(N_FRAMES) / 25, atol=1e-6)
    with av.open(str(_render(clip, tmp_path / "b.mp4", np.arange(N_FRAMES)))) as container:
        assert container.chapters() == []
    with pytest.raises(ValueError, match="overlap"):
        _render(clip, tmp_path / "c.mp4", np.arange(N_FRAMES), chapters=chapters[::-1])


def test_heatmap_only_over_the_analysed_range(clip: Path, tmp_path: Path) -> None:
    out = _render(clip, tmp_path / "a.mp4", np.arange(4, 16, 2))  # frames 4..15 (stride 2)
    src_frames, _, _ = _read_all(clip)
    frames, _, _ = _read_all(out)
    left = np.abs(_picture(frames)[:, :, :24].astype(np.int16) - src_frames[:, :, :24])
    left = left.mean(axis=(1, 2, 3))
    assert (left[4:16] > 20).all()  # analysed, and the frames the stride skipped
    assert (left[:4] < 8).all()  # before the first analysed frame
    assert (left[16:] < 8).all()  # after the analysed range


def test_playhead_moves_left_to_right(clip: Path, tmp_path: Path) -> None:
    out = _render(clip, tmp_path / "a.mp4", np.arange(0, N_FRAMES, 2))
    frames, _, _ = _read_all(out)
    strip = frames[:, : strip_height(48)].astype(np.int16)  # on top, off players' controls
    white = (strip > 200).all(axis=3)[:, strip.shape[1] // 2 :]  # the plot rows
    centre = [float(np.flatnonzero(w.any(axis=0)).mean()) for w in white]
    assert centre[0] < 8
    assert centre[-1] > 56
    assert np.all(np.diff(centre) >= -1)


def test_variable_frame_rate_timestamps_kept(tmp_path: Path) -> None:
    src = tmp_path / "vfr.mp4"
    times = np.array([0.0, 0.04, 0.1, 0.13, 0.2, 0.31, 0.35, 0.5])
    make_clip(src, n_frames=8, size=(32, 32), seed=2, times_s=times)
    out = _render(src, tmp_path / "a.mp4", np.arange(8))
    _, src_times, _ = _read_all(src)
    _, out_times, _ = _read_all(out)
    np.testing.assert_allclose(src_times, times, atol=1e-3)
    np.testing.assert_allclose(out_times, src_times, atol=1e-4)


def test_odd_source_size_gives_even_playable_clip(tmp_path: Path) -> None:
    src = tmp_path / "odd.mp4"
    make_clip(src, n_frames=6, size=(17, 33), event="grow", seed=1)
    out = _render(src, tmp_path / "a.mp4", np.arange(6))
    frames, _, meta = _read_all(out)
    assert len(frames) == 6
    height, width = frames.shape[1:3]
    assert width == 34
    assert height % 2 == 0
    assert height >= 17 + strip_height(17)
    assert meta.width == 34  # type: ignore[attr-defined]


def test_mid_stream_resolution_change(tmp_path: Path) -> None:
    """Frames after the change are scaled to the video's size: one playable clip, right pixels."""
    src = write_resolution_change(tmp_path / "switch.ts")
    with open_video(src, "pyav") as source:
        n = source.meta.n_frames
    cams = np.zeros((n, 4, 8), dtype=np.float16)  # no heat: the picture is the source's
    out = _render(src, tmp_path / "a.mp4", np.arange(n), cams=cams)
    frames, _, meta = _read_all(out)
    assert (meta.height, meta.width) == (48 + strip_height(48), 64)  # type: ignore[attr-defined]
    assert len(frames) >= 6
    assert abs(int(np.median(_picture(frames)[0])) - 60) <= 3
    assert abs(int(np.median(_picture(frames)[-1])) - 200) <= 3


def test_render_size(clip: Path, tmp_path: Path) -> None:
    out = _render(clip, tmp_path / "a.mp4", np.arange(0, N_FRAMES, 3), render_size=(32, 40))
    frames, _, _ = _read_all(out)
    assert frames.shape == (N_FRAMES, 32 + strip_height(32), 40, 3)


def test_no_analysed_frames_renders_plain_clip(clip: Path, tmp_path: Path) -> None:
    out = render_annotated_clip(
        clip,
        tmp_path / "a.mp4",
        frame_indices=np.zeros(0, dtype=np.int64),
        cams=np.zeros((0, 7, 7), dtype=np.float16),
        attribution=np.zeros(0),
        target_score=np.zeros(0),
        keyframe_indices=[],
        label="x",
    )
    frames, _, _ = _read_all(out)
    src_frames, _, _ = _read_all(clip)
    assert np.abs(_picture(frames).astype(np.int16) - src_frames).mean() < 8


def test_bad_inputs(clip: Path, tmp_path: Path) -> None:
    idx = np.arange(0, N_FRAMES, 2)
    with pytest.raises(ValueError, match="cams"):
        _render(clip, tmp_path / "a.mp4", idx, cams=np.zeros((3, 7, 7)))
    with pytest.raises(ValueError, match="increasing"):
        _render(clip, tmp_path / "a.mp4", idx[::-1].copy())
    with pytest.raises(ValueError, match="frame_indices"):
        _render(clip, tmp_path / "a.mp4", idx + 100)
    assert list(tmp_path.iterdir()) == []


def test_unwritable_output_raises_output_error(clip: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="cannot write"):
        _render(clip, blocker / "annotated.mp4", np.arange(0, N_FRAMES, 2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_progress_bar_on_stderr(
    clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _render(clip, tmp_path / "a.mp4", np.arange(0, N_FRAMES, 4), progress=True)
    assert f"{N_FRAMES}/{N_FRAMES}" in capsys.readouterr().err


# -- Y'CbCr path: colour, tags, strip, encoder thread ------------------------------------------


def _uniform_clip(path: Path, value: tuple[int, int, int], colorspace: int | None = None) -> Path:
    """Eight frames of one colour, H.264 yuv420p, optionally tagged with a matrix."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height = 64, 48
        stream.pix_fmt = "yuv420p"
        if colorspace is not None:
            context = stream.codec_context
            context.colorspace = context.color_primaries = context.color_trc = colorspace
            context.color_range = 1
        for _ in range(8):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), value, np.uint8), "rgb24")
            if colorspace is not None:
                frame = frame.reformat(
                    format="yuv420p", dst_colorspace=colorspace, dst_color_range=1
                )
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def _stream_colour(path: Path) -> tuple[int, int, int, int]:
    import av

    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
        return (
            int(frame.colorspace),
            int(frame.color_primaries),
            int(frame.color_trc),
            int(frame.color_range),
        )


@pytest.mark.parametrize(
    ("colorspace", "tags"), [(None, (6, 2, 2, 1)), (1, (1, 1, 1, 1)), (6, (6, 6, 6, 1))]
)
def test_colour_tags_follow_the_source_and_full_heat_shows_the_colormap(
    tmp_path: Path, colorspace: int | None, tags: tuple[int, int, int, int]
) -> None:
    """Untagged SD sources get BT.601 tags, tagged ones keep theirs; whatever the matrix, heat 1
    at alpha 1 decodes to the colormap's colour and heat 0 to the source's."""
    src = _uniform_clip(tmp_path / "grey.mp4", (90, 140, 200), colorspace)
    cams = np.zeros((8, 4, 8), dtype=np.float32)
    cams[:, :, :4] = 1.0  # left half hot
    out = _render(src, tmp_path / "a.mp4", np.arange(8), cams=cams, alpha=1.0, colormap="jet")
    assert _stream_colour(out) == tags
    frames, _, _ = _read_all(out)
    source_frames, _, _ = _read_all(src)
    red = np.array([127, 0, 0])  # jet at 1.0
    left = _picture(frames)[:, 8:40, 4:20].reshape(-1, 3).astype(np.int16)
    right = _picture(frames)[:, 8:40, 44:60].reshape(-1, 3).astype(np.int16)
    assert np.abs(np.median(left, axis=0) - red).max() <= 4
    assert np.abs(np.median(right, axis=0) - np.median(source_frames, axis=(0, 1, 2))).max() <= 3


def test_strip_planes_equal_the_whole_strip_converted() -> None:
    """The strip is converted once and patched per frame; the result is the full conversion."""
    from videocam.render.overlay import colormap_lut, rgb_to_yuv420
    from videocam.render.strip import TimelineStrip

    for width, height in [(640, 48), (34, 48), (1280, 128)]:
        strip = TimelineStrip(
            width=width,
            height=height,
            span_s=10.0,
            times_s=np.linspace(0.0, 10.0, 50),
            attribution=np.random.default_rng(0).random(50),
            analysed_s=(0.0, 10.0),
            keyframe_times_s=np.array([2.0, 5.0]),
            label="move_right",
            lut=colormap_lut("jet"),
        )
        planes = (
            np.zeros((height, width), np.uint8),
            np.zeros((height // 2, width // 2), np.uint8),
            np.zeros((height // 2, width // 2), np.uint8),
        )
        rgb = np.empty((height, width, 3), np.uint8)
        for time_s, score in [(0.0, 0.5), (0.013, None), (3.3, 0.25), (9.99, 1.0), (10.0, 0.0)]:
            strip.draw_yuv(planes, time_s, score, "bt601")
            strip.draw(rgb, time_s, score)
            for got, expected in zip(planes, rgb_to_yuv420(rgb, "bt601"), strict=True):
                np.testing.assert_array_equal(got, expected)


def test_encoder_error_in_the_background_thread_is_an_output_error(
    clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import videocam.render.video as video

    monkeypatch.setattr(video, "ENCODER_OPTIONS", {"crf": "20", "preset": "no-such-preset"})
    with pytest.raises(OutputError, match=r"annotated\.mp4: cannot encode"):
        _render(clip, tmp_path / "annotated.mp4", np.arange(0, N_FRAMES, 2))
    assert list(tmp_path.iterdir()) == []


class _FailingStream:
    """Encodes until frame ``fail_at``, then raises; records what it saw."""

    def __init__(self, fail_at: int) -> None:
        self.fail_at = fail_at
        self.seen: list[object] = []

    def encode(self, frame: object) -> list[object]:
        if frame is not None and len(self.seen) == self.fail_at:
            raise RuntimeError("encoder broke")
        self.seen.append(frame)
        return []


class _Sink:
    def mux(self, packets: list[object]) -> None:
        pass


def test_encoder_thread_reports_errors_without_blocking_the_producer() -> None:
    from videocam.render.video import _EncoderThread

    stream = _FailingStream(fail_at=3)
    with (  # noqa: PT012 - the error must come out of the encoder thread while frames go in
        pytest.raises(RuntimeError, match="encoder broke"),
        _EncoderThread(_Sink(), stream, depth=1) as encoder,
    ):
        for i in range(1000):  # would block forever if the thread stopped draining
            encoder.put(i)
    assert stream.seen == [0, 1, 2]


def test_encoder_thread_encodes_in_order_and_flushes() -> None:
    from videocam.render.video import _EncoderThread

    stream = _FailingStream(fail_at=-1)
    with _EncoderThread(_Sink(), stream, depth=2) as encoder:
        for i in range(50):
            encoder.put(i)
    assert stream.seen == [*range(50), None]  # None: the flush at the end
