"""Atomic writers: every output appears whole or not at all.

Each writer writes to a hidden temporary file in the destination's folder and renames it onto the
destination (``os.replace``, atomic on one file system) only once the content is complete. A
failure, an exception in the caller's code or an interrupt leaves the destination as it was (absent,
or the previous version) and removes the temporary file.
"""

from __future__ import annotations

import errno
import json
import math
import os
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from videocam.errors import OutputError, VideocamError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "atomic_write",
    "ensure_output_dir",
    "write_csv",
    "write_failure",
    "write_json",
    "write_npy",
]

#: What a full disk, a file size limit or a quota says, in words a user acts on.
_SPACE_ERRORS = {
    errno.ENOSPC: "the disk is full (no space left on the device)",
    errno.EFBIG: "a file would be too large (a file size limit is set for this process)",
    errno.EDQUOT: "the disk quota is exceeded",
}


def write_failure(exc: BaseException) -> str:
    """Why writing failed, in one line without the file's name: a full disk, a file size limit
    or a quota anywhere in the exception's chain, else the innermost reason."""
    seen: BaseException | None = exc
    innermost = exc
    for _ in range(10):
        if seen is None:
            break
        code = getattr(seen, "errno", None)
        if code in _SPACE_ERRORS:
            return _SPACE_ERRORS[code]
        innermost = seen
        seen = seen.__cause__ or seen.__context__
    return _reason(innermost)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc).strip()
    return text.splitlines()[-1] if text else type(exc).__name__


def _temp_path(path: Path) -> Path:
    # The real suffix stays last so that PyAV, matplotlib and PIL infer the right format.
    token = secrets.token_hex(4)
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{token}{path.suffix}")


@contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Write a file under a temporary name and move it onto ``path`` once the body succeeds.

    The temporary file is created (empty) before the body runs, in the same folder as ``path``,
    named ``.{name}.tmp-{pid}-{random}{suffix}``; the body writes to it (overwriting is fine).

    Args:
        path: the destination file.

    Yields:
        The temporary path to write to.

    Raises:
        OutputError: the folder is not writable, writing fails with an ``OSError`` or the final
            rename fails; the message names ``path`` and the reason. Other exceptions from the body
            propagate unchanged. In every failure the temporary file is removed and ``path`` is
            left as it was.
    """
    path = Path(path)
    tmp = _temp_path(path)
    try:
        # Creating it here makes an unwritable folder fail before any work is done.
        with open(tmp, "xb"):
            pass
    except OSError as exc:
        raise OutputError(f"{path}: cannot write: {_reason(exc)}") from exc
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as exc:
        with suppress(OSError):
            tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and not isinstance(exc, VideocamError):
            raise OutputError(f"{path}: cannot write: {_reason(exc)}") from exc
        raise


def ensure_output_dir(path: str | os.PathLike[str]) -> Path:
    """Create an output folder (and its parents) or check that an existing one is writable.

    Returns:
        The folder as a Path.

    Raises:
        OutputError: it cannot be created, exists but is not a folder, or is not writable.
    """
    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError as exc:
        raise OutputError(f"{folder}: cannot create output folder: not a directory") from exc
    except OSError as exc:
        raise OutputError(f"{folder}: cannot create output folder: {_reason(exc)}") from exc
    if not folder.is_dir():
        raise OutputError(f"{folder}: cannot create output folder: not a directory")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{folder}: output folder is not writable: permission denied")
    return folder


def write_csv(df: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write a table as CSV (no index column), atomically.

    Args:
        df: the table.
        path: destination file.

    Returns:
        The path written.
    """
    path = Path(path)
    with atomic_write(path) as tmp:
        df.to_csv(tmp, index=False)
    return path


def _jsonable(obj: Any) -> Any:
    """Plain-Python form of ``obj``: numpy scalars and arrays unpacked, NaN/inf -> None."""
    if isinstance(obj, float | np.floating):
        value = float(obj)
        return value if math.isfinite(value) else None
    if isinstance(obj, bool | np.bool_):
        return bool(obj)
    if isinstance(obj, int | np.integer):
        return int(obj)
    if obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())
    if isinstance(obj, Mapping):
        return {str(key): _jsonable(value) for key, value in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [_jsonable(value) for value in obj]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, Fraction):
        return str(obj)
    raise TypeError(f"write_json: cannot encode {type(obj).__name__} as JSON")


def write_json(obj: Any, path: str | os.PathLike[str]) -> Path:
    """Write ``obj`` as indented JSON, atomically.

    numpy scalars and arrays become numbers and lists, paths strings, Fractions ``"30000/1001"``
    strings, and NaN or infinite floats ``null``.

    Returns:
        The path written.

    Raises:
        TypeError: ``obj`` holds something with no JSON form.
    """
    path = Path(path)
    text = json.dumps(_jsonable(obj), indent=2, allow_nan=False) + "\n"
    with atomic_write(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def write_npy(array: np.ndarray, path: str | os.PathLike[str]) -> Path:
    """Save an array in ``.npy`` format (dtype kept), atomically.

    Returns:
        The path written.
    """
    path = Path(path)
    with atomic_write(path) as tmp, open(tmp, "wb") as handle:
        np.save(handle, np.asarray(array), allow_pickle=False)
    return path
