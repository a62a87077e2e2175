"""The rut stage: video bursts (blank with a reason when the video cannot carry it) and depth maps."""

import csv
import json

from tests.conftest import pavement_cli


def test_low_resolution_video_is_blank_with_the_reason(synth_run, tmp_path):
    done = pavement_cli("rut", str(synth_run), "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "needs >= 1280 px" in done.stderr
    feats = json.loads((tmp_path / "segments.geojson").read_text(encoding="utf-8"))["features"]
    assert feats and all(f["properties"]["rut_depth_mm"] is None for f in feats)
    assert all(f["properties"]["reason"] for f in feats)
    rows = list(csv.DictReader((tmp_path / "sections_20m.csv").open(encoding="utf-8")))
    assert rows and all(r["rut_depth_mm"] == "" for r in rows)


def test_depth_maps_give_rut_depths_near_the_truth(synth_depth_run, tmp_path):
    done = pavement_cli("rut", str(synth_depth_run), "--out", str(tmp_path), "--no-video")
    assert done.returncode == 0, done.stderr
    truth = json.loads((synth_depth_run / "truth.json").read_text(encoding="utf-8"))
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert report["profiles"]["depth"] > 0
    measured = [
        f["properties"]
        for f in json.loads((tmp_path / "segments.geojson").read_text(encoding="utf-8"))["features"]
        if f["properties"]["rut_depth_mm"] is not None
    ]
    assert measured
    true_by_key = {(s["kp_km"], s["offset_m"]): s["rut_depth_mm"] for s in truth["segments"]}
    for p in measured:
        assert abs(p["rut_depth_mm"] - true_by_key[(p["kp_km"], p["offset_m"])]) < 5.0


def test_no_video_and_no_depth_is_refused(synth_run, tmp_path):
    done = pavement_cli("rut", str(synth_run), "--out", str(tmp_path), "--no-video")
    assert done.returncode == 1
    assert "give --depth DIR" in done.stderr and "Traceback" not in done.stderr
