"""Writers of awkward and damaged media files for the tests.

Audio-only files, H.264 streams that change resolution mid-way, remuxed copies (e.g. an mp4
with its index first), and copies of a clip with damaged packets, cut short, or with a garbage
mp4 index. Clean clips come from :mod:`videocam.synthetic` (``make_clip``, ``write_frames``).
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np


def write_audio(
    path: str | Path, duration_s: float = 1.0, *, sample_rate: int = 16000, freq_hz: float = 440.0
) -> Path:
    """Write an audio-only file (a sine tone): AAC for .mp4/.m4a/.mov, PCM for .wav/.mkv.

    Returns:
        The path written.
    """
    import av

    path = Path(path)
    codec = "pcm_s16le" if path.suffix.lower() in (".wav", ".mkv") else "aac"
    n_samples = max(1, round(duration_s * sample_rate))
    t = np.arange(n_samples) / sample_rate
    tone = (0.3 * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)
    chunk = 1024
    with av.open(str(path), "w") as container:
        stream: Any = container.add_stream(codec, rate=sample_rate)
        stream.layout = "mono"
        fmt = "s16" if codec.startswith("pcm") else "fltp"
        for start in range(0, n_samples, chunk):
            piece = tone[None, start : start + chunk]
            if fmt == "s16":
                samples: np.ndarray[Any, Any] = (piece * 32767).astype(np.int16)
            else:
                samples = np.ascontiguousarray(piece)
            frame = av.AudioFrame.from_ndarray(samples, format=fmt, layout="mono")
            frame.sample_rate = sample_rate
            frame.pts = start
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


#: Frames by which the MPEG-TS muxer delays the first timestamp of an x264 stream.
_MUX_DELAY = 2


def write_resolution_change(
    path: str | Path,
    parts: Sequence[tuple[int, int, int]] = ((48, 64, 60), (64, 80, 200)),
    frames_per_part: int = 5,
    fps: int = 25,
    *,
    restart_timestamps: bool = False,
) -> Path:
    """Write an MPEG-TS whose H.264 stream changes resolution mid-way, as concatenated
    recordings (DVR dumps, joined live captures) do.

    Args:
        path: the .ts file to write.
        parts: per part, (height, width, grey level) of its uniform frames.
        frames_per_part: frames in each part; timestamps run on across the parts.
        fps: frame rate.
        restart_timestamps: each part's timestamps start again from 0 instead, as when
            recordings are joined byte for byte.

    Returns:
        The path written.
    """
    import av

    path = Path(path)
    data = []
    for number, (height, width, value) in enumerate(parts):
        part = path.with_name(f"{path.name}.part{number}.ts")
        try:
            with av.open(str(part), "w", format="mpegts") as container:
                stream: Any = container.add_stream("libx264", rate=fps)
                stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
                # The muxer shifts each part's timestamps by the encoder's delay (two frames,
                # for B-frames), so the parts after the first start that much later.
                first = 0 if restart_timestamps else number * (frames_per_part + _MUX_DELAY)
                for i in range(frames_per_part):
                    rgb = np.full((height, width, 3), value, np.uint8)
                    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
                    frame.pts, frame.time_base = first + i, Fraction(1, fps)
                    container.mux(stream.encode(frame))
                container.mux(stream.encode(None))
            data.append(part.read_bytes())
        finally:
            part.unlink(missing_ok=True)
    path.write_bytes(b"".join(data))
    return path


def remux(src: str | Path, dst: str | Path, *, options: dict[str, str] | None = None) -> Path:
    """Copy the first video stream of ``src`` into a new container, packets untouched (the
    container follows ``dst``'s suffix; ``options`` go to the muxer, e.g.
    ``{"movflags": "faststart"}`` to put an mp4's index first).

    Returns:
        ``dst`` as a Path.
    """
    import av

    dst = Path(dst)
    with av.open(str(src)) as inp, av.open(str(dst), "w", options=options or {}) as out:
        stream = out.add_stream_from_template(inp.streams.video[0])
        for packet in inp.demux(inp.streams.video[0]):
            if packet.dts is not None:  # not the flush packet
                packet.stream = stream
                out.mux(packet)
    return dst


def video_packets(path: str | Path) -> list[tuple[int, int, int, bool]]:
    """The video packets of a file, in frame (presentation) order.

    Returns:
        One ``(frame_index, file_offset, size, is_keyframe)`` per frame.
    """
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        packets = [
            (int(p.pts), int(p.pos), int(p.size), bool(p.is_keyframe))
            for p in container.demux(stream)
            if p.size and p.pts is not None and p.pos is not None
        ]
    packets.sort()
    return [(index, pos, size, key) for index, (_, pos, size, key) in enumerate(packets)]


def corrupt_packets(
    src: str | Path, dst: str | Path, frames: Sequence[int], *, mode: str = "length"
) -> Path:
    """Copy an H.264 mp4 with the packets of some frames damaged in place (file layout intact).

    Args:
        src: an mp4/mov written by :func:`videocam.synthetic.write_frames` (length-prefixed
            H.264 samples; in mp4 a packet's file offset is its sample's first byte).
        dst: the damaged copy.
        frames: frame indices (presentation order) whose packets to damage; choose non-key
            frames to lose single frames rather than whole groups of pictures.
        mode: ``"length"``: the first NAL unit's length prefix is made impossible, so the
            decoder rejects the whole packet (the frame cannot be decoded); ``"zeros"``: the
            second half of the packet is zeroed (as a download with a hole), so the decoder
            decodes the frame with its errors concealed and flags it corrupt.

    Returns:
        ``dst`` as a Path.
    """
    import av

    if mode not in ("length", "zeros"):
        raise ValueError(f"mode must be 'length' or 'zeros', got {mode!r}")
    with av.open(str(src)) as container:
        if "mp4" not in container.format.name:
            raise ValueError(f"{src}: corrupt_packets needs an mp4/mov file")
    packets = video_packets(src)
    data = bytearray(Path(src).read_bytes())
    for index in frames:
        if not 0 <= index < len(packets):
            raise IndexError(f"frame {index} out of range [0, {len(packets)})")
        _, pos, size, _ = packets[index]
        if mode == "length":
            data[pos : pos + 4] = b"\x7f\xff\xff\xff"
        else:
            start = pos + max(8, size // 2)
            data[start : pos + size] = bytes(pos + size - start)
    dst = Path(dst)
    dst.write_bytes(bytes(data))
    return dst


def truncate(src: str | Path, dst: str | Path, keep: Fraction | int) -> Path:
    """Copy the first bytes of ``src`` to ``dst``, as a download or a recording cut short.

    Args:
        keep: a Fraction of the file's size (rounded down), or a number of bytes.

    Returns:
        ``dst`` as a Path.
    """
    data = Path(src).read_bytes()
    n_bytes = keep if isinstance(keep, int) else len(data) * keep.numerator // keep.denominator
    dst = Path(dst)
    dst.write_bytes(data[:n_bytes])
    return dst


def corrupt_mp4_index(src: str | Path, dst: str | Path) -> Path:
    """Copy an mp4/mov with garbage written over its sample tables (sizes, chunk offsets and
    times: ``stsz``, ``stco``, ``stts``), the media data intact.

    Returns:
        ``dst`` as a Path.
    """
    data = bytearray(Path(src).read_bytes())
    for table in (b"stsz", b"stco", b"stts"):
        at = data.find(table)
        if at < 0:
            raise ValueError(f"{src}: no {table.decode()} table: not an mp4/mov file")
        data[at + 4 : at + 64] = b"\xff" * 60
    dst = Path(dst)
    dst.write_bytes(bytes(data))
    return dst
