"""Write every file of an analysis into its output folder (docs/contract.md, "Files written by
analyze").

Everything is first written into a hidden staging folder inside the output folder and moved
into place only once every file is complete (summary.json last), so a run that fails half-way —
while rendering, on a full disk, at Ctrl-C — leaves no output of its own behind and an earlier
result in the same folder as it was; a run that completes replaces the earlier one entirely.
An output folder the run created is removed again when the run fails (an existing one never is).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import numpy as np

from videocam.analysis.detections import DETECTIONS_CSV
from videocam.analysis.layout import (
    ANNOTATED_MP4,
    CAMS_NPY,
    FRAMES_CSV,
    KEYFRAMES_CSV,
    REPORT_HTML,
    SEGMENTS_CSV,
    SUMMARY_JSON,
    TIMELINE_PNG,
    TRACKS_CSV,
    SavedAnalysis,
)
from videocam.errors import OutputError
from videocam.io.probe import container_tags
from videocam.render.chapters import Chapter, FrameClock, analysis_chapters
from videocam.render.files import (
    STAGING_PREFIX,
    created_output_dir,
    write_csv,
    write_failure,
    write_json,
    write_npy,
)


def save_analysis(
    analysis: SavedAnalysis, out_dir: Path, *, render: bool, progress: bool = False
) -> Path:
    """Write frames.csv, keyframes.csv, segments.csv, cams.npy, summary.json and, when
    ``render``, keyframes/*.jpg, timeline.png, annotated.mp4 and report.html into
    ``out_dir``; ``analysis.summary["outputs"]`` then lists them (as summary.json does)."""
    with created_output_dir(out_dir) as final:
        try:
            out = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=final))
        except OSError as exc:
            raise OutputError(f"{final}: cannot write the outputs: {write_failure(exc)}") from exc
        try:
            try:
                outputs = _write_all(analysis, out, render=render, progress=progress)
            except (OSError, OutputError) as exc:  # say it of OUT, not of a staged file
                reason = write_failure(exc)
                raise OutputError(f"{final}: cannot write the outputs: {reason}") from exc
            with _folder_lock(final):
                _publish(out, final)
        finally:
            shutil.rmtree(out, ignore_errors=True)
    analysis.summary["outputs"] = outputs
    return final


@contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on the output folder itself (no lock file is left in it), so
    that two analyses saving into one folder at once take turns: it ends up holding one
    run's outputs, whole. Released by the OS even when the process is killed."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _publish(staging: Path, final: Path) -> None:
    """Move the staged files into ``final``, replacing an earlier analysis there entirely.

    The earlier run's summary.json goes first (while files move, the folder reads as
    incomplete), the new one last (its presence says the rest is in place); the files the
    earlier run listed in its summary and this one does not write are removed afterwards, so
    no earlier keyframe image or track survives next to the new outputs. Files the earlier
    summary does not list (the user's own) are never touched.
    """
    previous = _previous_outputs(final)
    staged = sorted(p for p in staging.rglob("*") if p.is_file())
    staged.sort(key=lambda p: p.name == SUMMARY_JSON)
    (final / SUMMARY_JSON).unlink(missing_ok=True)
    for path in staged:
        destination = final / path.relative_to(staging)
        destination.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, destination)
    written = {p.relative_to(staging).as_posix() for p in staged}
    root = final.resolve()
    for name in sorted(previous - written):
        stale = final / name
        with suppress(OSError):
            if stale.is_file() and root in stale.resolve().parents:
                stale.unlink()
                if stale.parent != final:
                    with suppress(OSError):
                        stale.parent.rmdir()  # an emptied keyframes/ folder


def _previous_outputs(final: Path) -> set[str]:
    """The files an earlier analysis in ``final`` wrote (its summary.json's ``outputs``)."""
    try:
        outputs = json.loads((final / SUMMARY_JSON).read_text(encoding="utf-8"))["outputs"]
    except (OSError, ValueError, KeyError, TypeError):
        return set()
    return {str(name) for name in outputs if isinstance(name, str) and ".." not in name}


def _write_all(analysis: SavedAnalysis, out: Path, *, render: bool, progress: bool) -> list[str]:
    """Write every file into the staging folder ``out``; returns their relative paths."""
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
    if analysis.detections is not None:
        write_csv(analysis.detections, out / DETECTIONS_CSV)
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
            detections=_keyframe_boxes(analysis),
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
            evidence_threshold=summary.get("keyframes", {}).get("evidence_threshold"),
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
    return list(summary["outputs"])


def _keyframe_boxes(
    analysis: SavedAnalysis,
) -> dict[int, list[tuple[tuple[float, ...], str]]] | None:
    """Per keyframe's frame index, the detections drawn on its image: (box in original pixels,
    caption), highest score first; None for classifiers."""
    table = analysis.detections
    if table is None:
        return None
    drawn: dict[int, list[tuple[tuple[float, ...], str]]] = {}
    boxes = table[["x0", "y0", "x1", "y1"]].to_numpy(dtype=np.float64)
    columns = (table.frame_index.tolist(), table.class_name.tolist(), table.score.tolist())
    for frame_index, name, score, box in zip(*columns, boxes.tolist(), strict=True):
        drawn.setdefault(int(frame_index), []).append((tuple(box), f"{name} {score:.2f}"))
    return drawn


def _track_lanes(analysis: SavedAnalysis) -> list[tuple[str, np.ndarray]]:
    """(class name, attribution per analysed frame) of each followed class, in order."""
    if analysis.tracks is None:
        return []
    return [
        (str(rows.class_name.iloc[0]), rows.attribution.to_numpy())
        for _, rows in analysis.tracks.groupby("class_index", sort=False)
    ]


def annotated_clip_chapters(analysis: SavedAnalysis) -> list[Chapter]:
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


def write_annotated_clip(analysis: SavedAnalysis, path: Path, *, progress: bool = False) -> Path:
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
