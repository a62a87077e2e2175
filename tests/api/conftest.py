"""Fixtures of the service tests: an app over a fresh data folder, tokens, a tus client, and one
real processing of the small synthetic run per session (``e2e``) whose output the other tests
reuse through a copying stand-in for ``run_process``.

Databases: SQLite in the data folder by default. A test or module marked ``ON_BOTH`` runs once on
SQLite and once on PostgreSQL + PostGIS, with a new database per service, when
``PAVEMENT_TEST_POSTGRES_URL`` names a server (``.ci/postgres.sh start DIR`` starts one); without
it the PostgreSQL variants skip, saying so."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from api.app import create_app
from api.db import Store, open_store
from api.models import Job, Run
from api.security import create_token
from api.settings import Settings

TUS = {"Tus-Resumable": "1.0.0"}
OFFSET_STREAM = "application/offset+octet-stream"

POSTGRES_URL_ENV = "PAVEMENT_TEST_POSTGRES_URL"
NO_POSTGRES = f"PostgreSQL variant: {POSTGRES_URL_ENV} is not set (.ci/postgres.sh starts a server)"
BACKENDS = ("sqlite", "postgresql")
#: Run a test (or, as ``pytestmark``, a module) on SQLite and on PostgreSQL + PostGIS.
ON_BOTH = pytest.mark.parametrize("backend", BACKENDS, indirect=True)


def auth(token: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **headers}


def metadata(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


@dataclass
class Service:
    """An app over its own data folder, with one token per role."""

    settings: Settings
    store: Store
    client: TestClient
    tokens: dict[str, str] = field(default_factory=dict)

    def token(self, role: str, name: str | None = None) -> str:
        with self.store.session() as session:
            return create_token(session, name or f"test-{role}-{len(self.tokens)}", role).token

    def queue_run(self, owner_role: str = "uploader") -> tuple[int, int]:
        """A run folder and a queued job without uploads (for worker tests with a stand-in process)."""
        with self.store.session() as session:
            from api.models import User

            owner = session.query(User).filter(User.role == owner_role).first()
            run = Run(owner_id=owner.id, label="queued by a test")
            session.add(run)
            session.flush()
            (self.store.runs_dir / str(run.id)).mkdir()
            job = Job(run_id=run.id, max_attempts=self.settings.max_attempts)
            session.add(job)
            session.flush()
            return run.id, job.id


class PostgresServer:
    """The server of ``PAVEMENT_TEST_POSTGRES_URL``: a new database for each service (copied from a
    PostGIS template made once, which is fast), all dropped at the end of the session."""

    def __init__(self, url: str) -> None:
        self.url = make_url(url)
        self.admin = create_engine(self.url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
        self.prefix = f"pavement_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        self.made: list[str] = []
        self.template: str | None = None
        try:
            with self.admin.connect() as conn:
                conn.execute(text("SELECT 1"))
        except OperationalError as exc:
            raise RuntimeError(
                f"{POSTGRES_URL_ENV} is set, but its server does not answer: {exc.orig}"
            ) from None

    def url_of(self, database: str) -> str:
        return self.url.set(database=database).render_as_string(hide_password=False)

    def _create(self, template: str) -> str:
        name = f"{self.prefix}_{len(self.made)}"
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
        self.made.append(name)
        return name

    def new_database(self, postgis: bool = True) -> str:
        """The URL of a new, empty database; with ``postgis`` it already holds the extension (as a
        DBA would have made it), without it the migrations must add it."""
        if not postgis:
            return self.url_of(self._create("template0"))
        if self.template is None:
            self.template = self._create("template0")
            with create_engine(self.url_of(self.template), poolclass=NullPool).begin() as conn:
                conn.execute(text("CREATE EXTENSION postgis"))
        return self.url_of(self._create(self.template))

    def drop_all(self) -> None:
        with self.admin.connect() as conn:
            for name in reversed(self.made):
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.admin.dispose()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """The PostgreSQL + PostGIS server of the tests; skips the test without one."""
    url = os.environ.get(POSTGRES_URL_ENV)
    if not url:
        pytest.skip(NO_POSTGRES)
    server = PostgresServer(url)
    yield server
    server.drop_all()


@pytest.fixture
def backend(request) -> str:
    """The database of the test's services: "sqlite", or what ``ON_BOTH`` gives."""
    return getattr(request, "param", "sqlite")


