"""Access control: 401 without a valid token, 403 for the wrong role, tokens stored hashed,
uploaders confined to their own runs, development mode only on loopback."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from api.models import Token
from api.settings import Settings
from tests.api.conftest import ON_BOTH, TUS, auth

ENDPOINTS = [
    ("get", "/api/v1/segments"),
    ("get", "/api/v1/segments/1"),
    ("get", "/api/v1/exports/form-a"),
    ("get", "/api/v1/kpi"),
    ("get", "/api/v1/runs"),
    ("get", "/api/v1/jobs/1"),
    ("get", "/api/v1/repair-candidates"),
    ("get", "/api/v1/tokens"),
    ("get", "/api/v1/frames/1.jpg"),
    ("post", "/api/v1/uploads"),
    ("post", "/api/v1/runs"),
]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_no_token_is_401(service, method, path):
    response = service.client.request(method, path, headers=TUS)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert "pavement token create" in response.json()["detail"]


@pytest.mark.parametrize("token", ["pvt_not-a-real-token", "dev", ""])
def test_unknown_token_is_401(service, token):
    response = service.client.get("/api/v1/segments", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


def test_revoked_token_is_401(service):
    admin = service.tokens["admin"]
    made = service.client.post(
        "/api/v1/tokens", json={"name": "car-7", "role": "uploader"}, headers=auth(admin)
    )
    assert made.status_code == 201
    token = made.json()["token"]
    assert service.client.get("/api/v1/runs", headers=auth(token)).status_code == 200
    assert (
        service.client.delete(f"/api/v1/tokens/{made.json()['id']}", headers=auth(admin)).status_code == 204
    )
    assert service.client.get("/api/v1/runs", headers=auth(token)).status_code == 401


@pytest.mark.parametrize(
    ("role", "method", "path"),
    [
        ("uploader", "get", "/api/v1/exports/form-a"),
        ("uploader", "get", "/api/v1/exports/repair-candidates.csv"),
        ("uploader", "get", "/api/v1/segments"),
        ("uploader", "get", "/api/v1/kpi"),
        ("uploader", "post", "/api/v1/repair-candidates"),
        ("uploader", "get", "/api/v1/tokens"),
        ("uploader", "post", "/api/v1/runs/1/reprocess"),
        ("engineer", "post", "/api/v1/uploads"),
        ("engineer", "post", "/api/v1/runs"),
        ("engineer", "post", "/api/v1/tokens"),
        ("engineer", "post", "/api/v1/runs/1/reprocess"),
    ],
)
def test_wrong_role_is_403(service, role, method, path):
    response = service.client.request(method, path, headers=auth(service.tokens[role], **TUS))
    assert response.status_code == 403
    assert f"role {role} may not" in response.json()["detail"]


def test_tokens_are_stored_hashed(service):
    with service.store.session() as session:
        stored = session.scalars(select(Token.token_hash)).all()
    secrets = set(service.tokens.values())
    assert len(stored) == 3
    assert not secrets & set(stored)
    assert all(len(h) == 64 for h in stored)
    listed = service.client.get("/api/v1/tokens", headers=auth(service.tokens["admin"])).json()
    assert not any(s in str(listed) for s in secrets)


def test_uploader_sees_only_its_own_runs_and_jobs(service):
    run_id, job_id = service.queue_run("uploader")
    owner = service.tokens["uploader"]
    other = service.token("uploader", "car-99")
    assert service.client.get(f"/api/v1/jobs/{job_id}", headers=auth(owner)).json()["state"] == "queued"
    assert service.client.get(f"/api/v1/jobs/{job_id}", headers=auth(other)).status_code == 404
    assert service.client.get(f"/api/v1/runs/{run_id}", headers=auth(other)).status_code == 404
    assert service.client.get("/api/v1/runs", headers=auth(other)).json() == []
    assert [r["id"] for r in service.client.get("/api/v1/runs", headers=auth(owner)).json()] == [run_id]
    engineer = service.tokens["engineer"]
    assert service.client.get(f"/api/v1/jobs/{job_id}", headers=auth(engineer)).status_code == 200


def test_dev_token_only_in_dev_mode(make_service):
    dev = make_service(dev=True)
    assert dev.client.get("/api/v1/tokens", headers=auth("dev")).status_code == 200
    normal = make_service()
    assert normal.client.get("/api/v1/tokens", headers=auth("dev")).status_code == 401


def test_dev_mode_refuses_a_public_address(tmp_path):
    with pytest.raises(ValueError, match=r"only listens on 127\.0\.0\.1"):
        Settings(data_dir=tmp_path, dev=True, host="0.0.0.0")
    Settings(data_dir=tmp_path, dev=True, host="::1")


def test_openapi_documents_the_bearer_scheme(service):
    spec = service.client.get("/api/v1/openapi.json").json()
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert "/api/v1/uploads/{upload_id}" in spec["paths"]


@ON_BOTH
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/jobs/2147483648"),  # past PostgreSQL's INTEGER
        ("get", "/api/v1/runs/0"),
        ("get", "/api/v1/frames/99999999999999999999.jpg"),
        ("get", "/api/v1/segments?run_id=-1"),
        ("delete", "/api/v1/tokens/2147483648"),
    ],
)
def test_ids_out_of_range_are_422(service, method, path):
    response = service.client.request(method, path, headers=auth(service.tokens["admin"]))
    assert response.status_code == 422, response.text


@ON_BOTH
def test_text_the_database_cannot_hold_is_not_a_5xx(service, backend):
    """PostgreSQL text cannot hold NUL characters (a 422 that says so); SQLite can. No 5xx either way."""
    eng, admin, up = (service.tokens[r] for r in ("engineer", "admin", "uploader"))
    client = service.client
    assert client.get("/api/v1/segments/99999999999999999999", headers=auth(eng)).status_code == 404
    assert client.get("/api/v1/segments/١٢", headers=auth(eng)).status_code == 404  # Arabic-Indic digits
    answers = [
        client.get("/api/v1/segments", params={"route_no": "3\x00"}, headers=auth(eng)),
        client.get("/api/v1/segments/3_%00", headers=auth(eng)),
        client.post("/api/v1/tokens", json={"name": "car\x00", "role": "uploader"}, headers=auth(admin)),
        client.post("/api/v1/runs", json={"files": {"video": "a\x00", "gps": "b"}}, headers=auth(up)),
        client.post("/api/v1/repair-candidates", json={"segment": "k\x00"}, headers=auth(eng)),
    ]
    assert all(r.status_code < 500 for r in answers), [r.text for r in answers]
    refused = [r.json() for r in answers if r.status_code == 422 and r.json().get("error") == "DataError"]
    assert all("NUL" in r["detail"] for r in refused), refused
    assert len(refused) == (5 if backend == "postgresql" else 0)


def _raw_status(app, method: str, path: str, headers: dict[str, bytes], body: bytes = b"") -> int:
    """The status ``app`` answers a request whose header values are these exact bytes (HTTP clients
    re-encode non-ASCII text)."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
        "headers": [(k.lower().encode(), v) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000), "server": ("testserver", 80), "state": {},
    }  # fmt: skip
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    answered: list[dict] = []

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message):
        answered.append(message)

    asyncio.run(app(scope, receive, send))
    return next(m["status"] for m in answered if m["type"] == "http.response.start")


