"""The annotated clip: the source with its heatmap blended in, under a timeline strip.

This is the render pass, the second of an analysis (docs/architecture.md): it decodes the source
sequentially at the output size as Y'CbCr 4:2:0 planes, blends each frame's low-resolution CAM
into them (upsampled bilinearly, then one 64K-entry lookup per sample that holds colormap and
opacity together), puts a timeline strip above the picture (attribution over the whole video,
keyframe ticks, a playhead, the class name and the current target score: at the top, where no
player's controls cover it) and encodes H.264 with PyAV in a
background thread. No RGB round trip: a typical H.264 source reaches the encoder without a
colour conversion. Memory stays flat: a few frames in flight at a time.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections import OrderedDict
from collections.abc import Sequence
from contextlib import suppress
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from videocam.errors import OutputError
from videocam.io import YUVFrame
from videocam.io.pyav_backend import plane_view
from videocam.render.chapters import Chapter
from videocam.render.files import atomic_write
from videocam.render.overlay import (
    blend_plane,
    colormap_lut,
    heat_levels,
    rgb_to_yuv420,
    yuv_blend_tables,
)
from videocam.render.timefmt import clock

logger = logging.getLogger(__name__)

__all__ = ["render_annotated_clip", "strip_height"]

#: Colours of the timeline strip (RGB).
_BG = (18, 19, 24)  # outside the analysed range, and behind the text
_PLOT_BG = (38, 40, 50)  # plot area over the analysed range
_BASELINE = (90, 92, 104)
_TICK = (255, 214, 64)  # keyframes
_PLAYHEAD = (255, 255, 255)
_TEXT = (240, 240, 240)
_TEXT_DIM = (170, 172, 182)

#: Output suffixes written as MP4/MOV with ``movflags=faststart`` (index first, for streaming).
_MP4_FORMATS = {"": "mp4", ".mp4": "mp4", ".m4v": "mp4", ".mov": "mov"}

#: libx264 settings of the annotated clip (``benchmarks/run.py`` times a plain transcode with them).
ENCODER_OPTIONS: dict[str, str] = {"crf": "20", "preset": "veryfast"}


def strip_height(picture_height: int) -> int:
    """Height in pixels of the timeline strip above a picture of the given height.

    About a tenth of the picture, at least 48 and at most 160 pixels, even.
    """
    height = min(max(round(picture_height * 0.1), 48), 160)
    return height + height % 2


def _even(value: int) -> int:
    return value + value % 2


class _TextPatches:
    """Text rendered once with PIL and reused as pixel patches (a bounded cache)."""

    def __init__(self, row_height: int, background: tuple[int, int, int]) -> None:
        from PIL import ImageFont

        self.row_height = row_height
        self.background = background
        self.font: Any = ImageFont.load_default(size=max(8, round(row_height * 0.78)))
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
        if len(self._cache) > 512:
            self._cache.popitem(last=False)
        return patch


def _paste(dst: np.ndarray, patch: np.ndarray, x: int, y: int = 0) -> None:
    """Copy ``patch`` into ``dst`` at column ``x`` (may be negative), clipped to ``dst``."""
    height, width = patch.shape[:2]
    x0, x1 = max(x, 0), min(x + width, dst.shape[1])
    y0, y1 = max(y, 0), min(y + height, dst.shape[0])
    if x0 < x1 and y0 < y1:
        dst[y0:y1, x0:x1] = patch[y0 - y : y1 - y, x0 - x : x1 - x]


class _TimelineStrip:
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
        text_h = max(12, round(height * 0.36))
        self.text_h = text_h
        self.plot_y0 = text_h + 1
        self.plot_y1 = height - 2  # exclusive; two rows of margin at the bottom
        self.text = _TextPatches(text_h, _BG)
        self.line_w = max(1, round(width / 800))  # keyframe ticks; the playhead is one wider
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
        marker = max(3, plot_h // 6)
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
        cap = max(3, (self.plot_y1 - self.plot_y0) // 6)
        for row in range(cap):  # a triangle pointing up at the bottom of the playhead
            half = cap - 1 - row
            cap_lo, cap_hi = max(x - half, 0), min(x + half + 1, self.width)
            out[self.plot_y1 - 1 - row, cap_lo:cap_hi] = _PLAYHEAD
        pad = max(3, self.text_h // 4)
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
        top = _even(self.text_h)  # the text row, whole
        left, right = first - first % 2, _even(last)  # the playhead, below it
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


def _map_positions(
    frame_indices: np.ndarray, n_frames: int
) -> tuple[np.ndarray, tuple[int, int] | None]:
    """For each source frame, the position in ``frame_indices`` of the map it shows (-1: none).

    A frame shows the map of the nearest analysed frame at or before it. The analysed range ends
    one typical sampling step after the last analysed frame (so the frames a stride skipped at
    the end keep its map); frames before the first or after the range show none.
    """
    positions = np.full(n_frames, -1, dtype=np.int64)
    if len(frame_indices) == 0:
        return positions, None
    step = int(np.median(np.diff(frame_indices))) if len(frame_indices) > 1 else 1
    first = int(frame_indices[0])
    last = min(int(frame_indices[-1]) + max(step, 1) - 1, n_frames - 1)
    span = np.arange(first, last + 1)
    positions[first : last + 1] = np.searchsorted(frame_indices, span, side="right") - 1
    return positions, (first, last)


def _check_inputs(
    frame_indices: np.ndarray,
    cams: np.ndarray,
    attribution: np.ndarray,
    target_score: np.ndarray,
    alpha: float,
    render_size: Sequence[int] | None,
) -> None:
    n = len(frame_indices)
    if frame_indices.ndim != 1 or (n > 1 and np.any(np.diff(frame_indices) <= 0)):
        raise ValueError("frame_indices must be a strictly increasing 1-D array")
    if cams.ndim != 3 or cams.shape[0] != n:
        raise ValueError(f"cams must have shape ({n}, h, w), got {cams.shape}")
    for name, values in (("attribution", attribution), ("target_score", target_score)):
        if values.shape != (n,):
            raise ValueError(f"{name} must have shape ({n},), got {values.shape}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if render_size is not None and (len(render_size) != 2 or min(render_size) < 1):
        raise ValueError(f"render_size must be (H, W) with positive values, got {render_size}")


def _close_quietly(container: Any) -> None:
    """Close a container on the error path without masking the original exception."""
    import av

    with suppress(av.FFmpegError, OSError):
        container.close()


def container_chapters(chapters: Sequence[Chapter]) -> list[Any]:
    """Chapters as PyAV's ``Container.set_chapters`` takes them (milliseconds, ``title``)."""
    previous_end = 0
    entries: list[Any] = []
    for number, chapter in enumerate(chapters, start=1):
        if chapter.end_ms <= chapter.start_ms or chapter.start_ms < previous_end:
            raise ValueError(f"chapters must be in order and not overlap: {chapter}")
        previous_end = chapter.end_ms
        entries.append(
            {
                "id": number,
                "start": chapter.start_ms,
                "end": chapter.end_ms,
                "time_base": Fraction(1, 1000),
                "metadata": {"title": " ".join(chapter.title.split())},
            }
        )
    return entries


