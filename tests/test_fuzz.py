"""A seeded mutation fuzz of real videos (``tests/support/fuzz.py``): every damaged or hostile
file is analysed with complete, honest outputs, or refused with one line naming it and the
reason. Never an internal error, never a crash, never a hang."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import videocam.errors
from videocam.batch import run_batch
from videocam.config import AnalyzeConfig
from videocam.synthetic import ClipSpec, make_clip

from support.footage import real_video
from support.fuzz import make_corpus
from support.media import remux

#: Real clips mutated too when the footage is there (small, so the corpus stays quick).
REAL = ("intel_people-detection_fromgif.mp4", "udacity_vehicle_test_video.mp4")
#: The errors that mean "refused, exit 2": every VideocamError.
REFUSALS = {
    name
    for name, value in vars(videocam.errors).items()
    if isinstance(value, type) and issubclass(value, videocam.errors.VideocamError)
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fuzz")
    (folder / "src").mkdir()
    spec = ClipSpec(n_frames=48, size=(64, 96), seed=9, event="grow", event_start=16)
    plain = make_clip(folder / "src" / "plain.mp4", spec).path
    sources = [
        plain,
        remux(plain, folder / "src" / "faststart.mp4", options={"movflags": "+faststart"}),
        make_clip(folder / "src" / "clip.mkv", spec).path,
    ]
    sources += [path for path in map(real_video, REAL) if path is not None]
    mutants = make_corpus(sources, folder / "corpus", seed=0)
    # 26 mutations and a renamed copy of each source, a joined file per neighbouring pair: 83
    # from the three clips made here, 139 with the two real videos.
    n = len(sources)
    assert len(mutants) == 27 * n + n - 1 == len({m.path for m in mutants})
    return folder / "corpus"


@pytest.mark.slow
def test_every_mutant_is_analysed_honestly_or_refused(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    report = run_batch(corpus, out, AnalyzeConfig(device="cpu"), workers=2, timeout_s=120)
    index = pd.read_csv(out / "index.csv", keep_default_na=False)
    failed = index[index.status == "failed"]
    wrong = failed[~failed.error_type.isin(REFUSALS)]  # internal errors, crashes, timeouts
    assert wrong.empty, wrong[["path", "error_type", "error"]].to_string()
    assert all(
        "\n" not in e and Path(p).name in e for p, e in zip(failed.path, failed.error, strict=True)
    )
    ok = index[index.status == "ok"]
    assert len(ok) >= len(index) // 4  # damage that leaves a readable video is analysed
    for row in ok.itertuples():
        sub = out / row.output
        summary = json.loads((sub / "summary.json").read_text())
        frames = pd.read_csv(sub / "frames.csv")
        n_frames = summary["video"]["n_frames"]
        skipped = summary["decode"]["skipped_frames"]
        # No invented frames: rows are frames of the video, in order, none of them skipped,
        # and every frame is either a row or reported missing.
        assert frames.frame_index.is_monotonic_increasing
        assert frames.frame_index.is_unique
        assert frames.frame_index.between(0, n_frames - 1).all()
        assert not set(skipped) & set(frames.frame_index)
        assert len(frames) + len(skipped) == n_frames, row.path
        assert {"annotated.mp4", "timeline.png", "keyframes.csv"} <= set(summary["outputs"])
    print(
        f"fuzz: {len(index)} mutants, {len(ok)} analysed, {len(failed)} refused, "
        f"0 internal errors ({report.seconds:.0f} s)"
    )


@pytest.mark.slow
def test_the_cli_exits_0_or_2_with_one_line(corpus: Path, tmp_path: Path) -> None:
    kinds = ("cut-0.6", "flip-head-16", "flip-tail-256", "zero-middle", "duplicate-0", "junk")
    picked = [p for p in sorted(corpus.iterdir()) if any(k in p.name for k in kinds)][::3]
    picked += sorted(corpus.glob("renamed-*")) + sorted(corpus.glob("joined-*"))
    for n, video in enumerate(picked):
        argv = [
            sys.executable,
            "-m",
            "videocam",
            "analyze",
            str(video),
            "-o",
            str(tmp_path / str(n)),
        ]
        done = subprocess.run(
            [*argv, "--device", "cpu", "--no-render"], capture_output=True, text=True, timeout=180
        )
        assert done.returncode in (0, 2), (video.name, done.returncode, done.stderr[-2000:])
        assert "Traceback" not in done.stderr, video.name
        if done.returncode == 2:
            lines = [line for line in done.stderr.splitlines() if line.strip()]
            assert lines[-1].startswith("videocam: error: ")
            assert video.name in lines[-1]
            assert len([line for line in lines if line.startswith("videocam: error")]) == 1
