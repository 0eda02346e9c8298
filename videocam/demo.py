"""``videocam demo``: a synthetic clip with a known event, analysed by the bundled model.

Runs offline on a fresh install: the clip is drawn by :mod:`videocam.synthetic`, the model and
its weights ship in the package.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from videocam.analysis import Analysis, analyze
from videocam.config import DEFAULT_METHOD
from videocam.synthetic import ClipSpec, SyntheticClip, make_clip

#: The demo clip: 8 s at 25 fps, one "move_right" event from 3.0 s to 4.6 s.
DEMO_SPEC = ClipSpec(
    n_frames=200,
    size=(144, 192),
    seed=20261125,
    event="move_right",
    event_start=75,
    event_len=40,
    n_distractors=3,
)

#: Analysis options of the demo (configs/demo.yaml holds the same for the CLI).
DEMO_OPTIONS: dict[str, object] = {
    "weights": "DEFAULT",
    "method": DEFAULT_METHOD,
    "target": "auto",
    "clip_len": 16,
    "stride": 8,
    "topk": 5,
    "min_gap": 0.5,
}


@dataclass(frozen=True)
class DemoResult:
    """What the demo made and how its keyframes compare with the known event."""

    out_dir: Path
    clip: SyntheticClip
    analysis: Analysis
    keyframes_inside: int


def run_demo(
    out_dir: str | Path,
    *,
    spec: ClipSpec = DEMO_SPEC,
    render: bool = True,
    progress: bool = False,
    **options: object,
) -> DemoResult:
    """Make the demo clip in ``out_dir``, analyse it with ``videocam_tiny`` and save everything."""
    from videocam.render.files import atomic_write, ensure_output_dir

    out = ensure_output_dir(out_dir)
    with atomic_write(out / "input.mp4") as tmp:
        made = make_clip(tmp, spec)
    clip = SyntheticClip(
        path=out / "input.mp4", spec=made.spec, truth=made.truth, times_s=made.times_s
    )
    chosen = {**DEMO_OPTIONS, **options, "render": render}
    analysis = analyze(clip.path, "videocam_tiny", progress=progress, **chosen)
    analysis.save(out, render=render, progress=progress)
    interval = clip.event_interval_s
    assert interval is not None
    start, end = interval
    inside = int(((analysis.keyframes.time_s >= start) & (analysis.keyframes.time_s < end)).sum())
    return DemoResult(out_dir=out, clip=clip, analysis=analysis, keyframes_inside=inside)