def _time_base(times_s: np.ndarray, fps: Fraction) -> Fraction:
    """1/fps when every time lies on that grid (constant frame rate), else 1/90000 s."""
    if fps > 0 and len(times_s):
        ticks = times_s * float(fps)
        if np.all(np.abs(ticks - np.rint(ticks)) < 1e-3):
            return 1 / fps
    return Fraction(1, 90000)


def render_annotated_clip(
    video: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    *,
    frame_indices: np.ndarray,
    cams: np.ndarray,
    attribution: np.ndarray,
    target_score: np.ndarray,
    keyframe_indices: np.ndarray | Sequence[int],
    label: str,
    render_size: tuple[int, int] | None = None,
    colormap: str = "jet",
    alpha: float = 0.5,
    chapters: Sequence[Chapter] = (),
    progress: bool = False,
) -> Path:
    """Write the annotated clip: every source frame with its heatmap, under a timeline strip.

    Args:
        video: the source video.
        out_path: the .mp4 to write (atomically).
        frame_indices: int64, shape (n,): strictly increasing source indices that were analysed.
        cams: float16/float32, shape (n, h, w), in [0, 1] with one scale for the whole video.
        attribution: float, shape (n,), >= 0: drawn as the curve of the strip.
        target_score: float, shape (n,), in [0, 1]: shown as text next to ``label``.
        keyframe_indices: int, shape (k,): source indices of the keyframes (ticks on the strip).
        label: the class name.
        render_size: (H, W) of the picture; default the source's own size.
        colormap: matplotlib colormap name of the heatmap.
        alpha: heatmap opacity at heat 1 (opacity ``alpha * heat * (2 - heat)``).
        chapters: chapters of the clip, in time order and not overlapping
            (:func:`videocam.render.chapters.analysis_chapters`): written as container
            chapters, which FFmpeg's MP4/MOV muxer stores twice, as a QuickTime chapter track
            and as Nero ``chpl`` chapters, so that mpv, VLC and QuickTime list them.
        progress: show a tqdm progress bar.

    Frames between analysed frames (stride > 1) show the map of the nearest analysed frame at or
    before them; frames outside the analysed range show none. The output is H.264 (libx264,
    yuv420p, crf 20, faststart) of size ``(strip + H, W)``, both rounded up to even numbers (the
    strip on top: players draw their controls over the bottom of a picture), with
    the source's frame rate, timestamps and colour tags (see
    :attr:`videocam.io.PyAVSource.yuv_colour`). The source is streamed with PyAV and blended
    in its own Y'CbCr planes, so a typical H.264 source goes to the encoder without any colour
    conversion; libx264 runs in a background thread, overlapped with the blending.

    Returns:
        ``out_path`` as a Path.

    Raises:
        VideoOpenError, DecodeError: the source cannot be read.
        OutputError: the clip cannot be written.
    """
    import av

    from videocam.io import PyAVSource

    out_path = Path(out_path)
    frame_indices = np.asarray(frame_indices, dtype=np.int64).reshape(-1)
    cams = np.asarray(cams)
    attribution = np.asarray(attribution, dtype=np.float64).reshape(-1)
    target_score = np.asarray(target_score, dtype=np.float64).reshape(-1)
    keyframe_indices = np.asarray(keyframe_indices, dtype=np.int64).reshape(-1)
    _check_inputs(frame_indices, cams, attribution, target_score, alpha, render_size)
    chapter_entries = container_chapters(chapters)
    lut = colormap_lut(colormap)

    # The render pass streams with PyAV: it hands out the decoder's Y'CbCr
    # planes, and stays flat in memory next to libx264 (decord held ~1 GB resident here).
    source = PyAVSource(Path(video))
    with source:
        meta = source.meta
        colour = source.yuv_colour
        n_frames = meta.n_frames
        for name, values in (
            ("frame_indices", frame_indices),
            ("keyframe_indices", keyframe_indices),
        ):
            if len(values) and (values.min() < 0 or values.max() >= n_frames):
                raise ValueError(f"{name} must lie in [0, {n_frames}) for {meta.path}")
        height, width = (
            (int(render_size[0]), int(render_size[1]))
            if render_size is not None
            else (meta.height, meta.width)
        )
        decode_size = None if (height, width) == (meta.height, meta.width) else (height, width)
        times = np.asarray(source.times_s, dtype=np.float64)
        positions, analysed = _map_positions(frame_indices, n_frames)
        # The picture is padded to even sizes (4:2:0) by repeating its last row and column.
        out_w, pic_h = _even(width), _even(height)
        strip_h = strip_height(height)
        out_h = pic_h + strip_h
        strip = _TimelineStrip(
            width=out_w,
            height=strip_h,
            span_s=float(times[-1]),
            times_s=times[frame_indices],
            attribution=np.maximum(np.nan_to_num(attribution), 0.0),
            analysed_s=None if analysed is None else (times[analysed[0]], times[analysed[1]]),
            keyframe_times_s=times[keyframe_indices],
            label=label,
            lut=lut,
        )
        tables = yuv_blend_tables(colormap, alpha, colour.matrix)
        blender = _PlaneBlender(cams, tables, (height, width))
        time_base = _time_base(times, meta.fps)

        from tqdm.auto import tqdm

        # mp4 unless the name asks for another container (then PyAV picks it from the suffix).
        fmt = _MP4_FORMATS.get(out_path.suffix.lower())
        options = {"movflags": "+faststart"} if fmt else {}
        with (
            atomic_write(out_path) as tmp,
            tqdm(total=n_frames, unit="frame", desc=out_path.name, disable=not progress) as bar,
        ):
            try:
                container = av.open(str(tmp), "w", format=fmt, container_options=options)
            except av.FFmpegError as exc:
                raise OutputError(f"{out_path}: cannot write: {exc}") from exc
            try:
                stream: Any = container.add_stream("libx264", rate=meta.fps)
                stream.width, stream.height = out_w, out_h
                stream.pix_fmt = "yuv420p"
                stream.options = dict(ENCODER_OPTIONS)
                codec = stream.codec_context
                codec.time_base = time_base
                codec.colorspace = colour.colorspace
                codec.color_primaries = colour.primaries
                codec.color_trc = colour.trc
                codec.color_range = 1  # limited ("MPEG") range
                if chapter_entries:  # before the header, which the first packet writes
                    container.set_chapters(chapter_entries)
                with _EncoderThread(container, stream) as encoder:
                    last_pts = -1
                    for frame in source.iter_yuv420(size=decode_size):
                        out = av.VideoFrame(out_w, out_h, "yuv420p")
                        y, u, v = (plane_view(out, i) for i in range(3))
                        # The strip's rows, then the picture's (strip_h is even: so are the
                        # chroma rows' offsets).
                        strip_planes = (y[:strip_h], u[: strip_h // 2], v[: strip_h // 2])
                        y, u, v = y[strip_h:], u[strip_h // 2 :], v[strip_h // 2 :]
                        pos = int(positions[frame.index])
                        blender(frame, pos, y[:height, :width], u[: pic_h // 2], v[: pic_h // 2])
                        if out_w != width:  # odd width: repeat the last column
                            y[:height, width] = y[:height, width - 1]
                        if pic_h != height:  # odd height: repeat the last row
                            y[height] = y[height - 1]
                        score = None if pos < 0 else float(target_score[pos])
                        strip.draw_yuv(strip_planes, frame.time_s, score, colour.matrix)
                        last_pts = max(round(frame.time_s / time_base), last_pts + 1)
                        out.pts = last_pts
                        out.time_base = time_base
                        encoder.put(out)
                        bar.update(1)
                container.close()
            except av.FFmpegError as exc:
                raise OutputError(f"{out_path}: cannot encode: {exc}") from exc
            finally:
                _close_quietly(container)
    return out_path


class _PlaneBlender:
    """Blends a frame's heatmap into its Y'CbCr planes; the levels of the last map are kept,
    since frames between analysed ones (stride > 1) share their map."""

    def __init__(
        self,
        cams: np.ndarray,
        tables: tuple[np.ndarray, np.ndarray, np.ndarray],
        size: tuple[int, int],
    ) -> None:
        self.cams = cams
        self.tables = tables
        self.size = size
        self._pos = -1
        self._levels = np.zeros(size, dtype=np.uint8)
        self._scratch = np.empty(size, dtype=np.uint16)
        chroma = ((size[0] + 1) // 2, (size[1] + 1) // 2)
        self._chroma_scratch = np.empty(chroma, dtype=np.uint16)

    def __call__(
        self, frame: YUVFrame, pos: int, y: np.ndarray, u: np.ndarray, v: np.ndarray
    ) -> None:
        """Write ``frame`` with the map at ``pos`` (-1: none) blended in into ``y, u, v``."""
        if pos < 0:
            y[...], u[...], v[...] = frame.y, frame.u, frame.v
            return
        if pos != self._pos:
            self._levels = heat_levels(self.cams[pos], self.size)
            self._pos = pos
        levels = self._levels
        chroma_levels = levels[::2, ::2]  # the level of each 2x2 block's top-left sample
        table_y, table_u, table_v = self.tables
        blend_plane(frame.y, levels, table_y, out=y, scratch=self._scratch)
        blend_plane(frame.u, chroma_levels, table_u, out=u, scratch=self._chroma_scratch)
        blend_plane(frame.v, chroma_levels, table_v, out=v, scratch=self._chroma_scratch)


class _EncoderThread:
    """Encodes and muxes frames in a background thread.

    PyAV releases the GIL while libx264 works, so the next frames are decoded and blended in the
    meantime. The queue is short (a few frames), which bounds memory; an encoder error is raised
    at the next :meth:`put` or at the end, and the thread keeps draining the queue after one so
    that the producer never blocks on it.
    """

    def __init__(self, container: Any, stream: Any, depth: int = 4) -> None:
        self._container = container
        self._stream = stream
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="videocam-encoder", daemon=True)

    def __enter__(self) -> _EncoderThread:
        self._thread.start()
        return self

    def _run(self) -> None:
        while True:
            frame = self._queue.get()
            if frame is None:
                return
            if self._error is not None:
                continue  # drain
            try:
                self._container.mux(self._stream.encode(frame))
            except BaseException as exc:  # handed to the producer
                self._error = exc

    def put(self, frame: Any) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(frame)

    def __exit__(self, exc_type: object, exc: object, traceback: object) -> None:
        self._queue.put(None)
        self._thread.join()
        if exc_type is None:
            if self._error is not None:
                raise self._error
            self._container.mux(self._stream.encode(None))  # flush the delayed frames
