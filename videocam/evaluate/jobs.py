"""``videocam evaluate`` over batch's engines: each video evaluated in a worker, its result kept
in a work folder, the tables assembled from those.

Each manifest row is a job (:class:`EvaluateJob`) that :class:`EvaluateTask` runs in a worker
of :class:`~videocam.batch.engine.LocalEngine` or :class:`~videocam.batch.ray_engine.RayEngine`
(the model loaded once per worker), in batch's sequence (:func:`~videocam.batch.run.run_jobs`:
option checks, OUT and its lock, engine, progress bar):
:func:`~videocam.evaluate.runner.evaluate_video`, then the video's metrics row, curves and
sanity correlations written atomically to ``OUT/videos/NAME/result.json`` with a fingerprint of
everything that shapes them (the options, as batch's :func:`~videocam.batch.job.config_hash`,
the evaluate options and the manifest row) and the source file's size and modification time. A
video that fails leaves ``OUT/videos/NAME/log.txt`` only; one whose worker crashes or runs past
``--timeout`` is recorded by the engine (``WorkerCrash``, ``Timeout``) and the run goes on.

Then metrics.csv, summary.json, curves.png and report.html are assembled from the per-video
results in manifest order, exactly as a run in one process assembles them
(:func:`~videocam.evaluate.runner.assemble_evaluation`); failed videos keep their row
(``status`` ``failed``, ``error`` its type and message) and are listed in ``failures.csv``.
``--resume`` takes a video's ``result.json`` when its fingerprint and source still match, and
evaluates the rest again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import time
import traceback
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from videocam.analysis import with_method
from videocam.batch.job import (
    STATUS_OK,
    STATUS_SKIPPED,
    JobResult,
    clear_sub_folder,
    config_hash,
    failed_result,
    record_failure,
    source_identity,
)
from videocam.batch.plan import Job, sub_folder_name
from videocam.batch.run import (
    FAILURES_FILE,
    JobsCommand,
    JobsOutcome,
    JobsRun,
    RunOptions,
    run_jobs,
    write_failures,
)
from videocam.evaluate.outputs import save_evaluation
from videocam.evaluate.runner import (
    Evaluation,
    VideoResult,
    assemble_evaluation,
    evaluate_video,
    failed_row,
    model_info,
)
from videocam.evaluate.sanity import randomisation_steps
from videocam.manifest import ManifestEntry, read_manifest
from videocam.render.files import atomic_write, ensure_output_dir

if TYPE_CHECKING:
    from videocam.config import AnalyzeConfig
    from videocam.models import LoadedModel

logger = logging.getLogger(__name__)

#: The work folder in OUT: one sub-folder per video.
WORK_DIR = "videos"
#: A video's result in its sub-folder, written last (atomically).
RESULT_FILE = "result.json"
RESULT_FORMAT = 1


@dataclass(frozen=True)
class EvaluateJob(Job):
    """One manifest row to evaluate; ``out_dir`` is its sub-folder of the work folder."""

    entry: ManifestEntry


@dataclass(frozen=True)
class EvaluateTask:
    """What an evaluate worker runs per job (a :data:`~videocam.batch.worker.Task`): the
    options of :func:`~videocam.evaluate.runner.evaluate_video`."""

    steps: int = 10
    random_seeds: int = 3
    sanity: bool = False
    occlusion: int = 0

    def fingerprint(self, config: AnalyzeConfig, entry: ManifestEntry) -> str:
        """A digest of what shapes a video's result: the analysis options (and the files
        they name), these options and the manifest row (label, interval, boxes)."""
        spec = {
            "config": config_hash(config),
            "task": asdict(self),
            "entry": {k: v for k, v in asdict(entry).items() if k != "row"},
        }
        text = json.dumps(spec, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def __call__(self, job: Job, loaded: LoadedModel, config: AnalyzeConfig) -> JobResult:
        """Evaluate one video and write its ``result.json``; never raises for the video's own
        failure (its sub-folder then holds ``log.txt`` with the traceback)."""
        if not isinstance(job, EvaluateJob):
            raise TypeError(f"an evaluate worker takes EvaluateJob, got {type(job).__name__}")
        started = time.perf_counter()
        source = source_identity(job.path)  # before decoding: a file changed mid-run is redone
        try:
            clear_sub_folder(job.out_dir)
            ensure_output_dir(job.out_dir)
            steps_randomised = randomisation_steps(loaded.module) if self.sanity else None
            explained = with_method(config, loaded)  # no method named: the model's default
            row, curves, sanity = evaluate_video(
                job.entry,
                loaded,
                explained,
                steps=self.steps,
                random_seeds=self.random_seeds,
                sanity_steps=steps_randomised,
                occlusion=self.occlusion,
            )
            record = {
                "format": RESULT_FORMAT,
                "fingerprint": self.fingerprint(config, job.entry),
                "source": source,
                "model": model_info(loaded),
                "method": explained.method,
                "sanity_steps": steps_randomised,
                "row": row,
                "curves": {name: curve.tolist() for name, curve in curves.items()},
                "sanity": sanity,
            }
            with atomic_write(job.out_dir / RESULT_FILE) as tmp:
                # NaN stays NaN (not null), so the assembled tables equal a one-process run's.
                tmp.write_text(json.dumps(record, default=_plain), encoding="utf-8")
        except Exception as exc:  # noqa: BLE001 - one video's failure must not end the run
            seconds = time.perf_counter() - started
            result = failed_result(job, type(exc).__name__, str(exc), seconds)
            record_failure(job, [f"{result.error_type}: {result.error}", traceback.format_exc()])
            return result
        return JobResult(
            path=str(job.path),
            output=job.name,
            status=STATUS_OK,
            target=str(row["target"]),
            n_frames=int(row["n_frames"]),
            seconds=round(time.perf_counter() - started, 3),
        )


def _plain(value: Any) -> Any:
    """numpy scalars as Python numbers (for json.dumps)."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} has no JSON form")


