"""``pavement synth`` end to end, at a small size so that it stays fast."""

import csv
import json
import subprocess
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from pavement.camera import CameraProfile
from pavement.errors import ConfigError
from pipelines.synth import SynthConfig
from tests.conftest import pavement_cli

FILES = (
    "video.mp4",
    "gps.gpx",
    "gps.csv",
    "accel.csv",
    "route.geojson",
    "camera.json",
    "truth.json",
    "synth_report.json",
)


def _synth(*args: str) -> subprocess.CompletedProcess:
    return pavement_cli("synth", *args)


@pytest.fixture
def run(synth_run: Path) -> Path:
    return synth_run


def test_writes_every_file(run):
    for name in FILES:
        assert (run / name).stat().st_size > 0, name


def test_video_decodes_with_one_frame_per_truth_frame(run):
    truth = json.loads((run / "truth.json").read_text())
    with av.open(str(run / "video.mp4")) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.width, stream.height) == ("h264", 320, 180)
        creation = container.metadata["creation_time"]
        times = [f.time for f in container.decode(video=0)]
    assert len(times) == len(truth["frames"]) == truth["run"]["n_frames"]
    assert np.allclose(times, [f["t_s"] for f in truth["frames"]], atol=1e-3)
    assert creation.startswith(truth["video_creation_time"][:19]) and creation.endswith("Z")


def test_truth_has_every_field(run):
    truth = json.loads((run / "truth.json").read_text())
    assert truth["seed"] == 7 and 2.0 <= abs(truth["clock_offset_s"]) <= 5.0
    assert truth["lane_width_m"] == 3.5
    assert set(truth["vehicle"]) >= {"k1", "k2", "c", "mu"}
    frame_keys = {
        "frame_index",
        "t_s",
        "lat",
        "lon",
        "heading_deg",
        "speed_mps",
        "route_no",
        "direction",
        "kp_km",
        "offset_m",
        "chainage_m",
    }
    assert all(frame_keys <= set(f) for f in truth["frames"])
    assert truth["frames"][0]["direction"] == "下り" and truth["frames"][0]["kp_km"] == 12
    assert truth["frames"][0]["offset_m"] == pytest.approx(350.0, abs=0.1)
    assert {"kp_km", "offset_m", "length_m", "rut_depth_mm", "d1_mm", "d2_mm"} <= set(
        truth["sections_20m"][0]
    )
    seg_keys = {
        "route_no",
        "direction",
        "kp_km",
        "offset_m",
        "length_m",
        "partial",
        "crack_ratio_pct",
        "rut_depth_mm",
        "rut_depth_max_mm",
        "iri_mm_per_m",
        "pothole_count",
        "category",
    }
    assert truth["segments"] and all(seg_keys <= set(s) for s in truth["segments"])
    assert [s["offset_m"] for s in truth["segments"]] == [300.0, 400.0, 500.0]
    assert (
        {"lat", "lon", "chainage_m", "depth_mm"} <= set(truth["potholes"][0]) if truth["potholes"] else True
    )
    nominal = CameraProfile.from_dict(json.loads((run / "camera.json").read_text()))
    true = CameraProfile.from_dict(truth["camera"])
    assert nominal.mount.pitch_deg == 12.0 and 1.0 <= abs(true.mount.pitch_deg - 12.0) <= 2.0


def test_gps_and_accel_logs(run):
    rows = list(csv.DictReader((run / "gps.csv").open()))
    assert list(rows[0])[:7] == ["time", "lat", "lon", "elevation", "accuracy", "bearing", "speed"]
    assert rows[0]["time"].endswith("Z") and rows[0]["provider"] == "gps"
    gpx = (run / "gps.gpx").read_text()
    assert gpx.count("<trkpt ") == len(rows) and "<hdop>" in gpx and "<trkseg>" in gpx
    acc = np.loadtxt(run / "accel.csv", delimiter=",", skiprows=1)
    assert (run / "accel.csv").open().readline().strip() == "t_unix_s,ax_mps2,ay_mps2,az_mps2"
    assert np.allclose(np.diff(acc[:, 0]), 0.01, atol=0.0011)
    assert 9.0 < np.median(np.linalg.norm(acc[:, 1:], axis=1)) < 10.6


