"""The durable job queue: atomic claims, leases, a worker that dies mid-job, retries without
duplicate segments, failures with their message, re-processing that keeps the old results.

Processing is the real ``run_process`` once per session (the ``e2e`` fixture); here a stand-in
copies that output, so each test costs milliseconds, except the one that kills a real worker.
The tests run on SQLite and on PostgreSQL (``ON_BOTH``; the latter skips without a server)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from api.models import Job, JobState, SegmentRow, utcnow
from api.results import JobLost, store_results
from api.worker import claim_job, renew, result_dir, run_job, work
from pavement.errors import GpsTrackError
from tests.api.conftest import ON_BOTH, auth, copying_process


def _segments(service, job_id: int | None = None) -> list[str]:
    with service.store.session() as session:
        query = select(SegmentRow.segment_key)
        if job_id is not None:
            query = query.where(SegmentRow.job_id == job_id)
        return list(session.scalars(query).all())


def _job(service, job_id: int) -> Job:
    with service.store.session() as session:
        return session.get(Job, job_id)


def _expire(service, job_id: int) -> None:
    """What time does to a dead worker's job: its lease runs out."""
    with service.store.session() as session:
        session.execute(
            update(Job).where(Job.id == job_id).values(lease_until=utcnow() - timedelta(seconds=1))
        )


@ON_BOTH
def test_worker_dies_mid_job_and_another_finishes_it_without_duplicates(service, e2e):
    _, job_id = service.queue_run()
    dead = claim_job(service.store, service.settings, "worker-A")
    assert dead is not None and dead.attempt == 1
    assert claim_job(service.store, service.settings, "worker-B") is None  # leased: not claimable
    _expire(service, job_id)

    assert (
        work(
            service.store,
            service.settings,
            once=True,
            process=copying_process(e2e.result_dir),
            worker_id="worker-B",
        )
        == 1
    )
    job = _job(service, job_id)
    assert (job.state, job.attempts, job.worker_id, job.progress) == ("done", 2, "worker-B", 1.0)
    keys = _segments(service, job_id)
    assert len(keys) == len(set(keys)) == 3

    # worker A was only slow, not dead: it wakes up and may neither renew nor store
    assert renew(service.store, service.settings, dead) is False
    late = result_dir(service.store, dead)
    shutil.copytree(e2e.result_dir, late)
    with pytest.raises(JobLost):
        store_results(service.store, dead, late)
    assert sorted(_segments(service, job_id)) == sorted(keys)


@ON_BOTH
def test_storing_a_job_again_replaces_its_rows(service, e2e):
    _, job_id = service.queue_run()
    first = claim_job(service.store, service.settings, "worker-A")
    out = result_dir(service.store, first)
    shutil.copytree(e2e.result_dir, out)
    assert store_results(service.store, first, out) == 3
    # a crash after the commit but before the worker noticed: the job is handed out again
    with service.store.session() as session:
        session.execute(update(Job).where(Job.id == job_id).values(state=JobState.RUNNING))
    _expire(service, job_id)
    second = claim_job(service.store, service.settings, "worker-B")
    assert second.job_id == job_id and second.attempt == 2
    assert store_results(service.store, second, out) == 3
    keys = _segments(service, job_id)
    assert len(keys) == len(set(keys)) == 3


@ON_BOTH
def test_claims_are_atomic(make_service):
    service = make_service()
    jobs = {service.queue_run()[1] for _ in range(6)}
    claimed: list[int] = []
    lock = threading.Lock()

    def worker(name: str) -> None:
        while (job := claim_job(service.store, service.settings, name)) is not None:
            with lock:
                claimed.append(job.job_id)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(claimed) == sorted(jobs)


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_postgresql_claims_skip_a_job_locked_by_another_worker(make_service):
    """FOR UPDATE SKIP LOCKED: while one worker's claiming transaction holds the oldest job, another
    worker takes the next one at once instead of waiting for it."""
    service = make_service()
    first, second = service.queue_run()[1], service.queue_run()[1]
    with service.store.session() as session:
        session.execute(select(Job.id).where(Job.id == first).with_for_update())
        started = time.monotonic()
        job = claim_job(service.store, service.settings, "worker-B")
        waited_s = time.monotonic() - started
    assert job is not None and job.job_id == second
    assert waited_s < 5
    assert claim_job(service.store, service.settings, "worker-A").job_id == first


@ON_BOTH
def test_job_that_kills_every_worker_fails_after_max_attempts(make_service):
    service = make_service(max_attempts=2)
    _, job_id = service.queue_run()
    for name in ("w1", "w2"):
        assert claim_job(service.store, service.settings, name) is not None
        _expire(service, job_id)
    assert claim_job(service.store, service.settings, "w3") is None
    job = _job(service, job_id)
    assert job.state == "failed"
    assert "each of 2 attempts" in job.error


@ON_BOTH
def test_input_error_fails_the_job_with_its_message(service):
    _, job_id = service.queue_run()

    def broken(run_dir, out_dir, config, progress=None):
        raise GpsTrackError("GPS file gps.csv is empty (0 bytes); upload the log the phone app wrote")

    assert work(service.store, service.settings, once=True, process=broken) == 1
    body = service.client.get(f"/api/v1/jobs/{job_id}", headers=auth(service.tokens["uploader"])).json()
    assert body["state"] == "failed"
    assert (
        body["error"]
        == "GpsTrackError: GPS file gps.csv is empty (0 bytes); upload the log the phone app wrote"
    )


