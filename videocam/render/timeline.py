"""The timeline plot: attribution and target score over time, keyframes and their thumbnails,
and one lane per followed class.

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
from videocam.render.timefmt import clock

__all__ = ["evidence_level", "nice_ceiling", "render_timeline", "score_axis_top"]

_ATTR_COLOR = "#d1495b"
_SCORE_COLOR = "#2e86ab"
_KEY_COLOR = "#e09f3e"
_SEGMENT_COLOR = "#f4d35e"
_TRACK_COLORS = ("#3a86ff", "#8338ec", "#ff006e", "#2a9d8f", "#6c757d", "#e76f51")
_FLOOR_COLOR = "#888888"
_GRID_COLOR = "#dddddd"

#: The default figure, in inches (1200 x 600 pixels at 100 dpi), and how much taller per track.
_FIG_SIZE_IN = (12.0, 6.0)
_TRACK_IN = 0.9
#: Heights of the panels relative to each other: attribution, target score, each track's lane;
#: the thumbnail row's against all the panels together.
_ATTR_RATIO, _SCORE_RATIO, _TRACK_RATIO, _THUMBS_RATIO = 3.0, 1.6, 0.8, 2.0
#: Vertical space between the panels, and between them and the thumbnail row (fractions of a
#: panel's mean height, as matplotlib's ``hspace``).
_PANEL_SPACE, _THUMBS_SPACE = 0.12, 0.32
#: The figure's margins (fractions of its size): the left one leaves room for the y labels,
#: the top one for the title and legend; less at the bottom under thumbnails (no x labels).
_MARGINS = {"left": 0.09, "right": 0.98, "top": 0.88}
_BOTTOM, _BOTTOM_THUMBS = 0.09, 0.03
#: The title's position (figure fraction, top left over the panels) and size; the legend's
#: anchor (top right) and the size of small texts (legend, rank numbers, track names, ticks).
_TITLE_XY, _TITLE_SIZE = (0.09, 0.975), 12
_LEGEND_XY = (0.98, 0.985)
_SMALL = 8
#: Curves: line widths of the video's curves and of the tracks'; opacity of the areas under
#: the attribution and a track's curve, of the segments' shading and of the legend's patches.
_LINE_WIDTH, _TRACK_LINE_WIDTH = 1.4, 1.0
_ATTR_ALPHA, _TRACK_ALPHA, _SEGMENT_ALPHA, _PATCH_ALPHA = 0.25, 0.35, 0.3, 0.6
#: Room above the highest value: the attribution's (its top rank numbers stay clear of it)
#: and the tracks' (their name in the corner).
_ATTR_HEADROOM, _TRACK_HEADROOM = 1.18, 1.1
#: Width of the keyframes' dashed lines, of the evidence floor's dotted one, and of the grid.
_MARK_WIDTH, _GRID_WIDTH = 1.0, 0.6
#: Keyframe thumbnails: at least this many slots (a few keyframes stay small instead of
#: filling the width), the gap between them, their border's width, their titles' size and pad.
_THUMB_SLOTS, _THUMB_SPACE, _THUMB_BORDER, _THUMB_TITLE, _THUMB_PAD = 5, 0.06, 1.5, 9, 3
#: About this many ticks on the time axis.
_TIME_TICKS = 8
#: The score axis tops at the round value above this many times the highest score.
_SCORE_HEADROOM = 1.1


def render_timeline(
    path: str | os.PathLike[str],
    *,
    times_s: np.ndarray,
    attribution: np.ndarray,
    target_score: np.ndarray,
    keyframes: Sequence[tuple[float, np.ndarray | None]],
    segments: Sequence[tuple[float, float]],
    title: str,
    tracks: Sequence[tuple[str, np.ndarray]] = (),
    evidence_floor: float | None = None,
    evidence_threshold: float | None = None,
    figsize: tuple[float, float] | None = None,
    dpi: int = 100,
) -> Path:
    """Write the timeline PNG (atomically).

    Stacked panels share the time axis (``m:ss``, as every rendered time): attribution (top),
    the target score on its own scale (0 to :func:`score_axis_top`, stated on the axis: a class
    whose probability peaks at 0.02 stays readable; the review page's score lane uses the same),
    with the evidence floor dotted, and one lane per followed class (their attributions on one
    scale, 0 and its top marked on each). Segments are shaded in the first two; keyframes are
    dashed vertical lines numbered by rank. Under them, a row of keyframe thumbnails in time
    order, labelled with rank and time.

    Args:
        path: the PNG to write.
        times_s: float, shape (n,): presentation times of the analysed frames.
        attribution: float, shape (n,), >= 0.
        target_score: float, shape (n,), in [0, 1].
        keyframes: ``(time_s, thumbnail)`` in rank order (rank 1 first); thumbnail uint8
            (h, w, 3) or None.
        segments: ``(start_s, end_s)`` intervals of high attribution.
        title: the figure title (video name, model, class...).
        tracks: ``(class name, attribution (n,))`` per followed class, on one scale.
        evidence_floor: draw ``evidence_floor`` x the peak target score as a dotted line.
        evidence_threshold: instead, draw this target score as that line (the level at which
            frames have evidence, summary.json's ``evidence_threshold``).
        figsize: inches; with ``dpi`` gives the pixel size (default 1200 x 600, 90 pixels
            taller per track).
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
    _check_lengths(times, attr, score, tracks)
    if figsize is None:
        figsize = (_FIG_SIZE_IN[0], _FIG_SIZE_IN[1] + _TRACK_IN * len(tracks))
    fig = Figure(figsize=figsize, dpi=dpi)
    FigureCanvasAgg(fig)
    has_thumbs = any(thumb is not None for _, thumb in keyframes)
    ax_attr, ax_score, lanes, thumbs_cell = _panels(fig, len(tracks), has_thumbs)
    fig.text(*_TITLE_XY, title, fontsize=_TITLE_SIZE, ha="left", va="top")
    floor_level = _draw_curves(
        ax_attr, ax_score, times, attr, score, evidence_floor, evidence_threshold
    )
    _draw_lanes(lanes, times, tracks)
    _style_axes(ax_attr, ax_score, lanes)
    _mark_events(ax_attr, ax_score, segments, keyframes)
    _legend(fig, floor=floor_level is not None, segments=len(segments) > 0)
    if has_thumbs:
        _thumbnail_row(fig, thumbs_cell, keyframes)
    fig.align_ylabels([ax_attr, ax_score, *lanes])
    fig.subplots_adjust(**_MARGINS, bottom=_BOTTOM_THUMBS if has_thumbs else _BOTTOM)
    with atomic_write(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    return path


def _check_lengths(
    times: np.ndarray,
    attr: np.ndarray,
    score: np.ndarray,
    tracks: Sequence[tuple[str, np.ndarray]],
) -> None:
    if not (len(times) == len(attr) == len(score)):
        raise ValueError(
            f"times_s, attribution and target_score differ in length: "
            f"{len(times)}, {len(attr)}, {len(score)}"
        )
    for name, curve in tracks:
        if len(curve) != len(times):
            raise ValueError(f"track {name!r} has {len(curve)} frames, times_s {len(times)}")


def _panels(fig: Any, n_tracks: int, has_thumbs: bool) -> tuple[Any, Any, list[Any], Any]:
    """The axes of the attribution, the target score and each track, stacked on one time axis;
    with thumbnails, the cell under them that holds their row (else None)."""
    outer: Any = None
    panels: Any
    ratios = [_ATTR_RATIO, _SCORE_RATIO] + [_TRACK_RATIO] * n_tracks
    if has_thumbs:
        outer = fig.add_gridspec(
            2,
            1,
            height_ratios=[_ATTR_RATIO + _SCORE_RATIO + _TRACK_RATIO * n_tracks, _THUMBS_RATIO],
            hspace=_THUMBS_SPACE,
        )
        panels = outer[0].subgridspec(len(ratios), 1, height_ratios=ratios, hspace=_PANEL_SPACE)
    else:
        panels = fig.add_gridspec(len(ratios), 1, height_ratios=ratios, hspace=_PANEL_SPACE)
    ax_attr = fig.add_subplot(panels[0])
    ax_score = fig.add_subplot(panels[1], sharex=ax_attr)
    lanes = [fig.add_subplot(panels[2 + k], sharex=ax_attr) for k in range(n_tracks)]
    return ax_attr, ax_score, lanes, None if outer is None else outer[1]


def _draw_curves(
    ax_attr: Any,
    ax_score: Any,
    times: np.ndarray,
    attr: np.ndarray,
    score: np.ndarray,
    evidence_floor: float | None,
    evidence_threshold: float | None,
) -> float | None:
    """The attribution (filled) and the target score on its own scale, with the evidence floor
    dotted; returns the floor's score (None: no floor drawn)."""
    if len(times):
        ax_attr.fill_between(times, attr, color=_ATTR_COLOR, alpha=_ATTR_ALPHA, linewidth=0)
        ax_attr.plot(times, attr, color=_ATTR_COLOR, linewidth=_LINE_WIDTH)
        ax_score.plot(times, score, color=_SCORE_COLOR, linewidth=_LINE_WIDTH)
        lo, hi = float(times[0]), float(times[-1])
        ax_attr.set_xlim(lo, hi if hi > lo else lo + 1.0)
        top = float(np.nanmax(attr)) if np.isfinite(attr).any() else 0.0
        ax_attr.set_ylim(0.0, top * _ATTR_HEADROOM if top > 0 else 1.0)
    else:
        ax_attr.text(0.5, 0.5, "no analysed frames", transform=ax_attr.transAxes, ha="center")
    ceiling = score_axis_top(score)
    floor_level = evidence_level(score, evidence_floor, evidence_threshold)
    ax_score.set_ylim(0.0, ceiling)
    ax_attr.set_ylabel("attribution")
    ax_score.set_ylabel(f"target score\n(0 to {ceiling:g})")
    if floor_level is not None:
        ax_score.axhline(floor_level, color=_FLOOR_COLOR, linestyle=":", linewidth=_MARK_WIDTH)
    return floor_level


def _style_axes(ax_attr: Any, ax_score: Any, lanes: list[Any]) -> None:
    """Labels, time ticks (on the bottom panel only), a light grid, no top and right spines."""
    if lanes:
        lanes[0].set_ylabel("tracks\n(one scale)")
    (lanes[-1] if lanes else ax_score).set_xlabel("time (m:ss)")
    ticks, labels = _time_ticks(*ax_attr.get_xlim())
    ax_attr.set_xticks(ticks, labels)
    for ax in (ax_attr, ax_score, *lanes[:-1]) if lanes else (ax_attr,):
        ax.tick_params(labelbottom=False)
    for ax in (ax_attr, ax_score, *lanes):
        ax.grid(True, color=_GRID_COLOR, linewidth=_GRID_WIDTH)
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)


def _mark_events(
    ax_attr: Any,
    ax_score: Any,
    segments: Sequence[tuple[float, float]],
    keyframes: Sequence[tuple[float, np.ndarray | None]],
) -> None:
    """Segments shaded and keyframes dashed in the first two panels; the keyframes' rank
    numbers just above the attribution panel, at each keyframe's time."""
    for ax in (ax_attr, ax_score):
        for start_s, end_s in segments:
            ax.axvspan(
                float(start_s),
                float(end_s),
                color=_SEGMENT_COLOR,
                alpha=_SEGMENT_ALPHA,
                linewidth=0,
            )
        for time_s, _ in keyframes:
            ax.axvline(float(time_s), color=_KEY_COLOR, linestyle="--", linewidth=_MARK_WIDTH)
    for rank, (time_s, _) in enumerate(keyframes, start=1):
        ax_attr.annotate(
            str(rank),
            xy=(float(time_s), 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(0, 2),  # points above the panel
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=_SMALL,
            color="white",
            bbox={"boxstyle": "circle,pad=0.2", "fc": _KEY_COLOR, "ec": "none"},
        )


def _legend(fig: Any, *, floor: bool, segments: bool) -> None:
    """One row at the top right: what the colours and lines mean."""
    legend = [
        _patch(_ATTR_COLOR, "attribution"),
        _line(_KEY_COLOR, "keyframe"),
    ]
    if floor:
        legend.append(_line(_FLOOR_COLOR, "evidence floor", linestyle=":"))
    if segments:
        legend.append(_patch(_SEGMENT_COLOR, "segment", alpha=_SEGMENT_ALPHA))
    fig.legend(
        handles=legend,
        loc="upper right",
        bbox_to_anchor=_LEGEND_XY,
        fontsize=_SMALL,
        frameon=False,
        ncol=len(legend),
    )


def _patch(color: str, label: str, alpha: float = _PATCH_ALPHA) -> Any:
    from matplotlib.patches import Patch

    return Patch(facecolor=color, alpha=alpha, label=label)


def _line(color: str, label: str, linestyle: Any = "--") -> Any:
    from matplotlib.lines import Line2D

    return Line2D([0], [0], color=color, linestyle=linestyle, label=label)


def score_axis_top(target_score: np.ndarray) -> float:
    """The top of the target score's axis, here and on the review page's score lane: the
    :func:`nice_ceiling` of 1.1 x the highest score (0.043 -> 0.05; a peak near 1 -> 1)."""
    score = np.asarray(target_score, dtype=np.float64)
    finite = score[np.isfinite(score)]
    return nice_ceiling(_SCORE_HEADROOM * float(finite.max()) if len(finite) else 0.0)


def evidence_level(
    target_score: np.ndarray,
    evidence_floor: float | None,
    evidence_threshold: float | None = None,
) -> float | None:
    """The score at which a frame has evidence, drawn dotted on the score axis here and on the
    review page: ``evidence_threshold`` (summary.json's, the rule's own level) when given, else
    ``evidence_floor`` x the highest score; None without either or without a score."""
    if evidence_threshold is not None and np.isfinite(evidence_threshold):
        return float(evidence_threshold) if evidence_threshold > 0 else None
    score = np.asarray(target_score, dtype=np.float64)
    finite = score[np.isfinite(score)]
    peak = float(finite.max()) if len(finite) else 0.0
    if not evidence_floor or not peak > 0:
        return None
    return float(evidence_floor) * peak


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 x 10^k at or above ``value``; 1.0 for 0 and from 0.5 to
    1.1 (probabilities stop at 1: a peak near 1 keeps the 0-1 scale). Above 1.1 (an object
    detector's detection mass, a sum of scores) the scale grows the same way: 2, 2.5, 5, 10…"""
    if not np.isfinite(value) or value <= 0 or 0.5 < value <= _SCORE_HEADROOM * (1 + 1e-9):
        return 1.0
    exponent = np.floor(np.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        candidate = step * 10.0**exponent
        if candidate >= value * (1 - 1e-9):
            return float(f"{candidate:.6g}")
    return 1.0


def _draw_lanes(lanes: list[Any], times: np.ndarray, tracks: Sequence[tuple[str, Any]]) -> None:
    """One small panel per followed class, all on the same attribution scale."""
    curves = [np.asarray(curve, dtype=np.float64) for _, curve in tracks]
    top = max((float(np.nanmax(c)) for c in curves if len(c)), default=0.0)
    for k, (ax, (name, _), curve) in enumerate(zip(lanes, tracks, curves, strict=True)):
        color = _TRACK_COLORS[k % len(_TRACK_COLORS)]
        if len(times):
            ax.fill_between(times, curve, color=color, alpha=_TRACK_ALPHA, linewidth=0)
            ax.plot(times, curve, color=color, linewidth=_TRACK_LINE_WIDTH)
        ax.set_ylim(0.0, top * _TRACK_HEADROOM if top > 0 else 1.0)
        # The shared scale, stated on every lane: 0 and the highest attribution of any track.
        ax.set_yticks([0.0, top] if top > 0 else [0.0])
        ax.set_yticklabels(["0", f"{top:.3g}"] if top > 0 else ["0"], fontsize=_SMALL)
        # The class' name in the lane's top left corner.
        ax.text(0.005, 0.92, name, transform=ax.transAxes, ha="left", va="top", fontsize=_SMALL)


def _thumbnail_row(
    fig: Any, cell: Any, keyframes: Sequence[tuple[float, np.ndarray | None]]
) -> None:
    """One small image per keyframe, in time order, titled ``#rank  t s``."""
    ranked = sorted(
        ((float(t), rank, thumb) for rank, (t, thumb) in enumerate(keyframes, start=1)),
        key=lambda item: item[0],
    )
    n_slots = max(len(ranked), _THUMB_SLOTS)
    sub = cell.subgridspec(1, n_slots, wspace=_THUMB_SPACE)
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
            spine.set_linewidth(_THUMB_BORDER)
        ax.set_title(f"#{rank}  {clock(time_s)}", fontsize=_THUMB_TITLE, pad=_THUMB_PAD)


#: Steps of the time axis, in seconds (the review page's timeline picks from the same list).
_TIME_STEPS = (0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200)


def _time_ticks(lo: float, hi: float) -> tuple[np.ndarray, list[str]]:
    """About eight ticks over [lo, hi] at a round number of seconds or minutes, labelled as
    every rendered time is (:func:`~videocam.render.timefmt.clock`), with the decimals the
    step needs."""
    step = next((s for s in _TIME_STEPS if s >= (hi - lo) / _TIME_TICKS), _TIME_STEPS[-1])
    ticks = np.arange(np.ceil(lo / step - 1e-9) * step, hi + step * 1e-6, step)
    digits = 0 if step >= 1 else 1
    return ticks, [clock(float(t), digits) for t in ticks]
