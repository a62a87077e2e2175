"""Many patrol runs at once: ``run_batch(run_dirs, out_dir, process_config, batch_config)``.

Each run is the unchanged main job (``pipelines.process.run_process``) writing into
``OUT_DIR/<run folder name>/`` exactly what ``pavement process`` writes. Two engines run them:

- ``local``: a process pool on this machine (``spawn`` processes, one run per worker at a time);
- ``ray``: one Ray task per run on a Ray cluster (``ray.init(address=...)``, or a cluster started
  on this machine when no address is given). A task whose worker process dies (killed, out of
  memory, node lost) is run again by Ray up to ``max_retries`` times. A run's output only appears
  by ``run_process``'s final rename of its temporary folder, so an attempt cut off half-way leaves
  nothing that looks finished; the next attempt deletes what it left and writes the run afresh.
  With ``detector_actors``, the damage detector is loaded once per actor of a small pool
  (``pipelines.inference``; on GPUs with ``gpus_per_actor``) that every run's task sends its
  frames to, instead of once per run; an actor that dies is restarted and its calls sent again.

A run that fails (bad input, a bug) is reported with its error and does not stop the others.
``OUT_DIR/batch_report.json`` lists every run: ok or failed with the message, wall time, segments.

Run folders and ``OUT_DIR`` must be reachable under the same paths on every Ray node (a shared
file system), and every node needs this package installed (``pip install 'pavement-inspection'``).
"""

from __future__ import annotations

import json
import logging
import math
import multiprocessing
import os
import shutil
import socket
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from pavement.errors import ConfigError, PavementError
from pipelines.detect import BatchDetector
from pipelines.process import ProcessConfig

logger = logging.getLogger(__name__)

CLUSTER_EXTRA = "pip install 'pavement-inspection[cluster]'"
REPORT_NAME = "batch_report.json"


class Engine(StrEnum):
    LOCAL = "local"  # process pool on this machine
    RAY = "ray"  # Ray tasks on a cluster (the 'cluster' extra)


@dataclass(frozen=True)
class BatchConfig:
    engine: Engine = Engine.LOCAL
    address: str | None = None  # Ray cluster, e.g. "ray://head:10001" or "auto"; None: start one here
    workers: int | None = None  # runs at once; None: the cores here (local), the cluster's CPUs (ray)
    max_retries: int = 2  # ray: re-runs of a run whose worker process died
    cpus_per_run: float = 1.0  # ray: CPUs a run reserves (it keeps about 2 busy: decoder + models)
    gpus_per_run: float = 0.0  # ray: GPU share a run reserves (0.25: four runs share a GPU)
    # ray: actors that hold the damage detector, shared by all runs (0: each run loads its own).
    # One per GPU is the use: the runs decode on CPUs and send their frames to the GPUs.
    detector_actors: int = 0
    cpus_per_actor: float = 1.0  # ray: CPUs a detector actor reserves (its model's threads)
    gpus_per_actor: float = 0.0  # ray: GPU share a detector actor reserves (1: a GPU each)

    def __post_init__(self) -> None:
        if self.workers is not None and self.workers < 1:
            raise ConfigError(f"workers {self.workers} must be >= 1")
        if self.detector_actors < 0 or self.cpus_per_actor < 0 or self.gpus_per_actor < 0:
            raise ConfigError(
                f"detector_actors {self.detector_actors}, cpus_per_actor {self.cpus_per_actor} and "
                f"gpus_per_actor {self.gpus_per_actor} must be >= 0"
            )
        if self.detector_actors and self.engine != Engine.RAY:
            raise ConfigError(f"detector actors ({self.detector_actors}) need the ray engine: --engine ray")
        if self.max_retries < 0 or self.cpus_per_run <= 0 or self.gpus_per_run < 0:
            raise ConfigError(
                f"max_retries {self.max_retries}, cpus_per_run {self.cpus_per_run} and gpus_per_run "
                f"{self.gpus_per_run} must be >= 0 (cpus_per_run > 0)"
            )
        if self.address is not None and self.engine != Engine.RAY:
            raise ConfigError(f"a cluster address ({self.address}) needs the ray engine: --engine ray")


