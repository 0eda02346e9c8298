"""The life of one batch worker, wherever it runs (a spawned process or a Ray actor).

:func:`start_worker` is the one start-up, from a :class:`WorkerSpec`: Ctrl-C left to the
batch, optionally dying with the parent process, the working directory, videocam's records kept
for the per-video logs, stderr (fd 2) sent to a capture file, faulthandler, torch threads, the
seeded model load. Its :class:`BatchWorker` answers the batch with :meth:`~BatchWorker.hello`
(:class:`WorkerReady` or :class:`LoadFailed`) and runs one job at a time with :func:`run_job`:
the worker's :data:`Task` (``batch``'s :func:`~videocam.batch.job.analyze_one` by default;
``evaluate`` gives its own). The messages a worker sends are named here once, as small frozen
dataclasses that travel by pickle (over a pipe, or as a Ray call's return value):
:class:`WorkerReady`, :class:`LoadFailed` (:meth:`LoadFailed.error` turns it back into the
batch's :class:`~videocam.errors.ModelLoadError`), :class:`JobDone` and :class:`OutNotShared`.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, TypeAlias

from videocam.batch.job import STDERR_HEADER, JobResult, analyze_one, append_log
from videocam.batch.plan import Job
from videocam.errors import ModelLoadError
from videocam.runtime.process import prepare_process

if TYPE_CHECKING:
    from videocam.config import AnalyzeConfig
    from videocam.models import LoadedModel

#: What a worker runs for one job: ``task(job, loaded, config)`` returns the job's result and
#: never raises for the job's own failure (an ok or failed :class:`JobResult`). It travels to
#: the worker by pickle: a module-level function, or an instance of a module-level class.
Task: TypeAlias = "Callable[[Job, LoadedModel, AnalyzeConfig], JobResult]"

#: Seed of the global torch RNG before a worker loads its model, so that randomly initialised
#: models (``--weights none``) are the same in every worker and every rerun.
MODEL_SEED = 0

#: How much of a worker's stderr goes into a video's log.txt.
STDERR_TAIL_BYTES = 16_000


# -- the messages ------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkerReady:
    """The model is loaded; the worker takes jobs. A Ray actor adds its host and IP address."""

    pid: int
    host: str = ""
    ip: str = ""


@dataclass(frozen=True)
class LoadFailed:
    """The model cannot load; the worker takes no job.

    Attributes:
        kind: the exception's class name.
        message: its message.
        user_error: a :class:`~videocam.errors.VideocamError` (a bad option, said as it is).
    """

    kind: str
    message: str
    user_error: bool

    def error(self) -> ModelLoadError:
        """The batch's error: a user error as it is, anything else prefixed with its type."""
        if self.user_error:
            return ModelLoadError(self.message)
        return ModelLoadError(f"cannot load the model: {self.kind}: {self.message}")


@dataclass(frozen=True)
class JobDone:
    """A job is done (over a pipe; a Ray call returns the :class:`JobResult` itself)."""

    result: JobResult


@dataclass(frozen=True)
class OutNotShared:
    """A Ray actor cannot see the driver's OUT at the same path (on ``host``)."""

    host: str


@dataclass(frozen=True)
class WorkerSpec:
    """What every worker of a run starts from (it travels to the worker by pickle).

    Attributes:
        config: the analysis options; the worker loads their model once.
        threads: torch threads.
        log_level: level of the per-video logs.
        task: what the worker runs per job.
    """

    config: AnalyzeConfig
    threads: int
    log_level: int = logging.INFO
    task: Task = analyze_one


def die_with_parent(parent_pid: int) -> None:
    """Ask Linux to SIGKILL this worker when the batch process dies (even by kill -9), so no
    orphan keeps writing into OUT while a rerun cleans it. Elsewhere the worker still exits at
    its next read from the closed pipe."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            pr_set_pdeathsig = 1
            libc.prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        os._exit(1)


def thread_lock_for_tqdm() -> None:
    """tqdm guards its bars with a multiprocessing semaphore by default; a worker killed by a
    crash would leak it (and the resource tracker would warn). A thread lock is enough here."""
    import threading

    from tqdm import tqdm

    tqdm.set_lock(threading.RLock())


def configure_worker_logging(level: int) -> None:
    """In a worker (process or Ray actor): videocam's records go to each video's own log only."""
    package_logger = logging.getLogger("videocam")
    package_logger.handlers[:] = []  # records go to each video's log.txt (see analyze_one)
    package_logger.setLevel(level)
    package_logger.propagate = False


# -- the stderr capture ----------------------------------------------------------------------------


def capture_path(scratch_dir: Path, name: str) -> Path:
    """Where worker ``name`` sends its stderr (a temporary name: a resume removes leftovers)."""
    return scratch_dir / f".stderr-{name}.tmp-log"


def read_tail(path: Path, limit: int = STDERR_TAIL_BYTES) -> str:
    """The last ``limit`` bytes of a text file, decoded leniently ("" when unreadable)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(max(0, handle.seek(0, os.SEEK_END) - limit))
            return handle.read().decode("utf-8", "replace").strip()
    except OSError:
        return ""


