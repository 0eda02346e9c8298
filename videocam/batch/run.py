"""``run_jobs``: the one sequence a run of jobs into an output folder follows, for ``videocam
batch`` (:func:`~videocam.batch.runner.run_batch`) and ``videocam evaluate``
(:func:`~videocam.evaluate.jobs.run_evaluation`), and its pieces.

The sequence: check the options (:meth:`RunOptions.check`), plan the jobs, take OUT and its
lock (:func:`locked`), insist on an empty OUT unless resuming (:func:`check_empty`), take what
``--resume`` finds complete, run the rest on the chosen engine (:func:`make_engine`) under a
progress bar (:class:`Progress`), keeping every job's latest result (:class:`JobsRun`). What
differs between the two commands is the caller's :class:`JobsCommand`: the plan, what a worker
runs per job (its task), which jobs are complete already, what is written as results come and
at the end, and whether an OUT the run created is removed when the run fails. ``failures.csv``
(:func:`write_failures`) and the exit status (:class:`JobsOutcome`) are the same for both.
"""

from __future__ import annotations

import logging
import math
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Generic, TypeVar

from videocam.batch.engine import LocalEngine, PoolEngine
from videocam.batch.job import STATUS_FAILED, JobResult, analyze_one, pending_result
from videocam.batch.plan import LOCK_FILE, Job
from videocam.batch.worker import Task
from videocam.errors import ConfigError
from videocam.render.files import created_output_dir, ensure_output_dir, write_csv

if TYPE_CHECKING:
    from videocam.config import AnalyzeConfig

logger = logging.getLogger(__name__)

#: Engine names (``--engine``): ``local`` worker processes, or actors on a ``ray`` cluster.
ENGINES: tuple[str, ...] = ("local", "ray")

EXIT_OK = 0
EXIT_SOME_FAILED = 3

FAILURES_FILE = "failures.csv"
FAILURE_COLUMNS = ["path", "error_type", "message", "output"]

J = TypeVar("J", bound=Job)
R = TypeVar("R")


@dataclass(frozen=True)
class RunOptions:
    """How to run the jobs: the options ``batch`` and ``evaluate`` share.

    Attributes:
        workers: worker processes (or Ray actors), each loading the model once; None = 1
            locally, and for Ray one per GPU of the cluster, else one per CPU.
        resume: take the jobs complete in OUT from an earlier run; redo the rest.
        engine: ``local`` or ``ray`` (:data:`ENGINES`).
        ray_address: the Ray cluster to join (``HOST:PORT``, ``auto``); None = ``RAY_ADDRESS``
            when set, else a local Ray for this run.
        progress: a progress bar over videos (tqdm, stderr).
        log_level: level of the per-video ``log.txt`` files.
        timeout_s: a video whose job runs longer has its worker killed and is listed as
            ``Timeout``; None = no limit.
    """

    workers: int | None = None
    resume: bool = False
    engine: str = "local"
    ray_address: str | None = None
    progress: bool = False
    log_level: int = logging.INFO
    timeout_s: float | None = None

    def check(self) -> None:
        """Validate ``--workers``, ``--engine``, ``--ray-address`` and ``--timeout`` before any
        work (with ``--engine ray``, that Ray is installed).

        Raises:
            ConfigError: which option is wrong, and why.
        """
        workers, timeout_s = self.workers, self.timeout_s
        if workers is not None and workers < 1:
            raise ConfigError(f"--workers must be >= 1, got {workers}")
        if timeout_s is not None and not (timeout_s > 0 and math.isfinite(timeout_s)):
            raise ConfigError(f"--timeout must be a finite number > 0 seconds, got {timeout_s}")
        if self.engine not in ENGINES:
            raise ConfigError(
                f"engine {self.engine!r} is not available; choose from {', '.join(ENGINES)}"
            )
        if self.ray_address is not None and self.engine != "ray":
            raise ConfigError("--ray-address needs --engine ray")
        if self.engine == "ray":
            from videocam.batch.ray_engine import import_ray

            import_ray()  # fails early, before OUT is touched, with how to install it


@dataclass
class JobsRun(Generic[J]):
    """A run of jobs in OUT, as :func:`run_jobs` drives it (the caller's :class:`JobsCommand`
    reads it).

    Attributes:
        out: OUT (absolute).
        jobs: the plan.
        todo: the jobs the engine runs (the plan less those complete already).
        engine: the engine running them.
        started: ``time.perf_counter()`` when the run began (before the option checks).
        results: every planned job's latest result by sub-folder name, in plan order
            (``pending`` until it reports).
        dispatched: some job was handed to a worker.
        finished: every job to do reported a result.
    """

    out: Path
    jobs: list[J]
    todo: list[J]
    engine: PoolEngine
    started: float
    results: dict[str, JobResult] = field(default_factory=dict)
    dispatched: bool = False
    finished: bool = False

    def ordered(self) -> list[JobResult]:
        """The results, in plan order."""
        return list(self.results.values())


