"""Runs and jobs: register a run from finished uploads, follow its processing, re-process it.

``POST /api/v1/runs`` moves the uploads into a new run folder ``DATA/runs/<run id>/`` under the
names ``docs/run_folder.md`` defines (``video.mp4``, ``gps.gpx`` / ``gps.nmea`` / ``gps.csv`` by
content, ``accel.csv``, ``route.geojson`` or ``route.gpkg``, ``camera.json``; ``vehicle.json``
from the request) and queues a job. Client file names never become paths.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Literal

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.db import Store
from api.errors import AUTHENTICATED, responses
from api.models import MAX_ID, Job, JobState, Role, RowId, Run, Upload
from api.security import Admin, AnyRole, Principal, Uploader
from api.tus import upload_path

router = APIRouter(tags=["runs"], responses=AUTHENTICATED)

MAX_CAMERA_JSON_BYTES = 1 << 20
_SQLITE_MAGIC = b"SQLite format 3\x00"


class RunFiles(BaseModel):
    """Upload ids (from ``POST /api/v1/uploads``) by role in the run folder."""

    model_config = ConfigDict(extra="forbid")

    video: str = Field(description="the dashboard video (MP4 / MOV, H.264)")
    gps: str = Field(description="the phone's GPS log: GPX, NMEA 0183 or a logger app's CSV")
    accel: str | None = Field(None, description="accelerometer log, accel.csv (for IRI)")
    route: str | None = Field(None, description="route ledger: GeoJSON or GeoPackage with 距離標")
    camera: str | None = Field(None, description="camera profile, camera.json")


class Vehicle(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field("", max_length=200, description="the patrol car, e.g. its number plate or fleet id")
    gain: float | None = Field(
        None, ge=0.1, le=10, description="IRI gain of this car and mount ('pavement calibrate-vehicle')"
    )


class RunCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    files: RunFiles
    vehicle: Vehicle | None = None
    label: str = Field("", max_length=200, description="free text, e.g. the patrol's name and date")


class RunAccepted(BaseModel):
    run_id: int
    job_id: int
    files: dict[str, dict]


class Reprocessing(BaseModel):
    run_id: int
    job_id: int


class JobOut(BaseModel):
    id: int
    run_id: int
    state: Literal["queued", "running", "done", "failed"]
    progress: float = Field(ge=0, le=1)
    stage: str
    error: str | None
    attempts: int
    model: str | None
    created_at: str
    started_at: str | None
    finished_at: str | None


class RunOut(BaseModel):
    id: int
    label: str
    owner_id: int
    created_at: str
    inspection_date: str | None
    current_job_id: int | None
    vehicle: dict
    files: dict[str, dict]
    jobs: list[JobOut]


def _iso(value) -> str | None:
    return None if value is None else value.isoformat()


def job_out(job: Job) -> JobOut:
    return JobOut(
        id=job.id,
        run_id=job.run_id,
        state=job.state,
        progress=round(min(max(job.progress, 0.0), 1.0), 4),
        stage=job.stage,
        error=job.error,
        attempts=job.attempts,
        model=job.model,
        created_at=job.created_at.isoformat(),
        started_at=_iso(job.started_at),
        finished_at=_iso(job.finished_at),
    )


def _head(path: Path, n: int = 4096) -> bytes:
    with path.open("rb") as f:
        return f.read(n)


def _name_for(role: str, path: Path, client_name: str) -> str:
    """The run-folder name of an uploaded file, from its role and content (the client's extension
    only tells MP4 from MOV)."""
    if role == "video":
        return "video.mov" if client_name.lower().endswith(".mov") else "video.mp4"
    if role == "gps":
        head = _head(path).decode("utf-8", errors="replace")
        if head.lstrip("\ufeff \t\r\n").startswith("<"):
            return "gps.gpx"
        if re.search(r"\$[A-Z]{2}(RMC|GGA)", head):
            return "gps.nmea"
        return "gps.csv"
    if role == "route":
        return "route.gpkg" if _head(path, 16) == _SQLITE_MAGIC else "route.geojson"
    return {"accel": "accel.csv", "camera": "camera.json"}[role]


def _check_camera(path: Path) -> None:
    if path.stat().st_size > MAX_CAMERA_JSON_BYTES:
        raise HTTPException(422, "files.camera is over 1 MiB; camera.json is a small JSON profile")
    try:
        profile = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HTTPException(
            422, f"files.camera is not JSON ({exc}); see docs/run_folder.md, camera.json"
        ) from None
    if not isinstance(profile, dict) or "intrinsics" not in profile or "mount" not in profile:
        raise HTTPException(
            422, "files.camera needs 'intrinsics' and 'mount' (docs/run_folder.md, camera.json)"
        )


def _uploads_for(session: Session, files: RunFiles, principal: Principal) -> dict[str, Upload]:
    chosen = {role: uid for role, uid in files.model_dump().items() if uid is not None}
    uploads = {}
    for role, uid in chosen.items():
        upload = session.get(Upload, uid)
        if upload is None or (upload.owner_id != principal.user_id and not principal.is_admin):
            raise HTTPException(404, f"files.{role}: no upload {uid!r}; create it with POST /api/v1/uploads")
        if upload.completed_at is None:
            raise HTTPException(
                409,
                f"files.{role}: upload {uid} is not complete ({upload.offset_bytes} of "
                f"{upload.length_bytes} bytes); resume it from HEAD's Upload-Offset",
            )
        if upload.run_id is not None:
            raise HTTPException(409, f"files.{role}: upload {uid} already belongs to run {upload.run_id}")
        uploads[role] = upload
    if len(set(chosen.values())) != len(chosen):
        raise HTTPException(422, "the same upload is given for two files; upload each file once")
    return uploads


@router.post(
    "/runs",
    status_code=202,
    summary="Register a run from finished uploads and queue its processing",
    responses=responses(400, 404, 409),
)
def create_run(body: RunCreate, request: Request, response: Response, principal: Uploader) -> RunAccepted:
    store: Store = request.app.state.store
    with store.session() as session:
        uploads = _uploads_for(session, body.files, principal)
        if body.files.camera:
            _check_camera(upload_path(store, body.files.camera))
        vehicle = body.vehicle.model_dump() if body.vehicle else {}
        run = Run(
            owner_id=principal.user_id, label=body.label, vehicle_json=json.dumps(vehicle, ensure_ascii=False)
        )
        session.add(run)
        session.flush()
        folder = store.runs_dir / str(run.id)
        partial = store.runs_dir / f".{run.id}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir()
        files = {}
        moved: list[tuple[Path, Path]] = []
        try:
            for role, upload in uploads.items():
                source = upload_path(store, upload.id)
                name = _name_for(role, source, upload.filename)
                source.rename(partial / name)
                moved.append((partial / name, source))
                upload.run_id = run.id
                files[role] = {
                    "upload": upload.id,
                    "name": name,
                    "bytes": upload.length_bytes,
                    "sha256": upload.sha256,
                    "client_filename": upload.filename,
                }
            if vehicle.get("gain") is not None:
                (partial / "vehicle.json").write_text(
                    json.dumps({"gain": vehicle["gain"], "n_segments": 0, "note": vehicle.get("name", "")})
                )
            run.files_json = json.dumps(files, ensure_ascii=False)
            job = Job(
                run_id=run.id,
                created_by=principal.user_id,
                max_attempts=request.app.state.settings.max_attempts,
            )
            session.add(job)
            session.flush()
            partial.rename(folder)
        except BaseException:
            for target, source in moved:  # give the uploads back: the run is not registered
                target.rename(source)
            shutil.rmtree(partial, ignore_errors=True)
            raise
        response.headers["Location"] = str(request.url_for("get_job", job_id=job.id))
        return RunAccepted(run_id=run.id, job_id=job.id, files=files)


def _visible_run(session: Session, run_id: int, principal: Principal) -> Run:
    run = session.get(Run, run_id)
    if run is None or (principal.role == Role.UPLOADER and run.owner_id != principal.user_id):
        raise HTTPException(404, f"no run {run_id}")
    return run


def run_out(session: Session, run: Run) -> RunOut:
    jobs = session.scalars(select(Job).where(Job.run_id == run.id).order_by(Job.id)).all()
    return RunOut(
        id=run.id,
        label=run.label,
        owner_id=run.owner_id,
        created_at=run.created_at.isoformat(),
        inspection_date=_iso(run.inspection_date),
        current_job_id=run.current_job_id,
        vehicle=json.loads(run.vehicle_json),
        files=json.loads(run.files_json),
        jobs=[job_out(j) for j in jobs],
    )


@router.get("/runs", summary="Runs (an uploader sees its own)")
def list_runs(request: Request, principal: AnyRole, limit: int = 100, offset: int = 0) -> list[RunOut]:
    store: Store = request.app.state.store
    with store.session() as session:
        limit, offset = min(max(limit, 1), 1000), min(max(offset, 0), MAX_ID)  # a BIGINT in PostgreSQL
        query = select(Run).order_by(Run.id.desc()).limit(limit).offset(offset)
        if principal.role == Role.UPLOADER:
            query = query.where(Run.owner_id == principal.user_id)
        return [run_out(session, r) for r in session.scalars(query).all()]


@router.get("/runs/{run_id}", summary="A run with its files and jobs", responses=responses(404))
def get_run(run_id: RowId, request: Request, principal: AnyRole) -> RunOut:
    store: Store = request.app.state.store
    with store.session() as session:
        return run_out(session, _visible_run(session, run_id, principal))


@router.post(
    "/runs/{run_id}/reprocess",
    status_code=202,
    summary="Process a run again (e.g. with a newer model); earlier results are kept",
    responses=responses(404, 409),
)
def reprocess_run(run_id: RowId, request: Request, response: Response, principal: Admin) -> Reprocessing:
    store: Store = request.app.state.store
    with store.session() as session:
        run = _visible_run(session, run_id, principal)
        if session.scalar(
            select(Job.id).where(Job.run_id == run.id, Job.state.in_([JobState.QUEUED, JobState.RUNNING]))
        ):
            raise HTTPException(409, f"run {run_id} already has a job queued or running")
        job = Job(
            run_id=run.id, created_by=principal.user_id, max_attempts=request.app.state.settings.max_attempts
        )
        session.add(job)
        session.flush()
        response.headers["Location"] = str(request.url_for("get_job", job_id=job.id))
        return Reprocessing(run_id=run.id, job_id=job.id)


@router.get("/jobs/{job_id}", summary="State and progress of a job", responses=responses(404))
def get_job(job_id: RowId, request: Request, principal: AnyRole) -> JobOut:
    store: Store = request.app.state.store
    with store.session() as session:
        job = session.get(Job, job_id)
        if job is None:
            raise HTTPException(404, f"no job {job_id}")
        run = session.get(Run, job.run_id)
        if principal.role == Role.UPLOADER and run.owner_id != principal.user_id:
            raise HTTPException(404, f"no job {job_id}")
        return job_out(job)
