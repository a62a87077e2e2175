import numpy as np
import pytest

from pavement.errors import ConfigError
from pavement.rutting import rut_depth


def _lane(d1_mm: float, d2_mm: float, crown_mm: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """A 3.5 m lane with two Gaussian wheel-path ruts at 0.85 m and 2.65 m (sigma 0.2 m)."""
    x = np.linspace(0, 3.5, 351)
    z = crown_mm * (1 - ((x - 1.75) / 1.75) ** 2)
    z -= d1_mm * np.exp(-0.5 * ((x - 0.85) / 0.2) ** 2)
    z -= d2_mm * np.exp(-0.5 * ((x - 2.65) / 0.2) ** 2)
    return x, z


@pytest.mark.parametrize(("d1", "d2"), [(0.0, 0.0), (10.0, 25.0), (42.0, 7.0), (30.0, 30.0)])
def test_gaussian_ruts_on_a_flat_lane(d1, d2):
    r = rut_depth(*_lane(d1, d2))
    assert r.d1_mm == pytest.approx(d1, abs=0.1)
    assert r.d2_mm == pytest.approx(d2, abs=0.1)
    assert r.depth_mm == pytest.approx(max(d1, d2), abs=0.1)


def test_depth_is_measured_below_the_crest_line_not_a_level():
    # A cross-fall of 2 % tilts the lane by 70 mm; the rut depth must not change.
    x, z = _lane(15.0, 20.0, crown_mm=10.0)
    level = rut_depth(x, z)
    tilted = rut_depth(x, z + 20.0 * x)
    assert tilted.d1_mm == pytest.approx(level.d1_mm, abs=1e-6)
    assert tilted.d2_mm == pytest.approx(level.d2_mm, abs=1e-6)


def test_a_crowned_lane_is_not_a_rut():
    x, z = _lane(0.0, 0.0, crown_mm=30.0)
    assert rut_depth(x, z).depth_mm == pytest.approx(0.0, abs=0.01)


def test_bad_profile_is_refused():
    with pytest.raises(ConfigError):
        rut_depth(np.array([0, 1, 2]), np.array([0, 0, 0]))
    x, z = _lane(5, 5)
    z[10] = np.nan
    with pytest.raises(ConfigError, match="NaN"):
        rut_depth(x, z)
