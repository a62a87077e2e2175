"""Resumable uploads: the tus 1.0 protocol (core, creation, termination, checksum) at
``/api/v1/uploads``, so phone apps can use any tus client.

- ``POST`` with ``Upload-Length`` (and ``Upload-Metadata``, e.g. ``filename``) creates an upload;
  ``Location`` is its URL.
- ``PATCH`` with ``Upload-Offset`` and ``Content-Type: application/offset+octet-stream`` appends a
  chunk. The body is streamed to ``DATA/uploads/<id>`` (constant memory) and synced to disk before
  the new offset is recorded. When the client disconnects in the middle, the bytes that arrived are
  kept (unless the chunk carried ``Upload-Checksum``) and ``HEAD`` says where to resume.
- ``HEAD`` gives ``Upload-Offset`` and ``Upload-Length``; ``DELETE`` drops an unused upload;
  ``GET`` (not tus) is a JSON receipt with the whole file's sha256 once it is complete.
- An upload that no run uses is deleted ``upload_expiry_h`` after its last chunk (``Upload-Expires``
  says when); the worker does the deleting (``expire_uploads``).

The client's file name is kept for display only: the server names every file itself.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel
from sqlalchemy import delete, select, update
from starlette.requests import ClientDisconnect

from api.db import Store
from api.errors import responses
from api.models import Upload, utcnow
from api.security import Principal, Uploader

logger = logging.getLogger(__name__)

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,termination,checksum,expiration"
CHECKSUM_ALGORITHMS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "md5": hashlib.md5}
OFFSET_CONTENT_TYPE = "application/offset+octet-stream"
BASE_HEADERS = {"Tus-Resumable": TUS_VERSION}
MAX_METADATA_CHARS = 4096
MAX_FILENAME_CHARS = 255

router = APIRouter(prefix="/uploads", tags=["uploads"])

# The tus headers are read from the request by the handlers (a missing or bad one is the protocol's
# 400 / 412 / 415, not FastAPI's 422) and documented here, so that clients see the whole protocol.
_DIGITS = {"type": "string", "pattern": "^[0-9]{1,19}$"}


def _header(name: str, description: str, schema: dict, required: bool = False) -> dict:
    return {"name": name, "in": "header", "required": required, "description": description, "schema": schema}


def _tus_doc(*headers: dict, body: bool = False) -> dict:
    """``openapi_extra`` of a tus operation: Tus-Resumable and ``headers`` (and the PATCH body)."""
    doc: dict = {
        "parameters": [
            _header("Tus-Resumable", "tus protocol version", {"type": "string", "enum": [TUS_VERSION]}, True),
            *headers,
        ]
    }
    if body:
        doc["requestBody"] = {
            "required": True,
            "description": "the next bytes of the file, from Upload-Offset",
            "content": {OFFSET_CONTENT_TYPE: {"schema": {"type": "string", "format": "binary"}}},
        }
    return doc


def _answer_headers(*names: str) -> dict:
    return {name: {"schema": {"type": "string"}, "description": name} for name in names}


def tus_error(status: int, message: str, **headers: str) -> HTTPException:
    return HTTPException(status_code=status, detail=message, headers={**BASE_HEADERS, **headers})


def check_tus_version(request: Request) -> None:
    """Every tus request but OPTIONS names the protocol version (412 otherwise)."""
    tus_resumable = request.headers.get("tus-resumable")
    if tus_resumable != TUS_VERSION:
        raise tus_error(
            412,
            f"Tus-Resumable: {tus_resumable!r} is not supported; send 'Tus-Resumable: {TUS_VERSION}'",
            **{"Tus-Version": TUS_VERSION},
        )


def safe_filename(name: str) -> str:
    """The client's file name, if it is a bare name; 400 for anything that looks like a path."""
    if (
        not name
        or len(name) > MAX_FILENAME_CHARS
        or name in (".", "..")
        or any(c in name for c in "/\\\x00")
        or any(ord(c) < 32 for c in name)
        or ":" in name
    ):
        raise tus_error(
            400,
            f"Upload-Metadata filename {name[:80]!r} is not a bare file name (no folders, '..', "
            f"drive letters or control characters, at most {MAX_FILENAME_CHARS} characters); send only "
            "the name, e.g. 'video.mp4'",
        )
    return name


