"""Exports for the inspection office and the DX office: 様式A (one workbook for a year / route /
office), the segments as GeoJSON or GeoPackage, a run's 画像集 and the 画像集 across runs (each
place's latest inspection), the repair candidates as CSV, and the infrastructure KPI per month /
quarter / year with the change against the period before."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from datetime import date
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import quote

import cv2
import numpy as np
from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import FileResponse
from pydantic import BeforeValidator
from sqlalchemy import func, select
from starlette.background import BackgroundTask

from api.db import Store
from api.errors import AUTHENTICATED, responses
from api.models import FrameRow, Job, RowId, Run, SegmentRow
from api.queries import SegmentFilter, current_rows, latest_rows, rows, to_record, to_segment
from api.security import Engineer
from api.segments import Filters, candidate_rows
from exporters.album import (
    AlbumFrame,
    damage_summary,
    pick_album_frames,
    segments_to_album,
    write_album_xlsx,
)
from exporters.form_a import FormRow, RunRows, merge_form_rows, write_form_xlsx
from exporters.gis import write_ogr
from exporters.kpi import segments_to_kpi
from pavement.detections import DAMAGE_CLASSES, Detections
from pavement.segments import Direction
from pavement.track import FramePose

router = APIRouter(tags=["exports"], responses=AUTHENTICATED)

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _store(request: Request) -> Store:
    return request.app.state.store


def attachment(filename: str) -> dict[str, str]:
    ascii_name = filename.encode("ascii", "replace").decode().replace("?", "_")
    return {
        "Content-Disposition": f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"
    }


@router.get(
    "/exports/form-a",
    summary="様式A workbook: one row per 100 m segment and lane, from every run's current result",
    response_class=Response,
    responses={200: {"content": {XLSX: {}}}, **responses(404, 409)},
)
def export_form_a(
    request: Request,
    _: Engineer,
    year: int | None = Query(None, ge=1900, le=2200, description="inspection year"),
    route_no: str | None = Query(None, description="路線番号"),
    office: str | None = Query(None, description="事務所 as written in the forms"),
    keep_duplicates: bool = Query(False, description="a row per run for segments several runs surveyed"),
) -> Response:
    """Rows of several runs merge as in ``pavement export-form``: a segment surveyed more than once
    keeps the row with the newest 点検年月日 (the later run on the same date)."""
    store = _store(request)
    with store.session() as session:
        found = rows(session, current_rows(SegmentFilter(route_no=route_no, year=year)))
        run_dates = dict(session.execute(select(Run.id, Run.inspection_date)).all())
    by_run: dict[int, list[FormRow]] = {}
    for row in found:
        if row.form_row_json:
            form_row = FormRow(**json.loads(row.form_row_json))
            if office is None or form_row.office == office:
                by_run.setdefault(row.run_id, []).append(form_row)
    if not by_run:
        raise HTTPException(
            404, f"no segments for year={year}, route_no={route_no}, office={office}; nothing to export"
        )
    order = sorted(by_run, key=lambda r: (run_dates.get(r) or date.min, r))
    merged = merge_form_rows([RunRows(f"run {r}", tuple(by_run[r])) for r in order], keep_duplicates)
    with tempfile.TemporaryDirectory(dir=store.data_dir) as tmp:
        path = Path(tmp) / "form_a.xlsx"
        write_form_xlsx(list(merged.rows), path)
        content = path.read_bytes()
    name = "form_a" + (f"_{year}" if year else "") + (f"_route{route_no}" if route_no else "") + ".xlsx"
    headers = attachment(name) | {
        "X-Pavement-Rows": str(len(merged.rows)),
        "X-Pavement-Duplicates": str(len(merged.duplicates)),
    }
    return Response(content, media_type=XLSX, headers=headers)


@router.get(
    "/exports/segments.{fmt}",
    summary="The latest segments (same filters as /segments) as GeoJSON or GeoPackage",
    response_class=Response,
    responses={
        200: {"content": {"application/geo+json": {}, "application/geopackage+sqlite3": {}}},
        **responses(404, 409),
    },
)
def export_segments(
    fmt: Literal["geojson", "gpkg"],
    request: Request,
    _: Engineer,
    f: Filters,
) -> Response:
    store = _store(request)
    with store.session() as session:
        query = current_rows(f) if f.run_id is not None else latest_rows(f)
        found = rows(session, query)
        if fmt == "geojson":
            from api.queries import feature_collection, feature_json

            content = feature_collection([feature_json(r) for r in found])
            return Response(
                content, media_type="application/geo+json", headers=attachment("segments.geojson")
            )
    if not found:
        raise HTTPException(404, "no segments pass these filters; a GeoPackage needs at least one")
    records = [to_record(r) for r in found]
    with tempfile.TemporaryDirectory(dir=store.data_dir) as tmp:
        path = Path(tmp) / "segments.gpkg"
        write_ogr(records, path)
        content = path.read_bytes()
    return Response(content, media_type="application/geopackage+sqlite3", headers=attachment("segments.gpkg"))


@router.get(
    "/runs/{run_id}/album",
    summary="画像集 (album.xlsx) of a run's current result",
    response_class=FileResponse,
    responses={200: {"content": {XLSX: {}}}, **responses(404, 409)},
)
def export_album(run_id: RowId, request: Request, _: Engineer) -> FileResponse:
    store = _store(request)
    with store.session() as session:
        run = session.get(Run, run_id)
        if run is None:
            raise HTTPException(404, f"no run {run_id}")
        job = session.get(Job, run.current_job_id) if run.current_job_id is not None else None
        if job is None or job.result_dir is None:
            raise HTTPException(409, f"run {run_id} has no finished result yet; follow its job")
    path = store.data_dir / job.result_dir / "album.xlsx"
    if not path.is_file():
        raise HTTPException(
            404, f"run {run_id}: the album of result {job.id} is missing from the data folder"
        )
    return FileResponse(path, media_type=XLSX, filename=f"album_run{run_id}.xlsx")


#: The 画像集 across runs holds at most this many segments (3 photos each: ~100 KB a segment).
MAX_ALBUM_SEGMENTS = 1000


@dataclass(frozen=True)
class StoredAlbumFrame(AlbumFrame):
    """An album frame from the store: its JPEG (``frames/<index>.jpg`` of ``pavement process``) is
    privacy-masked and has the damage boxes drawn already, so ``detections`` stays None (nothing
    drawn twice) and the caption names what was found and the run it comes from; ``frame_index``
    is the store's frame id (``/api/v1/frames/{id}.jpg``), unique across runs."""

    found: str = ""
    source: str = ""

    @property
    def caption(self) -> str:
        lines = [super().caption]
        if self.found:
            lines.append(f"検出 {self.found}")
        lines.append(self.source)
        return "\n".join(lines)


