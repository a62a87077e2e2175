"""``GET /api/v1/segments`` for big stores: the map's lean view, pages, gzip, ETags and the answer
cache, which must never serve an answer older than the store."""

from __future__ import annotations

import gzip
import json
import math
import random
from datetime import date

import pytest

from api.models import Job, JobState, Run, User
from api.queries import MAP_FIELDS, MAP_PROPERTIES, refresh_latest
from api.results import segment_row
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


@ON_BOTH
def test_pages_follow_the_next_links(make_service):
    service = make_service()
    _store_run(service, [_feature(i) for i in range(5)])
    whole = [f["id"] for f in _map_features(_get(service, view="map").json())]
    seen, response = [], _get(service, view="map", limit=2)
    pages = 0
    while True:
        body = response.json()
        assert body["numberReturned"] == len(body["segments"]) <= 2
        seen += [f["id"] for f in _map_features(body)]
        pages += 1
        nexts = [link["href"] for link in body.get("links", []) if link["rel"] == "next"]
        if not nexts:
            assert "Link" not in response.headers
            break
        assert response.headers["Link"] == f'<{nexts[0]}>; rel="next"'
        response = service.client.get(nexts[0], headers=auth(service.tokens["engineer"]))
    assert seen == whole and pages == 3


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