def parse_metadata(header: str | None) -> dict[str, str]:
    """``Upload-Metadata: key base64,key2 base64`` -> {key: text}; 400 with the bad pair."""
    if not header:
        return {}
    if len(header) > MAX_METADATA_CHARS:
        raise tus_error(400, f"Upload-Metadata is longer than {MAX_METADATA_CHARS} characters")
    out: dict[str, str] = {}
    for pair in header.split(","):
        parts = pair.strip().split(" ")
        key = parts[0]
        if not key or len(parts) > 2 or not key.isascii():
            raise tus_error(400, f"Upload-Metadata pair {pair.strip()[:60]!r} is not 'key base64value'")
        try:
            value = base64.b64decode(parts[1], validate=True).decode("utf-8") if len(parts) == 2 else ""
        except (binascii.Error, UnicodeDecodeError):
            raise tus_error(400, f"Upload-Metadata value of {key!r} is not base64 of UTF-8 text") from None
        if key in out:
            raise tus_error(400, f"Upload-Metadata names {key!r} twice")
        out[key] = value
    if "filename" in out:
        safe_filename(out["filename"])
    return out


def encode_metadata(metadata: dict[str, str]) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" if v else k for k, v in metadata.items())


def _expires(settings, updated_at: datetime) -> dict[str, str]:
    """tus expiration: when an upload that no run uses will be deleted (RFC 9110 date)."""
    when = (updated_at + timedelta(hours=settings.upload_expiry_h)).replace(tzinfo=UTC)
    return {"Upload-Expires": format_datetime(when, usegmt=True)}


def expire_uploads(store: Store, max_age_h: float) -> int:
    """Delete the uploads no run uses whose last chunk is older than ``max_age_h``; how many."""
    cutoff = utcnow() - timedelta(hours=max_age_h)
    with store.session() as session:
        stale = session.scalars(
            select(Upload.id).where(Upload.run_id.is_(None), Upload.updated_at < cutoff)
        ).all()
    n = 0
    for upload_id in stale:
        path = upload_path(store, upload_id)
        with contextlib.ExitStack() as stack:
            if path.exists():
                f = stack.enter_context(path.open("rb"))
                try:
                    fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # being written right now: not stale after all
            with store.session() as session:
                session.execute(
                    delete(Upload).where(
                        Upload.id == upload_id, Upload.run_id.is_(None), Upload.updated_at < cutoff
                    )
                )
            path.unlink(missing_ok=True)
            n += 1
    if n:
        logger.info("deleted %d uploads unused for %.0f h", n, max_age_h)
    return n


def _store(request: Request) -> Store:
    return request.app.state.store


def _settings(request: Request):
    return request.app.state.settings


def upload_path(store: Store, upload_id: str) -> Path:
    return store.uploads_dir / upload_id


def _load(store: Store, upload_id: str, principal: Principal) -> Upload:
    """The upload, if the caller owns it (admins see all); 404 otherwise, so ids are not probed."""
    try:
        uuid.UUID(hex=upload_id)
    except ValueError:
        raise tus_error(404, f"no upload {upload_id[:40]!r}") from None
    with store.session() as session:
        upload = session.get(Upload, upload_id)
        if upload is None or (upload.owner_id != principal.user_id and not principal.is_admin):
            raise tus_error(404, f"no upload {upload_id}")
        return upload


def _is_count(value: str | None) -> bool:
    """A non-negative integer in ASCII digits (``str.isdigit`` also takes '²', which ``int`` refuses)."""
    return value is not None and 0 < len(value) <= 19 and value.isascii() and value.isdigit()


def _int_header(name: str, value: str | None) -> int:
    if not _is_count(value):
        raise tus_error(400, f"{name} must be a non-negative integer (at most 19 digits), got {value!r}")
    return int(value)


