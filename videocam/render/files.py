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
    "STAGING_PREFIX",
    "atomic_write",
    "created_output_dir",
    "ensure_output_dir",
    "missing_folders",
    "not_writable_reason",
    "remove_empty_folders",
    "write_csv",
    "write_failure",
    "write_json",
    "write_npy",
]

#: Name prefix of the hidden staging folder an analysis is saved into, inside its output folder
#: (:mod:`videocam.analysis.outputs`), before its files are moved into place.
STAGING_PREFIX = ".videocam-staging-"

#: What a full disk, a file size limit, a quota or a read-only file system says, in words a
#: user acts on.
_WRITE_FAULTS = {
    errno.ENOSPC: "the disk is full (no space left on the device)",
    errno.EFBIG: "a file would be too large (a file size limit is set for this process)",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EROFS: "the file system is read-only",
}


def write_failure(exc: BaseException) -> str:
    """Why writing failed, in one line without the file's name: a full disk, a file size limit,
    a quota or a read-only file system anywhere in the exception's chain, else the innermost
    reason."""
    seen: BaseException | None = exc
    innermost = exc
    for _ in range(10):
        if seen is None:
            break
        code = getattr(seen, "errno", None)
        if code in _WRITE_FAULTS:
            return _WRITE_FAULTS[code]
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
        raise OutputError(f"{folder}: output folder is not writable: {not_writable_reason(folder)}")
    return folder


def not_writable_reason(folder: str | os.PathLike[str]) -> str:
    """Why a folder ``os.access`` finds unwritable is so: its file system is mounted read-only,
    or permission is denied."""
    try:
        read_only = bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):  # AttributeError: no statvfs (Windows)
        read_only = False
    return _WRITE_FAULTS[errno.EROFS] if read_only else "permission denied"


def missing_folders(path: str | os.PathLike[str]) -> list[Path]:
    """The folders :func:`ensure_output_dir` would create for ``path``, innermost first."""
    missing: list[Path] = []
    folder = Path(os.path.abspath(os.fspath(path)))
    while not folder.exists() and folder.parent != folder:
        missing.append(folder)
        folder = folder.parent
    return missing


@contextmanager
def created_output_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """:func:`ensure_output_dir` for the duration of a run that may fail: when the body raises
    (an error, Ctrl-C, SIGTERM...), the folders this call created are removed again if they are
    still empty, so a failed run leaves no empty output folder behind. A folder that existed
    before is never removed."""
    created = missing_folders(path)
    folder = ensure_output_dir(path)
    try:
        yield folder
    except BaseException:
        remove_empty_folders(created)
        raise


def remove_empty_folders(folders: list[Path]) -> None:
    """Remove each of ``folders`` (innermost first) that is empty; stop at the first that is
    not (it holds something, so its parents do too)."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return


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
