"""The Ray engine (``--engine ray``): the batch's videos spread over the actors of a Ray cluster.

Same shape as :class:`~videocam.batch.engine.LocalEngine`, with Ray doing the placement:

- **Actors.** Each actor is a Ray worker process that starts as a local worker does
  (:func:`~videocam.batch.worker.start_worker`: the model loaded once after
  ``torch.manual_seed(MODEL_SEED)``, so ``--weights none`` gives the same results) and then runs
  :func:`~videocam.batch.worker.run_job` on one video at a time. With GPUs in the cluster (and
  ``--device`` not ``cpu``) there is one actor per GPU (``num_gpus=1``); otherwise one per CPU
  share (``num_cpus=threads``). ``--workers`` sets the number instead; actors the cluster has no
  room for yet wait until it has (an autoscaler can add nodes for them) and take no video
  meanwhile.
- **Queue.** The driver (the ``videocam batch`` process) runs the local engine's queue,
  :func:`~videocam.batch.pool.run_pool`, with Ray's part supplied here: exactly one video in
  flight per ready actor, the next handed out when one finishes, so the driver always knows
  which video an actor was on; ``on_start`` / ``on_result`` are called as the local engine
  calls them, and ``index.csv``, ``failures.csv`` and ``--resume`` work unchanged.
- **Crashes.** Actors are created with ``max_restarts=0`` and ``max_task_retries=0``: Ray never
  reruns a video silently. When an actor dies mid-video (a crash in native code, killed, out of
  memory, its node lost), the video is recorded as failed (``WorkerCrash``, naming the actor's
  process and node, and the signal when faulthandler saw one) and a fresh actor takes its place.
  ``--resume`` redoes it.
- **Files.** Actors write each video's sub-folder themselves, so OUT must be a path every node
  can reach, at the same path (a shared filesystem). An actor that cannot see the driver's probe
  file in OUT (``.ray-probe-*.tmp-log``) stops the batch with that message before it takes a
  video, rather than write results nobody will find. Each actor sends its stderr to a capture
  file in OUT (``.stderr-ray-*.tmp-log``) that the job, or the driver after a crash, copies into
  the video's ``log.txt``.
- **The cluster.** Without an address (and no ``RAY_ADDRESS`` in the environment) a local Ray is
  started for the batch and shut down after it; with one, the driver joins that cluster and
  leaves it running. An address that cannot be reached is an error at once (Ray itself would
  retry for minutes).

Ray is optional (``pip install 'videocam[ray]'``) and imported only inside this module's
functions.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from videocam.batch.engine import PoolEngine
from videocam.batch.job import (
    JobResult,
    analyze_one,
    describe_exit,
    failed_result,
    record_failure,
    worker_crash_result,
)
from videocam.batch.plan import Job
from videocam.batch.pool import Died, Event, Finished, Ready, Slot, run_pool
from videocam.batch.worker import (
    BatchWorker,
    LoadFailed,
    OutNotShared,
    Task,
    WorkerReady,
    WorkerSpec,
    start_worker,
    take_capture,
)
from videocam.errors import ConfigError, first_line
from videocam.runtime.resources import available_cpus, threads_per_worker

if TYPE_CHECKING:
    from videocam.config import AnalyzeConfig

logger = logging.getLogger(__name__)

#: The one line ``--engine ray`` answers when Ray is not installed.
INSTALL_HINT = "--engine ray needs Ray: pip install 'videocam[ray]'"

#: Port of a Ray head when an address names none (``ray start --head`` listens there).
DEFAULT_RAY_PORT = 6379

#: How long joining waits for a TCP connection to the address before giving up.
CONNECT_TIMEOUT_S = 5.0

#: Object store of a local Ray: results are a few hundred bytes; keep shared memory small.
_LOCAL_OBJECT_STORE_BYTES = 128 * 1024**2

#: Seconds between "waiting for the cluster to place actors" messages.
_PLACEMENT_NOTICE_S = 60.0

#: faulthandler's names of fatal signals ("Fatal Python error: Segmentation fault").
_FATAL_SIGNALS = {
    "Segmentation fault": "SIGSEGV",
    "Aborted": "SIGABRT",
    "Bus error": "SIGBUS",
    "Floating-point exception": "SIGFPE",
    "Illegal instruction": "SIGILL",
}
_FATAL_RE = re.compile(r"Fatal Python error: (" + "|".join(_FATAL_SIGNALS) + ")")


def import_ray() -> Any:
    """The ``ray`` module.

    Raises:
        ConfigError: Ray is not installed (the message says how to install it).
    """
    try:
        import ray
    except ImportError as exc:
        raise ConfigError(INSTALL_HINT) from exc
    return ray


# -- the actor ---------------------------------------------------------------------------------


class RayBatchWorker:
    """A Ray actor: loads the model once, then analyses one video per :meth:`run` call.

    Made a Ray actor class by :func:`_actor_class` (so this module imports without Ray). A model
    that cannot load does not fail the constructor: :meth:`ready` reports it, and the driver
    raises the same :class:`~videocam.errors.ModelLoadError` the local engine does.
    """

    def __init__(
        self,
        spec: WorkerSpec,
        capture_path: str | None,
        cwd: str,
        probe: tuple[str, str] | None = None,
    ) -> None:
        self._worker: BatchWorker | None = None
        if probe is None or out_visible(*probe):  # else no model to load: OUT is not here
            capture = None if capture_path is None else Path(capture_path)
            self._worker = start_worker(spec, capture=capture, cwd=cwd)

    def ready(self) -> WorkerReady | LoadFailed | OutNotShared:
        """:class:`~videocam.batch.worker.WorkerReady` (with the actor's host and IP address),
        :class:`~videocam.batch.worker.OutNotShared` or
        :class:`~videocam.batch.worker.LoadFailed`."""
        import ray

        if self._worker is None:
            return OutNotShared(socket.gethostname())
        return self._worker.hello(socket.gethostname(), ray.util.get_node_ip_address())

    def run(self, job: Job) -> JobResult:
        """Run the task on one video (never raises for the video's own failure)."""
        if self._worker is None:  # ready() said so; the driver sends no job then
            raise RuntimeError("the model is not loaded")
        return self._worker.run(job)


@cache
def _actor_class() -> Any:
    ray = import_ray()
    # No silent reruns: a video that kills its actor is recorded, not retried elsewhere.
    return ray.remote(max_restarts=0, max_task_retries=0)(RayBatchWorker)


# -- connecting ----------------------------------------------------------------------------------


def out_visible(path: str, token: str) -> bool:
    """Whether the driver's probe file, with its token, is visible here: OUT is shared."""
    try:
        return Path(path).read_text(encoding="utf-8") == token
    except (OSError, UnicodeDecodeError):
        return False


def split_address(address: str) -> tuple[str, int] | None:
    """``(host, port)`` of a ``HOST[:PORT]`` (or ``ray://HOST:PORT``) address; None for the
    words Ray resolves itself (``auto``, ``local``)."""
    text = address.strip()
    if text in ("auto", "local"):
        return None
    text = re.sub(r"^[a-z]+://", "", text)
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = text, ""
    host = host.strip("[]")  # [::1]:6379
    if not host:
        raise ConfigError(f"--ray-address {address!r}: expected HOST:PORT")
    try:
        return host, int(port) if port else DEFAULT_RAY_PORT
    except ValueError:
        raise ConfigError(f"--ray-address {address!r}: expected HOST:PORT") from None


def check_reachable(
    address: str, timeout_s: float = CONNECT_TIMEOUT_S, source: str = "--ray-address"
) -> None:
    """Fail fast when nothing listens at ``address`` (Ray would retry for minutes).

    Raises:
        ConfigError: the host does not resolve or refuses or ignores a TCP connection.
    """
    target = split_address(address)
    if target is None:
        return
    try:
        with socket.create_connection(target, timeout=timeout_s):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        if isinstance(exc, TimeoutError):
            reason = f"no answer in {timeout_s:g} s"
        raise ConfigError(
            f"{source} {address}: cannot reach a Ray cluster there ({reason}); "
            "start one with 'ray start --head', or leave --ray-address out to run on a local Ray"
        ) from exc


def gpu_actor_threads(nodes: Sequence[dict[str, Any]]) -> int:
    """Cores per GPU actor: the fewest CPUs per GPU over the live nodes that have GPUs (so an
    actor fits on any of them), at least 1."""
    shares = [
        int(n.get("Resources", {}).get("CPU", 0)) // int(n["Resources"]["GPU"])
        for n in nodes
        if n.get("Alive") and n.get("Resources", {}).get("GPU", 0) >= 1
    ]
    return max(1, min(shares, default=1))


def actor_threads(workers: int | None = None, local: bool = False) -> int:
    """CPU cores each actor reserves and gives torch: ``OMP_NUM_THREADS`` when set; on a local
    Ray with ``workers`` asked for, this machine's usable cores shared out (as the local engine
    does); else 1 (one actor per core is the best use of a CPU node for models this size)."""
    if not (local and workers):
        workers = available_cpus()  # one actor per core: 1 each, unless OMP_NUM_THREADS says
    return threads_per_worker(workers)


# -- the driver side ------------------------------------------------------------------------------


@dataclass(kw_only=True)
class _Actor(Slot):
    handle: Any
    number: int
    capture: Path | None
    ready_ref: Any = None
    pid: int | None = None
    host: str = ""
    ip: str = ""
    task_ref: Any = None

    def describe(self) -> str:
        where = " ".join(part for part in (self.host, f"({self.ip})" if self.ip else "") if part)
        return f"pid {self.pid} on {where}" if self.pid else f"actor {self.number}"


class RayEngine(PoolEngine):
    """Ray actors on a local Ray or a cluster (see the module docstring).

    Args:
        config: the analysis options; every actor loads ``config``'s model once.
        workers: number of actors; None = one per GPU of the cluster (unless ``--device cpu``),
            else one per ``threads`` CPUs.
        address: a Ray cluster to join (``HOST:PORT``, ``auto``); None = ``RAY_ADDRESS`` when
            set, else a local Ray started for this run.
        threads: CPU cores each actor reserves and gives torch; None = :func:`actor_threads`
            (on a local Ray: the cores shared out among ``workers``; else 1).
        log_level: level of the per-video logs (``log.txt``).
        scratch_dir: where actors keep their stderr capture (OUT); None = Ray's worker logs.
        max_workers: at most this many actors (the number of videos to do).
        timeout_s: kill an actor whose video runs longer, and report it as ``Timeout``.
        task: what an actor runs per job (``batch``: analyse the video into its sub-folder).
    """

    name = "ray"
    noun = "Ray worker"
    load_hint = "; is videocam installed on every node?"

    def __init__(
        self,
        config: AnalyzeConfig,
        *,
        workers: int | None = None,
        address: str | None = None,
        threads: int | None = None,
        log_level: int = logging.INFO,
        scratch_dir: Path | None = None,
        max_workers: int | None = None,
        timeout_s: float | None = None,
        task: Task = analyze_one,
    ) -> None:
        self.address = address if address is not None else (os.environ.get("RAY_ADDRESS") or None)
        sharing = min(workers, max_workers) if workers and max_workers else workers
        super().__init__(
            config,
            workers=workers,  # actors of the last run (known once connected)
            threads=threads or actor_threads(sharing, local=self.address is None),
            log_level=log_level,
            scratch_dir=scratch_dir,
            timeout_s=timeout_s,
            task=task,
        )
        self.requested_workers = workers
        self._source = "--ray-address" if address is not None else "RAY_ADDRESS"
        self._threads_given = threads is not None or "OMP_NUM_THREADS" in os.environ
        self.max_workers = max_workers
        #: Whether the last run's actors held a GPU each.
        self.use_gpus = False
        self._run_id = uuid.uuid4().hex[:8]
        self._probe: Path | None = None
        self._numbers = 0
        self._ray: Any = None
        self._placed = False
        self._waiting_since = 0.0

    # -- public --

    def run(
        self,
        jobs: Sequence[Job],
        on_result: Callable[[JobResult], None],
        on_start: Callable[[Job], None] | None = None,
    ) -> None:
        """Run every job; returns when each has reported a result.

        Raises:
            ConfigError: Ray is missing, the cluster cannot be reached, or cannot run the actors.
            ModelLoadError: an actor cannot load the model (the message says why).
        """
        ray = import_ray()
        if not jobs:
            return
        connected_here = self._connect(ray)
        self._ray = ray
        try:
            size = self._plan_actors(ray, len(jobs))
            self._write_probe()
            self._placed, self._waiting_since = False, time.monotonic()
            run_pool(self, jobs, on_result, on_start, size=size, timeout_s=self.timeout_s)
        finally:
            if self._probe is not None:
                with suppress(OSError):
                    self._probe.unlink()
            if connected_here:
                ray.shutdown()

    def _write_probe(self) -> None:
        """A file in OUT that each actor must see (with this run's token) before it takes a
        video: outputs written on a node where OUT is another folder would be lost."""
        if self.scratch_dir is None:
            return
        self._probe = self.scratch_dir / f".ray-probe-{self._run_id}.tmp-log"
        self._probe.write_text(self._run_id, encoding="utf-8")

    # -- connection and sizing --

    def _connect(self, ray: Any) -> bool:
        """Start a local Ray or join ``address``; False when Ray was already initialised here
        (the caller's session is used and left alone)."""
        if ray.is_initialized():
            return False
        # Ray's own start-up lines and its workers' output stay out of the batch's stderr
        # (each video's log.txt has what its worker wrote); --debug lets them through.
        debug = self.log_level <= logging.DEBUG
        quiet: dict[str, Any] = {
            "log_to_driver": debug,
            "logging_level": logging.INFO if debug else logging.ERROR,
        }
        if self.address is None:
            wanted = (self.requested_workers or 0) * self.threads
            num_cpus = max(available_cpus(), wanted)
            logger.info("starting a local Ray (%d CPUs)", num_cpus)
            ray.init(
                address="local",
                num_cpus=num_cpus,
                include_dashboard=False,
                object_store_memory=_LOCAL_OBJECT_STORE_BYTES,
                **quiet,
            )
            return True
        check_reachable(self.address, source=self._source)
        logger.info("joining the Ray cluster at %s", self.address)
        try:
            ray.init(address=self.address, **quiet)
        except (ConnectionError, ValueError, RuntimeError, ray.exceptions.RayError) as exc:
            reason = " ".join(str(exc).split())[:300]
            # Ray reports a token mismatch inside the text of a chained RuntimeError.
            if "AuthenticationError" in _chain_text(exc) or "InvalidAuthToken" in _chain_text(exc):
                reason = (
                    "the cluster uses token authentication: set RAY_AUTH_MODE=token here, with "
                    "the cluster's token in ~/.ray/auth_token or RAY_AUTH_TOKEN"
                )
            raise ConfigError(
                f"{self._source} {self.address}: cannot join the Ray cluster: {reason}"
            ) from exc
        return True

    def _plan_actors(self, ray: Any, n_jobs: int) -> int:
        """How many actors, with how many cores each (also kept as ``workers``, ``threads``)."""
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        cpus = int(resources.get("CPU", 0))
        device = self.config.device
        if device == "cuda" and gpus == 0:
            raise ConfigError("--device cuda: the Ray cluster has no GPU")
        self.use_gpus = gpus > 0 and device != "cpu"
        if self.use_gpus and not self._threads_given:
            # A GPU actor decodes, pins, fuses and renders for a whole GPU: it gets the cores
            # of a node shared out among that node's GPUs, not one core.
            self.threads = gpu_actor_threads(ray.nodes())
        capacity = gpus if self.use_gpus else cpus // self.threads
        workers = self.requested_workers or max(1, capacity)
        if self.max_workers is not None:
            workers = min(workers, max(1, self.max_workers))
        workers = min(workers, n_jobs)
        self.workers = workers
        kind = "GPU" if self.use_gpus else f"{self.threads} CPU"
        logger.info(
            "Ray: %d node(s), %d CPU, %d GPU; %d actor(s), %s each",
            len([n for n in ray.nodes() if n.get("Alive")]),
            cpus,
            gpus,
            workers,
            kind,
        )
        if workers > max(capacity, 0):
            logger.warning(
                "%d actors asked for, the cluster has room for %d now: the others start when "
                "resources free up or nodes join",
                workers,
                capacity,
            )
        return workers

    # -- the pool's backend (see videocam.batch.pool.Backend) --

    def start(self) -> _Actor:
        """Create an actor (a GPU or ``threads`` CPU cores each); it loads the model."""
        self._numbers += 1
        number = self._numbers
        capture = self.capture(f"ray-{self._run_id}-{number}")
        env = {
            "OMP_NUM_THREADS": str(self.threads),
            "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE"),
        }
        options: dict[str, Any] = {
            "num_cpus": self.threads,
            "runtime_env": {"env_vars": env},
        }
        if self.use_gpus:
            options["num_gpus"] = 1
        handle = (
            _actor_class()
            .options(**options)
            .remote(
                self.spec(),
                None if capture is None else str(capture),
                os.getcwd(),
                None if self._probe is None else (str(self._probe), self._run_id),
            )
        )
        actor = _Actor(handle=handle, number=number, capture=capture)
        actor.ready_ref = handle.ready.remote()
        logger.debug("started actor %d", number)
        return actor

    def assign(self, a: _Actor, job: Job) -> bool:
        """Hand ``job`` to the actor (a Ray call; its death shows in :meth:`poll`)."""
        a.task_ref = a.handle.run.remote(job)
        return True

    def poll(self, actors: Sequence[_Actor], timeout: float) -> Iterator[Event[_Actor]]:
        """What happened to the actors within ``timeout`` seconds: ready, finished, died."""
        refs = {a.ready_ref: a for a in actors if a.ready_ref is not None}
        tasks = {a.task_ref: a for a in actors if a.job is not None}
        done, _ = self._ray.wait([*refs, *tasks], num_returns=1, timeout=timeout)
        for ref in done:
            if ref in refs:
                yield self._ready(refs[ref])
            else:
                yield self._finished(tasks[ref])
        if not self._placed and time.monotonic() - self._waiting_since > _PLACEMENT_NOTICE_S:
            logger.warning(
                "waiting for the Ray cluster to place the actors (%s each): "
                "check 'ray status' for free resources",
                "1 GPU" if self.use_gpus else f"{self.threads} CPU",
            )
            self._waiting_since = time.monotonic()

    def _ready(self, a: _Actor) -> Event[_Actor]:
        ray = self._ray
        try:
            message = ray.get(a.ready_ref)
        except ray.exceptions.RayError as exc:
            return Died(a, _first_line(exc), self._forget(a), exc)
        if isinstance(message, OutNotShared):
            raise ConfigError(
                f"{self.scratch_dir}: the output folder is not visible from Ray node "
                f"{message.host} at the same path; OUT must be on a filesystem every node mounts "
                "at the same path (e.g. NFS)"
            )
        if isinstance(message, LoadFailed):
            raise message.error()
        a.pid, a.host, a.ip = message.pid, message.host, message.ip
        a.ready_ref = None
        self._placed = True
        logger.debug("actor %d ready: %s", a.number, a.describe())
        return Ready(a)

    def _finished(self, a: _Actor) -> Event[_Actor]:
        ray = self._ray
        job = a.job
        assert job is not None
        try:
            return Finished(a, ray.get(a.task_ref))
        except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError) as exc:
            # The actor is gone (or unreachable: make sure it stops writing into OUT).
            return Died(a, _first_line(exc), self._forget(a), exc)
        except ray.exceptions.RayError as exc:  # the call itself failed (e.g. unpicklable)
            cause = getattr(exc, "cause", None) or exc
            seconds = time.perf_counter() - a.job_started
            result = failed_result(job, type(cause).__name__, str(cause), seconds)
            record_failure(job, [f"{result.error_type}: {result.error}"])
            return Finished(a, result)

    def crash_result(self, a: _Actor, job: Job, seconds: float, death: Died[_Actor]) -> JobResult:
        """The result of the job an actor died on (its process and node, Ray's reason)."""
        detail = "" if death.cause is None else _ray_detail(death.cause)
        return actor_crash_result(job, a.describe(), seconds, death.details, detail)

    def kill(self, a: _Actor) -> None:
        """Kill the actor (it may be gone already)."""
        with suppress(Exception):
            self._ray.kill(a.handle, no_restart=True)

    def _forget(self, a: _Actor) -> str:
        """Kill an actor (if it still runs) and return its captured stderr."""
        with suppress(Exception):
            self._ray.kill(a.handle, no_restart=True)
        return take_capture(a.capture)

    def stop(self, actors: Sequence[_Actor], *, clean: bool) -> None:
        """End the actors: each killed, its stderr capture removed."""
        for a in actors:
            self._forget(a)


