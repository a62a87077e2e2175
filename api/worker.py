"""The job queue's worker: claim a job, run ``pipelines.process.run_process``, store the results.

- **Claim** is a compare-and-set ``UPDATE`` (portable: SQLite and PostgreSQL): a queued job, or a
  running one whose lease expired (its worker died), gets this worker's id, ``attempts + 1`` and a
  lease. Only one worker's ``UPDATE`` can match. A job that already used ``max_attempts`` is failed.
  On PostgreSQL the candidate is first locked with ``FOR UPDATE SKIP LOCKED``: workers don't wait on
  each other's rows.
- **Lease**: a heartbeat thread renews it every ``heartbeat_s``; progress is written on the way.
  Every write is fenced by (worker id, attempt): a worker whose lease was taken over stops at its
  next progress report and stores nothing.
- **Output**: ``DATA/results/<run id>/job<job id>.a<attempt>/``, a folder per attempt, so a
  presumed-dead worker that is still writing cannot touch the folder the new owner stores.
- **Results** go into the store in one transaction (``api.results.store_results``).
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Row, and_, or_, select, update
from sqlalchemy.orm import Session

from api.db import Store
from api.models import Job, JobState, utcnow
from api.results import ClaimedJob, JobLost, store_results
from api.settings import Settings
from api.tus import expire_uploads
from pavement.errors import PavementError

logger = logging.getLogger(__name__)

#: run_process(run_dir, out_dir, config, progress) -> anything; injectable for tests.
ProcessFunction = Callable[..., object]
VIDEO_SHARE = 0.9  # of the progress bar: decoding the video is nearly all of a job
_PROGRESS_INTERVAL_S = 1.0
_SWEEP_INTERVAL_S = 600.0  # how often an idle worker deletes expired uploads


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def _claimable(now):
    return or_(Job.state == JobState.QUEUED, and_(Job.state == JobState.RUNNING, Job.lease_until < now))


def _take(session: Session, c: Row, now: datetime, settings: Settings, worker_id: str) -> ClaimedJob | None:
    """Claim candidate ``c`` with a compare-and-set ``UPDATE`` (only one worker's can match); a job
    that already used ``max_attempts`` is failed instead. The claimed job, or None."""
    if c.attempts >= c.max_attempts:  # died every time: do not take the machine down again
        session.execute(
            update(Job)
            .where(Job.id == c.id, Job.attempts == c.attempts, _claimable(now))
            .values(
                state=JobState.FAILED,
                finished_at=now,
                lease_until=None,
                error=f"the worker stopped during each of {c.attempts} attempts "
                "(crash or out of memory?); see the workers' logs, then re-process the run",
            )
        )
        return None
    result = session.execute(
        update(Job)
        .where(Job.id == c.id, Job.attempts == c.attempts, _claimable(now))
        .values(
            state=JobState.RUNNING,
            attempts=c.attempts + 1,
            worker_id=worker_id,
            lease_until=now + timedelta(seconds=settings.lease_s),
            heartbeat_at=now,
            started_at=now,
            progress=0.0,
            stage="starting",
            error=None,
        )
    )
    if result.rowcount != 1:
        return None
    if c.state == JobState.RUNNING:
        logger.warning("job %d: lease expired, retried by %s (attempt %d)", c.id, worker_id, c.attempts + 1)
    return ClaimedJob(c.id, c.run_id, worker_id, c.attempts + 1, json.loads(c.options_json or "{}"))


def claim_job(store: Store, settings: Settings, worker_id: str) -> ClaimedJob | None:
    """Take the oldest claimable job, or None.

    PostgreSQL: ``SELECT ... FOR UPDATE SKIP LOCKED`` locks one candidate in the claiming
    transaction, so concurrent workers take different jobs at once instead of queueing on one row.
    SQLite (one writer at a time, no row locks): each candidate is tried in its own short transaction.
    """
    now = utcnow()
    candidates = (
        select(Job.id, Job.run_id, Job.attempts, Job.max_attempts, Job.state, Job.options_json)
        .where(_claimable(now))
        .order_by(Job.id)
    )
    if store.engine.dialect.name == "postgresql":
        while True:  # each pass claims a job, fails one that used its attempts, or finds none
            with store.session() as session:
                c = session.execute(candidates.limit(1).with_for_update(skip_locked=True)).first()
                if c is None:
                    return None
                job = _take(session, c, now, settings, worker_id)
            if job is not None:
                return job
    with store.session() as session:
        found = session.execute(candidates.limit(20)).all()
    for c in found:
        with store.session() as session:
            job = _take(session, c, now, settings, worker_id)
        if job is not None:
            return job
    return None


def _fenced(job: ClaimedJob):
    return and_(
        Job.id == job.job_id,
        Job.worker_id == job.worker_id,
        Job.attempts == job.attempt,
        Job.state == JobState.RUNNING,
    )


def renew(store: Store, settings: Settings, job: ClaimedJob, **values: object) -> bool:
    """Extend the lease (and write ``values``); False when the job is no longer this worker's."""
    now = utcnow()
    with store.session() as session:
        result = session.execute(
            update(Job)
            .where(_fenced(job))
            .values(lease_until=now + timedelta(seconds=settings.lease_s), heartbeat_at=now, **values)
        )
        return result.rowcount == 1


def fail_job(store: Store, job: ClaimedJob, message: str) -> bool:
    with store.session() as session:
        result = session.execute(
            update(Job)
            .where(_fenced(job))
            .values(state=JobState.FAILED, error=message, finished_at=utcnow(), lease_until=None)
        )
        return result.rowcount == 1


class _Heartbeat(threading.Thread):
    """Renews the lease while the job runs; notes when it was lost."""

    def __init__(self, store: Store, settings: Settings, job: ClaimedJob) -> None:
        super().__init__(daemon=True, name=f"heartbeat-{job.job_id}")
        self.store, self.settings, self.job = store, settings, job
        self.stopped = threading.Event()
        self.lost = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.settings.heartbeat_s):
            try:
                if not renew(self.store, self.settings, self.job):
                    self.lost.set()
                    return
            except Exception:  # a busy database: try again at the next beat, the lease has slack
                logger.warning("job %d: heartbeat failed", self.job.job_id, exc_info=True)


