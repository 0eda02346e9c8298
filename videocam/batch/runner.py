"""``run_batch``: plan the videos, decide what ``--resume`` skips, run an engine, and keep
``index.csv``, ``failures.csv`` and the batch's review page up to date. Its option checks,
OUT rules, lock, engine choice and progress bar (:func:`check_engine_options`,
:func:`check_empty`, :func:`locked`, :func:`make_engine`, :class:`Progress`) serve
``videocam evaluate`` too (:mod:`videocam.evaluate.jobs`).

Files in OUT (each written atomically):

- ``index.csv``: one row per planned video, in plan order (:data:`INDEX_COLUMNS`); rewritten as
  videos finish (at most every few seconds) and at the end, so an interrupted batch still has a
  usable index (unfinished videos read ``pending``).
- ``failures.csv``: ``path``, ``error_type``, ``message`` (and ``output``) of each failed video;
  written even when empty.
- ``skipped.csv``: ``path``, ``reason`` of each file of the input folder that is not a video
  (:func:`~videocam.batch.plan.scan_folder`); written even when empty. The skipped files are
  also named on stderr when the batch starts.
- ``report.html``: the batch's review page (one row per video, links into each video's own
  page), rewritten with ``index.csv``.
- ``batch.json``: inputs, options and their hash, counts, timings, versions.
- ``.batch.lock``: held (``flock``) while a batch writes here, so two runs cannot mix; removed
  when the batch ends (left only by a batch killed with SIGKILL, and harmless then).

An OUT the batch created is removed again when the batch fails before writing anything into it.
When the batch stops early (an error, SIGINT, SIGTERM), the staging folders of the videos that
were in flight are removed from their sub-folders (the workers are stopped first).

Rules for an existing OUT: without ``--resume`` it must be empty (or absent): results are never
overwritten silently. With ``--resume`` a video is skipped when its sub-folder has a completion
marker for the same options (:func:`~videocam.batch.job.config_hash`), the same source file
(size, modification time) and all its recorded files; every other video (never started,
interrupted, failed, done with other options) is cleared and redone. Leftover temporary files
of interrupted writes are removed.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from videocam.analysis.layout import REPORT_HTML, SUMMARY_JSON
from videocam.batch.engine import Engine, LocalEngine
from videocam.batch.job import (
    INDEX_COLUMNS,
    LOG_FILE,
    STATUS_FAILED,
    STATUS_OK,
    STATUS_PENDING,
    STATUS_SKIPPED,
    JobResult,
    analyze_one,
    completed_result,
    config_hash,
    pending_result,
    remove_leftovers,
    remove_temp_files,
)
from videocam.batch.plan import LOCK_FILE, VIDEO_EXTENSIONS, Job, Skipped, plan_batch
from videocam.batch.worker import Task
from videocam.errors import ConfigError
from videocam.render.files import created_output_dir, write_csv, write_json

if TYPE_CHECKING:
    from videocam.config import AnalyzeConfig

logger = logging.getLogger(__name__)

#: Engine names (``--engine``): ``local`` worker processes, or actors on a ``ray`` cluster.
ENGINES: tuple[str, ...] = ("local", "ray")

EXIT_OK = 0
EXIT_SOME_FAILED = 3

INDEX_FILE = "index.csv"
FAILURES_FILE = "failures.csv"
SUMMARY_FILE = "batch.json"
SKIPPED_FILE = "skipped.csv"
FAILURE_COLUMNS = ["path", "error_type", "message", "output"]
SKIPPED_COLUMNS = ["path", "reason"]

#: Skipped files named one by one on stderr; the rest are counted (all are in skipped.csv).
SKIPPED_SHOWN = 20

#: Least time between two rewrites of index.csv while the batch runs.
INDEX_INTERVAL_S = 2.0


@dataclass(frozen=True)
class BatchReport:
    """What a batch did.

    Attributes:
        out_dir: OUT.
        results: one per planned video, in plan order.
        seconds: wall time.
        skipped: the files of the input folder that are not videos, with why.
    """

    out_dir: Path
    results: list[JobResult]
    seconds: float
    skipped: list[Skipped] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def failures(self) -> list[JobResult]:
        return [r for r in self.results if r.status == STATUS_FAILED]

    @property
    def exit_code(self) -> int:
        """0 when every video succeeded (or was complete already), 3 when some failed."""
        return EXIT_SOME_FAILED if self.failures else EXIT_OK


class _Index:
    """The batch's tables and page: every planned video's latest result, written atomically.

    Args:
        out_dir: OUT.
        jobs: the plan.
        base: the folder the videos' names on the page are relative to (the input folder,
            or the manifest's).
        config: the options (the page shows the model, and the method the finished videos'
            summary.json name, which ``config.method`` None leaves to the model).
    """

    def __init__(
        self, out_dir: Path, jobs: Sequence[Job], base: Path, config: AnalyzeConfig
    ) -> None:
        self.out_dir = out_dir
        self.config = config
        self.results: dict[str, JobResult] = {job.name: pending_result(job) for job in jobs}
        self.names = {job.name: _display_name(job.path, base) for job in jobs}
        # Which sub-folders hold a page and a log, and the method their summary names: looked
        # at once per finished video.
        self.files: dict[str, tuple[bool, bool, str]] = {}
        self._written_at: float | None = None
        self._page_written_at: float | None = None
        self._page_cost_s = 0.0

    def add(self, result: JobResult) -> None:
        self.results[result.output] = result
        self.files.pop(result.output, None)
        now = time.monotonic()
        if self._written_at is None or now - self._written_at >= INDEX_INTERVAL_S:
            # The page of a large batch takes a while to write (0.3 s for 10,000 videos): it is
            # rewritten at most once per ten times that, so it never takes much of this process.
            due = max(INDEX_INTERVAL_S, 10 * self._page_cost_s)
            self.write(page=self._page_written_at is None or now - self._page_written_at >= due)

    def _files(self, result: JobResult) -> tuple[bool, bool, str]:
        if result.status == STATUS_PENDING:
            return False, False, ""
        if result.output not in self.files:
            sub = self.out_dir / result.output
            self.files[result.output] = (
                (sub / REPORT_HTML).is_file(),
                (sub / LOG_FILE).is_file(),
                _summary_method(sub),
            )
        return self.files[result.output]

    def methods(self) -> str:
        """The method the finished videos were explained with (``gradcam``; several joined by
        ``, ``), else the one asked for, else empty (none finished yet: the model decides)."""
        found = sorted({self._files(r)[2] for r in self.results.values()} - {""})
        return ", ".join(found) or (self.config.method or "")

    def page_rows(self) -> list[dict[str, Any]]:
        """The rows of the batch page, in plan order."""
        rows = []
        for result in self.results.values():
            has_report, has_log, _ = self._files(result)
            row = result.row()
            times = [float(t) for t in row.pop("top_keyframe_times_s").split(";") if t]
            rows.append(
                {
                    **row,
                    "name": self.names.get(result.output, result.path),
                    "keyframe_times_s": times,
                    "report": REPORT_HTML if has_report else "",
                    "log": LOG_FILE if has_log else "",
                }
            )
        return rows

    def write(self, finished: bool = False, *, page: bool = True) -> None:
        """Rewrite index.csv and failures.csv, and the page unless ``page`` is False."""
        import pandas as pd

        rows = [r.row() for r in self.results.values()]
        index = pd.DataFrame(rows, columns=INDEX_COLUMNS)
        index["target_index"] = index["target_index"].astype("Int64")
        index["n_frames"] = index["n_frames"].astype("Int64")
        write_csv(index, self.out_dir / INDEX_FILE)
        write_failures(self.out_dir / FAILURES_FILE, self.results.values())
        if page:
            self.write_page(finished)
        self._written_at = time.monotonic()

    def write_page(self, finished: bool) -> None:
        from datetime import datetime, timezone

        from videocam.render.report import write_batch_report

        started = time.monotonic()
        write_batch_report(
            self.out_dir / REPORT_HTML,
            self.page_rows(),
            title=f"Batch {self.out_dir.name}",
            finished=finished,
            model=self.config.model,
            method=self.methods(),
            updated_at=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        )
        self._page_written_at = time.monotonic()
        self._page_cost_s = self._page_written_at - started

    @property
    def written(self) -> bool:
        return self._written_at is not None


def _summary_method(sub: Path) -> str:
    """The ``method`` a sub-folder's summary.json names (empty when it has none)."""
    try:
        method = json.loads((sub / SUMMARY_JSON).read_text(encoding="utf-8")).get("method")
    except (OSError, ValueError, AttributeError):
        return ""
    return method if isinstance(method, str) else ""


