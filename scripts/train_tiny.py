"""Train the bundled video model ``videocam_tiny`` on synthetic event clips.

Retrain the shipped weights (about 6 minutes on 2 CPU cores, data generation included)::

    OMP_WAIT_POLICY=PASSIVE python scripts/train_tiny.py --out videocam/assets

It writes ``videocam_tiny.pt`` (``torch.save(model.state_dict())``, loadable with
``weights_only=True``) and ``videocam_tiny.json`` (classes, preprocessing, target layer, the
validation metrics and every hyper-parameter) into ``--out``.

Data are what the analysis pipeline will feed the model: each synthetic clip
(:mod:`videocam.synthetic`) is drawn at a source size from a list, encoded to H.264 with
:func:`videocam.synthetic.make_clip`'s settings (plus ``mbtree=0``, which makes libx264
reproducible here), and decoded with ``open_video(...).iter_batches(size=(64, 64))`` (whole frame
resized in the decoder, no crop); windows are 16 consecutive frames, normalised with
``(x / 255 - mean) / std``.

Deterministic: one process, seeded numpy/torch, deterministic torch algorithms; the same seed and
thread count give the same weights, bit for bit.

Targets are soft: a window that sees no event is labelled mostly
background with the rest spread *evenly* over the event classes, and a window that overlaps the
event by ``o`` frames gets event mass ``o / min(16, event_len)``. Background windows thus stay
unconfident among the event classes, so that on a long video with one short event the mean window
probability of the non-background classes ranks the true event first (``--target auto`` skips the
background class).

Seeds: training clips use seeds ``0 .. n_train_clips - 1``. Every seed >= 1_000_000 is held out:
validation uses ``1_000_000 ..`` (windows, pointing game) and ``1_100_000 ..`` (long clips);
tests and benchmarks may use any seed from 1_000_000 on.

Metrics (validation clips are encoded and decoded like the pipeline's input, at source sizes that
include some never seen in training; windows of 16 frames with stride 8 as in the pipeline):

- ``val_accuracy``: window level; argmax over all classes equals the label, counting windows that
  hold the whole event (event label; for events shorter than 16 frames, windows that contain
  them) or see none of it (background). Windows that see part of the event are left out.
- ``val_clip_accuracy``: video level ``--target auto`` on long clips (96-160 frames, one event of
  16-40 frames): the top non-background class of the mean window probability is the true event.
- ``pointing_game``: Grad-CAM at ``block4`` (upsampled to 16x64x64) of the true class on full-event
  windows; share of frames showing the event object where the map's maximum lies in its box.
  ``val_metrics.pointing_game_fused`` scores the per-frame maps fused over windows as the pipeline
  does, on the long clips.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

# Two shared cores: spin-waiting OpenMP threads slow torch badly when another process competes.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch
import torch.nn.functional as F

from videocam.cam import compute_cam
from videocam.io import open_video
from videocam.models.tiny import (
    TINY_LAYER,
    TINY_MEAN,
    TINY_STD,
    TINY_SYNTHETIC_DATA,
    build_tiny,
)
from videocam.synthetic import EVENT_CLASSES, ClipSpec, make_clip, make_truth

CLIP_LEN = 16
INPUT_SIZE = (64, 64)
BACKGROUND_CLASS = 0
HELD_OUT_SEED_START = 1_000_000
VAL_SEED_START = 1_000_000
LONG_SEED_START = 1_100_000

# Source sizes (H, W) the clips are drawn at before encoding; validation adds unseen ones.
TRAIN_SIZES: tuple[tuple[int, int], ...] = (
    (96, 128),
    (120, 160),
    (128, 160),
    (144, 176),
    (112, 112),
    (108, 192),
    (128, 96),
)
VAL_SIZES: tuple[tuple[int, int], ...] = (*TRAIN_SIZES, (90, 120), (180, 240), (72, 128))

# Swapping classes under augmentation: mirror left/right, play backwards.
_NAMES = list(EVENT_CLASSES)
_FLIP = [_NAMES.index(n) for n in ("background", "move_left", "move_right", "grow", "shrink")]
_REVERSE = [_NAMES.index(n) for n in ("background", "move_left", "move_right", "shrink", "grow")]


@dataclass(frozen=True)
class Config:
    """Every hyper-parameter of a run (recorded in the json as ``train_config``)."""

    seed: int = 0
    n_train_clips: int = 400
    epochs: int = 10
    windows_per_epoch: int = 1536
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 1e-4
    width: int = 16
    dropout: float = 0.2
    background_smoothing: float = 0.2
    event_smoothing: float = 0.05
    sample_full: float = 0.4
    sample_partial: float = 0.25
    sample_background: float = 0.35
    p_flip: float = 0.5
    p_reverse: float = 0.5
    contrast: tuple[float, float] = (0.75, 1.25)
    brightness: float = 0.08
    noise_std: float = 0.02
    event_len: tuple[int, int] = (12, 40)
    n_frames: tuple[int, int] = (48, 96)
    n_distractors: tuple[int, int] = (1, 5)
    p_barcode: float = 0.25
    n_val_clips: int = 100
    n_long_clips: int = 100
    long_n_frames: tuple[int, int] = (96, 160)
    long_event_len: tuple[int, int] = (16, 40)
    val_stride: int = 8
    n_pointing_windows: int = 160
    threads: int = 2


QUICK = {
    "n_train_clips": 48,
    "epochs": 2,
    "windows_per_epoch": 256,
    "n_val_clips": 8,
    "n_long_clips": 4,
    "n_pointing_windows": 16,
}


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


def clip_spec(
    seed: int,
    *,
    sizes: Sequence[tuple[int, int]],
    n_frames: tuple[int, int],
    event_len: tuple[int, int],
    n_distractors: tuple[int, int] = (1, 5),
    p_barcode: float = 0.25,
) -> ClipSpec:
    """The clip of ``seed``: its event class cycles with the seed (``seed % 5``, 0 = no event).

    Size, length, event length and start, distractor count and barcode are drawn from ``seed``;
    ranges are inclusive.
    """
    rng = np.random.default_rng([seed, 7919])
    label = seed % len(EVENT_CLASSES)
    size = tuple(sizes[int(rng.integers(len(sizes)))])
    length = int(rng.integers(event_len[0], event_len[1] + 1))
    frames = int(
        rng.integers(max(n_frames[0], length + CLIP_LEN), max(n_frames[1], length + CLIP_LEN) + 1)
    )
    start = int(rng.integers(0, frames - length + 1))
    return ClipSpec(
        n_frames=frames,
        size=size,  # type: ignore[arg-type]
        seed=seed,
        event=None if label == BACKGROUND_CLASS else EVENT_CLASSES[label],
        event_start=start,
        event_len=length,
        n_distractors=int(rng.integers(n_distractors[0], n_distractors[1] + 1)),
        barcode=bool(rng.random() < p_barcode),
    )


@dataclass(frozen=True)
class Clip:
    """A decoded clip: frames at the model's input size and its ground truth."""

    spec: ClipSpec
    frames: torch.Tensor  # uint8, shape (T, 64, 64, 3)
    label: int
    event_frames: tuple[int, int] | None
    boxes: np.ndarray  # int32, shape (T, 4), source pixels, -1 where absent