def _process_config(run_dir: Path, options: dict):
    from pipelines.iri import VehicleCalibration
    from pipelines.process import ProcessConfig

    config = ProcessConfig()
    if (run_dir / "vehicle.json").is_file():
        config = replace(config, vehicle_gain=VehicleCalibration.read(run_dir / "vehicle.json").gain)
    if options.get("detect") is False:
        config = replace(config, detect=False)
    return config


def result_dir(store: Store, job: ClaimedJob) -> Path:
    return store.results_dir / str(job.run_id) / f"job{job.job_id}.a{job.attempt}"


def run_job(store: Store, settings: Settings, job: ClaimedJob, process: ProcessFunction | None = None) -> str:
    """Process one claimed job to its end; the state it ended in (done / failed / lost)."""
    if process is None:
        from pipelines.process import run_process as process
    run_dir = store.runs_dir / str(job.run_id)
    out_dir = result_dir(store, job)
    heartbeat = _Heartbeat(store, settings, job)
    last_write = [0.0]

    def progress(stage: str, done: int, total: int, km: float | None = None) -> None:
        if heartbeat.lost.is_set():
            raise JobLost(f"job {job.job_id}: lease lost")
        now = time.monotonic()
        if now - last_write[0] < _PROGRESS_INTERVAL_S and done < total:
            return
        last_write[0] = now
        share = VIDEO_SHARE * done / total if total else 0.0
        label = stage if km is None else f"{stage} {km:.2f} km"
        if not renew(store, settings, job, progress=round(share, 4), stage=label[:40]):
            heartbeat.lost.set()
            raise JobLost(f"job {job.job_id}: lease lost")

    heartbeat.start()
    try:
        process(run_dir, out_dir, _process_config(run_dir, job.options), progress)
        if heartbeat.lost.is_set():
            raise JobLost(f"job {job.job_id}: lease lost")
        renew(store, settings, job, progress=VIDEO_SHARE + 0.05, stage="storing")
        n = store_results(store, job, out_dir)
    except JobLost:
        logger.warning("job %d: another worker took it over; attempt %d stops", job.job_id, job.attempt)
        shutil.rmtree(out_dir, ignore_errors=True)
        return "lost"
    except PavementError as exc:
        logger.info("job %d failed: %s", job.job_id, exc)
        fail_job(store, job, f"{type(exc).__name__}: {exc}")
        return JobState.FAILED
    except Exception as exc:
        logger.exception("job %d: unexpected error", job.job_id)
        fail_job(store, job, f"internal error ({type(exc).__name__}: {exc}); see the worker's log")
        return JobState.FAILED
    finally:
        heartbeat.stopped.set()
    leftovers = [*out_dir.parent.glob(f"job{job.job_id}.a*"), *out_dir.parent.glob(f".job{job.job_id}.a*")]
    for other in leftovers:  # earlier attempts' folders, finished or cut off (run_process's .partial-*)
        if other != out_dir:
            shutil.rmtree(other, ignore_errors=True)
    logger.info("job %d done: %d segments stored", job.job_id, n)
    return JobState.DONE


def cluster_process(address: str) -> ProcessFunction:
    """The job's processing as a Ray task on the cluster at ``address`` ('local': one started on
    this machine); the worker keeps the queue, the lease and the results as before."""
    from pipelines.batch import BatchConfig, Engine, ray_process_function

    return ray_process_function(
        BatchConfig(engine=Engine.RAY, address=None if address == "local" else address)
    )


def work(
    store: Store,
    settings: Settings,
    once: bool = False,
    stop: threading.Event | None = None,
    process: ProcessFunction | None = None,
    worker_id: str | None = None,
) -> int:
    """Take jobs until ``stop`` is set (or, ``once``, until the queue is empty); the number run."""
    worker_id = worker_id or new_worker_id()
    stop = stop or threading.Event()
    if process is None and settings.ray_address:
        process = cluster_process(settings.ray_address)
    n = 0
    last_sweep = -math.inf
    logger.info("worker %s started", worker_id)
    while not stop.is_set():
        job = claim_job(store, settings, worker_id)
        if job is None:
            if time.monotonic() - last_sweep > _SWEEP_INTERVAL_S:  # housekeeping while idle
                expire_uploads(store, settings.upload_expiry_h)
                last_sweep = time.monotonic()
            if once:
                break
            stop.wait(settings.poll_s)
            continue
        logger.info("job %d (run %d) claimed, attempt %d", job.job_id, job.run_id, job.attempt)
        run_job(store, settings, job, process)
        n += 1
    return n
