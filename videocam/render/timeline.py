"""The timeline plot: attribution and target score over time, keyframes and their thumbnails.

Drawn with matplotlib's object API (``Figure`` + ``FigureCanvasAgg``): no pyplot, no global
backend switch, nothing at import time.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from videocam.render.files import atomic_write

__all__ = ["render_timeline"]

_ATTR_COLOR = "#d1495b"
_SCORE_COLOR = "#2e86ab"
_KEY_COLOR = "#e09f3e"
_SEGMENT_COLOR = "#f4d35e"


def render_timeline(
    path: str | os.PathLike[str],
    *,
    times_s: np.ndarray,
    attribution: np.ndarray,
    target_score: np.ndarray,
    keyframes: Sequence[tuple[float, np.ndarray | None]],
    segments: Sequence[tuple[float, float]],
    title: str,
    figsize: tuple[float, float] = (12.0, 6.0),
    dpi: int = 100,
) -> Path:
    """Write the timeline PNG (atomically).

    Two stacked panels share the time axis: attribution (top) and the target score (bottom,
    0 to 1). Segments are shaded in both; keyframes are dashed vertical lines numbered by rank.
    Under them, a row of keyframe thumbnails in time order, labelled with rank and time.

    Args:
        path: the PNG to write.
        times_s: float, shape (n,): presentation times of the analysed frames.
        attribution: float, shape (n,), >= 0.
        target_score: float, shape (n,), in [0, 1].
        keyframes: ``(time_s, thumbnail)`` in rank order (rank 1 first); thumbnail uint8
            (h, w, 3) or None.
        segments: ``(start_s, end_s)`` intervals of high attribution.
        title: the figure title (video name, model, class...).
        figsize: inches; with ``dpi`` gives the pixel size (default 1200 x 600).
        dpi: dots per inch.

    Returns:
        ``path`` as a Path.

    Raises:
        OutputError: the file cannot be written.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    times = np.asarray(times_s, dtype=np.float64).reshape(-1)
    attr = np.asarray(attribution, dtype=np.float64).reshape(-1)
    score = np.asarray(target_score, dtype=np.float64).reshape(-1)
    if not (len(times) == len(attr) == len(score)):
        raise ValueError(
            f"times_s, attribution and target_score differ in length: "
            f"{len(times)}, {len(attr)}, {len(score)}"
        )

    fig = Figure(figsize=figsize, dpi=dpi)
    FigureCanvasAgg(fig)
    has_thumbs = any(thumb is not None for _, thumb in keyframes)
    outer: Any = None
    panels: Any
    if has_thumbs:
        outer = fig.add_gridspec(2, 1, height_ratios=[4.6, 2.0], hspace=0.32)
        panels = outer[0].subgridspec(2, 1, height_ratios=[3.0, 1.6], hspace=0.12)
    else:
        panels = fig.add_gridspec(2, 1, height_ratios=[3.0, 1.6], hspace=0.12)
    ax_attr = fig.add_subplot(panels[0])
    ax_score = fig.add_subplot(panels[1], sharex=ax_attr)
    fig.text(0.07, 0.975, title, fontsize=12, ha="left", va="top")

    if len(times):
        ax_attr.fill_between(times, attr, color=_ATTR_COLOR, alpha=0.25, linewidth=0)
        ax_attr.plot(times, attr, color=_ATTR_COLOR, linewidth=1.4)
        ax_score.plot(times, score, color=_SCORE_COLOR, linewidth=1.4)
        lo, hi = float(times[0]), float(times[-1])
        ax_attr.set_xlim(lo, hi if hi > lo else lo + 1.0)
        top = float(np.nanmax(attr)) if np.isfinite(attr).any() else 0.0
        ax_attr.set_ylim(0.0, top * 1.18 if top > 0 else 1.0)
    else:
        ax_attr.text(0.5, 0.5, "no analysed frames", transform=ax_attr.transAxes, ha="center")
    ax_score.set_ylim(-0.02, 1.02)
    ax_attr.set_ylabel("attribution")
    ax_score.set_ylabel("target score")
    ax_score.set_xlabel("time (s)")
    ax_attr.tick_params(labelbottom=False)
    for ax in (ax_attr, ax_score):
        ax.grid(True, color="#dddddd", linewidth=0.6)
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        for start_s, end_s in segments:
            ax.axvspan(float(start_s), float(end_s), color=_SEGMENT_COLOR, alpha=0.3, linewidth=0)
        for time_s, _ in keyframes:
            ax.axvline(float(time_s), color=_KEY_COLOR, linestyle="--", linewidth=1.0)
    # Rank numbers just above the attribution panel, at each keyframe's time.
    for rank, (time_s, _) in enumerate(keyframes, start=1):
        ax_attr.annotate(
            str(rank),
            xy=(float(time_s), 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(0, 2),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=8,
            color="white",
            bbox={"boxstyle": "circle,pad=0.2", "fc": _KEY_COLOR, "ec": "none"},
        )
    legend = [
        _patch(_ATTR_COLOR, "attribution"),
        _line(_KEY_COLOR, "keyframe"),
    ]
    if len(segments):
        legend.append(_patch(_SEGMENT_COLOR, "segment", alpha=0.3))
    fig.legend(
        handles=legend,
        loc="upper right",
        bbox_to_anchor=(0.98, 0.985),
        fontsize=8,
        frameon=False,
        ncol=len(legend),
    )
    if has_thumbs:
        _thumbnail_row(fig, outer[1], keyframes)
    fig.subplots_adjust(left=0.07, right=0.98, top=0.88, bottom=0.03 if has_thumbs else 0.09)
    with atomic_write(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    return path


def _patch(color: str, label: str, alpha: float = 0.6) -> Any:
    from matplotlib.patches import Patch

    return Patch(facecolor=color, alpha=alpha, label=label)


def _line(color: str, label: str) -> Any:
    from matplotlib.lines import Line2D

    return Line2D([0], [0], color=color, linestyle="--", label=label)


def _thumbnail_row(
    fig: Any, cell: Any, keyframes: Sequence[tuple[float, np.ndarray | None]]
) -> None:
    """One small image per keyframe, in time order, titled ``#rank  t s``."""
    ranked = sorted(
        ((float(t), rank, thumb) for rank, (t, thumb) in enumerate(keyframes, start=1)),
        key=lambda item: item[0],
    )
    n_slots = max(len(ranked), 5)  # a few keyframes stay small instead of filling the width
    sub = cell.subgridspec(1, n_slots, wspace=0.06)
    offset = (n_slots - len(ranked)) // 2
    for k, (time_s, rank, thumb) in enumerate(ranked):
        ax = fig.add_subplot(sub[0, offset + k])
        ax.set_xticks([])
        ax.set_yticks([])
        if thumb is None:
            ax.text(0.5, 0.5, "no image", ha="center", va="center", transform=ax.transAxes)
        else:
            ax.imshow(np.asarray(thumb), interpolation="antialiased")
        for spine in ax.spines.values():
            spine.set_edgecolor(_KEY_COLOR)
            spine.set_linewidth(1.5)
        ax.set_title(f"#{rank}  {time_s:.2f} s", fontsize=9, pad=3)
