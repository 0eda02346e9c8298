"""``run_batch``: plan the videos, decide what ``--resume`` skips, and keep ``index.csv``,
``failures.csv`` and the batch's review page up to date while
:func:`~videocam.batch.run.run_jobs` runs them (the sequence ``videocam evaluate`` shares: option
checks, OUT rules and lock, engine, progress bar).

Files in OUT (each written atomically):

- ``index.csv``: one row per planned video, in plan order (:data:`INDEX_COLUMNS`); rewritten as
  videos finish (at most every few seconds) and at the end, so an interrupted batch still has a
  usable index (unfinished videos read ``pending``).
- ``failures.csv``: ``path``, ``error_type``, ``message`` (and ``output``) of each failed video;
  written even when empty.
- ``skipped.csv``: ``path``, ``reason`` of each file of the input folder that is not a video
  (:func:`~videocam.batch.plan.scan_folder`); written even when empty. The skipped files are
  also named on stderr when the batch starts.
- ``moments.csv``: with ``--prompt``, every finished video's keyframes, strongest first
  (:mod:`videocam.batch.moments`), written when the batch ends.
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
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from videocam.analysis.layout import REPORT_HTML, SUMMARY_JSON
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
    remove_leftovers,
    remove_temp_files,
)
from videocam.batch.moments import MOMENTS_FILE, write_moments
from videocam.batch.plan import VIDEO_EXTENSIONS, Job, Skipped, plan_batch
from videocam.batch.run import (
    FAILURES_FILE,
    JobsCommand,
    JobsOutcome,
    JobsRun,
    RunOptions,
    run_jobs,
    write_failures,
)
from videocam.render.files import write_csv, write_json

if TYPE_CHECKING:
    from videocam.config import AnalyzeConfig

logger = logging.getLogger(__name__)

INDEX_FILE = "index.csv"
SUMMARY_FILE = "batch.json"
SKIPPED_FILE = "skipped.csv"
SKIPPED_COLUMNS = ["path", "reason"]

#: Skipped files named one by one on stderr; the rest are counted (all are in skipped.csv).
SKIPPED_SHOWN = 20

#: Least time between two rewrites of index.csv while the batch runs.
INDEX_INTERVAL_S = 2.0


@dataclass(frozen=True)
class BatchReport(JobsOutcome):
    """What a batch did (its ``exit_code`` is 0 when every video succeeded or was complete
    already, 3 when some failed).

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
        """How many videos have ``status``."""
        return sum(r.status == status for r in self.results)


class _Index:
    """The batch's tables and page: every planned video's latest result (the run's), written
    atomically.

    Args:
        run: the run (OUT, the plan, the results it keeps).
        base: the folder the videos' names on the page are relative to (the input folder,
            or the manifest's).
        config: the options (the page shows the model, and the method the finished videos'
            summary.json name, which ``config.method`` None leaves to the model).
    """

    def __init__(self, run: JobsRun[Job], base: Path, config: AnalyzeConfig) -> None:
        self.out_dir = run.out
        self.config = config
        self.results = run.results
        self.names = {job.name: _display_name(job.path, base) for job in run.jobs}
        # Which sub-folders hold a page and a log, and the method their summary names: looked
        # at once per finished video.
        self.files: dict[str, tuple[bool, bool, str]] = {}
        self._written_at: float | None = None
        self._page_written_at: float | None = None
        self._page_cost_s = 0.0
        #: A prompt search's ranked moments (with ``output``), once the batch wrote them.
        self.moments: list[dict[str, Any]] = []

    def add(self, result: JobResult) -> None:
        """``result`` came (it is in ``results`` already): rewrite the files when due."""
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
            prompts=self.config.prompts or (),
            moments=self.moments,
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


def _resume_plan(jobs: Sequence[Job], digest: str, out_dir: Path) -> list[JobResult]:
    """The results of the videos complete in OUT (the rest are redone), saying why videos are
    redone."""
    done: list[JobResult] = []
    states: dict[str, int] = {}
    for job in jobs:
        state, result = completed_result(job, digest)
        states[state] = states.get(state, 0) + 1
        if result is not None:
            remove_temp_files(job.out_dir)
            done.append(result)
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
        len(jobs) - len(done),
    )
    return done


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
    options = RunOptions(
        workers=workers,
        resume=resume,
        engine=engine,
        ray_address=ray_address,
        progress=progress,
        log_level=log_level,
        timeout_s=timeout_s,
    )
    return run_jobs(_BatchCommand(inputs, out_dir, config, options), out_dir, config, options)


