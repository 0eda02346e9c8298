"""Batch engines: run jobs, each in a process that loads the model once.

An engine takes the jobs still to do and reports one :class:`~videocam.batch.job.JobResult` per
job through a callback, in completion order. The local engine runs ``workers`` child processes
(started with ``spawn``: torch and ``fork`` do not mix), even for one worker, because a crash in
native code (decord, FFmpeg, a model extension) kills the process it happens in: the batch must
outlive it. Each worker loads the model once, then takes one job at a time over its own pipe, so
the parent always knows which video a worker was on. When a worker dies, that video is recorded
as failed (``WorkerCrash``, with the signal or exit code) and a fresh worker takes its place.

A Ray engine (``--engine ray``) follows the same shape: actors that load the model once and call
:func:`~videocam.batch.job.analyze_one`; a dead actor's job becomes
:func:`~videocam.batch.job.crash_result`.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

from videocam.batch.job import (
    STDERR_HEADER,
    JobResult,
    analyze_one,
    append_log,
    crash_result,
    describe_exit,
)
from videocam.batch.plan import Job
from videocam.errors import ModelLoadError

if TYPE_CHECKING:
    from videocam.config import AnalyzeConfig
    from videocam.models import LoadedModel

logger = logging.getLogger(__name__)

#: Seed of the global torch RNG before a worker loads its model, so that randomly initialised
#: models (``--weights none``) are the same in every worker and every rerun.
MODEL_SEED = 0

#: How much of a worker's stderr goes into a video's log.txt.
_STDERR_TAIL_BYTES = 16_000

#: Deaths of idle workers (between jobs) tolerated before the batch gives up.
_MAX_IDLE_DEATHS = 3


class Engine(Protocol):
    """Runs jobs; calls ``on_start(job)`` when one is handed out and ``on_result(result)`` once
    per job when it finishes (successfully, failed or crashed)."""

    def run(
        self,
        jobs: Sequence[Job],
        on_result: Callable[[JobResult], None],
        on_start: Callable[[Job], None] | None = None,
    ) -> None: ...


def default_threads(workers: int) -> int:
    """Torch threads per worker: ``OMP_NUM_THREADS`` when set, else the usable cores shared
    out, at least one."""
    with suppress(KeyError, ValueError):
        return max(1, int(os.environ["OMP_NUM_THREADS"]))
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, cores // max(1, workers))


# -- the worker process ---------------------------------------------------------------------------


def _die_with_parent(parent_pid: int) -> None:
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


def stderr_capture_path(scratch_dir: Path, pid: int) -> Path:
    """Where worker ``pid`` sends its stderr (a temporary name: a resume removes leftovers)."""
    return scratch_dir / f".stderr-{pid}.tmp-log"


def read_tail(path: Path, limit: int = _STDERR_TAIL_BYTES) -> str:
    """The last ``limit`` bytes of a text file, decoded leniently ("" when unreadable)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(max(0, handle.seek(0, os.SEEK_END) - limit))
            return handle.read().decode("utf-8", "replace").strip()
    except OSError:
        return ""


def _capture_stderr(scratch_dir: Path | None) -> BinaryIO | None:
    """Send this process's stderr (fd 2: FFmpeg and decord messages, Python warnings,
    faulthandler's dump on a fatal signal) to a file the job, or the parent after a crash,
    copies into the video's log.txt."""
    if scratch_dir is None:
        return None
    capture = open(stderr_capture_path(scratch_dir, os.getpid()), "w+b")  # noqa: SIM115
    sys.stderr.flush()
    os.dup2(capture.fileno(), 2)
    return capture


def run_job(
    job: Job, loaded: LoadedModel, config: AnalyzeConfig, capture: BinaryIO | None
) -> JobResult:
    """One video in a worker. ``capture``: the file the worker's stderr goes to; it is emptied
    first, and what the video's analysis wrote there is appended to the video's log."""
    if capture is None:
        return analyze_one(job, loaded, config)
    capture.seek(0)
    capture.truncate()
    try:
        return analyze_one(job, loaded, config)
    finally:
        sys.stderr.flush()
        text = read_tail(Path(capture.name))
        if text:
            append_log(job.out_dir, ["", STDERR_HEADER, text])


def worker_main(
    conn: Connection,
    config: AnalyzeConfig,
    threads: int,
    log_level: int,
    parent_pid: int,
    scratch_dir: Path | None,
) -> None:
    """A worker's life: load the model once, then analyse the jobs the parent sends.

    Messages to the parent: ``("ready", pid)``, ``("load_failed", type, message, user_error)``
    and ``("result", JobResult)``. A ``None`` job or a closed pipe ends the loop.
    """
    import faulthandler

    from videocam.errors import VideocamError

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    _die_with_parent(parent_pid)
    configure_worker_logging(log_level)
    thread_lock_for_tqdm()
    capture = _capture_stderr(scratch_dir)
    faulthandler.enable()  # a native crash dumps the Python stack into the capture
    try:
        try:
            import torch

            from videocam.pipeline import load_configured_model

            torch.set_num_threads(threads)
            torch.manual_seed(MODEL_SEED)
            loaded = load_configured_model(config)
        except Exception as exc:
            user_error = isinstance(exc, VideocamError)
            conn.send(("load_failed", type(exc).__name__, str(exc), user_error))
            return
        conn.send(("ready", os.getpid()))
        while True:
            try:
                job = conn.recv()
            except (EOFError, OSError):
                return
            if job is None:
                return
            conn.send(("result", run_job(job, loaded, config, capture)))
    finally:
        if capture is not None:
            with suppress(OSError):
                os.unlink(capture.name)


# -- the parent side -------------------------------------------------------------------------------


