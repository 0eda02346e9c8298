"""Local state-dict files: reading them safely and loading them strictly into a module."""

from __future__ import annotations

import logging
import os
import pickle
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from videocam.errors import ModelLoadError, first_line

logger = logging.getLogger(__name__)

__all__ = [
    "WeightsSpec",
    "apply_state_dict",
    "file_hint",
    "fit_head",
    "head_num_classes",
    "load_state_dict_file",
    "parse_weights",
]

# Wrappers written by common training loops (Lightning, timm, torchvision references...).
_WRAPPER_KEYS = ("state_dict", "model", "model_state_dict", "module", "net")
# Prefixes added by nn.DataParallel / DistributedDataParallel and torch.compile.
_PREFIXES = ("module.", "_orig_mod.")


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a state dict with ``torch.load(path, map_location="cpu", weights_only=True)``.

    Accepts a bare state dict or one wrapped as ``{"state_dict": ...}`` / ``{"model": ...}``
    (also ``model_state_dict``, ``module``, ``net``), and strips a ``module.`` (DataParallel) or
    ``_orig_mod.`` (torch.compile) prefix carried by every key.

    Raises:
        ModelLoadError: naming the file and the reason (missing, unreadable, not a state dict, or
            holding Python objects that ``weights_only=True`` refuses).
    """
    file = Path(path).expanduser()
    if not file.exists():
        raise ModelLoadError(f"weights file not found: {file}")
    if not file.is_file():
        raise ModelLoadError(f"weights path is not a file: {file}")
    try:
        obj = torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights only" in str(exc).lower():
            raise ModelLoadError(
                f"refused to load weights file {file}: it holds Python objects other than "
                "tensors (torch.load weights_only=True); re-save it with "
                "torch.save(model.state_dict(), path)"
            ) from exc
        raise ModelLoadError(f"cannot read weights file {file}: {first_line(exc)}") from exc
    except Exception as exc:  # torch.load raises KeyError, EOFError, RuntimeError... on bad files
        raise ModelLoadError(
            f"cannot read weights file {file}: not a PyTorch checkpoint or corrupted "
            f"({type(exc).__name__}: {first_line(exc)})"
        ) from exc
    return _extract_state_dict(obj, file)


def _extract_state_dict(obj: Any, file: Path) -> dict[str, torch.Tensor]:
    for _ in range(3):  # unwrap at most a few levels of {"state_dict": {...}}
        if not isinstance(obj, Mapping):
            break
        if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            break
        inner = next((obj[k] for k in _WRAPPER_KEYS if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            break
        obj = inner
    if not isinstance(obj, Mapping) or not obj:
        raise ModelLoadError(
            f"weights file {file} does not hold a state dict (got {type(obj).__name__})"
        )
    not_tensors = [str(k) for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if not_tensors or not all(isinstance(k, str) for k in obj):
        shown = ", ".join(not_tensors[:5]) or "non-string keys"
        raise ModelLoadError(
            f"weights file {file} does not hold a state dict of tensors (entries: {shown})"
        )
    state = {str(k): v for k, v in obj.items()}
    for prefix in _PREFIXES:
        if all(k.startswith(prefix) for k in state):
            state = {k[len(prefix) :]: v for k, v in state.items()}
    return state


def _shown(keys: list[str], limit: int = 4) -> str:
    more = f", +{len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def apply_state_dict(
    module: nn.Module, state: Mapping[str, torch.Tensor], *, source: str, model_name: str
) -> None:
    """Load ``state`` into ``module`` strictly, with a one-line error when it does not fit.

    Raises:
        ModelLoadError: listing (briefly) missing and unexpected keys and shape mismatches.
    """
    expected = module.state_dict()
    # BatchNorm fills a missing num_batches_tracked itself (checkpoints older than torch 0.4.1).
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    mismatched = [
        f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys ({_shown(missing)})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys ({_shown(unexpected)})")
    if mismatched:
        problems.append(f"{len(mismatched)} shape mismatches (file vs model: {_shown(mismatched)})")
    if problems:
        raise ModelLoadError(f"weights {source} do not fit {model_name}: " + "; ".join(problems))
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelLoadError(
            f"weights {source} do not fit {model_name}: {first_line(exc)}"
        ) from exc


def head_num_classes(module: nn.Module, state: Mapping[str, torch.Tensor]) -> int | None:
    """The class count of ``state`` when it differs from ``module`` only in its head(s).

    Returns K when every shape mismatch between ``state`` and ``module`` is a leading dimension
    that is K in the file and the same (the module's class count) in the module, e.g. a
    ``fc.weight`` of (5, 512) against (400, 512). Otherwise None.
    """
    expected = module.state_dict()
    file_sizes: set[int] = set()
    model_sizes: set[int] = set()
    for key, tensor in expected.items():
        other = state.get(key)
        if other is None or other.shape == tensor.shape:
            continue
        if other.ndim != tensor.ndim or other.ndim == 0 or other.shape[1:] != tensor.shape[1:]:
            return None
        file_sizes.add(int(other.shape[0]))
        model_sizes.add(int(tensor.shape[0]))
    if len(file_sizes) == 1 and len(model_sizes) == 1:
        return file_sizes.pop()
    return None


def fit_head(
    module: nn.Module,
    state: Mapping[str, torch.Tensor],
    classes: int | None,
    rebuild: Callable[[int], nn.Module],
    *,
    model_name: str,
) -> tuple[nn.Module, int | None]:
    """The module a weights file loads into, when no class count was asked for: the file's
    head decides it.

    Args:
        module: the model as built, with ``classes`` classes.
        state: the weights file's state dict.
        classes: ``module``'s class count (None when unknown).
        rebuild: builds the model with K classes.
        model_name: names the model in the log.

    Returns:
        ``(module, None)`` when the file fits ``module``'s head (or differs elsewhere: loading
        it then says how); ``(rebuild(K), K)`` when the file's head has K classes
        (:func:`head_num_classes`) and ``module``'s another count.
    """
    inferred = head_num_classes(module, state)
    if inferred is None or inferred == classes:
        return module, None
    logger.info("%s: the weights file has %d classes; rebuilding", model_name, inferred)
    return rebuild(inferred), inferred


# A weights *name*: an identifier, optionally qualified by its enum ("R3D_18_Weights.DEFAULT").
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)?")
_FILE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".tar", ".pkl")


@dataclass(frozen=True)
class WeightsSpec:
    """A classified ``--weights`` value.

    Attributes:
        kind: ``"none"``, ``"default"``, ``"file"`` or ``"name"``.
        value: the name or path as given (``"none"`` / ``"DEFAULT"`` for those kinds).
    """

    kind: str
    value: str


def parse_weights(weights: str | os.PathLike[str] | None) -> WeightsSpec:
    """Classify a ``--weights`` value.

    ``None`` or ``"none"`` → random init; ``"DEFAULT"`` (any case) → the default weights; an
    identifier such as ``KINETICS400_V1`` or ``bundled`` → a weights name; anything else (a path
    with a separator or a checkpoint suffix, or an ``os.PathLike``) → a local file.
    """
    if weights is None:
        return WeightsSpec("none", "none")
    if isinstance(weights, os.PathLike):
        return WeightsSpec("file", os.fspath(weights))
    if not isinstance(weights, str) or not weights.strip():
        raise ModelLoadError(f"weights must be a name, a file path or 'none', got {weights!r}")
    text = weights.strip()
    if text.lower() == "none":
        return WeightsSpec("none", "none")
    if text.upper() == "DEFAULT":
        return WeightsSpec("default", "DEFAULT")
    if _NAME.fullmatch(text) and not text.lower().endswith(_FILE_SUFFIXES):
        return WeightsSpec("name", text)
    return WeightsSpec("file", text)


def file_hint(name: str) -> str:
    """A hint appended to 'unknown weights name' errors when a file of that name exists."""
    if Path(name).is_file():
        return f"; to load the local file {name!r}, pass it as ./{name}"
    return ""
