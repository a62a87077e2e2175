"""tus 1.0 uploads: discovery, creation, resume after a disconnect, checksums, and the 4xx answers
for bad requests (each with a message that says what to send)."""

from __future__ import annotations

import base64
import hashlib
import socket
import time

import httpx
import pytest

from tests.api.conftest import (
    OFFSET_STREAM,
    TUS,
    auth,
    create_upload,
    head_offset,
    metadata,
    patch,
    patch_then_disconnect,
    running_server,
)

DATA = bytes(range(256)) * 1000  # 256 kB, no two chunks alike


def test_options_advertises_the_protocol(service):
    response = service.client.options("/api/v1/uploads")
    assert response.status_code == 204
    assert response.headers["Tus-Resumable"] == "1.0.0"
    assert response.headers["Tus-Version"] == "1.0.0"
    assert set(response.headers["Tus-Extension"].split(",")) >= {"creation", "checksum", "termination"}
    assert int(response.headers["Tus-Max-Size"]) == service.settings.max_upload_bytes
    assert "sha256" in response.headers["Tus-Checksum-Algorithm"]


def test_upload_in_chunks_then_receipt(service):
    up = service.tokens["uploader"]
    upload_id = create_upload(service.client, up, len(DATA), "video.mp4")
    head = service.client.head(f"/api/v1/uploads/{upload_id}", headers=auth(up, **TUS))
    assert head.headers["Upload-Offset"] == "0"
    assert head.headers["Upload-Length"] == str(len(DATA))
    assert head.headers["Cache-Control"] == "no-store"
    assert head.headers["Upload-Metadata"] == metadata(filename="video.mp4")
    for offset in range(0, len(DATA), 50_000):
        response = patch(service.client, up, upload_id, offset, DATA[offset : offset + 50_000])
        assert response.status_code == 204, response.text
        assert response.headers["Upload-Offset"] == str(min(offset + 50_000, len(DATA)))
        assert response.headers["Tus-Resumable"] == "1.0.0"
    receipt = service.client.get(f"/api/v1/uploads/{upload_id}", headers=auth(up)).json()
    assert receipt["complete"] is True
    assert receipt["sha256"] == hashlib.sha256(DATA).hexdigest()
    assert (service.store.uploads_dir / upload_id).read_bytes() == DATA


def test_disconnect_keeps_what_arrived_and_head_says_where_to_resume(service):
    up = service.tokens["uploader"]
    upload_id = create_upload(service.client, up, len(DATA))
    assert patch(service.client, up, upload_id, 0, DATA[:40_000]).status_code == 204
    patch_then_disconnect(service.client.app, up, upload_id, 40_000, DATA[40_000:100_000], sent=25_000)
    resume_at = head_offset(service.client, up, upload_id)
    assert resume_at == 65_000
    # the client resends its chunk from where the server stands; the old offset is refused
    stale = patch(service.client, up, upload_id, 40_000, DATA[40_000:100_000])
    assert stale.status_code == 409
    assert "HEAD" in stale.json()["detail"]
    assert patch(service.client, up, upload_id, resume_at, DATA[resume_at:100_000]).status_code == 204
    for offset in range(100_000, len(DATA), 60_000):
        assert patch(service.client, up, upload_id, offset, DATA[offset : offset + 60_000]).status_code == 204
    assert (service.store.uploads_dir / upload_id).read_bytes() == DATA


def test_disconnect_drops_a_chunk_that_carried_a_checksum(service):
    up = service.tokens["uploader"]
    upload_id = create_upload(service.client, up, len(DATA))
    chunk = DATA[:60_000]
    digest = base64.b64encode(hashlib.sha1(chunk).digest()).decode()
    checksum = {"Upload-Checksum": f"sha1 {digest}"}
    patch_then_disconnect(service.client.app, up, upload_id, 0, chunk, sent=30_000, **checksum)
    assert head_offset(service.client, up, upload_id) == 0
    assert (service.store.uploads_dir / upload_id).stat().st_size == 0


