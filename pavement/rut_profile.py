"""Measured transverse profiles, their rut depth with an uncertainty, and the 20 m / 100 m values.

A measured profile (from the video's plane sweep or from a depth sensor) is noisy, and noise
biases a rut depth upward: the deepest point below the crest line of a noisy profile is deeper
than that of the true one. ``estimate_rut`` therefore reports, besides D = max(D1, D2) of the
measured profile (``pavement.rutting``), a 1-sigma uncertainty from Monte-Carlo draws of the
profile within its per-point sigmas, which includes that bias.

Aggregation (MLIT): a 20 m section's value is the mean of the profiles measured in it; a 100 m
segment's ``rut_depth_mm`` is the mean of its sections and ``rut_depth_max_mm`` their maximum. A
profile or section whose uncertainty exceeds ``max_sigma_mm`` is blank (None) with its reason,
never a guess.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pavement.errors import ConfigError
from pavement.rutting import rut_depth

MAX_GAP_M = 0.3  # gaps up to this wide are bridged linearly; wider ones leave the profile blank
MAX_EDGE_GAP_M = 0.15  # a lane edge missing up to this wide takes the nearest measured height


@dataclass(frozen=True, eq=False)
class TransverseProfile:
    """One measured cross profile of the driven lane.

    u_m: (n,) increasing positions from the lane's left edge (m), covering the lane;
    z_mm: (n,) surface heights, up positive (NaN = not measured); sigma_mm: (n,) their 1-sigma;
    chainage_m: where along the route it lies; source: "video" or "depth"."""

    u_m: np.ndarray
    z_mm: np.ndarray
    sigma_mm: np.ndarray
    chainage_m: float
    source: str
    frame_index: int = -1

    def __post_init__(self) -> None:
        n = len(self.u_m)
        if self.z_mm.shape != (n,) or self.sigma_mm.shape != (n,) or n < 5:
            raise ConfigError("a transverse profile needs >= 5 points and u_m, z_mm, sigma_mm of one length")
        if np.any(np.diff(self.u_m) <= 0):
            raise ConfigError("profile positions u_m must increase strictly")


@dataclass(frozen=True)
class RutEstimate:
    """Rut depth of one profile (mm) with its 1-sigma; ``depth_mm`` is None when blank."""

    depth_mm: float | None
    d1_mm: float | None
    d2_mm: float | None
    sigma_mm: float
    reason: str = ""  # why it is blank


def _bridge_gaps(u: np.ndarray, z: np.ndarray) -> np.ndarray | None:
    """Heights with inner NaN runs up to MAX_GAP_M filled linearly and edge runs up to
    MAX_EDGE_GAP_M with the nearest height; None if a wider run is missing."""
    ok = np.isfinite(z)
    if ok.sum() < 5:
        return None
    good_u = u[ok]
    if np.max(np.diff(good_u)) > MAX_GAP_M + 1e-9:
        return None
    if good_u[0] - u[0] > MAX_EDGE_GAP_M + 1e-9 or u[-1] - good_u[-1] > MAX_EDGE_GAP_M + 1e-9:
        return None
    return np.interp(u, good_u, z[ok])


def estimate_rut(
    profile: TransverseProfile, max_sigma_mm: float = 3.0, n_draws: int = 200, seed: int = 0
) -> RutEstimate:
    """D1, D2, D of a measured profile and the 1-sigma of D.

    sigma = sqrt(spread^2 + bias^2) over ``n_draws`` redraws of the heights within their sigmas
    (independent per point), where bias = mean of the redrawn D minus the measured D (noise
    deepens ruts). Blank when the profile has a gap wider than MAX_GAP_M, misses an edge of the
    lane, or sigma > max_sigma_mm."""
    z = _bridge_gaps(profile.u_m, profile.z_mm)
    if z is None:
        return RutEstimate(None, None, None, math.inf, "profile misses part of the lane")
    # Bridged points and points without a sigma get the largest sigma of the measured ones.
    measured_sig = profile.sigma_mm[np.isfinite(profile.z_mm) & np.isfinite(profile.sigma_mm)]
    sig = np.where(
        np.isfinite(profile.z_mm) & np.isfinite(profile.sigma_mm), profile.sigma_mm, measured_sig.max()
    )
    measured = rut_depth(profile.u_m, z)
    rng = np.random.default_rng(seed)
    draws = np.array(
        [rut_depth(profile.u_m, z + rng.normal(0.0, 1.0, len(z)) * sig).depth_mm for _ in range(n_draws)]
    )
    bias = float(draws.mean() - measured.depth_mm)
    sigma = math.hypot(float(draws.std()), bias)
    if sigma > max_sigma_mm:
        return RutEstimate(None, None, None, sigma, f"uncertainty {sigma:.1f} mm > {max_sigma_mm:g} mm")
    return RutEstimate(measured.depth_mm, measured.d1_mm, measured.d2_mm, sigma)


@dataclass(frozen=True)
class SectionRut:
    """A 20 m section: mean rut depth of its usable profiles, its 1-sigma, counts and reason."""

    chainage_from_m: float
    chainage_to_m: float
    rut_depth_mm: float | None
    sigma_mm: float
    n_profiles: int  # measured in the section
    n_used: int  # not blank
    reason: str = ""


def section_rut(
    chainage_from_m: float, chainage_to_m: float, estimates: list[RutEstimate], max_sigma_mm: float = 3.0
) -> SectionRut:
    """Mean of the section's non-blank profile depths. Sigma of the mean treats the profiles'
    errors as independent but never lets it fall below a third of their mean sigma (errors of
    one run share a bias: the mount, the pose refinement)."""
    used = [e for e in estimates if e.depth_mm is not None]
    if not used:
        reason = "no profile measured" if not estimates else estimates[0].reason or "no usable profile"
        return SectionRut(chainage_from_m, chainage_to_m, None, math.inf, len(estimates), 0, reason)
    depth = float(np.mean([e.depth_mm for e in used]))
    sig = np.array([e.sigma_mm for e in used])
    sigma = max(float(np.sqrt(np.sum(sig**2))) / len(used), float(sig.mean()) / 3.0)
    if sigma > max_sigma_mm:
        return SectionRut(
            chainage_from_m, chainage_to_m, None, sigma, len(estimates), len(used),
            f"uncertainty {sigma:.1f} mm > {max_sigma_mm:g} mm",
        )  # fmt: skip
    return SectionRut(chainage_from_m, chainage_to_m, depth, sigma, len(estimates), len(used))


@dataclass(frozen=True)
class SegmentRut:
    """A 100 m segment: mean and maximum of its sections' rut depths, and the mean's 1-sigma."""

    rut_depth_mm: float | None
    rut_depth_max_mm: float | None
    sigma_mm: float
    n_sections: int
    n_used: int
    reason: str = ""


def segment_rut(sections: list[SectionRut]) -> SegmentRut:
    used = [s for s in sections if s.rut_depth_mm is not None]
    if not used:
        reasons = sorted({s.reason for s in sections if s.reason})
        return SegmentRut(None, None, math.inf, len(sections), 0, "; ".join(reasons) or "no section measured")
    depths = np.array([s.rut_depth_mm for s in used])
    sig = np.array([s.sigma_mm for s in used])
    sigma = float(np.sqrt(np.sum(sig**2))) / len(used)
    return SegmentRut(float(depths.mean()), float(depths.max()), sigma, len(sections), len(used))
