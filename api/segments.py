"""Segments for engineers: GeoJSON and the map's lean answer, one segment with its history and
frames, the frames' (privacy-masked) JPEGs, and repair candidates (措置候補).

``GET /segments`` answers a whole prefecture's network (50,000 segments) within a map's patience:
``view=map`` sends a compact table of the lean copy of each segment (``api.queries.MAP_FIELDS``:
simplified lines in integer steps, no repeated names; for the whole network or a route, the items
kept ready-made in ``latest_segments``, joined), all of them unless ``limit`` says otherwise. The
full GeoJSON (58 MB for 50,000 segments) comes in pages, as in OGC API - Features:
``DEFAULT_PAGE`` features unless ``limit`` (at most ``MAX_FULL_PAGE``) says otherwise, and a
``links`` item rel next while more remain, which starts after the page's last segment (``cursor``,
``api.queries.Cursor``: an index seek however deep the page). Answers are gzip-compressed once and
cached until the store changes (``api.answers``), with ETags.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from sqlalchemy import select

from api.answers import Answer, AnswerCache, etag_of, make_answer
from api.db import Store
from api.errors import AUTHENTICATED, responses
from api.models import MAX_ID, FrameRow, PotholeRow, RepairCandidate, RowId, Run, SegmentRow, User, utcnow
from api.queries import (
    LATEST_ORDER,
    MAP_FIELDS,
    MAP_ITEM,
    SEGMENT_ORDER,
    Cursor,
    SegmentFilter,
    by_place,
    current_rows,
    extra_properties,
    feature_collection,
    feature_json,
    in_order,
    latest_map,
    latest_map_candidates,
    latest_rows,
    page,
    segment_map,
    store_version,
    utf8_bytes,
)
from api.security import Engineer
from pavement.segments import Direction

router = APIRouter(tags=["segments"], responses=AUTHENTICATED)

Category = Literal["I", "II", "III", "none"]
_DEGREES = r"-?[0-9]{1,3}(\.[0-9]{1,15})?"
BBOX_PATTERN = rf"^{_DEGREES},{_DEGREES},{_DEGREES},{_DEGREES}$"
GEOJSON = "application/geo+json"
#: Compressed answers one server process keeps (the whole map of 50,000 segments is ~2 MB).
ANSWER_CACHE_BYTES = 64 * 1024 * 1024
#: view=full without ``limit`` answers this many features (~1.2 MB), then a link to the next page.
DEFAULT_PAGE = 1000
#: view=full answers at most this many features a page (~12 MB); the whole store is an export.
MAX_FULL_PAGE = 10_000
#: view=map answers at most this many when ``limit`` is given (without it: all).
MAX_MAP_PAGE = 100_000


def parse_bbox(bbox: str | None) -> tuple[float, float, float, float] | None:
    """``lon,lat,lon,lat`` of two opposite corners (WGS84 degrees; usually west,south,east,north as
    Leaflet's ``toBBoxString`` gives it) -> (min lon, min lat, max lon, max lat)."""
    if bbox is None:
        return None
    lon1, lat1, lon2, lat2 = (float(v) for v in bbox.split(","))
    return min(lon1, lon2), min(lat1, lat2), max(lon1, lon2), max(lat1, lat2)


def segment_filter(
    route_no: str | None = Query(None, max_length=40, description="路線番号, e.g. 3"),
    direction: Annotated[Direction | None, Query(description="上り, 下り, or 不明 (no route ledger)")] = None,
    year: int | None = Query(None, ge=1900, le=2200, description="inspection year"),
    category: Annotated[
        Category | None, Query(description="診断区分 I, II, III, or 'none' (not diagnosed)")
    ] = None,
    bbox: str | None = Query(
        None,
        pattern=BBOX_PATTERN,
        description="segments meeting this box: min_lon,min_lat,max_lon,max_lat (WGS84 degrees; "
        "two opposite corners in any order)",
        examples=["140.70,40.80,140.80,40.85"],
    ),
    run_id: Annotated[RowId | None, Query(description="only this run's (current) results")] = None,
) -> SegmentFilter:
    return SegmentFilter(
        route_no, direction.value if direction else None, year, category, parse_bbox(bbox), run_id
    )


Filters = Annotated[SegmentFilter, Depends(segment_filter)]


def _store(request: Request) -> Store:
    return request.app.state.store


class View(StrEnum):
    FULL = "full"  # every property of segments.geojson, the measured line
    MAP = "map"  # the map's compact table: its properties, the line simplified within 0.5 m


LINKS_SCHEMA = {
    "type": "array",
    "items": {"type": "object", "required": ["rel", "href"]},
    "description": "rel 'next': the next page, when limit cut the answer short",
}

FEATURE_COLLECTION_SCHEMA = {
    "type": "object",
    "required": ["type", "features", "numberReturned"],
    "properties": {
        "type": {"const": "FeatureCollection"},
        "features": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["type", "id", "geometry", "properties"],
                "properties": {
                    "type": {"const": "Feature"},
                    "id": {"type": "integer"},
                    "geometry": {"type": "object"},
                    "properties": {"type": "object", "required": ["segment_id", "repair_candidate"]},
                },
            },
        },
        "numberReturned": {"type": "integer"},
        "links": LINKS_SCHEMA,
    },
}