def test_route_ledger(run):
    gj = json.loads((run / "route.geojson").read_text())
    kinds = [f["properties"]["kind"] for f in gj["features"]]
    assert kinds.count("centerline") == 1 and kinds.count("kilometer_post") >= 2
    line = next(f for f in gj["features"] if f["properties"]["kind"] == "centerline")
    assert line["properties"]["route_no"] == "3" and line["geometry"]["type"] == "LineString"
    lon, lat = np.array(line["geometry"]["coordinates"]).T
    assert 40 < lat.min() and lat.max() < 41.6 and 139.8 < lon.min() and lon.max() < 141.7


@pytest.mark.parametrize("args", [["--length-m", "-5"], ["--size", "320"], ["--direction", "sideways"]])
def test_bad_input_prints_one_line_and_exits_1(tmp_path, args):
    done = _synth("--out", str(tmp_path / "r"), *args)
    assert done.returncode == 1
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith("ConfigError:")


def test_unwritable_out_prints_one_line_and_exits_1(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    done = _synth("--out", str(blocker / "run"), "--length-m", "50")
    assert done.returncode == 1
    assert len(done.stderr.strip().splitlines()) == 1 and done.stderr.startswith("ExportError:")


@pytest.mark.parametrize("every_m", [-1.0, 0.2, 5000.0])
def test_depth_every_m_out_of_range(every_m):
    with pytest.raises(ConfigError, match="--depth-every-m"):
        SynthConfig(depth_every_m=every_m)


def test_no_depth_maps_unless_asked(run):
    assert not (run / "depth").exists()
    assert json.loads((run / "synth_report.json").read_text())["n_depth_maps"] == 0


@pytest.mark.parametrize("scale", [0.0, -0.5, 1.5, 0.05])
def test_render_scale_out_of_range(scale):
    with pytest.raises(ConfigError, match="--render-scale"):
        SynthConfig(width_px=320, height_px=180, render_scale=scale)


def test_render_scale_upscales_to_the_video_size_and_leaves_truth_alone(tmp_path):
    from pipelines.synth import run_synth

    def frames(run: Path) -> list[np.ndarray]:
        with av.open(str(run / "video.mp4")) as container:
            return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]

    runs = {}
    for scale in (1.0, 0.5):
        config = SynthConfig(length_m=20, seed=3, fps=2, width_px=320, height_px=180, render_scale=scale)
        runs[scale] = run_synth(tmp_path / f"s{scale}", config).out_dir
    full, half = frames(runs[1.0]), frames(runs[0.5])
    assert len(half) == len(full) and half[0].shape == (180, 320, 3)
    for name in ("truth.json", "camera.json", "gps.csv", "accel.csv", "route.geojson"):
        assert (runs[0.5] / name).read_text() == (runs[1.0] / name).read_text(), name
    report = json.loads((runs[0.5] / "synth_report.json").read_text())
    assert report["render_scale"] == report["config"]["render_scale"] == 0.5
    assert report["render_size_px"] == [160, 90]
    # The same view, only blurrier: at 40 x 22 px the frames agree to a few grey levels.
    for k in (0, len(full) - 1):
        a, b = (cv2.resize(f[k], (40, 22), interpolation=cv2.INTER_AREA).astype(float) for f in (full, half))
        assert np.abs(a - b).mean() < 6.0


def test_without_render_the_logs_and_truth_match_a_rendered_run_and_only_gps_noise_changes(tmp_path):
    """``render=False`` writes the logs and truth of the video a rendered run of the same seed has
    (eval/geotag.py renders a seed once for several GPS error models); a different GPS error model
    changes gps.csv and nothing else."""
    from dataclasses import replace

    from pipelines.synth import run_synth

    config = SynthConfig(length_m=20, seed=3, fps=2, width_px=320, height_px=180)
    rendered = run_synth(tmp_path / "rendered", config).out_dir
    logs = run_synth(tmp_path / "logs", replace(config, render=False)).out_dir
    other_gps = run_synth(tmp_path / "gps", replace(config, render=False, gps_correlation_s=0.0)).out_dir
    assert (rendered / "video.mp4").is_file()
    assert not (logs / "video.mp4").exists()
    for name in ("truth.json", "camera.json", "gps.csv", "accel.csv", "route.geojson"):
        assert (logs / name).read_text() == (rendered / name).read_text(), name
    assert (other_gps / "gps.csv").read_text() != (logs / "gps.csv").read_text()
    for name in ("camera.json", "accel.csv", "route.geojson"):
        assert (other_gps / name).read_text() == (logs / name).read_text(), name
    truth = json.loads((other_gps / "truth.json").read_text())
    assert truth["frames"] == json.loads((logs / "truth.json").read_text())["frames"]
