"""``pavement process`` end to end on a small synthetic run."""

import json

import openpyxl
import pytest

from pipelines.process import ProcessConfig, run_process
from tests.conftest import pavement_cli

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
    assert all(r["ひび割れ率(%)"] is None and r["診断区分"] is None for r in rows)  # not measured yet
    assert all(str(r["路線番号"]) == result.segments[0].key.route_no for r in rows)


def test_iri_is_estimated_for_full_segments(processed):
    result, _, _ = processed
    full = [s for s in result.segments if not s.partial]
    assert full and all(s.metrics.iri_mm_per_m is not None and s.metrics.iri_mm_per_m > 0 for s in full)


def test_report_names_what_is_not_measured(processed):
    _, out, _ = processed
    report = json.loads((out / "report.json").read_text())
    assert report["planned_frames"] > 0 and report["model"] == "damage_yolo.onnx"
    assert any("ひび割れ率" in w for w in report["warnings"])


def test_missing_run_folder_is_one_line_and_exit_1(tmp_path):
    done = pavement_cli("process", str(tmp_path / "nope"), "--out", str(tmp_path / "o"))
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0 and "does not exist" in done.stderr