def _detections(items: list[dict]) -> Detections:
    """Detections from the store's JSON (``pipelines.detect.detections_to_json``)."""
    names = [c.value for c in DAMAGE_CLASSES]
    known = [d for d in items if d.get("class") in names]
    return Detections(
        np.array([d["xyxy"] for d in known], np.float32).reshape(-1, 4),
        np.array([names.index(d["class"]) for d in known], np.int64),
        np.array([d["score"] for d in known], np.float32),
    )


def _album_sections(found: list[SegmentRow], frames: list[FrameRow]):
    """The album's sections of the latest rows ``found``: up to 3 of each row's stored frames
    (``exporters.album.pick_album_frames``: the most damage first), captioned with their run."""
    by_segment: dict[int, list[FrameRow]] = {}
    for frame in frames:
        if frame.lat is not None and frame.lon is not None:
            by_segment.setdefault(frame.segment_id, []).append(frame)
    detections = {f.id: _detections(json.loads(f.detections_json)) for f in frames}
    poses = {
        f.id: FramePose(f.id, f.video_time_s or 0.0, 0.0, f.lat, f.lon, 0.0, 0.0)
        for group in by_segment.values()
        for f in group
    }
    segments = [to_segment(r) for r in found]
    chosen = {
        seg.key: pick_album_frames([f.id for f in by_segment.get(r.id, [])], detections)
        for seg, r in zip(segments, found, strict=True)
    }
    route_names = {}
    for r in found:
        if r.form_row_json:
            route_names.setdefault(r.route_no, json.loads(r.form_row_json).get("route_name", ""))
    row_of = {seg.key: r for seg, r in zip(segments, found, strict=True)}
    frame_of = {f.id: f for f in frames}
    sections = []
    for section in segments_to_album(segments, poses, route_names=route_names, chosen_frames=chosen):
        row = row_of[section.key]
        day = row.inspection_date.isoformat() if row.inspection_date else "日付不明"
        source = f"走行 {row.run_id} ({day})"
        stored = tuple(
            StoredAlbumFrame(
                f.frame_index, f.t_video_s, f.lat, f.lon, None,
                found=damage_summary(detections[f.frame_index]),
                source=f"{source} 写真 {frame_of[f.frame_index].frame_index}",
            )
            for f in section.frames
        )  # fmt: skip
        remarks = "、".join(filter(None, [f"点検 {day} 走行 {row.run_id}", section.remarks]))
        sections.append(replace(section, frames=stored, remarks=remarks))
    return sections


