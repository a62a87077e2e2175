"""``GET /api/v1/segments`` for big stores: the map's lean view, pages (the full view's default page,
the next links' cursor), gzip, ETags and the answer cache, which must never serve an answer older
than the store."""

from __future__ import annotations

import base64
import gzip
import json
import math
import random
from datetime import date
from itertools import pairwise
from urllib.parse import parse_qs, urlsplit

import pytest

from api.models import Job, JobState, Run, User
from api.queries import MAP_FIELDS, MAP_PROPERTIES, Cursor, refresh_latest
from api.results import segment_row
from api.segments import DEFAULT_PAGE, MAX_FULL_PAGE
from tests.api.conftest import ON_BOTH, auth

M_PER_DEG_LAT = 111_320.0


def _line(i: int, vertices: int = 20) -> list[list[float]]:
    """A bent 100 m line (a quarter of a 200 m-radius circle is too much; an arc of 0.5 rad)."""
    lon0, lat0, radius_m = 140.70 + 0.01 * i, 40.80, 200.0
    m_per_deg_lon = M_PER_DEG_LAT * math.cos(math.radians(lat0))
    out = []
    for k in range(vertices):
        a = 0.5 * k / (vertices - 1)
        out.append(
            [
                lon0 + radius_m * math.sin(a) / m_per_deg_lon,
                lat0 + radius_m * (1 - math.cos(a)) / M_PER_DEG_LAT,
            ]
        )
    return out


def _feature(i: int, route_no: str = "3") -> dict:
    props = {
        "segment_id": f"{route_no}_下り_12_{i * 100:04d}", "route_no": route_no, "direction": "下り",
        "kp_km": 12.0, "offset_m": i * 100.0, "length_m": 100.0, "partial": False,
        "crack_ratio_pct": 10.0 + i, "coverage_pct": 80.0, "crack_confidence": 0.9, "rut_depth_mm": 4.0,
        "rut_depth_max_mm": 6.0, "rut_uncertainty_mm": 1.0, "iri_mm_per_m": 2.0 + i,
        "iri_uncertainty_mm_per_m": 0.3, "pothole_count": 0, "mci": 6.0, "category": "I",
        "frame_ids": "1,2,3,4,5,6,7,8,9", "representative_frame_ids": "3,7",
    }  # fmt: skip
    return {
        "type": "Feature",
        "geometry": {"type": "LineString", "coordinates": _line(i)},
        "properties": props,
    }


def _store_run(service, features: list[dict], day: date = date(2024, 6, 12)) -> int:
    """A finished run whose job stored ``features`` as the worker does; its run id."""
    with service.store.session() as session:
        owner = session.query(User).filter(User.role == "uploader").first()
        run = Run(owner_id=owner.id, inspection_date=day)
        session.add(run)
        session.flush()
        job = Job(run_id=run.id, state=JobState.DONE, finished_at=None)
        session.add(job)
        session.flush()
        from api.models import utcnow

        job.finished_at = utcnow()
        run.current_job_id = job.id
        for feature in features:
            session.add(segment_row(run.id, job.id, feature, None, day))
        refresh_latest(session, [f["properties"]["segment_id"] for f in features])
        return run.id


def _get(service, **params):
    return service.client.get("/api/v1/segments", params=params, headers=auth(service.tokens["engineer"]))


def _map_features(answer: dict) -> list[dict]:
    """The segments of a ``view=map`` answer as GeoJSON-like features (what map.js makes of them)."""
    assert answer["fields"] == list(MAP_FIELDS)
    marked = set(answer["repair_candidates"])
    features = []
    for segment in answer["segments"]:
        line, coords, lon, lat = segment[1], [], 0, 0
        for i in range(0, len(line), 2):
            lon, lat = lon + line[i], lat + line[i + 1]
            coords.append([lon / 1e6, lat / 1e6])
        properties = dict(zip(MAP_FIELDS[2:], segment[2:], strict=True))
        properties["repair_candidate"] = segment[0] in marked
        features.append({"id": segment[0], "geometry": {"coordinates": coords}, "properties": properties})
    return features