@pytest.fixture
def new_database_url(backend, request) -> Callable[[], str | None]:
    """Each call: the URL of a new, empty database (None: SQLite in the service's data folder)."""
    if backend == "sqlite":
        return lambda: None
    return request.getfixturevalue("postgres").new_database


@pytest.fixture
def make_service(tmp_path, new_database_url) -> Callable[..., Service]:
    """Factory: ``make_service(**settings)`` -> a Service with tokens for every role."""
    made: list[Service] = []

    def make(**values) -> Service:
        settings = Settings(
            data_dir=tmp_path / f"data{len(made)}",
            database_url=new_database_url(),
            **{"tile_url": "", **values},
        )
        store = open_store(settings)
        client = TestClient(create_app(settings, store))
        service = Service(settings, store, client)
        for role in ("uploader", "engineer", "admin"):
            service.tokens[role] = service.token(role, f"{role}-1")
        made.append(service)
        return service

    yield make
    for service in made:
        service.client.close()
        service.store.engine.dispose()


@pytest.fixture
def service(make_service) -> Service:
    return make_service(max_chunk_bytes=64 * 1024)


def create_upload(client: TestClient, token: str, length: int, filename: str = "file.bin") -> str:
    response = client.post(
        "/api/v1/uploads",
        headers=auth(
            token, **TUS, **{"Upload-Length": str(length), "Upload-Metadata": metadata(filename=filename)}
        ),
    )
    assert response.status_code == 201, response.text
    return response.headers["Location"].rsplit("/", 1)[-1]


def patch(client: TestClient, token: str, upload_id: str, offset: int, data: bytes, **headers: str):
    return client.patch(
        f"/api/v1/uploads/{upload_id}",
        content=data,
        headers=auth(
            token, **TUS, **{"Upload-Offset": str(offset), "Content-Type": OFFSET_STREAM}, **headers
        ),
    )


def head_offset(client: TestClient, token: str, upload_id: str) -> int:
    response = client.head(f"/api/v1/uploads/{upload_id}", headers=auth(token, **TUS))
    assert response.status_code == 200, response.text
    return int(response.headers["Upload-Offset"])


def patch_then_disconnect(
    app, token: str, upload_id: str, offset: int, chunk: bytes, sent: int, **extra: str
) -> list[dict]:
    """A PATCH that announces the whole ``chunk`` but whose client vanishes after ``sent`` bytes
    (what a patrol car's phone does when it drives out of coverage): the ASGI messages the app
    answered with."""
    path = f"/api/v1/uploads/{upload_id}"
    headers = auth(token, **TUS, **{"Upload-Offset": str(offset), "Content-Type": OFFSET_STREAM}, **extra)
    headers["Content-Length"] = str(len(chunk))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "PATCH",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
    }
    messages = [
        {"type": "http.request", "body": chunk[:sent], "more_body": True},
        {"type": "http.disconnect"},
    ]
    answered: list[dict] = []

    async def receive():
        if messages:
            return messages.pop(0)
        await asyncio.sleep(3600)

    async def send(message):
        answered.append(message)

    asyncio.run(app(scope, receive, send))
    return answered


@dataclass
class UploadLog:
    upload_id: str
    events: list[str]


