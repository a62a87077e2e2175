"""The rut stage: video bursts (blank with a reason when the video cannot carry it) and depth maps."""

import csv
import json

import cv2
import numpy as np
import pytest

from pavement.camera import CameraIntrinsics, CameraMount, CameraProfile
from pavement.rut_video import RutSweepConfig
from pavement.vanishing_point import VanishingConfig
from pipelines.rut import BurstMeter, RutConfig, video_warnings
from pipelines.video_motion import probe_video
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


def _lane_lines(camera: CameraProfile) -> np.ndarray:
    """Grey road with the lane's two edge lines and the next lanes' as the camera sees them."""
    k, h = camera.intrinsics, camera.ground_homography()
    grey = np.full((k.height_px, k.width_px), 90, np.uint8)
    for y in (-5.25, -1.75, 1.75, 5.25):
        ends = [h @ [x, y, 1.0] for x in (3.0, 60.0)]
        cv2.line(grey, *[(round(e[0] / e[2]), round(e[1] / e[2])) for e in ends], 230, 3)
    return grey


def test_burst_meter_waits_for_the_pitch_then_measures_every_burst_in_order():
    true = CameraProfile(CameraIntrinsics.from_fov(480, 270, 70.0), CameraMount(1.35, 10.5, 0.0))
    nominal = CameraProfile(true.intrinsics, CameraMount(1.35, 12.0, 0.0))  # camera.json: 1.5 deg off
    config = RutConfig(  # a coarse sweep: this is about the order and the pitch, not the profiles
        sweep=RutSweepConfig(grid_m=0.025, x_near_m=3.0, x_far_m=5.0), vanishing=VanishingConfig(frames=6)
    )
    meter = BurstMeter(nominal, config)
    burst, travel = [_lane_lines(true)] * 3, [0.0, 0.35, 0.7]
    assert meter.push(burst, travel, 10.0, 0) == []  # 3 of the 6 frames the pitch needs: it waits
    first_two = meter.push(burst, travel, 30.0, 60)
    assert len(first_two) == 2 and meter.refinement.refined
    assert meter.refinement.mount.pitch_deg == pytest.approx(10.5, abs=0.3)
    assert len(meter.push(burst, travel, 50.0, 120)) == 1 and meter.finish() == []
    # A lane without lines keeps camera.json's pitch, says why, and still measures what waited.
    plain = BurstMeter(nominal, config)
    assert plain.push([np.full((270, 480), 90, np.uint8)] * 3, travel, 10.0, 0) == []
    assert len(plain.finish()) == 1 and not plain.refinement.refined
    assert plain.refinement.mount.pitch_deg == 12.0 and "lane lines" in plain.refinement.reason


def test_a_video_too_narrow_or_too_compressed_for_rut_bursts_says_so(synth_run):
    video = synth_run / "video.mp4"
    info = probe_video(video)  # 320x180, 10 fps, ~0.13 bit per pixel and frame
    bits = video.stat().st_size * 8 / (info.duration_s * info.fps * info.width_px * info.height_px)
    narrow = video_warnings(video, info, RutConfig())
    assert len(narrow) == 1 and "needs >= 1280 px" in narrow[0]
    low = video_warnings(video, info, RutConfig(min_video_width_px=320, min_bits_per_px=bits * 1.1))
    assert len(low) == 1 and f"({bits:.2f} bit per pixel and frame)" in low[0]
    assert video_warnings(video, info, RutConfig(min_video_width_px=320, min_bits_per_px=bits * 0.9)) == []
