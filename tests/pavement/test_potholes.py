import numpy as np
import pytest

from pavement.camera import CameraIntrinsics, CameraMount, CameraProfile
from pavement.potholes import PotholeSighting, box_ground_points, merge_sightings, place_on_plane

CAMERA = CameraProfile(CameraIntrinsics.from_fov(1280, 720, 70.0), CameraMount(1.35, 12.0))


def _box_around(ground_xy, half_m=0.3):
    """Pixel box of a flat square of side 2 * half_m centred at ground_xy (forward, left)."""
    h = CAMERA.ground_homography()
    x, y = ground_xy
    corners = np.array([[x + dx, y + dy, 1] for dx in (-half_m, half_m) for dy in (-half_m, half_m)]).T
    uv = h @ corners
    uv = uv[:2] / uv[2]
    return [uv[0].min(), uv[1].min(), uv[0].max(), uv[1].max()]


@pytest.mark.parametrize("ground", [(6.0, 0.0), (9.0, 1.2), (14.0, -1.5)])
def test_box_centre_lands_near_the_hole(ground):
    got = box_ground_points(np.array([_box_around(ground)]), CAMERA)[0]
    assert got == pytest.approx(ground, abs=0.05 * ground[0] / 6)


def test_box_above_the_horizon_has_no_ground_point():
    assert np.isnan(box_ground_points(np.array([[600, 10, 680, 40]]), CAMERA)).all()


@pytest.mark.parametrize(
    ("heading", "expected"), [(0, (100 - 1, 210)), (90, (110, 200 + 1)), (180, (100 + 1, 190))]
)
def test_place_on_plane(heading, expected):
    # 10 m ahead, 1 m left of a car at (100, 200)
    assert place_on_plane(np.array([[10.0, 1.0]]), 100.0, 200.0, heading)[0] == pytest.approx(expected)


def test_sightings_of_one_hole_merge_and_two_holes_stay_apart():
    rng = np.random.default_rng(0)
    sightings = [
        PotholeSighting(i, 0.5 + 0.05 * i, 10 + rng.normal(0, 0.3), 20 + rng.normal(0, 0.3), 15 - 3 * i)
        for i in range(5)
    ] + [PotholeSighting(9, 0.7, 14.0, 20.0, 8.0)]
    holes = merge_sightings(sightings)
    assert len(holes) == 2
    first = min(holes, key=lambda h: h.x_m)
    assert first.n_sightings == 5 and first.best_frame_index == 4
    assert (first.x_m, first.y_m) == pytest.approx((10, 20), abs=0.4)
    assert merge_sightings([]) == []