def test_odd_numbers_in_headers_paths_and_dates_are_4xx_not_5xx(service):
    """Values that pass a naive check and then fail a conversion: superscript digits ('²' is a
    digit to ``str.isdigit``, not to ``int``), ids longer than ``int`` converts, days at the ends
    of the calendar, a number where a day is due."""
    eng, up = service.tokens["engineer"], service.tokens["uploader"]
    client = service.client
    tus = {"Authorization": f"Bearer {up}".encode(), "Tus-Resumable": b"1.0.0"}
    assert _raw_status(client.app, "POST", "/api/v1/uploads", {**tus, "Upload-Length": b"\xb2"}) == 400
    location = client.post("/api/v1/uploads", headers=auth(up, **TUS, **{"Upload-Length": "10"})).headers[
        "Location"
    ]
    path = location[location.index("/api/v1") :]
    stream = {**tus, "Content-Type": b"application/offset+octet-stream"}
    assert _raw_status(client.app, "PATCH", path, {**stream, "Upload-Offset": b"\xb3"}, b"x") == 400
    odd_length = {**stream, "Upload-Offset": b"0", "Content-Length": b"\xb9"}
    assert _raw_status(client.app, "PATCH", path, odd_length, b"x") == 204
    assert client.get("/api/v1/segments/" + "7" * 5000, headers=auth(eng)).status_code == 404
    for at in ("0001-01-05", "9999-12-31"):
        kpi = client.get("/api/v1/kpi", params={"at": at, "year_start_month": 4}, headers=auth(eng))
        assert kpi.status_code == 200, kpi.text
    assert client.get("/api/v1/kpi", params={"at": "0"}, headers=auth(eng)).status_code == 422
