"""Write every file of an analysis into its output folder (CONTRACT.md, "Files written").

Everything is first written into a hidden staging folder inside the output folder and moved
into place only once every file is complete (summary.json last), so a run that fails half-way —
while rendering, say — leaves no output of its own behind, and an earlier result in the same
folder is replaced file by file, each rename atomic.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from videocam.render.files import ensure_output_dir, write_csv, write_json, write_npy

if TYPE_CHECKING:
    from videocam.pipeline import Analysis


def save_analysis(
    analysis: Analysis, out_dir: Path, *, render: bool, progress: bool = False
) -> Path:
    """Write frames.csv, keyframes.csv, segments.csv, cams.npy, summary.json and, when
    ``render``, keyframes/*.jpg, timeline.png and annotated.mp4 into ``out_dir``."""
    final = ensure_output_dir(out_dir)
    out = Path(tempfile.mkdtemp(prefix=".videocam-staging-", dir=final))
    try:
        _write_all(analysis, out, render=render, progress=progress)
        staged = sorted(p for p in out.rglob("*") if p.is_file())
        # summary.json last: its presence says the rest is in place.
        staged.sort(key=lambda p: p.name == "summary.json")
        for path in staged:
            destination = final / path.relative_to(out)
            destination.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, destination)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return final


def _write_all(analysis: Analysis, out: Path, *, render: bool, progress: bool) -> None:
    from videocam.render.keyframes import render_keyframes
    from videocam.render.timeline import render_timeline

    frames, keyframes = analysis.frames, analysis.keyframes
    config = analysis.summary["config"]
    summary = dict(analysis.summary)
    timings = dict(summary.get("timings_s", {}))
    if not render:
        keyframes = keyframes.assign(image="")
    write_csv(frames, out / "frames.csv")
    write_csv(keyframes, out / "keyframes.csv")
    write_csv(analysis.segments, out / "segments.csv")
    write_npy(analysis.cams, out / "cams.npy")
    if render:
        started = time.perf_counter()
        video = analysis.meta.path
        position = {int(f): p for p, f in enumerate(frames.frame_index.tolist())}
        images = render_keyframes(
            video,
            out,
            keyframes=keyframes,
            cams=lambda index: analysis.cams[position[index]].astype("float32"),
            colormap=config["colormap"],
            alpha=config["alpha"],
            backend=config["backend"],
        )
        _, name = analysis.target
        render_timeline(
            out / "timeline.png",
            times_s=frames.time_s.to_numpy(),
            attribution=frames.attribution.to_numpy(),
            target_score=frames.target_score.to_numpy(),
            keyframes=images.for_timeline(),
            segments=list(zip(analysis.segments.start_s, analysis.segments.end_s, strict=True)),
            title=f"{analysis.meta.path.name}: {name} ({summary['method']})",
        )
        write_annotated_clip(analysis, out / "annotated.mp4", progress=progress)
        timings["render_s"] = round(time.perf_counter() - started, 4)
    summary["timings_s"] = timings
    written = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    summary["outputs"] = sorted(written | {"summary.json"})
    write_json(summary, out / "summary.json")


def write_annotated_clip(analysis: Analysis, path: Path, *, progress: bool = False) -> Path:
    """The annotated clip of ``analysis`` (its video, maps, scores, keyframes and the render
    options of its config) at ``path``; see :func:`videocam.render.video.render_annotated_clip`."""
    from videocam.render.video import render_annotated_clip

    frames = analysis.frames
    config = analysis.summary["config"]
    return render_annotated_clip(
        analysis.meta.path,
        path,
        frame_indices=frames.frame_index.to_numpy(),
        cams=analysis.cams,
        attribution=frames.attribution.to_numpy(),
        target_score=frames.target_score.to_numpy(),
        keyframe_indices=analysis.keyframes.frame_index.to_numpy(),
        label=analysis.target[1],
        render_size=tuple(config["render_size"]) if config["render_size"] else None,
        colormap=config["colormap"],
        alpha=config["alpha"],
        progress=progress,
    )