SEGMENT_MAP_SCHEMA = {
    "type": "object",
    "description": "view=map: one array per segment, its items named by `fields`: the row id, the line "
    "(integers of 1e-6 degree: the first point's lon, lat, then each next point's differences from the "
    "point before), the map's properties; `repair_candidates`: the ids of those segments whose place is "
    "a repair candidate",
    "required": ["fields", "segments", "repair_candidates", "numberReturned"],
    "properties": {
        "fields": {"type": "array", "items": {"type": "string"}, "example": list(MAP_FIELDS)},
        "segments": {
            "type": "array",
            "items": {
                "type": "array",
                "minItems": len(MAP_FIELDS),
                "maxItems": len(MAP_FIELDS),
            },
        },
        "repair_candidates": {"type": "array", "items": {"type": "integer"}},
        "numberReturned": {"type": "integer"},
        "links": LINKS_SCHEMA,
    },
}


def _render(
    request: Request,
    session,
    f: SegmentFilter,
    view: View,
    limit: int | None,
    after: Cursor | None,
    offset: int,
    key,
) -> Answer:
    more = None if limit is None else limit + 1  # one row more: is there a next page?
    ready = view == View.MAP and by_place(f)
    # the rows of a page end with their place in the order (SEGMENT_ORDER's values): the next cursor
    if ready:
        # latest_segments keeps each place's item ready-made: one column of bytes, joined (iterated:
        # ``.all()`` makes Row objects, twice the time for 50,000); a page also reads the places
        query = latest_map(f, after)
        if limit is not None:
            query = query.add_columns(*LATEST_ORDER)
        result = session.execute(page(query, more, offset))
        found: list = list(result.scalars()) if limit is None else result.all()
    else:
        query = (
            in_order(current_rows(f), SEGMENT_ORDER, after) if f.run_id is not None else latest_rows(f, after)
        )
        if view == View.MAP:
            data: tuple = (utf8_bytes(MAP_ITEM).label("map_item"),)
        else:
            data = (SegmentRow.geometry_json, SegmentRow.properties_json)
        query = query.with_only_columns(*data, SegmentRow.segment_key, *SEGMENT_ORDER)
        found = session.execute(page(query, more, offset)).all()
    media_type = "application/json" if view == View.MAP else GEOJSON
    members: dict = {}
    headers: dict[str, str] = {}
    if limit is not None and len(found) > limit:
        found = found[:limit]
        last = Cursor(*found[-1][-len(SEGMENT_ORDER) :])
        # the limit too: a page cut by the default limit is followed by pages of the same size
        url = request.url.remove_query_params("offset")
        href = str(url.include_query_params(limit=limit, cursor=last.token()))
        members["links"] = [{"rel": "next", "type": media_type, "href": href}]
        headers["Link"] = f'<{href}>; rel="next"'
    members["numberReturned"] = len(found)
    if ready:
        items = found if limit is None else [r[0] for r in found]
        candidates = list(session.scalars(latest_map_candidates(f, limit, offset, after)))
        return make_answer(key, segment_map(items, candidates, members), headers, media_type)
    marked = set(session.scalars(select(RepairCandidate.segment_key)))
    if view == View.MAP:
        candidates = sorted(r.id for r in found if r.segment_key in marked)
        body = segment_map([r.map_item for r in found], candidates, members)
        return make_answer(key, body, headers, media_type)
    flag = {b: extra_properties({"repair_candidate": b}) for b in (False, True)}
    features = [feature_json(r, flag[r.segment_key in marked]) for r in found]
    return make_answer(key, feature_collection(features, members), headers, media_type)


