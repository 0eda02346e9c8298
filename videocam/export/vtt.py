"""WebVTT chapters of a video's keyframes and segments (``videocam export vtt``): for
``<track kind="chapters" src="keyframes.vtt">`` in any HTML5 player, and the review report's.

The chapters are those of the annotated clip (:func:`videocam.render.chapters.analysis_chapters`):
one flat list that tiles the video, a chapter starting at every keyframe, segment start and
segment end, each running until the next; no overlaps, no nesting, cues in time order,
``HH:MM:SS.mmm`` timestamps from the presentation times (rounded up to the millisecond, so a
seek lands on the frame itself).
"""

from __future__ import annotations

from videocam import __version__
from videocam.export.result import VideoResult
from videocam.render.chapters import webvtt

__all__ = ["webvtt_chapters"]


def webvtt_chapters(video: VideoResult) -> str:
    """The WebVTT chapters file of ``video``, as text (the chapters' rules: docs/contract.md,
    ``videocam export``, and the module docstring).

    The review report can embed it as it is; for chapters from tables in memory use
    :func:`videocam.render.chapters.analysis_chapters` and :func:`videocam.render.chapters.webvtt`.
    """
    summary = video.summary
    note = (
        f"Chapters of {video.video_name} by videocam {__version__}: keyframes (rank 1 = "
        f"highest attribution) and segments of high attribution for the class {video.label} "
        f"({summary.get('method', '?')}). Each chapter runs until the next one starts."
    )
    return webvtt(video.chapters(), note=note)