@dataclass(frozen=True)
class RunOutcome:
    """One run of a batch: where it went, whether it finished, in how many seconds."""

    run_dir: Path
    out_dir: Path
    ok: bool
    wall_s: float  # the run's processing time (the driver's waiting time when its worker died)
    segments: int = 0
    error: str | None = None  # "TypeName: message" for a failed run
    host: str = ""  # the machine that processed it
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class BatchResult:
    out_dir: Path
    engine: Engine
    workers: int | None
    outcomes: tuple[RunOutcome, ...]  # in the order the runs were given
    wall_s: float
    report_json: Path

    @property
    def failed(self) -> tuple[RunOutcome, ...]:
        return tuple(o for o in self.outcomes if not o.ok)


#: run_process(run_dir, out_dir, config) -> ProcessResult; injectable for tests.
ProcessFunction = Callable[..., object]
#: progress(runs done, runs in all, the outcome just finished)
BatchProgress = Callable[[int, int, RunOutcome], None]


def _remove_leftovers(out_dir: Path) -> tuple[str, ...]:
    """Delete what an earlier, cut-off attempt at this run left beside ``out_dir``: run_process's
    temporary ``.<name>.partial-<host>-<pid>`` folder, or the ``.old-<pid>`` one of an interrupted swap.
    Safe because a batch gives each run to one worker at a time."""
    notes = []
    if out_dir.parent.is_dir():
        for kind in ("partial", "old"):
            for stale in sorted(out_dir.parent.glob(f".{out_dir.name}.{kind}-*")):
                shutil.rmtree(stale, ignore_errors=True)
                notes.append(f"removed {stale.name}, left by an earlier attempt that did not finish")
    for note in notes:
        logger.warning("%s: %s", out_dir.name, note)
    return tuple(notes)


def process_run(
    run_dir: Path,
    out_dir: Path,
    config: ProcessConfig,
    process: ProcessFunction | None = None,
    detector: BatchDetector | None = None,
) -> RunOutcome:
    """Process one run of a batch (in a pool worker or a Ray task); never raises for a bad run.
    ``detector``: the damage detector the run uses (a pool's ``RemoteDetector``) instead of its own."""
    if process is None:
        from pipelines.process import run_process as process
    started = time.perf_counter()
    notes = _remove_leftovers(out_dir)
    host = socket.gethostname()
    try:
        if detector is None:
            result = process(run_dir, out_dir, config)
        else:
            result = process(run_dir, out_dir, config, detector=detector)
    except PavementError as exc:
        error = f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # a bug on one run's data must not stop the others
        logger.exception("%s: unexpected error", run_dir)
        error = f"internal error ({type(exc).__name__}: {exc})"
    else:
        segments = len(getattr(result, "segments", ()))
        return RunOutcome(run_dir, out_dir, True, time.perf_counter() - started, segments, None, host, notes)
    return RunOutcome(run_dir, out_dir, False, time.perf_counter() - started, 0, error, host, notes)


def plan_outputs(run_dirs: Sequence[Path], out_dir: Path) -> list[tuple[Path, Path]]:
    """(run folder, its output folder) for each run, as absolute paths (Ray workers may start
    elsewhere). Two runs with the same folder name would overwrite each other: refused."""
    out_dir = Path(out_dir).absolute()
    jobs, seen = [], {}
    for run_dir in run_dirs:
        run_dir = Path(run_dir).absolute()
        name = run_dir.name
        if name in seen:
            raise ConfigError(
                f"runs {seen[name]} and {run_dir} have the same folder name {name!r}, so both would be "
                f"written to {out_dir / name}; rename one of them or process them in separate batches"
            )
        if name == REPORT_NAME:
            raise ConfigError(f"a run folder may not be called {REPORT_NAME}; rename {run_dir}")
        seen[name] = run_dir
        jobs.append((run_dir, out_dir / name))
    return jobs