def check_engine_options(
    workers: int | None, engine: str, ray_address: str | None, timeout_s: float | None
) -> None:
    """Validate ``--workers``, ``--engine``, ``--ray-address`` and ``--timeout`` before any work
    (with ``--engine ray``, that Ray is installed).

    Raises:
        ConfigError: which option is wrong, and why.
    """
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    if timeout_s is not None and not (timeout_s > 0 and math.isfinite(timeout_s)):
        raise ConfigError(f"--timeout must be a finite number > 0 seconds, got {timeout_s}")
    if engine not in ENGINES:
        raise ConfigError(f"engine {engine!r} is not available; choose from {', '.join(ENGINES)}")
    if ray_address is not None and engine != "ray":
        raise ConfigError("--ray-address needs --engine ray")
    if engine == "ray":
        from videocam.batch.ray_engine import import_ray

        import_ray()  # fails early, before OUT is touched, with how to install it


def check_empty(out: Path, resume: bool) -> None:
    """Without ``resume`` OUT must be empty (results are never overwritten silently); in any
    case, remove the temporary files of interrupted writes in OUT itself.

    Raises:
        ConfigError: OUT holds something and ``resume`` is False.
    """
    existing = sorted(p.name for p in out.iterdir() if p.name != LOCK_FILE)
    if existing and not resume:
        raise ConfigError(
            f"{out}: output folder is not empty ({', '.join(existing[:3])}"
            f"{', ...' if len(existing) > 3 else ''}): use --resume to continue a run "
            "there, or choose an empty folder"
        )
    for tmp in out.glob(".*.tmp-*"):
        tmp.unlink(missing_ok=True)


