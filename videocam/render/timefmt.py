"""How the rendered outputs write a time: ``m:ss.ss`` (``h:mm:ss.ss`` from an hour on), the
same on the review page (its script's ``VC.clock``), the timeline plot, the keyframe images
and the annotated clip's strip."""

from __future__ import annotations

import math

__all__ = ["clock"]


def clock(seconds: float, digits: int = 2) -> str:
    """``seconds`` as ``m:ss`` with ``digits`` decimals: 7.44 -> ``0:07.44``, 75.25 ->
    ``1:15.25``, 3725.5 -> ``1:02:05.50``; ``–`` for NaN and infinities.

    Rounded once, half up in units of the last digit (as JavaScript's ``Math.round``), so
    59.9996 with 3 digits reads ``1:00.000``, never ``0:60.000``, and the page's script writes
    every time exactly as this does.
    """
    if not math.isfinite(seconds):
        return "–"
    scale = 10**digits
    scaled = abs(seconds) * scale
    units = math.floor(scaled)
    if scaled - units >= 0.5:
        units += 1
    whole, frac = divmod(units, scale)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    sign = "-" if seconds < 0 and units > 0 else ""
    head = f"{hours}:{minutes:02d}" if hours else f"{minutes}"
    tail = f".{frac:0{digits}d}" if digits > 0 else ""
    return f"{sign}{head}:{secs:02d}{tail}"