def decode_clip(spec: ClipSpec, workdir: str | Path) -> Clip:
    """Encode ``spec`` to H.264 and decode it resized to 64x64 in the decoder, like the pipeline."""
    path = make_clip(Path(workdir) / f"clip_{spec.seed}.mp4", spec).path
    try:
        with open_video(path) as source:
            frames = np.concatenate(
                [b.frames for b in source.iter_batches(size=INPUT_SIZE, batch_size=64)]
            )
    finally:
        path.unlink(missing_ok=True)
    if len(frames) != spec.n_frames:
        raise RuntimeError(f"decoded {len(frames)} frames of {spec.n_frames} for seed {spec.seed}")
    truth = make_truth(spec)
    return Clip(
        spec=spec,
        frames=torch.from_numpy(frames),
        label=truth.label,
        event_frames=truth.event_frames,
        boxes=truth.boxes,
    )


def make_clips(seeds: Sequence[int], spec_of: Callable[[int], ClipSpec], what: str) -> list[Clip]:
    """Decode the clips of ``seeds``, printing progress."""
    clips = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="videocam_tiny_") as workdir:
        for i, seed in enumerate(seeds):
            clips.append(decode_clip(spec_of(seed), workdir))
            if (i + 1) % 100 == 0 or i + 1 == len(seeds):
                print(
                    f"  {what}: {i + 1}/{len(seeds)} clips ({time.perf_counter() - started:.0f} s)",
                    flush=True,
                )
    return clips


