"""IRI from a phone accelerometer in a moving vehicle (issue 6, roughness half).

The phone measures the body's vertical acceleration. A quarter-car model of the vehicle gives
the transfer from road elevation to that acceleration, H_a(f), at the temporal frequency
f = v n of spatial frequency n at speed v. Per stretch of road:

    G_road(n) = v G_acc(v n) / |H_a(2 pi v n)|^2                  (road elevation PSD)
    var(RS)   = integral G_road(n) |H_ma(n)|^2 |H_rs(n)|^2 dn       (golden-car rectified slope)
    IRI       = sqrt(2 / pi) sqrt(var(RS))                          (mean |.| of a Gaussian)

with H_rs the golden car's suspension rate per metre (ASTM E1926) and H_ma the 0.25 m tyre
moving average. The vehicle's own model is a default passenger car; ``gain`` is calibrated per
vehicle on a stretch of known IRI (``calibrate_gain``). The band is limited to wavelengths the
IRI responds to (1.25-50 m) and to temporal frequencies where the accelerometer sees the road
above its noise; the uncertainty grows with the share of the IRI outside that band.

A log with gaps (the logger app paused, samples dropped) is not interpolated across them: each
continuous piece's spectrum is estimated on its own and the pieces' slope variances are averaged,
weighted by their length (``iri_from_pieces``). Pieces shorter than ``min_piece_s`` are dropped,
and a stretch whose kept pieces cover less than ``min_coverage`` of the time the car spent on it
gets no estimate, with the reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pavement.errors import ConfigError
from pavement.roughness import GOLDEN_CAR, QuarterCar

STANDARD_GRAVITY_MPS2 = 9.80665

#: A typical passenger car (body mode 1.3 Hz, damping ratio 0.3, wheel hop about 10 Hz):
#: the default until a vehicle is calibrated.
DEFAULT_VEHICLE = QuarterCar(k1=480.0, k2=66.7, c=4.9, mu=0.13)


@dataclass(frozen=True)
class RideConfig:
    """Parameters of the accelerometer IRI estimate."""

    min_wavelength_m: float = 1.25
    max_wavelength_m: float = 50.0
    min_freq_hz: float = 0.4  # below this a phone accelerometer sees drift, not road
    max_freq_hz: float = 20.0
    min_speed_mps: float = 3.0  # slower stretches are not estimated
    gravity_window_s: float = 2.0
    max_gap_s: float = 0.5  # samples farther apart than this split the log into pieces
    min_piece_s: float = 2.0  # shorter pieces are dropped (too few frequencies)
    min_coverage: float = 0.5  # share of a stretch's moving time the kept pieces must cover


@dataclass(frozen=True)
class IriEstimate:
    iri_mm_per_m: float | None  # None when the stretch could not be estimated
    uncertainty_mm_per_m: float | None
    mean_speed_mps: float
    reason: str = ""  # why the estimate is None


def vertical_acceleration(accel_mps2: np.ndarray, rate_hz: float, window_s: float = 2.0) -> np.ndarray:
    """Acceleration along gravity minus g (m/s^2), from 3-axis phone samples (n, 3).

    Gravity's direction in the phone frame is the moving mean of the samples over ``window_s``,
    so a phone mounted at any tilt works, and slow tilts (braking, slopes) are followed.
    """
    a = np.asarray(accel_mps2, dtype=float)
    if a.ndim != 2 or a.shape[1] != 3 or len(a) < 2:
        raise ConfigError(f"accelerometer samples must be (n, 3) with n >= 2, got shape {a.shape}")
    width = max(1, round(window_s * rate_hz))
    kernel = np.ones(width) / width
    padded = np.pad(a, ((width // 2, width - 1 - width // 2), (0, 0)), mode="edge")
    gravity = np.stack([np.convolve(padded[:, k], kernel, mode="valid") for k in range(3)], axis=1)
    norm = np.linalg.norm(gravity, axis=1, keepdims=True)
    if np.any(norm < 0.5 * STANDARD_GRAVITY_MPS2):
        raise ConfigError("accelerometer shows no gravity: give accelerations in m/s^2 including gravity")
    return np.sum(a * gravity / norm, axis=1) - norm[:, 0]


def _state_response(car: QuarterCar, omega: np.ndarray) -> np.ndarray:
    """Complex state responses (len(omega), 4) to a unit sinusoidal road elevation."""
    a, b = car.matrices()
    eye = np.eye(4)
    return np.array([np.linalg.solve(1j * w * eye - a, b) for w in omega])


def body_acceleration_gain(car: QuarterCar, freq_hz: np.ndarray) -> np.ndarray:
    """|body vertical acceleration| per metre of road elevation at temporal frequency f."""
    omega = 2 * np.pi * np.asarray(freq_hz, dtype=float)
    x = _state_response(car, omega)
    return np.abs(1j * omega * x[:, 1])


def golden_car_slope_gain(wavenumber_cpm: np.ndarray, car: QuarterCar = GOLDEN_CAR) -> np.ndarray:
    """|rectified slope| per metre of elevation at spatial frequency n (cycles/m), including the
    tyre's 0.25 m moving average."""
    n = np.asarray(wavenumber_cpm, dtype=float)
    omega = 2 * np.pi * car.speed_mps * n
    x = _state_response(car, omega)
    rate = np.abs(x[:, 1] - x[:, 3])  # suspension velocity per metre of elevation
    moving_average = np.abs(np.sinc(n * car.base_m))  # np.sinc is sin(pi x) / (pi x)
    return rate / car.speed_mps * moving_average


