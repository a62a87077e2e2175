"""The 画像集 across runs (``GET /api/v1/exports/album``): each place's latest inspection with up to
three of its stored (masked, boxed) photos, the run named in the captions; filters and limits."""

from __future__ import annotations

import io
import json
from datetime import date

import cv2
import numpy as np
import openpyxl
import pytest

from api import exports
from api.models import FrameRow, Job, JobState, Run, SegmentRow, User, utcnow
from api.queries import refresh_latest
from api.results import segment_row
from tests.api.conftest import auth

DAMAGE = [{"class": "D20", "score": 0.9, "xyxy": [10.0, 10.0, 40.0, 30.0]}]


def _jpeg(seed: int) -> bytes:
    image = np.random.default_rng(seed).integers(0, 255, (120, 160, 3), np.uint8)
    return cv2.imencode(".jpg", image)[1].tobytes()


def _run(service, day: date, keys: list[str], frames_per_segment: int = 2) -> int:
    """A finished run of segments ``keys`` (route_direction_kp_offset) with stored frames."""
    with service.store.session() as session:
        owner = session.query(User).filter(User.role == "uploader").first()
        run = Run(owner_id=owner.id, inspection_date=day)
        session.add(run)
        session.flush()
        job = Job(run_id=run.id, state=JobState.DONE, finished_at=utcnow())
        session.add(job)
        session.flush()
        run.current_job_id = job.id
        out = service.store.data_dir / f"results/{run.id}/job{job.id}.a1/frames"
        out.mkdir(parents=True)
        for n, key in enumerate(keys):
            route, direction, kp, offset = key.split("_")
            lon = 140.7 + float(offset) * 1e-5
            props = {
                "segment_id": key, "route_no": route, "direction": direction, "kp_km": float(kp),
                "offset_m": float(offset), "length_m": 100.0, "partial": False, "crack_ratio_pct": 12.0,
                "rut_depth_mm": None, "iri_mm_per_m": 3.5, "pothole_count": 0, "mci": None, "category": "II",
            }  # fmt: skip
            feature = {"geometry": {"type": "LineString", "coordinates": [[lon, 40.8], [lon + 1e-3, 40.8]]},
                       "properties": props}  # fmt: skip
            row = segment_row(run.id, job.id, feature, None, day)
            session.add(row)
            session.flush()
            for k in range(frames_per_segment):
                index = 100 * n + k
                (out / f"{index}.jpg").write_bytes(_jpeg(index))
                session.add(
                    FrameRow(
                        run_id=run.id, job_id=job.id, segment_id=row.id, frame_index=index,
                        video_time_s=index / 10, lat=40.8, lon=lon,
                        file=f"results/{run.id}/job{job.id}.a1/frames/{index}.jpg",
                        detections_json=json.dumps(DAMAGE if k == frames_per_segment - 1 else []),
                    )
                )  # fmt: skip
        refresh_latest(session, keys)
        return run.id


def _album(service, **params):
    return service.client.get(
        "/api/v1/exports/album", params=params, headers=auth(service.tokens["engineer"])
    )


def _read(response) -> tuple[list[str], list[str], int]:
    """(section titles, photo captions, number of pictures) of an album workbook."""
    sheet = openpyxl.load_workbook(io.BytesIO(response.content)).active
    titles = [c.value for c in sheet["A"] if isinstance(c.value, str) and c.value.startswith("路線")]
    captions = [c.value for c in sheet["G"] if isinstance(c.value, str) and c.value.startswith("写真番号")]
    return titles, captions, len(sheet._images)


def test_album_across_runs_shows_each_places_latest_photos(service):
    old = _run(service, date(2023, 6, 1), ["3_下り_12_0000", "3_下り_12_0100", "3_下り_12_0200"])
    new = _run(service, date(2024, 6, 1), ["3_下り_12_0000", "3_下り_12_0100"], frames_per_segment=4)
    response = _album(service)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/vnd.openxmlformats")
    titles, captions, pictures = _read(response)
    assert len(titles) == 3 and titles[0].startswith("路線 3") and "12 km + 0 m" in titles[0]
    assert len(captions) == pictures == 3 + 3 + 2  # at most 3 of the newer run's 4, all 2 of the old
    assert sum(f"走行 {new} (2024-06-01)" in c for c in captions) == 6
    assert sum(f"走行 {old} (2023-06-01)" in c for c in captions) == 2
    assert sum("検出 D20×1" in c for c in captions) == 3  # the damaged frame of each segment is shown
    with service.store.session() as session:
        frame_ids = set(session.scalars(FrameRow.__table__.select().with_only_columns(FrameRow.id)))
    shown = {int(c.split("\n")[0].removeprefix("写真番号 ")) for c in captions}
    assert shown <= frame_ids  # 写真番号 = the store's frame id

    titles, captions, _ = _read(_album(service, year=2023))
    assert len(titles) == 3 and all(f"走行 {old} " in c for c in captions)


def test_album_filters_limits_and_roles(service, monkeypatch):
    _run(service, date(2024, 6, 1), ["3_下り_12_0000", "5_上り_1_0100"])
    titles, _, _ = _read(_album(service, route_no="5", direction="上り"))
    assert len(titles) == 1 and titles[0].startswith("路線 5")
    assert _album(service, route_no="7").status_code == 404
    assert _album(service, year=2030).status_code == 404
    monkeypatch.setattr(exports, "MAX_ALBUM_SEGMENTS", 1)
    too_many = _album(service)
    assert too_many.status_code == 422 and "route_no" in too_many.json()["detail"]
    uploader = service.client.get("/api/v1/exports/album", headers=auth(service.tokens["uploader"]))
    assert uploader.status_code == 403
    assert not list(service.store.data_dir.glob(".album-*"))  # temporary folders removed


def test_album_captions_a_missing_photo(service):
    run_id = _run(service, date(2024, 6, 1), ["3_下り_12_0000"], frames_per_segment=1)
    with service.store.session() as session:
        (service.store.data_dir / session.query(FrameRow).one().file).unlink()
        assert session.query(SegmentRow).one().run_id == run_id
    _, captions, pictures = _read(_album(service))
    assert pictures == 0 and len(captions) == 1 and "画像なし" in captions[0]


@pytest.mark.parametrize(
    "items", [[], [{"class": "D40", "score": 0.5, "xyxy": [1, 2, 3, 4]}, {"class": "X9"}]]
)
def test_stored_detections_are_read_back(items):
    dets = exports._detections(items)
    assert len(dets) == len([d for d in items if d.get("class") == "D40"])
