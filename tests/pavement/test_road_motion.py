"""Road-plane optical flow: a textured road seen through the camera moves by a known distance."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from pavement.camera import CameraProfile
from pavement.errors import CalibrationError
from pavement.road_motion import (
    RoadMotionMeter,
    ShiftLog,
    TopViewConfig,
    correct_for_pitch,
    pitch_gain,
    solve_pitch,
    top_view,
)
from tests.drives import CAMERA_DICT, _road_texture

RES_M = 0.02


def _frame(cam: CameraProfile, tex: np.ndarray, s_m: float) -> np.ndarray:
    k = cam.intrinsics
    u, v = np.meshgrid(np.arange(k.width_px) + 0.5, np.arange(k.height_px) + 0.5)
    rays = cam.pixel_rays_vehicle(u, v)
    ground = rays[..., 2] < -1e-3
    lam = np.where(ground, cam.mount.height_m / np.maximum(-rays[..., 2], 1e-3), 0)
    mx = ((s_m + 10 + lam * rays[..., 0]) / RES_M).astype(np.float32)
    my = ((4.0 - lam * rays[..., 1]) / RES_M).astype(np.float32)
    img = cv2.remap(tex, mx, my, cv2.INTER_LINEAR, borderValue=90)
    return np.where(ground & (lam * rays[..., 0] < 60), img, 170).astype(np.uint8)


@pytest.mark.parametrize(("step_m", "fps"), [(0.0, 10.0), (0.3, 30.0), (1.1, 10.0), (2.0, 10.0)])
def test_forward_shift_is_measured(step_m, fps):
    cam = CameraProfile.from_dict(CAMERA_DICT)
    tex = _road_texture(60.0, RES_M, seed=1)
    meter = RoadMotionMeter(top_view(cam, fps))
    assert meter.push(_frame(cam, tex, 5.0)) is None
    shifts = [meter.push(_frame(cam, tex, 5.0 + step_m * (i + 1))) for i in range(5)]
    measured = np.array([s.forward_m for s in shifts])
    assert np.all(np.abs(measured - step_m) < 0.03 + 0.03 * step_m)


def test_camera_looking_at_the_sky_is_a_calibration_error():
    d = {
        "intrinsics": {"width_px": 320, "height_px": 180, "hfov_deg": 30.0},
        "mount": {"height_m": 1.3, "pitch_deg": -10.0},
    }  # bottom edge of the image 1.4 deg above level
    with pytest.raises(CalibrationError, match="pitch"):
        top_view(CameraProfile.from_dict(d), 30.0)


@pytest.mark.parametrize("delta_deg", [-2.0, 0.0, 0.7, 3.0])
def test_solve_pitch_recovers_the_pitch_error_from_exact_strip_shifts(delta_deg):
    x = np.array([8.0, 6.5, 5.0, 3.5])
    shifts = 0.4 * pitch_gain(x, np.radians(delta_deg), 1.3)
    assert np.degrees(solve_pitch(x, shifts, np.ones(4), 1.3)) == pytest.approx(delta_deg, abs=1e-9)
    assert np.all(pitch_gain(x, 0.0, 1.3) == 1.0)
    assert np.isnan(solve_pitch(x[:2], shifts[:2], np.ones(2), 1.3))  # 2 strips cannot tell


def test_the_body_pitch_is_measured_and_taken_out_of_the_speed():
    """The same road and steps seen with the body pitched 1.5 deg down, level and 1.5 deg up,
    measured with one camera.json: the whole patch's shift changes by a quarter (it would follow
    every brake and throttle), the strips give the pitch, and the corrected shifts agree."""
    intrinsics = {"width_px": 1280, "height_px": 720, "hfov_deg": 70.0}
    nominal = CameraProfile.from_dict({**CAMERA_DICT, "intrinsics": intrinsics})
    tex = _road_texture(60.0, RES_M, seed=2)
    config = TopViewConfig(pitch_window_s=0.5)
    step_m, n = 0.4, 12
    whole, corrected_median = [], []
    for body_pitch_deg in (1.5, 0.0, -1.5):
        mount = {**CAMERA_DICT["mount"], "pitch_deg": CAMERA_DICT["mount"]["pitch_deg"] + body_pitch_deg}
        true_cam = CameraProfile.from_dict({**CAMERA_DICT, "intrinsics": intrinsics, "mount": mount})
        meter = RoadMotionMeter(top_view(nominal, 30.0, config), config)
        shifts = [meter.push(_frame(true_cam, tex, 5.0 + step_m * i)) for i in range(n)]
        log = ShiftLog(config.bands)
        for shift in shifts:
            log.append(shift)
        corrected = correct_for_pitch(*log.arrays(), np.arange(n) / 30.0, meter.view, 1.3, config)
        assert corrected.measured_share == 1.0
        # camera.json's pitch minus the true one
        assert np.median(corrected.pitch_error_deg) == pytest.approx(-body_pitch_deg, abs=0.3)
        whole.append(np.median([s.forward_m for s in shifts[1:]]))
        corrected_median.append(np.median(corrected.forward_m[1:]))
        assert np.all(np.abs(corrected.forward_m[1:] / corrected_median[-1] - 1) < 0.03)
    assert max(whole) / min(whole) > 1.2
    assert max(corrected_median) / min(corrected_median) < 1.03
    assert corrected_median[1] == pytest.approx(step_m, rel=0.03)