@pytest.mark.parametrize("algorithm", ["sha1", "sha256", "md5"])
def test_checksum_accepted_and_mismatch_460(service, algorithm):
    up = service.tokens["uploader"]
    upload_id = create_upload(service.client, up, 1000)
    chunk = DATA[:1000]
    good = base64.b64encode(hashlib.new(algorithm, chunk).digest()).decode()
    bad = base64.b64encode(hashlib.new(algorithm, b"other").digest()).decode()
    wrong = patch(service.client, up, upload_id, 0, chunk, **{"Upload-Checksum": f"{algorithm} {bad}"})
    assert wrong.status_code == 460
    assert head_offset(service.client, up, upload_id) == 0
    right = patch(service.client, up, upload_id, 0, chunk, **{"Upload-Checksum": f"{algorithm} {good}"})
    assert right.status_code == 204


@pytest.mark.parametrize(
    "filename",
    ["../../etc/passwd", "runs/1/video.mp4", "..", "C:\\temp\\x.mp4", "a\\..\\b", "bad\x00.mp4", "x:y", ""],
)
def test_path_like_filenames_are_refused(service, filename):
    response = service.client.post(
        "/api/v1/uploads",
        headers=auth(
            service.tokens["uploader"],
            **TUS,
            **{"Upload-Length": "10", "Upload-Metadata": metadata(filename=filename)},
        ),
    )
    assert response.status_code == 400
    assert "bare file name" in response.json()["detail"]
    assert list(service.store.uploads_dir.iterdir()) == []


@pytest.mark.parametrize(
    ("headers", "status", "words"),
    [
        ({}, 400, "Upload-Length"),
        ({"Upload-Length": "-5"}, 400, "Upload-Length"),
        ({"Upload-Length": "10", "Upload-Metadata": "filename not-base64!"}, 400, "base64"),
        ({"Upload-Length": "10", "Upload-Metadata": "a b c"}, 400, "key base64value"),
        ({"Upload-Defer-Length": "1"}, 400, "Upload-Defer-Length"),
        ({"Upload-Length": str(10**15)}, 413, "limit"),
    ],
)
def test_bad_creation_requests(service, headers, status, words):
    response = service.client.post(
        "/api/v1/uploads", headers=auth(service.tokens["uploader"], **TUS, **headers)
    )
    assert response.status_code == status
    assert words in response.json()["detail"]


def test_missing_tus_version_is_412(service):
    response = service.client.post(
        "/api/v1/uploads", headers=auth(service.tokens["uploader"], **{"Upload-Length": "10"})
    )
    assert response.status_code == 412
    assert response.headers["Tus-Version"] == "1.0.0"


def test_wrong_content_type_is_415(service):
    up = service.tokens["uploader"]
    upload_id = create_upload(service.client, up, 10)
    response = service.client.patch(
        f"/api/v1/uploads/{upload_id}",
        content=b"0123456789",
        headers=auth(up, **TUS, **{"Upload-Offset": "0", "Content-Type": "application/json"}),
    )
    assert response.status_code == 415
    assert OFFSET_STREAM in response.json()["detail"]


def test_oversized_chunk_is_413_and_nothing_is_kept(service):
    up = service.tokens["uploader"]
    limit = service.settings.max_chunk_bytes
    data = DATA[: limit + 1]
    upload_id = create_upload(service.client, up, len(data))
    response = patch(service.client, up, upload_id, 0, data)
    assert response.status_code == 413
    assert "chunk limit" in response.json()["detail"]
    assert head_offset(service.client, up, upload_id) == 0


def test_chunk_past_upload_length_is_413(service):
    up = service.tokens["uploader"]
    upload_id = create_upload(service.client, up, 100)
    response = patch(service.client, up, upload_id, 0, DATA[:150])
    assert response.status_code == 413
    assert "Upload-Length" in response.json()["detail"]


def test_streamed_body_over_the_limit_is_cut_off(service):
    """A chunked body has no Content-Length: the limit is enforced while it streams."""
    up = service.tokens["uploader"]
    upload_id = create_upload(service.client, up, 10 * service.settings.max_chunk_bytes)

    def body():
        for _ in range(3):
            yield DATA[:40_000]

    response = service.client.patch(
        f"/api/v1/uploads/{upload_id}",
        content=body(),
        headers=auth(up, **TUS, **{"Upload-Offset": "0", "Content-Type": OFFSET_STREAM}),
    )
    assert response.status_code == 413
    assert head_offset(service.client, up, upload_id) == 0


