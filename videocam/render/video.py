"""The annotated clip: the source with its heatmap blended in, under a timeline strip.

This is the render pass, the second of an analysis (docs/architecture.md): it decodes the source
sequentially at the output size as Y'CbCr 4:2:0 planes, blends each frame's low-resolution CAM
into them (upsampled bilinearly, then one 64K-entry lookup per sample that holds colormap and
opacity together), puts a timeline strip above the picture (``strip.py``: attribution over the
whole video, keyframe ticks, a playhead, the class name and the current target score: at the
top, where no player's controls cover it) and encodes H.264 with PyAV in a background thread.
No RGB round trip: a typical H.264 source reaches the encoder without a colour conversion.
Memory stays flat: a few frames in flight at a time.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from videocam.errors import OutputError
from videocam.io import YUVFrame
from videocam.io.pyav_backend import plane_view
from videocam.render.chapters import Chapter
from videocam.render.files import atomic_write
from videocam.render.overlay import blend_plane, colormap_lut, heat_levels, yuv_blend_tables
from videocam.render.strip import TimelineStrip, even, strip_height

logger = logging.getLogger(__name__)

__all__ = ["render_annotated_clip", "strip_height"]

#: Output suffixes written as MP4/MOV with ``movflags=faststart`` (index first, for streaming).
_MP4_FORMATS = {"": "mp4", ".mp4": "mp4", ".m4v": "mp4", ".mov": "mov"}

#: libx264 settings of the annotated clip (``benchmarks/run.py`` times a plain transcode with them).
ENCODER_OPTIONS: dict[str, str] = {"crf": "20", "preset": "veryfast"}


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
    from videocam.io import PyAVSource

    out_path = Path(out_path)
    data = _ClipData.checked(
        frame_indices, cams, attribution, target_score, keyframe_indices, alpha, render_size
    )
    chapter_entries = container_chapters(chapters)
    lut = colormap_lut(colormap)
    # The render pass streams with PyAV: it hands out the decoder's Y'CbCr
    # planes, and stays flat in memory next to libx264 (decord held ~1 GB resident here).
    source = PyAVSource(Path(video))
    with source:
        meta = source.meta
        data.check_indices(meta.n_frames, meta.path)
        size = (
            (int(render_size[0]), int(render_size[1]))
            if render_size is not None
            else (meta.height, meta.width)
        )
        decode_size = None if size == (meta.height, meta.width) else size
        compose = _composer(
            source, data, size, label=label, lut=lut, colormap=colormap, alpha=alpha
        )
        frames = source.iter_yuv420(size=decode_size)
        _encode(frames, compose, out_path, source, chapter_entries, progress=progress)
    return out_path


@dataclass(frozen=True)
class _ClipData:
    """The per-frame inputs of :func:`render_annotated_clip`, as arrays of the right types."""

    frame_indices: np.ndarray
    cams: np.ndarray
    attribution: np.ndarray
    target_score: np.ndarray
    keyframe_indices: np.ndarray

    @classmethod
    def checked(
        cls,
        frame_indices: np.ndarray,
        cams: np.ndarray,
        attribution: np.ndarray,
        target_score: np.ndarray,
        keyframe_indices: np.ndarray | Sequence[int],
        alpha: float,
        render_size: Sequence[int] | None,
    ) -> _ClipData:
        """The arrays, their shapes checked with ``alpha`` and ``render_size`` (ValueError)."""
        data = cls(
            frame_indices=np.asarray(frame_indices, dtype=np.int64).reshape(-1),
            cams=np.asarray(cams),
            attribution=np.asarray(attribution, dtype=np.float64).reshape(-1),
            target_score=np.asarray(target_score, dtype=np.float64).reshape(-1),
            keyframe_indices=np.asarray(keyframe_indices, dtype=np.int64).reshape(-1),
        )
        _check_inputs(
            data.frame_indices, data.cams, data.attribution, data.target_score, alpha, render_size
        )
        return data

    def check_indices(self, n_frames: int, path: object) -> None:
        """Frame and keyframe indices inside a video of ``n_frames`` frames (ValueError)."""
        for name, values in (
            ("frame_indices", self.frame_indices),
            ("keyframe_indices", self.keyframe_indices),
        ):
            if len(values) and (values.min() < 0 or values.max() >= n_frames):
                raise ValueError(f"{name} must lie in [0, {n_frames}) for {path}")


def _composer(
    source: Any,
    data: _ClipData,
    size: tuple[int, int],
    *,
    label: str,
    lut: np.ndarray,
    colormap: str,
    alpha: float,
) -> _FrameComposer:
    """What turns each frame of ``source`` (a PyAVSource) into an output frame of a picture of
    ``size`` (H, W)."""
    height, width = size
    meta, matrix = source.meta, source.yuv_colour.matrix
    times = np.asarray(source.times_s, dtype=np.float64)
    positions, analysed = _map_positions(data.frame_indices, meta.n_frames)
    strip = TimelineStrip(
        width=even(width),
        height=strip_height(height),
        span_s=float(times[-1]),
        times_s=times[data.frame_indices],
        attribution=np.maximum(np.nan_to_num(data.attribution), 0.0),
        analysed_s=None if analysed is None else (times[analysed[0]], times[analysed[1]]),
        keyframe_times_s=times[data.keyframe_indices],
        label=label,
        lut=lut,
    )
    tables = yuv_blend_tables(colormap, alpha, matrix)
    return _FrameComposer(
        size=size,
        strip=strip,
        blender=_PlaneBlender(data.cams, tables, size),
        positions=positions,
        target_score=data.target_score,
        matrix=matrix,
        time_base=_time_base(times, meta.fps),
    )


class _FrameComposer:
    """The output frame of each source frame, in order: the strip's rows, then the picture's
    with the heatmap of its map blended in, padded to even sizes by repeating its last row and
    column (4:2:0); its timestamp on ``time_base``, strictly increasing."""

    def __init__(
        self,
        *,
        size: tuple[int, int],
        strip: TimelineStrip,
        blender: _PlaneBlender,
        positions: np.ndarray,
        target_score: np.ndarray,
        matrix: str,
        time_base: Fraction,
    ) -> None:
        self.height, self.width = size
        self.strip = strip
        self.blender = blender
        self.positions = positions
        self.target_score = target_score
        self.matrix = matrix
        self.time_base = time_base
        self.pic_h, self.out_w = even(self.height), even(self.width)
        self.strip_h = strip.height  # even: so are the chroma rows' offsets
        self.out_h = self.pic_h + self.strip_h
        self._last_pts = -1

    def __call__(self, frame: YUVFrame) -> Any:
        """The ``av.VideoFrame`` (yuv420p) of one source frame."""
        import av

        height, width, strip_h = self.height, self.width, self.strip_h
        out = av.VideoFrame(self.out_w, self.out_h, "yuv420p")
        y, u, v = (plane_view(out, i) for i in range(3))
        strip_planes = (y[:strip_h], u[: strip_h // 2], v[: strip_h // 2])
        y, u, v = y[strip_h:], u[strip_h // 2 :], v[strip_h // 2 :]
        pos = int(self.positions[frame.index])
        self.blender(frame, pos, y[:height, :width], u[: self.pic_h // 2], v[: self.pic_h // 2])
        if self.out_w != width:  # odd width: repeat the last column
            y[:height, width] = y[:height, width - 1]
        if self.pic_h != height:  # odd height: repeat the last row
            y[height] = y[height - 1]
        score = None if pos < 0 else float(self.target_score[pos])
        self.strip.draw_yuv(strip_planes, frame.time_s, score, self.matrix)
        self._last_pts = max(round(frame.time_s / self.time_base), self._last_pts + 1)
        out.pts = self._last_pts
        out.time_base = self.time_base
        return out


def _open_output(tmp: Path, out_path: Path) -> Any:
    """The output container at ``tmp``: mp4 unless ``out_path``'s name asks for another one
    (then PyAV picks it from the suffix)."""
    import av

    fmt = _MP4_FORMATS.get(out_path.suffix.lower())
    options = {"movflags": "+faststart"} if fmt else {}
    try:
        return av.open(str(tmp), "w", format=fmt, container_options=options)
    except av.FFmpegError as exc:
        raise OutputError(f"{out_path}: cannot write: {exc}") from exc


def _add_stream(container: Any, compose: _FrameComposer, fps: Fraction, colour: Any) -> Any:
    """The H.264 stream (:data:`ENCODER_OPTIONS`, yuv420p, limited range) of the composed
    frames, tagged with the source's colour (``colour``: :attr:`PyAVSource.yuv_colour`)."""
    stream: Any = container.add_stream("libx264", rate=fps)
    stream.width, stream.height = compose.out_w, compose.out_h
    stream.pix_fmt = "yuv420p"
    stream.options = dict(ENCODER_OPTIONS)
    codec = stream.codec_context
    codec.time_base = compose.time_base
    codec.colorspace = colour.colorspace
    codec.color_primaries = colour.primaries
    codec.color_trc = colour.trc
    codec.color_range = 1  # limited ("MPEG") range
    return stream


def _encode(
    frames: Iterable[YUVFrame],
    compose: _FrameComposer,
    out_path: Path,
    source: Any,
    chapter_entries: list[Any],
    *,
    progress: bool,
) -> None:
    """Compose and encode ``frames`` (those of ``source``, a PyAVSource) into ``out_path``
    (atomically), libx264 in a background thread."""
    import av
    from tqdm.auto import tqdm

    with (
        atomic_write(out_path) as tmp,
        tqdm(
            total=source.meta.n_frames, unit="frame", desc=out_path.name, disable=not progress
        ) as bar,
    ):
        container = _open_output(tmp, out_path)
        try:
            stream = _add_stream(container, compose, source.meta.fps, source.yuv_colour)
            if chapter_entries:  # before the header, which the first packet writes
                container.set_chapters(chapter_entries)
            with _EncoderThread(container, stream) as encoder:
                for frame in frames:
                    encoder.put(compose(frame))
                    bar.update(1)
            container.close()
        except av.FFmpegError as exc:
            raise OutputError(f"{out_path}: cannot encode: {exc}") from exc
        finally:
            _close_quietly(container)


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
            except BaseException as exc:  # noqa: BLE001 - handed to the producer, which re-raises it
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
