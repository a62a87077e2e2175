"""Pitch from the lane lines' vanishing point: lines drawn through a known mount, exact truth."""

import cv2
import numpy as np
import pytest

from pavement.camera import CameraIntrinsics, CameraMount, CameraProfile
from pavement.vanishing_point import (
    horizon_row,
    intersection,
    mount_from_vanishing_point,
    refine_mount,
    road_segments,
)

INTR = CameraIntrinsics.from_fov(640, 360, 70.0)


def _lanes(mount: CameraMount, half_width_m: float = 1.75) -> np.ndarray:
    """A grey road with the two lane edges of a straight lane, seen from ``mount``."""
    image = np.full((360, 640), 90, np.uint8)
    h = CameraProfile(INTR, mount).ground_homography()
    for y in (half_width_m, -half_width_m):
        x = np.linspace(3.0, 60.0, 200)
        p = h @ np.vstack([x, np.full_like(x, y), np.ones_like(x)])
        pts = (p[:2] / p[2]).T.round().astype(np.int32)
        cv2.polylines(image, [pts], False, 230, 3)
    return image


@pytest.mark.parametrize("pitch", [9.5, 13.2])
def test_pitch_is_found_from_the_lane_lines(pitch):
    true = CameraMount(1.35, pitch, roll_deg=0.8)
    nominal = CameraMount(1.35, 12.0, roll_deg=0.8)  # camera.json: right roll, pitch off
    point = intersection(road_segments(_lanes(true), horizon_row(INTR, nominal)), 640)
    assert point is not None
    assert mount_from_vanishing_point(*point, INTR, nominal).pitch_deg == pytest.approx(pitch, abs=0.15)
    found = refine_mount([point] * 6, INTR, nominal)
    assert found.refined and found.mount.pitch_deg == pytest.approx(pitch, abs=0.15)
    assert (found.mount.roll_deg, found.mount.height_m) == (0.8, 1.35)  # kept from camera.json


def test_the_vanishing_point_of_the_true_mount_gives_it_back():
    mount = CameraMount(1.4, 11.0, roll_deg=-1.2, yaw_deg=0.7)
    forward = CameraProfile(INTR, mount).projection_matrix() @ np.array([1.0, 0.0, 0.0, 0.0])
    u, v = forward[:2] / forward[2]
    back = mount_from_vanishing_point(u, v, INTR, CameraMount(1.4, 5.0, roll_deg=-1.2))
    assert (back.pitch_deg, back.yaw_deg) == pytest.approx((11.0, 0.7), abs=1e-3)


def test_no_lines_no_point_and_too_few_frames_keep_camera_json():
    nominal = CameraMount(1.35, 12.0)
    assert intersection(road_segments(np.full((360, 640), 90, np.uint8), 100.0), 640) is None
    kept = refine_mount([(320.0, 100.0)] * 2, INTR, nominal)
    assert not kept.refined and kept.mount == nominal and "camera.json" in kept.reason


def test_frames_that_disagree_keep_camera_json():
    nominal = CameraMount(1.35, 12.0)
    rows = [60.0, 140.0, 40.0, 120.0, 80.0, 150.0]  # pitch spread of several degrees
    kept = refine_mount([(320.0, r) for r in rows], INTR, nominal)
    assert not kept.refined and kept.pitch_spread_deg > 1.0 and "disagree" in kept.reason
