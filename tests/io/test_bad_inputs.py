"""Files that are not usable videos: every backend fails fast with a typed error, one line that
names the file and says why, and no decoder chatter on stderr; no input makes a decoder hang."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from videocam.errors import DecodeError, VideocamError, VideoOpenError
from videocam.io import BACKENDS, open_video
from videocam.synthetic import ClipSpec, make_clip

from support.media import corrupt_mp4_index, remux, truncate, write_audio

WHICH = [*BACKENDS, "auto"]


@pytest.fixture(scope="module")
def index_at_end(video_dir: Path) -> Path:
    """An mp4 whose index (moov) follows the data, as most encoders leave it."""
    return make_clip(video_dir / "bad_src_plain.mp4", ClipSpec(n_frames=40, size=(64, 80))).path


@pytest.fixture(scope="module")
def index_at_front(video_dir: Path) -> Path:
    """The same clip remuxed with its index first ("faststart")."""
    src = make_clip(video_dir / "bad_src_tmp.mp4", ClipSpec(n_frames=40, size=(64, 80))).path
    return remux(src, video_dir / "bad_src_faststart.mp4", options={"movflags": "faststart"})


def _text(path: Path, _: Path, __: Path) -> None:
    path.write_text("this is a text file, not a video\n" * 40)


def _random(path: Path, _: Path, __: Path) -> None:
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 60_000, dtype=np.uint8).tobytes())


def _cut_index_at_end(path: Path, plain: Path, _: Path) -> None:
    truncate(plain, path, Fraction(1, 2))


def _cut_faststart(path: Path, _: Path, faststart: Path) -> None:
    truncate(faststart, path, Fraction(2, 3))


def _bad_index(path: Path, _: Path, faststart: Path) -> None:
    corrupt_mp4_index(faststart, path)


def _header_then_garbage(path: Path, plain: Path, _: Path) -> None:
    noise = np.random.default_rng(1).integers(0, 256, 200_000, dtype=np.uint8).tobytes()
    path.write_bytes(plain.read_bytes()[:64] + noise)


def _audio(path: Path, _: Path, __: Path) -> None:
    write_audio(path, 0.5)


def _unknown_codec(path: Path, plain: Path, _: Path) -> None:
    """The sample description's codec tag damaged: FFmpeg finds a video stream, no decoder."""
    data = plain.read_bytes()
    entry = data.index(b"avc1", data.index(b"stsd"))
    path.write_bytes(data[:entry] + b"\0\0\0\0" + data[entry + 4 :])


Maker = Callable[[Path, Path, Path], None]

#: (file name, how to make it, what the message must say)
CASES: list[tuple[str, Maker, str]] = [
    ("text.mp4", _text, r"cannot open video: not a video file"),
    ("notes.txt", _text, r"cannot open video: a text file, not a video"),
    ("random.mp4", _random, r"cannot open video: not a video file"),
    ("random.mkv", _random, r"cannot open video"),
    ("cut.mp4", _cut_index_at_end, r"moov atom\) is missing: the file was cut short"),
    ("short.mp4", _cut_faststart, r"file is truncated: its index lists 40 frames"),
    ("badindex.mp4", _bad_index, r"header or index is damaged"),
    ("garbage.mp4", _header_then_garbage, r"moov atom\) is missing"),
    ("audio.m4a", _audio, r"no video stream \(it holds audio\)"),
    ("nocodec.mp4", _unknown_codec, r"its video stream has no codec FFmpeg can decode"),
]


@pytest.mark.parametrize("which", WHICH)
@pytest.mark.parametrize(("name", "make", "reason"), CASES, ids=[c[0] for c in CASES])
def test_unusable_file(
    which: str,
    name: str,
    make: Maker,
    reason: str,
    tmp_path: Path,
    index_at_end: Path,
    index_at_front: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / name
    make(path, index_at_end, index_at_front)
    with pytest.raises(VideoOpenError) as info:
        open_video(path, which)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert "\n" not in message
    assert message.count(str(path)) == 1
    assert re.search(reason, message), message
    # Neither decoder writes to the process's stderr (decord's FFmpeg is silenced).
    assert capfd.readouterr().err == ""


@pytest.mark.parametrize("which", WHICH)
def test_missing_directory_empty(which: str, tmp_path: Path) -> None:
    with pytest.raises(VideoOpenError, match=r"nope\.mp4: no such file$"):
        open_video(tmp_path / "nope.mp4", which)
    with pytest.raises(VideoOpenError, match=r": is a directory, not a video file$"):
        open_video(tmp_path, which)
    (tmp_path / "empty.mp4").touch()
    with pytest.raises(VideoOpenError, match=r"empty\.mp4: file is empty$"):
        open_video(tmp_path / "empty.mp4", which)


@pytest.mark.parametrize("which", WHICH)
def test_errors_are_videocam_errors(which: str, tmp_path: Path) -> None:
    path = tmp_path / "zeros.mp4"
    path.write_bytes(bytes(10_000))
    with pytest.raises(VideocamError):
        open_video(path, which)


HANG_CHECK = textwrap.dedent(
    """
    import sys
    from videocam.errors import VideocamError
    from videocam.io import open_video

    for path in sys.argv[2:]:
        try:
            with open_video(path, sys.argv[1]) as source:
                for _ in source.iter_batches(size=(32, 32)):
                    pass
                source.read([source.meta.n_frames - 1, 0])
        except VideocamError:
            pass
    print("done")
    """
)


@pytest.mark.parametrize("which", WHICH)
def test_no_input_hangs_a_decoder(
    which: str, tmp_path: Path, index_at_end: Path, index_at_front: Path
) -> None:
    """Decode every bad file to the end in a child process that must finish in time."""
    paths = []
    for name, make, _ in CASES:
        path = tmp_path / name
        make(path, index_at_end, index_at_front)
        paths.append(str(path))
    # A sound header followed by random bytes in place of the frames.
    tail = tmp_path / "noisy_tail.mp4"
    data = bytearray(index_at_front.read_bytes())
    cut = len(data) // 3
    data[cut:] = (
        np.random.default_rng(2).integers(0, 256, len(data) - cut, dtype=np.uint8).tobytes()
    )
    tail.write_bytes(bytes(data))
    paths.append(str(tail))
    result = subprocess.run(
        [sys.executable, "-c", HANG_CHECK, which, *paths],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "done"
    assert result.stderr == ""


def test_faststart_cut_is_an_error_not_a_short_video(
    tmp_path: Path, index_at_end: Path, index_at_front: Path
) -> None:
    """A file cut short is reported, never analysed as if it were a shorter video."""
    path = tmp_path / "short.mp4"
    _cut_faststart(path, index_at_end, index_at_front)
    for which in WHICH:
        truncated = pytest.raises((VideoOpenError, DecodeError), match=r"short\.mp4: file is trunc")
        with truncated, open_video(path, which) as source:
            for _ in source.iter_batches():
                pass
