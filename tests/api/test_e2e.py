"""The whole service path on the small synthetic run: upload (resumed after a disconnect),
register, the worker's real processing, then segments, frames, 様式A, album, KPI, repair list.
Once on SQLite and once on PostgreSQL + PostGIS (``ON_BOTH``; the latter skips without a server)."""

from __future__ import annotations

import csv
import hashlib
import io
import json

from api.models import FrameRow, SegmentRow
from exporters.form_a import read_form_xlsx
from exporters.gis import PROPERTY_NAMES
from tests.api.conftest import ON_BOTH, auth

pytestmark = ON_BOTH


def test_upload_resumed_after_disconnect_is_byte_exact(e2e, synth_run):
    video = e2e.uploads["video"]
    assert any(e.startswith("disconnect at") for e in video.events), video.events
    files = e2e.registered["files"]
    assert files["video"]["sha256"] == hashlib.sha256((synth_run / "video.mp4").read_bytes()).hexdigest()
    run_dir = e2e.service.store.runs_dir / str(e2e.registered["run_id"])
    assert (run_dir / "video.mp4").read_bytes() == (synth_run / "video.mp4").read_bytes()


def test_run_folder_uses_the_documented_names(e2e):
    run_dir = e2e.service.store.runs_dir / str(e2e.registered["run_id"])
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "accel.csv",
        "camera.json",
        "gps.gpx",  # uploaded as "track-2024-06-12.txt": named by its content
        "route.geojson",
        "video.mp4",
    ]
    assert e2e.registered["files"]["gps"]["client_filename"] == "track-2024-06-12.txt"


def test_job_done_with_full_progress(e2e):
    assert e2e.job["state"] == "done", e2e.job
    assert e2e.job["progress"] == 1.0
    assert e2e.job["error"] is None
    assert e2e.job["model"] == "damage_yolo.onnx"


def test_segments_come_back_as_geojson_with_the_file_properties(e2e):
    client, eng = e2e.service.client, e2e.service.tokens["engineer"]
    response = client.get("/api/v1/segments", headers=auth(eng))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/geo+json")
    collection = response.json()
    on_disk = json.loads((e2e.result_dir / "segments.geojson").read_text(encoding="utf-8"))
    assert len(collection["features"]) == len(on_disk["features"]) == 3
    by_key = {f["properties"]["segment_id"]: f for f in collection["features"]}
    for feature in on_disk["features"]:
        served = by_key[feature["id"]]
        assert set(PROPERTY_NAMES) <= set(served["properties"])
        assert {k: served["properties"][k] for k in PROPERTY_NAMES} == feature["properties"]
        assert served["geometry"] == feature["geometry"]
        assert served["properties"]["run_id"] == e2e.registered["run_id"]
        assert served["properties"]["inspection_date"] == "2024-06-12"


def test_segment_filters(e2e):
    client, eng = e2e.service.client, e2e.service.tokens["engineer"]

    def count(**params) -> int:
        response = client.get("/api/v1/segments", params=params, headers=auth(eng))
        assert response.status_code == 200, response.text
        return len(response.json()["features"])

    assert count(route_no="3", direction="下り", year=2024) == 3
    assert count(year=2023) == 0
    assert count(route_no="4") == 0
    served = client.get("/api/v1/segments", headers=auth(eng)).json()["features"]
    categories = [f["properties"]["category"] or "none" for f in served]  # none: not diagnosed
    for category in ("I", "II", "III", "none"):
        assert count(category=category) == categories.count(category), category
    assert count(bbox="140.58,40.70,140.60,40.72") == 3
    assert count(bbox="139,35,139.1,35.1") == 0
    assert client.get("/api/v1/segments", params={"bbox": "1,2,3"}, headers=auth(eng)).status_code == 422


def test_segment_detail_has_history_and_masked_frames(e2e):
    client, eng = e2e.service.client, e2e.service.tokens["engineer"]
    features = client.get("/api/v1/segments", headers=auth(eng)).json()["features"]
    with e2e.service.store.session() as session:
        with_frames = {r.segment_id for r in session.query(FrameRow).all()}
    feature = next(f for f in features if f["id"] in with_frames)
    detail = client.get(f"/api/v1/segments/{feature['id']}", headers=auth(eng)).json()
    assert detail["feature"]["properties"]["segment_id"] == feature["properties"]["segment_id"]
    assert [h["run_id"] for h in detail["history"]] == [e2e.registered["run_id"]]
    assert detail["history"][0]["current"] is True
    assert detail["frames"]
    frame = detail["frames"][0]
    image = client.get(frame["url"], headers=auth(eng))
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/jpeg"
    assert image.content == (e2e.result_dir / "frames" / f"{frame['frame_index']}.jpg").read_bytes()
    assert client.get(frame["url"]).status_code == 401
    by_key = client.get(f"/api/v1/segments/{feature['properties']['segment_id']}", headers=auth(eng)).json()
    assert by_key["feature"]["id"] == feature["id"]


