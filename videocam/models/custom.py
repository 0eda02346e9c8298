"""Custom model builders named on the command line: ``path/to/file.py:function`` or
``package.module:function``.

The builder is a callable taking no arguments and returning a ``torch.nn.Module``. A video model
takes (N, 3, T, H, W) and returns logits (N, K); with ``--frame-model`` it takes (N, 3, H, W).
The file or module is imported only when the user names it.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from torch import nn

from videocam.errors import ModelLoadError
from videocam.models.spec import DEFAULT_CLIP_LEN, Built
from videocam.models.weights import apply_state_dict, load_state_dict_file, parse_weights

__all__ = ["build_custom", "is_custom_spec", "load_builder"]


def is_custom_spec(name: str) -> bool:
    """Whether a ``--model`` value names a custom builder (it contains ``:``)."""
    return ":" in name


def _split(spec: str) -> tuple[str, str]:
    target, _, function = spec.rpartition(":")
    if not target or not function.isidentifier():
        raise ModelLoadError(
            f"custom model {spec!r} must be path/to/file.py:function or package.module:function"
        )
    return target, function


def _is_file_target(target: str) -> bool:
    return target.endswith(".py") or "/" in target or "\\" in target


def _import_file(path: Path) -> ModuleType:
    if not path.is_file():
        raise ModelLoadError(f"custom model file not found: {path}")
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:10]
    module_name = f"_videocam_custom_{path.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ModelLoadError(f"cannot import custom model file {path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickling look modules up here
    # Let the builder import modules that sit next to it, for the duration of the import only.
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # user code: any failure is a load error naming the file
        sys.modules.pop(module_name, None)
        raise ModelLoadError(
            f"cannot import custom model file {path}: {type(exc).__name__}: {exc}"
        ) from exc
    finally:
        if sys.path and sys.path[0] == str(path.parent):
            sys.path.pop(0)
    return module


def _import_module(target: str) -> ModuleType:
    try:
        return importlib.import_module(target)
    except ModuleNotFoundError as exc:
        raise ModelLoadError(f"custom model module {target!r} not found ({exc})") from exc
    except Exception as exc:  # user code: any failure is a load error naming the module
        raise ModelLoadError(
            f"cannot import custom model module {target!r}: {type(exc).__name__}: {exc}"
        ) from exc


def load_builder(spec: str) -> Callable[[], Any]:
    """Import the file or module of ``spec`` and return its builder function."""
    target, function = _split(spec)
    if _is_file_target(target):
        module = _import_file(Path(target).expanduser().resolve())
    else:
        module = _import_module(target)
    builder = getattr(module, function, None)
    if builder is None:
        raise ModelLoadError(f"custom model {spec!r}: {target} has no function {function!r}")
    if not callable(builder):
        raise ModelLoadError(f"custom model {spec!r}: {function!r} is not callable")
    return builder


def call_builder(spec: str, weights: Any, what: str = "custom model") -> tuple[nn.Module, str]:
    """Call the builder named by ``spec`` and load ``weights`` (a local file, or none).

    ``DEFAULT`` and ``none`` keep the module as the builder returns it (recorded as
    ``"builder"``); a local state-dict file is loaded strictly on top.

    Returns:
        (the module, the weights label: ``"builder"`` or the file's path).
    """
    weights_spec = parse_weights(weights)
    if weights_spec.kind == "name":
        raise ModelLoadError(
            f"{what} {spec!r} takes a local state-dict file or 'none' as weights, "
            f"not {weights_spec.value!r}"
        )
    builder = load_builder(spec)
    try:
        module = builder()
    except Exception as exc:  # user code: any failure is a load error naming the builder
        raise ModelLoadError(f"custom builder {spec!r} raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(module, nn.Module):
        raise ModelLoadError(
            f"custom builder {spec!r} must return a torch.nn.Module, got {type(module).__name__}"
        )
    label = "builder"
    if weights_spec.kind == "file":
        state = load_state_dict_file(weights_spec.value)
        apply_state_dict(module, state, source=f"file {weights_spec.value}", model_name=spec)
        label = str(Path(weights_spec.value).expanduser())
    return module, label


def build_custom(spec: str, weights: Any, frame_model: bool) -> Built:
    """Call the builder named by ``spec`` and load ``weights`` (:func:`call_builder`)."""
    module, label = call_builder(spec, weights)
    kind = "frame" if frame_model else "video"
    return Built(
        module=module,
        kind=kind,
        weights=label,
        preprocess=None,
        categories=None,
        clip_len=None if frame_model else DEFAULT_CLIP_LEN,
        background_class=None,
        default_layer=None,
        num_classes=None,
    )