def iri_from_vertical_acceleration(
    a_vert_mps2: np.ndarray,
    rate_hz: float,
    speed_mps: float,
    vehicle: QuarterCar = DEFAULT_VEHICLE,
    gain: float = 1.0,
    config: RideConfig = RideConfig(),
) -> IriEstimate:
    """IRI (mm/m) of one stretch from its vertical body acceleration at a steady speed, sampled
    without gaps."""
    a = np.asarray(a_vert_mps2, dtype=float)
    return iri_from_pieces([a], rate_hz, speed_mps, vehicle, gain, config)


def iri_from_pieces(
    pieces: list[np.ndarray],
    rate_hz: float,
    speed_mps: float,
    vehicle: QuarterCar = DEFAULT_VEHICLE,
    gain: float = 1.0,
    config: RideConfig = RideConfig(),
    expected_s: float | None = None,
) -> IriEstimate:
    """IRI (mm/m) of one stretch from the continuous pieces of its vertical body acceleration.

    pieces: arrays of samples at ``rate_hz``, each without gaps (the log split where it has
    them); expected_s: how long the car spent on the stretch while moving (default: the pieces'
    total). Pieces shorter than ``config.min_piece_s`` are dropped; no estimate (with the reason)
    when the rest covers less than ``config.min_coverage`` of ``expected_s``."""
    pieces = [np.asarray(p, dtype=float) for p in pieces]
    total_s = sum(len(p) for p in pieces) / rate_hz
    if speed_mps < config.min_speed_mps:
        return IriEstimate(
            None, None, speed_mps, f"speed {speed_mps:.1f} m/s below {config.min_speed_mps} m/s"
        )
    kept = [p for p in pieces if len(p) >= rate_hz * config.min_piece_s]
    kept_s = sum(len(p) for p in kept) / rate_hz
    expected_s = total_s if expected_s is None else max(expected_s, kept_s)
    if not kept:
        if len(pieces) > 1 or (expected_s > total_s + 1 / rate_hz):
            return IriEstimate(
                None, None, speed_mps,
                f"accelerometer log has gaps > {config.max_gap_s:g} s here: no piece of "
                f"{config.min_piece_s:g} s or more without one",
            )  # fmt: skip
        return IriEstimate(None, None, speed_mps, f"only {total_s:.1f} s of samples")
    if kept_s < config.min_coverage * expected_s:
        return IriEstimate(
            None, None, speed_mps,
            f"accelerometer log has gaps here: only {kept_s:.1f} s of {expected_s:.1f} s usable "
            f"(at least {config.min_coverage:.0%} needed)",
        )  # fmt: skip
    # Wheel impacts (potholes, joints) are single spikes, not roughness: clip beyond 4 robust sigmas.
    centred = [p - p.mean() for p in kept]
    joined = np.concatenate(centred)
    robust_sigma = 1.4826 * np.median(np.abs(joined - np.median(joined)))
    rs_var = 0.0
    n_bins = 0
    for a in centred:
        if robust_sigma > 0:
            a = np.clip(a, -4 * robust_sigma, 4 * robust_sigma)
        piece_var, piece_bins = _slope_variance(a, rate_hz, speed_mps, vehicle, config)
        rs_var += piece_var * len(a) / len(joined)  # the pieces' variances, weighted by length
        n_bins += piece_bins
    if n_bins < 3:
        return IriEstimate(None, None, speed_mps, "too few frequencies in the IRI band")
    iri = gain * math.sqrt(2 / math.pi) * math.sqrt(rs_var) * 1000.0
    # Relative uncertainty: spectral estimate from few independent bins + the share of the IRI's
    # sensitivity (flat-slope road assumption) that falls outside the band seen at this speed.
    n_grid = np.linspace(1 / config.max_wavelength_m, 1 / config.min_wavelength_m, 400)
    weight = golden_car_slope_gain(n_grid) ** 2 / n_grid**2  # a road with G ~ n^-2
    seen = (n_grid * speed_mps >= config.min_freq_hz) & (n_grid * speed_mps <= config.max_freq_hz)
    missing = 1 - weight[seen].sum() / weight.sum()
    rel = math.sqrt(1 / n_bins + missing**2 + 0.1**2)
    return IriEstimate(iri, iri * rel, speed_mps)


