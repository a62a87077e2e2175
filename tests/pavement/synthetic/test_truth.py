import numpy as np
import pytest

from pavement.diagnosis import Category
from pavement.segments import Direction
from pavement.synthetic.route import RouteSpec, build_route, run_range_m
from pavement.synthetic.scene import Crack, CrackKind, Patch, Pothole, build_scene
from pavement.synthetic.truth import (
    crack_tally,
    section_truth,
    segment_truths,
    transverse_profile,
    wheel_path_iri,
)

from .helpers import flat_scene, straight_route


def _crack(kind, pts, width_mm=4.0):
    return Crack(kind, np.array(pts, float), width_mm)


def test_crack_ratio_of_a_hand_made_scene_follows_the_mesh_rule():
    # Lane of the 下り traffic: t in [0, 3.5]; across-index j counts from its left edge (t = 3.5).
    cracks = (
        _crack(CrackKind.TRANSVERSE, [[12002.25, 0.1], [12002.25, 3.4]]),  # row 4, all 7 cells: 7 x 0.15
        _crack(CrackKind.LONGITUDINAL, [[12005.1, 1.25], [12006.9, 1.25]], 3.0),  # rows 10-13, cell j = 4
        _crack(CrackKind.TRANSVERSE, [[12006.25, 1.05], [12006.25, 1.4]], 2.0),  # row 12, j = 4: now 2 cracks
    )
    patches = (
        Patch(12008.5, 2.75, 1.0, 0.5, 0.0, 0.0, 0.7),  # rows 16-17, j = 1, whole cells: 2 x 0.25
        Patch(12000.25, 0.125, 0.5, 0.25, 0.0, 0.0, 0.7),  # row 0, j = 6, half a cell: 0.125
    )
    potholes = (Pothole(12004.25, 1.75, 0.1, 1.0, 0.0, 40.0),)  # row 8, j = 3: a full cell
    scene = flat_scene(straight_route(), cracks=cracks, potholes=potholes, patches=patches)
    tally = crack_tally(scene, 12000.0, 12010.0)
    assert tally.mesh.shape == (20, 7)
    counts = tally.crack_count.reshape(20, 7)
    assert counts[4].tolist() == [1] * 7
    assert counts[:, 4].tolist()[10:14] == [1, 1, 2, 1]
    by_hand_m2 = 7 * 0.15 + 3 * 0.15 + 0.25 + 2 * 0.25 + 0.125 + 0.25
    assert tally.ratio().crack_ratio_pct == pytest.approx(100 * by_hand_m2 / (140 * 0.25))


@pytest.mark.parametrize("crossfall", [0.0, 0.02])
@pytest.mark.parametrize("rut_mm", [0.0, 12.0, 30.0, 48.0])
def test_rut_profile_has_the_depth_the_scene_says(rut_mm, crossfall):
    scene = flat_scene(straight_route(), rut_mm=rut_mm, crossfall=crossfall)
    u, _z = transverse_profile(scene, 12030.0)
    assert u[0] == 0.0 and u[-1] == pytest.approx(3.5) and np.allclose(np.diff(u), 0.01)
    sec = section_truth(scene, 12020.0, 12040.0, 12.0, 20.0)
    assert sec.rut_depth_mm == pytest.approx(rut_mm, abs=1e-6)
    assert sec.d1_mm == pytest.approx(rut_mm, abs=1e-6) and sec.d2_mm == pytest.approx(rut_mm, abs=1e-6)


def test_flat_road_has_zero_iri():
    scene = flat_scene(straight_route(), rut_mm=20.0, crossfall=0.02)
    _, left, right = wheel_path_iri(scene, 12100.0, 12300.0)
    assert np.abs(left).max() < 1e-9 and np.abs(right).max() < 1e-9


@pytest.fixture(scope="module")
def generated():
    spec = RouteSpec(length_m=500.0)
    rng = np.random.default_rng(11)
    route = build_route(spec, rng)
    posts = np.full(20, np.nan)
    for p in route.posts:
        posts[p.kp_km] = p.chainage_m
    a, b = run_range_m(spec, posts)
    return build_scene(route, a, b, Direction.DOWN, rng, 11), a, b


def test_profile_height_on_a_grid_equals_at_points(generated):
    scene, a, _ = generated
    s = np.linspace(a, a + 30.0, 301)
    t = np.linspace(-5.0, 5.0, 201)
    grid = scene.profile_height(s[None, :], t[:, None])
    ss, tt = np.meshgrid(s, t)
    assert np.allclose(grid, scene.profile_height(ss, tt), atol=1e-12)


def test_a_500_m_run_spans_all_three_crack_categories_and_a_rut_range(generated):
    scene, a, b = generated
    segments, sections = segment_truths(scene, a, b, Direction.DOWN)
    full = [s for s in segments if not s.partial]
    bands = {Category.I: (0, 20), Category.II: (20, 40), Category.III: (40, 101)}
    seen = {c for s in full for c, (lo, hi) in bands.items() if lo <= s.crack_ratio_pct < hi}
    assert seen == set(bands)
    ruts = [s.rut_depth_mm for s in sections]
    assert min(ruts) < 15 and max(ruts) > 40 and max(ruts) <= 52
    assert all(0 <= s.iri_mm_per_m < 20 for s in full)
    assert all(s.category is not None for s in full)
    assert [s.offset_m for s in segments] == sorted(s.offset_m for s in segments)


def test_same_seed_same_scene(generated):
    scene, a, b = generated
    spec = RouteSpec(length_m=500.0)
    rng = np.random.default_rng(11)
    route = build_route(spec, rng)
    again = build_scene(route, a, b, Direction.DOWN, rng, 11)
    assert len(again.cracks) == len(scene.cracks)
    assert all(
        np.array_equal(c.st_m, d.st_m) for c, d in zip(again.cracks[::97], scene.cracks[::97], strict=True)
    )
    assert [p.depth_mm for p in again.potholes] == [p.depth_mm for p in scene.potholes]


def test_clean_road_is_the_same_road_without_surface_damage(generated):
    scene, a, b = generated
    rng = np.random.default_rng(11)
    route = build_route(RouteSpec(length_m=500.0), rng)
    clean = build_scene(route, a, b, Direction.DOWN, rng, 11, surface_damage=False)
    assert clean.cracks == () and clean.potholes == () and clean.patches == ()
    assert len(scene.cracks) > 0
    # Everything else is drawn the same: ruts, roughness, roadside.
    assert np.array_equal(clean.ruts.depth_mm, scene.ruts.depth_mm)
    assert np.array_equal(clean.roughness.left_m, scene.roughness.left_m)
    assert len(clean.trees) == len(scene.trees)
