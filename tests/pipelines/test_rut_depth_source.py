"""Rut depth from the depth sensor of a synthetic run: the folder ``pavement synth`` writes with
``depth_every_m``, profiles placed on the route, and their rut depth against truth.json."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from pavement.camera import CameraProfile
from pavement.rut_profile import estimate_rut, section_rut
from pavement.segments import Direction, RoutePosition
from pavement.track import FramePose
from pipelines.rut_depth_source import chainage_of_video_time, profiles_from_depth_folder
from pipelines.synth import depth_frame_indices

EVERY_M = 5.0


@pytest.fixture
def depth_run(synth_depth_run) -> Path:
    """40 m, seed 5, 320x180 at 5 fps, a depth map every 5 m (tests/conftest.py)."""
    return synth_depth_run


def truth_chainage(run: Path):
    frames = json.loads((run / "truth.json").read_text())["frames"]
    t = np.array([f["t_s"] for f in frames])
    c = np.array([f["chainage_m"] for f in frames])
    return lambda video_time_s: (
        float(np.interp(video_time_s, t, c)) if t[0] <= video_time_s <= t[-1] else None
    )


def test_depth_folder_format(depth_run):
    truth = json.loads((depth_run / "truth.json").read_text())
    frames = truth["frames"]
    lines = (depth_run / "depth" / "depth.csv").read_text().splitlines()
    assert lines[0] == "file,video_time_s"
    intr = json.loads((depth_run / "depth" / "intrinsics.json").read_text())
    camera = CameraProfile.from_dict(truth["camera"]).intrinsics.scaled(256, 144)
    assert intr == pytest.approx(
        {k: getattr(camera, k) for k in ("width_px", "height_px", "fx_px", "fy_px", "cx_px", "cy_px")}
    )
    chainages = []
    for line in lines[1:]:
        name, t = line.split(",")
        k = int(name.removeprefix("depth_").removesuffix(".png"))
        assert float(t) == pytest.approx(frames[k]["t_s"], abs=1e-6)  # the video's clock
        chainages.append(frames[k]["chainage_m"])
        mm = cv2.imread(str(depth_run / "depth" / name), cv2.IMREAD_UNCHANGED)
        assert mm.dtype == np.uint16 and mm.shape == (144, 256)
        assert (mm[:10] == 0).all()  # sky: no return
        assert 0 < mm[mm > 0].min() and mm.max() <= 8000 + 60  # no return beyond 8 m (+ noise)
        assert 0.002 < (mm[-40:] == 0).mean() < 0.03  # 1 % dropouts on the road near by
    # The first frame at or past each 5 m of travel (a frame is < 3.4 m of travel at 5 fps).
    travelled = np.array(chainages) - chainages[0]
    marks = EVERY_M * np.arange(len(travelled))
    assert np.all((travelled >= marks - 1e-6) & (travelled < marks + 3.4))


def test_profiles_match_the_true_rut_depth_per_section(depth_run):
    truth = json.loads((depth_run / "truth.json").read_text())
    nominal = CameraProfile.from_dict(json.loads((depth_run / "camera.json").read_text()))
    profiles = profiles_from_depth_folder(depth_run, nominal, truth_chainage(depth_run))
    assert len(profiles) >= 8 and all(p.source == "depth" for p in profiles)
    # Placed at the middle of the 2.5-6 m strip, ahead of the camera (this run drives 下り, +).
    first = profiles[0]
    assert first.chainage_m == pytest.approx(truth["frames"][first.frame_index]["chainage_m"] + 4.25)
    checked = 0
    for sec in truth["sections_20m"]:
        lo, hi = sec["chainage_m"], sec["chainage_m"] + sec["length_m"]
        inside = [estimate_rut(p) for p in profiles if lo <= p.chainage_m < hi]
        assert len(inside) >= 3
        got = section_rut(lo, hi, inside)
        assert got.rut_depth_mm == pytest.approx(sec["rut_depth_mm"], abs=3.0), (got, sec)
        assert got.sigma_mm < 1.5
        # Which wheel path is which: D1 is the outer (left) one, as in truth.json.
        d1, d2 = np.mean([e.d1_mm for e in inside]), np.mean([e.d2_mm for e in inside])
        assert (d1, d2) == pytest.approx((sec["d1_mm"], sec["d2_mm"]), abs=3.0)
        checked += 1
    assert checked >= 1


def test_maps_off_the_route_are_skipped(depth_run):
    nominal = CameraProfile.from_dict(json.loads((depth_run / "camera.json").read_text()))
    on_route = truth_chainage(depth_run)
    late = profiles_from_depth_folder(depth_run, nominal, lambda t: on_route(t) if t > 5.0 else None)
    every = profiles_from_depth_folder(depth_run, nominal, on_route)
    assert 0 < len(late) < len(every)
    assert profiles_from_depth_folder(depth_run, nominal, lambda t: None) == []


@pytest.mark.parametrize(
    ("s_m", "every_m", "frames"),
    [
        ([5.0, 5.0, 5.0], 5.0, [0]),  # standing still: the first frame only
        ([0.0, 2.0, 4.9, 5.0, 7.0, 9.9, 12.0, 16.0], 5.0, [0, 3, 6, 7]),
        ([100.0, 97.0, 94.0, 91.0, 88.0], 5.0, [0, 2, 4]),  # 上り: chainage falls
    ],
)
def test_depth_frames_every_m(s_m, every_m, frames):
    assert depth_frame_indices(np.array(s_m), every_m) == frames


def test_chainage_of_video_time_stays_on_one_route():
    def pose(t, chainage, route_no="3"):
        pos = RoutePosition(route_no, Direction.DOWN, 12.0, chainage - 12000.0, chainage)
        return FramePose(int(t * 10), t, 0.0, 0.0, 0.0, 0.0, 10.0, route=pos)

    frames = [pose(0.0, 12000.0), pose(1.0, 12010.0), pose(2.0, 12020.0), pose(3.0, 500.0, "7")]
    chainage = chainage_of_video_time([*frames, FramePose(99, 1.5, 0, 0, 0, 0, 0)])  # unplaced: ignored
    assert chainage(0.5) == pytest.approx(12005.0) and chainage(2.0) == pytest.approx(12020.0)
    assert chainage(2.5) is None  # between two routes
    assert chainage(-0.1) is None and chainage(3.5) is None
    assert chainage_of_video_time([])(1.0) is None
