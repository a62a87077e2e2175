"""Queries over the segment store shared by the segment, export and KPI endpoints.

"Current" rows are those of each run's newest finished job (``runs.current_job_id``); older jobs'
rows are history. "Latest" picks, per segment key, the current row with the newest inspection date
(on the same date the later run): what the road looks like now, or at the end of a period. The
latest row of every place is kept in ``latest_segments`` (``refresh_latest``, in the transaction
that stores a job's results), so the whole network, or a route, is an indexed read; a filter that
can pick an older row of a place (year, dates, category, bbox) ranks the rows that pass it with a
window function instead.

The bbox filter compares the four bounding-box columns on every database; on PostgreSQL it first
asks the PostGIS column's GiST index (``segments.geom &&`` the box), so a map view of a few
kilometres does not scan every row.

The web map reads a lean copy of each row (``map_json``): the line simplified within
``MAP_TOLERANCE_DEG`` in integer steps of 1 / ``MAP_SCALE`` degree, and ``MAP_PROPERTIES``; the
latest row of each place carries its item of the map's answer ready-made (``MAP_ITEM``), so the
whole map is one column of one table, joined.

Every answer is in one total order, ``SEGMENT_ORDER`` (route, direction, 距離標, then the row id), so
that a page can start after the last row of the page before (a ``Cursor``: keyset paging, an index
seek however deep the page, where an offset reads every row before it).

``store_version`` changes whenever what the segment queries answer can change (a job's results
stored, a repair candidate marked, edited or unmarked), so answers can be cached against it.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Iterable
from dataclasses import astuple, dataclass
from datetime import date
from itertools import pairwise

import shapely
from sqlalchemy import (
    Float,
    LargeBinary,
    Select,
    String,
    and_,
    cast,
    delete,
    func,
    insert,
    literal,
    select,
    text,
    tuple_,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.functions import FunctionElement

from api.models import MAX_ID, Job, JobState, LatestSegment, RepairCandidate, Run, SegmentRow
from exporters.gis import SegmentRecord
from pavement.diagnosis import Category
from pavement.segments import Direction, Segment, SegmentKey, SegmentMetrics


@dataclass(frozen=True)
class SegmentFilter:
    route_no: str | None = None
    direction: str | None = None
    year: int | None = None
    category: str | None = None  # I, II, III, or "none" (not diagnosed)
    bbox: tuple[float, float, float, float] | None = None  # min lon, min lat, max lon, max lat
    run_id: int | None = None
    date_from: date | None = None  # inclusive
    date_to: date | None = None  # exclusive


class bbox_meets(FunctionElement):
    """``bbox_meets(min_lon, min_lat, max_lon, max_lat)``: the segment's bounding box meets this box
    (WGS84 degrees, edges included). Untyped, so that SQLite gets no ``= 1`` appended."""

    inherit_cache = True
    name = "bbox_meets"

    def __init__(self, min_lon: float, min_lat: float, max_lon: float, max_lat: float) -> None:
        super().__init__(*(literal(float(v), Float()) for v in (min_lon, min_lat, max_lon, max_lat)))


def _box_columns(element: bbox_meets):
    min_lon, min_lat, max_lon, max_lat = element.clauses
    return and_(
        SegmentRow.max_lon >= min_lon,
        SegmentRow.min_lon <= max_lon,
        SegmentRow.max_lat >= min_lat,
        SegmentRow.min_lat <= max_lat,
    )


@compiles(bbox_meets)
def _bbox_columns(element: bbox_meets, compiler, **kw) -> str:
    return f"({compiler.process(_box_columns(element), **kw)})"


@compiles(bbox_meets, "postgresql")
def _bbox_postgis(element: bbox_meets, compiler, **kw) -> str:
    # the index answers with float4-rounded boxes (a little too many); the columns decide exactly,
    # so both databases give the same rows
    box = compiler.process(element.clauses, **kw)
    exact = compiler.process(_box_columns(element), **kw)
    return f"(segments.geom && ST_MakeEnvelope({box}, 4326) AND {exact})"


class utf8_bytes(FunctionElement):
    """``utf8_bytes(text)``: the text as its UTF-8 bytes. The map's answer is 50,000 ready-made JSON
    texts joined into bytes; read as bytes they are not decoded and encoded again (a third of the
    time of reading them)."""

    type = LargeBinary()
    inherit_cache = True
    name = "utf8_bytes"


@compiles(utf8_bytes)
def _utf8_bytes_sqlite(element: utf8_bytes, compiler, **kw) -> str:
    # the store's text is UTF-8 (SQLite's default encoding, which a database keeps from its creation)
    return f"CAST({compiler.process(element.clauses, **kw)} AS BLOB)"


@compiles(utf8_bytes, "postgresql")
def _utf8_bytes_postgresql(element: utf8_bytes, compiler, **kw) -> str:
    return f"convert_to({compiler.process(element.clauses, **kw)}, 'UTF8')"


def _filtered(query: Select, f: SegmentFilter) -> Select:
    conditions = []
    if f.route_no is not None:
        conditions.append(SegmentRow.route_no == f.route_no)
    if f.direction is not None:
        conditions.append(SegmentRow.direction == f.direction)
    if f.year is not None:
        conditions.append(SegmentRow.year == f.year)
    if f.category is not None:
        conditions.append(
            SegmentRow.category.is_(None) if f.category == "none" else SegmentRow.category == f.category
        )
    if f.bbox is not None:
        conditions.append(bbox_meets(*f.bbox))
    if f.run_id is not None:
        conditions.append(SegmentRow.run_id == f.run_id)
    if f.date_from is not None:
        conditions.append(SegmentRow.inspection_date >= f.date_from)
    if f.date_to is not None:
        conditions.append(SegmentRow.inspection_date < f.date_to)
    return query.where(*conditions) if conditions else query


def current_rows(f: SegmentFilter) -> Select:
    """Rows of each run's current result that pass ``f``."""
    query = select(SegmentRow).join(
        Run, and_(Run.id == SegmentRow.run_id, Run.current_job_id == SegmentRow.job_id)
    )
    return _filtered(query, f)