@router.get(
    "/segments",
    summary="Segments as GeoJSON (the latest per place, or one run's)",
    response_class=Response,
    responses={
        200: {
            "content": {
                GEOJSON: {"schema": FEATURE_COLLECTION_SCHEMA},
                "application/json": {"schema": SEGMENT_MAP_SCHEMA},
            },
            "headers": {
                "ETag": {"schema": {"type": "string"}, "description": "send it as If-None-Match next time"},
                "Link": {"schema": {"type": "string"}, "description": "the next page (rel=next)"},
            },
        },
        304: {"description": "not modified since the ETag in If-None-Match"},
    },
)
def list_segments(
    request: Request,
    f: Filters,
    _: Engineer,
    view: Annotated[
        View,
        Query(
            description="full: a GeoJSON FeatureCollection, every property of segments.geojson and the "
            "measured line; map: what the web map needs (segment_id, route, direction, 距離標, category, "
            "indicators, date) on lines simplified within 0.5 m, as a compact table (application/json, "
            "about a tenth of the bytes; details on /segments/{id})",
        ),
    ] = View.FULL,
    limit: int | None = Query(
        None,
        ge=1,
        le=MAX_MAP_PAGE,
        description=f"at most this many (a page); view=full: {DEFAULT_PAGE:,} when not given, at most "
        f"{MAX_FULL_PAGE:,}; view=map: all when not given",
    ),
    cursor: str | None = Query(
        None,
        max_length=1000,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="start after the segment it names: the cursor of the links rel next (opaque, made by "
        "the service; follow the link as it is)",
    ),
    offset: int = Query(
        0,
        ge=0,
        le=MAX_ID,
        description="skip this many (after cursor, if given); the next links use cursor instead, which "
        "stays as fast on the last page as on the first",
    ),
) -> Response:
    """A FeatureCollection with the properties of ``segments.geojson`` plus ``run_id``,
    ``result_version`` (the job), ``inspection_date`` and ``repair_candidate``; with ``view=map``
    a table of the map's fields (``fields``, one array per segment in ``segments``, the ids of those
    that are repair candidates in ``repair_candidates``). Without ``run_id``
    each place (segment key) appears once: its newest inspection among the rows that pass the
    filters. In route, direction, 距離標 order (then the row id); ``numberReturned`` features, and a
    ``links`` item rel ``next`` (also the ``Link`` header) while more remain.

    Pages, as in OGC API - Features: ``view=full`` answers at most ``limit`` features, 1,000
    (``DEFAULT_PAGE``) when it is not given, at most 10,000 (``MAX_FULL_PAGE``; a larger limit is a
    422: follow the next links, or download the whole store from ``/exports/segments.geojson``).
    ``view=map`` (the web map's request) answers every segment unless ``limit`` is given. The next
    link repeats the request with ``limit`` and a ``cursor`` that starts after the page's last
    segment, so following it walks every segment once, in order.

    Answers are gzip-compressed (``Accept-Encoding: gzip``) and cached until the store changes; an
    unchanged answer is a 304 for a client sending its ``ETag`` as ``If-None-Match``."""
    if view == View.FULL:
        if limit is None:
            limit = DEFAULT_PAGE
        elif limit > MAX_FULL_PAGE:
            export = request.url_for("export_segments", fmt="geojson").path
            raise HTTPException(
                422,
                f"limit={limit}: view=full answers at most {MAX_FULL_PAGE:,} features a page; follow the "
                f"links rel next (the Link header) for the pages after it, or get the whole store as "
                f"GeoJSON from {export} (same filters)",
            )
    try:
        after = None if cursor is None else Cursor.from_token(cursor)
    except ValueError as exc:
        raise HTTPException(
            422,
            f"cursor is not one this service made ({exc}); follow the links rel next as they are, or "
            "start again without cursor",
        ) from None
    store = _store(request)
    cache: AnswerCache = request.app.state.segment_answers
    with store.session() as session:
        # the base URL too: the links name the host
        key = (store_version(session), view, f, limit, after, offset, str(request.base_url))
        etag = etag_of(key)
        common = {
            "ETag": etag,
            "Cache-Control": "private, no-cache",
            "Vary": "Accept-Encoding, Authorization",
        }
        if etag in _etags(request.headers.get("if-none-match")):
            return Response(status_code=304, headers=common)
        answer = cache.get(key)
        if answer is None:
            answer = _render(request, session, f, view, limit, after, offset, key)
            cache.put(key, answer)
    body, encoding = answer.content("gzip" in request.headers.get("accept-encoding", ""))
    return Response(
        body, media_type=answer.media_type, headers={**common, **dict(answer.headers), **encoding}
    )


def _etags(header: str | None) -> set[str]:
    return {t.strip() for t in header.split(",")} if header else set()


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
    if segment_id.isascii() and segment_id.isdigit():  # ids have at most 10 digits
        row = (
            session.get(SegmentRow, int(segment_id))
            if len(segment_id) <= 10 and int(segment_id) <= MAX_ID
            else None
        )
    else:
        found = session.scalars(
            latest_rows(SegmentFilter()).where(SegmentRow.segment_key == segment_id)
        ).first()
        row = found
    if row is None:
        raise HTTPException(404, f"no segment {segment_id!r}")
    return row


@router.get(
    "/segments/{segment_id}",
    summary="One segment: figures, history across runs and years, frames",
    responses=responses(404),
)
def get_segment(
    segment_id: Annotated[
        str,
        Path(description="a row id (number) or a segment key (the latest row)", examples=["3_下り_12_0300"]),
    ],
    request: Request,
    _: Engineer,
) -> dict:
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
    responses={200: {"content": {"image/jpeg": {}}}, **responses(404)},
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
    segment: str = Field(
        description="segment id (number) or segment key, e.g. 3_下り_12_0300", examples=["3_下り_12_0300"]
    )
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
    "/repair-candidates",
    status_code=201,
    summary="Mark a segment as a repair candidate (or edit its note)",
    responses=responses(400, 404),
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


@router.delete(
    "/repair-candidates/{segment_key}",
    status_code=204,
    summary="Unmark a repair candidate",
    responses=responses(404),
)
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