@dataclass
class _Worker:
    process: BaseProcess
    conn: Connection
    ready: bool = False
    job: Job | None = None
    job_started: float = 0.0
    messages: deque[Any] = field(default_factory=deque)


class LocalEngine:
    """Worker processes on this machine (see the module docstring).

    Args:
        config: the analysis options; every worker loads ``config``'s model once.
        workers: number of worker processes (at most one per job).
        threads: torch threads per worker; None = the cores shared out.
        log_level: level of the per-video logs (``log.txt``).
        scratch_dir: where workers keep their stderr capture (copied into each video's
            log.txt, and into a crashed video's); None = workers write to the batch's stderr.
    """

    name = "local"

    def __init__(
        self,
        config: AnalyzeConfig,
        *,
        workers: int = 1,
        threads: int | None = None,
        log_level: int = logging.INFO,
        scratch_dir: Path | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.config = config
        self.workers = workers
        self.threads = threads or default_threads(workers)
        self.log_level = log_level
        self.scratch_dir = scratch_dir
        self._context = multiprocessing.get_context("spawn")
        self._idle_deaths = 0

    def run(
        self,
        jobs: Sequence[Job],
        on_result: Callable[[JobResult], None],
        on_start: Callable[[Job], None] | None = None,
    ) -> None:
        """Run every job; returns when each has reported a result.

        Raises:
            ModelLoadError: a worker cannot load the model (the message says why), or dies
                while loading it.
        """
        pending = deque(jobs)
        workers: list[_Worker] = []
        clean = False
        try:
            while pending or any(w.job is not None for w in workers):
                busy = sum(w.job is not None for w in workers)
                while len(workers) < min(self.workers, busy + len(pending)):
                    workers.append(self._start())
                for w in workers:
                    if w.ready and w.job is None and pending:
                        self._assign(w, pending, on_start)
                waitables: list[Any] = [w.conn for w in workers]
                waitables += [w.process.sentinel for w in workers]
                wait(waitables, timeout=5.0)
                for w in list(workers):
                    # Messages first: a worker may have reported a result just before dying.
                    self._handle_messages(w, on_result)
                    if not w.process.is_alive():
                        workers.remove(w)
                        self._handle_death(w, on_result)
            clean = True
        finally:
            self._stop(workers, polite=clean)

    def _start(self) -> _Worker:
        parent_conn, child_conn = self._context.Pipe(duplex=True)
        process = self._context.Process(
            target=worker_main,
            args=(
                child_conn,
                self.config,
                self.threads,
                self.log_level,
                os.getpid(),
                self.scratch_dir,
            ),
            name="videocam-batch-worker",
            daemon=True,
        )
        process.start()
        child_conn.close()  # the parent keeps its end only: EOF when the worker dies
        logger.debug("started worker %s", process.pid)
        return _Worker(process=process, conn=parent_conn)

    def _assign(
        self, w: _Worker, pending: deque[Job], on_start: Callable[[Job], None] | None
    ) -> None:
        job = pending.popleft()
        try:
            w.conn.send(job)
        except OSError:  # the worker is gone: the main loop handles its death
            pending.appendleft(job)
            return
        w.job, w.job_started = job, time.perf_counter()
        if on_start is not None:
            on_start(job)

    def _handle_messages(self, w: _Worker, on_result: Callable[[JobResult], None]) -> None:
        try:
            while w.conn.poll():
                w.messages.append(w.conn.recv())
        except (EOFError, OSError):
            w.process.join(timeout=1.0)  # the pipe closed: the worker is dead or dying
        while w.messages:
            message = w.messages.popleft()
            if message[0] == "ready":
                w.ready = True
            elif message[0] == "load_failed":
                _, kind, text, user_error = message
                raise ModelLoadError(
                    text if user_error else f"cannot load the model: {kind}: {text}"
                )
            elif message[0] == "result":
                w.job = None
                on_result(message[1])

    def _handle_death(self, w: _Worker, on_result: Callable[[JobResult], None]) -> None:
        w.process.join()
        w.conn.close()
        code = w.process.exitcode
        details = self._take_stderr(w)
        if w.job is not None:
            logger.debug("worker %s died (%s) on %s", w.process.pid, code, w.job.path)
            seconds = time.perf_counter() - w.job_started
            on_result(crash_result(w.job, code, seconds, details=details))
        elif not w.ready:
            raise ModelLoadError(
                f"a batch worker died while loading model {self.config.model!r} "
                f"({describe_exit(code)})" + (f": {details.splitlines()[-1]}" if details else "")
            )
        else:
            self._idle_deaths += 1
            if self._idle_deaths > _MAX_IDLE_DEATHS:
                raise RuntimeError(f"batch workers keep dying ({describe_exit(code)})")

    def _take_stderr(self, w: _Worker) -> str:
        """A dead worker's captured stderr (removing the capture file)."""
        if self.scratch_dir is None or w.process.pid is None:
            return ""
        path = stderr_capture_path(self.scratch_dir, w.process.pid)
        text = read_tail(path)
        with suppress(OSError):
            path.unlink()
        return text

    def _stop(self, workers: list[_Worker], *, polite: bool) -> None:
        """End the workers: ask idle ones to leave, terminate the rest, kill what lingers."""
        for w in workers:
            if polite and w.job is None:
                with suppress(OSError):
                    w.conn.send(None)
            else:
                w.process.terminate()
        deadline = time.monotonic() + 10.0
        for w in workers:
            w.process.join(timeout=max(0.1, deadline - time.monotonic()))
            if w.process.is_alive():
                w.process.kill()
                w.process.join(timeout=5.0)
            w.conn.close()
            self._take_stderr(w)
