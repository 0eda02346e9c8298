"""One batch job: analyse one video into its sub-folder, completion marker last.

:func:`analyze_one` is the unit every engine runs (in a local worker process or a Ray actor,
through :func:`~videocam.batch.worker.run_job`): it clears the sub-folder, runs the pipeline
with an already-loaded model, writes every output atomically (``Analysis.save``), then
``log.txt``, and only then the completion marker ``.done``. A sub-folder is therefore complete
exactly when its marker exists; anything else is incomplete and is cleared before it is redone.
Errors are returned as a failed :class:`JobResult`, never raised, so one video cannot end the
batch.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from videocam.batch.plan import Job
from videocam.errors import VideocamError
from videocam.render.files import STAGING_PREFIX, atomic_write, ensure_output_dir, write_json

if TYPE_CHECKING:
    import pandas as pd

    from videocam.analysis import Analysis
    from videocam.config import AnalyzeConfig
    from videocam.models import LoadedModel

logger = logging.getLogger(__name__)

#: The completion marker, written last into a sub-folder.
DONE_MARKER = ".done"
#: Per-video log (warnings of the analysis; the traceback of a failure).
LOG_FILE = "log.txt"
MARKER_FORMAT = 1

STATUS_OK = "ok"
STATUS_FAILED = "failed"
STATUS_SKIPPED = "skipped-complete"
STATUS_PENDING = "pending"

#: error_type of a video whose worker process died (native crash, killed, out of memory).
WORKER_CRASH = "WorkerCrash"
#: error_type of a video whose analysis ran past ``--timeout`` (its worker was killed).
TIMEOUT = "Timeout"


@dataclass(frozen=True)
class JobResult:
    """What a job reports; one row of ``index.csv`` (the field order is the column order).

    Attributes:
        path: the video (absolute).
        output: its sub-folder name inside OUT.
        status: ``ok``, ``failed``, ``skipped-complete`` (``--resume``) or ``pending``.
        target: name of the explained class.
        target_index: its index.
        top_keyframe_times_s: keyframe times by rank, ``;``-separated (``"3.360;3.960"``).
        n_frames: frames analysed.
        seconds: wall time of the analysis and its outputs.
        error_type: the exception's class name, or ``WorkerCrash``.
        error: the error message.
        peak_target_score: the explained class's largest per-frame score.
        peak_attribution: the largest per-frame attribution.
        segment_share: share of the analysed frames inside a segment.
        top_keyframe_image: the strongest keyframe's image, relative to the sub-folder (empty
            without rendering or keyframes).
    """

    path: str
    output: str
    status: str
    target: str = ""
    target_index: int | None = None
    top_keyframe_times_s: str = ""
    n_frames: int | None = None
    seconds: float | None = None
    error_type: str = ""
    error: str = ""
    peak_target_score: float | None = None
    peak_attribution: float | None = None
    segment_share: float | None = None
    top_keyframe_image: str = ""

    def row(self) -> dict[str, Any]:
        """The result as a dict (one row of ``index.csv``)."""
        return asdict(self)


INDEX_COLUMNS: list[str] = [f.name for f in fields(JobResult)]


def pending_result(job: Job) -> JobResult:
    """The result of a job that has not reported yet (``pending``)."""
    return JobResult(path=str(job.path), output=job.name, status=STATUS_PENDING)


def failed_result(job: Job, error_type: str, message: str, seconds: float | None) -> JobResult:
    """The result of a job that failed with ``error_type``: ``message``."""
    return JobResult(
        path=str(job.path),
        output=job.name,
        status=STATUS_FAILED,
        seconds=None if seconds is None else round(seconds, 3),
        error_type=error_type,
        error=" ".join(message.split()),
    )


# -- fingerprints -------------------------------------------------------------------------------


def _file_identity(value: Any) -> list[Any] | None:
    """(absolute path, size, mtime) of an option that names an existing file, else None; for a
    directory (``hf:DIR``, a save_pretrained folder) the same for each file directly in it."""
    if not isinstance(value, str) or not value:
        return None
    candidates = [value]
    if ":" in value:
        candidates.append(value.rpartition(":")[0])  # a custom builder file.py:function
        candidates.append(value.partition(":")[2])  # hf:DIR
    for candidate in candidates:
        try:
            stat = os.stat(candidate)
        except OSError:
            continue
        if os.path.isfile(candidate):
            return [os.path.abspath(candidate), stat.st_size, stat.st_mtime_ns]
        if os.path.isdir(candidate) and value.lower().startswith("hf:"):
            files = []
            for entry in sorted(os.scandir(candidate), key=lambda e: e.name):
                if entry.is_file():
                    info = entry.stat()
                    files.append([entry.name, info.st_size, info.st_mtime_ns])
            return [os.path.abspath(candidate), files]
    return None


def config_hash(config: AnalyzeConfig) -> str:
    """A digest of everything that shapes the outputs: every option, plus the identity (size,
    modification time) of the files the options name (weights, labels, custom model file, the
    files of an ``hf:DIR``), so a retrained model at the same path invalidates completed videos
    too."""
    options = config.to_dict()
    files = {
        name: identity
        for name in ("model", "weights", "labels")
        if (identity := _file_identity(options.get(name))) is not None
    }
    text = json.dumps({"options": options, "files": files}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def source_identity(path: Path) -> dict[str, int] | None:
    """Size and modification time of a video (None if it cannot be read)."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