def _slope_variance(
    a: np.ndarray, rate_hz: float, speed_mps: float, vehicle: QuarterCar, config: RideConfig
) -> tuple[float, int]:
    """Golden-car rectified-slope variance (m^2/m^2) of one continuous, zero-mean piece, and the
    number of its frequency bins in the IRI band."""
    window = np.hanning(len(a))
    spectrum = np.fft.rfft(a * window)
    freq = np.fft.rfftfreq(len(a), 1 / rate_hz)
    # One-sided PSD (m^2/s^4 per Hz), corrected for the window's power.
    psd = 2 * np.abs(spectrum) ** 2 / (rate_hz * np.sum(window**2))
    n = freq / speed_mps
    in_band = (
        (n >= 1 / config.max_wavelength_m)
        & (n <= 1 / config.min_wavelength_m)
        & (freq >= config.min_freq_hz)
        & (freq <= min(config.max_freq_hz, rate_hz / 2))
    )
    if not in_band.any():
        return 0.0, 0
    df = freq[1] - freq[0]
    h_acc = body_acceleration_gain(vehicle, freq[in_band])
    road_var_per_bin = psd[in_band] * df / h_acc**2  # elevation variance carried by each bin (m^2)
    return float(np.sum(road_var_per_bin * golden_car_slope_gain(n[in_band]) ** 2)), int(in_band.sum())


def calibrate_gain(estimated_mm_per_m: np.ndarray, reference_mm_per_m: np.ndarray) -> float:
    """Least-squares gain through the origin: reference ~ gain x estimate (uncalibrated, gain 1)."""
    est = np.asarray(estimated_mm_per_m, dtype=float)
    ref = np.asarray(reference_mm_per_m, dtype=float)
    ok = np.isfinite(est) & np.isfinite(ref)
    if ok.sum() < 2 or not np.any(est[ok] > 0):
        raise ConfigError("calibration needs at least two stretches with both an estimate and a known IRI")
    return float(np.sum(est[ok] * ref[ok]) / np.sum(est[ok] ** 2))
