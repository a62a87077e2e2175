"""The top-view crack segmenter: thresholds relative to the road's own texture, paint ignored."""

import numpy as np
import pytest

from pavement.crack_segmentation import CrackSegmenterConfig, segment_cracks
from pavement.errors import ConfigError
from pavement.road_view import road_view, warp_road_view
from pavement.top_view_cracks import TopViewSegmenterConfig, segment_top_view
from tests.road_scenes import camera, render_road


@pytest.fixture(scope="module")
def view():
    return road_view(camera())


def test_sound_road_has_no_cracks(view):
    top = warp_road_view(render_road(camera(), [], seed=1), view)
    assert segment_top_view(top, view.valid).sum() == 0
    # a percentile threshold always finds its top pixels, cracks or not
    assert (segment_cracks(top, CrackSegmenterConfig(blackhat_px=11)) > 0).sum() > 0


def test_a_crack_is_found_where_it_is(view):
    top = warp_road_view(render_road(camera(), [((2.5, 0.5), (4.5, 0.6), 0.006)], seed=2), view)
    mask = segment_top_view(top, view.valid) > 0
    rows, cols = np.nonzero(mask)
    assert mask.sum() > 200
    x = view.forward_m(rows)
    y = view.lateral_m(cols)
    assert np.all(np.abs(y - (0.5 + (x - 2.5) * 0.05)) < 0.03)


def test_paint_and_its_edges_are_not_cracks(view):
    top = warp_road_view(render_road(camera(), [], seed=3), view)
    top[:, 60:90] = 230  # a lane line 15 cm wide
    assert segment_top_view(top, view.valid).sum() == 0


def test_outside_the_frame_is_never_a_crack(view):
    top = warp_road_view(render_road(camera(), [((2.0, 0.0), (5.0, 0.0), 0.01)], seed=4), view)
    road = view.valid.copy()
    road[:, 300:] = False
    mask = segment_top_view(top, road)
    assert mask[:, 300:].sum() == 0


def test_bad_input():
    with pytest.raises(ConfigError):
        segment_top_view(np.zeros((10, 10), np.uint8), np.ones((5, 5), bool))
    with pytest.raises(ConfigError):
        TopViewSegmenterConfig(seed_noise=2.0, grow_noise=3.0)
    assert segment_top_view(np.zeros((10, 10), np.uint8), np.zeros((10, 10), bool)).sum() == 0


def test_a_short_dark_blob_is_grain_and_a_line_is_a_crack(view):
    top = warp_road_view(render_road(camera(), [], seed=4), view).copy()
    top[200:212, 300:308] = 40  # 6 x 4 cm: compact, above the area floor, shorter than 15 cm
    top[300:302, 100:400] = 40  # 1 cm x 1.5 m: a crack
    mask = segment_top_view(top, view.valid) > 0
    assert not mask[190:222, 290:318].any()
    assert mask[300:302, 120:380].mean() > 0.9
    assert (
        segment_top_view(top, view.valid, TopViewSegmenterConfig(min_length_px=0))[190:222, 290:318] > 0
    ).any()