def _chain_text(exc: BaseException) -> str:
    """The messages of ``exc`` and of the exceptions it was raised from (or during)."""
    texts: list[str] = []
    seen: BaseException | None = exc
    while seen is not None and len(texts) < 10:
        texts.append(f"{type(seen).__name__}: {seen}")
        seen = seen.__cause__ or seen.__context__
    return "\n".join(texts)


def _first_line(exc: BaseException) -> str:
    """The first line of what went wrong: the cause a Ray error carries, else the error."""
    return first_line(getattr(exc, "cause", None) or exc)


def _ray_detail(exc: BaseException) -> str:
    """Ray's explanation of an actor's death, on one line."""
    text = getattr(exc, "error_msg", "") or str(exc)
    return " ".join(text.split())


def signal_from_stderr(text: str) -> str | None:
    """The fatal signal faulthandler reported in a worker's stderr (``SIGSEGV``...), if any."""
    found = _FATAL_RE.findall(text)
    return _FATAL_SIGNALS[found[-1]] if found else None


def actor_crash_result(
    job: Job, actor: str, seconds: float | None, details: str = "", ray_detail: str = ""
) -> JobResult:
    """A failed result (``WorkerCrash``) for a video whose actor died; its sub-folder is cleared
    to a log.txt with the reason, the actor's stderr (``details``) and Ray's account."""
    name = signal_from_stderr(details)
    how = f" with {describe_exit(-int(signal.Signals[name]))}" if name else ""
    message = (
        f"the Ray worker ({actor}) died{how} while analysing this video "
        "(a crash in native decoder or model code, killed, out of memory, or its node was lost)"
    )
    more = ["", f"Ray: {ray_detail}"] if ray_detail else []
    return worker_crash_result(job, message, seconds, details, more)