def run_batch(
    run_dirs: Sequence[Path],
    out_dir: Path,
    config: ProcessConfig | None = None,
    batch: BatchConfig = BatchConfig(),
    progress: BatchProgress | None = None,
    process: ProcessFunction | None = None,
) -> BatchResult:
    """Process every run of ``run_dirs`` into ``out_dir/<run folder name>/`` on ``batch.engine``;
    write ``out_dir/batch_report.json``. Failed runs are reported, not raised."""
    if not run_dirs:
        raise ConfigError("no run folders given; pass one or more RUN_DIR")
    jobs = plan_outputs(run_dirs, out_dir)
    config = config or ProcessConfig()
    out_dir = Path(out_dir).absolute()
    out_dir.mkdir(parents=True, exist_ok=True)
    started_utc = datetime.now(UTC)
    started = time.perf_counter()
    if batch.engine == Engine.RAY:
        outcomes = _run_ray(jobs, config, batch, progress, process)
    else:
        outcomes = _run_local(jobs, config, batch, progress, process)
    wall_s = time.perf_counter() - started
    report_json = _write_report(out_dir, batch, outcomes, started_utc, wall_s)
    return BatchResult(out_dir, batch.engine, batch.workers, tuple(outcomes), wall_s, report_json)


def _failed(run_dir: Path, out_dir: Path, wall_s: float, error: str) -> RunOutcome:
    return RunOutcome(run_dir, out_dir, False, wall_s, 0, error)


def _run_local(
    jobs: list[tuple[Path, Path]],
    config: ProcessConfig,
    batch: BatchConfig,
    progress: BatchProgress | None,
    process: ProcessFunction | None,
) -> list[RunOutcome]:
    """A pool of ``spawn`` processes (a fresh interpreter each: no threads or ONNX sessions
    inherited through fork)."""
    workers = min(batch.workers or os.cpu_count() or 1, len(jobs))
    outcomes: list[RunOutcome | None] = [None] * len(jobs)
    submitted_at = time.perf_counter()
    done = 0
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(process_run, r, o, config, process): n for n, (r, o) in enumerate(jobs)}
        for future in as_completed(futures):
            n = futures[future]
            try:
                outcome = future.result()
            except BrokenProcessPool:
                run_dir, run_out = jobs[n]
                outcome = _failed(
                    run_dir,
                    run_out,
                    time.perf_counter() - submitted_at,
                    "a worker process of the pool died (killed, or out of memory?); the local engine "
                    "does not retry: process the run again, or use --engine ray",
                )
            outcomes[n] = outcome
            done += 1
            if progress is not None:
                progress(done, len(jobs), outcome)
    return [o for o in outcomes if o is not None]


def import_ray():
    """The ``ray`` module, or an ImportError that names the extra to install."""
    try:
        import ray
    except ImportError as exc:
        raise ImportError(f"the ray engine needs Ray ({exc}): {CLUSTER_EXTRA}") from exc
    return ray


def _run_ray(
    jobs: list[tuple[Path, Path]],
    config: ProcessConfig,
    batch: BatchConfig,
    progress: BatchProgress | None,
    process: ProcessFunction | None,
) -> list[RunOutcome]:
    """One Ray task per run; at most ``batch.workers`` in flight (Ray also queues by CPUs). With
    ``batch.detector_actors``, the runs share that many detector actors (started first, stopped at
    the end)."""
    ray = import_ray()
    started_here = not ray.is_initialized()
    actors = batch.detector_actors if config.detect else 0
    if started_here:
        if batch.address is None:
            # A cluster on this machine for this batch only, the actors' CPUs beside the runs'. Small
            # object store: paths travel, and the detector's letterboxed 416 px images (0.5 MB
            # each; a run has at most 2 batches of 4 on their way).
            ray.init(
                num_cpus=(batch.workers or os.cpu_count() or 1) + math.ceil(actors * batch.cpus_per_actor),
                include_dashboard=False,
                object_store_memory=256 * 1024**2,
                logging_level=logging.WARNING,
            )
        else:
            ray.init(address=batch.address, logging_level=logging.WARNING)
    detector = None
    try:
        if actors:
            from pipelines.inference import start_detector_pool

            detector = start_detector_pool(
                actors,
                config.model_path,
                config.detector,
                batch.cpus_per_actor,
                batch.gpus_per_actor,
                batch.max_retries,
            )
        task = ray.remote(
            num_cpus=batch.cpus_per_run, num_gpus=batch.gpus_per_run, max_retries=batch.max_retries
        )(process_run)
        limit = batch.workers or len(jobs)
        waiting = list(enumerate(jobs))
        in_flight: dict = {}  # object ref -> (run number, submitted at)
        outcomes: list[RunOutcome | None] = [None] * len(jobs)
        done = 0
        while waiting or in_flight:
            while waiting and len(in_flight) < limit:
                n, (run_dir, run_out) = waiting.pop(0)
                run_detector = detector.for_run(n) if detector is not None else None
                ref = task.remote(run_dir, run_out, config, process, run_detector)
                in_flight[ref] = (n, time.perf_counter())
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            n, submitted = in_flight.pop(ready[0])
            try:
                outcome = ray.get(ready[0])
            except ray.exceptions.RayError as exc:  # the worker died on every attempt, node lost, ...
                run_dir, run_out = jobs[n]
                first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                outcome = _failed(
                    run_dir,
                    run_out,
                    time.perf_counter() - submitted,
                    f"{type(exc).__name__} after {batch.max_retries} retries: {first_line}",
                )
            outcomes[n] = outcome
            done += 1
            if progress is not None:
                progress(done, len(jobs), outcome)
    finally:
        if detector is not None:
            from pipelines.inference import stop_detector_pool

            stop_detector_pool(detector)
        if started_here:
            ray.shutdown()
    return [o for o in outcomes if o is not None]


