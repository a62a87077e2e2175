"""A job's results into the store: read the output folder of ``pavement process`` and write its
segments, album frames and potholes in one transaction.

Rows are keyed by (job, segment key): storing a job again (a retried job) deletes its earlier rows
first, so it never leaves duplicates. The transaction starts by marking the job done *only if this
worker still holds it* (same worker id and attempt): a worker that lost its lease stores nothing,
and ends by bringing the latest row of each place the run measured up to date (``latest_segments``).
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import delete, select, update

from api.db import Store
from api.models import FrameRow, Job, JobState, PotholeRow, Run, SegmentRow, utcnow
from api.queries import map_json, refresh_latest
from exporters.form_a import FormRow, read_form_xlsx
from pavement.errors import ExportError


class JobLost(Exception):
    """This worker no longer holds the job (its lease expired and another worker took it)."""


@dataclass(frozen=True)
class ClaimedJob:
    """A job as one worker holds it: ``attempt`` fences every later write."""

    job_id: int
    run_id: int
    worker_id: str
    attempt: int
    options: dict


def _form_key(route_no: str, direction: str, kp_km: float, offset_m: float) -> tuple:
    return (str(route_no), str(direction), round(float(kp_km), 3), round(float(offset_m), 1))


def _bbox(coordinates: list) -> tuple[float, float, float, float]:
    lons = [c[0] for c in coordinates]
    lats = [c[1] for c in coordinates]
    return min(lons), min(lats), max(lons), max(lats)


@dataclass(frozen=True)
class _Results:
    features: list[dict]
    form_rows: dict[tuple, FormRow]
    inspection_date: date | None
    frames: dict[int, dict]  # frame index -> {video_time_s, lat, lon, t_unix_s}
    detections: dict[int, list]
    album: list[int]  # frame indices with a JPEG in frames/
    potholes: list[dict]
    model: str | None


def read_results(out_dir: Path) -> _Results:
    """What the store keeps from an output folder of ``pavement process``."""
    try:
        features = json.loads((out_dir / "segments.geojson").read_text(encoding="utf-8"))["features"]
        report = json.loads((out_dir / "report.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError) as exc:
        raise ExportError(f"the results in {out_dir} are incomplete: {exc}") from exc
    form_rows = {}
    if (out_dir / "form_a.xlsx").is_file():
        for row in read_form_xlsx(out_dir / "form_a.xlsx"):
            form_rows[_form_key(row.route_no, row.direction, row.start_kp_km, row.start_offset_m)] = row
    frames: dict[int, dict] = {}
    frames_csv = out_dir / "geotag" / "frames.csv"
    if frames_csv.is_file():
        with frames_csv.open(encoding="utf-8") as f:
            for rec in csv.DictReader(f):
                frames[int(rec["frame_index"])] = {
                    "video_time_s": float(rec["t_video_s"]),
                    "lat": float(rec["lat"]),
                    "lon": float(rec["lon"]),
                    "t_unix_s": float(rec["t_unix_s"]) if rec.get("t_unix_s") else None,
                }
    detections: dict[int, list] = {}
    if (out_dir / "detections.json").is_file():
        doc = json.loads((out_dir / "detections.json").read_text(encoding="utf-8"))
        detections = {int(f["frame_index"]): f["detections"] for f in doc.get("frames", [])}
    album = sorted(int(p.stem) for p in (out_dir / "frames").glob("*.jpg") if p.stem.isdigit())
    potholes = []
    if (out_dir / "potholes.geojson").is_file():
        potholes = json.loads((out_dir / "potholes.geojson").read_text(encoding="utf-8"))["features"]
    inspection_date = None
    dated = [r.inspection_date for r in form_rows.values() if r.inspection_date]
    if dated:
        inspection_date = date.fromisoformat(max(dated))
    else:
        times = [f["t_unix_s"] for f in frames.values() if f["t_unix_s"] is not None]
        if times:
            inspection_date = datetime.fromtimestamp(min(times), UTC).date()
    return _Results(
        features, form_rows, inspection_date, frames, detections, album, potholes, report.get("model")
    )


def segment_row(
    run_id: int, job_id: int, feature: dict, form_row: FormRow | None, inspection_date: date | None
) -> SegmentRow:
    """The store's row of one feature of ``segments.geojson`` (with its 様式A row, if any), as the
    worker writes it: the indicators as columns, the properties (plus run, result version and
    inspection date) and the geometry as JSON, the bounding box in four columns."""
    p = feature["properties"]
    min_lon, min_lat, max_lon, max_lat = _bbox(feature["geometry"]["coordinates"])
    props = {
        **p,
        "run_id": run_id,
        "result_version": job_id,
        "inspection_date": inspection_date.isoformat() if inspection_date else None,
    }
    return SegmentRow(
        run_id=run_id,
        job_id=job_id,
        segment_key=p["segment_id"],
        route_no=str(p["route_no"]),
        direction=str(p["direction"]),
        kp_km=float(p["kp_km"]),
        offset_m=float(p["offset_m"]),
        length_m=float(p["length_m"]),
        partial=bool(p["partial"]),
        crack_ratio_pct=p.get("crack_ratio_pct"),
        rut_depth_mm=p.get("rut_depth_mm"),
        iri_mm_per_m=p.get("iri_mm_per_m"),
        pothole_count=int(p.get("pothole_count") or 0),
        mci=p.get("mci"),
        category=p.get("category"),
        inspection_date=inspection_date,
        year=inspection_date.year if inspection_date else None,
        min_lon=min_lon,
        min_lat=min_lat,
        max_lon=max_lon,
        max_lat=max_lat,
        geometry_json=json.dumps(feature["geometry"], separators=(",", ":")),
        properties_json=json.dumps(props, ensure_ascii=False, separators=(",", ":")),
        form_row_json=json.dumps(asdict(form_row), ensure_ascii=False) if form_row else None,
        map_json=map_json(feature["geometry"], props),
    )


def store_results(store: Store, job: ClaimedJob, out_dir: Path) -> int:
    """Write the job's results (see the module docstring); the number of segments stored.
    ``JobLost`` when the job is no longer this worker's."""
    results = read_results(out_dir)
    relative_out = out_dir.relative_to(store.data_dir).as_posix()
    now = utcnow()
    with store.session() as session:
        claimed = session.execute(
            update(Job)
            .where(
                Job.id == job.job_id,
                Job.worker_id == job.worker_id,
                Job.attempts == job.attempt,
                Job.state == JobState.RUNNING,
            )
            .values(
                state=JobState.DONE,
                progress=1.0,
                stage="done",
                finished_at=now,
                lease_until=None,
                model=results.model,
                result_dir=relative_out,
                error=None,
            )
        )
        if claimed.rowcount != 1:
            raise JobLost(f"job {job.job_id} is no longer held by {job.worker_id} (attempt {job.attempt})")
        # the places whose latest row may change: the run's (this job's earlier rows included)
        places = set(
            session.scalars(select(SegmentRow.segment_key).where(SegmentRow.run_id == job.run_id).distinct())
        )
        for table in (FrameRow, PotholeRow, SegmentRow):
            session.execute(delete(table).where(table.job_id == job.job_id))

        by_key: dict[str, SegmentRow] = {}
        frame_segment: dict[int, str] = {}
        for feature in results.features:
            p = feature["properties"]
            form_row = results.form_rows.get(
                _form_key(p["route_no"], p["direction"], p["kp_km"], p["offset_m"])
            )
            row = segment_row(job.run_id, job.job_id, feature, form_row, results.inspection_date)
            session.add(row)
            by_key[row.segment_key] = row
            for ids, _ in ((p.get("frame_ids") or "", 0), (p.get("representative_frame_ids") or "", 1)):
                for i in filter(None, ids.split(",")):
                    frame_segment[int(i)] = row.segment_key
        session.flush()

        for index in results.album:
            pose = results.frames.get(index, {})
            key = frame_segment.get(index)
            session.add(
                FrameRow(
                    run_id=job.run_id,
                    job_id=job.job_id,
                    segment_id=by_key[key].id if key in by_key else None,
                    frame_index=index,
                    video_time_s=pose.get("video_time_s"),
                    lat=pose.get("lat"),
                    lon=pose.get("lon"),
                    file=f"{relative_out}/frames/{index}.jpg",
                    detections_json=json.dumps(results.detections.get(index, []), ensure_ascii=False),
                )
            )
        for feature in results.potholes:
            lon, lat = feature["geometry"]["coordinates"][:2]
            props = feature.get("properties", {})
            session.add(
                PotholeRow(
                    run_id=job.run_id,
                    job_id=job.job_id,
                    segment_key=frame_segment.get(int(props.get("frame_index", -1))),
                    lat=lat,
                    lon=lon,
                    properties_json=json.dumps(props, ensure_ascii=False),
                )
            )
        run = session.get(Run, job.run_id)
        if run.current_job_id is None or job.job_id > run.current_job_id:  # the newest result is current
            run.current_job_id = job.job_id
            run.inspection_date = results.inspection_date
        refresh_latest(session, places | by_key.keys())
        return len(by_key)
