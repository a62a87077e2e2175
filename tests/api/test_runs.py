"""Registering a run from uploads: names from content, never from the client; refusals with
messages that say what to do."""

from __future__ import annotations

import json

import pytest

from tests.api.conftest import auth, create_upload, patch

GPX = b'<?xml version="1.0"?><gpx version="1.1"><trk><trkseg></trkseg></trk></gpx>'
NMEA = b"$GPRMC,025601.00,A,4042.44,N,14035.47,E,13.0,54.2,120624,,,A*6C\r\n"
CSV = b"time,lat,lon\n2024-06-12T02:56:01Z,40.7,140.5\n"
CAMERA = json.dumps({"intrinsics": {}, "mount": {}}).encode()


def _upload(service, data: bytes, filename: str = "file.bin", token: str | None = None) -> str:
    token = token or service.tokens["uploader"]
    upload_id = create_upload(service.client, token, len(data), filename)
    assert patch(service.client, token, upload_id, 0, data).status_code == 204
    return upload_id


def _register(service, files: dict, token: str | None = None, **body):
    return service.client.post(
        "/api/v1/runs", json={"files": files, **body}, headers=auth(token or service.tokens["uploader"])
    )


@pytest.mark.parametrize(
    ("gps", "client_name", "expected"),
    [(GPX, "log.csv", "gps.gpx"), (NMEA, "log.txt", "gps.nmea"), (CSV, "log.gpx", "gps.csv")],
)
def test_files_are_named_by_role_and_content(service, gps, client_name, expected):
    files = {
        "video": _upload(service, b"\x00" * 100, "patrol.MOV"),
        "gps": _upload(service, gps, client_name),
        "camera": _upload(service, CAMERA, "cam.json"),
    }
    response = _register(service, files, vehicle={"name": "car 12", "gain": 1.1}, label="patrol")
    assert response.status_code == 202, response.text
    body = response.json()
    assert response.headers["Location"].endswith(f"/api/v1/jobs/{body['job_id']}")
    run_dir = service.store.runs_dir / str(body["run_id"])
    assert sorted(p.name for p in run_dir.iterdir()) == sorted(
        ["video.mov", expected, "camera.json", "vehicle.json"]
    )
    assert json.loads((run_dir / "vehicle.json").read_text())["gain"] == 1.1
    assert not any(service.store.uploads_dir.iterdir())  # moved, not copied
    run = service.client.get(
        f"/api/v1/runs/{body['run_id']}", headers=auth(service.tokens["uploader"])
    ).json()
    assert run["jobs"][0]["state"] == "queued"
    assert run["files"]["gps"]["name"] == expected


def test_incomplete_upload_is_409_with_its_offset(service):
    up = service.tokens["uploader"]
    video = create_upload(service.client, up, 100)
    patch(service.client, up, video, 0, b"\x00" * 40)
    response = _register(service, {"video": video, "gps": _upload(service, GPX)})
    assert response.status_code == 409
    assert "40 of 100 bytes" in response.json()["detail"]


def test_upload_used_once(service):
    files = {"video": _upload(service, b"\x00" * 10), "gps": _upload(service, GPX)}
    assert _register(service, files).status_code == 202
    again = _register(service, files)
    assert again.status_code == 409
    assert "already belongs to run" in again.json()["detail"]


@pytest.mark.parametrize(
    ("files", "status"),
    [
        ({"gps": "x"}, 422),  # no video
        ({"video": "x", "gps": "y", "passwd": "z"}, 422),  # unknown role
        ({"video": "0" * 32, "gps": "1" * 32}, 404),  # unknown uploads
    ],
)
def test_bad_file_sets(service, files, status):
    assert _register(service, files).status_code == status


def test_same_upload_twice_is_422(service):
    upload = _upload(service, b"\x00" * 10)
    response = _register(service, {"video": upload, "gps": upload})
    assert response.status_code == 422


def test_another_uploaders_upload_cannot_be_used(service):
    theirs = _upload(service, b"\x00" * 10, token=service.token("uploader", "car-2"))
    response = _register(service, {"video": theirs, "gps": _upload(service, GPX)})
    assert response.status_code == 404


def test_camera_must_be_a_profile(service):
    files = {
        "video": _upload(service, b"\x00" * 10),
        "gps": _upload(service, GPX),
        "camera": _upload(service, b"{"),
    }
    response = _register(service, files)
    assert response.status_code == 422
    assert "camera" in response.json()["detail"]
    # the refused run left the uploads usable
    files["camera"] = _upload(service, CAMERA)
    assert _register(service, files).status_code == 202


def test_vehicle_gain_out_of_range_is_422(service):
    files = {"video": _upload(service, b"\x00" * 10), "gps": _upload(service, GPX)}
    assert _register(service, files, vehicle={"gain": 50}).status_code == 422
