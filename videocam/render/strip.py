"""The timeline strip on top of the annotated clip: attribution over the whole video (as a
filled curve in the heatmap's colours), keyframe ticks, the playhead, the class name with the
current target score and the time.

The static part is drawn once in RGB and converted to Y'CbCr 4:2:0 once; per frame only the text
row and the playhead's columns are drawn and converted (:meth:`TimelineStrip.draw_yuv`).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np

from videocam.render.overlay import rgb_to_yuv420
from videocam.render.timefmt import clock

__all__ = ["TimelineStrip", "even", "strip_height"]

#: Colours of the timeline strip (RGB).
_BG = (18, 19, 24)  # outside the analysed range, and behind the text
_PLOT_BG = (38, 40, 50)  # plot area over the analysed range
_BASELINE = (90, 92, 104)
_TICK = (255, 214, 64)  # keyframes
_PLAYHEAD = (255, 255, 255)
_TEXT = (240, 240, 240)
_TEXT_DIM = (170, 172, 182)

#: The strip's height: this share of the picture's, within [_STRIP_MIN, _STRIP_MAX] pixels.
_STRIP_SHARE, _STRIP_MIN, _STRIP_MAX = 0.1, 48, 160
#: The text row: this share of the strip's height, at least _TEXT_MIN pixels; the font's size
#: this share of the row (room for descenders).
_TEXT_SHARE, _TEXT_MIN, _FONT_SHARE = 0.36, 12, 0.78
#: Texts kept rendered (the score and time change every frame; a bound on memory).
_TEXT_CACHE = 512
#: Keyframe ticks are one pixel wide per this many pixels of the strip's width.
_WIDTH_PER_LINE = 800
#: The triangles (keyframe markers, the playhead's cap): this fraction of the plot's height
#: (1/_MARKER_DIV), at least _MARKER_MIN rows.
_MARKER_DIV, _MARKER_MIN = 6, 3
#: The texts' margin: this fraction of the text row's height (1/_PAD_DIV), at least _PAD_MIN.
_PAD_DIV, _PAD_MIN = 4, 3


def strip_height(picture_height: int) -> int:
    """Height in pixels of the timeline strip above a picture of the given height.

    About a tenth of the picture, at least 48 and at most 160 pixels, even.
    """
    height = min(max(round(picture_height * _STRIP_SHARE), _STRIP_MIN), _STRIP_MAX)
    return height + height % 2


def even(value: int) -> int:
    """``value`` rounded up to an even number (4:2:0 planes have even sizes)."""
    return value + value % 2


class _TextPatches:
    """Text rendered once with PIL and reused as pixel patches (a bounded cache)."""

    def __init__(self, row_height: int, background: tuple[int, int, int]) -> None:
        from PIL import ImageFont

        self.row_height = row_height
        self.background = background
        self.font: Any = ImageFont.load_default(size=max(8, round(row_height * _FONT_SHARE)))
        # Vertical placement from fixed reference glyphs, so all texts share one baseline.
        top, bottom = self.font.getbbox("Ag0")[1::2]
        self._y = (row_height - (bottom - top)) / 2 - top
        self._cache: OrderedDict[tuple[str, tuple[int, int, int]], np.ndarray] = OrderedDict()

    def get(self, text: str, color: tuple[int, int, int] = _TEXT) -> np.ndarray:
        """uint8, shape (row_height, width, 3): ``text`` on the background colour."""
        key = (text, color)
        patch = self._cache.get(key)
        if patch is not None:
            self._cache.move_to_end(key)
            return patch
        from PIL import Image, ImageDraw

        width = max(1, int(np.ceil(self.font.getlength(text))) + 1)
        image = Image.new("RGB", (width, self.row_height), self.background)
        ImageDraw.Draw(image).text((0, self._y), text, font=self.font, fill=color)
        patch = np.asarray(image, dtype=np.uint8)
        self._cache[key] = patch
        if len(self._cache) > _TEXT_CACHE:
            self._cache.popitem(last=False)
        return patch


def _paste(dst: np.ndarray, patch: np.ndarray, x: int, y: int = 0) -> None:
    """Copy ``patch`` into ``dst`` at column ``x`` (may be negative), clipped to ``dst``."""
    height, width = patch.shape[:2]
    x0, x1 = max(x, 0), min(x + width, dst.shape[1])
    y0, y1 = max(y, 0), min(y + height, dst.shape[0])
    if x0 < x1 and y0 < y1:
        dst[y0:y1, x0:x1] = patch[y0 - y : y1 - y, x0 - x : x1 - x]


class TimelineStrip:
    """The strip above the picture: static part drawn once, playhead and text per frame."""

    def __init__(
        self,
        *,
        width: int,
        height: int,
        span_s: float,
        times_s: np.ndarray,
        attribution: np.ndarray,
        analysed_s: tuple[float, float] | None,
        keyframe_times_s: np.ndarray,
        label: str,
        lut: np.ndarray,
    ) -> None:
        self.width = width
        self.height = height
        self.span_s = span_s if span_s > 0 else 1.0
        self.label = label
        text_h = max(_TEXT_MIN, round(height * _TEXT_SHARE))
        self.text_h = text_h
        self.plot_y0 = text_h + 1
        self.plot_y1 = height - 2  # exclusive; two rows of margin at the bottom
        self.text = _TextPatches(text_h, _BG)
        # Keyframe ticks; the playhead is one wider.
        self.line_w = max(1, round(width / _WIDTH_PER_LINE))
        self.base = self._draw_base(times_s, attribution, analysed_s, keyframe_times_s, lut)
        self._yuv_base: tuple[str, tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None
        self._rgb = np.empty_like(self.base)

    def x_of(self, time_s: float | np.ndarray) -> Any:
        """Column of a time (seconds from the first frame)."""
        x = np.rint(np.asarray(time_s, dtype=np.float64) / self.span_s * (self.width - 1))
        return np.clip(x, 0, self.width - 1).astype(np.int64)

    def _draw_base(
        self,
        times_s: np.ndarray,
        attribution: np.ndarray,
        analysed_s: tuple[float, float] | None,
        keyframe_times_s: np.ndarray,
        lut: np.ndarray,
    ) -> np.ndarray:
        width, y0, y1 = self.width, self.plot_y0, self.plot_y1
        base = np.empty((self.height, width, 3), dtype=np.uint8)
        base[:] = _BG
        plot = base[y0:y1]
        plot_h = y1 - y0
        column_s = np.arange(width, dtype=np.float64) / max(width - 1, 1) * self.span_s
        value = np.zeros(width, dtype=np.float64)
        if analysed_s is not None and len(times_s):
            first_x, last_x = self.x_of(analysed_s[0]), self.x_of(analysed_s[1])
            plot[:, first_x : last_x + 1] = _PLOT_BG
            peak = float(np.max(attribution))
            norm = attribution / peak if peak > 0 else np.zeros_like(attribution)
            inside = (column_s >= times_s[0]) & (column_s <= times_s[-1])
            value[inside] = np.interp(column_s[inside], times_s, norm)
            # More frames than columns: keep every frame's peak visible.
            np.maximum.at(value, self.x_of(times_s), norm)
            # Held past the last analysed frame up to the end of the analysed range.
            value[(column_s > times_s[-1]) & (np.arange(width) <= last_x)] = norm[-1]
        bar = np.rint(value * plot_h).astype(np.int64)
        rows_from_bottom = np.arange(plot_h)[::-1, None]
        filled = rows_from_bottom < bar[None, :]
        colours = lut[np.rint(value * 255).astype(np.int64)]
        plot[filled] = np.broadcast_to(colours[None], (plot_h, width, 3))[filled]
        base[y1 - 1] = np.where(filled[-1][:, None], base[y1 - 1], _BASELINE)
        # Keyframe ticks: a half-transparent line and a triangle pointing down at the top.
        tick = np.asarray(_TICK, dtype=np.uint16)
        marker = max(_MARKER_MIN, plot_h // _MARKER_DIV)
        for x in np.unique(self.x_of(keyframe_times_s)).tolist():
            lo, hi = max(x - self.line_w // 2, 0), min(x - self.line_w // 2 + self.line_w, width)
            plot[:, lo:hi] = (plot[:, lo:hi] * np.uint16(2) + tick * np.uint16(3)) // 5
            for row in range(marker):
                half = marker - 1 - row
                plot[row, max(x - half, 0) : min(x + half + 1, width)] = _TICK
        return base

    def draw(self, out: np.ndarray, time_s: float, score: float | None) -> tuple[int, int]:
        """Write the strip for one frame into ``out`` (shape (height, width, 3)).

        Returns:
            ``(first, last + 1)``: the columns of the playhead; below the text row, nothing
            else differs from :attr:`base`.
        """
        out[...] = self.base
        x = int(self.x_of(time_s))
        width = self.line_w + 1
        lo, hi = max(x - width // 2, 0), min(x - width // 2 + width, self.width)
        out[self.plot_y0 : self.plot_y1, lo:hi] = _PLAYHEAD
        cap = max(_MARKER_MIN, (self.plot_y1 - self.plot_y0) // _MARKER_DIV)
        for row in range(cap):  # a triangle pointing up at the bottom of the playhead
            half = cap - 1 - row
            cap_lo, cap_hi = max(x - half, 0), min(x + half + 1, self.width)
            out[self.plot_y1 - 1 - row, cap_lo:cap_hi] = _PLAYHEAD
        pad = max(_PAD_MIN, self.text_h // _PAD_DIV)
        score_text = f"{self.label}   score {'–' if score is None else f'{score:.2f}'}"
        score_patch = self.text.get(score_text, _TEXT)
        _paste(out, score_patch, pad)
        time_patch = self.text.get(clock(time_s), _TEXT_DIM)
        time_x = self.width - pad - time_patch.shape[1]
        if time_x >= pad + score_patch.shape[1] + 2 * pad:  # narrow clips: the score only
            _paste(out, time_patch, time_x)
        return min(lo, max(x - cap + 1, 0)), max(hi, min(x + cap, self.width))

    def draw_yuv(
        self,
        planes: tuple[np.ndarray, np.ndarray, np.ndarray],
        time_s: float,
        score: float | None,
        matrix: str,
    ) -> None:
        """:meth:`draw` as 4:2:0 planes ``(y, u, v)`` (the strip's width and height are even).

        The static part is converted once; per frame only the text row and the columns of the
        playhead are, in 2x2-aligned blocks, which gives the same planes as converting the
        whole strip.
        """
        if self._yuv_base is None or self._yuv_base[0] != matrix:
            self._yuv_base = (matrix, rgb_to_yuv420(self.base, matrix))
        first, last = self.draw(self._rgb, time_s, score)
        for plane, base in zip(planes, self._yuv_base[1], strict=True):
            plane[...] = base
        top = even(self.text_h)  # the text row, whole
        left, right = first - first % 2, even(last)  # the playhead, below it
        _put_yuv420(planes, self._rgb[:top], 0, 0, matrix)
        _put_yuv420(planes, self._rgb[top:, left:right], top, left, matrix)


def _put_yuv420(
    planes: tuple[np.ndarray, np.ndarray, np.ndarray],
    rgb: np.ndarray,
    row: int,
    column: int,
    matrix: str,
) -> None:
    """Convert an RGB block (even sizes) and write it into 4:2:0 planes at an even position."""
    height, width = rgb.shape[:2]
    for i, converted in enumerate(rgb_to_yuv420(rgb, matrix)):
        step = 1 if i == 0 else 2
        y0, x0 = row // step, column // step
        planes[i][y0 : y0 + height // step, x0 : x0 + width // step] = converted
