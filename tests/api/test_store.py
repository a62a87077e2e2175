"""The store: migrations equal the models, upgrades are repeatable, the "latest per segment" query;
on SQLite and on PostgreSQL + PostGIS (``ON_BOTH``; the latter skips without a server)."""

from __future__ import annotations

import json
import threading
from datetime import date

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from api.db import open_store
from api.models import Base, Job, JobState, Run, SegmentRow, User, include_object
from api.queries import SegmentFilter, current_rows, latest_rows, refresh_latest, rows
from api.settings import Settings
from tests.api.conftest import ON_BOTH


@ON_BOTH
@pytest.mark.filterwarnings("ignore:Did not recognize type 'geometry'")  # PostGIS's column, not compared
def test_migrations_build_exactly_the_models(tmp_path, new_database_url):
    """Upgrade an empty database (on PostgreSQL: PostGIS installed, no tables) to head, then compare."""
    store = open_store(Settings(data_dir=tmp_path, database_url=new_database_url()))
    with store.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_object": include_object}
        )
        diffs = compare_metadata(context, Base.metadata)
        version = conn.scalar(text("SELECT version_num FROM alembic_version"))
    assert diffs == []
    assert version == "0006"
    assert {"alembic_version", "segments", "jobs", "uploads", "tokens"} <= set(
        inspect(store.engine).get_table_names()
    )
    store.engine.dispose()


def test_postgresql_database_gets_postgis_from_the_migrations(tmp_path, postgres):
    """A database made with a plain CREATE DATABASE (no PostGIS yet): the upgrade adds it."""
    store = open_store(Settings(data_dir=tmp_path, database_url=postgres.new_database(postgis=False)))
    with store.engine.connect() as conn:
        assert conn.scalar(text("SELECT extname FROM pg_extension WHERE extname = 'postgis'")) == "postgis"
        geom = conn.execute(
            text("SELECT type, srid FROM geometry_columns WHERE f_table_name = 'segments'")
        ).one()
    assert tuple(geom) == ("GEOMETRY", 4326)
    store.engine.dispose()


@ON_BOTH
def test_upgrade_is_repeatable_and_safe_to_race(tmp_path, new_database_url):
    settings = Settings(data_dir=tmp_path, database_url=new_database_url())
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


@ON_BOTH
def test_upgrade_to_0004_fills_the_map_copies_and_the_latest_rows(tmp_path, new_database_url):
    """A store of 0003 with segments of two runs: 0004 adds the map's compact copies, made from the
    stored rows as the writer makes them now, and the latest row of each place."""
    from alembic import command

    from api.db import make_engine
    from api.queries import map_json

    engine = make_engine(new_database_url() or f"sqlite:///{tmp_path / 'old.db'}")
    coords = [[140.7 + 1e-5 * i, 40.8 + 1e-7 * i * i] for i in range(20)]
    geometry = json.dumps({"type": "LineString", "coordinates": coords})
    props = json.dumps(
        {"segment_id": "3_下り_12_0000", "route_no": "3", "frame_ids": "1,2", "category": "II"}
    )
    with engine.begin() as conn:
        config = _alembic(conn)
        command.upgrade(config, "0003")
        _two_runs_of_one_place(conn, geometry, props)
        command.upgrade(config, "0004")
        stored = conn.execute(text("SELECT map_json FROM segments WHERE id = 1")).scalar_one()
        latest = conn.execute(text("SELECT segment_key, segment_id, map_json FROM latest_segments")).all()
    engine.dispose()
    assert stored == map_json(json.loads(geometry), json.loads(props))
    line = json.loads(stored)[0]
    assert line[:2] == [140_700_000, 40_800_000] and len(line) < 10  # simplified, in micro-degrees
    assert [tuple(r) for r in latest] == [("3_下り_12_0000", 2, stored)]  # the 2025 run's row


def _alembic(conn):
    from alembic.config import Config

    from api.db import MIGRATIONS

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = conn
    return config


def _two_runs_of_one_place(conn, geometry: str, props: str, map_json: str | None = None) -> None:
    """Runs 1 (2024) and 2 (2025), each with its job and a row (id = run id) of one place, written
    as a store of 0003 (``map_json`` None) or 0004 does."""
    conn.execute(
        text("INSERT INTO users (id, name, role, created_at) VALUES (1, 'u', 'uploader', '2024-01-01')")
    )
    copy = ("", "") if map_json is None else (", map_json", ", :m")
    for run, day in ((1, "2024-06-01"), (2, "2025-06-01")):
        conn.execute(
            text(
                "INSERT INTO runs (id, owner_id, label, vehicle_json, files_json, created_at, "
                "current_job_id) VALUES (:r, 1, '', '{}', '{}', '2024-01-01', :r)"
            ),
            {"r": run},
        )
        conn.execute(
            text(
                "INSERT INTO jobs (id, run_id, state, progress, stage, options_json, attempts, "
                "max_attempts, created_at) VALUES (:r, :r, 'done', 1, '', '{}', 1, 3, '2024-01-01')"
            ),
            {"r": run},
        )
        conn.execute(
            text(
                "INSERT INTO segments (id, run_id, job_id, segment_key, route_no, direction, kp_km, "
                "offset_m, length_m, partial, pothole_count, inspection_date, min_lon, min_lat, "
                f"max_lon, max_lat, geometry_json, properties_json{copy[0]}) VALUES (:r, :r, :r, "
                "'3_下り_12_0000', '3', '下り', 12, 0, 100, false, 0, :d, 140.7, 40.8, 140.71, 40.81, "
                f":g, :p{copy[1]})"
            ),
            {"r": run, "d": date.fromisoformat(day), "g": geometry, "p": props, "m": map_json},
        )


