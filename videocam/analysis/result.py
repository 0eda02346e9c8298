"""The result of analysing one video (:class:`Analysis`) and the tables it holds: their columns
and the builders of each.

The output folder's file names and :class:`RenderOptions` are :mod:`videocam.analysis.layout`'s
(``REPORT_HTML`` and ``RenderOptions`` also importable from here, as before). Imports nothing
from :mod:`videocam.render`: the renderers are handed plain arrays and these names by
:mod:`videocam.analysis.outputs`, which ``save`` calls.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from videocam.analysis.layout import REPORT_HTML, RenderOptions
from videocam.io import VideoMeta

if TYPE_CHECKING:
    import pandas as pd

    from videocam.scoring import VideoScores

__all__ = [
    "FRAME_COLUMNS",
    "KEYFRAME_COLUMNS",
    "REPORT_HTML",
    "SEGMENT_COLUMNS",
    "TRACK_COLUMNS",
    "Analysis",
    "RenderOptions",
    "frame_table",
    "keyframe_table",
    "segment_table",
    "track_table",
]

FRAME_COLUMNS = ["frame_index", "time_s", "attribution", "target_score", "is_keyframe"]
KEYFRAME_COLUMNS = ["rank", "frame_index", "time_s", "attribution", "x0", "y0", "x1", "y1", "image"]
SEGMENT_COLUMNS = ["start_frame", "end_frame", "start_s", "end_s", "peak_frame", "attribution"]
TRACK_COLUMNS = [
    "frame_index",
    "time_s",
    "class_index",
    "class_name",
    "attribution",
    "target_score",
]


@dataclass(frozen=True)
class Analysis:
    """The result of analysing one video.

    Attributes:
        frames: one row per analysed frame (``FRAME_COLUMNS``).
        keyframes: one row per keyframe, strongest first (``KEYFRAME_COLUMNS``).
        segments: intervals of high attribution (``SEGMENT_COLUMNS``).
        cams: float16, shape (n_frames, h, w), in [0, 1]: each analysed frame's map at model
            resolution, scaled by one factor for the whole video.
        meta: the source video's metadata.
        summary: what summary.json holds (model, layer, method, target, config, timings...).
        class_probs: float32, shape (K,): each class's probability averaged over the windows.
        render_options: how ``save`` renders.
        tracks: with ``tracks``, one row per analysed frame and followed class
            (``TRACK_COLUMNS``); None without.
        detections: object detectors only: the explained class's detections at each keyframe
            (:data:`~videocam.analysis.detections.DETECTION_COLUMNS`); None for classifiers.
    """

    frames: pd.DataFrame
    keyframes: pd.DataFrame
    segments: pd.DataFrame
    cams: np.ndarray = field(repr=False)
    meta: VideoMeta
    summary: dict[str, Any] = field(repr=False)
    class_probs: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32), repr=False)
    render_options: RenderOptions = field(default_factory=RenderOptions)
    tracks: pd.DataFrame | None = field(default=None, repr=False)
    detections: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def target(self) -> tuple[int, str]:
        """(index, name) of the explained class."""
        return int(self.summary["target"]["index"]), str(self.summary["target"]["name"])

    def save(
        self, out_dir: str | Path, *, render: bool | None = None, progress: bool = False
    ) -> Path:
        """Write every output file into ``out_dir`` (each one atomically).

        Args:
            out_dir: output folder, created if needed.
            render: write annotated.mp4, timeline.png, keyframes/ and report.html (the
                review page); default: ``render_options.render``.
            progress: show a progress bar while rendering.
        """
        from videocam.analysis.outputs import save_analysis

        if render is None:
            render = self.render_options.render
        return save_analysis(self, Path(out_dir), render=render, progress=progress)


def frame_table(
    indices: np.ndarray, times_s: np.ndarray, scores: VideoScores, target_score: np.ndarray
) -> pd.DataFrame:
    """frames.csv: one row per analysed frame (``FRAME_COLUMNS``)."""
    import pandas as pd

    is_key = np.zeros(len(indices), dtype=bool)
    is_key[scores.keyframes] = True
    return pd.DataFrame(
        {
            "frame_index": indices.astype(np.int64),
            "time_s": times_s,
            "attribution": scores.attribution,
            "target_score": target_score,
            "is_keyframe": is_key,
        },
        columns=FRAME_COLUMNS,
    )


def keyframe_table(
    indices: np.ndarray,
    times_s: np.ndarray,
    scores: VideoScores,
    image_name: Callable[[int, int], str] | None = None,
) -> pd.DataFrame:
    """keyframes.csv: one row per keyframe, strongest first (``KEYFRAME_COLUMNS``); ``image``
    is ``image_name(rank, frame_index)``, or empty when nothing is rendered (None). A keyframe
    without a box (:data:`~videocam.scoring.NO_BOX`) has ``x0, y0, x1, y1`` missing (nullable
    integers: empty cells in the CSV)."""
    import pandas as pd

    rows = []
    for rank, (p, box) in enumerate(
        zip(scores.keyframes.tolist(), scores.boxes, strict=True), start=1
    ):
        frame_index = int(indices[p])
        rows.append(
            {
                "rank": rank,
                "frame_index": frame_index,
                "time_s": float(times_s[p]),
                "attribution": float(scores.attribution[p]),
                "x0": box[0],
                "y0": box[1],
                "x1": box[2],
                "y1": box[3],
                "image": image_name(rank, frame_index) if image_name else "",
            }
        )
    table = pd.DataFrame(rows, columns=KEYFRAME_COLUMNS)
    missing = np.array([b[0] < 0 for b in scores.boxes], dtype=bool)
    for column in ("x0", "y0", "x1", "y1"):
        table[column] = table[column].astype("Int64").mask(missing)
    return table


def segment_table(indices: np.ndarray, times_s: np.ndarray, scores: VideoScores) -> pd.DataFrame:
    """segments.csv: one row per interval of high attribution (``SEGMENT_COLUMNS``)."""
    import pandas as pd

    rows = [
        {
            "start_frame": int(indices[s.start]),
            "end_frame": int(indices[s.end]),
            "start_s": float(times_s[s.start]),
            "end_s": float(times_s[s.end]),
            "peak_frame": int(indices[s.peak]),
            "attribution": s.attribution,
        }
        for s in scores.segments
    ]
    return pd.DataFrame(rows, columns=SEGMENT_COLUMNS)


def track_table(
    indices: np.ndarray,
    times_s: np.ndarray,
    classes: list[tuple[int, str]],
    attribution: list[np.ndarray],
    target_score: list[np.ndarray],
) -> pd.DataFrame:
    """tracks.csv: one row per analysed frame and followed class (``TRACK_COLUMNS``), class by
    class in the order followed, frames in order.

    Args:
        classes: (index, name) of each followed class.
        attribution, target_score: float, shape (n,) each, per class.
    """
    import pandas as pd

    n = len(indices)
    return pd.DataFrame(
        {
            "frame_index": np.tile(indices.astype(np.int64), len(classes)),
            "time_s": np.tile(times_s, len(classes)),
            "class_index": np.repeat([c for c, _ in classes], n).astype(np.int64),
            "class_name": np.repeat([name for _, name in classes], n).astype(object),
            "attribution": np.concatenate(attribution) if classes else np.zeros(0),
            "target_score": np.concatenate(target_score) if classes else np.zeros(0),
        },
        columns=TRACK_COLUMNS,
    )
