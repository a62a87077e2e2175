"""The crack stage on a tiny synthetic run, the streaming accumulator, and loose-image masks."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from pavement.camera import CameraProfile
from pavement.errors import ConfigError, InputError
from pavement.frame_plan import FramePlanConfig
from pavement.vanishing_point import VanishingConfig
from pipelines.cracks import CrackAccumulator, CrackConfig, run_cracks, run_segment_cracks
from pipelines.geotag import GeotagConfig
from tests.conftest import pavement_cli


@pytest.fixture(scope="module")
def cracks_out(synth_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("cracks") / "OUT"
    done = pavement_cli("cracks", str(synth_run), "--out", str(out))
    assert done.returncode == 0, done.stderr
    return out


def test_segments_carry_their_keys_and_crack_fields(cracks_out, synth_run):
    feats = json.loads((cracks_out / "segments.geojson").read_text(encoding="utf-8"))["features"]
    geotag = json.loads((cracks_out / "geotag" / "segments.geojson").read_text(encoding="utf-8"))["features"]
    assert [f["properties"]["offset_m"] for f in feats] == [f["properties"]["offset_m"] for f in geotag]
    for f in feats:
        p = f["properties"]
        assert {"route_no", "direction", "kp_km", "offset_m", "length_m", "partial"} <= p.keys()
        assert 0.0 <= p["coverage_pct"] <= 100.0 and 0.0 <= p["confidence"] <= 1.0
        assert p["crack_ratio_pct"] is None or 0.0 <= p["crack_ratio_pct"] <= 100.0
    full = [f["properties"] for f in feats if not f["properties"]["partial"]]
    assert full and all(p["coverage_pct"] > 30.0 and p["crack_ratio_pct"] is not None for p in full)


def test_halving_the_frame_spacing_changes_the_ratio_by_less_than_2_points(cracks_out, synth_run, tmp_path):
    # cracks_out analysed a frame every 5 m (the default: about half of each segment seen); 2.5 m
    # sees all of it. Each cell is decided once, from the mean of its views: the denser cadence
    # adds cells and views, not double counts.
    spacing = FramePlanConfig().spacing_m
    config = CrackConfig(geotag=GeotagConfig(plan=FramePlanConfig(spacing_m=spacing / 2)))
    half = run_cracks(synth_run, tmp_path, config)
    default = json.loads((cracks_out / "segments.geojson").read_text(encoding="utf-8"))["features"]
    pairs = [
        (f["properties"], s)
        for f, s in zip(default, half.segments, strict=True)
        if not f["properties"]["partial"]
    ]
    assert pairs
    for p, s in pairs:
        assert s.coverage_pct > p["coverage_pct"] + 20.0
        assert abs(s.crack_ratio_pct - p["crack_ratio_pct"]) < 2.0


def test_report_says_what_was_measured(cracks_out, synth_run):
    report = json.loads((cracks_out / "report.json").read_text(encoding="utf-8"))
    assert report["stage"] == "cracks" and report["frames"] > 10
    assert report["top_view"]["metres_per_px"] == 0.005
    mount = report["camera_mount"]
    truth = json.loads((synth_run / "truth.json").read_text(encoding="utf-8"))
    # camera.json says 12.0 deg; the run's true mount is 1-2 deg off: the lane lines find it
    assert mount["camera_json_pitch_deg"] == 12.0
    assert mount["refined"] is True and mount["vanishing_point_frames"] >= 5
    assert mount["pitch_deg"] == pytest.approx(truth["camera"]["mount"]["pitch_deg"], abs=0.3)


def test_accumulator_keeps_a_few_numbers_per_frame(synth_run, tmp_path):
    camera = CameraProfile.from_dict(json.loads((synth_run / "camera.json").read_text(encoding="utf-8")))
    no_refinement = CrackConfig(vanishing=VanishingConfig(frames=0))  # camera.json's mount
    acc = CrackAccumulator(camera, (320, 180), no_refinement)
    acc.push(0, np.full((180, 320, 3), 100, np.uint8))
    cells = acc.frames[-1]
    assert cells.crack_count.size <= 100 and not cells.seen.any()  # a flat grey frame: rejected
    assert acc.rejected == {"blur": 1}
    with pytest.raises(ConfigError):
        acc.push(1, np.zeros((720, 1280, 3), np.uint8))


def test_first_frames_wait_for_the_refined_pitch(synth_run):
    camera = CameraProfile.from_dict(json.loads((synth_run / "camera.json").read_text(encoding="utf-8")))
    acc = CrackAccumulator(camera, (320, 180), CrackConfig(vanishing=VanishingConfig(frames=3)))
    for i in range(2):
        acc.push(i, np.full((180, 320, 3), 100, np.uint8))
    assert acc.refinement is None and acc.frames == []  # waiting for the third
    acc.push(2, np.full((180, 320, 3), 100, np.uint8))
    # flat grey frames show no lane lines: camera.json's mount, with the reason, and all 3 frames in
    assert acc.refinement.refined is False and "camera.json" in acc.refinement.reason
    assert [c.frame_index for c in acc.frames] == [0, 1, 2]


def test_a_segmenter_drops_in(synth_run, tmp_path):
    calls = []

    def everything_is_a_crack(image):
        calls.append(image.shape)
        return np.full(image.shape[:2], 255, np.uint8)

    result = run_cracks(synth_run, tmp_path, segmenter=everything_is_a_crack)
    assert calls
    measured = [s for s in result.segments if s.crack_ratio_pct is not None]
    assert measured and all(s.crack_ratio_pct == pytest.approx(60.0) for s in measured)  # 0.15 / 0.25


def test_run_without_camera_is_refused(synth_run, tmp_path):
    run = tmp_path / "RUN"
    run.mkdir()
    for name in ("video.mp4", "gps.csv"):
        (run / name).symlink_to(synth_run / name)
    with pytest.raises(InputError, match=r"camera\.json"):
        run_cracks(run, tmp_path / "out")


def line_images(folder: Path) -> tuple[Path, np.ndarray]:
    """``folder/images/a.jpg``: grey 160 x 120 with a dark 2 px crack across rows 60-70."""
    images = folder / "images"
    images.mkdir()
    img = np.full((120, 160, 3), 120, np.uint8)
    cv2.line(img, (10, 60), (150, 70), (30, 30, 30), 2)
    cv2.imwrite(str(images / "a.jpg"), img)
    return images, img


def test_segment_cracks_writes_one_mask_per_image(tmp_path):
    images, img = line_images(tmp_path)
    cv2.imwrite(str(images / "b.png"), img[:100, :90])
    (images / "broken.jpg").write_bytes(b"not an image")
    done = pavement_cli("segment-cracks", str(images), "--out", str(tmp_path / "masks"))
    assert done.returncode == 0, done.stderr
    assert "broken.jpg" in done.stderr
    a = cv2.imread(str(tmp_path / "masks" / "a.png"), cv2.IMREAD_UNCHANGED)
    b = cv2.imread(str(tmp_path / "masks" / "b.png"), cv2.IMREAD_UNCHANGED)
    assert a.shape == (120, 160) and b.shape == (100, 90)
    assert set(np.unique(a)) <= {0, 255} and a[55:75].max() == 255


def test_segment_cracks_classical_option(tmp_path):
    images, _ = line_images(tmp_path)
    done = pavement_cli("segment-cracks", str(images), "--out", str(tmp_path / "m"), "--classical")
    assert done.returncode == 0, done.stderr
    assert cv2.imread(str(tmp_path / "m" / "a.png"), cv2.IMREAD_UNCHANGED)[55:75].max() == 255
    missing = pavement_cli("segment-cracks", str(images), "--model", str(tmp_path / "none.onnx"))
    assert missing.returncode == 1 and "ModelError" in missing.stderr


def test_segment_cracks_needs_images(tmp_path):
    with pytest.raises(InputError):
        run_segment_cracks(tmp_path, tmp_path / "masks")