class Progress:
    """The progress bar over videos (tqdm on stderr, with the count of failures), and the
    warning of each failure; call it with each result."""

    def __init__(self, total: int, desc: str, *, enabled: bool) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, desc=desc, unit="video", disable=not enabled)
        self.n_failed = 0

    def __call__(self, result: JobResult) -> None:
        if result.status == STATUS_FAILED:
            self.n_failed += 1
            logger.warning("%s: %s: %s", result.path, result.error_type, result.error)
        self.bar.update(1)
        self.bar.set_postfix(failed=self.n_failed, refresh=False)

    def close(self) -> None:
        self.bar.close()


def write_failures(path: Path, results: Iterable[JobResult], folder: str = "") -> None:
    """``failures.csv``: :data:`FAILURE_COLUMNS` of each failed result, ``output`` being
    ``folder`` + its sub-folder (written even when none failed)."""
    import pandas as pd

    rows = [
        {
            "path": r.path,
            "error_type": r.error_type,
            "message": r.error,
            "output": folder + r.output,
        }
        for r in results
        if r.status == STATUS_FAILED
    ]
    write_csv(pd.DataFrame(rows, columns=FAILURE_COLUMNS), path)


@contextmanager
def locked(out_dir: Path) -> Iterator[None]:
    """Hold OUT's lock file for the run (released by the OS even after kill -9), and remove it
    at the end, while still holding it.

    A run that opened the file just before the holder removed it would lock a file no longer
    in OUT: after locking, the run checks that the path still names the file it locked, and
    tries again if not.
    """
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    path = out_dir / LOCK_FILE
    while True:
        handle = open(path, "a")  # noqa: SIM115 - closed below, or after the run
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            handle.close()
            raise ConfigError(f"{out_dir}: another videocam batch is writing there") from exc
        try:
            current = os.stat(path).st_ino
        except FileNotFoundError:
            current = None
        if current == os.fstat(handle.fileno()).st_ino:
            break
        handle.close()  # the previous holder removed it: lock the new one
    try:
        yield
    finally:
        with suppress(OSError):
            path.unlink()
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def _resume_plan(
    jobs: Sequence[Job], digest: str, out_dir: Path
) -> tuple[list[Job], list[JobResult]]:
    """Split ``jobs`` into (to do, complete results), saying why videos are redone."""
    todo: list[Job] = []
    done: list[JobResult] = []
    states: dict[str, int] = {}
    for job in jobs:
        state, result = completed_result(job, digest)
        states[state] = states.get(state, 0) + 1
        if result is not None:
            remove_temp_files(job.out_dir)
            done.append(result)
        else:
            todo.append(job)
    reasons = {
        "config-changed": "were completed with other options",
        "source-changed": "changed since they were analysed",
        "files-changed": "have outputs missing or changed",
        "incomplete": "are incomplete (interrupted or failed)",
    }
    for state, reason in reasons.items():
        if states.get(state):
            log = logger.warning if state != "incomplete" else logger.info
            log("resume: %d video(s) %s: analysing them again", states[state], reason)
    logger.info(
        "resume: %d of %d video(s) complete in %s; %d to do",
        len(done),
        len(jobs),
        out_dir,
        len(todo),
    )
    return todo, done


