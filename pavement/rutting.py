"""わだち掘れ量 from one transverse profile (MLIT 舗装点検要領; 舗装調査・試験法便覧 S030).

Across the full lane, D1 and D2 are the depths of the two wheel paths below the straight line
joining the neighbouring crests (the outer edges and the crest between the wheel paths); the
profile's rut depth is D = max(D1, D2). A 100 m value is the mean of its 20 m profiles.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pavement.errors import ConfigError


@dataclass(frozen=True)
class RutProfileDepth:
    d1_mm: float  # left wheel path (smaller lateral coordinate)
    d2_mm: float  # right wheel path
    depth_mm: float  # max(D1, D2)


def _depth_below_crest_line(x: np.ndarray, z: np.ndarray) -> float:
    """Largest depth of z below its upper convex hull: the straight lines joining neighbouring
    crests. The hull does not change under a cross-fall (adding a linear term), so neither does D."""
    hull: list[int] = []
    for i in range(len(x)):
        # Monotone chain: drop the last hull point while it lies on or below the chord to point i.
        while len(hull) >= 2:
            a, b = hull[-2], hull[-1]
            if (z[b] - z[a]) * (x[i] - x[a]) <= (z[i] - z[a]) * (x[b] - x[a]):
                hull.pop()
            else:
                break
        hull.append(i)
    crest_line = np.interp(x, x[hull], z[hull])
    return float(np.max(crest_line - z))


def rut_depth(lateral_m: np.ndarray, height_mm: np.ndarray) -> RutProfileDepth:
    """D1, D2 and D (mm) of one transverse profile across the full lane.

    lateral_m: (n,) increasing positions across the lane; height_mm: (n,) surface heights.
    The lane is split at the highest point of its middle third above the edge-to-edge line
    (the crest between the wheel paths); each half's depth is measured below the line joining
    its crests (its upper hull).
    """
    x = np.asarray(lateral_m, dtype=float)
    z = np.asarray(height_mm, dtype=float)
    if x.ndim != 1 or x.shape != z.shape or len(x) < 5:
        raise ConfigError("a transverse profile needs >= 5 points, lateral_m and height_mm of one length")
    if np.any(np.diff(x) <= 0):
        raise ConfigError("lateral_m must increase strictly across the lane")
    if not np.all(np.isfinite(z)):
        raise ConfigError("transverse profile has NaN heights; fill the gaps or drop the profile")
    n = len(x)
    third = slice(n // 3, max(n // 3 + 1, 2 * n // 3))
    # Highest point of the middle third above the edge-to-edge line: a cross-fall does not move it.
    detrended = z - np.interp(x, x[[0, -1]], z[[0, -1]])
    mid = n // 3 + int(np.argmax(detrended[third]))
    d1 = _depth_below_crest_line(x[: mid + 1], z[: mid + 1])
    d2 = _depth_below_crest_line(x[mid:], z[mid:])
    return RutProfileDepth(d1, d2, max(d1, d2))
