"""Property-based tests of the whole API against its own OpenAPI schema (schemathesis).

Every operation of ``/api/v1/openapi.json`` gets generated requests, valid and invalid (bounded
examples, a fixed seed: the same requests on every run), sent with the token of each role
(uploader, engineer, admin) to an app over a small seeded store: a processed run with segments, a
frame with its JPEG, a pothole and a repair candidate, so that the reads find something. Each
answer must be no 5xx and conform to the schema: a documented status code, the documented
content type, a body that validates.
"""

from __future__ import annotations

import json
import tempfile
from datetime import date
from pathlib import Path

import pytest
import schemathesis
from sqlalchemy import update

from api.app import create_app
from api.db import open_store
from api.models import FrameRow, Job, JobState, PotholeRow, RepairCandidate, Run, Token, User
from api.queries import refresh_latest
from api.results import segment_row
from api.security import create_token
from api.settings import Settings
from exporters.form_a import FormContext, segments_to_form_rows
from exporters.gis import segments_to_records
from pavement.diagnosis import Category
from pavement.segments import Direction, Segment, SegmentKey, SegmentMetrics
from tests.api.conftest import auth

ROLES = ("uploader", "engineer", "admin")
#: tus checks what a schema cannot say: the server's size limits (announced by OPTIONS as
#: Tus-Max-Size), the metadata's encoding and file name, the chunk's checksum.
TUS_SEMANTIC_STATUSES = ["2xx", "401", "403", "404", "409", "400", "413", "460"]
CONFIG = schemathesis.Config.from_dict(
    {
        "seed": 20240612,
        "generation": {"max-examples": 10, "deterministic": True, "with-security-parameters": False},
        "phases": {"stateful": {"enabled": False}},
        "checks": {
            # tus answers a missing or unknown Tus-Resumable with 412 (Precondition Failed)
            "missing_required_header": {"expected-statuses": [400, 401, 403, 412, 415, 422]},
            "negative_data_rejection": {"expected-statuses": [400, 401, 403, 404, 409, 412, 413, 415, 422]},
        },
        "operations": [
            {
                "include-tag": "uploads",
                "checks": {"positive_data_acceptance": {"expected-statuses": TUS_SEMANTIC_STATUSES}},
            },
            {
                # what the schema cannot say: view=full pages hold at most 10,000 features (limit goes
                # to 100,000 for view=map), and a cursor must be one the service made
                "include-name": "GET /api/v1/segments",
                "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "401", "403", "422"]}},
            },
        ],
    }
)
#: The smallest JPEG decoders accept (1x1 grey), as a frame of the seeded run.
JPEG = bytes.fromhex(
    "ffd8ffe000104a46494600010100000100010000ffdb004300080606070605080707070909080a0c140d0c0b0b0c1912"
    "130f141d1a1f1e1d1a1c1c20242e2720222c231c1c2837292c30313434341f27393d38323c2e333432ffc0000b0800"
    "01000101011100ffc4001f0000010501010101010100000000000000000102030405060708090a0bffc400b5100002"
    "010303020403050504040000017d01020300041105122131410613516107227114328191a1082342b1c11552d1f024"
    "33627282090a161718191a25262728292a3435363738393a434445464748494a535455565758595a63646566676869"
    "6a737475767778797a838485868788898a92939495969798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3c4"
    "c5c6c7c8c9cad2d3d4d5d6d7d8d9dae1e2e3e4e5e6e7e8e9eaf1f2f3f4f5f6f7f8f9faffda0008010100003f00fbd3"
    "ffd9"
)


