"""The scheduling of a batch's jobs over a pool of workers, shared by every engine.

:func:`run_pool` keeps exactly one job in flight per ready worker, so the batch always knows
which video a worker was on. It starts workers up to ``min(size, busy + pending)``, calls
``on_start(job)`` when a job is handed out and ``on_result(result)`` once per job. A worker that
dies during a job turns the job into a crash result (the backend's :meth:`Backend.crash_result`)
and a fresh worker takes its place. Deaths while loading the model fail the batch with
:class:`~videocam.errors.ModelLoadError` until some worker has loaded it; after that they count,
with deaths between jobs, as idle deaths, of which :data:`MAX_IDLE_DEATHS` are tolerated.

What is an engine's own comes from its :class:`Backend`: starting a worker, handing it a job,
waiting for what happened (:class:`Ready`, :class:`Finished`, :class:`Died`), building a crash
result and stopping the workers.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

from videocam.batch.job import JobResult, timeout_result
from videocam.batch.plan import Job
from videocam.errors import ModelLoadError

if TYPE_CHECKING:
    from videocam.config import AnalyzeConfig

logger = logging.getLogger(__name__)

#: Deaths of workers outside a job (between jobs, or loading once one worker loaded the model)
#: tolerated before the batch gives up.
MAX_IDLE_DEATHS = 3

#: Longest wait for an event before the pool looks at its workers again.
POLL_S = 5.0


@dataclass(kw_only=True)
class Slot:
    """What the pool knows of a worker; each backend adds its own handles."""

    ready: bool = False
    job: Job | None = None
    job_started: float = 0.0
    #: The pool killed the worker because its job ran past the timeout.
    timed_out: bool = False

    def describe(self) -> str:
        """The worker as error messages name it (a pid, an actor and its node)."""
        return "a worker"


W = TypeVar("W", bound=Slot)


@dataclass
class Ready(Generic[W]):
    """The worker loaded the model and takes jobs."""

    worker: W


@dataclass
class Finished(Generic[W]):
    """The worker's job ended with ``result`` (ok or failed); the worker takes the next."""

    worker: W
    result: JobResult


@dataclass
class Died(Generic[W]):
    """The worker is gone (the backend has cleaned up after it).

    Attributes:
        reason: how, on one line (``signal SIGSEGV``, Ray's first line).
        details: the tail of its captured stderr.
        cause: the exception that told, if any.
    """

    worker: W
    reason: str
    details: str = ""
    cause: BaseException | None = None


#: What :meth:`Backend.poll` yields.
Event = Ready[W] | Finished[W] | Died[W]


class Backend(Protocol[W]):
    """An engine's own part of the pool."""

    #: The engine's config (its model is named in errors).
    config: AnalyzeConfig
    #: What errors call a worker ("batch worker", "Ray worker").
    noun: str
    #: Added to the error of a worker that died while loading the model.
    load_hint: str

    def start(self) -> W:
        """Start a worker (it loads the model, then reports :class:`Ready`)."""
        ...

    def assign(self, worker: W, job: Job) -> bool:
        """Hand ``job`` to a ready, idle worker; False when it cannot take it (it is gone)."""
        ...

    def poll(self, workers: Sequence[W], timeout: float) -> Iterator[Event[W]]:
        """Wait up to ``timeout`` s for something to happen, then yield what did."""
        ...

    def crash_result(self, worker: W, job: Job, seconds: float, death: Died[W]) -> JobResult:
        """The result of ``job``, whose worker died during it."""
        ...

    def kill(self, worker: W) -> None:
        """Kill ``worker`` now (its job ran past the timeout); its death comes as an event."""
        ...

    def stop(self, workers: Sequence[W], *, clean: bool) -> None:
        """End the workers (``clean``: every job finished; idle ones may leave politely)."""
        ...


