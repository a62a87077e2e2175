"""The store: SQLAlchemy 2 models of the service (portable SQL: SQLite and PostgreSQL).

::

    users ─< tokens                 bearer tokens, only their sha256 stored
    users ─< uploads                tus uploads; the bytes live in DATA/uploads/<id>
    users ─< runs ─< jobs           a run folder DATA/runs/<run id>/; one job per (re-)processing
    jobs ─< segments ─< frames      results of one job = one result version of its run;
    jobs ─< potholes                DATA/results/<run id>/<job id>/ holds its files
    segments ─ latest_segments      per place (segment key): its latest row, with the map's item
    repair_candidates               措置 candidates, keyed by the segment's place (segment_key)

A run's ``current_job_id`` is its newest finished job: its segments are the run's figures, older
jobs' rows stay for comparison. Segment rows are unique per (job, segment key): storing a job's
results again (a retried job) replaces them, never duplicates them. Geometry is GeoJSON text with
a bounding box in four indexed columns; on PostgreSQL the segments also have a PostGIS column
``geom`` computed from that text, with a GiST index for the map's bbox filter (migration 0002; not
in these models, so that the same models serve SQLite: ``include_object`` tells Alembic).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated

from annotated_types import Interval
from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

#: Largest id: ids are INTEGER columns, 32-bit in PostgreSQL (an id past it is a 422, not a 500).
MAX_ID = 2**31 - 1
#: A row id as a path or query parameter of the API.
RowId = Annotated[int, Interval(ge=1, le=MAX_ID)]

#: Schema objects only PostgreSQL has: PostGIS's own table and the segments' geometry (migration 0002).
POSTGIS_ONLY = {("table", "spatial_ref_sys"), ("column", "geom"), ("index", "ix_segments_geom")}


def include_object(obj, name: str | None, type_: str, reflected: bool, compare_to) -> bool:
    """Alembic's filter when comparing the database with these models: skip ``POSTGIS_ONLY``."""
    return not (reflected and compare_to is None and (type_, name) in POSTGIS_ONLY)


def utcnow() -> datetime:
    """Naive UTC (SQLite keeps no time zone; every timestamp in the store is UTC)."""
    return datetime.now(UTC).replace(tzinfo=None)


class Role(StrEnum):
    UPLOADER = "uploader"  # uploads, registers runs, sees its own runs and jobs
    ENGINEER = "engineer"  # reads everything, marks repair candidates, exports
    ADMIN = "admin"  # everything, plus tokens and re-processing


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    tokens: Mapped[list[Token]] = relationship(back_populates="user")


class Token(Base):
    __tablename__ = "tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex of the secret
    prefix: Mapped[str] = mapped_column(String(12))  # first characters, to tell tokens apart in lists
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)

    user: Mapped[User] = relationship(back_populates="tokens")


class Upload(Base):
    __tablename__ = "uploads"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # uuid4 hex; file DATA/uploads/<id>
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    length_bytes: Mapped[int] = mapped_column(BigInteger)
    offset_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    filename: Mapped[str] = mapped_column(String(255), default="")  # the client's name: display only
    metadata_json: Mapped[str] = mapped_column(Text, default="{}")  # Upload-Metadata, decoded
    sha256: Mapped[str | None] = mapped_column(String(64))  # of the whole file, when complete
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"), index=True)  # set once used


class Run(Base):
    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    label: Mapped[str] = mapped_column(String(200), default="")
    vehicle_json: Mapped[str] = mapped_column(Text, default="{}")
    files_json: Mapped[str] = mapped_column(Text, default="{}")  # role -> {upload, name, bytes, sha256}
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    inspection_date: Mapped[date | None] = mapped_column(Date)  # from the processed video's clock
    current_job_id: Mapped[int | None] = mapped_column(Integer)  # newest finished job (no FK: cycle)

    jobs: Mapped[list[Job]] = relationship(back_populates="run", foreign_keys="Job.run_id")


class Job(Base):
    """One processing of a run; its id is the result version of the rows it stores."""

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), index=True)
    state: Mapped[str] = mapped_column(String(10), default=JobState.QUEUED)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    stage: Mapped[str] = mapped_column(String(40), default="")
    error: Mapped[str | None] = mapped_column(Text)
    options_json: Mapped[str] = mapped_column(Text, default="{}")  # e.g. {"model": "..."} on re-processing
    model: Mapped[str | None] = mapped_column(String(200))  # the detector that made the results
    result_dir: Mapped[str | None] = mapped_column(String(300))  # its output, relative to the data folder
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    worker_id: Mapped[str | None] = mapped_column(String(100))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)

    run: Mapped[Run] = relationship(back_populates="jobs", foreign_keys=[run_id])

    __table_args__ = (Index("ix_jobs_state_lease", "state", "lease_until"),)


