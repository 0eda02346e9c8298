"""Deterministic synthetic clips for tests, benchmarks, training and the demo.

A clip is a smooth random background with a few "distractor" squares that jitter in place and,
optionally, one *event*: a square of the same look that moves right or left, grows or shrinks
during a known frame interval. The classes differ only in how the object moves, so a model must
use motion to tell them apart, and the event's interval and per-frame box are known exactly.

A frame index can be barcoded into each frame (a band of 16 black/white cells across the top),
so tests can check that a decoder returns the frame they asked for, even after resizing and lossy
encoding.

Clips can be written with display-rotation metadata (``make_clip(..., rotation=90)``), a variable
frame rate (``times_s``) or exact pixels (``lossless``). Writers of damaged and otherwise awkward
files that only the tests need (audio-only, resolution changes, corrupt or truncated copies) live
in ``tests/support/media.py``.

Frames are ``(H, W, 3) uint8 RGB``; boxes are ``(x0, y0, x1, y1)`` in pixels, x1/y1 exclusive.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

#: Event classes, in the order the bundled model uses as class indices.
EVENT_CLASSES: tuple[str, ...] = ("background", "move_right", "move_left", "grow", "shrink")

BARCODE_BITS = 16
#: The colours of the squares (distractors and the event object), RGB.
PALETTE = np.array(
    [[230, 60, 50], [60, 200, 80], [70, 110, 240], [240, 210, 60], [220, 90, 220], [60, 220, 220]],
    dtype=np.uint8,
)


@dataclass(frozen=True)
class ClipSpec:
    """What to draw. Every random choice is derived from ``seed``.

    Attributes:
        n_frames: number of frames.
        size: (H, W) of the frames.
        fps: nominal frame rate.
        seed: seed of every random choice.
        event: one of :data:`EVENT_CLASSES` other than "background", or None for no event.
        event_start: first frame of the event (default: drawn from the seed).
        event_len: number of frames of the event (default: about a third of the clip).
        n_distractors: squares that jitter in place all clip long.
        barcode: draw the frame index in a band at the top of each frame.
    """

    n_frames: int = 64
    size: tuple[int, int] = (128, 160)
    fps: Fraction = Fraction(25)
    seed: int = 0
    event: str | None = "move_right"
    event_start: int | None = None
    event_len: int | None = None
    n_distractors: int = 3
    barcode: bool = False

    def __post_init__(self) -> None:
        if self.event is not None and self.event not in EVENT_CLASSES[1:]:
            raise ValueError(
                f"event must be one of {EVENT_CLASSES[1:]} or None, got {self.event!r}"
            )
        if self.n_frames < 1:
            raise ValueError(f"n_frames must be >= 1, got {self.n_frames}")
        if min(self.size) < 8:
            raise ValueError(f"size must be at least 8x8, got {self.size}")


@dataclass(frozen=True)
class ClipTruth:
    """Ground truth of a synthetic clip.

    Attributes:
        event: the event class, or None.
        label: class index in :data:`EVENT_CLASSES` (0 = background when there is no event).
        event_frames: (start, end) frame interval of the event, end exclusive; None without event.
        boxes: int32, shape (n_frames, 4): the event object's box per frame, -1 where absent.
    """

    event: str | None
    label: int
    event_frames: tuple[int, int] | None
    boxes: np.ndarray = field(repr=False)


@dataclass(frozen=True)
class SyntheticClip:
    """A clip written to disk, with its ground truth and presentation times."""

    path: Path
    spec: ClipSpec
    truth: ClipTruth
    times_s: np.ndarray = field(repr=False)

    @property
    def event_interval_s(self) -> tuple[float, float] | None:
        """(start_s, end_s): from the first event frame's time to the end of the last one."""
        if self.truth.event_frames is None:
            return None
        start, end = self.truth.event_frames
        frame_s = 1.0 / float(self.spec.fps)
        end_s = self.times_s[end] if end < len(self.times_s) else self.times_s[-1] + frame_s
        return float(self.times_s[start]), float(end_s)