@router.options(
    "",
    response_class=Response,
    status_code=204,
    summary="tus discovery: version, extensions, limits",
    responses={
        204: {
            "description": "what this server supports",
            "headers": _answer_headers(
                "Tus-Version", "Tus-Extension", "Tus-Max-Size", "Tus-Checksum-Algorithm"
            ),
        }
    },
)
def tus_options(request: Request) -> Response:
    return Response(
        status_code=204,
        headers={
            **BASE_HEADERS,
            "Tus-Version": TUS_VERSION,
            "Tus-Extension": TUS_EXTENSIONS,
            "Tus-Max-Size": str(_settings(request).max_upload_bytes),
            "Tus-Checksum-Algorithm": ",".join(CHECKSUM_ALGORITHMS),
        },
    )


@router.post(
    "",
    response_class=Response,
    status_code=201,
    summary="Create an upload (tus creation)",
    dependencies=[Depends(check_tus_version)],
    responses={
        201: {
            "description": "created; Location is the upload's URL",
            "headers": _answer_headers("Location", "Upload-Offset", "Upload-Expires"),
        },
        **responses(400, 401, 403, 412, 413),
    },
    openapi_extra=_tus_doc(
        _header("Upload-Length", "the file's size in bytes (at most Tus-Max-Size)", _DIGITS, True),
        _header(
            "Upload-Metadata",
            "comma-separated 'key base64(value)' pairs; 'filename' must be a bare file name",
            {"type": "string", "maxLength": MAX_METADATA_CHARS},
        ),
    ),
)
def tus_create(request: Request, principal: Uploader) -> Response:
    upload_length = request.headers.get("upload-length")
    upload_metadata = request.headers.get("upload-metadata")
    if request.headers.get("upload-defer-length") is not None:
        raise tus_error(400, "Upload-Defer-Length is not supported; send Upload-Length (the file's size)")
    length = _int_header("Upload-Length", upload_length)
    limit = _settings(request).max_upload_bytes
    if length > limit:
        raise tus_error(413, f"Upload-Length {length} bytes is over this server's limit of {limit} bytes")
    metadata = parse_metadata(upload_metadata)
    store = _store(request)
    upload_id = uuid.uuid4().hex
    upload_path(store, upload_id).touch(exist_ok=False)
    now = utcnow()
    with store.session() as session:
        session.add(
            Upload(
                id=upload_id,
                owner_id=principal.user_id,
                length_bytes=length,
                offset_bytes=0,
                filename=metadata.get("filename", ""),
                metadata_json=json.dumps(metadata, ensure_ascii=False),
                created_at=now,
                updated_at=now,
                completed_at=now if length == 0 else None,
                sha256=hashlib.sha256().hexdigest() if length == 0 else None,
            )
        )
    location = str(request.url_for("tus_head", upload_id=upload_id))
    headers = {
        **BASE_HEADERS,
        "Location": location,
        "Upload-Offset": "0",
        **_expires(_settings(request), now),
    }
    return Response(status_code=201, headers=headers)


@router.head(
    "/{upload_id}",
    response_class=Response,
    summary="Where to resume: Upload-Offset (tus core)",
    dependencies=[Depends(check_tus_version)],
    responses={
        200: {
            "description": "the upload's offset and length",
            "headers": _answer_headers("Upload-Offset", "Upload-Length"),
        },
        **responses(401, 403, 404, 412),
    },
    openapi_extra=_tus_doc(),
)
def tus_head(upload_id: str, request: Request, principal: Uploader) -> Response:
    upload = _load(_store(request), upload_id, principal)
    headers = {
        **BASE_HEADERS,
        "Upload-Offset": str(upload.offset_bytes),
        "Upload-Length": str(upload.length_bytes),
        "Cache-Control": "no-store",
    }
    if upload.run_id is None:
        headers.update(_expires(_settings(request), upload.updated_at))
    metadata = json.loads(upload.metadata_json)
    if metadata:
        headers["Upload-Metadata"] = encode_metadata(metadata)
    return Response(status_code=200, headers=headers)


