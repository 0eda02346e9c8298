"""The deletion / insertion curves plot of ``videocam evaluate`` (matplotlib, no global state)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from videocam.render.files import atomic_write


def render_curves(path: str | os.PathLike[str], curves: dict[str, np.ndarray], title: str) -> Path:
    """Mean deletion and insertion curves, attribution order against random order.

    Args:
        path: the PNG to write (atomically).
        curves: ``deletion``, ``insertion``, ``deletion_random``, ``insertion_random``: each
            float, shape (steps + 1,), the target score relative to the untouched video.
        title: figure title.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4), dpi=100)
    FigureCanvasAgg(fig)
    for i, kind in enumerate(("deletion", "insertion")):
        ax = fig.add_subplot(1, 2, i + 1)
        for name, style, label in (
            (kind, "-", "attribution order"),
            (f"{kind}_random", "--", "random order"),
        ):
            if name in curves:
                y = np.asarray(curves[name], dtype=np.float64)
                x = np.linspace(0, 100, len(y))
                ax.plot(x, y, style, marker="o", markersize=3, label=label)
        ax.set_xlabel(f"frames {'removed' if kind == 'deletion' else 'inserted'} (%)")
        ax.set_ylabel("target score / untouched score")
        ax.set_title(f"{kind} ({'lower' if kind == 'deletion' else 'higher'} area is better)")
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    target = Path(path)
    with atomic_write(target) as tmp:
        fig.savefig(tmp, format="png")
    return target