# --------------------------------------------------------------------------------------------
# Drawing
# --------------------------------------------------------------------------------------------


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A smooth, low-contrast colour field (bilinear upsampling of a coarse random grid)."""
    coarse = rng.uniform(40, 110, size=(5, 6, 3))
    ys = np.linspace(0, coarse.shape[0] - 1, height)
    xs = np.linspace(0, coarse.shape[1] - 1, width)
    y0 = np.floor(ys).astype(int).clip(0, coarse.shape[0] - 2)
    x0 = np.floor(xs).astype(int).clip(0, coarse.shape[1] - 2)
    fy = (ys - y0)[:, None, None]
    fx = (xs - x0)[None, :, None]
    c00 = coarse[y0][:, x0]
    c01 = coarse[y0][:, x0 + 1]
    c10 = coarse[y0 + 1][:, x0]
    c11 = coarse[y0 + 1][:, x0 + 1]
    top = c00 * (1 - fx) + c01 * fx
    bottom = c10 * (1 - fx) + c11 * fx
    return (top * (1 - fy) + bottom * fy).astype(np.uint8)


def _barcode_band(height: int) -> int:
    return max(4, height // 10)


def draw_barcode(frame: np.ndarray, index: int) -> None:
    """Write ``index`` (16 bits, most significant first) into the top band of ``frame`` in place."""
    height, width = frame.shape[:2]
    band = _barcode_band(height)
    edges = np.linspace(0, width, BARCODE_BITS + 1).round().astype(int)
    for bit in range(BARCODE_BITS):
        on = (index >> (BARCODE_BITS - 1 - bit)) & 1
        frame[:band, edges[bit] : edges[bit + 1]] = 255 if on else 0


def read_barcode(frame: np.ndarray) -> int:
    """Read the index written by :func:`draw_barcode`, robust to resizing and lossy coding.

    Args:
        frame: uint8, shape (H, W, 3), possibly resized from the original.
    """
    height, width = frame.shape[:2]
    band = _barcode_band(height)
    edges = np.linspace(0, width, BARCODE_BITS + 1)
    gray = frame[: max(1, band - 1)].mean(axis=2)
    value = 0
    for bit in range(BARCODE_BITS):
        lo, hi = edges[bit], edges[bit + 1]
        margin = (hi - lo) / 4
        cell = gray[:, int(lo + margin) : max(int(lo + margin) + 1, int(hi - margin))]
        value = (value << 1) | int(cell.mean() > 127)
    return value


def _event_boxes(
    spec: ClipSpec, rng: np.random.Generator
) -> tuple[np.ndarray, tuple[int, int] | None]:
    """Per-frame boxes of the event object (-1 where absent) and the event interval."""
    n = spec.n_frames
    height, width = spec.size
    boxes = np.full((n, 4), -1, dtype=np.int32)
    if spec.event is None:
        return boxes, None
    length = spec.event_len if spec.event_len is not None else max(2, min(n, round(n / 3)))
    length = max(1, min(length, n))
    if spec.event_start is not None:
        start = spec.event_start
    else:
        start = int(rng.integers(n // 4, max(n // 4 + 1, n - length - n // 8 + 1)))
    start = max(0, min(start, n - length))
    top = _barcode_band(height) + 2
    side = max(4, min(height, width) // 5)
    t = np.linspace(0.0, 1.0, length)
    if spec.event in ("move_right", "move_left"):
        y = int(rng.integers(top, max(top + 1, height - side)))
        x_path = 2 + t * (width - side - 4)
        if spec.event == "move_left":
            x_path = x_path[::-1]
        for k, x in enumerate(x_path.round().astype(int)):
            boxes[start + k] = (x, y, x + side, y + side)
    else:
        big = max(side + 2, min(height - top, width) * 3 // 5)
        small = max(3, side // 2)
        sizes = small + t * (big - small)
        if spec.event == "shrink":
            sizes = sizes[::-1]
        cy = (top + height) / 2 + rng.uniform(-0.1, 0.1) * (height - top - big)
        cx = width / 2 + rng.uniform(-0.2, 0.2) * (width - big)
        for k, s in enumerate(sizes):
            half = s / 2
            boxes[start + k] = (
                round(cx - half),
                round(max(top, cy - half)),
                round(cx + half),
                round(min(height, cy + half)),
            )
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(-1, width)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(-1, height)
    return boxes, (start, start + length)


def make_truth(spec: ClipSpec) -> ClipTruth:
    """The ground truth of ``spec`` without drawing any frame."""
    boxes, interval = _event_boxes(spec, np.random.default_rng([spec.seed, 1]))
    label = 0 if spec.event is None else EVENT_CLASSES.index(spec.event)
    return ClipTruth(event=spec.event, label=label, event_frames=interval, boxes=boxes)


def iter_frames(spec: ClipSpec) -> Iterator[np.ndarray]:
    """Draw the clip frame by frame (constant memory), each ``(H, W, 3) uint8``."""
    height, width = spec.size
    rng = np.random.default_rng([spec.seed, 0])
    background = _background(rng, height, width)
    truth = make_truth(spec)
    top = _barcode_band(height) + 2
    side = max(4, min(height, width) // 5)
    colors = PALETTE[rng.integers(0, len(PALETTE), size=spec.n_distractors + 1)]
    anchors = np.stack(
        [
            rng.uniform(0, max(1, width - side), spec.n_distractors),
            rng.uniform(top, max(top + 1, height - side), spec.n_distractors),
        ],
        axis=1,
    )
    jitter_rng = np.random.default_rng([spec.seed, 2])
    for index in range(spec.n_frames):
        frame = background.copy()
        offsets = jitter_rng.integers(-1, 2, size=(spec.n_distractors, 2))
        for d in range(spec.n_distractors):
            x = int(np.clip(anchors[d, 0] + offsets[d, 0], 0, width - side))
            y = int(np.clip(anchors[d, 1] + offsets[d, 1], top, height - side))
            frame[y : y + side, x : x + side] = colors[d]
        x0, y0, x1, y1 = truth.boxes[index]
        if x0 >= 0:
            frame[max(y0, 0) : y1, max(x0, 0) : x1] = colors[-1]
        if spec.barcode:
            draw_barcode(frame, index)
        yield frame


def render_clip(spec: ClipSpec) -> tuple[np.ndarray, ClipTruth]:
    """All frames of the clip in memory: ``(T, H, W, 3) uint8`` and its truth."""
    return np.stack(list(iter_frames(spec))), make_truth(spec)


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def random_event_spec(
    seed: int, event: str, *, max_frames: int = 240, size: tuple[int, int] = (144, 192)
) -> ClipSpec:
    """A clip with one ``event`` and distractors, its layout drawn from ``seed``: 120 to
    ``max_frames`` frames, an event of 16 to 40 frames at least 8 frames from either end, and 1
    to 5 distractors (the held-out clips of the benchmarks).
    """
    rng = np.random.default_rng(seed)
    n_frames = int(rng.integers(120, max_frames + 1))
    event_len = int(rng.integers(16, 41))
    return ClipSpec(
        n_frames=n_frames,
        size=size,
        seed=seed,
        event=event,
        event_start=int(rng.integers(8, n_frames - event_len - 8)),
        event_len=event_len,
        n_distractors=int(rng.integers(1, 6)),
    )


def write_frames(
    path: str | Path,
    frames: Iterable[np.ndarray],
    fps: Fraction | int | float = 25,
    *,
    lossless: bool = False,
    times_s: Sequence[float] | np.ndarray | None = None,
    codec: str | None = None,
    gop: int = 12,
    preset: str = "veryfast",
    rotation: int = 0,
) -> Path:
    """Encode RGB frames to a video file with PyAV.

    Args:
        path: output file; the container follows the extension (.mp4, .mkv, .gif...).
        frames: each ``(H, W, 3) uint8`` RGB, all the same size.
        fps: nominal frame rate.
        lossless: H.264 in RGB with qp 0 (``libx264rgb``): decoded pixels equal the input.
        times_s: presentation time of each frame, for variable frame rate (millisecond grid).
        codec: override the codec (default ``libx264``/``libx264rgb``; ``gif`` for .gif files).
        gop: keyframe interval, so that seeking is exercised.
        preset: x264 speed preset of lossy H.264 (``ultrafast`` for long benchmark inputs).
        rotation: display rotation to store in the container, clockwise degrees as players apply
            it (0, 90, 180, 270): the frames are stored as given and a player shows them turned
            by ``rotation`` clockwise (``np.rot90(frame, k=-rotation // 90)``). Stored as
            FFmpeg's display matrix (counterclockwise angle ``-rotation``); mp4/mov keep it.

    Returns:
        The path written.
    """
    import av

    if rotation % 90:
        raise ValueError(f"rotation must be a multiple of 90 degrees, got {rotation}")
    path = Path(path)
    rate = Fraction(fps).limit_denominator(1001)
    is_gif = path.suffix.lower() == ".gif"
    codec = codec or ("gif" if is_gif else "libx264rgb" if lossless else "libx264")
    time_base = Fraction(1, 1000) if times_s is not None else 1 / rate
    with av.open(str(path), "w") as container:
        stream: Any = None
        for index, frame in enumerate(frames):
            if stream is None:
                stream = container.add_stream(codec, rate=rate)
                stream.height, stream.width = frame.shape[:2]
                if is_gif:
                    stream.pix_fmt = "rgb8"
                elif codec == "libx264rgb":
                    stream.pix_fmt = "rgb24"
                    stream.options = {"qp": "0", "g": str(gop), "preset": "ultrafast"}
                else:
                    odd = frame.shape[0] % 2 or frame.shape[1] % 2
                    stream.pix_fmt = "yuv444p" if odd else "yuv420p"
                    # mbtree=0: with macroblock-tree rate control libx264 does not encode the
                    # same frames to the same bits twice; without it clips are reproducible.
                    stream.options = {
                        "crf": "18",
                        "g": str(gop),
                        "preset": preset,
                        "x264-params": "mbtree=0",
                    }
                stream.codec_context.time_base = time_base
                if rotation % 360:
                    stream.set_display_rotation(-(rotation % 360))
            video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            if times_s is not None:
                video_frame.pts = round(float(times_s[index]) * 1000)
            else:
                video_frame.pts = index
            video_frame.time_base = time_base
            container.mux(stream.encode(video_frame))
        if stream is None:
            raise ValueError("write_frames needs at least one frame")
        container.mux(stream.encode(None))
    return path


def make_clip(
    path: str | Path,
    spec: ClipSpec | None = None,
    *,
    lossless: bool = False,
    times_s: Sequence[float] | np.ndarray | None = None,
    rotation: int = 0,
    **spec_fields: object,
) -> SyntheticClip:
    """Draw a clip and write it; return its ground truth.

    Args:
        path: output file.
        spec: what to draw; or give the :class:`ClipSpec` fields as keywords.
        lossless: exact pixels (see :func:`write_frames`).
        times_s: per-frame presentation times for a variable-frame-rate clip.
        rotation: store the clip the way a camera held at an angle does: frames coded turned
            by ``rotation`` counterclockwise, with display rotation ``rotation`` (clockwise) in
            the container, so a player (and videocam's decoders) show the frames as drawn, of
            size ``spec.size``.
    """
    if spec is None:
        spec = ClipSpec(**spec_fields)  # type: ignore[arg-type]
    elif spec_fields:
        raise TypeError("give either spec or its fields, not both")
    if times_s is None:
        times = np.arange(spec.n_frames, dtype=np.float64) / float(spec.fps)
    else:
        times = np.asarray(times_s, dtype=np.float64) - float(times_s[0])
        if times.shape != (spec.n_frames,):
            raise ValueError(f"times_s needs {spec.n_frames} values, got {times.shape}")
    frames: Iterable[np.ndarray] = iter_frames(spec)
    if rotation % 360:
        turns = (rotation % 360) // 90
        frames = (np.ascontiguousarray(np.rot90(frame, turns)) for frame in frames)
    written = write_frames(
        path, frames, spec.fps, lossless=lossless, times_s=times_s, rotation=rotation
    )
    return SyntheticClip(path=written, spec=spec, truth=make_truth(spec), times_s=times)