class UploadReceipt(BaseModel):
    id: str
    filename: str
    length_bytes: int
    offset_bytes: int
    complete: bool
    sha256: str | None
    run_id: int | None


@router.get("/{upload_id}", summary="JSON receipt of an upload (not tus)", responses=responses(401, 403, 404))
def upload_receipt(upload_id: str, request: Request, principal: Uploader) -> UploadReceipt:
    u = _load(_store(request), upload_id, principal)
    return UploadReceipt(
        id=u.id,
        filename=u.filename,
        length_bytes=u.length_bytes,
        offset_bytes=u.offset_bytes,
        complete=u.completed_at is not None,
        sha256=u.sha256,
        run_id=u.run_id,
    )


@dataclass
class _Chunk:
    written: int = 0
    disconnected: bool = False
    over_limit: str | None = None


def _sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


@router.patch(
    "/{upload_id}",
    response_class=Response,
    status_code=204,
    summary="Append a chunk at Upload-Offset (tus core)",
    dependencies=[Depends(check_tus_version)],
    responses={
        204: {
            "description": "appended; Upload-Offset is the new offset",
            "headers": _answer_headers("Upload-Offset"),
        },
        **responses(400, 401, 403, 404, 409, 412, 413, 415, 423, 460),
    },
    openapi_extra=_tus_doc(
        _header("Upload-Offset", "where this chunk starts: the upload's offset (HEAD)", _DIGITS, True),
        _header(
            "Upload-Checksum",
            "'<algorithm> <base64 digest>' of this chunk (sha1, sha256 or md5)",
            {"type": "string", "pattern": "^(sha1|sha256|md5) [A-Za-z0-9+/]*={0,2}$"},
        ),
        body=True,
    ),
)
async def tus_patch(upload_id: str, request: Request, principal: Uploader) -> Response:
    content_type = request.headers.get("content-type")
    upload_offset = request.headers.get("upload-offset")
    upload_checksum = request.headers.get("upload-checksum")
    content_length = request.headers.get("content-length")
    if (content_type or "").split(";")[0].strip().lower() != OFFSET_CONTENT_TYPE:
        raise tus_error(
            415, f"a PATCH body must be Content-Type: {OFFSET_CONTENT_TYPE} (tus 1.0), got {content_type!r}"
        )
    offset = _int_header("Upload-Offset", upload_offset)
    hasher, expected_digest = _checksum(upload_checksum)
    store, settings = _store(request), _settings(request)
    await run_in_threadpool(_load, store, upload_id, principal)  # 404 before touching the file
    f = await run_in_threadpool(upload_path(store, upload_id).open, "r+b")
    try:
        try:  # one PATCH at a time per upload, across processes: an exclusive lock on its file
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise tus_error(423, "another PATCH of this upload is in progress; retry when it ends") from None
        upload = await run_in_threadpool(_load, store, upload_id, principal)  # the offset, now stable
        if upload.offset_bytes == upload.length_bytes and offset == upload.length_bytes:
            return Response(status_code=204, headers={**BASE_HEADERS, "Upload-Offset": str(offset)})
        if offset != upload.offset_bytes:
            raise tus_error(
                409,
                f"Upload-Offset {offset} does not match the upload's offset {upload.offset_bytes}; "
                "ask HEAD for the offset to resume from",
            )
        room = upload.length_bytes - offset
        limit = min(settings.max_chunk_bytes, room)
        if _is_count(content_length) and int(content_length) > limit:
            why = (
                f"over this server's chunk limit of {settings.max_chunk_bytes} bytes; send smaller chunks"
                if int(content_length) > settings.max_chunk_bytes
                else f"past the announced Upload-Length ({room} bytes left)"
            )
            raise tus_error(413, f"chunk of {content_length} bytes is {why}")
        chunk = await _receive(request, f, offset, limit, settings.max_chunk_bytes, room, hasher)
        keep = chunk.written
        if chunk.over_limit or (
            hasher is not None and (chunk.disconnected or hasher.digest() != expected_digest)
        ):
            keep = 0  # a chunk that cannot be verified or does not fit is dropped whole
        await run_in_threadpool(_sync_truncate, f, offset + keep)
        new_offset = offset + keep
        if keep:
            await run_in_threadpool(_record_offset, store, upload_id, offset, new_offset, upload.length_bytes)
    finally:
        await run_in_threadpool(f.close)  # closing releases the lock
    if chunk.over_limit:
        raise tus_error(413, f"chunk is {chunk.over_limit}; the chunk was dropped, resume at {offset}")
    if chunk.disconnected:
        logger.info("upload %s: client disconnected; kept %d bytes, offset %d", upload_id, keep, new_offset)
        return Response(status_code=400, headers={**BASE_HEADERS, "Upload-Offset": str(new_offset)})
    if hasher is not None and hasher.digest() != expected_digest:
        raise tus_error(
            460, "Upload-Checksum does not match the chunk received; it was dropped, send it again"
        )
    headers = {**BASE_HEADERS, "Upload-Offset": str(new_offset), **_expires(settings, utcnow())}
    return Response(status_code=204, headers=headers)


