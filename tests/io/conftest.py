"""Video files for the decoder conformance suite."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from videocam.synthetic import ClipSpec, SyntheticClip, make_clip, render_clip, write_frames

from support.media import corrupt_packets, remux, video_packets

LOSSLESS_SPEC = ClipSpec(n_frames=40, size=(96, 128), seed=1, event="move_left", barcode=True)
SEEK_SPEC = ClipSpec(n_frames=150, size=(64, 96), seed=2, event="grow", barcode=True)
#: The clip the damaged-packet tests damage: 60 frames, a keyframe every 12.
DAMAGE_SPEC = ClipSpec(n_frames=60, size=(64, 96), seed=5, event="move_right", barcode=True)
VFR_SPEC = ClipSpec(n_frames=30, size=(64, 80), seed=3, event=None, barcode=True)
# Irregular steps of 40 ms and 100 ms, on the millisecond grid the writer uses.
VFR_TIMES = np.cumsum([0.0] + [0.04 if i % 3 else 0.1 for i in range(29)])


@pytest.fixture(scope="session")
def video_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("videos")


@pytest.fixture(scope="session")
def lossless_clip(video_dir: Path) -> SyntheticClip:
    return make_clip(video_dir / "lossless.mp4", LOSSLESS_SPEC, lossless=True)


@pytest.fixture(scope="session")
def lossless_frames() -> np.ndarray:
    return render_clip(LOSSLESS_SPEC)[0]


@pytest.fixture(scope="session")
def seek_clip(video_dir: Path) -> SyntheticClip:
    return make_clip(video_dir / "seek.mp4", SEEK_SPEC)


@pytest.fixture(scope="session")
def mkv_clip(video_dir: Path) -> SyntheticClip:
    return make_clip(video_dir / "seek.mkv", SEEK_SPEC)


@pytest.fixture(scope="session")
def vfr_clip(video_dir: Path) -> SyntheticClip:
    return make_clip(video_dir / "vfr.mp4", VFR_SPEC, times_s=VFR_TIMES)


@pytest.fixture(scope="session")
def clean_clip(video_dir: Path) -> SyntheticClip:
    """The undamaged original of the damaged-packet tests (keyframes 0, 12, 24, 36, 48)."""
    clip = make_clip(video_dir / "undamaged.mp4", DAMAGE_SPEC)
    keyframes = [index for index, _, _, key in video_packets(clip.path) if key]
    assert keyframes == [0, 12, 24, 36, 48]
    return clip


@pytest.fixture(scope="session")
def damaged_copy(clean_clip: SyntheticClip) -> Callable[[Path, tuple[int, ...]], Path]:
    """Makes copies of ``clean_clip`` with the packets of some frames (no keyframe) made
    undecodable: ``damaged_copy(path, frames)``."""

    def make(path: Path, frames: tuple[int, ...]) -> Path:
        assert not set(frames) & {0, 12, 24, 36, 48}
        return corrupt_packets(clean_clip.path, path, frames)

    return make


@pytest.fixture(scope="session")
def gif_clip(video_dir: Path) -> SyntheticClip:
    spec = ClipSpec(n_frames=12, size=(48, 64), seed=4, event=None, barcode=True)
    return make_clip(video_dir / "clip.gif", spec)


@pytest.fixture(scope="session")
def faststart_mp4(plain_mp4: Path, video_dir: Path) -> Path:
    """``plain_mp4`` with its index first ("faststart"): the same bytes on every run, so the
    cuts the tests make fall at the same place."""
    return remux(plain_mp4, video_dir / "faststart.mp4", options={"movflags": "faststart"})


@pytest.fixture(scope="session")
def plain_mp4(video_dir: Path) -> Path:
    """An mp4 with its index (moov) at the end, as most encoders leave it."""
    frames, _ = render_clip(SEEK_SPEC)
    return write_frames(video_dir / "plain.mp4", frames, 25)