def overlap(start: int, event_frames: tuple[int, int] | None) -> int:
    """Frames of the window ``[start, start + 16)`` inside the event."""
    if event_frames is None:
        return 0
    return max(0, min(start + CLIP_LEN, event_frames[1]) - max(start, event_frames[0]))


def event_fraction(start: int, clip: Clip) -> float:
    """How much of the event a window sees: 1 when it holds all of it or lies inside it."""
    if clip.event_frames is None:
        return 0.0
    event_len = clip.event_frames[1] - clip.event_frames[0]
    return overlap(start, clip.event_frames) / min(CLIP_LEN, event_len)


def soft_target(label: int, fraction: float, cfg: Config) -> np.ndarray:
    """Soft label of a window that sees ``fraction`` of an event of class ``label``.

    Background mass goes to class 0 with ``background_smoothing`` spread evenly over the event
    classes (so no event class is favoured where nothing happens); event mass goes to ``label``
    with ``event_smoothing`` spread over all classes.
    """
    k = len(EVENT_CLASSES)
    background = np.full(k, cfg.background_smoothing / (k - 1))
    background[BACKGROUND_CLASS] = 1.0 - cfg.background_smoothing
    if label == BACKGROUND_CLASS or fraction <= 0:
        return background
    event = np.full(k, cfg.event_smoothing / k)
    event[label] += 1.0 - cfg.event_smoothing
    return (1.0 - fraction) * background + fraction * event