def run_batch(
    inputs: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    config: AnalyzeConfig,
    *,
    workers: int | None = None,
    resume: bool = False,
    engine: str = "local",
    ray_address: str | None = None,
    progress: bool = False,
    log_level: int = logging.INFO,
    timeout_s: float | None = None,
) -> BatchReport:
    """Analyse every video of a folder or manifest into ``out_dir``, one sub-folder each.

    Args:
        inputs: a folder (searched recursively for video files) or a manifest CSV with a
            ``path`` column.
        out_dir: OUT; must be empty or absent unless ``resume``.
        config: the analysis options (the same for every video).
        workers: worker processes (or Ray actors), each loading the model once; None = 1
            locally, and for Ray one per GPU of the cluster, else one per CPU.
        resume: skip videos whose outputs are complete for these options; redo the rest.
        engine: ``local`` or ``ray`` (:class:`~videocam.batch.ray_engine.RayEngine`).
        ray_address: the Ray cluster to join (``HOST:PORT``, ``auto``); None = ``RAY_ADDRESS``
            when set, else a local Ray for this batch. OUT must then be on a filesystem every
            node mounts at the same path.
        progress: a progress bar over videos (tqdm, stderr).
        log_level: level of the per-video ``log.txt`` files.
        timeout_s: a video whose analysis runs longer has its worker killed and is listed as
            ``Timeout`` (``--resume`` retries it); None = no limit.

    Returns:
        The :class:`BatchReport`; its ``exit_code`` is 0 or 3. Videos that fail do not raise.

    Raises:
        ConfigError: bad ``inputs``, ``workers``, ``engine``; OUT not empty without ``resume``;
            OUT used by another batch; Ray missing or its cluster unreachable.
        ModelLoadError: the model cannot be loaded.
        OutputError: OUT cannot be written.
    """
    from videocam.analysis import package_versions

    started = time.perf_counter()
    check_engine_options(workers, engine, ray_address, timeout_s)
    plan = plan_batch(inputs, out_dir)
    jobs = plan.jobs
    _log_skipped(plan.skipped, _names_base(inputs))
    with created_output_dir(out_dir) as created, locked(created.absolute()):
        out = created.absolute()
        check_empty(out, resume)
        digest = config_hash(config)
        todo, done = _resume_plan(jobs, digest, out) if resume else (list(jobs), [])
        index = _Index(out, jobs, _names_base(inputs), config)
        for result in done:
            index.results[result.output] = result
        runner = make_engine(
            engine,
            config,
            workers,
            len(todo),
            ray_address,
            log_level=log_level,
            scratch_dir=out,
            timeout_s=timeout_s,
        )
        bar = Progress(len(todo), "batch", enabled=progress)

        def on_result(result: JobResult) -> None:
            index.add(result)
            bar(result)

        dispatched = False

        def on_start(job: Job) -> None:
            nonlocal dispatched
            dispatched = True

        finished = False
        try:
            if done:
                index.write()
            if todo:
                runner.run(todo, on_result, on_start)
            finished = True
        finally:
            bar.close()
            if not finished:  # the workers are stopped: clear what the unfinished ones staged
                for job in todo:
                    if index.results[job.name].status == STATUS_PENDING:
                        remove_leftovers(job.out_dir)
            report = BatchReport(
                out, list(index.results.values()), time.perf_counter() - started, plan.skipped
            )
            # Nothing is written when no video was started (e.g. the model cannot load), so
            # OUT stays empty and the same command can simply be run again.
            if index.written or dispatched or finished:
                index.write(finished)
                write_skipped(out / SKIPPED_FILE, plan.skipped)
                used = workers if workers is not None else getattr(runner, "workers", None) or 1
                summary = _summary(report, inputs, config, digest, used, resume, engine, finished)
                if engine == "ray":
                    summary["ray_address"] = getattr(runner, "address", None) or "local"
                write_json({**summary, "versions": package_versions()}, out / SUMMARY_FILE)
    return report


