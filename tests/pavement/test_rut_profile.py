"""Rut depth of measured profiles: uncertainty, blanks with reasons, 20 m and 100 m aggregation."""

import math

import numpy as np
import pytest

from pavement.rut_profile import TransverseProfile, estimate_rut, section_rut, segment_rut


def _profile(depth_mm: float, sigma_mm: float = 0.2, seed: int = 0) -> TransverseProfile:
    u = np.arange(0.025, 3.5, 0.05)
    z = np.zeros_like(u)
    for c in (1.0, 2.5):
        x = np.clip(np.abs(u - c) / 0.5, 0, 1)
        z -= depth_mm * np.cos(0.5 * np.pi * x) ** 2
    z += np.random.default_rng(seed).normal(0, sigma_mm, len(u))
    return TransverseProfile(u, z, np.full(len(u), sigma_mm), 0.0, "video")


def test_exact_profile_gives_its_depth():
    est = estimate_rut(_profile(20.0, sigma_mm=0.0))
    assert est.depth_mm == pytest.approx(20.0, abs=0.2)  # the 5 cm bins straddle the trough
    assert est.sigma_mm < 0.1


def test_noise_raises_sigma_and_blanks_when_too_large():
    small = estimate_rut(_profile(20.0, 0.5))
    large = estimate_rut(_profile(20.0, 4.0), max_sigma_mm=3.0)
    assert small.depth_mm == pytest.approx(20.0, abs=2.0) and small.sigma_mm < 3.0
    assert large.depth_mm is None and "uncertainty" in large.reason and large.sigma_mm > 3.0


def test_gaps():
    p = _profile(15.0, 0.0)
    z = p.z_mm.copy()
    z[30:33] = np.nan  # 15 cm inside: bridged
    assert estimate_rut(TransverseProfile(p.u_m, z, p.sigma_mm, 0.0, "video")).depth_mm is not None
    z[20:40] = np.nan  # 1 m: blank
    est = estimate_rut(TransverseProfile(p.u_m, z, p.sigma_mm, 0.0, "video"))
    assert est.depth_mm is None and "misses" in est.reason
    z = p.z_mm.copy()
    z[:2] = np.nan  # 10 cm at the lane edge: the nearest height stands in
    assert estimate_rut(TransverseProfile(p.u_m, z, p.sigma_mm, 0.0, "video")).depth_mm is not None


def test_sections_and_segments():
    a = estimate_rut(_profile(10.0, 0.0))
    b = estimate_rut(_profile(20.0, 0.0))
    blank = estimate_rut(_profile(20.0, 5.0))
    s1 = section_rut(0, 20, [a, b, blank])
    assert s1.rut_depth_mm == pytest.approx(15.0, abs=0.2) and (s1.n_profiles, s1.n_used) == (3, 2)
    s2 = section_rut(20, 40, [])
    assert s2.rut_depth_mm is None and s2.reason == "no profile measured" and math.isinf(s2.sigma_mm)
    s3 = section_rut(40, 60, [b])
    seg = segment_rut([s1, s2, s3])
    assert seg.rut_depth_mm == pytest.approx(17.5, abs=0.2)
    assert seg.rut_depth_max_mm == pytest.approx(20.0, abs=0.2)
    assert (seg.n_sections, seg.n_used) == (3, 2)
    assert segment_rut([s2]).rut_depth_mm is None
