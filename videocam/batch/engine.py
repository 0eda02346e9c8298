"""The batch engines' contract (:class:`Engine`), what every engine sets up
(:class:`PoolEngine`), and the local engine: worker processes spawned on this machine, their
pipes and sentinels.

An engine takes the jobs still to do and reports one :class:`~videocam.batch.job.JobResult` per
job through a callback, in completion order. The local engine runs ``workers`` child processes
(started with ``spawn``: torch and ``fork`` do not mix), even for one worker, because a crash in
native code (decord, FFmpeg, a model extension) kills the process it happens in: the batch must
outlive it. Each worker loads the model once, then takes one job at a time over its own pipe, so
the parent always knows which video a worker was on. When a worker dies, that video is recorded
as failed (``WorkerCrash``, with the signal or exit code) and a fresh worker takes its place.

What a worker does (start-up, one job) is :mod:`videocam.batch.worker`'s, and the queue is
:mod:`videocam.batch.pool`'s, for this engine and the Ray engine
(:mod:`videocam.batch.ray_engine`) alike; this module supplies only what is local.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from videocam.batch.job import JobResult, analyze_one, crash_result, describe_exit
from videocam.batch.plan import Job
from videocam.batch.pool import Died, Event, Finished, Ready, Slot, run_pool
from videocam.batch.worker import (
    JobDone,
    LoadFailed,
    Task,
    WorkerReady,
    WorkerSpec,
    capture_path,
    start_worker,
    take_capture,
)
from videocam.runtime.resources import (
    least_loaded_gpu,
    threads_per_worker,
    visible_gpus,
    worker_gpu_env,
)

if TYPE_CHECKING:
    from videocam.config import AnalyzeConfig

logger = logging.getLogger(__name__)


class Engine(Protocol):
    """Runs jobs; calls ``on_start(job)`` when one is handed out and ``on_result(result)`` once
    per job when it finishes (successfully, failed or crashed)."""

    def run(
        self,
        jobs: Sequence[Job],
        on_result: Callable[[JobResult], None],
        on_start: Callable[[Job], None] | None = None,
    ) -> None:
        """Run every job; returns when each has reported a result."""


class PoolEngine(ABC):
    """What every engine sets up: the options its workers start from (:meth:`spec`) and where
    they keep their stderr capture (:meth:`capture`). Each engine adds the
    :class:`~videocam.batch.pool.Backend` methods its ``run`` hands to
    :func:`~videocam.batch.pool.run_pool`.

    Args:
        config: the analysis options; every worker loads ``config``'s model once.
        workers: number of workers; None = the engine decides (see each engine).
        threads: torch threads (and, for Ray, CPU cores) per worker.
        log_level: level of the per-video logs (``log.txt``).
        scratch_dir: where workers keep their stderr capture (copied into each video's
            log.txt, and into a crashed video's); None = no capture.
        timeout_s: kill a worker whose video runs longer, and report it as ``Timeout``.
        task: what a worker runs per job (``batch``: analyse the video into its sub-folder).

    Raises:
        ValueError: ``workers`` < 1.
    """

    #: The engine's name (``--engine``).
    name: str
    #: What errors call a worker.
    noun: str
    #: Added to the error of a worker that died while loading the model.
    load_hint: str = ""

    def __init__(
        self,
        config: AnalyzeConfig,
        *,
        workers: int | None,
        threads: int,
        log_level: int = logging.INFO,
        scratch_dir: Path | None = None,
        timeout_s: float | None = None,
        task: Task = analyze_one,
    ) -> None:
        if workers is not None and workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.config = config
        self.workers = workers
        self.threads = threads
        self.log_level = log_level
        self.scratch_dir = scratch_dir
        self.timeout_s = timeout_s
        self.task = task

    @abstractmethod
    def run(
        self,
        jobs: Sequence[Job],
        on_result: Callable[[JobResult], None],
        on_start: Callable[[Job], None] | None = None,
    ) -> None:
        """Run every job; returns when each has reported a result (see :class:`Engine`)."""

    def spec(self) -> WorkerSpec:
        """What the next worker starts from (the threads as they are now)."""
        return WorkerSpec(self.config, self.threads, self.log_level, self.task)

    def capture(self, name: str) -> Path | None:
        """Where worker ``name`` sends its stderr (None without a scratch folder)."""
        return None if self.scratch_dir is None else capture_path(self.scratch_dir, name)


# -- the worker process ---------------------------------------------------------------------------


def worker_main(
    conn: Connection,
    spec: WorkerSpec,
    parent_pid: int,
    scratch_dir: Path | None,
    env: dict[str, str] | None = None,
) -> None:
    """A worker process's life: start (:func:`~videocam.batch.worker.start_worker`), then
    run ``spec.task`` on the jobs the parent sends.

    ``env`` is set first, before torch is imported here (its GPU: ``CUDA_VISIBLE_DEVICES``).
    Its stderr goes to a capture file in ``scratch_dir`` named after its pid (None = the
    batch's stderr), which the parent finds again from the pid. Messages to the parent:
    :class:`~videocam.batch.worker.WorkerReady` or :class:`~videocam.batch.worker.LoadFailed`,
    then a :class:`~videocam.batch.worker.JobDone` per job. A ``None`` job or a closed pipe
    ends the loop.
    """
    os.environ.update(env or {})
    capture = None if scratch_dir is None else capture_path(scratch_dir, str(os.getpid()))
    worker = start_worker(spec, parent_pid=parent_pid, capture=capture)
    try:
        conn.send(worker.hello())
        if worker.loaded is None:
            return
        while True:
            try:
                job = conn.recv()
            except (EOFError, OSError):
                return
            if job is None:
                return
            conn.send(JobDone(worker.run(job)))
    finally:
        worker.close()


# -- the parent side -------------------------------------------------------------------------------


@dataclass(kw_only=True)
class _Worker(Slot):
    process: BaseProcess
    conn: Connection
    gpu: str | None = None
    messages: deque[WorkerReady | LoadFailed | JobDone] = field(default_factory=deque)

    def describe(self) -> str:
        return f"pid {self.process.pid}"


class LocalEngine(PoolEngine):
    """Worker processes on this machine (see the module docstring).

    Args:
        config: the analysis options; every worker loads ``config``'s model once.
        workers: number of worker processes (at most one per job).
        threads: torch threads per worker; None = ``OMP_NUM_THREADS``, else the usable cores
            shared out (:func:`~videocam.runtime.resources.threads_per_worker`).
        log_level: level of the per-video logs (``log.txt``).
        scratch_dir: where workers keep their stderr capture (copied into each video's
            log.txt, and into a crashed video's); None = workers write to the batch's stderr.
        timeout_s: kill a worker whose video runs longer, and report it as ``Timeout``.
        task: what a worker runs per job (``batch``: analyse the video into its sub-folder).
    """

    name = "local"
    noun = "batch worker"
    workers: int

    def __init__(
        self,
        config: AnalyzeConfig,
        *,
        workers: int = 1,
        threads: int | None = None,
        log_level: int = logging.INFO,
        scratch_dir: Path | None = None,
        timeout_s: float | None = None,
        task: Task = analyze_one,
    ) -> None:
        super().__init__(
            config,
            workers=workers,
            threads=threads or threads_per_worker(workers),
            log_level=log_level,
            scratch_dir=scratch_dir,
            timeout_s=timeout_s,
            task=task,
        )
        self._context = multiprocessing.get_context("spawn")
        #: GPUs the workers spread over (one each, round-robin); none with ``--device cpu``.
        self.gpus = [] if config.device == "cpu" else visible_gpus()
        self._gpu_load: dict[str, int] = {}

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
        run_pool(self, jobs, on_result, on_start, size=self.workers, timeout_s=self.timeout_s)

    # -- the pool's backend (see videocam.batch.pool.Backend) --

    def start(self) -> _Worker:
        """Spawn a worker process (on the least loaded GPU, when there are GPUs)."""
        gpu, env = None, None
        if self.gpus:
            gpu = least_loaded_gpu(self.gpus, self._gpu_load)
            self._gpu_load[gpu] = self._gpu_load.get(gpu, 0) + 1
            sharing = -(-self.workers // len(self.gpus))  # workers per GPU at most
            env = worker_gpu_env(gpu, sharing)
        parent_conn, child_conn = self._context.Pipe(duplex=True)
        process = self._context.Process(
            target=worker_main,
            args=(child_conn, self.spec(), os.getpid(), self.scratch_dir, env),
            name="videocam-batch-worker",
            daemon=True,
        )
        process.start()
        child_conn.close()  # the parent keeps its end only: EOF when the worker dies
        logger.debug("started worker %s%s", process.pid, f" on GPU {gpu}" if gpu else "")
        return _Worker(process=process, conn=parent_conn, gpu=gpu)

    def _release(self, w: _Worker) -> None:
        """The worker is gone: its GPU has room for the next."""
        if w.gpu is not None:
            self._gpu_load[w.gpu] = max(0, self._gpu_load.get(w.gpu, 0) - 1)
            w.gpu = None

    def assign(self, w: _Worker, job: Job) -> bool:
        """Send ``job`` to the worker; False when its pipe is closed (it died)."""
        try:
            w.conn.send(job)
        except OSError:  # the worker is gone: poll reports its death
            return False
        return True

    def poll(self, workers: Sequence[_Worker], timeout: float) -> Iterator[Event[_Worker]]:
        """What happened to the workers within ``timeout`` seconds: ready, finished, died."""
        waitables: list[Any] = [w.conn for w in workers]
        waitables += [w.process.sentinel for w in workers]
        wait(waitables, timeout=timeout)
        for w in list(workers):
            # Messages first: a worker may have reported a result just before dying.
            yield from self._messages(w)
            if not w.process.is_alive():
                w.process.join()
                w.conn.close()
                self._release(w)
                yield Died(w, describe_exit(w.process.exitcode), self._take_stderr(w))

    def _messages(self, w: _Worker) -> Iterator[Event[_Worker]]:
        try:
            while w.conn.poll():
                w.messages.append(w.conn.recv())
        except (EOFError, OSError):
            w.process.join(timeout=1.0)  # the pipe closed: the worker is dead or dying
        while w.messages:
            message = w.messages.popleft()
            if isinstance(message, WorkerReady):
                yield Ready(w)
            elif isinstance(message, LoadFailed):
                raise message.error()
            else:
                yield Finished(w, message.result)

    def crash_result(self, w: _Worker, job: Job, seconds: float, death: Died[_Worker]) -> JobResult:
        """The result of the job a worker died on (its exit code, its stderr's tail)."""
        return crash_result(job, w.process.exitcode, seconds, details=death.details)

    def kill(self, w: _Worker) -> None:
        """Kill the worker process (it may be gone already)."""
        with suppress(OSError):
            w.process.kill()

    def _take_stderr(self, w: _Worker) -> str:
        """A dead worker's captured stderr (removing the capture file)."""
        if w.process.pid is None:
            return ""
        return take_capture(self.capture(str(w.process.pid)))

    def stop(self, workers: Sequence[_Worker], *, clean: bool) -> None:
        """End the workers: ask idle ones to leave, terminate the rest, kill what lingers."""
        for w in workers:
            if clean and w.job is None:
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
            self._release(w)
            self._take_stderr(w)