def by_place(f: SegmentFilter) -> bool:
    """Whether ``f`` keeps or drops all rows of a place alike (route and direction are part of the
    segment key), so that the latest row among those passing it is the place's latest row."""
    return f == SegmentFilter(route_no=f.route_no, direction=f.direction)


def _ranked_latest(f: SegmentFilter, keys: list[str] | None = None) -> Select:
    """Per segment key (of ``keys``, if given), the current row with the newest inspection date among
    those passing ``f`` (portable SQL: a window function, SQLite >= 3.25 and PostgreSQL)."""
    rank = (
        func.row_number()
        .over(
            partition_by=SegmentRow.segment_key,
            order_by=(SegmentRow.inspection_date.desc().nulls_last(), SegmentRow.run_id.desc()),
        )
        .label("rank")
    )
    ranked = _filtered(
        select(SegmentRow.id.label("id"), rank).join(
            Run, and_(Run.id == SegmentRow.run_id, Run.current_job_id == SegmentRow.job_id)
        ),
        f,
    )
    if keys is not None:
        ranked = ranked.where(SegmentRow.segment_key.in_(keys))
    ranked = ranked.subquery()
    return select(SegmentRow).join(ranked, ranked.c.id == SegmentRow.id).where(ranked.c.rank == 1)


#: The order of every answer: route, direction, 距離標, and the row id between rows of one place's
#: route, direction and 距離標 (the schema does not forbid them), so that pages after a ``Cursor``
#: neither skip nor repeat a row.
SEGMENT_ORDER = (
    SegmentRow.route_no,
    SegmentRow.direction,
    SegmentRow.kp_km,
    SegmentRow.offset_m,
    SegmentRow.id,
)
#: The same order on ``latest_segments`` (its index ``ix_latest_segments_order``), whose rows copy
#: these columns of the row they name.
LATEST_ORDER = (
    LatestSegment.route_no,
    LatestSegment.direction,
    LatestSegment.kp_km,
    LatestSegment.offset_m,
    LatestSegment.segment_id,
)