def run_pool(
    backend: Backend[W],
    jobs: Sequence[Job],
    on_result: Callable[[JobResult], None],
    on_start: Callable[[Job], None] | None,
    *,
    size: int,
    timeout_s: float | None = None,
) -> None:
    """Run every job on at most ``size`` workers of ``backend``; returns when each has reported
    a result. A job that runs longer than ``timeout_s`` has its worker killed and is reported
    as :data:`~videocam.batch.job.TIMEOUT` (a fresh worker takes the next job).

    Raises:
        ModelLoadError: a worker cannot load the model, or dies while loading it before any
            worker has.
        RuntimeError: workers keep dying outside jobs.
    """
    pending = deque(jobs)
    workers: list[W] = []
    state = _PoolState()
    clean = False
    try:
        while pending or any(w.job is not None for w in workers):
            busy = sum(w.job is not None for w in workers)
            while len(workers) < min(size, busy + len(pending)):
                workers.append(backend.start())
            for w in workers:
                if w.ready and w.job is None and pending:
                    job = pending.popleft()
                    if not backend.assign(w, job):  # gone: its death comes as an event
                        pending.appendleft(job)
                        continue
                    w.job, w.job_started = job, time.perf_counter()
                    if on_start is not None:
                        on_start(job)
            for event in backend.poll(workers, _wait_s(workers, timeout_s)):
                if isinstance(event, Ready):
                    event.worker.ready = state.ever_ready = True
                elif isinstance(event, Finished):
                    event.worker.job = None
                    on_result(event.result)
                else:
                    workers.remove(event.worker)
                    _handle_death(backend, event, on_result, state, timeout_s)
            _kill_overdue(backend, workers, timeout_s)
        clean = True
    finally:
        backend.stop(workers, clean=clean)


@dataclass
class _PoolState:
    ever_ready: bool = False
    idle_deaths: int = 0


def _wait_s(workers: Sequence[Slot], timeout_s: float | None) -> float:
    """How long to wait for events: :data:`POLL_S`, or less when a job's deadline comes first."""
    if timeout_s is None:
        return POLL_S
    now = time.perf_counter()
    deadlines = [w.job_started + timeout_s - now for w in workers if w.job and not w.timed_out]
    return max(0.05, min([POLL_S, *deadlines]))


def _kill_overdue(backend: Backend[W], workers: Sequence[W], timeout_s: float | None) -> None:
    """Kill the workers whose job has run past ``timeout_s`` (once each)."""
    if timeout_s is None:
        return
    now = time.perf_counter()
    for w in workers:
        if w.job is not None and not w.timed_out and now - w.job_started > timeout_s:
            logger.debug(
                "%s %s: %s ran past %g s", backend.noun, w.describe(), w.job.path, timeout_s
            )
            w.timed_out = True
            backend.kill(w)


def _handle_death(
    backend: Backend[W],
    death: Died[W],
    on_result: Callable[[JobResult], None],
    state: _PoolState,
    timeout_s: float | None = None,
) -> None:
    w, noun = death.worker, backend.noun
    job = w.job
    if job is not None and w.timed_out and timeout_s is not None:
        w.job = None
        seconds = time.perf_counter() - w.job_started
        on_result(timeout_result(job, seconds, timeout_s, details=death.details))
        return
    if job is not None:
        logger.debug("%s %s died (%s) on %s", noun, w.describe(), death.reason, job.path)
        w.job = None
        seconds = time.perf_counter() - w.job_started
        on_result(backend.crash_result(w, job, seconds, death))
        return
    if not w.ready and not state.ever_ready:
        last = f": {death.details.splitlines()[-1]}" if death.details else ""
        raise ModelLoadError(
            f"a {noun} died while loading model {backend.config.model!r} ({death.reason})"
            f"{last}{backend.load_hint}"
        ) from death.cause
    state.idle_deaths += 1
    when = "between videos" if w.ready else "while loading the model"
    logger.warning("a %s died %s: %s", noun, when, death.reason)
    if state.idle_deaths > MAX_IDLE_DEATHS:
        raise RuntimeError(f"{noun}s keep dying ({death.reason})") from death.cause
