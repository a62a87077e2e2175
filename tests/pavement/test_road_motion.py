"""Road-plane optical flow: a textured road seen through the camera moves by a known distance."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from pavement.camera import CameraProfile
from pavement.errors import CalibrationError
from pavement.road_motion import RoadMotionMeter, top_view
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