class JobsCommand(ABC, Generic[J, R]):
    """The caller's part of :func:`run_jobs`: the plan, what a worker runs per job, which jobs
    are complete already, what is written as results come and at the end, and what the run
    gives back (``R``).

    Attributes:
        label: the progress bar's label.
        task: what a worker runs per job.
        remove_created_out: remove OUT again when the run created it and fails before writing
            anything there (:func:`~videocam.render.files.created_output_dir`).
    """

    label: str
    task: Task  # set per instance (a function kept on the class would become a method)
    remove_created_out: bool = False

    @abstractmethod
    def plan(self) -> Sequence[J]:
        """The jobs, in order (called once the options are checked, before OUT is touched)."""

    def complete(self, jobs: Sequence[J], out: Path, resume: bool) -> list[JobResult]:
        """The results (``skipped-complete``) of the jobs complete in OUT already, which the
        run does not redo; called once OUT is locked and, without ``resume``, found empty."""
        return []

    def begin(self, run: JobsRun[J]) -> None:
        """Before the engine starts."""

    def add(self, run: JobsRun[J], result: JobResult) -> None:
        """A job reported ``result`` (``run.results`` holds it already)."""

    @abstractmethod
    def finish(self, run: JobsRun[J]) -> R:
        """Every job reported: write what the run writes at the end (OUT still locked)."""

    def abandon(self, run: JobsRun[J]) -> None:
        """The run stops early (an error, SIGINT, SIGTERM; the workers are stopped): tidy
        up in OUT, still locked. The exception goes on."""


def run_jobs(
    command: JobsCommand[J, R],
    out_dir: str | os.PathLike[str],
    config: AnalyzeConfig,
    options: RunOptions,
) -> R:
    """Run ``command``'s jobs into ``out_dir`` (see the module docstring).

    Returns:
        What ``command.finish`` gives.

    Raises:
        ConfigError: a bad option or plan; OUT not empty without ``resume``; OUT used by
            another run; Ray missing or its cluster unreachable.
        ModelLoadError: the model cannot be loaded.
        OutputError: OUT cannot be written.
    """
    started = time.perf_counter()
    options.check()
    jobs = list(command.plan())
    opened: AbstractContextManager[Path] = (
        created_output_dir(out_dir)
        if command.remove_created_out
        else nullcontext(ensure_output_dir(out_dir))
    )
    with opened as folder, locked(folder.absolute()):
        out = folder.absolute()
        check_empty(out, options.resume)
        done = command.complete(jobs, out, options.resume)
        complete = {result.output for result in done}
        todo = [job for job in jobs if job.name not in complete]
        engine = make_engine(config, options, len(todo), scratch_dir=out, task=command.task)
        run = JobsRun(out, jobs, todo, engine, started)
        run.results = {job.name: pending_result(job) for job in jobs}
        run.results.update((result.output, result) for result in done)
        bar = Progress(len(todo), command.label, enabled=options.progress)

        def on_result(result: JobResult) -> None:
            run.results[result.output] = result
            command.add(run, result)
            bar(result)

        def on_start(job: Job) -> None:
            run.dispatched = True

        try:
            command.begin(run)
            if todo:
                engine.run(todo, on_result, on_start)
        except BaseException:
            bar.close()
            command.abandon(run)
            raise
        bar.close()
        run.finished = True
        return command.finish(run)


def make_engine(
    config: AnalyzeConfig,
    options: RunOptions,
    n_todo: int,
    *,
    scratch_dir: Path,
    task: Task = analyze_one,
) -> PoolEngine:
    """The engine ``options`` name, with at most one worker per job to do, each running
    ``task`` per job."""
    if options.engine == "ray":
        from videocam.batch.ray_engine import RayEngine

        return RayEngine(
            config,
            workers=options.workers,
            address=options.ray_address,
            log_level=options.log_level,
            scratch_dir=scratch_dir,
            max_workers=max(1, n_todo),
            timeout_s=options.timeout_s,
            task=task,
        )
    return LocalEngine(
        config,
        workers=min(options.workers or 1, max(1, n_todo)),
        log_level=options.log_level,
        scratch_dir=scratch_dir,
        timeout_s=options.timeout_s,
        task=task,
    )


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


class Progress:
    """The progress bar over videos (tqdm on stderr, with the count of failures), and the
    warning of each failure; call it with each result."""

    def __init__(self, total: int, desc: str, *, enabled: bool) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, desc=desc, unit="video", disable=not enabled)
        self.n_failed = 0

    def __call__(self, result: JobResult) -> None:
        """Count ``result`` (warning when it failed)."""
        if result.status == STATUS_FAILED:
            self.n_failed += 1
            logger.warning("%s: %s: %s", result.path, result.error_type, result.error)
        self.bar.update(1)
        self.bar.set_postfix(failed=self.n_failed, refresh=False)

    def close(self) -> None:
        """Close the bar."""
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


class JobsOutcome:
    """What a run gives back, as far as the exit status goes: ``results`` (one per planned
    job) and the failed ones among them."""

    results: list[JobResult]

    @property
    def failures(self) -> list[JobResult]:
        """The failed results, in plan order."""
        return [r for r in self.results if r.status == STATUS_FAILED]

    @property
    def exit_code(self) -> int:
        """0 when every job succeeded (or was complete already), 3 when some failed."""
        return EXIT_SOME_FAILED if self.failures else EXIT_OK