def to_input(windows: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 or float in [0, 1] windows (N, T, H, W, 3) -> normalised float (N, 3, T, H, W)."""
    x = windows.float() / 255.0 if windows.dtype == torch.uint8 else windows
    return ((x - mean) / std).permute(0, 4, 1, 2, 3).contiguous()


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------


def window_pools(clips: Sequence[Clip]) -> dict[str, np.ndarray]:
    """All (clip, start) windows, stride 1, split into full-event, partial and background."""
    pools: dict[str, list[tuple[int, int]]] = {"full": [], "partial": [], "background": []}
    for c, clip in enumerate(clips):
        for start in range(len(clip.frames) - CLIP_LEN + 1):
            f = event_fraction(start, clip)
            kind = "full" if f >= 1 else "partial" if f > 0 else "background"
            pools[kind].append((c, start))
    return {k: np.array(v, dtype=np.int64).reshape(-1, 2) for k, v in pools.items()}


def sample_epoch(pools: dict[str, np.ndarray], cfg: Config, rng: np.random.Generator) -> np.ndarray:
    """``windows_per_epoch`` (clip, start) pairs drawn with the configured kind proportions."""
    shares = {
        "full": cfg.sample_full,
        "partial": cfg.sample_partial,
        "background": cfg.sample_background,
    }
    total = sum(shares.values())
    chosen = []
    for kind, share in shares.items():
        n = round(cfg.windows_per_epoch * share / total)
        pool = pools[kind]
        if n and len(pool):
            chosen.append(pool[rng.integers(0, len(pool), size=n)])
    windows = np.concatenate(chosen)
    return windows[rng.permutation(len(windows))]


def make_batch(
    clips: Sequence[Clip],
    pairs: np.ndarray,
    cfg: Config,
    rng: np.random.Generator,
    noise: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Augmented, normalised windows (B, 3, 16, 64, 64) and their soft targets (B, K).

    The windows come out channels-last (``torch.channels_last_3d``), the faster layout for 3D
    convolutions on the CPU here.
    """
    n = len(pairs)
    x = torch.stack([clips[c].frames[s : s + CLIP_LEN] for c, s in pairs]).float().div_(255.0)
    y = np.stack(
        [soft_target(clips[c].label, event_fraction(int(s), clips[c]), cfg) for c, s in pairs]
    )
    flip = rng.random(n) < cfg.p_flip
    reverse = rng.random(n) < cfg.p_reverse
    for i in range(n):
        if flip[i]:
            x[i] = x[i].flip(2)  # (T, H, W, 3): mirror W
            y[i] = y[i][_FLIP]
        if reverse[i]:
            x[i] = x[i].flip(0)
            y[i] = y[i][_REVERSE]
    contrast = torch.from_numpy(rng.uniform(*cfg.contrast, size=n)).float()
    brightness = torch.from_numpy(rng.uniform(-cfg.brightness, cfg.brightness, size=n)).float()
    x = (x - 0.5).mul_(contrast.view(-1, 1, 1, 1, 1)).add_((0.5 + brightness).view(-1, 1, 1, 1, 1))
    if cfg.noise_std > 0:
        x.add_(torch.randn(x.shape, generator=noise), alpha=cfg.noise_std)
    x = x.clamp_(0.0, 1.0)
    mean, std = torch.tensor(TINY_MEAN), torch.tensor(TINY_STD)
    # (B, T, H, W, 3) normalised, then viewed as (B, 3, T, H, W): already channels_last_3d.
    x = x.sub_(mean).div_(std).permute(0, 4, 1, 2, 3)
    return x, torch.from_numpy(y).float()


def train(clips: Sequence[Clip], cfg: Config) -> torch.nn.Module:
    """Train ``videocam_tiny`` on windows of ``clips``; returns the model in eval mode."""
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng([cfg.seed, 1])
    noise = torch.Generator().manual_seed(cfg.seed)
    model = build_tiny(len(EVENT_CLASSES), width=cfg.width, dropout=cfg.dropout)
    model = model.to(memory_format=torch.channels_last_3d)
    pools = window_pools(clips)
    print(
        "  windows (stride 1): " + ", ".join(f"{k} {len(v)}" for k, v in pools.items()),
        flush=True,
    )
    steps_per_epoch = math.ceil(cfg.windows_per_epoch / cfg.batch_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch, pct_start=0.15
    )
    started = time.perf_counter()
    for epoch in range(cfg.epochs):
        model.train()
        pairs = sample_epoch(pools, cfg, rng)
        total_loss, total_hits, seen = 0.0, 0, 0
        for b in range(0, len(pairs), cfg.batch_size):
            x, y = make_batch(clips, pairs[b : b + cfg.batch_size], cfg, rng, noise)
            logits = model(x)
            loss = -(y * F.log_softmax(logits, dim=1)).sum(1).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total_loss += float(loss.detach()) * len(x)
            total_hits += int((logits.argmax(1) == y.argmax(1)).sum())
            seen += len(x)
        print(
            f"  epoch {epoch + 1}/{cfg.epochs}: loss {total_loss / seen:.4f}, "
            f"train acc (vs argmax of target) {total_hits / seen:.3f}, "
            f"{time.perf_counter() - started:.0f} s",
            flush=True,
        )
    return model.to(memory_format=torch.contiguous_format).eval()


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------


@torch.no_grad()
def window_probs(
    model: torch.nn.Module, clip: Clip, starts: Sequence[int], batch_size: int = 32
) -> np.ndarray:
    """Softmax probabilities (len(starts), K) of the windows of ``clip`` starting at ``starts``."""
    mean, std = torch.tensor(TINY_MEAN), torch.tensor(TINY_STD)
    out = []
    for b in range(0, len(starts), batch_size):
        windows = torch.stack([clip.frames[s : s + CLIP_LEN] for s in starts[b : b + batch_size]])
        out.append(F.softmax(model(to_input(windows, mean, std)), dim=1))
    return torch.cat(out).numpy()


def pipeline_starts(n_frames: int, stride: int) -> list[int]:
    """Window starts of the pipeline: 16 frames, every ``stride`` frames, inside the clip."""
    return list(range(0, n_frames - CLIP_LEN + 1, stride))


def window_accuracy(
    model: torch.nn.Module, clips: Sequence[Clip], stride: int = 8
) -> dict[str, float | int]:
    """Window-level accuracy over full-event and no-event windows (partial ones left out)."""
    hits = {"event": 0, "background": 0}
    counts = {"event": 0, "background": 0}
    background_event_top = []  # the highest event-class probability of each background window
    for clip in clips:
        starts = pipeline_starts(len(clip.frames), stride)
        probs = window_probs(model, clip, starts)
        for start, p in zip(starts, probs, strict=True):
            f = event_fraction(start, clip)
            if 0 < f < 1:
                continue
            kind = "event" if f >= 1 else "background"
            label = clip.label if f >= 1 else BACKGROUND_CLASS
            counts[kind] += 1
            hits[kind] += int(p.argmax() == label)
            if kind == "background":
                background_event_top.append(float(np.delete(p, BACKGROUND_CLASS).max()))
    n = sum(counts.values())
    return {
        "accuracy": sum(hits.values()) / max(1, n),
        "event_accuracy": hits["event"] / max(1, counts["event"]),
        "background_accuracy": hits["background"] / max(1, counts["background"]),
        "n_windows": n,
        "n_event_windows": counts["event"],
        "n_background_windows": counts["background"],
        "background_max_event_prob_mean": float(np.mean(background_event_top or [0.0])),
    }


def auto_target(probs: np.ndarray) -> int:
    """``--target auto``: top class of the mean window probability, skipping background."""
    mean = probs.mean(0).copy()
    mean[BACKGROUND_CLASS] = -np.inf
    return int(mean.argmax())


def clip_accuracy(
    model: torch.nn.Module, clips: Sequence[Clip], stride: int = 8
) -> dict[str, float | int]:
    """Video-level ``--target auto`` accuracy on long clips with one event each."""
    hits = 0
    margins = []
    for clip in clips:
        probs = window_probs(model, clip, pipeline_starts(len(clip.frames), stride))
        hits += int(auto_target(probs) == clip.label)
        mean = np.delete(probs.mean(0), BACKGROUND_CLASS)
        ranked = np.sort(mean)[::-1]
        margins.append(float(ranked[0] - ranked[1]))
    return {
        "accuracy": hits / max(1, len(clips)),
        "n_clips": len(clips),
        "median_top2_margin": float(np.median(margins)) if margins else 0.0,
    }


def gradcam_maps(model: torch.nn.Module, x: torch.Tensor, targets: list[int]) -> torch.Tensor:
    """Grad-CAM at ``block4`` upsampled to the input's (T, H, W)."""
    return compute_cam(model, x, TINY_LAYER, targets, method="gradcam", upsample=True)


def point_hit(cam: np.ndarray, box: np.ndarray, size: tuple[int, int]) -> tuple[bool, bool]:
    """Whether the maximum of ``cam`` (64, 64) hits ``box`` (source pixels of a ``size`` frame).

    The box is scaled to the 64x64 input; the maximum's pixel hits when its centre lies inside
    the box, and hits ``tolerantly`` when it lies within 4 input pixels of it.
    """
    height, width = size
    x0, y0, x1, y1 = box * np.array([INPUT_SIZE[1] / width, INPUT_SIZE[0] / height] * 2)
    y, x = np.unravel_index(int(cam.argmax()), cam.shape)
    cy, cx = y + 0.5, x + 0.5
    distance = math.hypot(max(x0 - cx, 0.0, cx - x1), max(y0 - cy, 0.0, cy - y1))
    return bool(x0 <= cx < x1 and y0 <= cy < y1), distance <= 4.0


def pointing_game(
    model: torch.nn.Module, clips: Sequence[Clip], n_windows: int, stride: int = 8
) -> dict[str, float | int]:
    """Share of event frames whose Grad-CAM maximum (true class) lies in the event object's box.

    Per window: the pipeline's full-event windows, each map on its own (see :func:`point_hit`).
    """
    model.eval()
    mean, std = torch.tensor(TINY_MEAN), torch.tensor(TINY_STD)
    items = [
        (clip, start)
        for clip in clips
        for start in pipeline_starts(len(clip.frames), stride)
        if clip.label != BACKGROUND_CLASS and event_fraction(start, clip) >= 1
    ][:n_windows]
    hits = tolerant = frames = 0
    for b in range(0, len(items), 16):
        chunk = items[b : b + 16]
        x = to_input(torch.stack([c.frames[s : s + CLIP_LEN] for c, s in chunk]), mean, std)
        maps = gradcam_maps(model, x, [c.label for c, _ in chunk]).numpy()
        for (clip, start), cam in zip(chunk, maps, strict=True):
            for t in range(CLIP_LEN):
                box = clip.boxes[start + t]
                if box[0] < 0:
                    continue
                hit, near = point_hit(cam[t], box, clip.spec.size)
                frames += 1
                hits += hit
                tolerant += near
    return {
        "rate": hits / max(1, frames),
        "tolerant_rate": tolerant / max(1, frames),
        "n_frames": frames,
        "n_windows": len(items),
    }


def fused_pointing_game(
    model: torch.nn.Module, clips: Sequence[Clip], stride: int = 8
) -> dict[str, float | int]:
    """The pointing game on per-frame maps fused as the analysis does (mean over covering windows).

    For each long clip: the ``--target auto`` class, Grad-CAM of every pipeline window, each
    frame's map the mean over the windows covering it; scored on the event frames. Also the share
    of clips whose strongest frame (largest fused map value) lies inside the event.
    """
    model.eval()
    mean, std = torch.tensor(TINY_MEAN), torch.tensor(TINY_STD)
    hits = tolerant = frames = peaks_inside = 0
    for clip in clips:
        n_frames = len(clip.frames)
        starts = pipeline_starts(n_frames, stride)
        target = auto_target(window_probs(model, clip, starts))
        total = np.zeros((n_frames, *INPUT_SIZE))
        count = np.zeros(n_frames)
        for b in range(0, len(starts), 16):
            chunk = starts[b : b + 16]
            x = to_input(torch.stack([clip.frames[s : s + CLIP_LEN] for s in chunk]), mean, std)
            for start, cam in zip(
                chunk, gradcam_maps(model, x, [target] * len(chunk)), strict=True
            ):
                total[start : start + CLIP_LEN] += cam.numpy()
                count[start : start + CLIP_LEN] += 1
        fused = total / np.maximum(count, 1)[:, None, None]
        if clip.event_frames is None:
            continue
        first, end = clip.event_frames
        peaks_inside += int(first <= int(fused.reshape(n_frames, -1).max(1).argmax()) < end)
        for t in range(first, end):
            if count[t] == 0:
                continue
            hit, near = point_hit(fused[t], clip.boxes[t], clip.spec.size)
            frames += 1
            hits += hit
            tolerant += near
    return {
        "rate": hits / max(1, frames),
        "tolerant_rate": tolerant / max(1, frames),
        "n_frames": frames,
        "peak_frame_in_event": peaks_inside / max(1, len(clips)),
        "n_clips": len(clips),
    }


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------


def write_outputs(out: Path, model: torch.nn.Module, meta: dict[str, object]) -> None:
    """Write the weights and the json under temporary names, then rename them into place."""
    out.mkdir(parents=True, exist_ok=True)
    weights = out / "videocam_tiny.pt"
    sidecar = out / "videocam_tiny.json"
    tmp_weights = weights.with_suffix(".pt.tmp")
    tmp_sidecar = sidecar.with_suffix(".json.tmp")
    torch.save(model.state_dict(), tmp_weights)
    tmp_sidecar.write_text(json.dumps(meta, indent=2) + "\n")
    tmp_weights.replace(weights)
    tmp_sidecar.replace(sidecar)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("videocam/assets"), help="output folder")
    parser.add_argument("--seed", type=int, default=Config.seed, help="seed of init and sampling")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs")
    parser.add_argument(
        "--quick", action="store_true", help="a tiny run (under a minute) for smoke tests"
    )
    parser.add_argument(
        "--threads", type=int, default=Config.threads, help="torch intra-op threads"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    overrides: dict[str, object] = dict(QUICK) if args.quick else {}
    overrides["seed"] = args.seed
    overrides["threads"] = args.threads
    if args.epochs is not None:
        overrides["epochs"] = args.epochs
    cfg = Config(**overrides)  # type: ignore[arg-type]
    if cfg.n_train_clips > HELD_OUT_SEED_START:
        raise SystemExit("n_train_clips must stay below the held-out seeds (1_000_000)")
    torch.set_num_threads(cfg.threads)  # deliberate: 2 shared cores, no interop pool needed
    torch.use_deterministic_algorithms(True)
    print(f"videocam_tiny: torch {torch.__version__}, {cfg.threads} threads", flush=True)
    print(f"config: {cfg}", flush=True)

    window_clip = functools.partial(
        clip_spec,
        n_frames=cfg.n_frames,
        event_len=cfg.event_len,
        n_distractors=cfg.n_distractors,
        p_barcode=cfg.p_barcode,
    )
    train_spec = functools.partial(window_clip, sizes=TRAIN_SIZES)
    val_spec = functools.partial(window_clip, sizes=VAL_SIZES)

    def long_spec(seed: int) -> ClipSpec:
        # Long clips all have an event: classes 1..4 in turn.
        label = 1 + (seed - LONG_SEED_START) % (len(EVENT_CLASSES) - 1)
        return clip_spec(
            LONG_SEED_START + (seed - LONG_SEED_START) * len(EVENT_CLASSES) + label,
            sizes=VAL_SIZES,
            n_frames=cfg.long_n_frames,
            event_len=cfg.long_event_len,
            n_distractors=cfg.n_distractors,
            p_barcode=cfg.p_barcode,
        )

    print("generating training clips (H.264 encode, decode at 64x64)", flush=True)
    train_clips = make_clips(range(cfg.n_train_clips), train_spec, "train")
    print("training", flush=True)
    model = train(train_clips, cfg)
    train_seconds = time.perf_counter() - started
    del train_clips

    print("validating on held-out seeds", flush=True)
    val_seeds = range(VAL_SEED_START, VAL_SEED_START + cfg.n_val_clips)
    val_clips = make_clips(val_seeds, val_spec, "validation")
    windows = window_accuracy(model, val_clips, cfg.val_stride)
    print(f"  window level: {windows}", flush=True)
    pointing = pointing_game(model, val_clips, cfg.n_pointing_windows, cfg.val_stride)
    print(f"  pointing game: {pointing}", flush=True)
    long_seeds = range(LONG_SEED_START, LONG_SEED_START + cfg.n_long_clips)
    long_clips = make_clips(long_seeds, long_spec, "long clips")
    clips = clip_accuracy(model, long_clips, cfg.val_stride)
    print(f"  video level (--target auto): {clips}", flush=True)
    fused = fused_pointing_game(model, long_clips, cfg.val_stride)
    print(f"  pointing game, fused per-frame maps of long clips: {fused}", flush=True)
    total_seconds = time.perf_counter() - started

    config = {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.__dict__.items()}
    config.update(
        {
            "quick": bool(args.quick),
            "train_seeds": [0, cfg.n_train_clips - 1],
            "val_seeds": [VAL_SEED_START, VAL_SEED_START + cfg.n_val_clips - 1],
            "long_clip_seeds": "clip_spec(1_100_000 + 5 * i + label), i < n_long_clips",
            "held_out_seeds": "every seed >= 1_000_000 is never used for training",
            "class_of_seed": "seed % 5 (0 = no event)",
            "train_sizes": [list(s) for s in TRAIN_SIZES],
            "val_sizes": [list(s) for s in VAL_SIZES],
            "encoding": (
                "H.264 as videocam.synthetic.make_clip (crf 18, GOP 12, veryfast, yuv420p) "
                "plus x264 mbtree=0 (bit-reproducible)"
            ),
            "decoding": "videocam.io.open_video(path).iter_batches(size=(64, 64))",
            "soft_targets": (
                "f = overlapping frames / min(16, event_len); target = (1 - f) * background + "
                "f * event; background = 1 - background_smoothing on class 0, the rest evenly "
                "on the event classes; event = 1 - event_smoothing on the class + "
                "event_smoothing / 5 on every class"
            ),
            "augmentation": (
                "horizontal flip (swaps move_right/move_left), time reversal (swaps "
                "move_right/move_left and grow/shrink), contrast, brightness, gaussian noise"
            ),
            "optimizer": "AdamW, OneCycleLR (pct_start 0.15), soft-target cross-entropy",
        }
    )
    meta: dict[str, object] = {
        "classes": list(EVENT_CLASSES),
        "input_size": list(INPUT_SIZE),
        "clip_len": CLIP_LEN,
        "mean": list(TINY_MEAN),
        "std": list(TINY_STD),
        "background_class": BACKGROUND_CLASS,
        "training_data": TINY_SYNTHETIC_DATA,
        "layer": TINY_LAYER,
        "width": cfg.width,
        "val_accuracy": round(windows["accuracy"], 4),
        "val_clip_accuracy": round(clips["accuracy"], 4),
        "pointing_game": round(pointing["rate"], 4),
        "val_metrics": {
            "window": windows,
            "video_auto_target": clips,
            "pointing_game": pointing,
            "pointing_game_fused": fused,
            "definitions": {
                "val_accuracy": (
                    "window level, pipeline windows (16 frames, stride 8) of encoded+decoded "
                    "held-out clips: argmax over all classes == label, over windows that see the "
                    "whole event (or lie inside it) and windows that see none of it; partial "
                    "windows are excluded"
                ),
                "val_clip_accuracy": (
                    "--target auto on long held-out clips (96-160 frames, one 16-40 frame "
                    "event): argmax over non-background classes of the mean window "
                    "probability == event"
                ),
                "pointing_game": (
                    "Grad-CAM block4, true class, upsampled to 16x64x64, full-event windows: "
                    "share of frames showing the object whose map maximum lies in its box "
                    "(tolerant_rate: within 4 input pixels of it)"
                ),
                "pointing_game_fused": (
                    "the same on long clips, auto target, per-frame maps = mean of the "
                    "upsampled window maps covering the frame (as the pipeline fuses them); "
                    "peak_frame_in_event: share of clips whose largest fused value is in the "
                    "event"
                ),
            },
        },
        "train_config": config,
        "train_seconds": round(train_seconds, 1),
        "total_seconds": round(total_seconds, 1),
        "torch_version": torch.__version__,
    }
    write_outputs(args.out, model, meta)
    size_kb = (args.out / "videocam_tiny.pt").stat().st_size / 1024
    print(
        f"done: val_accuracy {windows['accuracy']:.4f}, val_clip_accuracy "
        f"{clips['accuracy']:.4f}, pointing game {pointing['rate']:.4f} "
        f"(tolerant {pointing['tolerant_rate']:.4f}); weights {size_kb:.0f} KiB; "
        f"train {train_seconds:.0f} s, total {total_seconds:.0f} s -> {args.out}",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