def _seed(store) -> None:
    """One processed run of three segments as the worker stores them (with 様式A rows; one with a
    frame and a pothole, one a repair candidate); the first is the schema's example key."""
    day = date(2024, 6, 12)
    segments = [
        Segment(
            key=SegmentKey("3", Direction.DOWN, 12.0, 300.0 + 100 * i, 100.0),
            start_lat=40.82, start_lon=140.74 + i * 0.001, end_lat=40.82, end_lon=140.741 + i * 0.001,
            frame_indices=(7 + 10 * i,), representative_frames=(7 + 10 * i,),
            metrics=SegmentMetrics(crack_ratio_pct=12.5 * i, rut_depth_mm=5.0, iri_mm_per_m=2.5 + i,
                                   pothole_count=int(i == 0), mci=6.1, category=list(Category)[i]),
        )
        for i in range(3)
    ]  # fmt: skip
    form_rows = segments_to_form_rows(segments, FormContext(office="青森河川国道事務所", inspection_date=day))
    with store.session() as session:
        owner = session.query(User).filter(User.role == "uploader").one()
        run = Run(owner_id=owner.id, label="seeded", inspection_date=day)
        session.add(run)
        session.flush()
        job = Job(run_id=run.id, state=JobState.DONE, progress=1.0, stage="done", attempts=1)
        session.add(job)
        session.flush()
        run.current_job_id = job.id
        rows = []
        for record, form_row in zip(segments_to_records(segments), form_rows, strict=True):
            feature = {
                "geometry": {"type": "LineString", "coordinates": [list(c) for c in record.coordinates]},
                "properties": record.properties(),
            }
            rows.append(segment_row(run.id, job.id, feature, form_row, day))
        session.add_all(rows)
        refresh_latest(session, [r.segment_key for r in rows])
        frame_file = f"results/{run.id}/job{job.id}.a1/frames/7.jpg"
        (store.data_dir / frame_file).parent.mkdir(parents=True)
        (store.data_dir / frame_file).write_bytes(JPEG)
        session.add(
            FrameRow(
                run_id=run.id, job_id=job.id, segment_id=rows[0].id, frame_index=7, video_time_s=0.7,
                lat=40.82, lon=140.74, file=frame_file,
                detections_json=json.dumps([{"class": "D00", "score": 0.8, "xyxy": [1, 2, 30, 40]}]),
            )
        )  # fmt: skip
        session.add(PotholeRow(run_id=run.id, job_id=job.id, segment_key=rows[0].segment_key, lat=40.82,
                               lon=140.7405, properties_json=json.dumps({"frame_index": 7})))  # fmt: skip
        session.add(RepairCandidate(segment_key=rows[2].segment_key, note="seeded", created_by=owner.id,
                                    updated_by=owner.id))  # fmt: skip


class Api:
    def __init__(self, tmp_path) -> None:
        settings = Settings(data_dir=tmp_path / "data", tile_url="", max_chunk_bytes=64 * 1024)
        self.store = open_store(settings)
        self.app = create_app(settings, self.store)
        self.tokens: dict[str, str] = {}
        self.token_ids: list[int] = []
        with self.store.session() as session:
            for role in ROLES:
                made = create_token(session, f"schema-{role}", role)
                self.tokens[role] = made.token
                self.token_ids.append(made.token_id)
        _seed(self.store)

    def keep_tokens(self) -> None:
        """Generated requests may revoke any token id: un-revoke the test's own after each call."""
        with self.store.session() as session:
            session.execute(update(Token).where(Token.id.in_(self.token_ids)).values(revoked_at=None))


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    api = Api(tmp_path_factory.mktemp("schemathesis"))
    APP.app = api.app
    yield api
    APP.app = None
    api.store.engine.dispose()


def _openapi() -> dict:
    """The app's OpenAPI document (it does not depend on the data: no migration, no rows)."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), tile_url="")
        store = open_store(settings, migrate=False)
        try:
            return create_app(settings, store).openapi()
        finally:
            store.engine.dispose()


# tus PATCH bodies are raw bytes under their own media type
schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")


class _ServiceApp:
    """The ASGI app the generated requests go to: the ``api`` fixture's, set when it is made."""

    app = None

    async def __call__(self, scope, receive, send) -> None:
        await self.app(scope, receive, send)


# At import: schemathesis makes one test per operation at collection (its fixture-based loader does
# not run on this pytest); the requests go to the app of the ``api`` fixture over a seeded store.
APP = _ServiceApp()
schema = schemathesis.openapi.from_dict(_openapi(), config=CONFIG)
schema.app = APP


@schema.parametrize()
def test_api_conforms_to_its_schema(case, api):
    for role in ROLES:
        case.call_and_validate(headers=auth(api.tokens[role]))
        api.keep_tokens()