class SegmentRow(Base):
    """A 100 m segment as one job measured it: the properties of ``segments.geojson`` plus the
    run, the result version (job) and the inspection date."""

    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), index=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"), index=True)
    segment_key: Mapped[str] = mapped_column(String(120))  # exporters.gis.segment_id, e.g. 3_下り_12_0300
    route_no: Mapped[str] = mapped_column(String(40))
    direction: Mapped[str] = mapped_column(String(10))
    kp_km: Mapped[float] = mapped_column(Float)
    offset_m: Mapped[float] = mapped_column(Float)
    length_m: Mapped[float] = mapped_column(Float)
    partial: Mapped[bool] = mapped_column(Boolean, default=False)
    crack_ratio_pct: Mapped[float | None] = mapped_column(Float)
    rut_depth_mm: Mapped[float | None] = mapped_column(Float)
    iri_mm_per_m: Mapped[float | None] = mapped_column(Float)
    pothole_count: Mapped[int] = mapped_column(Integer, default=0)
    mci: Mapped[float | None] = mapped_column(Float)
    category: Mapped[str | None] = mapped_column(String(8))
    inspection_date: Mapped[date | None] = mapped_column(Date)
    year: Mapped[int | None] = mapped_column(Integer)
    min_lon: Mapped[float] = mapped_column(Float)
    min_lat: Mapped[float] = mapped_column(Float)
    max_lon: Mapped[float] = mapped_column(Float)
    max_lat: Mapped[float] = mapped_column(Float)
    geometry_json: Mapped[str] = mapped_column(Text)  # GeoJSON LineString, WGS84 lon/lat
    properties_json: Mapped[str] = mapped_column(Text)  # segments.geojson properties + run/job/date
    form_row_json: Mapped[str | None] = mapped_column(Text)  # its 様式A row (exporters.form_a.FormRow)
    # the web map's lean copy of the row (api.queries.map_json; migration 0004)
    map_json: Mapped[str] = mapped_column(Text)

    __table_args__ = (
        UniqueConstraint("job_id", "segment_key", name="uq_segments_job_key"),
        Index("ix_segments_key_date", "segment_key", "inspection_date"),
        Index("ix_segments_route", "route_no", "direction", "year"),
        Index("ix_segments_bbox", "min_lon", "max_lon", "min_lat", "max_lat"),
    )


class LatestSegment(Base):
    """Per place (segment key), its latest row (``api.queries.latest_rows``'s rule), kept up to date
    in the transaction that stores a job's results (``api.queries.refresh_latest``), with the row's
    item of the map's answer ready-made (``api.queries.MAP_ITEM``): the whole map is one scan of
    this small table, its answer the items joined."""

    __tablename__ = "latest_segments"

    segment_key: Mapped[str] = mapped_column(String(120), primary_key=True)
    segment_id: Mapped[int] = mapped_column(ForeignKey("segments.id", ondelete="CASCADE"), index=True)
    route_no: Mapped[str] = mapped_column(String(40))
    direction: Mapped[str] = mapped_column(String(10))
    kp_km: Mapped[float] = mapped_column(Float)
    offset_m: Mapped[float] = mapped_column(Float)
    map_item: Mapped[str] = mapped_column(Text)  # [id, line, *MAP_PROPERTIES] as JSON (migration 0005)

    # the answers' order (api.queries.LATEST_ORDER): pages start after a place with an index seek
    __table_args__ = (
        Index("ix_latest_segments_order", "route_no", "direction", "kp_km", "offset_m", "segment_id"),
    )


class FrameRow(Base):
    """An album frame (``frames/<index>.jpg`` of the results, privacy-masked) of one job."""

    __tablename__ = "frames"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), index=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"), index=True)
    segment_id: Mapped[int | None] = mapped_column(ForeignKey("segments.id"), index=True)
    frame_index: Mapped[int] = mapped_column(Integer)
    video_time_s: Mapped[float | None] = mapped_column(Float)
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    file: Mapped[str] = mapped_column(String(300))  # relative to the data folder
    detections_json: Mapped[str] = mapped_column(Text, default="[]")

    __table_args__ = (UniqueConstraint("job_id", "frame_index", name="uq_frames_job_index"),)


class PotholeRow(Base):
    __tablename__ = "potholes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), index=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"), index=True)
    segment_key: Mapped[str | None] = mapped_column(String(120), index=True)
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    properties_json: Mapped[str] = mapped_column(Text, default="{}")


class RepairCandidate(Base):
    """A segment (its place: route, direction, 距離標) an engineer marked as a 措置 candidate."""

    __tablename__ = "repair_candidates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    segment_key: Mapped[str] = mapped_column(String(120), unique=True)
    note: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