@dataclass(frozen=True)
class Cursor:
    """A row's place in ``SEGMENT_ORDER``: a page "after" it starts with the next row. Clients get it
    as an opaque token (``token``) in the links to the next page."""

    route_no: str
    direction: str
    kp_km: float
    offset_m: float
    id: int

    def token(self) -> str:
        """URL-safe base64 of the values as JSON, unpadded."""
        text = json.dumps(astuple(self), ensure_ascii=False, separators=(",", ":"))
        return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode("ascii")

    @classmethod
    def from_token(cls, token: str) -> Cursor:
        """The cursor of a ``token``; ValueError if it is not one ``token`` made."""
        try:
            values = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        except (binascii.Error, ValueError):  # bad base64, UTF-8 or JSON
            raise ValueError("not base64 of JSON") from None
        if not (isinstance(values, list) and len(values) == 5):
            raise ValueError("not [route_no, direction, kp_km, offset_m, id]")
        route_no, direction, kp_km, offset_m, row_id = values
        if not (
            isinstance(route_no, str)
            and isinstance(direction, str)
            and all(type(v) in (int, float) and math.isfinite(v) for v in (kp_km, offset_m))
            and type(row_id) is int
            and 1 <= row_id <= MAX_ID
        ):
            raise ValueError("a value of the wrong type or out of range")
        return cls(route_no, direction, float(kp_km), float(offset_m), row_id)


def in_order(query: Select, order: tuple = SEGMENT_ORDER, after: Cursor | None = None) -> Select:
    """``query`` in ``order`` (``SEGMENT_ORDER`` or ``LATEST_ORDER``), from the row after ``after``."""
    if after is not None:
        query = query.where(tuple_(*order) > astuple(after))
    return query.order_by(*order)


def _on_places(query: Select, f: SegmentFilter) -> Select:
    """``query`` over ``latest_segments`` with the filters of a ``by_place(f)``."""
    if f.route_no is not None:
        query = query.where(LatestSegment.route_no == f.route_no)
    if f.direction is not None:
        query = query.where(LatestSegment.direction == f.direction)
    return query


def latest_rows(f: SegmentFilter, after: Cursor | None = None) -> Select:
    """Per segment key, the current row with the newest inspection date among those passing ``f``,
    in ``SEGMENT_ORDER`` after ``after``: from ``latest_segments`` when ``by_place(f)``, else ranked."""
    if by_place(f):
        joined = select(SegmentRow).join(LatestSegment, LatestSegment.segment_id == SegmentRow.id)
        return in_order(_on_places(joined, f), LATEST_ORDER, after)
    return in_order(_ranked_latest(f), SEGMENT_ORDER, after)


def latest_map(f: SegmentFilter, after: Cursor | None = None) -> Select:
    """The map's items (``MAP_ITEM``, as UTF-8 bytes) of ``latest_rows(f, after)`` in its order, for
    ``by_place(f)``: one column of ``latest_segments``, where they are kept ready-made."""
    assert by_place(f), f
    return in_order(_on_places(select(utf8_bytes(LatestSegment.map_item)), f), LATEST_ORDER, after)


def page(query: Select, limit: int | None, offset: int) -> Select:
    """``query`` from its ``offset``-th row, at most ``limit`` rows (None: all)."""
    return query.limit(limit).offset(offset or None)


def latest_map_candidates(
    f: SegmentFilter, limit: int | None, offset: int, after: Cursor | None = None
) -> Select:
    """Ids of the rows of ``page(latest_map(f, after), limit, offset)`` whose place is a repair
    candidate."""
    places = latest_map(f, after).with_only_columns(LatestSegment.segment_id, LatestSegment.segment_key)
    if limit is None and not offset:
        places = places.order_by(None)  # no page to cut: the rows are looked up by the few candidates
    found = page(places, limit, offset).subquery()
    marked = found.c.segment_key.in_(select(RepairCandidate.segment_key))
    return select(found.c.segment_id).where(marked).order_by(found.c.segment_id)


