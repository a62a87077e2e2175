"""The store: migrations equal the models, upgrades are repeatable, the "latest per segment" query."""

from __future__ import annotations

import json
import threading
from datetime import date

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from api.db import open_store
from api.models import Base, Job, JobState, Run, SegmentRow, User
from api.queries import SegmentFilter, latest_rows, rows
from api.settings import Settings


def test_migrations_build_exactly_the_models(tmp_path):
    store = open_store(Settings(data_dir=tmp_path))
    with store.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diffs == []
    assert {"alembic_version", "segments", "jobs", "uploads", "tokens"} <= set(
        inspect(store.engine).get_table_names()
    )


def test_upgrade_is_repeatable_and_safe_to_race(tmp_path):
    settings = Settings(data_dir=tmp_path)
    errors = []

    def start() -> None:
        try:
            open_store(settings).engine.dispose()
        except Exception as exc:  # pragma: no cover - the failure being tested for
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    open_store(settings).engine.dispose()


def test_database_url_option(tmp_path):
    url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    store = open_store(Settings(data_dir=tmp_path / "data", database_url=url))
    assert (tmp_path / "elsewhere.db").is_file()
    assert not (tmp_path / "data" / "pavement.db").exists()
    store.engine.dispose()


@pytest.fixture
def store(tmp_path):
    store = open_store(Settings(data_dir=tmp_path))
    yield store
    store.engine.dispose()


def _run(session, owner: int, day: date | None, keys: list[str], done: bool = True) -> int:
    run = Run(owner_id=owner)
    session.add(run)
    session.flush()
    job = Job(run_id=run.id, state=JobState.DONE if done else JobState.RUNNING)
    session.add(job)
    session.flush()
    if done:
        run.current_job_id = job.id
    for key in keys:
        route, direction, kp, offset = key.split("_")
        session.add(
            SegmentRow(
                run_id=run.id,
                job_id=job.id,
                segment_key=key,
                route_no=route,
                direction=direction,
                kp_km=float(kp),
                offset_m=float(offset),
                length_m=100.0,
                inspection_date=day,
                year=day.year if day else None,
                min_lon=140.0,
                min_lat=40.0,
                max_lon=140.001,
                max_lat=40.001,
                geometry_json=json.dumps(
                    {"type": "LineString", "coordinates": [[140, 40], [140.001, 40.001]]}
                ),
                properties_json=json.dumps({"segment_id": key}),
            )
        )
    return run.id


def test_latest_per_segment_key(store):
    a, b = "3_下り_12_0000", "3_下り_12_0100"
    with store.session() as session:
        owner = User(name="u", role="uploader")
        session.add(owner)
        session.flush()
        old = _run(session, owner.id, date(2024, 6, 12), [a, b])
        new = _run(session, owner.id, date(2025, 6, 1), [a])
        same_day = _run(session, owner.id, date(2025, 6, 1), [a])  # a later run on the same day wins
        _run(session, owner.id, date(2026, 1, 1), [a, b], done=False)  # not finished: not current
    with store.session() as session:
        latest = {r.segment_key: r.run_id for r in rows(session, latest_rows(SegmentFilter()))}
        in_2024 = {r.segment_key: r.run_id for r in rows(session, latest_rows(SegmentFilter(year=2024)))}
    assert latest == {a: same_day, b: old}
    assert in_2024 == {a: old, b: old}
    assert new != same_day
