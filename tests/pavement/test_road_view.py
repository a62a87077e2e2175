"""Rectified top view: known lines drawn on the road plane land where they are, at 5 mm/px."""

import numpy as np
import pytest

from pavement.crack_mesh import frame_cells
from pavement.errors import CalibrationError, ConfigError
from pavement.road_view import RoadViewConfig, road_view, warp_road_view
from pavement.top_view_cracks import segment_top_view
from tests.road_scenes import camera, render_road


def test_line_on_the_road_lands_on_its_rows_and_columns():
    cam = camera()
    view = road_view(cam, RoadViewConfig(near_m=2.5, far_m=5.0))
    # a transverse line 3.25 m ahead from y = +1 to -1, and a longitudinal one at y = +0.25
    frame = render_road(cam, [((3.25, 1.0), (3.25, -1.0), 0.01), ((2.6, 0.25), (4.9, 0.25), 0.01)])
    top = warp_road_view(frame, view)
    assert top.shape == view.shape == (500, 700)
    dark = top < 80
    row = round((5.0 - 3.25) / 0.005)  # 350
    cols = np.flatnonzero(dark[row - 3 : row + 4].any(axis=0))
    # y = +1 .. -1 -> columns (1.75 - y) / 0.005 = 150 .. 550
    assert 145 <= cols.min() <= 155 and 545 <= cols.max() <= 555
    col = round((1.75 - 0.25) / 0.005)  # 300
    rows = np.flatnonzero(dark[:, col - 3 : col + 4].any(axis=1))
    assert rows.min() <= round((5.0 - 4.9) / 0.005) + 5 and rows.max() >= round((5.0 - 2.6) / 0.005) - 5


def test_line_on_the_road_lands_in_the_right_cells():
    cam = camera()
    view = road_view(cam, RoadViewConfig(near_m=2.5, far_m=5.0))
    # a 5 mm crack across the lane 3.25 m ahead, from 1 m left to 1 m right of the centre line
    frame = render_road(cam, [((3.25, 1.0), (3.25, -1.0), 0.005)])
    top = warp_road_view(frame, view)
    cells = frame_cells(0, segment_top_view(top, view.valid), view)
    # rows 4.0-2.5 m (none beyond max_distance_m, the view above is context), 7 columns across 3.5 m
    assert cells.crack_count.shape == (3, 7)
    expected = np.zeros((3, 7), int)
    expected[1, 1:6] = 1  # the row 3.5-3.0 m; columns 1.25..0.75 .. -0.75..-1.25 m
    assert np.array_equal(cells.crack_count, expected)
    assert cells.seen.all()
    assert cells.forward_m == pytest.approx([3.75, 3.25, 2.75])
    assert cells.lateral_m == pytest.approx([1.5, 1.0, 0.5, 0.0, -0.5, -1.0, -1.5])


def test_near_edge_moves_out_to_the_nearest_visible_road():
    view = road_view(camera(pitch=8.0), RoadViewConfig(near_m=1.0, far_m=6.0))
    # bottom ray: 8 + 21.5 deg down from 1.35 m -> about 2.4 m ahead
    assert 2.2 < view.near_m < 2.6
    assert view.valid[-1].all()


def test_pixels_and_metres_agree():
    view = road_view(camera())
    col, row = view.to_pixels(np.array([3.0]), np.array([0.5]))
    assert view.forward_m(row - 0.5)[0] == pytest.approx(3.0)
    assert view.lateral_m(col - 0.5)[0] == pytest.approx(0.5)


def test_lens_distortion_goes_through_a_remap_table():
    plain = road_view(camera())
    bent = road_view(camera(distortion=(-0.05, 0.0, 0.0, 0.0, 0.0)))
    assert plain.maps is None and bent.maps is not None
    frame = render_road(camera(), [])
    assert warp_road_view(frame, bent).shape == plain.shape


def test_frame_sampling_of_the_view():
    # 3 m ahead of a 720p, 70 deg camera (fx ~914 px) 1.35 m up: a 5 mm step across the road is
    # ~914 x 0.005 / 3.3 (slant range) ~ 1.4 frame pixels; along it, foreshortened, ~0.6
    view = road_view(camera())
    row = float(view.to_pixels(np.array([3.0]), np.array([0.0]))[1][0])
    across, along = view.frame_px_per_view_px(row)
    assert 1.2 < across < 1.6 and 0.4 < along < 0.8
    tiny = road_view(camera(distortion=(1e-9, 0.0, 0.0, 0.0, 0.0)))  # the remap-table path
    assert tiny.frame_px_per_view_px(row) == pytest.approx((across, along), rel=0.02)


@pytest.mark.parametrize(
    ("pitch", "config"),
    [
        (-9.0, RoadViewConfig()),  # looking up: the road is not at the bottom of the image
        (12.0, RoadViewConfig(near_m=2.0, far_m=2.5)),  # nearest road ~2 m: less than 1 m of view
    ],
)
def test_a_camera_that_cannot_see_the_patch_is_refused(pitch, config):
    with pytest.raises(CalibrationError):
        road_view(camera(pitch=pitch), config)


@pytest.mark.parametrize("kwargs", [{"metres_per_px": 0.0}, {"near_m": 5.0, "far_m": 4.0}, {"width_m": -1.0}])
def test_bad_view_config(kwargs):
    with pytest.raises(ConfigError):
        RoadViewConfig(**kwargs)