@ON_BOTH
def test_map_view_is_lean_and_close_to_the_measured_line(make_service):
    service = make_service()
    _store_run(service, [_feature(i) for i in range(3)])
    full = _get(service).json()
    answer = _get(service, view="map")
    assert answer.headers["Content-Type"] == "application/json"
    lean = _map_features(answer.json())
    assert [f["id"] for f in full["features"]] == [f["id"] for f in lean]
    assert full["numberReturned"] == answer.json()["numberReturned"] == 3
    assert {"frame_ids", "coverage_pct", "rut_uncertainty_mm"} <= set(full["features"][0]["properties"])
    for f, g in zip(full["features"], lean, strict=True):
        assert set(g["properties"]) == {*MAP_PROPERTIES, "repair_candidate"}
        assert all(g["properties"][k] == f["properties"][k] for k in g["properties"])
        measured, simple = f["geometry"]["coordinates"], g["geometry"]["coordinates"]
        assert len(measured) == 20 and 2 <= len(simple) <= 8  # an arc of 100 m, 0.5 rad
        assert simple[0] == [round(c, 6) for c in measured[0]] and simple[-1] == [
            round(c, 6) for c in measured[-1]
        ]
        assert _max_gap_m(measured, simple) < 0.6
    assert len(_get(service, view="map").content) < 0.25 * len(_get(service).content)


@ON_BOTH
def test_map_view_with_a_year_ranks_the_rows_of_that_year(make_service):
    """Without filters the map reads latest_segments; with a year the rows of that year are ranked:
    a place measured in 2024 and 2025 shows its 2024 figures for year=2024."""
    service = make_service()
    _store_run(service, [_feature(i) for i in range(3)], day=date(2024, 6, 12))
    newer = _feature(1)
    newer["properties"]["crack_ratio_pct"] = 55.0
    _store_run(service, [newer], day=date(2025, 6, 12))
    now = {
        f["properties"]["offset_m"]: f["properties"] for f in _map_features(_get(service, view="map").json())
    }
    in_2024 = _map_features(_get(service, view="map", year=2024).json())
    assert [now[o]["inspection_date"] for o in (0.0, 100.0, 200.0)] == [
        "2024-06-12",
        "2025-06-12",
        "2024-06-12",
    ]
    assert now[100.0]["crack_ratio_pct"] == 55.0
    assert [f["properties"]["crack_ratio_pct"] for f in in_2024] == [10.0, 11.0, 12.0]
    route = _map_features(_get(service, view="map", route_no="3", direction="下り").json())
    assert [f["properties"] for f in route] == list(now.values())
    # ranked by a filter every row passes: the same items as latest_segments keeps ready-made
    ranked = _get(service, view="map", category="I").json()
    assert ranked["segments"] == _get(service, view="map").json()["segments"]


@ON_BOTH
@pytest.mark.parametrize(
    "params",
    [{}, {"route_no": "3"}, {"category": "I"}, {"limit": 2}, {"limit": 2, "offset": 2}, {"offset": 3}],
)
def test_map_view_lists_the_repair_candidates_among_its_segments(make_service, params):
    """Places 1 and 3 of 0..4 are marked: ``repair_candidates`` holds the ids of the answer's
    segments that are marked, from latest_segments (no filter, route, pages) or ranked (category)."""
    service = make_service()
    _store_run(service, [_feature(i) for i in range(5)])
    eng = auth(service.tokens["engineer"])
    for i in (1, 3):
        key = _feature(i)["properties"]["segment_id"]
        assert service.client.post("/api/v1/repair-candidates", json={"segment": key}, headers=eng).is_success
    answer = _get(service, view="map", **params).json()
    shown = {s[0]: s[2] for s in answer["segments"]}  # id -> segment key
    expected = {i: k for i, k in shown.items() if k in {"3_下り_12_0100", "3_下り_12_0300"}}
    assert answer["repair_candidates"] == sorted(expected)
    assert len(shown) == min(params.get("limit", 5), 5 - params.get("offset", 0))


