"""IRI from a longitudinal profile: the quarter-car "golden car" of ASTM E1926 / World Bank TP-46.

Per unit sprung mass: k1 = 653 (tyre), k2 = 63.3 (suspension), c = 6.0, mu = 0.15, driven at
80 km/h over the profile smoothed by a 0.25 m moving average (the tyre base). The model state
starts from the mean slope of the first 11 m (the lead-in). IRI = accumulated |suspension rate|
/ length, in m/km = mm/m. Sayers' method: the exact discrete transition over each step with the
profile slope held constant, so results do not depend on the sampling interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np
from scipy.linalg import expm

from pavement.errors import ConfigError


@dataclass(frozen=True)
class QuarterCar:
    k1: float = 653.0  # tyre spring / sprung mass, 1/s^2
    k2: float = 63.3  # suspension spring / sprung mass, 1/s^2
    c: float = 6.0  # suspension damper / sprung mass, 1/s
    mu: float = 0.15  # unsprung / sprung mass
    speed_mps: float = 80.0 / 3.6
    base_m: float = 0.25  # tyre-contact moving average
    lead_in_m: float = 11.0

    def matrices(self) -> tuple[np.ndarray, np.ndarray]:
        """Continuous state-space (A, B); state = (z_s, z_s', z_u, z_u'), input = road."""
        k1, k2, c, mu = self.k1, self.k2, self.c, self.mu
        a = np.array(
            [
                [0.0, 1.0, 0.0, 0.0],
                [-k2, -c, k2, c],
                [0.0, 0.0, 0.0, 1.0],
                [k2 / mu, c / mu, -(k1 + k2) / mu, -c / mu],
            ]
        )
        b = np.array([0.0, 0.0, 0.0, k1 / mu])
        return a, b


GOLDEN_CAR = QuarterCar()


def _smoothed_slope(elevation_m: np.ndarray, spacing_m: float, base_m: float) -> np.ndarray:
    """Slope of the profile after the moving average over ``base_m``, at each sample (m/m).

    The moving average of elevation over [x, x + b] has derivative (p(x + b) - p(x)) / b; the
    end point is interpolated so the base stays exactly ``base_m`` at any sampling interval.
    """
    x = np.arange(len(elevation_m)) * spacing_m
    if base_m <= spacing_m:
        return np.diff(elevation_m) / spacing_m
    ahead = np.interp(x + base_m, x, elevation_m)
    valid = x + base_m <= x[-1] + 1e-9
    slope = (ahead - elevation_m) / base_m
    return slope[valid]


def rectified_slope(elevation_m: np.ndarray, spacing_m: float, car: QuarterCar = GOLDEN_CAR) -> np.ndarray:
    """|z_s' - z_u'| per step (m/m): the quarter car's suspension rate over distance.

    Averaging this over any stretch gives that stretch's IRI in m/m (x 1000 for mm/m).
    """
    elevation_m = np.asarray(elevation_m, dtype=float)
    if spacing_m <= 0:
        raise ConfigError(f"spacing_m must be > 0, got {spacing_m}")
    if elevation_m.ndim != 1 or len(elevation_m) * spacing_m < car.lead_in_m + car.base_m:
        raise ConfigError(
            f"profile of {len(elevation_m) * spacing_m:.2f} m is too short: IRI needs at least "
            f"{car.lead_in_m + car.base_m} m (11 m lead-in + tyre base)"
        )
    if not np.all(np.isfinite(elevation_m)):
        raise ConfigError("profile has NaN or infinite elevations; fill or cut the gaps first")
    slope = _smoothed_slope(elevation_m, spacing_m, car.base_m)
    a, b = car.matrices()
    dt = spacing_m / car.speed_mps
    st = expm(a * dt)
    pr = np.linalg.solve(a, (st - np.eye(4)) @ b)
    # Lead-in: states start at rest relative to the mean slope of the first 11 m.
    k = max(1, round(car.lead_in_m / spacing_m))
    x0 = (elevation_m[min(k, len(elevation_m) - 1)] - elevation_m[0]) / (k * spacing_m)
    z = np.array([x0, 0.0, x0, 0.0])
    out = np.empty(len(slope))
    for i, s in enumerate(slope):
        z = st @ z + pr * s
        out[i] = abs(z[2] - z[0])
    return out


def iri_from_profile(elevation_m: np.ndarray, spacing_m: float, car: QuarterCar = GOLDEN_CAR) -> float:
    """IRI (mm/m) of a whole profile: elevations (m) every ``spacing_m`` metres."""
    return float(rectified_slope(elevation_m, spacing_m, car).mean() * 1000.0)


def iri_per_interval(
    elevation_m: np.ndarray, spacing_m: float, interval_m: float = 100.0, car: QuarterCar = GOLDEN_CAR
) -> np.ndarray:
    """IRI (mm/m) of each consecutive ``interval_m`` stretch, from one simulation over the whole
    profile (each stretch's lead-in is the profile before it). A last stretch shorter than half an
    interval is dropped. Returns shape (n_intervals,)."""
    rs = rectified_slope(elevation_m, spacing_m, car)
    per = interval_m / spacing_m
    n = int(np.floor(len(rs) / per + 0.5))
    edges = np.minimum(np.round(np.arange(n + 1) * per).astype(int), len(rs))
    return np.array([rs[a:b].mean() * 1000.0 for a, b in pairwise(edges)])