def _stored_images(store: Store, frames: dict[int, FrameRow]) -> Iterator[tuple[int, np.ndarray]]:
    """(frame id, BGR image) of the stored JPEGs, one at a time; missing files are skipped (the
    album captions them 画像なし)."""
    root = store.data_dir.resolve()
    for frame_id, frame in frames.items():
        path = (store.data_dir / frame.file).resolve()
        if path.is_relative_to(root) and path.is_file():
            image = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_COLOR)
            if image is not None:
                yield frame_id, image


@router.get(
    "/exports/album",
    summary="画像集 (album.xlsx) across runs: each place's latest inspection with its photos",
    response_class=FileResponse,
    responses={200: {"content": {XLSX: {}}}, **responses(404, 422)},
)
def export_album_across_runs(
    request: Request,
    _: Engineer,
    year: int | None = Query(None, ge=1900, le=2200, description="inspection year"),
    route_no: str | None = Query(None, max_length=40, description="路線番号"),
    direction: Annotated[Direction | None, Query(description="上り, 下り or 不明")] = None,
) -> FileResponse:
    """One page per 100 m segment, in route / direction / 距離標 order: for each place (segment key)
    its latest inspection among the runs' current results (in ``year``, if given), its figures and
    up to 3 of that inspection's privacy-masked photos with their damage boxes, the run named in
    the remarks and captions. 写真番号 is the store's frame id (``/api/v1/frames/{id}.jpg``). At most
    ``MAX_ALBUM_SEGMENTS`` segments: narrow a bigger album by route and direction."""
    store = _store(request)
    f = SegmentFilter(route_no=route_no, direction=direction.value if direction else None, year=year)
    with store.session() as session:
        found = rows(session, latest_rows(f))
        if not found:
            raise HTTPException(404, f"no segments for year={year}, route_no={route_no}; nothing to export")
        if len(found) > MAX_ALBUM_SEGMENTS:
            raise HTTPException(
                422,
                f"{len(found)} segments are more than one album holds ({MAX_ALBUM_SEGMENTS}); "
                "narrow it with route_no and direction (or year)",
            )
        frames = session.scalars(
            select(FrameRow).where(FrameRow.segment_id.in_([r.id for r in found])).order_by(FrameRow.id)
        ).all()
    sections = _album_sections(found, list(frames))
    shown = {f.frame_index for s in sections for f in s.frames}
    tmp = Path(tempfile.mkdtemp(dir=store.data_dir, prefix=".album-"))
    try:
        name = "album" + (f"_{year}" if year else "") + (f"_route{route_no}" if route_no else "") + ".xlsx"
        title = (
            "画像集 (路面点検)" + (f" {year}年" if year else "") + (f" 路線 {route_no}" if route_no else "")
        )
        wanted = {f.id: f for f in frames if f.id in shown}
        write_album_xlsx(sections, _stored_images(store, wanted), tmp / name, title=title)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return FileResponse(
        tmp / name, media_type=XLSX, filename=name, background=BackgroundTask(shutil.rmtree, tmp, True)
    )


@router.get(
    "/exports/repair-candidates.csv",
    summary="Repair candidates as CSV (UTF-8 with BOM, opens in Excel)",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
)
def export_candidates(request: Request, _: Engineer) -> Response:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    columns = [
        "segment_key",
        "route_no",
        "direction",
        "kp_km",
        "offset_m",
        "inspection_date",
        "category",
        "crack_ratio_pct",
        "rut_depth_mm",
        "iri_mm_per_m",
        "pothole_count",
        "note",
        "marked_by",
        "marked_at",
    ]
    writer.writerow(columns)
    with _store(request).session() as session:
        for c, row, name in candidate_rows(session):
            figures = (
                [
                    row.route_no,
                    row.direction,
                    row.kp_km,
                    row.offset_m,
                    row.inspection_date.isoformat() if row.inspection_date else "",
                    row.category or "",
                    row.crack_ratio_pct,
                    row.rut_depth_mm,
                    row.iri_mm_per_m,
                    row.pothole_count,
                ]
                if row
                else [""] * 10
            )
            writer.writerow(
                [
                    c.segment_key,
                    *["" if v is None else v for v in figures],
                    c.note,
                    name,
                    c.updated_at.isoformat(),
                ]
            )
    content = ("\ufeff" + buffer.getvalue()).encode("utf-8")
    return Response(
        content, media_type="text/csv; charset=utf-8", headers=attachment("repair_candidates.csv")
    )


