import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pavement.errors import ConfigError
from pavement.segments import Direction
from pavement.synthetic.route import LEDGER_MARGIN_M, RouteSpec, build_route, run_range_m, segment_spans


@pytest.fixture(scope="module")
def route():
    return build_route(RouteSpec(length_m=500.0), np.random.default_rng(3))


def test_route_lies_in_aomori_and_is_curved(route):
    lat, lon = route.to_latlon(route.x_m[[0, -1]], route.y_m[[0, -1]]).T
    assert np.all((40.0 < lat) & (lat < 41.6)) and np.all((139.8 < lon) & (lon < 141.7))
    assert np.abs(route.curvature_per_m).max() > 1 / 800  # arcs, not a straight line
    assert np.abs(route.curvature_per_m).max() <= 1 / 180 + 1e-12


def test_chainage_is_arc_length_and_monotonic(route):
    seg = np.hypot(np.diff(route.x_m), np.diff(route.y_m))
    assert np.allclose(seg, route.step_m, atol=1e-6)  # s advances exactly with the distance along the line
    s = route.s0_m + np.arange(len(route.x_m)) * route.step_m
    ss, _ = route.to_route(route.x_m, route.y_m, s + 0.3)
    assert np.all(np.diff(ss) > 0)


def test_posts_lie_on_the_line_irregularly_spaced(route):
    chain = np.array([p.chainage_m for p in route.posts])
    assert [p.kp_km for p in route.posts] == list(range(route.posts[0].kp_km, route.posts[-1].kp_km + 1))
    gaps = np.diff(chain)
    assert np.all((gaps >= 960) & (gaps <= 1040)) and not np.allclose(gaps, 1000.0)
    x, y = route.to_plane(chain, np.zeros_like(chain))
    s, t = route.to_route(x, y, chain + 5.0)
    assert np.allclose(s, chain, atol=1e-6) and np.allclose(t, 0.0, atol=1e-6)


def test_ledger_covers_the_run_with_margins(route):
    posts = np.full(20, np.nan)
    for p in route.posts:
        posts[p.kp_km] = p.chainage_m
    start, end = run_range_m(RouteSpec(length_m=500.0), posts)
    assert start == pytest.approx(posts[12] + 350.0)
    assert route.s0_m <= start - LEDGER_MARGIN_M and route.s_end_m >= end + LEDGER_MARGIN_M
    assert route.posts[0].chainage_m <= start and route.posts[-1].chainage_m >= end


def test_upward_run_goes_toward_km_zero():
    spec = RouteSpec(length_m=400.0, direction=Direction.UP)
    route = build_route(spec, np.random.default_rng(1))
    posts = np.full(20, np.nan)
    for p in route.posts:
        posts[p.kp_km] = p.chainage_m
    start, end = run_range_m(spec, posts)
    assert end == pytest.approx(start - 400.0)
    assert route.locate(end, Direction.UP).kp_km == 11  # 12 km + 350 m - 400 m


def test_segments_tile_the_window(route):
    spans = segment_spans(route)
    assert spans[0].s_from_m == route.s0_m and spans[-1].s_to_m == pytest.approx(route.s_end_m)
    for a, b in itertools.pairwise(spans):
        assert a.s_to_m == pytest.approx(b.s_from_m)
    keyed = [sp for sp in spans if sp.post_interval_m is not None]
    assert all(50.0 <= sp.length_m < 150.0 for sp in keyed)
    assert all(sp.offset_m % 100.0 == 0 for sp in keyed)


@settings(max_examples=40, deadline=None)
@given(s=st.floats(0.0, 1.0), t=st.floats(-8.0, 8.0))
def test_route_coordinates_round_trip(route, s, t):
    s_m = route.s0_m + 20.0 + s * (route.s_end_m - route.s0_m - 40.0)
    x, y = route.to_plane(np.array([s_m]), np.array([t]))
    s2, t2 = route.to_route(x, y, np.array([s_m + 3.0]))
    assert s2[0] == pytest.approx(s_m, abs=1e-4) and t2[0] == pytest.approx(t, abs=1e-4)


def test_bad_length_is_refused():
    with pytest.raises(ConfigError):
        build_route(RouteSpec(length_m=-5.0), np.random.default_rng(0))