@ON_BOTH
def test_progress_is_visible_while_running(service, e2e):
    _, job_id = service.queue_run()
    seen = []
    copy = copying_process(e2e.result_dir)

    def process(run_dir, out_dir, config, progress=None):
        progress("video", 50, 100, 0.1)
        seen.append(
            service.client.get(f"/api/v1/jobs/{job_id}", headers=auth(service.tokens["admin"])).json()
        )
        copy(run_dir, out_dir, config)

    work(service.store, service.settings, once=True, process=process)
    assert seen[0]["state"] == "running"
    assert 0.4 < seen[0]["progress"] < 0.5
    assert seen[0]["stage"].startswith("video")


@ON_BOTH
def test_a_worker_that_lost_its_lease_stops_and_stores_nothing(service, e2e):
    _, job_id = service.queue_run()
    job = claim_job(service.store, service.settings, "worker-A")

    def process(run_dir, out_dir, config, progress=None):
        shutil.copytree(e2e.result_dir, out_dir)
        with service.store.session() as session:  # meanwhile another worker took the job over
            session.execute(update(Job).where(Job.id == job_id).values(worker_id="worker-B", attempts=2))
        progress("video", 1, 2)

    assert run_job(service.store, service.settings, job, process) == "lost"
    assert _segments(service, job_id) == []
    assert not result_dir(service.store, job).exists()


@ON_BOTH
def test_reprocessing_keeps_the_old_results(service, e2e):
    run_id, first = service.queue_run()
    copy = copying_process(e2e.result_dir)
    work(service.store, service.settings, once=True, process=copy)
    admin, eng = service.tokens["admin"], service.tokens["engineer"]
    again = service.client.post(f"/api/v1/runs/{run_id}/reprocess", headers=auth(admin))
    assert again.status_code == 202
    second = again.json()["job_id"]
    assert service.client.post(f"/api/v1/runs/{run_id}/reprocess", headers=auth(admin)).status_code == 409
    work(service.store, service.settings, once=True, process=copy)

    assert len(_segments(service, first)) == len(_segments(service, second)) == 3
    features = service.client.get("/api/v1/segments", headers=auth(eng)).json()["features"]
    assert {f["properties"]["result_version"] for f in features} == {second}
    detail = service.client.get(f"/api/v1/segments/{features[0]['id']}", headers=auth(eng)).json()
    assert [(h["result_version"], h["current"]) for h in detail["history"]] == [
        (first, False),
        (second, True),
    ]
    run = service.client.get(f"/api/v1/runs/{run_id}", headers=auth(admin)).json()
    assert run["current_job_id"] == second and [j["state"] for j in run["jobs"]] == ["done", "done"]


@ON_BOTH
def test_kill_a_real_worker_process_mid_job(make_service, e2e, synth_run):
    """``pavement worker`` in its own process on the real run, SIGKILLed while the video decodes;
    after its lease runs out a second worker finishes the job: one set of segments."""
    service = make_service(lease_s=2.0, heartbeat_s=0.5)
    run_id, job_id = service.queue_run()
    run_dir = service.store.runs_dir / str(run_id)
    for name in ("video.mp4", "gps.gpx", "accel.csv", "route.geojson", "camera.json"):
        shutil.copy(synth_run / name, run_dir / name)
    env = {**os.environ, "PAVEMENT_LEASE_S": "2", "PAVEMENT_HEARTBEAT_S": "0.5"}
    env.pop("PAVEMENT_DATABASE_URL", None)
    if service.settings.database_url:
        env["PAVEMENT_DATABASE_URL"] = service.settings.database_url
    pavement = Path(sys.executable).with_name("pavement")
    worker = subprocess.Popen(
        [str(pavement), "worker", "--once", "--data", str(service.settings.data_dir)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and worker.poll() is None:
            job = _job(service, job_id)
            if job.state == "running" and job.progress > 0:
                break
            time.sleep(0.2)
        assert worker.poll() is None, worker.stderr.read().decode()
        assert _job(service, job_id).progress < 1.0
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(30)
        worker.stderr.close()
    assert _job(service, job_id).state == "running"  # nobody told the store: only the lease can
    time.sleep(2.5)
    assert work(service.store, service.settings, once=True, process=copying_process(e2e.result_dir)) == 1
    job = _job(service, job_id)
    assert (job.state, job.attempts) == ("done", 2)
    with service.store.session() as session:
        n = session.scalar(select(func.count()).select_from(SegmentRow).where(SegmentRow.job_id == job_id))
    assert n == 3
    leftovers = sorted(p.name for p in (service.store.results_dir / str(run_id)).iterdir())
    assert leftovers == [f"job{job_id}.a2"]


def test_a_worker_with_a_ray_address_hands_its_jobs_to_the_cluster(service, e2e, monkeypatch):
    """PAVEMENT_RAY_ADDRESS / --ray-address: the job runs as a Ray task (pipelines.batch, whose own
    tests run it on a real local cluster); queue, lease and results stay with the worker."""
    import pipelines.batch as batch

    handed = []

    def cluster(config):
        handed.append((config.engine, config.address))
        return copying_process(e2e.result_dir)

    monkeypatch.setattr(batch, "ray_process_function", cluster)
    service.queue_run()
    settings = service.settings.model_copy(update={"ray_address": "local"})
    assert work(service.store, settings, once=True) == 1
    assert handed == [(batch.Engine.RAY, None)]  # 'local': a cluster started on this machine
    assert len(_segments(service)) == 3