@ON_BOTH
def test_upgrade_to_0005_makes_the_map_items_of_the_latest_rows(tmp_path, new_database_url):
    """A store of 0004 (latest_segments with a copy of map_json): 0005 makes each place's map item
    as the writer makes it now (``MAP_ITEM``) and drops the copy; the downgrade brings it back."""
    from alembic import command
    from sqlalchemy import select

    from api.db import make_engine
    from api.queries import MAP_ITEM, map_json

    engine = make_engine(new_database_url() or f"sqlite:///{tmp_path / 'old.db'}")
    geometry = {"type": "LineString", "coordinates": [[140.7, 40.8], [140.7005, 40.8004], [140.701, 40.801]]}
    props = {"segment_id": "3_下り_12_0000", "route_no": "3", "direction": "下り", "category": "II"}
    copy = map_json(geometry, props)
    with engine.begin() as conn:
        config = _alembic(conn)
        command.upgrade(config, "0004")
        _two_runs_of_one_place(conn, json.dumps(geometry), json.dumps(props), copy)
        conn.execute(
            text(
                "INSERT INTO latest_segments (segment_key, segment_id, route_no, direction, kp_km, "
                "offset_m, map_json) VALUES ('3_下り_12_0000', 2, '3', '下り', 12, 0, :m)"
            ),
            {"m": copy},
        )
        command.upgrade(config, "head")
        items = conn.execute(text("SELECT segment_id, map_item FROM latest_segments")).all()
        made_now = conn.execute(select(MAP_ITEM).where(SegmentRow.id == 2)).scalar_one()
        command.downgrade(config, "0004")
        back = conn.execute(text("SELECT segment_id, map_json FROM latest_segments")).all()
    engine.dispose()
    assert [tuple(r) for r in items] == [(2, made_now)]
    assert json.loads(made_now) == [2, *json.loads(copy)]  # [id, line, *properties]
    assert [tuple(r) for r in back] == [(2, copy)]


def test_database_url_option(tmp_path):
    url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    store = open_store(Settings(data_dir=tmp_path / "data", database_url=url))
    assert (tmp_path / "elsewhere.db").is_file()
    assert not (tmp_path / "data" / "pavement.db").exists()
    store.engine.dispose()


@pytest.fixture
def store(tmp_path, new_database_url):
    store = open_store(Settings(data_dir=tmp_path, database_url=new_database_url()))
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
                map_json="[[140000000,40000000,1000,1000]]",
            )
        )
    refresh_latest(session, keys)
    return run.id


@ON_BOTH
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
        # the same rule ranked over the rows (a filter every row passes): the table agrees
        ranked = {
            r.segment_key: r.run_id
            for r in rows(session, latest_rows(SegmentFilter(date_from=date(1900, 1, 1))))
        }
    assert latest == ranked == {a: same_day, b: old}
    assert in_2024 == {a: old, b: old}
    assert new != same_day


@ON_BOTH
def test_bbox_filter_keeps_boxes_that_touch_and_drops_the_rest(store):
    """The segment's box is lon 140..140.001, lat 40..40.001; edges count as meeting."""
    with store.session() as session:
        owner = User(name="u", role="uploader")
        session.add(owner)
        session.flush()
        _run(session, owner.id, date(2024, 6, 12), ["3_下り_12_0000"])

    def found(bbox) -> int:
        with store.session() as session:
            return len(rows(session, current_rows(SegmentFilter(bbox=bbox))))

    assert found((139.0, 39.0, 141.0, 41.0)) == 1
    assert found((140.001, 40.001, 140.5, 40.5)) == 1  # corner to corner
    # 1e-7 degrees (1 cm) east of it: PostGIS's float4 boxes meet, the exact columns decide
    assert found((140.0010001, 40.0, 140.5, 40.5)) == 0
    assert found((139.0, 39.0, 139.9999, 41.0)) == 0


def test_postgis_geometry_is_the_stored_geojson_and_indexed(postgres, tmp_path):
    store = open_store(Settings(data_dir=tmp_path, database_url=postgres.new_database()))
    with store.session() as session:
        owner = User(name="u", role="uploader")
        session.add(owner)
        session.flush()
        _run(session, owner.id, date(2024, 6, 12), ["3_下り_12_0000"])
    with store.engine.connect() as conn:
        geojson, srid = conn.execute(text("SELECT ST_AsGeoJSON(geom), ST_SRID(geom) FROM segments")).one()
        assert json.loads(geojson)["coordinates"] == [[140, 40], [140.001, 40.001]]
        assert srid == 4326
        conn.execute(text("SET enable_seqscan = off"))  # a tiny table: make the planner show its index
        query = current_rows(SegmentFilter(bbox=(139.0, 39.0, 141.0, 41.0))).with_only_columns(SegmentRow.id)
        compiled = query.compile(conn, compile_kwargs={"literal_binds": True})
        plan = "\n".join(conn.scalars(text(f"EXPLAIN {compiled}")))
    assert "ix_segments_geom" in plan, plan
    store.engine.dispose()