# --------------------------------------------------------------------------------------------
# KPI
# --------------------------------------------------------------------------------------------

PERIOD_MONTHS = {"month": 1, "quarter": 3, "year": 12}


def _month_start(n: int) -> date:
    """The first day of month ``n`` (year * 12 + month - 1), clamped to the calendar's ends: a
    period next to year 1 or 9999 is cut short instead of failing."""
    if n < 12 * date.min.year:
        return date.min
    if n >= 12 * (date.max.year + 1):
        return date.max
    return date(n // 12, n % 12 + 1, 1)


def _add_months(d: date, months: int) -> date:
    return _month_start(d.year * 12 + d.month - 1 + months)


def period_bounds(period: str, at: date, year_start_month: int = 1) -> tuple[date, date]:
    """[start, end) of the month / quarter / year holding ``at``; quarters and years begin at
    ``year_start_month`` (4 for the Japanese fiscal year, 年度)."""
    months = PERIOD_MONTHS[period]
    since_start = (at.year * 12 + at.month - 1) - (year_start_month - 1)
    first = since_start - since_start % months + (year_start_month - 1)
    return _month_start(first), _month_start(first + months)


def _kpi_of(session, start: date, end: date) -> dict:
    found = rows(session, latest_rows(SegmentFilter(date_from=start, date_to=end)))
    dates = sorted({r.inspection_date for r in found if r.inspection_date})
    kpi = asdict(segments_to_kpi([to_segment(r) for r in found], dates))
    return {"start": start.isoformat(), "end": end.isoformat(), "kpi": kpi}


def _change(now: dict, before: dict) -> dict:
    out = {}
    for key in ("segments", "surveyed_km", "potholes", "potholes_per_km", "repair_km", "mean_coverage_pct"):
        a, b = now.get(key), before.get(key)
        out[key] = None if a is None or b is None else round(a - b, 3)
    cats_now = {c["category"]: c for c in now["by_category"]}
    cats_before = {c["category"]: c for c in before["by_category"]}
    out["by_category"] = {
        k: {
            "length_km": round(
                cats_now[k]["length_km"] - cats_before.get(k, {"length_km": 0})["length_km"], 3
            ),
            "share_pct": round(
                cats_now[k]["share_pct"] - cats_before.get(k, {"share_pct": 0})["share_pct"], 1
            ),
        }
        for k in cats_now
    }
    return out


def _iso_day(value: object) -> object:
    """Only ``YYYY-MM-DD`` for a day (pydantic alone also takes a number as a Unix time)."""
    if isinstance(value, str) and not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        raise ValueError(f"{value[:40]!r} is not a day; give it as YYYY-MM-DD")
    return value


@router.get("/kpi", summary="Infrastructure KPI of a period, with the change against the period before")
def kpi(
    request: Request,
    _: Engineer,
    period: Literal["month", "quarter", "year"] = "year",
    at: Annotated[
        date | None,
        BeforeValidator(_iso_day),
        Query(description="a day in the period, YYYY-MM-DD (default: the newest inspection)"),
    ] = None,
    year_start_month: int = Query(1, ge=1, le=12, description="4 for the fiscal year (年度)"),
) -> dict:
    """Each place counts once per period (its newest inspection in it). ``change`` = this period
    minus the previous one; null where either is unknown."""
    with _store(request).session() as session:
        if at is None:
            at = session.scalar(select(func.max(SegmentRow.inspection_date))) or date.today()
        start, end = period_bounds(period, at, year_start_month)
        prev_start, _prev_end = period_bounds(period, _add_months(start, -1), year_start_month)
        current = _kpi_of(session, start, end)
        previous = _kpi_of(session, prev_start, start)
    return {
        "period": period,
        "current": current,
        "previous": previous,
        "change": _change(current["kpi"], previous["kpi"]),
    }
