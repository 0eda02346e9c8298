"""Which class an analysis explains: class names, ``--target`` as an index or a name, and the
video-level class that ``auto`` chooses."""

from __future__ import annotations

import difflib
import logging
from typing import TYPE_CHECKING, Any

import numpy as np

from videocam.errors import ConfigError

if TYPE_CHECKING:
    from videocam.models import LoadedModel

logger = logging.getLogger(__name__)

#: Classes listed in summary.json's ``video_top_classes``.
TOP_CLASSES = 5


def class_name(loaded: LoadedModel, index: int) -> str:
    """The name of class ``index``, or the index as text when the model has no names."""
    if loaded.categories and 0 <= index < len(loaded.categories):
        return loaded.categories[index]
    return str(index)


def top_classes(
    class_probs: np.ndarray, loaded: LoadedModel, wins: np.ndarray | None = None
) -> list[dict[str, Any]]:
    """The video's most probable classes, most probable first (index, name, mean_prob, and
    with ``wins`` (K,) ``windows_top``: the windows in which the class is the most probable)."""
    ranked = np.argsort(-class_probs, kind="stable")[:TOP_CLASSES]
    rows: list[dict[str, Any]] = []
    for c in ranked.tolist():
        row = {"index": c, "name": class_name(loaded, c), "mean_prob": float(class_probs[c])}
        if wins is not None and len(wins) == len(class_probs):
            row["windows_top"] = int(wins[c])
        rows.append(row)
    return rows


def ranked_classes(class_probs: np.ndarray, loaded: LoadedModel) -> list[int]:
    """Classes from the most to the least probable over the video (mean window probability,
    ties: the lower index), a declared background class left out (unless it is the only
    class)."""
    ranked = np.argsort(-class_probs, kind="stable").tolist()
    skipped = loaded.background_class
    return [int(c) for c in ranked if c != skipped or len(ranked) == 1]


def auto_class(class_probs: np.ndarray, loaded: LoadedModel) -> int:
    """The video-level class: top mean window probability, skipping a declared background
    class (unless it is the only class)."""
    return ranked_classes(class_probs, loaded)[0]


def choose_auto_target(mean_probs: np.ndarray, loaded: LoadedModel) -> tuple[int, dict[str, Any]]:
    """:func:`auto_class` and what summary.json records about the choice."""
    choice = auto_class(mean_probs, loaded)
    info: dict[str, Any] = {"auto": True, "video_top_classes": top_classes(mean_probs, loaded)}
    if loaded.background_class is not None:
        info["skipped_background_class"] = class_name(loaded, loaded.background_class)
    logger.info("auto target: %s (%d)", class_name(loaded, choice), choice)
    return choice, info


def resolve_class(target: int | str, loaded: LoadedModel) -> int:
    """A class index from an index or a class name; ConfigError if unknown.

    A name that is a class's exact name gives that class; otherwise names match regardless of
    case (the first class that matches): ImageNet has both "Cardigan" (the corgi) and
    "cardigan" (the sweater)."""
    n_classes = len(loaded.categories) if loaded.categories else None
    if isinstance(target, int):
        if n_classes is not None and target >= n_classes:
            raise ConfigError(f"target {target} is out of range: the model has {n_classes} classes")
        return target
    if not loaded.categories:
        raise ConfigError(
            f"target {target!r}: the model has no class names; give an index or --labels"
        )
    if target in loaded.categories:
        return list(loaded.categories).index(target)
    lowered = [c.lower() for c in loaded.categories]
    if target.lower() in lowered:
        return lowered.index(target.lower())
    close = difflib.get_close_matches(target.lower(), lowered, n=3)
    hint = f"; did you mean {', '.join(repr(loaded.categories[lowered.index(c)]) for c in close)}?"
    raise ConfigError(
        f"target {target!r} is not a class of {loaded.name}" + (hint if close else "")
    )
