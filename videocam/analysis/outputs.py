"""Write every file of an analysis into its output folder (docs/contract.md, "Files written by
analyze").

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

import numpy as np

from videocam.analysis.result import (
    ANNOTATED_MP4,
    CAMS_NPY,
    FRAMES_CSV,
    KEYFRAMES_CSV,
    REPORT_HTML,
    SEGMENTS_CSV,
    SUMMARY_JSON,
    TIMELINE_PNG,
    TRACKS_CSV,
    Analysis,
)
from videocam.io.probe import container_tags
from videocam.render.chapters import Chapter, FrameClock, analysis_chapters
from videocam.render.files import ensure_output_dir, write_csv, write_json, write_npy


def save_analysis(
    analysis: Analysis, out_dir: Path, *, render: bool, progress: bool = False
) -> Path:
    """Write frames.csv, keyframes.csv, segments.csv, cams.npy, summary.json and, when
    ``render``, keyframes/*.jpg, timeline.png, annotated.mp4 and report.html into
    ``out_dir``."""
    final = ensure_output_dir(out_dir)
    out = Path(tempfile.mkdtemp(prefix=".videocam-staging-", dir=final))
    try:
        _write_all(analysis, out, render=render, progress=progress)
        staged = sorted(p for p in out.rglob("*") if p.is_file())
        # summary.json last: its presence says the rest is in place.
        staged.sort(key=lambda p: p.name == SUMMARY_JSON)
        for path in staged:
            destination = final / path.relative_to(out)
            destination.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, destination)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return final


def _write_all(analysis: Analysis, out: Path, *, render: bool, progress: bool) -> None:
    from videocam.render.keyframes import keyframe_image_name, render_keyframes
    from videocam.render.report import write_video_report
    from videocam.render.timeline import render_timeline

    frames, keyframes = analysis.frames, analysis.keyframes
    options = analysis.render_options
    summary = dict(analysis.summary)
    timings = dict(summary.get("timings_s", {}))
    ranks, indices = keyframes["rank"].tolist(), keyframes.frame_index.tolist()
    names = [keyframe_image_name(r, f) for r, f in zip(ranks, indices, strict=True)]
    keyframes = keyframes.assign(image=names if render else "")
    write_csv(frames, out / FRAMES_CSV)
    write_csv(keyframes, out / KEYFRAMES_CSV)
    write_csv(analysis.segments, out / SEGMENTS_CSV)
    if analysis.tracks is not None:
        write_csv(analysis.tracks, out / TRACKS_CSV)
    write_npy(analysis.cams, out / CAMS_NPY)
    if render:
        started = time.perf_counter()
        position = {int(f): p for p, f in enumerate(frames.frame_index.tolist())}
        images = render_keyframes(
            analysis.meta.path,
            out,
            keyframes=keyframes,
            cams=lambda index: analysis.cams[position[index]].astype("float32"),
            colormap=options.colormap,
            alpha=options.alpha,
            backend=options.backend,
        )
        _, name = analysis.target
        render_timeline(
            out / TIMELINE_PNG,
            times_s=frames.time_s.to_numpy(),
            attribution=frames.attribution.to_numpy(),
            target_score=frames.target_score.to_numpy(),
            keyframes=images.for_timeline(),
            segments=list(zip(analysis.segments.start_s, analysis.segments.end_s, strict=True)),
            title=f"{analysis.meta.path.name}: {name} ({summary['method']})",
            tracks=_track_lanes(analysis),
            evidence_floor=summary.get("keyframes", {}).get("evidence_floor"),
        )
        write_annotated_clip(analysis, out / ANNOTATED_MP4, progress=progress)
        timings["render_s"] = round(time.perf_counter() - started, 4)
    summary["timings_s"] = timings
    written = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    summary["outputs"] = sorted(written | {SUMMARY_JSON} | ({REPORT_HTML} if render else set()))
    if render:
        # The page shows the summary as written, so it comes after everything but summary.json.
        write_video_report(
            out / REPORT_HTML,
            frames=frames,
            keyframes=keyframes,
            segments=analysis.segments,
            summary=summary,
            tracks=analysis.tracks,  # one lane per class with --tracks
            video=ANNOTATED_MP4,
            name=analysis.meta.path.name,
            tags=container_tags(analysis.meta.path),
        )
    write_json(summary, out / SUMMARY_JSON)


def _track_lanes(analysis: Analysis) -> list[tuple[str, np.ndarray]]:
    """(class name, attribution per analysed frame) of each followed class, in order."""
    if analysis.tracks is None:
        return []
    return [
        (str(rows.class_name.iloc[0]), rows.attribution.to_numpy())
        for _, rows in analysis.tracks.groupby("class_index", sort=False)
    ]


def annotated_clip_chapters(analysis: Analysis) -> list[Chapter]:
    """The chapters of the annotated clip: at the keyframes, the segments' starts and ends
    (:func:`videocam.render.chapters.analysis_chapters`, the same as ``videocam export vtt``)."""
    meta = analysis.meta
    clock = FrameClock.from_frames(
        analysis.frames, fps=meta.fps, n_frames=meta.n_frames, duration_s=meta.duration_s
    )
    return analysis_chapters(
        analysis.frames,
        analysis.keyframes,
        analysis.segments,
        clock=clock,
        label=analysis.target[1],
    )


def write_annotated_clip(analysis: Analysis, path: Path, *, progress: bool = False) -> Path:
    """The annotated clip of ``analysis`` (its video, maps, scores, keyframes, chapters and
    render options) at ``path``; see :func:`videocam.render.video.render_annotated_clip`."""
    from videocam.render.video import render_annotated_clip

    frames = analysis.frames
    options = analysis.render_options
    return render_annotated_clip(
        analysis.meta.path,
        path,
        frame_indices=frames.frame_index.to_numpy(),
        cams=analysis.cams,
        attribution=frames.attribution.to_numpy(),
        target_score=frames.target_score.to_numpy(),
        keyframe_indices=analysis.keyframes.frame_index.to_numpy(),
        label=analysis.target[1],
        render_size=options.render_size,
        colormap=options.colormap,
        alpha=options.alpha,
        chapters=annotated_clip_chapters(analysis),
        progress=progress,
    )