#: PostgreSQL advisory lock of ``refresh_latest``: two workers storing rows of the same places at
#: once would each rank without the other's rows (READ COMMITTED); the second waits for the first.
_LATEST_LOCK_ID = 0x7061765F6C617465  # "pav_late"
_KEYS_PER_STATEMENT = 500


def refresh_latest(session: Session, keys: Iterable[str] | None = None) -> None:
    """Make ``latest_segments`` hold the latest row of each place in ``keys`` (every place: None)
    as the rows in ``session`` now stand. Call it in the transaction that changes a place's rows or
    its runs' current job: ``api.results.store_results`` does."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _LATEST_LOCK_ID})
    session.flush()
    if keys is None:
        chunks: list[list[str] | None] = [None]
    else:
        ordered = sorted(set(keys))
        chunks = [ordered[i : i + _KEYS_PER_STATEMENT] for i in range(0, len(ordered), _KEYS_PER_STATEMENT)]
    columns = ("segment_key", "segment_id", "route_no", "direction", "kp_km", "offset_m", "map_item")
    for chunk in chunks:
        stale = delete(LatestSegment)
        session.execute(stale if chunk is None else stale.where(LatestSegment.segment_key.in_(chunk)))
        latest = _ranked_latest(SegmentFilter(), chunk).with_only_columns(
            SegmentRow.segment_key,
            SegmentRow.id,
            SegmentRow.route_no,
            SegmentRow.direction,
            SegmentRow.kp_km,
            SegmentRow.offset_m,
            MAP_ITEM,
        )
        session.execute(insert(LatestSegment).from_select(columns, latest))


def store_version(session: Session) -> tuple:
    """Changes whenever the segment queries' answers may: every finished job stores its rows and
    sets ``finished_at`` in one transaction (``api.results``), and every change of a repair
    candidate adds, removes or re-dates a row (count and newest ``updated_at``)."""
    jobs = session.execute(
        select(func.count(Job.id), func.max(Job.finished_at), func.max(Job.id)).where(
            Job.state == JobState.DONE
        )
    ).one()
    marks = session.execute(
        select(func.count(RepairCandidate.id), func.max(RepairCandidate.updated_at))
    ).one()
    return (*jobs, *marks)


#: What the web map colours, filters and labels by; everything else is on ``/segments/{id}``.
MAP_PROPERTIES = (
    "segment_id",
    "route_no",
    "direction",
    "kp_km",
    "offset_m",
    "partial",
    "category",
    "crack_ratio_pct",
    "rut_depth_mm",
    "iri_mm_per_m",
    "pothole_count",
    "inspection_date",
)
#: The items of each segment of the map's answer (``segment_map``).
MAP_FIELDS = ("id", "line", *MAP_PROPERTIES)
MAP_TOLERANCE_DEG = 5e-6  # ~0.5 m: a map line this close to the measured one looks the same
MAP_SCALE = 1_000_000  # the map's lines in integer micro-degrees (~0.1 m)


def map_line(geometry: dict) -> list[int]:
    """The map's copy of a segment's LineString: simplified within ``MAP_TOLERANCE_DEG``
    (Douglas-Peucker, the ends kept), as integers of 1 / ``MAP_SCALE`` degree: the first point's lon,
    lat, then each next point's differences from the one before. A 100 m segment of 20 vertices
    keeps 2-5, about 40 characters."""
    coords = geometry.get("coordinates") or []
    if len(coords) > 2:
        simple = shapely.LineString(coords).simplify(MAP_TOLERANCE_DEG, preserve_topology=False)
        if len(simple.coords) >= 2:
            coords = simple.coords
    points = [(round(p[0] * MAP_SCALE), round(p[1] * MAP_SCALE)) for p in coords]
    line = list(points[0]) if points else []
    for (lon0, lat0), (lon1, lat1) in pairwise(points):
        line += (lon1 - lon0, lat1 - lat0)
    return line


def map_json(geometry: dict, properties: dict) -> str:
    """The map's copy of a segment row, as JSON text: ``[line, *MAP_PROPERTIES values]``."""
    values = [map_line(geometry), *(properties.get(k) for k in MAP_PROPERTIES)]
    return json.dumps(values, ensure_ascii=False, separators=(",", ":"))