def _checksum(header: str | None):
    """(hasher, expected digest) from ``Upload-Checksum: <algorithm> <base64>``, or (None, b"")."""
    if not header:
        return None, b""
    algo, _, digest = header.strip().partition(" ")
    if algo not in CHECKSUM_ALGORITHMS:
        raise tus_error(
            400, f"Upload-Checksum algorithm {algo!r} is not supported; use {', '.join(CHECKSUM_ALGORITHMS)}"
        )
    try:
        return CHECKSUM_ALGORITHMS[algo](), base64.b64decode(digest, validate=True)
    except binascii.Error:
        raise tus_error(400, "Upload-Checksum value is not base64") from None


async def _receive(request: Request, f, offset: int, limit: int, max_chunk: int, room: int, hasher) -> _Chunk:
    """Stream the body into ``f`` at ``offset``, at most ``limit`` bytes; note a disconnect."""
    chunk = _Chunk()
    await run_in_threadpool(f.seek, offset)
    try:
        async for data in request.stream():
            if not data:
                continue
            if chunk.written + len(data) > limit:
                chunk.over_limit = (
                    f"over this server's chunk limit of {max_chunk} bytes"
                    if chunk.written + len(data) > max_chunk
                    else f"past the announced Upload-Length ({room} bytes left)"
                )
                break
            await run_in_threadpool(f.write, data)
            if hasher is not None:
                hasher.update(data)
            chunk.written += len(data)
    except ClientDisconnect:
        chunk.disconnected = True
    return chunk


def _sync_truncate(f, size: int) -> None:
    f.flush()
    f.truncate(size)
    os.fsync(f.fileno())


def _record_offset(store: Store, upload_id: str, old: int, new: int, length: int) -> None:
    complete = new == length
    digest = _sha256_of(upload_path(store, upload_id)) if complete else None
    now = utcnow()
    with store.session() as session:
        session.execute(
            update(Upload)
            .where(Upload.id == upload_id, Upload.offset_bytes == old)
            .values(
                offset_bytes=new,
                updated_at=now,
                completed_at=now if complete else None,
                sha256=digest,
            )
        )


@router.delete(
    "/{upload_id}",
    response_class=Response,
    status_code=204,
    summary="Drop an upload that no run uses (tus termination)",
    dependencies=[Depends(check_tus_version)],
    responses={204: {"description": "deleted"}, **responses(401, 403, 404, 409, 412, 423)},
    openapi_extra=_tus_doc(),
)
def tus_delete(upload_id: str, request: Request, principal: Uploader) -> Response:
    store = _store(request)
    upload = _load(store, upload_id, principal)
    if upload.run_id is not None:
        raise tus_error(409, f"upload {upload_id} belongs to run {upload.run_id}; it cannot be deleted")
    with upload_path(store, upload_id).open("rb") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise tus_error(423, "a PATCH of this upload is in progress") from None
        with store.session() as session:
            session.delete(session.get(Upload, upload_id))
        upload_path(store, upload_id).unlink(missing_ok=True)
    return Response(status_code=204, headers=BASE_HEADERS)
