import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from pavement.crack_ratio import cell_damage_area_m2, crack_ratio, mesh_shape
from pavement.errors import ConfigError


@pytest.mark.parametrize(
    ("cracks", "patch", "pothole", "area"),
    [
        (0, 0.0, False, 0.0),
        (1, 0.0, False, 0.15),
        (2, 0.0, False, 0.25),
        (7, 0.0, False, 0.25),
        (0, 0.24, False, 0.0),
        (0, 0.25, False, 0.125),
        (0, 0.74, False, 0.125),
        (0, 0.75, False, 0.25),
        (1, 0.5, False, 0.15),  # the larger of crack and patching, never more than the cell
        (0, 0.0, True, 0.25),
        (1, 0.3, True, 0.25),
    ],
)
def test_cell_rule(cracks, patch, pothole, area):
    got = cell_damage_area_m2(np.array([cracks]), np.array([patch]), np.array([pothole]))
    assert got[0] == pytest.approx(area)


def test_empty_grid_has_no_ratio():
    r = crack_ratio(np.zeros((0, 7), int))
    assert r.crack_ratio_pct is None and r.coverage_pct == 0.0


def test_nothing_surveyed_has_no_ratio_but_coverage_zero():
    r = crack_ratio(np.ones((4, 7), int), surveyed=np.zeros((4, 7), bool))
    assert r.crack_ratio_pct is None
    assert r.coverage_pct == 0.0


def test_hand_computed_segment():
    # 100 m x 3.5 m lane = 200 x 7 cells = 350 m2. 100 cells with one crack (15 m2),
    # 40 cells with a network (10 m2), 20 fully patched cells (5 m2): 30 m2 / 350 m2 = 8.571 %.
    cracks = np.zeros((200, 7), int)
    patch = np.zeros((200, 7))
    cracks.flat[:100] = 1
    cracks.flat[100:140] = 3
    patch.flat[140:160] = 1.0
    r = crack_ratio(cracks, patch)
    assert r.crack_ratio_pct == pytest.approx(30 / 350 * 100)
    assert r.coverage_pct == 100.0


def test_unsurveyed_cells_leave_both_sums():
    cracks = np.zeros((10, 2), int)
    cracks[:5] = 2  # 10 full cells
    seen = np.ones((10, 2), bool)
    seen[5:] = False  # the clean half was never seen
    r = crack_ratio(cracks, surveyed=seen)
    assert r.crack_ratio_pct == pytest.approx(100.0)
    assert r.coverage_pct == pytest.approx(50.0)


@pytest.mark.parametrize(
    ("length", "width", "shape"), [(100, 3.5, (200, 7)), (0.1, 0.1, (1, 1)), (20, 3.25, (40, 7))]
)
def test_mesh_shape(length, width, shape):
    assert mesh_shape(length, width) == shape


def test_bad_inputs_are_refused():
    with pytest.raises(ConfigError):
        mesh_shape(-1, 3.5)
    with pytest.raises(ConfigError):
        cell_damage_area_m2(np.array([-1]))
    with pytest.raises(ConfigError):
        cell_damage_area_m2(np.array([0]), np.array([1.5]))


@given(
    arrays(np.int64, (6, 7), elements=st.integers(0, 5)),
    arrays(np.float64, (6, 7), elements=st.floats(0, 1)),
    arrays(np.bool_, (6, 7)),
    arrays(np.bool_, (6, 7)),
)
def test_ratio_stays_in_0_100(cracks, patch, pothole, seen):
    r = crack_ratio(cracks, patch, pothole, seen)
    assert 0.0 <= r.coverage_pct <= 100.0
    if r.crack_ratio_pct is not None:
        assert 0.0 <= r.crack_ratio_pct <= 100.0
