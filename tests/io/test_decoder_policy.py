"""videocam.io.policy: which decoder reads which frames, the record of that choice, and
decode_reproducibly (the same frames on every run where decord fails on damaged data)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from videocam.errors import DecodeError, VideoOpenError
from videocam.io import (
    BACKEND_CHOICES,
    BACKENDS,
    DecoderChoice,
    FrameSource,
    decode_reproducibly,
    open_video,
)
from videocam.io import policy as policy_module
from videocam.io.decord_backend import DecordSource, _DecordFailure, _DecordUnsuitable
from videocam.synthetic import SyntheticClip, read_barcode

from support.media import truncate, video_packets, write_resolution_change

#: Non-key frames (keyframes every 12) whose packets are damaged: late enough that decord opens
#: the file and decodes its first frames, then fails part-way through a full read.
LATE_DAMAGE = (44, 45)
#: decord's reason when its decoder thread stops on damaged data.
THREAD_ERROR = "Thread worker: Error sending packet."
GIF_REASON = (
    "decord cannot open it (Failed to measure duration/frame-count due to broken metadata.)"
)


@pytest.fixture(scope="module")
def late_damage(damaged_copy: Callable[[Path, tuple[int, ...]], Path], video_dir: Path) -> Path:
    return damaged_copy(video_dir / "late_damage.mp4", LATE_DAMAGE)


@pytest.fixture(scope="module")
def joined(video_dir: Path) -> Path:
    """A joined stream whose picture changes size part-way (decord decodes it wrongly)."""
    return write_resolution_change(video_dir / "policy_joined.ts", frames_per_part=20)


def open_decord(path: Path) -> DecordSource:
    """DecordSource, opened again should decord fail on the first frames: on rare runs its
    decoder thread, which decodes ahead, reaches the late damage while the source opens."""
    for _ in range(9):
        try:
            return DecordSource(path)
        except _DecordUnsuitable as exc:
            if not exc.reason.startswith("decord cannot decode the first frames"):
                raise
    return DecordSource(path)


@pytest.fixture
def decord_opens(monkeypatch: pytest.MonkeyPatch) -> None:
    """The policy opens decord with :func:`open_decord`, so that decord fails part-way."""
    monkeypatch.setattr(policy_module, "DecordSource", open_decord)


def read_everything(source: FrameSource, batch_size: int = 16) -> tuple[list[int], np.ndarray]:
    batches = list(source.iter_batches(batch_size=batch_size))
    return (
        np.concatenate([b.indices for b in batches]).tolist(),
        np.concatenate([b.frames for b in batches]),
    )


def test_backend_choices() -> None:
    assert BACKENDS == ("decord", "pyav")
    assert BACKEND_CHOICES == ("auto", "decord", "pyav")
    assert policy_module.open_video is open_video


# -- the record of the choice ----------------------------------------------------------------


@pytest.mark.parametrize("which", ["auto", "decord"])
def test_plain_mp4_is_decord(which: str, seek_clip: SyntheticClip) -> None:
    with open_video(seek_clip.path, which) as source:
        assert source.meta.backend == "decord"
        assert source.decoder == DecoderChoice(requested=which, backend="decord", reason=None)
        source.read([3, 100])
        report = source.decode_report()
        record = source.decoder.to_dict()
    assert report == {"decode_errors": 0, "skipped_frames": [], "corrupt_frames": []}
    assert record == {"requested": which, "backend": "decord", "reason": None}


def test_explicit_pyav(seek_clip: SyntheticClip) -> None:
    with open_video(seek_clip.path, "pyav") as source:
        assert source.decoder == DecoderChoice("pyav", "pyav", None)
        assert source.decoder.to_dict() == {
            "requested": "pyav",
            "backend": "pyav",
            "reason": None,
        }


def test_gif_is_pyav_because_decord_cannot_open_it(gif_clip: SyntheticClip) -> None:
    with open_video(gif_clip.path) as source:
        assert source.meta.backend == "pyav"
        assert source.decoder == DecoderChoice("auto", "pyav", GIF_REASON)
        assert source.decoder.to_dict() == {
            "requested": "auto",
            "backend": "pyav",
            "reason": GIF_REASON,
        }
    with pytest.raises(VideoOpenError, match=r"clip\.gif: decord cannot open it: Failed to"):
        open_video(gif_clip.path, "decord")


def test_size_change_is_pyav(joined: Path) -> None:
    reason = (
        "the picture changes size from 64x48 to 80x64 at 0.80 s; "
        "decord returns wrong frames after that point"
    )
    with open_video(joined) as source:
        assert source.decoder == DecoderChoice("auto", "pyav", reason)
        list(source.iter_batches(size=(24, 32)))
        report = source.decode_report()
        record = source.decoder.to_dict()
    assert record == {"requested": "auto", "backend": "pyav", "reason": reason}
    assert report["size_changes"] == [{"frame": 20, "width": 80, "height": 64}]
    # Asked for by name, decord decodes it (with a warning): nothing was chosen for the caller.
    with open_video(joined, "decord") as source:
        assert source.decoder == DecoderChoice("decord", "decord", None)


@pytest.mark.parametrize("which", ["auto", "decord"])
def test_decord_unsuitable_at_open_is_pyav_for_everything(
    which: str, seek_clip: SyntheticClip, monkeypatch: pytest.MonkeyPatch
) -> None:
    reason = f"decord cannot decode the first frames ({THREAD_ERROR})"

    def unsuitable(path: Path) -> DecordSource:
        raise _DecordUnsuitable(path, reason)

    monkeypatch.setattr(policy_module, "DecordSource", unsuitable)
    with open_video(seek_clip.path, which) as source:
        assert source.meta.backend == "pyav"
        assert source.decoder == DecoderChoice(which, "pyav", reason)
        assert [read_barcode(f) for f in source.read([149, 0])] == [149, 0]


def test_truncated_at_open_is_pyav_s_error(faststart_mp4: Path, tmp_path: Path) -> None:
    """decord indexes fewer frames than the index lists: PyAV says the file is truncated."""
    ends = sorted(pos + size for _, pos, size, _ in video_packets(faststart_mp4))
    path = truncate(faststart_mp4, tmp_path / "cut.mp4", ends[40])
    with pytest.raises(_DecordUnsuitable, match=r"decord indexes 41 of the 150 frames"):
        DecordSource(path)
    with pytest.raises(VideoOpenError, match=r"file is truncated") as info:
        open_video(path)
    assert isinstance(info.value.__cause__, _DecordUnsuitable)


def test_size_decord_cannot_resize_to_is_pyav_for_that_size(
    seek_clip: SyntheticClip, caplog: pytest.LogCaptureFixture
) -> None:
    """decord 0.6 cannot resize 96x64 to 48x32: PyAV decodes that size, decord the others."""
    reason = (
        "decord cannot resize to 48x32 (DECORDArrayCopyFromTo: The size must exactly match); "
        "PyAV decoded that size"
    )
    with caplog.at_level("WARNING", logger="videocam.io"), open_video(seek_clip.path) as source:
        assert source.decoder.reason is None
        for _ in range(2):
            batches = list(source.iter_batches(size=(32, 48), batch_size=50))
            assert [read_barcode(f) for b in batches for f in b.frames] == list(range(150))
            assert [read_barcode(f) for f in source.read([7, 140], size=(32, 48))] == [7, 140]
        assert source.read([5], size=(48, 32)).shape == (1, 48, 32, 3)  # decord resizes this
        assert source.decoder == DecoderChoice("auto", "decord", reason)
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert [r.getMessage() for r in warnings] == [
        f"{seek_clip.path}: decord cannot resize to 48x32 (DECORDArrayCopyFromTo: The size must "
        "exactly match); PyAV decodes that size"
    ]


# -- decord failing on damaged data part-way -------------------------------------------------


def test_decord_fails_part_way_on_late_damage(late_damage: Path) -> None:
    """The clip the tests below need: decord opens it, then fails on it while reading."""
    with open_decord(late_damage) as source:
        assert source.meta.n_frames == 60
        with pytest.raises(_DecordFailure, match=re.escape(THREAD_ERROR)) as info:
            read_everything(source)
    assert re.fullmatch(r"frames \d+\.\.\d+", info.value.what)


@pytest.mark.usefixtures("decord_opens")
def test_hand_over_part_way(late_damage: Path) -> None:
    with open_video(late_damage) as source:
        indices, frames = read_everything(source)
        decoder = source.decoder
        assert source.skipped_indices == LATE_DAMAGE
        report = source.decode_report()
    assert indices == [i for i in range(60) if i not in LATE_DAMAGE]
    assert [read_barcode(f) for f in frames[:36]] == list(range(36))
    assert (decoder.requested, decoder.backend) == ("auto", "decord")
    assert decoder.reason is not None
    match = re.fullmatch(
        rf"decord cannot decode frames (\d+)\.\.(\d+) \({re.escape(THREAD_ERROR)}\); "
        r"PyAV decoded from frame (\d+) on",
        decoder.reason,
    )
    assert match, decoder.reason
    assert match[1] == match[3]  # PyAV took over from the first frame not yet returned
    assert int(match[2]) - int(match[1]) == 15  # a whole chunk of 16
    assert set(report) == {"decode_errors", "skipped_frames", "corrupt_frames"}


class Boom(Exception):
    pass


class Work:
    """A restartable work: reads every frame, records each call."""

    def __init__(self, fail_on_call: int | None = None) -> None:
        self.sources: list[FrameSource] = []
        self.decoders: list[DecoderChoice] = []
        self.finished: list[bool] = []
        self.fail_on_call = fail_on_call
        self.boom = Boom("work failed")

    def __call__(self, source: FrameSource) -> tuple[list[int], np.ndarray, tuple[int, ...]]:
        self.sources.append(source)
        self.decoders.append(source.decoder)
        self.finished.append(False)
        if self.fail_on_call == len(self.sources):
            raise self.boom
        indices, frames = read_everything(source)
        self.finished[-1] = True
        return indices, frames, source.skipped_indices


@pytest.mark.usefixtures("decord_opens")
def test_decode_reproducibly_restarts_with_pyav(late_damage: Path) -> None:
    work = Work()
    indices, frames, skipped = decode_reproducibly(late_damage, "auto", work)
    assert len(work.sources) == 2
    # The decord attempt stopped at the failure, without finishing the read.
    assert work.finished == [False, True]
    assert work.decoders[0] == DecoderChoice("auto", "decord", None)
    second = work.decoders[1]
    assert (second.requested, second.backend) == ("auto", "pyav")
    assert second.reason is not None
    assert re.fullmatch(
        rf"decord failed on damaged data at frames \d+\.\.\d+ \({re.escape(THREAD_ERROR)}\); "
        "the whole video was decoded with PyAV so that the result does not depend on where "
        "decord stopped",
        second.reason,
    ), second.reason
    assert work.sources[1].meta.backend == "pyav"
    assert all(source.closed for source in work.sources)
    # The same as PyAV asked for by name.
    pyav_work = Work()
    expected = decode_reproducibly(late_damage, "pyav", pyav_work)
    assert pyav_work.decoders == [DecoderChoice("pyav", "pyav", None)]
    assert indices == expected[0] == [i for i in range(60) if i not in LATE_DAMAGE]
    np.testing.assert_array_equal(frames, expected[1])
    assert skipped == expected[2] == LATE_DAMAGE


@pytest.mark.usefixtures("decord_opens")
def test_decode_reproducibly_restarts_even_when_work_swallows_the_error(
    late_damage: Path,
) -> None:
    calls: list[str] = []

    def careless(source: FrameSource) -> list[int]:
        calls.append(source.decoder.backend)
        try:
            return read_everything(source)[0]
        except DecodeError:
            return []  # pretends the damage ended the video

    assert decode_reproducibly(late_damage, "auto", careless) == [
        i for i in range(60) if i not in LATE_DAMAGE
    ]
    assert calls == ["decord", "pyav"]


@pytest.mark.usefixtures("decord_opens")
def test_decode_reproducibly_restarts_when_work_wraps_the_error(late_damage: Path) -> None:
    """work turns the stopped read into an error of its own (a VideocamError): the source says
    why it stopped (``restart_cause``), and the work starts again with PyAV."""
    causes: list[object] = []

    def wrapping(source: FrameSource) -> list[int]:
        try:
            return read_everything(source)[0]
        except DecodeError as exc:
            causes.append(getattr(source, "restart_cause", None))
            raise VideoOpenError(f"{source.path}: could not read it") from exc

    assert decode_reproducibly(late_damage, "auto", wrapping) == [
        i for i in range(60) if i not in LATE_DAMAGE
    ]
    assert len(causes) == 1
    assert isinstance(causes[0], _DecordFailure)
    assert THREAD_ERROR in causes[0].detail


@pytest.mark.usefixtures("decord_opens")
def test_decode_reproducibly_a_bug_during_the_restart_is_not_hidden(late_damage: Path) -> None:
    """An error that is not videocam's (a bug of work's) raised once the source stopped the
    read comes out as it is: the restart does not swallow it."""
    sources: list[FrameSource] = []

    def buggy(source: FrameSource) -> list[int]:
        sources.append(source)
        try:
            return read_everything(source)[0]
        except DecodeError:
            raise KeyError("a bug in the caller") from None

    with pytest.raises(KeyError, match="a bug in the caller"):
        decode_reproducibly(late_damage, "auto", buggy)
    assert len(sources) == 1
    assert sources[0].closed
    assert getattr(sources[0], "restart_cause", None) is not None


def test_restart_cause_is_none_without_a_restart(clean_clip: SyntheticClip) -> None:
    with open_video(clean_clip.path, "auto") as source:
        read_everything(source)
        assert getattr(source, "restart_cause", "absent") is None


def test_decode_reproducibly_clean_clip_runs_once_with_decord(
    clean_clip: SyntheticClip,
) -> None:
    work = Work()
    indices, frames, skipped = decode_reproducibly(clean_clip.path, "auto", work)
    assert work.decoders == [DecoderChoice("auto", "decord", None)]
    assert work.finished == [True]
    assert work.sources[0].closed
    assert indices == list(range(60))
    assert skipped == ()
    assert [read_barcode(f) for f in frames] == list(range(60))


@pytest.mark.usefixtures("decord_opens")
def test_decode_reproducibly_named_decord_is_rescued_in_place(late_damage: Path) -> None:
    work = Work()
    indices, _, skipped = decode_reproducibly(late_damage, "decord", work)
    assert work.finished == [True]
    decoder = work.decoders[0]
    assert (decoder.requested, decoder.backend) == ("decord", "decord")
    assert indices == [i for i in range(60) if i not in LATE_DAMAGE]
    assert skipped == LATE_DAMAGE
    reason = work.sources[0].decoder.reason
    assert reason is not None
    assert reason.endswith(" on")
    assert THREAD_ERROR in reason


@pytest.mark.parametrize(
    ("which", "fail_on_call", "n_calls"),
    [("auto", 1, 1), ("pyav", 1, 1), ("decord", 1, 1), ("auto", 2, 2)],
)
@pytest.mark.usefixtures("decord_opens")
def test_decode_reproducibly_work_errors_propagate(
    which: str,
    fail_on_call: int,
    n_calls: int,
    clean_clip: SyntheticClip,
    late_damage: Path,
) -> None:
    """An error of ``work`` comes out unchanged, and every source is closed (the last case
    fails in the PyAV attempt after the restart)."""
    path = late_damage if fail_on_call == 2 else clean_clip.path
    work = Work(fail_on_call=fail_on_call)
    with pytest.raises(Boom) as info:
        decode_reproducibly(path, which, work)
    assert info.value is work.boom
    assert len(work.sources) == n_calls
    assert all(source.closed for source in work.sources)


def test_decode_reproducibly_open_errors(tmp_path: Path, seek_clip: SyntheticClip) -> None:
    def never(source: FrameSource) -> None:
        raise AssertionError("not called")

    with pytest.raises(VideoOpenError, match=r"nope\.mp4: no such file$"):
        decode_reproducibly(tmp_path / "nope.mp4", "auto", never)
    with pytest.raises(ValueError, match="backend"):
        decode_reproducibly(seek_clip.path, "opencv", never)


def test_decord_and_pyav_agree_on_the_frames_or_pyav_reads_them(video_dir: Path) -> None:
    """Containers without a frame count (mkv): when duplicated or damaged packets make decord
    count other frames than PyAV, PyAV reads the video (the render pass decodes with PyAV, so
    the two must agree on every frame)."""
    import random

    from videocam.io.probe import demuxed_frames
    from videocam.synthetic import ClipSpec, make_clip

    from support.fuzz import mutations

    clip = make_clip(video_dir / "policy_dup.mkv", ClipSpec(n_frames=48, size=(64, 96), seed=9))
    disagreed = 0
    for kind, data in mutations(clip.path.read_bytes(), random.Random(2)):
        if not kind.startswith(("duplicate", "zero-middle")):
            continue
        path = video_dir / f"policy_{kind}.mkv"
        path.write_bytes(data)
        with open_video(path) as source:
            assert source.meta.n_frames == demuxed_frames(path)
            if "PyAV's demuxer finds" in (source.decoder.reason or ""):
                disagreed += 1
                assert source.meta.backend == "pyav"
    assert disagreed >= 1  # the corpus has such a file (seeded)