def test_another_uploaders_upload_is_not_found(service):
    upload_id = create_upload(service.client, service.tokens["uploader"], 10)
    other = service.token("uploader", "another-car")
    assert service.client.head(f"/api/v1/uploads/{upload_id}", headers=auth(other, **TUS)).status_code == 404
    assert patch(service.client, other, upload_id, 0, b"0123456789").status_code == 404
    admin = service.tokens["admin"]
    assert service.client.head(f"/api/v1/uploads/{upload_id}", headers=auth(admin, **TUS)).status_code == 200


def test_termination_deletes_an_unused_upload(service):
    up = service.tokens["uploader"]
    upload_id = create_upload(service.client, up, 10)
    assert service.client.delete(f"/api/v1/uploads/{upload_id}", headers=auth(up, **TUS)).status_code == 204
    assert not (service.store.uploads_dir / upload_id).exists()
    assert service.client.head(f"/api/v1/uploads/{upload_id}", headers=auth(up, **TUS)).status_code == 404


def test_real_server_keeps_bytes_of_a_dropped_connection(service):
    """Through uvicorn on loopback: a socket that sends half a chunk and closes."""
    with running_server(service.client.app) as base:
        port = int(base.rsplit(":", 1)[1])
        deadline = time.monotonic() + 10
        up = service.tokens["uploader"]
        with httpx.Client(base_url=base, timeout=10) as http:
            created = http.post(
                "/api/v1/uploads", headers=auth(up, **TUS, **{"Upload-Length": str(len(DATA))})
            )
            assert created.status_code == 201
            location = created.headers["Location"]
            assert location.startswith(base)
            upload_id = location.rsplit("/", 1)[-1]
            with socket.create_connection(("127.0.0.1", port)) as sock:
                request = (
                    f"PATCH /api/v1/uploads/{upload_id} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    f"Authorization: Bearer {up}\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\n"
                    f"Content-Type: {OFFSET_STREAM}\r\nContent-Length: 60000\r\n\r\n"
                )
                sock.sendall(request.encode() + DATA[:30_000])
                time.sleep(0.3)
            offset = 0
            while time.monotonic() < deadline:
                offset = int(http.head(location, headers=auth(up, **TUS)).headers["Upload-Offset"])
                if offset:
                    break
                time.sleep(0.05)
            assert offset == 30_000
            while offset < len(DATA):
                chunk = DATA[offset : offset + 60_000]
                r = http.patch(
                    location,
                    content=chunk,
                    headers=auth(up, **TUS, **{"Upload-Offset": str(offset), "Content-Type": OFFSET_STREAM}),
                )
                assert r.status_code == 204, r.text
                offset = int(r.headers["Upload-Offset"])
        assert (service.store.uploads_dir / upload_id).read_bytes() == DATA


def test_unused_uploads_expire(service):
    from datetime import timedelta

    from sqlalchemy import update

    from api.models import Upload, utcnow
    from api.tus import expire_uploads

    up = service.tokens["uploader"]
    created = service.client.post("/api/v1/uploads", headers=auth(up, **TUS, **{"Upload-Length": "10"}))
    assert created.headers["Upload-Expires"].endswith("GMT")
    stale = created.headers["Location"].rsplit("/", 1)[-1]
    fresh = create_upload(service.client, up, 10)
    with service.store.session() as session:
        session.execute(
            update(Upload).where(Upload.id == stale).values(updated_at=utcnow() - timedelta(days=4))
        )
    assert expire_uploads(service.store, service.settings.upload_expiry_h) == 1
    assert service.client.head(f"/api/v1/uploads/{stale}", headers=auth(up, **TUS)).status_code == 404
    assert not (service.store.uploads_dir / stale).exists()
    assert head_offset(service.client, up, fresh) == 0