# -- sub-folder state ----------------------------------------------------------------------------


def read_marker(out_dir: Path) -> dict[str, Any] | None:
    """The completion marker's content, or None when absent or unreadable."""
    try:
        data = json.loads((out_dir / DONE_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("format") == MARKER_FORMAT else None


def completed_result(job: Job, digest: str) -> tuple[str, JobResult | None]:
    """Whether ``job``'s sub-folder holds a complete result for this config.

    Returns:
        (state, result): state ``complete`` with the recorded result (status
        ``skipped-complete``); or ``missing`` (no sub-folder), ``incomplete`` (no marker),
        ``config-changed``, ``source-changed`` (the video's size or time changed) or
        ``files-changed`` (a recorded output is gone or has another size) with None.
    """
    marker = read_marker(job.out_dir)
    if marker is None:
        return ("incomplete" if job.out_dir.exists() else "missing"), None
    if marker.get("config_hash") != digest:
        return "config-changed", None
    if marker.get("source") != source_identity(job.path):
        return "source-changed", None
    for name, size in marker.get("files", {}).items():
        try:
            if (job.out_dir / name).stat().st_size != size:
                return "files-changed", None
        except OSError:
            return "files-changed", None
    known = {f.name for f in fields(JobResult)}
    recorded = {k: v for k, v in marker.get("result", {}).items() if k in known}
    recorded.update(path=str(job.path), output=job.name, status="skipped-complete")
    if "peak_attribution" not in recorded:  # completed before the index recorded them
        recorded.update(_recorded_stats(job.out_dir))
    return "complete", JobResult(**recorded)


def clear_sub_folder(out_dir: Path) -> None:
    """Remove a sub-folder's marker first (so a kill mid-way leaves it incomplete), then the rest
    (partial outputs and temporary files)."""
    with suppress(FileNotFoundError):
        (out_dir / DONE_MARKER).unlink()
    if out_dir.is_dir() and not out_dir.is_symlink():
        shutil.rmtree(out_dir)
    elif out_dir.exists() or out_dir.is_symlink():
        out_dir.unlink()


def remove_leftovers(folder: Path) -> None:
    """Remove what an analysis stopped part-way leaves in ``folder``: its staging folders and
    the temporary files of interrupted writes (nothing else: --resume clears the rest)."""
    if not folder.is_dir():
        return
    for staging in folder.glob(f"{STAGING_PREFIX}*"):
        if staging.is_dir() and not staging.is_symlink():
            shutil.rmtree(staging, ignore_errors=True)
    remove_temp_files(folder)


def remove_temp_files(folder: Path) -> int:
    """Remove leftover temporary files of interrupted atomic writes (``.NAME.tmp-*``)."""
    removed = 0
    for tmp in folder.rglob(".*.tmp-*"):
        if tmp.is_file():
            with suppress(OSError):
                tmp.unlink()
                removed += 1
    return removed


def _output_sizes(out_dir: Path) -> dict[str, int]:
    return {
        p.relative_to(out_dir).as_posix(): p.stat().st_size
        for p in sorted(out_dir.rglob("*"))
        if p.is_file() and p.name not in (DONE_MARKER, LOG_FILE)
    }


# -- the job --------------------------------------------------------------------------------------


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        with suppress(Exception):
            self.lines.append(self.format(record))


@contextmanager
def _captured_log() -> Iterator[_Collect]:
    """Collect the package's log records for one video (whatever level the logger lets by)."""
    handler = _Collect()
    package_logger = logging.getLogger("videocam")
    package_logger.addHandler(handler)
    try:
        yield handler
    finally:
        package_logger.removeHandler(handler)


def write_log(out_dir: Path, lines: list[str]) -> None:
    """Write ``log.txt`` (atomically)."""
    with atomic_write(out_dir / LOG_FILE) as tmp:
        tmp.write_text("\n".join(lines) + ("\n" if lines else ""), encoding="utf-8")


def append_log(out_dir: Path, lines: list[str]) -> None:
    """Add lines to ``log.txt`` (rewritten atomically; not part of the completeness check)."""
    if not out_dir.is_dir():
        return
    try:
        old = (out_dir / LOG_FILE).read_text(encoding="utf-8").splitlines()
    except OSError:
        old = []
    with suppress(OSError, VideocamError):
        write_log(out_dir, [*old, *lines])


def _stats(frames: pd.DataFrame, keyframes: pd.DataFrame, segments: pd.DataFrame) -> dict[str, Any]:
    """The index's per-video numbers (``peak_target_score``, ``peak_attribution``,
    ``segment_share``, ``top_keyframe_image``), as the batch page shows them."""
    from videocam.render.report import video_stats

    stats: dict[str, Any] = {
        key: None if value is None else round(value, 6)
        for key, value in video_stats(frames, segments).items()
    }
    ranked = keyframes.sort_values("rank")
    image = ranked["image"].iloc[0] if len(ranked) and "image" in ranked else ""
    stats["top_keyframe_image"] = image if isinstance(image, str) else ""
    return stats


def _ok_result(job: Job, analysis: Analysis, seconds: float, render: bool) -> JobResult:
    from videocam.render.keyframes import keyframe_image_name

    index, name = analysis.target
    keyframes = analysis.keyframes.sort_values("rank")
    times = keyframes.time_s.tolist()
    images = [
        keyframe_image_name(r, f) if render else ""
        for r, f in zip(keyframes["rank"], keyframes.frame_index, strict=True)
    ]
    return JobResult(
        path=str(job.path),
        output=job.name,
        status=STATUS_OK,
        target=name,
        target_index=index,
        top_keyframe_times_s=";".join(f"{t:.3f}" for t in times),
        n_frames=len(analysis.frames),
        seconds=round(seconds, 3),
        **_stats(analysis.frames, keyframes.assign(image=images), analysis.segments),
    )


def _recorded_stats(out_dir: Path) -> dict[str, Any]:
    """The per-video numbers of a sub-folder completed by a version that did not record them,
    from its tables (nothing when they cannot be read)."""
    import pandas as pd

    from videocam.analysis.layout import FRAMES_CSV, KEYFRAMES_CSV, SEGMENTS_CSV

    try:
        frames = pd.read_csv(out_dir / FRAMES_CSV)
        keyframes = pd.read_csv(out_dir / KEYFRAMES_CSV, keep_default_na=False)
        segments = pd.read_csv(out_dir / SEGMENTS_CSV)
        return _stats(frames, keyframes, segments)
    except (OSError, ValueError, KeyError) as exc:
        logger.debug("%s: cannot read its tables: %s", out_dir, exc)
        return {}


def analyze_one(job: Job, loaded: LoadedModel, config: AnalyzeConfig) -> JobResult:
    """Analyse one video into ``job.out_dir``; the completion marker is written last.

    The sub-folder is cleared first (whatever an earlier, interrupted run left there). On
    success it holds the analysis outputs, ``log.txt`` and ``.done``; on failure only
    ``log.txt`` (the error and its traceback). Never raises for a video's own failure.
    """
    from videocam.analysis import run_analysis

    started = time.perf_counter()
    digest = config_hash(config)
    source = source_identity(job.path)  # before decoding: a file changed mid-run is redone
    with _captured_log() as log:
        try:
            clear_sub_folder(job.out_dir)
            ensure_output_dir(job.out_dir)
            analysis = run_analysis(job.path, loaded, config)
            analysis.save(job.out_dir, render=config.render)
            result = _ok_result(job, analysis, time.perf_counter() - started, config.render)
            logger.info("%s: done in %.2f s", job.path, result.seconds or 0.0)
            write_log(job.out_dir, log.lines)
            marker = {
                "format": MARKER_FORMAT,
                "config_hash": digest,
                "source": source,
                "files": _output_sizes(job.out_dir),
                "result": result.row(),
                "versions": analysis.summary.get("versions", {}),
                "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            }
            write_json(marker, job.out_dir / DONE_MARKER)
            return result
        except Exception as exc:  # noqa: BLE001 - one video's failure must not end the batch
            result = failed_result(job, type(exc).__name__, str(exc), time.perf_counter() - started)
            logger.error("%s: %s: %s", job.path, result.error_type, result.error)
            lines = [*log.lines, "", traceback.format_exc()]
    record_failure(job, lines)
    return result


def record_failure(job: Job, lines: list[str]) -> None:
    """Leave a failed video's sub-folder with ``log.txt`` only (no partial outputs)."""
    try:
        clear_sub_folder(job.out_dir)
        ensure_output_dir(job.out_dir)
        write_log(job.out_dir, lines)
    except Exception:  # the failure is already recorded in the index; the log is a bonus
        logger.debug("%s: cannot write log.txt", job.out_dir, exc_info=True)


def describe_exit(exitcode: int | None) -> str:
    """``signal SIGSEGV`` or ``exit code 3``, from a process's exit code."""
    import signal

    if exitcode is not None and exitcode < 0:
        try:
            return f"signal {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"signal {-exitcode}"
    return f"exit code {exitcode}"


#: Heads what a worker wrote to stderr in a video's log.txt.
STDERR_HEADER = "stderr (decoders, native libraries):"


def crash_result(
    job: Job, exitcode: int | None, seconds: float | None, *, details: str = ""
) -> JobResult:
    """A failed result for a video whose worker died; its sub-folder is cleared to a log.txt
    with the reason and ``details`` (what the worker wrote to stderr: faulthandler's stack)."""
    message = (
        f"the worker process died with {describe_exit(exitcode)} while analysing this video "
        "(a crash in native decoder or model code, or killed, e.g. out of memory)"
    )
    return worker_crash_result(job, message, seconds, details)


def worker_crash_result(
    job: Job, message: str, seconds: float | None, details: str = "", more: Sequence[str] = ()
) -> JobResult:
    """A ``WorkerCrash`` result saying ``message``; the video's log.txt gets the message, the
    worker's stderr (``details``) and any ``more`` lines."""
    lines = [message]
    if details:
        lines += ["", STDERR_HEADER, details]
    lines += more
    record_failure(job, lines)
    return failed_result(job, WORKER_CRASH, message, seconds)


def timeout_result(job: Job, seconds: float, limit_s: float, *, details: str = "") -> JobResult:
    """A ``Timeout`` result for a video whose analysis ran past ``limit_s`` and whose worker was
    killed; its sub-folder is cleared to a log.txt with the reason and the worker's stderr."""
    message = (
        f"the analysis ran longer than --timeout {limit_s:g} s (a decoder hung in native code, "
        "or a video too long for the limit): its worker was killed"
    )
    lines = [message]
    if details:
        lines += ["", STDERR_HEADER, details]
    record_failure(job, lines)
    return failed_result(job, TIMEOUT, message, seconds)