def _log_skipped(skipped: Sequence[Skipped], base: Path) -> None:
    """Name the skipped files on stderr (the first :data:`SKIPPED_SHOWN`, then a count)."""
    for item in skipped[:SKIPPED_SHOWN]:
        logger.warning("skipped %s: %s", _display_name(item.path, base), item.reason)
    if len(skipped) > SKIPPED_SHOWN:
        logger.warning(
            "skipped %d more file(s) that are not videos (all listed in OUT/%s)",
            len(skipped) - SKIPPED_SHOWN,
            SKIPPED_FILE,
        )


def write_skipped(path: Path, skipped: Iterable[Skipped]) -> None:
    """``skipped.csv``: :data:`SKIPPED_COLUMNS` of each skipped file (written even when empty)."""
    import pandas as pd

    rows = [{"path": str(item.path), "reason": item.reason} for item in skipped]
    write_csv(pd.DataFrame(rows, columns=SKIPPED_COLUMNS), path)


def _names_base(inputs: str | os.PathLike[str]) -> Path:
    """The folder the page names videos relative to: the input folder, or the manifest's."""
    path = Path(os.path.abspath(os.fspath(inputs)))
    return path if path.is_dir() else path.parent


def _display_name(video: Path, base: Path) -> str:
    """``video`` relative to ``base`` when inside it (``a/clip.mp4``), else its full path."""
    try:
        return video.relative_to(base).as_posix()
    except ValueError:
        return str(video)


def make_engine(
    engine: str,
    config: AnalyzeConfig,
    workers: int | None,
    n_todo: int,
    ray_address: str | None,
    *,
    log_level: int,
    scratch_dir: Path,
    timeout_s: float | None = None,
    task: Task = analyze_one,
) -> Engine:
    """The engine named ``engine``, with at most one worker per video to do, each running
    ``task`` per job."""
    if engine == "ray":
        from videocam.batch.ray_engine import RayEngine

        return RayEngine(
            config,
            workers=workers,
            address=ray_address,
            log_level=log_level,
            scratch_dir=scratch_dir,
            max_workers=max(1, n_todo),
            timeout_s=timeout_s,
            task=task,
        )
    return LocalEngine(
        config,
        workers=min(workers or 1, max(1, n_todo)),
        log_level=log_level,
        scratch_dir=scratch_dir,
        timeout_s=timeout_s,
        task=task,
    )


def _summary(
    report: BatchReport,
    inputs: str | os.PathLike[str],
    config: AnalyzeConfig,
    digest: str,
    workers: int,
    resume: bool,
    engine: str,
    finished: bool,
) -> dict[str, Any]:
    return {
        "inputs": os.path.abspath(os.fspath(inputs)),
        "out": str(report.out_dir),
        "finished": finished,
        "engine": engine,
        "workers": workers,
        "resume": resume,
        "counts": {
            "videos": len(report.results),
            "ok": report.count(STATUS_OK),
            "skipped_complete": report.count(STATUS_SKIPPED),
            "failed": report.count(STATUS_FAILED),
            "skipped_not_video": len(report.skipped),
            "pending": len(report.results)
            - report.count(STATUS_OK)
            - report.count(STATUS_SKIPPED)
            - report.count(STATUS_FAILED),
        },
        "seconds": round(report.seconds, 3),
        "config": config.to_dict(),
        "config_hash": digest,
        "video_extensions": sorted(VIDEO_EXTENSIONS),
        "files": {
            "index": INDEX_FILE,
            "failures": FAILURES_FILE,
            "skipped": SKIPPED_FILE,
            "report": REPORT_HTML,
            "per_video": "SUB/ with the analyze outputs, log.txt, and .done written last",
        },
    }