def take_capture(path: Path | None) -> str:
    """A finished worker's captured stderr (its tail), removing the capture file."""
    if path is None:
        return ""
    text = read_tail(path)
    with suppress(OSError):
        path.unlink()
    return text


def _capture_stderr(path: Path | None) -> BinaryIO | None:
    """Send this process's stderr (fd 2: FFmpeg and decord messages, Python warnings,
    faulthandler's dump on a fatal signal) to ``path``, which the job, or the batch after a
    crash, copies into the video's log.txt. None when there is no path or it cannot be opened
    (the worker then writes to the stderr it has)."""
    if path is None:
        return None
    try:
        capture = open(path, "w+b")  # noqa: SIM115
    except OSError:
        return None
    sys.stderr.flush()
    with suppress(OSError):
        os.dup2(capture.fileno(), 2)
    return capture


# -- the worker --------------------------------------------------------------------------------


def run_job(
    job: Job,
    loaded: LoadedModel,
    config: AnalyzeConfig,
    capture: BinaryIO | None,
    task: Task = analyze_one,
) -> JobResult:
    """One video in a worker: ``task`` on ``job``. ``capture``: the file the worker's stderr
    goes to; it is emptied first, and what the job wrote there is appended to the video's
    log."""
    if capture is None:
        return task(job, loaded, config)
    capture.seek(0)
    capture.truncate()
    try:
        return task(job, loaded, config)
    finally:
        sys.stderr.flush()
        text = read_tail(Path(capture.name))
        if text:
            append_log(job.out_dir, ["", STDERR_HEADER, text])


@dataclass
class BatchWorker:
    """A started worker: what it started from, its model (None when it could not load), the
    load failure and the file its stderr goes to."""

    spec: WorkerSpec
    loaded: LoadedModel | None
    failure: LoadFailed | None
    capture: BinaryIO | None

    def hello(self, host: str = "", ip: str = "") -> WorkerReady | LoadFailed:
        """:class:`WorkerReady` (with where the worker runs, for a Ray actor), or the
        :class:`LoadFailed` message."""
        if self.failure is not None:
            return self.failure
        return WorkerReady(os.getpid(), host, ip)

    def run(self, job: Job) -> JobResult:
        """Run the task on one video (never raises for the video's own failure)."""
        if self.loaded is None:  # hello() said so; the batch sends no job then
            raise RuntimeError("the model is not loaded")
        return run_job(job, self.loaded, self.spec.config, self.capture, self.spec.task)

    def close(self) -> None:
        """Remove the stderr capture (at a worker's orderly end)."""
        if self.capture is not None:
            with suppress(OSError):
                os.unlink(self.capture.name)


def start_worker(
    spec: WorkerSpec,
    *,
    parent_pid: int | None = None,
    capture: Path | None = None,
    cwd: str | None = None,
) -> BatchWorker:
    """Start this process as a batch worker and load ``spec``'s model, once.

    Args:
        spec: the analysis options, torch threads, log level and task.
        parent_pid: the batch process to die with (a spawned worker); None = no such tie.
        capture: the file stderr goes to (see :func:`run_job`); None = stderr as it is.
        cwd: the working directory to take first (relative ``--model``/``--weights``/``--labels``
            paths resolve as in the batch); None = stay.

    Returns:
        The worker; a model that cannot load is its ``failure``, never an exception.
    """
    import faulthandler

    from videocam.errors import VideocamError

    with suppress(ValueError):  # not the main thread (a Ray actor may be elsewhere)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the batch's to handle
    if parent_pid is not None:
        die_with_parent(parent_pid)
    if cwd is not None:
        with suppress(OSError):
            os.chdir(cwd)
    configure_worker_logging(spec.log_level)
    thread_lock_for_tqdm()
    stderr_file = _capture_stderr(capture)
    faulthandler.enable()  # a native crash dumps the Python stack into the capture
    prepare_process()  # before torch loads here (a spawned worker or a Ray actor)
    try:
        import torch

        from videocam.analysis import load_configured_model

        torch.set_num_threads(spec.threads)
        torch.manual_seed(MODEL_SEED)
        loaded = load_configured_model(spec.config)
    except Exception as exc:  # noqa: BLE001 - sent to the batch, which raises it (LoadFailed)
        failure = LoadFailed(type(exc).__name__, str(exc), isinstance(exc, VideocamError))
        return BatchWorker(spec, None, failure, stderr_file)
    return BatchWorker(spec, loaded, None, stderr_file)