def _process_task(run_dir: Path, out_dir: Path, config: ProcessConfig):
    """A Ray task: ``run_process`` after removing what a killed earlier attempt left."""
    from pipelines.process import run_process

    _remove_leftovers(out_dir)
    return run_process(run_dir, out_dir, config)


def ray_process_function(batch: BatchConfig = BatchConfig(engine=Engine.RAY)) -> ProcessFunction:
    """A stand-in for ``run_process(run_dir, out_dir, config, progress)`` that runs the job as one
    Ray task on ``batch.address`` (retried when its worker dies) and waits for its result: how a
    service worker hands its jobs to a cluster. ``progress`` is not called (the task's progress
    stays on the cluster); a ``PavementError`` raised by the job is raised here as it is."""

    def process(run_dir: Path, out_dir: Path, config: ProcessConfig, progress=None):
        ray = import_ray()
        if not ray.is_initialized():
            ray.init(address=batch.address, logging_level=logging.WARNING)
        task = ray.remote(
            num_cpus=batch.cpus_per_run, num_gpus=batch.gpus_per_run, max_retries=batch.max_retries
        )(_process_task)
        try:
            return ray.get(task.remote(Path(run_dir).absolute(), Path(out_dir).absolute(), config))
        except ray.exceptions.RayTaskError as exc:
            if isinstance(exc.cause, PavementError):  # the job's own message, not Ray's wrapper
                raise exc.cause from None
            raise

    return process


def _write_report(
    out_dir: Path, batch: BatchConfig, outcomes: list[RunOutcome], started_utc: datetime, wall_s: float
) -> Path:
    """batch_report.json, written to a temporary name and renamed (never half-written)."""

    def run_entry(o: RunOutcome) -> dict:
        entry = asdict(o)
        entry.update(run_dir=str(o.run_dir), out_dir=str(o.out_dir), wall_s=round(o.wall_s, 2))
        entry["notes"] = list(o.notes)
        return entry

    report = {
        "engine": batch.engine.value,
        "address": batch.address,
        "workers": batch.workers,
        "detector_actors": batch.detector_actors,
        "gpus_per_actor": batch.gpus_per_actor,
        "started_utc": started_utc.isoformat(timespec="seconds"),
        "wall_s": round(wall_s, 2),
        "sum_of_run_wall_s": round(sum(o.wall_s for o in outcomes), 2),
        "runs_total": len(outcomes),
        "runs_ok": sum(o.ok for o in outcomes),
        "runs_failed": sum(not o.ok for o in outcomes),
        "runs": [run_entry(o) for o in outcomes],
    }
    path = out_dir / REPORT_NAME
    tmp = out_dir / f".{REPORT_NAME}.{os.getpid()}"
    tmp.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path
