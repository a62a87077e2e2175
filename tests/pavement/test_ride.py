"""IRI from body acceleration, against the golden-car IRI of the same synthetic profile."""

import math

import numpy as np
import pytest
from scipy.signal import StateSpace, lsim

from pavement.errors import ConfigError
from pavement.ride import (
    DEFAULT_VEHICLE,
    STANDARD_GRAVITY_MPS2,
    calibrate_gain,
    iri_from_pieces,
    iri_from_vertical_acceleration,
    vertical_acceleration,
)
from pavement.roughness import QuarterCar, rectified_slope

RATE_HZ = 100.0
DX_M = 0.05
#: The car that "drives" in these tests differs from the estimator's default vehicle.
TEST_CAR = QuarterCar(k1=550.0, k2=75.0, c=5.5, mu=0.14)


def iso8608_profile(length_m: float, road_class: int, seed: int) -> np.ndarray:
    """Elevations (m) every DX_M of a random road with ISO 8608 PSD (class 0 = A, 1 = B ...)."""
    rng = np.random.default_rng(seed)
    n_pts = int(length_m / DX_M)
    size = 2 ** math.ceil(math.log2(n_pts))
    n = np.fft.rfftfreq(size, DX_M)
    psd = np.zeros_like(n)
    psd[n >= 0.01] = 16e-6 * 4**road_class * (n[n >= 0.01] / 0.1) ** -2
    amplitude = np.sqrt(2 * psd * (n[1] - n[0])) * size / 2
    return np.fft.irfft(amplitude * np.exp(1j * rng.uniform(0, 2 * np.pi, len(n))), size)[:n_pts]


def drive(car: QuarterCar, z: np.ndarray, speed_mps: float, noise_mps2: float, seed: int) -> np.ndarray:
    """Body vertical acceleration sampled at RATE_HZ while driving over z at a steady speed."""
    x = np.arange(len(z)) * DX_M
    t = np.arange(0, x[-1] / speed_mps, 1 / RATE_HZ)
    a, b = car.matrices()
    system = StateSpace(a, b[:, None], a[1:2, :], np.array([[b[1]]]))
    _, acc, _ = lsim(system, np.interp(speed_mps * t, x, z), t)
    return acc + np.random.default_rng(seed).normal(0, noise_mps2, len(t))


def estimate_and_truth(road_class: int, speed_kmh: float, seed: int, gain: float = 1.0):
    z = iso8608_profile(140, road_class, seed)
    v = speed_kmh / 3.6
    acc = drive(TEST_CAR, z, v, 0.02, seed)
    t = np.arange(len(acc)) / RATE_HZ
    stretch = (v * t >= 20) & (v * t < 120)  # metres 20-120, after a lead-in
    truth = rectified_slope(z, DX_M)[int(20 / DX_M) : int(120 / DX_M)].mean() * 1000
    return iri_from_vertical_acceleration(acc[stretch], RATE_HZ, v, DEFAULT_VEHICLE, gain), truth


@pytest.mark.parametrize("road_class", [0, 1, 2, 3])
@pytest.mark.parametrize("speed_kmh", [20, 40, 60])
def test_uncalibrated_estimate_is_within_25_percent(road_class, speed_kmh):
    est, truth = estimate_and_truth(road_class, speed_kmh, seed=road_class + 7)
    assert est.iri_mm_per_m == pytest.approx(truth, rel=0.25)
    assert est.uncertainty_mm_per_m > 0


def test_calibrated_estimates_track_the_truth():
    cal = [estimate_and_truth(c, 40, seed=100 + c) for c in range(4)]
    gain = calibrate_gain([e.iri_mm_per_m for e, _ in cal], [t for _, t in cal])
    pairs = [estimate_and_truth(c, s, seed=200 + 10 * c + s, gain=gain) for c in range(4) for s in (20, 60)]
    est = np.array([e.iri_mm_per_m for e, _ in pairs])
    truth = np.array([t for _, t in pairs])
    r2 = 1 - np.sum((truth - est) ** 2) / np.sum((truth - truth.mean()) ** 2)
    assert r2 > 0.9
    assert np.mean(np.abs(truth - est) / truth) < 0.15


