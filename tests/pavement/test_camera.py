import math

import numpy as np
import pytest

from pavement.camera import CameraIntrinsics, CameraMount, CameraProfile
from pavement.errors import CalibrationError


def _profile(pitch=10.0, roll=0.0, yaw=0.0, height=1.3) -> CameraProfile:
    return CameraProfile(CameraIntrinsics.from_fov(1280, 720, 70.0), CameraMount(height, pitch, roll, yaw))


def _project(p: np.ndarray, point) -> np.ndarray:
    h = p @ np.append(point, 1.0)
    return h[:2] / h[2]


def test_fov_gives_the_focal_length():
    k = CameraIntrinsics.from_fov(1280, 720, 90.0)
    assert k.fx_px == pytest.approx(640.0)
    assert k.hfov_deg == pytest.approx(90.0)


def test_optical_axis_meets_the_road_at_height_over_tan_pitch():
    p = _profile(pitch=10.0)
    distance = 1.3 / math.tan(math.radians(10.0))
    assert _project(p.ground_homography(), [distance, 0.0]) == pytest.approx([640.0, 360.0], abs=1e-6)


def test_left_is_left_and_far_is_up():
    p = _profile().projection_matrix()
    near, far = _project(p, [5, 0, 0]), _project(p, [20, 0, 0])
    left = _project(p, [10, 2, 0])
    assert far[1] < near[1]  # farther ground points are higher in the image
    assert left[0] < 640  # points to the left of the car are left of centre


def test_positive_roll_raises_the_horizon_on_the_right():
    p = _profile(roll=5.0).projection_matrix()
    left, right = _project(p, [1000, 30, 1.3]), _project(p, [1000, -30, 1.3])
    assert right[1] < left[1]


def test_positive_yaw_looks_left():
    p = _profile(yaw=5.0).projection_matrix()
    assert _project(p, [20, 0, 0])[0] > 640  # straight ahead now appears right of centre


def test_rays_hit_the_ground_where_the_homography_says():
    p = _profile(pitch=12.0, roll=1.5, yaw=-2.0)
    u, v = np.array([300.0, 900.0]), np.array([600.0, 500.0])
    rays = p.pixel_rays_vehicle(u, v)
    origin = p.mount.position_vehicle
    ground = origin + rays * (-origin[2] / rays[:, 2:3])
    h = p.ground_homography()
    for (x, y, _), uu, vv in zip(ground, u, v, strict=True):
        assert _project(h, [x, y]) == pytest.approx([uu, vv], abs=1e-6)


def test_json_round_trip_and_fov_form():
    p = _profile()
    assert CameraProfile.from_dict(p.to_dict()) == p
    q = CameraProfile.from_dict(
        {
            "intrinsics": {"width_px": 1280, "height_px": 720, "hfov_deg": 70.0},
            "mount": {"height_m": 1.3, "pitch_deg": 10},
        }
    )
    assert q == p


@pytest.mark.parametrize(
    "bad",
    [
        {"intrinsics": {"width_px": 1280}, "mount": {"height_m": 1.3, "pitch_deg": 10}},
        {
            "intrinsics": {"width_px": 1280, "height_px": 720, "hfov_deg": 70},
            "mount": {"height_m": 13, "pitch_deg": 10},
        },
        {"mount": {"height_m": 1.3, "pitch_deg": 10}},
    ],
)
def test_bad_profiles_are_refused(bad):
    with pytest.raises(CalibrationError):
        CameraProfile.from_dict(bad)


def test_scaled_intrinsics_keep_the_field_of_view():
    k = CameraIntrinsics.from_fov(1920, 1080, 65.0).scaled(640, 360)
    assert k.hfov_deg == pytest.approx(65.0)
    assert (k.cx_px, k.cy_px) == (320.0, 180.0)
