"""Manifests: a CSV that lists videos (``path``, relative to the manifest's folder), with an
optional ``label`` and ground-truth interval (``event_start_s``, ``event_end_s``) per video.

``videocam evaluate`` reads all of it; ``videocam batch`` reads the paths.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from videocam.errors import ConfigError


@dataclass(frozen=True)
class ManifestEntry:
    """One manifest row: the resolved path, and the optional label and interval."""

    path: Path
    label: str | None
    event_start_s: float | None
    event_end_s: float | None
    row: int


def read_manifest(path: str | Path) -> list[ManifestEntry]:
    """Read a manifest CSV: ``path`` (relative to the manifest's folder), optional ``label``,
    ``event_start_s``, ``event_end_s``.

    Raises:
        ConfigError: missing file, no ``path`` column, a half-given or reversed interval.
    """
    import pandas as pd

    manifest = Path(path)
    try:
        table = pd.read_csv(manifest, dtype={"path": str, "label": str}, keep_default_na=False)
    except FileNotFoundError as exc:
        raise ConfigError(f"{manifest}: manifest not found") from exc
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise ConfigError(f"{manifest}: cannot read manifest CSV: {exc}") from exc
    if "path" not in table.columns:
        raise ConfigError(f"{manifest}: the manifest needs a 'path' column")
    entries = []
    for i, row in enumerate(table.to_dict("records"), start=2):  # line numbers (header = 1)
        video = Path(str(row["path"]).strip())
        if not video.is_absolute():
            video = manifest.parent / video
        label = str(row.get("label", "")).strip() or None
        start = _optional_float(row.get("event_start_s"), manifest, i, "event_start_s")
        end = _optional_float(row.get("event_end_s"), manifest, i, "event_end_s")
        if (start is None) != (end is None):
            raise ConfigError(f"{manifest}: line {i}: give both event_start_s and event_end_s")
        if start is not None and end is not None and end <= start:
            raise ConfigError(f"{manifest}: line {i}: event_end_s must be after event_start_s")
        entries.append(ManifestEntry(video, label, start, end, i))
    if not entries:
        raise ConfigError(f"{manifest}: the manifest lists no video")
    return entries


def _optional_float(value: Any, manifest: Path, line: int, column: str) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{manifest}: line {line}: {column}={value!r} is not a number") from exc
    return None if np.isnan(number) else number