def test_a_stopped_car_gives_no_estimate():
    est = iri_from_vertical_acceleration(np.zeros(1000), RATE_HZ, 0.5)
    assert est.iri_mm_per_m is None and "speed" in est.reason


def test_flat_road_with_sensor_noise_only_reads_low():
    est = iri_from_vertical_acceleration(np.random.default_rng(0).normal(0, 0.02, 900), RATE_HZ, 11.0)
    assert est.iri_mm_per_m < 0.5


def test_vertical_acceleration_of_a_tilted_phone():
    rng = np.random.default_rng(1)
    t = np.arange(0, 20, 1 / RATE_HZ)
    bump = 0.8 * np.sin(2 * np.pi * 1.5 * t)  # body motion, m/s^2
    up = np.array([0.0, math.sin(math.radians(30)), math.cos(math.radians(30))])  # phone tilted 30 deg
    samples = (STANDARD_GRAVITY_MPS2 + bump)[:, None] * up + rng.normal(0, 0.01, (len(t), 3))
    got = vertical_acceleration(samples, RATE_HZ)
    core = slice(200, -200)
    assert np.corrcoef(got[core], bump[core])[0, 1] > 0.97
    assert np.std(got[core] - bump[core]) < 0.2


@pytest.mark.parametrize("bad", [np.zeros((10, 2)), np.zeros((10, 3))])
def test_bad_accelerometer_input(bad):
    with pytest.raises(ConfigError):
        vertical_acceleration(bad, RATE_HZ)


def _stretch(road_class: int = 2, speed_kmh: float = 40, seed: int = 3, length_m: float = 100):
    """Body acceleration over ``length_m`` of road after a 20 m lead-in, and the speed (m/s)."""
    z = iso8608_profile(length_m + 40, road_class, seed)
    v = speed_kmh / 3.6
    acc = drive(TEST_CAR, z, v, 0.02, seed)
    t = np.arange(len(acc)) / RATE_HZ
    return acc[(v * t >= 20) & (v * t < 20 + length_m)], v


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_pieces_around_a_gap_read_like_the_whole_stretch(seed):
    acc, v = _stretch(seed=seed, length_m=250)  # 22 s at 40 km/h
    truth = (
        rectified_slope(iso8608_profile(290, 2, seed), DX_M)[int(20 / DX_M) : int(270 / DX_M)].mean() * 1000
    )
    whole = iri_from_vertical_acceleration(acc, RATE_HZ, v)
    cut = len(acc) // 2  # 3 s missing in the middle
    gappy = iri_from_pieces([acc[:cut], acc[cut + 300 :]], RATE_HZ, v, expected_s=len(acc) / RATE_HZ)
    assert gappy.iri_mm_per_m == pytest.approx(truth, rel=0.25)  # as good as without the gap
    assert gappy.iri_mm_per_m == pytest.approx(whole.iri_mm_per_m, rel=0.2)
    assert gappy.reason == "" and gappy.uncertainty_mm_per_m > 0


@pytest.mark.parametrize(
    ("pieces_s", "expected_s", "reason"),
    [
        ((1.5, 1.5, 1.5), 9.0, "no piece of 2 s or more"),  # gaps every 1.5 s
        ((3.0,), 9.0, "only 3.0 s of 9.0 s usable"),  # most of the stretch missing
        ((1.0,), None, "only 1.0 s of samples"),  # a short stretch without gaps, as before
    ],
)
def test_too_little_between_gaps_gives_no_estimate_with_the_reason(pieces_s, expected_s, reason):
    acc, v = _stretch()
    pieces, at = [], 0
    for seconds in pieces_s:
        n = int(seconds * RATE_HZ)
        pieces.append(acc[at : at + n])
        at += n + 100
    est = iri_from_pieces(pieces, RATE_HZ, v, expected_s=expected_s)
    assert est.iri_mm_per_m is None and est.uncertainty_mm_per_m is None
    assert reason in est.reason
