"""``pavement process`` end to end on a small synthetic run."""

import csv
import json
from pathlib import Path

import openpyxl
import pytest

from exporters.form_a import CATEGORY_LABEL
from pavement.diagnosis import Category
from pavement.frame_plan import FramePlanConfig
from pavement.rut_video import RutSweepConfig
from pipelines.geotag import GeotagConfig
from pipelines.process import ProcessConfig, run_process
from pipelines.rut import RutConfig
from tests.conftest import pavement_cli

REPO = Path(__file__).resolve().parents[2]
OUTPUTS = (
    "segments.geojson",
    "segments.csv",
    "segments.gpkg",
    "segments.kml",
    "form_a.xlsx",
    "kpi.json",
    "map.html",
    "potholes.geojson",
    "detections.json",
    "report.json",
    "album.xlsx",
    "geotag/frames.csv",
)


@pytest.fixture(scope="module")
def processed(synth_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("process")
    return (
        run_process(synth_run, out, ProcessConfig()),
        out,
        json.loads((synth_run / "truth.json").read_text()),
    )


def test_writes_every_output(processed):
    _, out, _ = processed
    for name in OUTPUTS:
        assert (out / name).stat().st_size > 0, name


def test_segments_match_the_truth_keys(processed):
    result, _, truth = processed
    got = [(s.key.kp_km, s.key.offset_m, s.key.direction.value) for s in result.segments]
    want = [(t["kp_km"], t["offset_m"], t["direction"]) for t in truth["segments"]]
    assert sorted(got) == sorted(want)


def test_form_a_has_one_row_per_segment_and_blank_unmeasured_indicators(processed):
    result, out, _ = processed
    sheet = openpyxl.load_workbook(out / "form_a.xlsx").worksheets[0]
    headers = [c.value for c in sheet[2]]
    rows = [dict(zip(headers, (c.value for c in r), strict=True)) for r in sheet.iter_rows(min_row=3)]
    assert len(rows) == len(result.segments)
    assert all(r["わだち掘れ量(mm)"] is None for r in rows)  # no depth maps in this run: not measured
    for row, seg in zip(rows, sorted(result.segments, key=lambda s: s.key), strict=True):
        crack, category = seg.metrics.crack_ratio_pct, seg.metrics.category
        assert (row["ひび割れ率(%)"] is None) == (crack is None)
        assert (
            (row["診断区分"] is None) == (category is None) == (crack is None)
        )  # 区分 needs the crack ratio
    assert all(str(r["路線番号"]) == result.segments[0].key.route_no for r in rows)


def assert_form_a_equals_segments_csv(out: Path) -> None:
    """form_a.xlsx has the template's two header rows and one row per segments.csv row, same values."""
    sheet = openpyxl.load_workbook(out / "form_a.xlsx").worksheets[0]
    types, headers = [c.value for c in sheet[1]], [c.value for c in sheet[2]]
    assert all(types) and "路線番号" in headers and "IRI(mm/m)" in headers
    rows = [dict(zip(headers, (c.value for c in r), strict=True)) for r in sheet.iter_rows(min_row=3)]
    with (out / "segments.csv").open(encoding="utf-8-sig") as f:
        table = list(csv.DictReader(f))
    assert rows and len(rows) == len(table)

    def num(v):
        return None if v in (None, "") else float(v)

    for row, rec in zip(rows, table, strict=True):
        assert str(row["路線番号"]) == rec["route_no"] and row["上下"] == rec["direction"]
        assert num(row["距離標(起点)"]) == pytest.approx(num(rec["kp_km"]))
        assert num(row["距離標からの追加距離(起点)"]) == pytest.approx(num(rec["offset_m"]))
        for header, field in (
            ("IRI(mm/m)", "iri_mm_per_m"),
            ("わだち掘れ量(mm)", "rut_depth_mm"),
            ("ひび割れ率(%)", "crack_ratio_pct"),
        ):
            assert num(row[header]) == pytest.approx(num(rec[field]), abs=0.051)
        assert row["診断区分"] == (CATEGORY_LABEL[Category(rec["category"])] if rec["category"] else None)
        assert num(row["緯度(起点)"]) == pytest.approx(num(rec["start_lat"]), abs=1e-6)


def test_form_a_rows_equal_segments_csv(processed):
    assert_form_a_equals_segments_csv(processed[1])


def test_the_readme_main_command_on_the_bundled_sample_run(tmp_path):
    """`make demo` runs exactly this: every output, 様式A equal to segments.csv, figures measured."""
    out = tmp_path / "demo"
    done = pavement_cli("process", str(REPO / "sample_data" / "run_500m"), "--out", str(out))
    assert done.returncode == 0, done.stderr[-2000:]
    for name in OUTPUTS:
        assert (out / name).stat().st_size > 0, name
    assert_form_a_equals_segments_csv(out)
    with (out / "segments.csv").open(encoding="utf-8-sig") as f:
        full = [r for r in csv.DictReader(f) if r["partial"] != "True"]
    assert full and all(r["crack_ratio_pct"] and r["iri_mm_per_m"] and r["category"] for r in full)


def test_album_shows_every_segment_with_its_representative_frames(processed):
    result, out, _ = processed
    book = openpyxl.load_workbook(out / "album.xlsx")
    n_images = sum(len(ws._images) for ws in book.worksheets)
    chosen = [i for s in result.segments for i in s.representative_frames]
    assert chosen and n_images == len(chosen)
    assert sorted(int(p.stem) for p in (out / "frames").glob("*.jpg")) == sorted(chosen)
    text = " ".join(str(c.value) for ws in book.worksheets for row in ws.iter_rows() for c in row if c.value)
    assert text.count("未計測") >= len(result.segments)  # わだち掘れ量: the run has no depth maps


def test_frames_are_decoded_once_and_spaced_by_distance(processed):
    _, out, _ = processed
    report = json.loads((out / "report.json").read_text())
    frames = [r for r in csv_rows(out / "geotag/frames.csv")]
    assert report["video"]["distance_by_video_m"] == pytest.approx(200, rel=0.15)
    assert report["detected_frames"] == pytest.approx(200 / 10, abs=4)  # the detector: every 10 m
    assert len(frames) == report["planned_frames"]


def csv_rows(path):
    import csv

    with path.open(encoding="utf-8-sig") as f:
        return list(csv.DictReader(f))


def test_iri_is_estimated_for_full_segments(processed):
    result, _, _ = processed
    full = [s for s in result.segments if not s.partial]
    assert full and all(s.metrics.iri_mm_per_m is not None and s.metrics.iri_mm_per_m > 0 for s in full)


def test_report_names_what_is_not_measured(processed):
    _, out, _ = processed
    report = json.loads((out / "report.json").read_text())
    assert report["planned_frames"] > 0 and report["model"] == "damage_yolo.onnx"
    assert any("わだち掘れ量 not measured" in w for w in report["warnings"])  # no depth maps
    assert report["stage_s"]["cracks"] >= 0 and "detected_frames" in report


def test_missing_run_folder_is_one_line_and_exit_1(tmp_path):
    done = pavement_cli("process", str(tmp_path / "nope"), "--out", str(tmp_path / "o"))
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0 and "does not exist" in done.stderr


# ---- bad input: one line, exit 1, nothing half-written ---------------------------------------------


def _copy_run(synth_run, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(synth_run, run)
    return run


def _fails_cleanly(run, tmp_path, *words, out=None):
    out = out or tmp_path / "out"
    done = pavement_cli("process", str(run), "--out", str(out), "--no-detect")
    assert done.returncode == 1, done.stdout + done.stderr
    message = done.stderr.strip()
    assert message.count("\n") == 0 and "Traceback" not in message, message
    for word in words:
        assert word in message, message
    assert not out.exists() or not any(out.iterdir())
    assert not list(out.parent.glob(f".{out.name}.partial-*"))
    return message


def _write_audio(path):
    import av
    import numpy as np

    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=44100)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 44100
        for _ in range(20):
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def test_truncated_video(synth_run, tmp_path):
    run = _copy_run(synth_run, tmp_path)
    data = (run / "video.mp4").read_bytes()
    (run / "video.mp4").write_bytes(data[: len(data) * 6 // 10])
    _fails_cleanly(run, tmp_path, "video.mp4")
    assert (run / "video.mp4").stat().st_size == len(data) * 6 // 10  # the upload is kept as it came


def test_video_whose_frames_are_gone(synth_run, tmp_path):
    # the header (moov) announces frames but the media data holds none: what a recording whose
    # data was never flushed looks like
    run = _copy_run(synth_run, tmp_path)
    data = bytearray((run / "video.mp4").read_bytes())
    at = data.index(b"mdat") + 4
    size = int.from_bytes(data[at - 8 : at - 4], "big")
    data[at : at - 8 + size] = bytes(size - 8)
    (run / "video.mp4").write_bytes(bytes(data))
    _fails_cleanly(run, tmp_path, "video.mp4")


def test_audio_only_file(synth_run, tmp_path):
    run = _copy_run(synth_run, tmp_path)
    _write_audio(run / "video.mp4")
    _fails_cleanly(run, tmp_path, "no video stream")


def test_gps_log_of_another_day(synth_run, tmp_path):
    import csv

    run = _copy_run(synth_run, tmp_path)
    for name in ("gps.gpx", "gps.nmea"):
        (run / name).unlink(missing_ok=True)
    rows = list(csv.DictReader((run / "gps.csv").open()))
    time_col = next(k for k in rows[0] if "time" in k.lower())
    from datetime import datetime, timedelta

    for r in rows:
        t = datetime.fromisoformat(r[time_col].replace("Z", "+00:00")) + timedelta(days=1)
        r[time_col] = t.isoformat().replace("+00:00", "Z")
    with (run / "gps.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    _fails_cleanly(run, tmp_path, "gps.csv", "not from the time of the video")


def test_camera_json_with_impossible_values(synth_run, tmp_path):
    run = _copy_run(synth_run, tmp_path)
    camera = json.loads((run / "camera.json").read_text())
    camera["mount"]["height_m"] = -1.2
    (run / "camera.json").write_text(json.dumps(camera))
    _fails_cleanly(run, tmp_path, "height")


def test_unwritable_output_folder(synth_run, tmp_path):
    # /proc refuses new folders even to root: as close to a full or read-only disk as a test gets
    done = pavement_cli("process", str(synth_run), "--out", "/proc/pavement-test/out", "--no-detect")
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0 and "cannot write" in done.stderr


def test_a_failed_run_keeps_the_previous_result(synth_run, tmp_path, processed):
    import shutil

    _, good, _ = processed
    out = tmp_path / "out"
    shutil.copytree(good, out)
    run = _copy_run(synth_run, tmp_path)
    (run / "video.mp4").write_bytes(b"not a video")
    done = pavement_cli("process", str(run), "--out", str(out), "--no-detect")
    assert done.returncode == 1
    assert (out / "report.json").read_bytes() == (good / "report.json").read_bytes()
    assert not list(tmp_path.glob(".out.partial-*"))


def test_rut_bursts_from_the_video_start_from_the_vanishing_point_pitch(synth_run, tmp_path):
    """--rut-video: every planned burst is measured (or counted blank) from the pitch the lane lines
    give, and report.json says which; the tiny run is swept coarsely (this checks the wiring)."""
    rut = RutConfig(sweep=RutSweepConfig(grid_m=0.025, x_near_m=3.0, x_far_m=5.0), min_video_width_px=320)
    config = ProcessConfig(
        geotag=GeotagConfig(plan=FramePlanConfig(burst_every_m=60.0)),
        rut=rut,
        rut_video=True,
        detect=False,
        measure_cracks=False,
        privacy=False,
    )
    run_process(synth_run, tmp_path, config)
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    truth = json.loads((synth_run / "truth.json").read_text(encoding="utf-8"))
    mount = report["rut_bursts_camera_mount"]
    assert mount["refined"] and mount["camera_json_pitch_deg"] == 12.0
    assert abs(mount["pitch_deg"] - truth["camera"]["mount"]["pitch_deg"]) < 0.6
    bursts = report["rut_profiles"]["video"] + report["rut_profiles"]["video_blank"]
    assert 2 <= bursts <= 4  # 200 m, one burst every 60 m
    # the tiny run's ~0.13 bit per pixel and frame is below what the bursts were validated at
    assert any("bit per pixel and frame" in w for w in report["warnings"])