def test_form_a_export_matches_the_runs_form(e2e, tmp_path):
    client, eng = e2e.service.client, e2e.service.tokens["engineer"]
    response = client.get("/api/v1/exports/form-a", params={"year": 2024, "route_no": "3"}, headers=auth(eng))
    assert response.status_code == 200, response.text
    assert "attachment" in response.headers["content-disposition"]
    path = tmp_path / "form.xlsx"
    path.write_bytes(response.content)
    assert read_form_xlsx(path) == read_form_xlsx(e2e.result_dir / "form_a.xlsx")
    missing = client.get("/api/v1/exports/form-a", params={"year": 2019}, headers=auth(eng))
    assert missing.status_code == 404
    assert "2019" in missing.json()["detail"]


def test_geojson_gpkg_and_album_exports(e2e):
    client, eng = e2e.service.client, e2e.service.tokens["engineer"]
    geojson = client.get("/api/v1/exports/segments.geojson", headers=auth(eng))
    assert len(geojson.json()["features"]) == 3
    gpkg = client.get("/api/v1/exports/segments.gpkg", headers=auth(eng))
    assert gpkg.status_code == 200 and gpkg.content[:16] == b"SQLite format 3\x00"
    album = client.get(f"/api/v1/runs/{e2e.registered['run_id']}/album", headers=auth(eng))
    assert album.status_code == 200 and album.content[:2] == b"PK"


def test_kpi_year_with_change_against_the_previous_year(e2e):
    client, eng = e2e.service.client, e2e.service.tokens["engineer"]
    body = client.get("/api/v1/kpi", params={"period": "year"}, headers=auth(eng)).json()
    assert body["current"]["start"] == "2024-01-01" and body["current"]["end"] == "2025-01-01"
    assert body["current"]["kpi"]["segments"] == 3
    assert body["previous"]["kpi"]["segments"] == 0
    assert body["change"]["surveyed_km"] == body["current"]["kpi"]["surveyed_km"] > 0
    fiscal = client.get(
        "/api/v1/kpi", params={"period": "quarter", "year_start_month": 4}, headers=auth(eng)
    ).json()
    assert (fiscal["current"]["start"], fiscal["current"]["end"]) == ("2024-04-01", "2024-07-01")


def test_repair_candidates_mark_list_export_unmark(e2e):
    client, eng = e2e.service.client, e2e.service.tokens["engineer"]
    feature = client.get("/api/v1/segments", headers=auth(eng)).json()["features"][0]
    key = feature["properties"]["segment_id"]
    marked = client.post(
        "/api/v1/repair-candidates",
        json={"segment": str(feature["id"]), "note": "ポットホール補修"},
        headers=auth(eng),
    )
    assert marked.status_code == 201, marked.text
    assert marked.json()["segment_key"] == key
    listed = client.get("/api/v1/repair-candidates", headers=auth(eng)).json()
    assert [(c["segment_key"], c["note"], c["marked_by"]) for c in listed] == [
        (key, "ポットホール補修", "engineer-1")
    ]
    flagged = client.get("/api/v1/segments", headers=auth(eng)).json()["features"]
    assert {f["properties"]["segment_id"] for f in flagged if f["properties"]["repair_candidate"]} == {key}
    exported = client.get("/api/v1/exports/repair-candidates.csv", headers=auth(eng))
    table = list(csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert [(r["segment_key"], r["note"], r["route_no"]) for r in table] == [(key, "ポットホール補修", "3")]
    assert client.delete(f"/api/v1/repair-candidates/{key}", headers=auth(eng)).status_code == 204
    assert client.get("/api/v1/repair-candidates", headers=auth(eng)).json() == []
    assert client.delete(f"/api/v1/repair-candidates/{key}", headers=auth(eng)).status_code == 404


def test_rows_stored_once_per_segment(e2e):
    with e2e.service.store.session() as session:
        keys = [r.segment_key for r in session.query(SegmentRow).all()]
    assert len(keys) == len(set(keys)) == 3