def _max_gap_m(measured: list, simple: list) -> float:
    """The largest distance (m) from a measured vertex to the simplified line."""
    import shapely

    m_per_deg_lon = M_PER_DEG_LAT * math.cos(math.radians(measured[0][1]))

    def metres(points):
        return [(lon * m_per_deg_lon, lat * M_PER_DEG_LAT) for lon, lat in points]

    line = shapely.LineString(metres(simple))
    return max(line.distance(shapely.Point(p)) for p in metres(measured))


def _walk(service, view: str, **params) -> tuple[list[int], list[dict]]:
    """Follow the next links from ``GET /segments`` with ``params``: the ids in the order they came,
    and each page's query (of the link that fetched it)."""
    eng = auth(service.tokens["engineer"])
    response, seen, queries = _get(service, view=view, **params), [], [params]
    while True:
        assert response.status_code == 200, response.text
        body = response.json()
        ids = [f["id"] for f in body["features"]] if view == "full" else [s[0] for s in body["segments"]]
        assert body["numberReturned"] == len(ids)
        seen += ids
        nexts = [link["href"] for link in body.get("links", []) if link["rel"] == "next"]
        if not nexts:
            assert "Link" not in response.headers
            return seen, queries
        assert len(nexts) == 1 and response.headers["Link"] == f'<{nexts[0]}>; rel="next"'
        queries.append({k: v[0] for k, v in parse_qs(urlsplit(nexts[0]).query).items()})
        response = service.client.get(nexts[0], headers=eng)


@ON_BOTH
@pytest.mark.parametrize("view", ["map", "full"])
@pytest.mark.parametrize(("limit", "pages"), [(1, 7), (2, 4), (3, 3)])
@pytest.mark.parametrize("rows", ["latest", "ranked", "run"])
def test_pages_follow_the_next_links(make_service, view, limit, pages, rows):
    """Seven segments, three of them on the same route, direction and 距離標 (the row id orders
    them): the next links walk them all once, in the order of the whole answer, whatever the
    page size, for each way of reading the rows: the latest of each place (kept ready), ranked
    by a filter, one run's."""
    service = make_service()
    ties = [_feature(2) for _ in range(2)]
    for n, feature in enumerate(ties):
        feature["properties"]["segment_id"] += f"_{n}"
    run_id = _store_run(service, [_feature(i) for i in range(5)] + ties)
    filters = {"latest": {}, "ranked": {"category": "I"}, "run": {"run_id": run_id}}[rows]
    whole = _map_features(_get(service, view="map", **filters).json())
    order = [f["id"] for f in whole]
    assert [f["properties"]["offset_m"] for f in whole] == [0, 100, 200, 200, 200, 300, 400]
    assert order[2:5] == sorted(order[2:5])  # the ties by row id
    assert order == [f["id"] for f in _get(service, limit=7, **filters).json()["features"]]
    seen, queries = _walk(service, view, limit=limit, **filters)
    assert seen == order and len(queries) == pages
    assert all(q["limit"] == str(limit) and "offset" not in q for q in queries[1:])
    # an offset still skips rows; its next link starts after the page (cursor, no offset)
    seen, queries = _walk(service, view, limit=limit, offset=2, **filters)
    assert seen == order[2:] and all("offset" not in q for q in queries[1:])


def _place_feature(route_no: str, direction: str, kp_km: float, offset_m: float) -> dict:
    """A segment of a place with a two-point line (cheap to store by the thousand)."""
    key = f"{route_no}_{direction}_{kp_km:g}_{offset_m:04.0f}"
    lon, lat = 140.0 + 0.001 * kp_km + 1e-5 * offset_m, 40.0 + 0.01 * int(route_no)
    return {
        "type": "Feature",
        "geometry": {"type": "LineString", "coordinates": [[lon, lat], [lon + 1e-3, lat]]},
        "properties": {
            "segment_id": key, "route_no": route_no, "direction": direction, "kp_km": kp_km,
            "offset_m": offset_m, "length_m": 100.0, "partial": False, "category": "I",
        },
    }  # fmt: skip


