"""Manifests: a CSV that lists videos (``path``, relative to the manifest's folder), with an
optional ``label``, ground-truth interval (``event_start_s``, ``event_end_s``) and ``boxes``
file (JSON: source frame index → ``[x0, y0, x1, y1]`` in source pixels) per video.

``videocam evaluate`` reads all of it; ``videocam batch`` reads the paths.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from videocam.errors import ConfigError


@dataclass(frozen=True)
class ManifestEntry:
    """One manifest row: the resolved path, the optional label and interval, and the
    ground-truth boxes (frame index → (x0, y0, x1, y1), source pixels, x1 and y1 exclusive;
    None without a boxes file)."""

    path: Path
    label: str | None
    event_start_s: float | None
    event_end_s: float | None
    row: int
    boxes: dict[int, tuple[float, float, float, float]] | None = None


def read_manifest(path: str | Path) -> list[ManifestEntry]:
    """Read a manifest CSV: ``path`` (relative to the manifest's folder), optional ``label``,
    ``event_start_s``, ``event_end_s``, ``boxes`` (a JSON file, relative to the manifest's
    folder, read here: see :func:`read_boxes`).

    Raises:
        ConfigError: missing file, no ``path`` column, a half-given or reversed interval, a
            boxes file that is missing or malformed.
    """
    import pandas as pd

    manifest = Path(path)
    try:
        table = pd.read_csv(
            manifest, dtype={"path": str, "label": str, "boxes": str}, keep_default_na=False
        )
    except FileNotFoundError as exc:
        raise ConfigError(f"{manifest}: manifest not found") from exc
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise ConfigError(f"{manifest}: cannot read manifest CSV: {exc}") from exc
    if "path" not in table.columns:
        raise ConfigError(f"{manifest}: the manifest needs a 'path' column")
    entries = []
    for i, row in enumerate(table.to_dict("records"), start=2):  # line numbers (header = 1)
        video = _resolve(manifest, str(row["path"]).strip())
        label = str(row.get("label", "")).strip() or None
        start = _optional_float(row.get("event_start_s"), manifest, i, "event_start_s")
        end = _optional_float(row.get("event_end_s"), manifest, i, "event_end_s")
        if (start is None) != (end is None):
            raise ConfigError(f"{manifest}: line {i}: give both event_start_s and event_end_s")
        if start is not None and end is not None and end <= start:
            raise ConfigError(f"{manifest}: line {i}: event_end_s must be after event_start_s")
        boxes_name = str(row.get("boxes", "")).strip()
        boxes = read_boxes(_resolve(manifest, boxes_name)) if boxes_name else None
        entries.append(ManifestEntry(video, label, start, end, i, boxes))
    if not entries:
        raise ConfigError(f"{manifest}: the manifest lists no video")
    return entries


def read_boxes(path: Path) -> dict[int, tuple[float, float, float, float]]:
    """A boxes file: a JSON object from frame index (decode order of the source, 0-based, as
    text) to ``[x0, y0, x1, y1]`` in source pixels, x0 < x1 and y0 < y1 (x1, y1 exclusive).

    Raises:
        ConfigError: naming the file and what is wrong with it.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: boxes file not found") from exc
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read boxes JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: boxes must be a JSON object: frame index -> [x0, y0, x1, y1]")
    boxes = {}
    for key, value in data.items():
        if not (key.isascii() and key.isdigit()):
            raise ConfigError(f"{path}: key {key!r} is not a frame index (an integer >= 0)")
        numbers = value if isinstance(value, list) else []
        if len(numbers) != 4 or not all(_is_finite_number(v) for v in numbers):
            raise ConfigError(f"{path}: frame {key}: expected [x0, y0, x1, y1], got {value!r}")
        x0, y0, x1, y1 = (float(v) for v in numbers)
        if not (x0 < x1 and y0 < y1):
            raise ConfigError(
                f"{path}: frame {key}: the box {value!r} is empty (need x0 < x1, y0 < y1)"
            )
        boxes[int(key)] = (x0, y0, x1, y1)
    return boxes


def _is_finite_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _resolve(manifest: Path, name: str) -> Path:
    path = Path(name)
    return path if path.is_absolute() else manifest.parent / path


def _optional_float(value: Any, manifest: Path, line: int, column: str) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{manifest}: line {line}: {column}={value!r} is not a number") from exc
    return None if np.isnan(number) else number