class _BatchCommand(JobsCommand[Job, BatchReport]):
    """``batch``'s part of :func:`~videocam.batch.run.run_jobs`: plan the folder or manifest
    (naming what is skipped), resume by the sub-folders' completion markers, keep the index
    and page up to date as videos finish, and write ``skipped.csv`` and ``batch.json`` at the
    end (also when the batch stops early after it started a video)."""

    label = "batch"
    remove_created_out = True

    def __init__(
        self,
        inputs: str | os.PathLike[str],
        out_dir: str | os.PathLike[str],
        config: AnalyzeConfig,
        options: RunOptions,
    ) -> None:
        self.inputs = inputs
        self.out_dir = out_dir
        self.config = config
        self.options = options
        self.task = analyze_one
        self.digest = ""  # the options' hash, taken once OUT is locked (see complete)
        self.base = _names_base(inputs)
        self.skipped: list[Skipped] = []
        self._index: _Index | None = None

    def plan(self) -> list[Job]:
        plan = plan_batch(self.inputs, self.out_dir)
        self.skipped = plan.skipped
        _log_skipped(plan.skipped, self.base)
        return plan.jobs

    def complete(self, jobs: Sequence[Job], out: Path, resume: bool) -> list[JobResult]:
        # The named files' identities as they are when the batch starts.
        self.digest = config_hash(self.config)
        return _resume_plan(jobs, self.digest, out) if resume else []

    def index(self, run: JobsRun[Job]) -> _Index:
        """The run's index (made at its first use)."""
        if self._index is None:
            self._index = _Index(run, self.base, self.config)
        return self._index

    def begin(self, run: JobsRun[Job]) -> None:
        if len(run.todo) < len(run.jobs):  # some were complete: list them at once
            self.index(run).write()

    def add(self, run: JobsRun[Job], result: JobResult) -> None:
        self.index(run).add(result)

    def finish(self, run: JobsRun[Job]) -> BatchReport:
        return self._write(run)

    def abandon(self, run: JobsRun[Job]) -> None:
        for job in run.todo:  # the workers are stopped: clear what the unfinished ones staged
            if run.results[job.name].status == STATUS_PENDING:
                remove_leftovers(job.out_dir)
        # Nothing is written when no video was started (e.g. the model cannot load), so OUT
        # stays empty and the same command can simply be run again.
        if self.index(run).written or run.dispatched:
            self._write(run)

    def _write(self, run: JobsRun[Job]) -> BatchReport:
        """Write the index, page, ``skipped.csv`` and ``batch.json``; the report."""
        from videocam.analysis import package_versions

        seconds = time.perf_counter() - run.started
        report = BatchReport(run.out, run.ordered(), seconds, self.skipped)
        index = self.index(run)
        if self.config.prompts is not None:
            moments = write_moments(run.out, report.results, index.names)
            pages = {o: (run.out / o / REPORT_HTML).is_file() for o in set(moments["output"])}
            index.moments = [
                {
                    **{str(k): v for k, v in row.items()},
                    "report": REPORT_HTML if pages[row["output"]] else "",
                }
                for row in moments.to_dict("records")
            ]
        index.write(run.finished)
        write_skipped(run.out / SKIPPED_FILE, self.skipped)
        options = self.options
        workers = options.workers if options.workers is not None else run.engine.workers or 1
        summary = _summary(report, self, workers, run.finished)
        if options.engine == "ray":
            summary["ray_address"] = getattr(run.engine, "address", None) or "local"
        write_json({**summary, "versions": package_versions()}, run.out / SUMMARY_FILE)
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


def _summary(
    report: BatchReport, command: _BatchCommand, workers: int, finished: bool
) -> dict[str, Any]:
    """``batch.json`` but for the package versions."""
    files = {
        "index": INDEX_FILE,
        "failures": FAILURES_FILE,
        "skipped": SKIPPED_FILE,
        "report": REPORT_HTML,
        "per_video": "SUB/ with the analyze outputs, log.txt, and .done written last",
    }
    if command.config.prompts is not None:
        files["moments"] = MOMENTS_FILE
    return {
        "inputs": os.path.abspath(os.fspath(command.inputs)),
        "out": str(report.out_dir),
        "finished": finished,
        "engine": command.options.engine,
        "workers": workers,
        "resume": command.options.resume,
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
        "config": command.config.to_dict(),
        "config_hash": command.digest,
        "video_extensions": sorted(VIDEO_EXTENSIONS),
        "files": files,
    }