#: 2,400 places in 4 runs: routes 3 and 10 (10 sorts first as text), both directions, 距離標 9..68
#: (numeric order: 9 before 10), 10 segments each.
MANY_PLACES = [
    [_place_feature(route, direction, kp, 100.0 * k) for kp in range(9, 69) for k in range(10)]
    for route in ("3", "10")
    for direction in ("上り", "下り")
]


@ON_BOTH
def test_full_view_answers_a_default_page_and_its_links_walk_every_segment_once(make_service):
    service = make_service()
    for places in MANY_PLACES:
        _store_run(service, places)
    total = sum(len(places) for places in MANY_PLACES)
    assert total == 2400 > 2 * DEFAULT_PAGE
    # the web map's view stays whole: one request, every segment, no link
    whole = _get(service, view="map").json()
    assert whole["numberReturned"] == total and "links" not in whole
    order = [f["id"] for f in _map_features(whole)]
    first = _get(service)
    assert first.status_code == 200 and first.json()["numberReturned"] == DEFAULT_PAGE
    seen, queries = _walk(service, "full")
    assert [len(q) for q in queries] == [0, 2, 2]  # the default page's links carry limit and cursor
    assert all(q["limit"] == str(DEFAULT_PAGE) for q in queries[1:])
    assert seen == order and len(set(seen)) == total
    places = [
        (p["route_no"], p["direction"], p["kp_km"], p["offset_m"])
        for p in (f["properties"] for f in _map_features(whole))
    ]
    for a, b in pairwise(places):  # 距離標 in numeric order within a route and direction
        assert a[:2] != b[:2] or a[2:] < b[2:]
    assert _get(service, view="map", route_no="3", direction="下り").json()["numberReturned"] == 600
    page = _get(service, route_no="3", direction="下り", limit=MAX_FULL_PAGE).json()
    assert page["numberReturned"] == 600 and "links" not in page


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"limit": MAX_FULL_PAGE}, 200),
        ({"limit": MAX_FULL_PAGE + 1}, 422),
        ({"view": "full", "limit": 50_000}, 422),
        ({"view": "map", "limit": MAX_FULL_PAGE + 1}, 200),
        ({"view": "map", "limit": 100_000}, 200),
        ({"view": "map", "limit": 100_001}, 422),  # FastAPI's validation
    ],
)
def test_full_view_pages_hold_at_most_ten_thousand(service, params, status):
    response = _get(service, **params)
    assert response.status_code == status
    if status == 422 and params.get("view") != "map":
        detail = response.json()["detail"]
        assert "rel next" in detail and "/api/v1/exports/segments.geojson" in detail


def _token(values) -> str:
    text = values if isinstance(values, str) else json.dumps(values)
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "cursor",
    [
        "abc",  # not base64 of JSON
        _token({"route_no": "3"}),
        _token(["3", "下り", 12.0, 0.0]),
        _token(["3", "下り", "12", 0.0, 5]),
        _token(["3", "下り", 12.0, 0.0, 0]),  # ids start at 1
        _token(["3", "下り", 12.0, 0.0, True]),
        _token('["3", "下り", 1e400, 0.0, 5]'),  # infinite
    ],
)
def test_a_cursor_the_service_did_not_make_is_422(service, cursor):
    response = _get(service, cursor=cursor)
    assert response.status_code == 422
    assert "cursor" in json.dumps(response.json()["detail"])


@pytest.mark.parametrize(
    "cursor", [Cursor("3", "下り", 12.0, 300.0, 7), Cursor("", "不明", -1.5, 0.0, 2**31 - 1)]
)
def test_cursor_token_round_trip(cursor):
    token = cursor.token()
    assert token.replace("-", "").replace("_", "").isalnum()
    assert Cursor.from_token(token) == cursor