#: One segment of the map's answer as JSON text, ``[id, line, *MAP_PROPERTIES]`` (``MAP_FIELDS``),
#: made in SQL from a row's id and ``map_json``; ``latest_segments.map_item`` keeps it ready-made.
MAP_ITEM = (
    literal("[") + cast(SegmentRow.id, String) + literal(",") + func.substr(SegmentRow.map_json, 2)
).label("map_item")


def segment_map(items: list[bytes], repair_candidates: list[int], members: dict) -> bytes:
    """The map's answer: ``{"fields": MAP_FIELDS, "segments": [items], "repair_candidates": [ids of
    the items whose place is a repair candidate], **members}``, from the items' UTF-8 JSON texts."""
    head = '{"fields":' + json.dumps(MAP_FIELDS) + ',"segments":['
    return _collection(head, items, {"repair_candidates": repair_candidates, **members})


def _collection(head: str, items: list[bytes], members: dict | None) -> bytes:
    tail = "]" + extra_properties(members or {}) + "}"
    return b"".join((head.encode(), b",".join(items), tail.encode("utf-8")))


def rows(session: Session, query: Select) -> list[SegmentRow]:
    return list(session.scalars(query).all())


def extra_properties(extra: dict) -> str:
    """``extra`` as text to append to stored properties with ``feature_json``."""
    return "," + json.dumps(extra, ensure_ascii=False, separators=(",", ":"))[1:-1] if extra else ""


def feature_json(row: SegmentRow, extra: str = "") -> str:
    """One GeoJSON Feature as text, assembled from the stored JSON (no parse: fast for big maps);
    ``extra`` from ``extra_properties`` is added to its properties."""
    props = row.properties_json[:-1] + extra + "}" if extra else row.properties_json
    return f'{{"type":"Feature","id":{row.id},"geometry":{row.geometry_json},"properties":{props}}}'


def feature_collection(features: list[str], members: dict | None = None) -> bytes:
    """A FeatureCollection of ``features`` (texts), with more top-level ``members`` if given."""
    # each feature encoded alone: joining one long text of tens of MB first is several times slower
    items = [f.encode("utf-8") for f in features]
    return _collection('{"type":"FeatureCollection","features":[', items, members)


def to_record(row: SegmentRow) -> SegmentRecord:
    """Back to the exporters' flat record (the properties of segments.geojson)."""
    props = json.loads(row.properties_json)
    coords = tuple(tuple(c) for c in json.loads(row.geometry_json)["coordinates"])
    fields = SegmentRecord.__dataclass_fields__
    return SegmentRecord(**{k: props.get(k) for k in fields if k != "coordinates"}, coordinates=coords)


def to_segment(row: SegmentRow) -> Segment:
    """Back to the domain value (for ``exporters.kpi``)."""
    props = json.loads(row.properties_json)
    coords = json.loads(row.geometry_json)["coordinates"]
    try:
        direction = Direction(row.direction)
    except ValueError:
        direction = Direction.UNKNOWN
    return Segment(
        key=SegmentKey(row.route_no, direction, row.kp_km, row.offset_m, row.length_m),
        start_lat=coords[0][1],
        start_lon=coords[0][0],
        end_lat=coords[-1][1],
        end_lon=coords[-1][0],
        partial=row.partial,
        metrics=SegmentMetrics(
            crack_ratio_pct=row.crack_ratio_pct,
            rut_depth_mm=row.rut_depth_mm,
            iri_mm_per_m=row.iri_mm_per_m,
            pothole_count=row.pothole_count,
            mci=row.mci,
            category=Category(row.category) if row.category else None,
            coverage_pct=props.get("coverage_pct"),
        ),
    )
