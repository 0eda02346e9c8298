"""Keyframe images: each keyframe at full resolution with its heatmap, box and a caption (and,
for object detectors, the explained class's detections with their scores).

The frames are read with one random-access call (sought directly, not streamed), so this costs a
few seeks whatever the video's length. The annotated images are also returned as thumbnails for
the timeline plot, so the caller does not decode them twice.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from videocam.render.files import atomic_write, ensure_output_dir
from videocam.render.overlay import blend_heatmap, colormap_lut, draw_box, resize_bilinear
from videocam.render.timefmt import clock

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "KEYFRAME_DIR",
    "KeyframeImages",
    "keyframe_image_name",
    "render_keyframes",
]

#: Folder of the keyframe images inside the output folder.
KEYFRAME_DIR = "keyframes"

_BOX_COLOR = (255, 255, 255)
#: Detections of the explained class other than the keyframe's box (which is drawn white).
_DETECTION_COLOR = (80, 255, 120)
#: The keyframe's box is one pixel wide per this many pixels of the frame's shorter side, at
#: least _BOX_MIN_WIDTH; the other detections' half as wide.
_PIXELS_PER_BOX_WIDTH, _BOX_MIN_WIDTH = 180, 2
_JPEG_QUALITY = 90
_COLUMNS = ("rank", "frame_index", "time_s", "attribution", "x0", "y0", "x1", "y1")

CamLookup = Mapping[int, np.ndarray] | Callable[[int], np.ndarray | None]
#: Per frame index: (box (x0, y0, x1, y1) in original pixels, caption) of each detection drawn.
DetectionLookup = Mapping[int, Sequence[tuple[Sequence[float], str]]]


@dataclass(frozen=True)
class KeyframeImages:
    """What :func:`render_keyframes` wrote.

    Attributes:
        paths: relative paths (``keyframes/rank01_frame000123.jpg``) in rank order.
        times_s: presentation time of each keyframe, in rank order.
        thumbnails: uint8, shape (h, w, 3) each: the annotated images (no caption) scaled to
            the thumbnail height, in rank order.
    """

    paths: list[str]
    times_s: list[float]
    thumbnails: list[np.ndarray]

    def for_timeline(self) -> list[tuple[float, np.ndarray | None]]:
        """``(time_s, thumbnail)`` pairs in rank order, as :func:`render_timeline` takes them."""
        return list(zip(self.times_s, self.thumbnails, strict=True))


def keyframe_image_name(rank: int, frame_index: int) -> str:
    """Relative path of a keyframe image: ``keyframes/rank01_frame000123.jpg``."""
    return f"{KEYFRAME_DIR}/rank{int(rank):02d}_frame{int(frame_index):06d}.jpg"


def _lookup(cams: CamLookup, frame_index: int) -> np.ndarray | None:
    if callable(cams):
        return cams(frame_index)
    try:
        return cams[frame_index]
    except KeyError as exc:
        raise ValueError(f"cams has no map for keyframe at frame {frame_index}") from exc


def _caption(image: Any, text: str) -> None:
    """Draw ``text`` in a translucent dark box at the top-left corner of a PIL image."""
    from PIL import Image, ImageDraw, ImageFont

    size = max(12, round(min(image.size) * 0.035))
    font = ImageFont.load_default(size=size)
    left, top, right, bottom = font.getbbox(text)
    # Narrow frames: shrink the font so the whole caption fits the width.
    while right - left > image.size[0] * 0.96 and size > 6:
        size -= 1
        font = ImageFont.load_default(size=size)
        left, top, right, bottom = font.getbbox(text)
    pad = max(2, size // 3)
    box = (0, 0, right - left + 2 * pad, bottom - top + 2 * pad)
    overlay = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    draw.rectangle(box, fill=(0, 0, 0, 160))
    draw.text((pad - left, pad - top), text, font=font, fill=(255, 255, 255, 255))
    image.paste(overlay, (0, 0), overlay)


def _label(image: Any, box: np.ndarray, text: str, color: tuple[int, int, int]) -> None:
    """``text`` on a tag of ``color`` just above the box's top-left corner (inside the box
    when there is no room above)."""
    from PIL import Image, ImageDraw, ImageFont

    size = max(10, round(min(image.size) * 0.028))
    font = ImageFont.load_default(size=size)
    left, top, right, bottom = font.getbbox(text)
    pad = max(1, size // 5)
    tag_w, tag_h = right - left + 2 * pad, bottom - top + 2 * pad
    x = int(min(max(box[0], 0), max(0, image.size[0] - tag_w)))
    y = int(box[1] - tag_h if box[1] - tag_h >= 0 else max(box[1], 0))
    overlay = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    draw.rectangle((x, y, x + tag_w, y + tag_h), fill=(*color, 220))
    draw.text((x + pad - left, y + pad - top), text, font=font, fill=(0, 0, 0, 255))
    image.paste(overlay, (0, 0), overlay)


def _thumbnail(frame: np.ndarray, height: int) -> np.ndarray:
    from PIL import Image

    h, w = frame.shape[:2]
    if h <= height:
        return frame.copy()
    width = max(1, round(w * height / h))
    return np.asarray(Image.fromarray(frame).resize((width, height), Image.Resampling.LANCZOS))


def render_keyframes(
    video: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    keyframes: pd.DataFrame,
    cams: CamLookup,
    colormap: str = "jet",
    alpha: float = 0.5,
    backend: str = "auto",
    thumbnail_height: int = 160,
    detections: DetectionLookup | None = None,
) -> KeyframeImages:
    """Write one JPEG per keyframe and return the paths and thumbnails.

    Args:
        video: the source video.
        out_dir: the output folder; images go to ``out_dir/keyframes/`` (created).
        keyframes: columns ``rank``, ``frame_index``, ``time_s``, ``attribution`` and the box
            ``x0, y0, x1, y1`` in pixels of the original frame (x1/y1 exclusive; missing or -1:
            no box).
        cams: the map of a frame index, float (h, w) in [0, 1] with the video's one scale:
            a mapping or a callable (either may give None for no heatmap).
        colormap: matplotlib colormap name.
        alpha: heatmap opacity at heat 1.
        backend: decoder backend for :func:`videocam.io.open_video`.
        thumbnail_height: height of the returned thumbnails in pixels.
        detections: object detectors: per frame index, the explained class's detections
            (box in original pixels, caption such as ``car 0.93``), drawn with a tag each; the
            keyframe's own box (white) is usually the first of them.

    Returns:
        A :class:`KeyframeImages` in rank order.

    Raises:
        ValueError: a column is missing or a keyframe has no map.
        OutputError: an image cannot be written.
    """
    missing = [c for c in _COLUMNS if c not in keyframes.columns]
    if missing:
        raise ValueError(f"keyframes lacks columns {missing}")
    table = keyframes.sort_values("rank", kind="stable")
    folder = ensure_output_dir(Path(out_dir) / KEYFRAME_DIR)
    if table.empty:
        return KeyframeImages(paths=[], times_s=[], thumbnails=[])
    lut = colormap_lut(colormap)
    indices = table["frame_index"].to_numpy(dtype=np.int64)
    frames = _read_frames(video, indices, backend)
    ranks = table["rank"].to_numpy(dtype=np.int64)
    times = table["time_s"].to_numpy(dtype=np.float64)
    scores = table["attribution"].to_numpy(dtype=np.float64)
    corners = table[["x0", "y0", "x1", "y1"]].astype("Float64")  # missing: no box
    boxes = corners.to_numpy(dtype=np.float64, na_value=-1.0)
    paths: list[str] = []
    thumbs: list[np.ndarray] = []
    for k, frame in enumerate(frames):
        frame_index = int(indices[k])
        image = _annotated(
            frame,
            _lookup(cams, frame_index),
            lut=lut,
            alpha=alpha,
            box=boxes[k],
            detections=(detections or {}).get(frame_index, ()),
        )
        thumbs.append(_thumbnail(image, thumbnail_height))
        caption = (
            f"#{ranks[k]}  {clock(times[k])}  frame {frame_index}  attribution {scores[k]:.3g}"
        )
        name = keyframe_image_name(int(ranks[k]), frame_index)
        _save_captioned(image, caption, folder.parent / name)
        paths.append(name)
    return KeyframeImages(paths=paths, times_s=times.tolist(), thumbnails=thumbs)


def _read_frames(video: str | os.PathLike[str], indices: np.ndarray, backend: str) -> np.ndarray:
    """The frames at ``indices`` (in that order), read in one call in increasing order."""
    from videocam.io import open_video

    order = np.argsort(indices, kind="stable")
    with open_video(Path(video), backend=backend) as source:
        frames_sorted = source.read(indices[order])
    frames = np.empty_like(frames_sorted)
    frames[order] = frames_sorted
    return frames


def _annotated(
    frame: np.ndarray,
    cam: np.ndarray | None,
    *,
    lut: np.ndarray,
    alpha: float,
    box: np.ndarray,
    detections: Sequence[tuple[Sequence[float], str]],
) -> np.ndarray:
    """``frame`` with its heatmap (none without ``cam``), the other detections' boxes (green,
    thinner), the keyframe's ``box`` (white; none when a coordinate is negative) and a tag
    with each detection's caption."""
    from PIL import Image

    height, width = frame.shape[:2]
    image = frame
    if cam is not None:
        heat = resize_bilinear(np.nan_to_num(np.asarray(cam, dtype=np.float32)), (height, width))
        image = blend_heatmap(frame, heat, lut, alpha)
    thickness = max(_BOX_MIN_WIDTH, round(min(height, width) / _PIXELS_PER_BOX_WIDTH))
    box = np.rint(box).astype(np.int64)
    drawn = [
        (np.rint(np.asarray(b, dtype=np.float64)).astype(np.int64), text) for b, text in detections
    ]
    for other, _ in drawn:
        if not np.array_equal(other, box):
            draw_box(image, other, _DETECTION_COLOR, max(1, thickness // 2))
    if box.min() >= 0:
        draw_box(image, box, _BOX_COLOR, thickness)
    pil = Image.fromarray(image)
    for other, text in drawn:
        color = _BOX_COLOR if np.array_equal(other, box) else _DETECTION_COLOR
        _label(pil, other, text, color)
    return np.asarray(pil)


def _save_captioned(image: np.ndarray, caption: str, path: Path) -> None:
    """``image`` with ``caption`` at its top left, as a JPEG at ``path`` (atomically)."""
    from PIL import Image

    pil = Image.fromarray(image)
    _caption(pil, caption)
    with atomic_write(path) as tmp:
        pil.save(tmp, format="JPEG", quality=_JPEG_QUALITY)