def test_answers_are_gzipped_cached_and_revalidated(make_service):
    service = make_service()
    _store_run(service, [_feature(i) for i in range(20)])
    eng = auth(service.tokens["engineer"])
    first = service.client.get(
        "/api/v1/segments", params={"view": "map"}, headers={**eng, "Accept-Encoding": "gzip"}
    )
    assert first.headers["Content-Encoding"] == "gzip" and first.headers["Vary"].startswith("Accept-Encoding")
    etag = first.headers["ETag"]
    plain = service.client.get(
        "/api/v1/segments", params={"view": "map"}, headers={**eng, "Accept-Encoding": "identity"}
    )
    assert "Content-Encoding" not in plain.headers and plain.json() == first.json()
    assert plain.headers["ETag"] == etag
    again = service.client.get(
        "/api/v1/segments", params={"view": "map"}, headers={**eng, "If-None-Match": etag}
    )
    assert again.status_code == 304 and again.content == b""
    assert service.client.app.state.segment_answers.nbytes > 0

    # a repair candidate marked: the cached answer is not served any more
    key = _map_features(first.json())[0]["properties"]["segment_id"]
    assert (
        service.client.post("/api/v1/repair-candidates", json={"segment": key}, headers=eng).status_code
        == 201
    )
    marked = service.client.get(
        "/api/v1/segments", params={"view": "map"}, headers={**eng, "If-None-Match": etag}
    )
    assert marked.status_code == 200 and marked.headers["ETag"] != etag
    assert _map_features(marked.json())[0]["properties"]["repair_candidate"] is True
    assert service.client.delete(f"/api/v1/repair-candidates/{key}", headers=eng).status_code == 204
    unmarked = _map_features(_get(service, view="map").json())
    assert unmarked[0]["properties"]["repair_candidate"] is False

    # a newer run of the same places: the answer shows it
    _store_run(service, [_feature(0)], day=date(2025, 6, 12))
    latest = _map_features(_get(service, view="map").json())
    assert latest[0]["properties"]["inspection_date"] == "2025-06-12"


def test_the_cache_holds_only_its_budget_and_the_current_version():
    from api.answers import AnswerCache, make_answer

    def answer(key, body):
        return make_answer(key, body, {}, "application/json")

    cache = AnswerCache(max_bytes=2500)
    noise = random.Random(0).randbytes(1000)  # does not compress: ~1 KB each
    for i in range(5):
        cache.put((1, i), answer((1, i), noise))
    assert cache.nbytes <= 2500 and cache.get((1, 4)) is not None and cache.get((1, 0)) is None
    cache.put((2, 0), answer((2, 0), b"{}"))
    assert cache.get((1, 4)) is None and cache.nbytes == 2  # answers of older store versions dropped
    assert answer((2, 0), b"x" * 5000).gzipped and not answer((2, 0), b"{}").gzipped
    body, headers = answer((3,), b"y" * 5000).content(accepts_gzip=False)
    assert body == b"y" * 5000 and headers == {}
    assert gzip.decompress(answer((3,), b"y" * 5000).content(accepts_gzip=True)[0]) == b"y" * 5000


@ON_BOTH
@pytest.mark.parametrize(
    "bbox", ["140.69,40.79,140.715,40.81", "140.715,40.81,140.69,40.79", "140.69,40.81,140.715,40.79"]
)
def test_bbox_corners_in_any_order(make_service, bbox):
    service = make_service()
    _store_run(service, [_feature(i) for i in range(5)])  # lines start 0.01 degrees (840 m) apart
    found = _map_features(_get(service, bbox=bbox, view="map").json())
    assert [f["properties"]["offset_m"] for f in found] == [0.0, 100.0]


@pytest.mark.parametrize("bbox", ["1,2,3", "a,b,c,d", "1e3,2,3,4", "1000,2,3,4", "nan,1,2,3", "١,2,3,4"])
def test_bad_bbox_is_422(service, bbox):
    response = _get(service, bbox=bbox)
    assert response.status_code == 422
    assert "bbox" in json.dumps(response.json()["detail"])
