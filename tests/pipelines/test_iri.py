"""``pavement iri`` and ``pavement calibrate-vehicle`` on the small synthetic run."""

import json

import pytest

from pavement.errors import ConfigError, InputError
from pipelines.iri import VehicleCalibration, run_calibrate_vehicle, run_iri
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
