"""IRI against the quarter-car equations integrated independently (scipy's ODE solver)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.integrate import solve_ivp

from pavement.errors import ConfigError
from pavement.roughness import GOLDEN_CAR, iri_from_profile, iri_per_interval


def _band_limited_profile(x: np.ndarray, seed: int) -> np.ndarray:
    """A random road: sinusoids of 1-30 m wavelength with amplitudes falling with frequency."""
    rng = np.random.default_rng(seed)
    z = np.zeros_like(x)
    for wavelength in np.geomspace(1.0, 30.0, 25):
        z += 0.002 * (wavelength / 10) * np.sin(2 * np.pi * x / wavelength + rng.uniform(0, 2 * np.pi))
    return z


@pytest.mark.parametrize("spacing", [0.05, 0.25, 0.5])
def test_flat_and_inclined_roads_give_zero(spacing):
    x = np.arange(0, 200, spacing)
    assert iri_from_profile(np.zeros_like(x), spacing) == pytest.approx(0.0, abs=1e-9)
    assert iri_from_profile(0.03 * x, spacing) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize(("amplitude_m", "wavelength_m"), [(0.005, 10.0), (0.002, 2.5), (0.01, 30.0)])
def test_sinusoid_matches_independent_integration(amplitude_m, wavelength_m):
    car, b, v = GOLDEN_CAR, GOLDEN_CAR.base_m, GOLDEN_CAR.speed_mps
    spacing = 0.01
    x = np.arange(0, 450 + spacing / 2, spacing)
    ours = iri_per_interval(amplitude_m * np.sin(2 * np.pi * x / wavelength_m), spacing, 150.0)[1]

    k = 2 * np.pi / wavelength_m

    def road(t):  # elevation after the 0.25 m moving average, in closed form
        s = v * t
        return amplitude_m / (k * b) * (np.cos(k * s) - np.cos(k * (s + b)))

    a_mat, b_vec = car.matrices()
    sol = solve_ivp(
        lambda t, y: np.concatenate([a_mat @ y[:4] + b_vec * road(t), [abs(y[1] - y[3])]]),
        (0, 300 / v),
        np.array([road(0), 0, road(0), 0, 0.0]),
        t_eval=[150 / v, 300 / v],
        rtol=1e-9,
        atol=1e-12,
        max_step=0.002,
    )
    reference = (sol.y[4, 1] - sol.y[4, 0]) / 150 * 1000
    assert reference > 0.1
    assert ours == pytest.approx(reference, rel=0.01)


def test_resampling_changes_iri_by_less_than_one_percent():
    fine = np.arange(0, 300, 0.025)
    coarse = np.arange(0, 300, 0.1)
    a = iri_from_profile(_band_limited_profile(fine, 3), 0.025)
    b = iri_from_profile(_band_limited_profile(coarse, 3), 0.1)
    assert a > 1.0
    assert abs(a - b) / a < 0.01


def test_per_interval_agrees_with_whole_profile():
    x = np.arange(0, 500, 0.05)
    z = _band_limited_profile(x, 5)
    per = iri_per_interval(z, 0.05, 100.0)
    assert len(per) == 5
    assert per.mean() == pytest.approx(iri_from_profile(z, 0.05), rel=0.01)


@pytest.mark.parametrize("profile", [np.zeros(10), np.zeros((100, 2))])
def test_short_or_malformed_profile_is_refused(profile):
    with pytest.raises(ConfigError, match="too short"):
        iri_from_profile(profile, 0.1)


def test_nan_is_refused():
    z = np.zeros(500)
    z[100] = np.nan
    with pytest.raises(ConfigError, match="NaN"):
        iri_from_profile(z, 0.1)


@settings(max_examples=25, deadline=None)
@given(arrays(np.float64, 200, elements=st.floats(-0.05, 0.05)))
def test_iri_is_never_negative(z):
    assert iri_from_profile(z, 0.1) >= 0.0
