"""Rendering: what a reviewer looks at (clip, plot, images, review pages) and the atomic file
writers.

- :mod:`~videocam.render.files`: atomic writers (CSV, JSON, ``.npy``) and the output folder.
- :mod:`~videocam.render.overlay`: colormap lookup tables, bilinear map resizing, heatmap
  blending and boxes, in pure numpy.
- :mod:`~videocam.render.video`: the annotated clip (heatmap + timeline strip, H.264).
- :mod:`~videocam.render.timeline`: the timeline plot (matplotlib).
- :mod:`~videocam.render.keyframes`: the keyframe images and their thumbnails.
- :mod:`~videocam.render.curves`: the deletion / insertion curves of ``videocam evaluate``.
- :mod:`~videocam.render.report`: the review pages (``report.html``) of a video, a batch and an
  evaluation: self-contained HTML over the files of their folder.

The renderers take plain arrays, tables and paths; which files an analysis writes, and under
which names, is decided above them (:mod:`videocam.analysis.outputs`).

matplotlib, PIL and PyAV are imported inside the functions that use them.
"""

from __future__ import annotations

from videocam.render.files import (
    atomic_write,
    ensure_output_dir,
    write_csv,
    write_json,
    write_npy,
)
from videocam.render.keyframes import (
    KeyframeImages,
    keyframe_image_name,
    render_keyframes,
)
from videocam.render.overlay import blend_heatmap, colormap_lut, draw_box, resize_bilinear
from videocam.render.timeline import render_timeline
from videocam.render.video import render_annotated_clip

__all__ = [
    "KeyframeImages",
    "atomic_write",
    "blend_heatmap",
    "colormap_lut",
    "draw_box",
    "ensure_output_dir",
    "keyframe_image_name",
    "render_annotated_clip",
    "render_keyframes",
    "render_timeline",
    "resize_bilinear",
    "write_csv",
    "write_json",
    "write_npy",
]
