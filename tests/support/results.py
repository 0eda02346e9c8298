"""Output folders written from tables, without analysing anything: the four contract files of
``analyze`` (frames.csv, keyframes.csv, segments.csv, summary.json) for any frame rate, length,
keyframes and segments, and batch OUTs made of them (index.csv)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import pandas as pd


def write_result(
    folder: Path,
    *,
    fps: str = "25",
    n_frames: int = 200,
    keyframes: Sequence[tuple[int, float]] = ((84, 0.5), (99, 0.4)),
    segments: Sequence[tuple[int, int, float]] = ((75, 114, 0.3),),
    times_s: Sequence[float] | None = None,
    frame_step: int = 1,
    video_path: str = "/videos/clip.mp4",
    label: str = "move_right",
    score: float = 0.75,
) -> Path:
    """Write an ``analyze`` output folder's contract files into ``folder`` (created).

    Args:
        fps: summary.json ``video.fps_fraction``.
        n_frames: frames in the video.
        keyframes: ``(frame_index, attribution)`` in rank order.
        segments: ``(start_frame, end_frame, attribution)`` in time order.
        times_s: every source frame's presentation time (variable rate); default
            ``index / fps`` rounded to the microsecond, as the decoders give them.
        frame_step: analyse every n-th frame (keyframes and segment ends must be analysed).
        score: every frame's target score.
    """
    folder.mkdir(parents=True, exist_ok=True)
    rate = Fraction(fps)
    times = (
        [round(float(i / rate), 6) for i in range(n_frames)] if times_s is None else list(times_s)
    )
    duration = round(times[-1] + float(1 / rate), 6)
    analysed = list(range(0, n_frames, frame_step))
    keys = {f for f, _ in keyframes}
    frames = pd.DataFrame(
        {
            "frame_index": analysed,
            "time_s": [times[i] for i in analysed],
            "attribution": [0.1] * len(analysed),
            "target_score": [score] * len(analysed),
            "is_keyframe": [i in keys for i in analysed],
        }
    )
    frames.to_csv(folder / "frames.csv", index=False)
    pd.DataFrame(
        [
            {
                "rank": rank,
                "frame_index": f,
                "time_s": times[f],
                "attribution": a,
                "x0": 1,
                "y0": 2,
                "x1": 30,
                "y1": 40,
                "image": "",
            }
            for rank, (f, a) in enumerate(keyframes, start=1)
        ],
        columns=["rank", "frame_index", "time_s", "attribution", "x0", "y0", "x1", "y1", "image"],
    ).to_csv(folder / "keyframes.csv", index=False)
    pd.DataFrame(
        [
            {
                "start_frame": s,
                "end_frame": e,
                "start_s": times[s],
                "end_s": times[e],
                "peak_frame": s,
                "attribution": a,
            }
            for s, e, a in segments
        ],
        columns=["start_frame", "end_frame", "start_s", "end_s", "peak_frame", "attribution"],
    ).to_csv(folder / "segments.csv", index=False)
    summary = {
        "video": {
            "path": video_path,
            "fps": float(rate),
            "fps_fraction": fps,
            "n_frames": n_frames,
            "width": 64,
            "height": 48,
            "duration_s": duration,
            "codec": "h264",
            "rotation": 0,
            "backend": "pyav",
        },
        "model": {"name": "videocam_tiny", "layer": "block4"},
        "method": "gradcam",
        "target": {"index": 1, "name": label, "auto": True},
    }
    (folder / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return folder


def write_batch(out: Path, rows: Sequence[tuple[str, str]], **result_options: object) -> Path:
    """A batch OUT: ``index.csv`` with one ``(sub-folder, status)`` row each, and a result
    folder for the ``ok`` and ``skipped-complete`` ones (``video_path`` ``/videos/SUB``)."""
    out.mkdir(parents=True, exist_ok=True)
    for sub, status in rows:
        if status in ("ok", "skipped-complete"):
            options: dict[str, object] = {"video_path": f"/videos/{sub}", **result_options}
            write_result(out / sub, **options)  # type: ignore[arg-type]
        else:
            (out / sub).mkdir(exist_ok=True)
            (out / sub / "log.txt").write_text("failed\n", encoding="utf-8")
    pd.DataFrame(
        [{"path": f"/videos/{sub}", "output": sub, "status": status} for sub, status in rows],
        columns=["path", "output", "status"],
    ).to_csv(out / "index.csv", index=False)
    return out