def read_result(job: EvaluateJob, fingerprint: str) -> dict[str, Any] | None:
    """The video's recorded result when it is complete and valid for ``fingerprint`` and the
    source file is unchanged; else None."""
    try:
        record = json.loads((job.out_dir / RESULT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    valid = (
        isinstance(record, dict)
        and record.get("format") == RESULT_FORMAT
        and record.get("fingerprint") == fingerprint
        and record.get("source") == source_identity(job.path)
    )
    return record if valid else None


def plan_evaluation(manifest: str | Path, out_dir: Path) -> list[EvaluateJob]:
    """One job per manifest row, in manifest order, each with its work sub-folder in
    ``out_dir`` (absolute), named from the video's path as batch names sub-folders (a video
    listed again gets its manifest line number: ``-lineN``).

    Raises:
        ConfigError: a bad manifest (:func:`~videocam.manifest.read_manifest`).
    """
    path = Path(manifest)
    work = out_dir / WORK_DIR
    jobs: list[EvaluateJob] = []
    seen: set[str] = set()
    for entry in read_manifest(path):
        name = sub_folder_name(entry.path, path.parent)
        if name.casefold() in seen:
            name = f"{name}-line{entry.row}"
        seen.add(name.casefold())
        jobs.append(EvaluateJob(path=entry.path, name=name, out_dir=work / name, entry=entry))
    return jobs


@dataclass(frozen=True)
class EvaluationRun(JobsOutcome):
    """What ``videocam evaluate`` did (its ``exit_code`` is 0 when every video was evaluated,
    3 when some failed).

    Attributes:
        evaluation: the assembled evaluation (as :func:`~.runner.evaluate_manifest` gives).
        results: the engine's result per video, in manifest order (``skipped-complete`` for
            videos ``--resume`` took from an earlier run).
        seconds: wall time.
    """

    evaluation: Evaluation
    results: list[JobResult]
    seconds: float


def run_evaluation(
    manifest: str | Path,
    out_dir: str | os.PathLike[str],
    config: AnalyzeConfig,
    task: EvaluateTask,
    *,
    workers: int | None = None,
    resume: bool = False,
    engine: str = "local",
    ray_address: str | None = None,
    progress: bool = False,
    log_level: int = logging.INFO,
    timeout_s: float | None = None,
) -> EvaluationRun:
    """Evaluate every video of ``manifest`` in workers (see the module docstring) and write
    metrics.csv, summary.json, curves.png, report.html and failures.csv into ``out_dir``.

    ``workers``, ``engine``, ``ray_address``, ``timeout_s``, ``progress`` and ``log_level``
    mean what they mean for :func:`~videocam.batch.runner.run_batch`; OUT must be empty unless
    ``resume``.

    Raises:
        ConfigError: a bad manifest or option; OUT not empty without ``resume``; OUT in use.
        ModelLoadError: the model cannot be loaded.
    """
    options = RunOptions(
        workers=workers,
        resume=resume,
        engine=engine,
        ray_address=ray_address,
        progress=progress,
        log_level=log_level,
        timeout_s=timeout_s,
    )
    command = _EvaluateCommand(manifest, out_dir, config, task)
    return run_jobs(command, out_dir, config, options)


class _EvaluateCommand(JobsCommand[EvaluateJob, EvaluationRun]):
    """``evaluate``'s part of :func:`~videocam.batch.run.run_jobs`: one job per manifest row,
    ``--resume`` by each video's ``result.json``, and once every video reported, the tables
    assembled from the results (an OUT the run created stays when it fails)."""

    label = "evaluate"
    task: EvaluateTask

    def __init__(
        self,
        manifest: str | Path,
        out_dir: str | os.PathLike[str],
        config: AnalyzeConfig,
        task: EvaluateTask,
    ) -> None:
        self.manifest = manifest
        self.out_dir = Path(os.path.abspath(os.fspath(out_dir)))
        self.config = config
        self.task = task
        #: The valid result.json of each video, by sub-folder name.
        self.records: dict[str, dict[str, Any]] = {}

    def plan(self) -> list[EvaluateJob]:
        return plan_evaluation(self.manifest, self.out_dir)

    def _record(self, job: EvaluateJob) -> dict[str, Any] | None:
        return read_result(job, self.task.fingerprint(self.config, job.entry))

    def complete(self, jobs: Sequence[EvaluateJob], out: Path, resume: bool) -> list[JobResult]:
        done: list[JobResult] = []
        for job in jobs if resume else []:
            record = self._record(job)
            if record is not None:
                self.records[job.name] = record
                done.append(JobResult(path=str(job.path), output=job.name, status=STATUS_SKIPPED))
        logger.info("%d of %d video(s) to evaluate", len(jobs) - len(done), len(jobs))
        return done

    def finish(self, run: JobsRun[EvaluateJob]) -> EvaluationRun:
        for job in run.todo:
            record = self._record(job)
            if record is not None and run.results[job.name].status == STATUS_OK:
                self.records[job.name] = record
        evaluation = _assemble(run.jobs, self.records, run.results, self.config, self.task)
        save_evaluation(evaluation, run.out)
        write_failures(run.out / FAILURES_FILE, run.ordered(), folder=f"{WORK_DIR}/")
        return EvaluationRun(evaluation, run.ordered(), time.perf_counter() - run.started)


def _assemble(
    jobs: list[EvaluateJob],
    records: dict[str, dict[str, Any]],
    results: dict[str, JobResult],
    config: AnalyzeConfig,
    task: EvaluateTask,
) -> Evaluation:
    """The evaluation of the recorded results (failed videos as failed rows), in plan order."""
    videos: list[VideoResult] = []
    for job in jobs:
        record = records.get(job.name)
        if record is None:
            result = results[job.name]
            error_type = result.error_type or "MissingResult"
            message = result.error or f"no {RESULT_FILE} was written"
            videos.append(VideoResult(failed_row(job.entry, error_type, message)))
            continue
        curves = {name: np.asarray(c, dtype=np.float64) for name, c in record["curves"].items()}
        videos.append(VideoResult(record["row"], curves, record["sanity"]))
    first = next(iter(records.values()), None)
    if first is not None:
        model = first["model"]
        if config.method is None:  # the summary names the method the model got
            config = dataclasses.replace(config, method=first.get("method"))
    else:
        model = {"name": config.model, "weights": config.weights, "layer": config.layer}
    sanity_steps = None
    if task.sanity:
        sanity_steps = first["sanity_steps"] if first is not None else []
    return assemble_evaluation(
        videos,
        model,
        config,
        steps=task.steps,
        random_seeds=task.random_seeds,
        occlusion=task.occlusion,
        sanity_steps=sanity_steps,
    )
