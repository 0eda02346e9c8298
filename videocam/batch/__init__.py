"""``videocam batch``: ``analyze`` over a folder or manifest, one sub-folder per video,
failures isolated, resumable.

The pieces, in the order they run (each usable on its own, and by other engines):

1. planning (:mod:`videocam.batch.plan`): inputs -> :class:`Job` (video, stable safe
   sub-folder name);
2. the job (:mod:`videocam.batch.job`): :func:`analyze_one` writes a sub-folder atomically,
   completion marker last, and returns a :class:`JobResult`;
3. the engine (:mod:`videocam.batch.engine`, :mod:`videocam.batch.ray_engine`): workers that
   load the model once (:mod:`videocam.batch.worker`) and survive each other's crashes, fed by
   one queue (:mod:`videocam.batch.pool`); what a worker runs per job is a task
   (:data:`~videocam.batch.worker.Task`): :func:`analyze_one` here, one video's evaluation
   for ``videocam evaluate``;
4. the run (:mod:`videocam.batch.run`): :func:`~videocam.batch.run.run_jobs`, the sequence
   ``batch`` and ``evaluate`` share (option checks, OUT and its lock, ``--resume``, engine,
   progress bar);
5. aggregation (:mod:`videocam.batch.runner`): ``index.csv``, ``failures.csv``, ``batch.json``.
"""

from __future__ import annotations

from videocam.batch.engine import Engine, LocalEngine
from videocam.batch.job import (
    DONE_MARKER,
    INDEX_COLUMNS,
    STATUS_FAILED,
    STATUS_OK,
    STATUS_PENDING,
    STATUS_SKIPPED,
    TIMEOUT,
    WORKER_CRASH,
    JobResult,
    analyze_one,
    completed_result,
    config_hash,
    crash_result,
)
from videocam.batch.plan import (
    VIDEO_EXTENSIONS,
    Job,
    Skipped,
    find_videos,
    plan_batch,
    plan_jobs,
    scan_folder,
    sub_folder_name,
)
from videocam.batch.run import ENGINES, EXIT_OK, EXIT_SOME_FAILED, FAILURE_COLUMNS
from videocam.batch.runner import SKIPPED_COLUMNS, BatchReport, run_batch

__all__ = [
    "DONE_MARKER",
    "ENGINES",
    "EXIT_OK",
    "EXIT_SOME_FAILED",
    "FAILURE_COLUMNS",
    "INDEX_COLUMNS",
    "SKIPPED_COLUMNS",
    "STATUS_FAILED",
    "STATUS_OK",
    "STATUS_PENDING",
    "STATUS_SKIPPED",
    "TIMEOUT",
    "VIDEO_EXTENSIONS",
    "WORKER_CRASH",
    "BatchReport",
    "Engine",
    "Job",
    "JobResult",
    "LocalEngine",
    "Skipped",
    "analyze_one",
    "completed_result",
    "config_hash",
    "crash_result",
    "find_videos",
    "plan_batch",
    "plan_jobs",
    "run_batch",
    "scan_folder",
    "sub_folder_name",
]
