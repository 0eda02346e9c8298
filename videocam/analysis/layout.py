"""The output folder of one analysis as its writer sees it: the file names, how the rendered
files look (:class:`RenderOptions`), and what the writer reads of an analysis
(:class:`SavedAnalysis`).

The result (:mod:`videocam.analysis.result`) and the writer (:mod:`videocam.analysis.outputs`)
both build on this module, and neither imports the other's names through it: ``Analysis.save``
calls the writer, the writer takes anything shaped like a :class:`SavedAnalysis`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from videocam.config import AnalyzeConfig
    from videocam.io import VideoMeta

__all__ = [
    "ANNOTATED_MP4",
    "CAMS_NPY",
    "FRAMES_CSV",
    "KEYFRAMES_CSV",
    "REPORT_HTML",
    "SEGMENTS_CSV",
    "SUMMARY_JSON",
    "TIMELINE_PNG",
    "TRACKS_CSV",
    "RenderOptions",
    "SavedAnalysis",
]

#: The files of an output folder.
FRAMES_CSV = "frames.csv"
KEYFRAMES_CSV = "keyframes.csv"
SEGMENTS_CSV = "segments.csv"
TRACKS_CSV = "tracks.csv"
CAMS_NPY = "cams.npy"
SUMMARY_JSON = "summary.json"
ANNOTATED_MP4 = "annotated.mp4"
TIMELINE_PNG = "timeline.png"
#: The review page, in an analysis's folder and in the OUT of a batch or an evaluation.
REPORT_HTML = "report.html"
#: Names of the keyframe images (``keyframes/rank01_frame000123.jpg``) are the keyframe
#: renderer's: :func:`videocam.render.keyframe_image_name`.


@dataclass(frozen=True)
class RenderOptions:
    """How the rendered outputs look (annotated clip, timeline, keyframe images).

    Attributes:
        render: write them at all (``--no-render`` writes tables, maps and summary only).
        render_size: (H, W) of the annotated clip; None = the source's own size.
        colormap: matplotlib colormap of the heatmaps.
        alpha: heatmap opacity where attribution is highest.
        backend: decoder of the keyframe images.
    """

    render: bool = True
    render_size: tuple[int, int] | None = None
    colormap: str = "jet"
    alpha: float = 0.5
    backend: str = "auto"

    @classmethod
    def from_config(cls, config: AnalyzeConfig) -> RenderOptions:
        """The render options that ``config`` asks for."""
        return cls(
            render=config.render,
            render_size=config.render_size,
            colormap=config.colormap,
            alpha=config.alpha,
            backend=config.backend,
        )


class SavedAnalysis(Protocol):
    """What the writer of the output folder reads of an analysis
    (:class:`~videocam.analysis.result.Analysis` is one; its attributes say what each holds)."""

    @property
    def frames(self) -> pd.DataFrame:
        """One row per frame (frames.csv)."""

    @property
    def keyframes(self) -> pd.DataFrame:
        """The ranked keyframes (keyframes.csv)."""

    @property
    def segments(self) -> pd.DataFrame:
        """The segments with evidence (segments.csv)."""

    @property
    def cams(self) -> np.ndarray:
        """The per-frame maps, (frames, h, w) on the video's one scale."""

    @property
    def meta(self) -> VideoMeta:
        """What the decoder read about the video."""

    @property
    def summary(self) -> dict[str, Any]:
        """The run's summary (summary.json)."""

    @property
    def render_options(self) -> RenderOptions:
        """How the outputs are rendered."""

    @property
    def tracks(self) -> pd.DataFrame | None:
        """One row per frame and followed class (tracks.csv), or None without ``--tracks``."""

    @property
    def detections(self) -> pd.DataFrame | None:
        """The detector's boxes (detections.csv), or None for a classifier."""

    @property
    def target(self) -> tuple[int, str]:
        """The explained class: ``(index, name)``."""
