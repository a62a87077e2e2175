"""Segments for engineers: the map's GeoJSON, one segment with its history and frames, the frames'
(privacy-masked) JPEGs, and repair candidates (措置候補)."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from sqlalchemy import select

from api.db import Store
from api.models import MAX_ID, FrameRow, PotholeRow, RepairCandidate, RowId, Run, SegmentRow, User, utcnow
from api.queries import (
    SegmentFilter,
    current_rows,
    extra_properties,
    feature_collection,
    feature_json,
    latest_rows,
)
from api.security import Engineer

router = APIRouter(tags=["segments"])

CATEGORIES = ("I", "II", "III", "none")


def parse_bbox(bbox: str | None) -> tuple[float, float, float, float] | None:
    if bbox is None:
        return None
    try:
        values = tuple(float(v) for v in bbox.split(","))
    except ValueError:
        values = ()
    if len(values) != 4:
        raise HTTPException(422, f"bbox {bbox!r} must be min_lon,min_lat,max_lon,max_lat (WGS84 degrees)")
    min_lon, min_lat, max_lon, max_lat = values
    if not (-180 <= min_lon <= max_lon <= 180 and -90 <= min_lat <= max_lat <= 90):
        raise HTTPException(
            422, f"bbox {bbox!r}: need -180 <= min_lon <= max_lon <= 180, same for lat in +-90"
        )
    return values


def segment_filter(
    route_no: str | None = Query(None, description="路線番号, e.g. 3"),
    direction: str | None = Query(None, description="上り or 下り"),
    year: int | None = Query(None, ge=1900, le=2200, description="inspection year"),
    category: str | None = Query(None, description="診断区分 I, II, III, or 'none' (not diagnosed)"),
    bbox: str | None = Query(None, description="min_lon,min_lat,max_lon,max_lat"),
    run_id: Annotated[RowId | None, Query(description="only this run's (current) results")] = None,
) -> SegmentFilter:
    if category is not None and category not in CATEGORIES:
        raise HTTPException(422, f"category {category!r}: use one of {', '.join(CATEGORIES)}")
    return SegmentFilter(route_no, direction, year, category, parse_bbox(bbox), run_id)


Filters = Annotated[SegmentFilter, Depends(segment_filter)]


def _store(request: Request) -> Store:
    return request.app.state.store


@router.get(
    "/segments",
    summary="Segments as GeoJSON (the latest per place, or one run's)",
    response_class=Response,
    responses={200: {"content": {"application/geo+json": {}}}},
)
def list_segments(request: Request, f: Filters, _: Engineer) -> Response:
    """A FeatureCollection with the properties of ``segments.geojson`` plus ``run_id``,
    ``result_version`` (the job), ``inspection_date`` and ``repair_candidate``. Without ``run_id``
    each place (segment key) appears once: its newest inspection among the rows that pass the
    filters."""
    store = _store(request)
    with store.session() as session:
        query = current_rows(f).order_by(SegmentRow.segment_key) if f.run_id is not None else latest_rows(f)
        columns = (
            SegmentRow.id,
            SegmentRow.segment_key,
            SegmentRow.geometry_json,
            SegmentRow.properties_json,
        )
        marked = set(session.scalars(select(RepairCandidate.segment_key)).all())
        flag = {b: extra_properties({"repair_candidate": b}) for b in (False, True)}
        features = [
            feature_json(r, flag[r.segment_key in marked])
            for r in session.execute(query.with_only_columns(*columns))
        ]
    return Response(feature_collection(features), media_type="application/geo+json")


def _history_item(row: SegmentRow, current_job: int | None) -> dict:
    return {
        "id": row.id,
        "run_id": row.run_id,
        "result_version": row.job_id,
        "current": row.job_id == current_job,
        "inspection_date": row.inspection_date.isoformat() if row.inspection_date else None,
        "year": row.year,
        "partial": row.partial,
        "category": row.category,
        "crack_ratio_pct": row.crack_ratio_pct,
        "rut_depth_mm": row.rut_depth_mm,
        "iri_mm_per_m": row.iri_mm_per_m,
        "pothole_count": row.pothole_count,
        "mci": row.mci,
    }


def _find_segment(session, segment_id: str) -> SegmentRow:
    """A row by its id, or the latest row of a segment key (e.g. ``3_下り_12_0300``)."""
    row = None
    if segment_id.isascii() and segment_id.isdigit():
        row = session.get(SegmentRow, int(segment_id)) if int(segment_id) <= MAX_ID else None
    else:
        found = session.scalars(
            latest_rows(SegmentFilter()).where(SegmentRow.segment_key == segment_id)
        ).first()
        row = found
    if row is None:
        raise HTTPException(404, f"no segment {segment_id!r}")
    return row


@router.get("/segments/{segment_id}", summary="One segment: figures, history across runs and years, frames")
def get_segment(segment_id: str, request: Request, _: Engineer) -> dict:
    store = _store(request)
    with store.session() as session:
        row = _find_segment(session, segment_id)
        history = session.execute(
            select(SegmentRow, Run.current_job_id)
            .join(Run, Run.id == SegmentRow.run_id)
            .where(SegmentRow.segment_key == row.segment_key)
            .order_by(SegmentRow.inspection_date.nulls_first(), SegmentRow.run_id, SegmentRow.job_id)
        ).all()
        frames = session.scalars(
            select(FrameRow).where(FrameRow.segment_id == row.id).order_by(FrameRow.frame_index)
        ).all()
        potholes = session.scalars(
            select(PotholeRow).where(
                PotholeRow.job_id == row.job_id, PotholeRow.segment_key == row.segment_key
            )
        ).all()
        candidate = session.scalar(
            select(RepairCandidate).where(RepairCandidate.segment_key == row.segment_key)
        )
        return {
            "feature": json.loads(feature_json(row)),
            "history": [_history_item(h, current) for h, current in history],
            "frames": [
                {
                    "id": fr.id,
                    "frame_index": fr.frame_index,
                    "video_time_s": fr.video_time_s,
                    "lat": fr.lat,
                    "lon": fr.lon,
                    "detections": json.loads(fr.detections_json),
                    "url": str(request.url_for("frame_image", frame_id=fr.id)),
                }
                for fr in frames
            ],
            "potholes": [{"lat": p.lat, "lon": p.lon, **json.loads(p.properties_json)} for p in potholes],
            "repair_candidate": _candidate_out(candidate) if candidate else None,
        }


@router.get(
    "/frames/{frame_id}.jpg",
    summary="An album frame (privacy-masked JPEG)",
    response_class=FileResponse,
    responses={200: {"content": {"image/jpeg": {}}}},
)
def frame_image(frame_id: RowId, request: Request, _: Engineer) -> FileResponse:
    store = _store(request)
    with store.session() as session:
        frame = session.get(FrameRow, frame_id)
        if frame is None:
            raise HTTPException(404, f"no frame {frame_id}")
        path = (store.data_dir / frame.file).resolve()
    if not path.is_relative_to(store.data_dir.resolve()) or not path.is_file():
        raise HTTPException(404, f"the image of frame {frame_id} is missing from the data folder")
    return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400"})


# --------------------------------------------------------------------------------------------
# Repair candidates (措置候補)
# --------------------------------------------------------------------------------------------


class CandidateIn(BaseModel):
    segment: str = Field(description="segment id (number) or segment key, e.g. 3_下り_12_0300")
    note: str = Field("", max_length=2000, description="why, what to do: free text")


def _candidate_out(c: RepairCandidate, names: dict[int, str] | None = None) -> dict:
    return {
        "segment_key": c.segment_key,
        "note": c.note,
        "marked_by": (names or {}).get(c.updated_by, c.updated_by),
        "marked_at": c.updated_at.isoformat(),
        "created_at": c.created_at.isoformat(),
    }


@router.post(
    "/repair-candidates", status_code=201, summary="Mark a segment as a repair candidate (or edit its note)"
)
def mark_candidate(body: CandidateIn, request: Request, principal: Engineer) -> dict:
    with _store(request).session() as session:
        key = _find_segment(session, body.segment).segment_key
        candidate = session.scalar(select(RepairCandidate).where(RepairCandidate.segment_key == key))
        now = utcnow()
        if candidate is None:
            candidate = RepairCandidate(
                segment_key=key,
                note=body.note,
                created_by=principal.user_id,
                updated_by=principal.user_id,
                created_at=now,
                updated_at=now,
            )
            session.add(candidate)
        else:
            candidate.note, candidate.updated_by, candidate.updated_at = body.note, principal.user_id, now
        session.flush()
        return _candidate_out(candidate, {principal.user_id: principal.name})


@router.delete("/repair-candidates/{segment_key}", status_code=204, summary="Unmark a repair candidate")
def unmark_candidate(segment_key: str, request: Request, _: Engineer) -> Response:
    with _store(request).session() as session:
        candidate = session.scalar(select(RepairCandidate).where(RepairCandidate.segment_key == segment_key))
        if candidate is None:
            raise HTTPException(404, f"segment {segment_key!r} is not a repair candidate")
        session.delete(candidate)
    return Response(status_code=204)


def candidate_rows(session) -> list[tuple[RepairCandidate, SegmentRow | None, str]]:
    """Each candidate with the latest figures of its segment and who marked it."""
    candidates = session.scalars(select(RepairCandidate).order_by(RepairCandidate.segment_key)).all()
    latest = (
        {
            r.segment_key: r
            for r in session.scalars(
                latest_rows(SegmentFilter()).where(
                    SegmentRow.segment_key.in_([c.segment_key for c in candidates])
                )
            ).all()
        }
        if candidates
        else {}
    )
    names = dict(session.execute(select(User.id, User.name)).all())
    return [(c, latest.get(c.segment_key), names.get(c.updated_by, "")) for c in candidates]


@router.get("/repair-candidates", summary="Repair candidates with their segments' latest figures")
def list_candidates(request: Request, _: Engineer) -> list[dict]:
    with _store(request).session() as session:
        out = []
        for c, row, name in candidate_rows(session):
            item = _candidate_out(c)
            item["marked_by"] = name
            item["segment"] = _history_item(row, row.job_id) if row else None
            if row:
                item["segment"].update(
                    route_no=row.route_no, direction=row.direction, kp_km=row.kp_km, offset_m=row.offset_m
                )
            out.append(item)
        return out
