"""``pavement iri`` and ``pavement calibrate-vehicle`` on the small synthetic run."""

import json
import shutil

import numpy as np
import pytest

from pavement.errors import AccelerometerError, ConfigError, InputError
from pipelines.accel_io import AccelLog, read_accel_csv
from pipelines.geotag import run_geotag
from pipelines.iri import VehicleCalibration, run_calibrate_vehicle, run_iri, segment_iri
from tests.conftest import pavement_cli


def _reference_csv(run, path):
    truth = json.loads((run / "truth.json").read_text())["segments"]
    lines = ["kp_km,offset_m,iri_mm_per_m"] + [
        f"{t['kp_km']},{t['offset_m']},{t['iri_mm_per_m']}" for t in truth
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_iri_per_segment_with_uncertainty(synth_run, tmp_path):
    result = run_iri(synth_run, tmp_path)
    features = json.loads(result.segments_geojson.read_text())["features"]
    truth = {
        (t["kp_km"], t["offset_m"]) for t in json.loads((synth_run / "truth.json").read_text())["segments"]
    }
    assert {(f["properties"]["kp_km"], f["properties"]["offset_m"]) for f in features} == truth
    full = [f["properties"] for f in features if not f["properties"]["partial"]]
    assert full and all(p["iri_mm_per_m"] > 0 and p["iri_uncertainty_mm_per_m"] > 0 for p in full)
    assert all(p["calibrated"] is False for p in full)


def test_calibration_needs_two_full_segments(synth_run, tmp_path):
    # The 200 m run has one full segment: too little to calibrate on, and it says so.
    with pytest.raises(InputError, match="at least 2"):
        run_calibrate_vehicle(synth_run, _reference_csv(synth_run, tmp_path / "ref.csv"), tmp_path / "v.json")


@pytest.mark.parametrize(
    ("content", "error"), [("{}", InputError), ('{"gain": 55}', ConfigError), ("x", InputError)]
)
def test_bad_vehicle_file(tmp_path, content, error):
    path = tmp_path / "vehicle.json"
    path.write_text(content)
    with pytest.raises(error):
        VehicleCalibration.read(path)


def test_cli_with_a_calibration(synth_run, tmp_path):
    (tmp_path / "vehicle.json").write_text(VehicleCalibration(1.8, 4).to_json())
    done = pavement_cli(
        "iri", str(synth_run), "--out", str(tmp_path / "o"), "--vehicle", str(tmp_path / "vehicle.json")
    )
    assert done.returncode == 0, done.stderr
    assert "gain 1.800" in done.stdout
    props = [
        f["properties"] for f in json.loads((tmp_path / "o" / "segments.geojson").read_text())["features"]
    ]
    assert any(p["calibrated"] for p in props)


@pytest.fixture(scope="module")
def geotagged(synth_run, tmp_path_factory):
    return run_geotag(synth_run, tmp_path_factory.mktemp("geotag"))


def _full_segment_times(geo) -> tuple[int, float, float]:
    """Index of the run's full segment and the UTC times the car enters and leaves it."""
    i = next(k for k, rs in enumerate(geo.segments) if not rs.segment.partial)
    lo, hi = sorted((geo.segments[i].start_chainage_m, geo.segments[i].end_chainage_m))
    placed = sorted((p for p in geo.frames if p.route is not None), key=lambda p: p.t_unix_s)
    t = np.array([p.t_unix_s for p in placed])
    c = np.array([p.route.chainage_m for p in placed])
    in_seg = t[(c >= lo) & (c < hi)]
    return i, float(in_seg[0]), float(in_seg[-1])


def _without(log: AccelLog, t_from: float, t_to: float) -> AccelLog:
    keep = (log.t_unix_s < t_from) | (log.t_unix_s >= t_to)
    return AccelLog(log.t_unix_s[keep], log.accel_mps2[keep])


def test_a_3_s_gap_is_estimated_around(synth_run, geotagged):
    log = read_accel_csv(synth_run / "accel.csv")
    i, enter, leave = _full_segment_times(geotagged)
    middle = (enter + leave) / 2
    gappy = _without(log, middle - 1.5, middle + 1.5)
    assert len(log.t_unix_s) - len(gappy.t_unix_s) == pytest.approx(300, abs=2)
    whole, cut = segment_iri(geotagged, log)[i], segment_iri(geotagged, gappy)[i]
    assert cut.reason == "" and cut.iri_mm_per_m == pytest.approx(whole.iri_mm_per_m, rel=0.2)
    # Segments away from the gap are untouched.
    others = [k for k in range(len(geotagged.segments)) if k != i]
    for k, (a, b) in enumerate(zip(segment_iri(geotagged, log), segment_iri(geotagged, gappy), strict=True)):
        if k in others and a is not None and a.iri_mm_per_m is not None:
            assert b.iri_mm_per_m == pytest.approx(a.iri_mm_per_m, rel=1e-6)  # rounding only


def test_a_segment_mostly_in_a_gap_is_blank_with_the_reason(synth_run, geotagged, tmp_path):
    log = read_accel_csv(synth_run / "accel.csv")
    i, enter, leave = _full_segment_times(geotagged)
    cut = segment_iri(geotagged, _without(log, enter + 1.0, leave - 1.0))[i]
    assert cut.iri_mm_per_m is None and "gap" in cut.reason
    # Through the stage: the segment is null in segments.geojson, with the reason.
    run = tmp_path / "run"
    shutil.copytree(synth_run, run)
    gappy = _without(log, enter - 2.0, leave + 2.0)
    rows = ["t_unix_s,ax_mps2,ay_mps2,az_mps2"] + [
        f"{t:.3f},{a[0]:.4f},{a[1]:.4f},{a[2]:.4f}"
        for t, a in zip(gappy.t_unix_s, gappy.accel_mps2, strict=True)
    ]
    (run / "accel.csv").write_text("\n".join(rows) + "\n")
    result = run_iri(run, tmp_path / "out")
    props = json.loads(result.segments_geojson.read_text())["features"][i]["properties"]
    assert props["iri_mm_per_m"] is None and props["reason"].startswith("accelerometer log has a gap")


def _run_with_accel(synth_run, tmp_path, rewrite) -> str:
    run = tmp_path / "run"
    shutil.copytree(synth_run, run)
    data = np.loadtxt(synth_run / "accel.csv", delimiter=",", skiprows=1)
    data = rewrite(data)
    rows = ["t_unix_s,ax_mps2,ay_mps2,az_mps2"] + [
        f"{r[0]:.3f},{r[1]:.4f},{r[2]:.4f},{r[3]:.4f}" for r in data
    ]
    (run / "accel.csv").write_text("\n".join(rows) + "\n")
    return str(run)


def _shifted(seconds):
    def rewrite(data):
        data[:, 0] += seconds
        return data

    return rewrite


@pytest.mark.parametrize(
    ("rewrite", "expected"),
    [
        (lambda d: d[::10], ["AccelerometerError: accel.csv is sampled at 10.0 Hz", "at least 50 Hz"]),
        (
            _shifted(9 * 3600.0),
            ["AccelerometerError: the accelerometer log", "never overlaps the video", "+9 h off"],
        ),
        (_shifted(-3 * 86400.0), ["never overlaps the video", "check that it is this run's log"]),
    ],
)
def test_cli_refuses_an_unusable_log_in_one_line(synth_run, tmp_path, rewrite, expected):
    run = _run_with_accel(synth_run, tmp_path, rewrite)
    done = pavement_cli("iri", run, "--out", str(tmp_path / "out"))
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert all(e in lines[0] for e in expected), lines[0]


def test_no_overlap_is_an_accelerometer_error(synth_run, geotagged):
    log = read_accel_csv(synth_run / "accel.csv")
    late = AccelLog(log.t_unix_s + 7200.0, log.accel_mps2)
    with pytest.raises(AccelerometerError, match=r"\+2 h off.*shift t_unix_s by -7200 s"):
        segment_iri(geotagged, late)