def tus_upload(
    service: Service,
    token: str,
    path: Path,
    chunk_bytes: int,
    filename: str | None = None,
    disconnect_chunk: int | None = None,
) -> UploadLog:
    """Upload ``path`` as a tus client does; with ``disconnect_chunk``, that chunk's connection drops
    halfway and the client resumes from HEAD's offset, sending the rest of the chunk again."""
    data = path.read_bytes()
    client = service.client
    upload_id = create_upload(client, token, len(data), filename or path.name)
    events = []
    offset, n = 0, 0
    while offset < len(data):
        chunk = data[offset : offset + chunk_bytes]
        if n == disconnect_chunk:
            patch_then_disconnect(client.app, token, upload_id, offset, chunk, len(chunk) // 2)
            resumed = head_offset(client, token, upload_id)
            events.append(f"disconnect at {offset}+{len(chunk) // 2}, HEAD says {resumed}")
            assert offset <= resumed <= offset + len(chunk)
            offset = resumed
            chunk = data[offset : offset + chunk_bytes]
        response = patch(client, token, upload_id, offset, chunk)
        assert response.status_code == 204, response.text
        offset = int(response.headers["Upload-Offset"])
        events.append(f"chunk {n} -> {offset}")
        n += 1
    return UploadLog(upload_id, events)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_server(app) -> Iterator[str]:
    """``app`` served by uvicorn on 127.0.0.1 in a thread; yields its base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def copying_process(source: Path, calls: list | None = None):
    """A stand-in for ``run_process`` that reports progress and copies a finished output folder."""

    def process(run_dir, out_dir, config, progress=None):
        if calls is not None:
            calls.append(Path(out_dir))
        if progress:
            progress("video", 1, 2, 0.1)
            progress("video", 2, 2, 0.2)
        shutil.copytree(source, out_dir, dirs_exist_ok=True)

    return process


@dataclass
class EndToEnd:
    service: Service
    uploads: dict[str, UploadLog]
    registered: dict
    job: dict
    result_dir: Path


def _end_to_end(synth_run: Path, data_dir: Path, database_url: str | None) -> Iterator[EndToEnd]:
    """The whole path through the real app and the real worker: tokens, chunked tus uploads of the
    small synthetic run (the video's second chunk cut off and resent), the run registered,
    ``work(once=True)`` running ``run_process``. Tests assert on what it left."""
    from api.worker import work

    settings = Settings(data_dir=data_dir, database_url=database_url, max_chunk_bytes=128 * 1024, tile_url="")
    store = open_store(settings)
    service = Service(settings, store, TestClient(create_app(settings, store)))
    for role in ("uploader", "engineer", "admin"):
        service.tokens[role] = service.token(role, f"{role}-1")
    up = service.tokens["uploader"]
    uploads = {
        "video": tus_upload(service, up, synth_run / "video.mp4", 64 * 1024, disconnect_chunk=1),
        "gps": tus_upload(service, up, synth_run / "gps.gpx", 4096, filename="track-2024-06-12.txt"),
        "accel": tus_upload(service, up, synth_run / "accel.csv", 128 * 1024),
        "route": tus_upload(service, up, synth_run / "route.geojson", 128 * 1024),
        "camera": tus_upload(service, up, synth_run / "camera.json", 128 * 1024),
    }
    response = service.client.post(
        "/api/v1/runs",
        json={"files": {k: v.upload_id for k, v in uploads.items()}, "vehicle": {"name": "patrol 12"}},
        headers=auth(up),
    )
    assert response.status_code == 202, response.text
    registered = response.json()
    assert work(store, settings, once=True) == 1
    job = service.client.get(f"/api/v1/jobs/{registered['job_id']}", headers=auth(up)).json()
    with store.session() as session:
        result_dir = store.data_dir / session.get(Job, registered["job_id"]).result_dir
    yield EndToEnd(service, uploads, registered, job, result_dir)
    service.client.close()
    store.engine.dispose()


@pytest.fixture(scope="session")
def e2e_sqlite(synth_run, tmp_path_factory) -> Iterator[EndToEnd]:
    yield from _end_to_end(synth_run, tmp_path_factory.mktemp("e2e") / "data", None)


@pytest.fixture(scope="session")
def e2e_postgresql(synth_run, tmp_path_factory, postgres) -> Iterator[EndToEnd]:
    yield from _end_to_end(synth_run, tmp_path_factory.mktemp("e2e_pg") / "data", postgres.new_database())


@pytest.fixture
def e2e(backend, request) -> EndToEnd:
    """The end-to-end path, done once per session and database (``backend``)."""
    return request.getfixturevalue(f"e2e_{backend}")
