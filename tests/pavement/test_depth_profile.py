"""Rut profiles from depth maps of an analytic road: a plane with two cos^2 ruts of known depth."""

import math

import numpy as np
import pytest

from pavement.camera import CameraIntrinsics, CameraMount
from pavement.depth_profile import DepthProfileConfig, backproject, profile_from_depth, smooth_profile
from pavement.errors import ConfigError
from pavement.rut_profile import estimate_rut
from pavement.rutting import rut_depth

INTRINSICS = CameraIntrinsics.from_fov(256, 144, 70.0)
GUESS = CameraMount(1.35, 12.0, 0.0)
LANE_M = 3.5
#: Ruts as (lateral y of the trough, m left of the camera; depth mm; width m): the left one
#: (u = 0.9 m from the lane's left edge) 15 mm, the right one (u = 2.6 m) 25 mm.
RUTS = ((0.85, 15.0, 1.0), (-0.85, 25.0, 1.0))


def road_height_m(y: np.ndarray, crossfall: float = 0.02) -> np.ndarray:
    """Height (m) of the analytic road at lateral position y (m, left +): cross-fall + two ruts."""
    z = -crossfall * y
    for centre, depth_mm, width in RUTS:
        d = np.abs(y - centre)
        z = z - np.where(d < width / 2, depth_mm / 1000 * np.cos(np.pi * d / width) ** 2, 0.0)
    return z


def depth_map(
    mount: CameraMount, noise_mm_per_m: float = 0.0, seed: int = 0, intrinsics=INTRINSICS
) -> np.ndarray:
    """Exact z-depth (m) of every pixel's ray on the analytic road (NaN above the horizon or
    beyond 8 m), plus Gaussian noise of ``noise_mm_per_m`` mm per metre of depth."""
    v, u = np.mgrid[0 : intrinsics.height_px, 0 : intrinsics.width_px].astype(float)
    d_cam = np.stack(
        [
            (u - intrinsics.cx_px) / intrinsics.fx_px,
            (v - intrinsics.cy_px) / intrinsics.fy_px,
            np.ones_like(u),
        ],
        -1,
    )
    d_veh = d_cam @ mount.rotation_vehicle_to_camera()  # R^T d: the ray per unit of z-depth
    down = d_veh[..., 2] < -1e-3
    lam = np.where(down, mount.height_m / np.where(down, -d_veh[..., 2], 1.0), np.nan)
    for _ in range(30):  # fixed point: camera height + lam dz = road height under the ray
        y = mount.lateral_m + lam * d_veh[..., 1]
        lam = (mount.height_m - road_height_m(y)) / np.where(down, -d_veh[..., 2], 1.0)
    lam = np.where(down & (lam < 8.0), lam, np.nan)
    rng = np.random.default_rng(seed)
    return lam + rng.normal(0.0, 1.0, lam.shape) * noise_mm_per_m / 1000 * lam


def true_profile() -> tuple[np.ndarray, np.ndarray]:
    u = np.arange(0, LANE_M + 0.005, 0.01)
    return u, road_height_m(LANE_M / 2 - u) * 1000


def test_analytic_truth_is_what_the_ruts_say():
    d = rut_depth(*true_profile())
    assert (d.d1_mm, d.d2_mm) == pytest.approx((15.0, 25.0), abs=0.01)


def test_backprojection_lands_on_the_road():
    mount = CameraMount(1.35, 12.0, 0.0)
    pts = backproject(depth_map(mount), INTRINSICS)
    rot = mount.rotation_vehicle_to_camera()
    veh = pts @ rot + mount.position_vehicle  # R^T p + c
    assert np.allclose(veh[:, 2], road_height_m(veh[:, 1]), atol=1e-6)


@pytest.mark.parametrize(
    "true_mount",
    [
        CameraMount(1.35, 12.0, 0.0),
        CameraMount(1.37, 13.5, 2.0),  # pitch off the guess by 1.5 deg, roll 2 deg, 2 cm higher
        CameraMount(1.33, 10.5, -2.0, yaw_deg=0.5),
        CameraMount(1.35, 20.0, 0.0),  # tipped 8 deg further down than camera.json says: the plane fit's job
    ],
)
def test_recovers_the_rut_depths_within_1_mm(true_mount):
    profile = profile_from_depth(depth_map(true_mount), INTRINSICS, GUESS, chainage_m=12.0, frame_index=3)
    assert profile is not None and profile.source == "depth"
    assert (profile.chainage_m, profile.frame_index) == (12.0, 3)
    assert profile.u_m[0] == 0 and profile.u_m[-1] == pytest.approx(LANE_M)
    assert np.isfinite(profile.z_mm).all()
    est = estimate_rut(profile)
    assert est.depth_mm == pytest.approx(25.0, abs=1.0)
    # Orientation: the shallow rut is on the driver's left (u small), as in truth.json's d1_mm.
    assert est.d1_mm == pytest.approx(15.0, abs=1.0) and est.d2_mm == pytest.approx(25.0, abs=1.0)


def test_noise_raises_the_sigma_but_not_the_depth():
    mount = CameraMount(1.36, 13.0, 1.0)
    quiet = profile_from_depth(depth_map(mount), INTRINSICS, GUESS)
    noisy = profile_from_depth(depth_map(mount, noise_mm_per_m=3.0, seed=1), INTRINSICS, GUESS)
    assert np.nanmedian(noisy.sigma_mm) > 4 * max(np.nanmedian(quiet.sigma_mm), 0.01)
    assert 0.05 < np.nanmedian(noisy.sigma_mm) < 2.0
    est = estimate_rut(noisy)
    assert est.depth_mm == pytest.approx(25.0, abs=1.0)
    assert est.sigma_mm > estimate_rut(quiet).sigma_mm


@pytest.mark.parametrize(
    "blank",
    [
        "all",  # no returns at all
        "lower",  # the road ahead hidden (the phone looks at the dashboard or the sky)
        "far",  # returns only beyond 7 m: nothing in the 2.5-6 m strip
    ],
)
def test_too_little_road_gives_no_profile(blank):
    depth = depth_map(GUESS)
    if blank == "all":
        depth[:] = np.nan
    elif blank == "lower":
        depth[40:] = np.nan
    else:
        depth[depth < 7.0] = np.nan
    assert profile_from_depth(depth, INTRINSICS, GUESS) is None


def test_sparse_bins_are_nan_and_the_rest_survives():
    depth = depth_map(GUESS)
    depth[:, 160:] = np.nan  # the right of the image is missing: the lane's right part
    profile = profile_from_depth(depth, INTRINSICS, GUESS)
    assert profile is not None
    assert np.isnan(profile.z_mm[-1]) and np.isnan(profile.sigma_mm[-1])
    assert np.isfinite(profile.z_mm[:20]).all()
    assert estimate_rut(profile).depth_mm is None


def test_smoothing_keeps_a_parabola_and_lowers_the_noise():
    u = np.arange(0, 3.51, 0.05)
    bowl = 20.0 * (u - 1.75) ** 2
    sigma = np.full_like(u, 1.0)
    z, s = smooth_profile(u, bowl, sigma, 0.15)
    assert z == pytest.approx(bowl, abs=1e-9)
    assert s[10] == pytest.approx(np.sqrt(1 / 3), rel=1e-6)  # 7-point quadratic, centre weight 1/3
    assert np.all(s <= 1.0 + 1e-12)
    holes = bowl.copy()
    holes[30:33] = sigma[30:33] = np.nan
    z, s = smooth_profile(u, holes, sigma, 0.15)
    assert np.isnan(z[30:33]).all() and np.isnan(s[30:33]).all()
    assert z[29] == pytest.approx(bowl[29], abs=1e-9)  # fitted from the points on one side


def test_smoothing_halves_the_noise_bias_of_a_shallow_rut():
    # Noise deepens a measured rut; over many noise draws, smoothing brings the mean closer.
    mount = CameraMount(1.35, 12.0, 0.0)
    raw, smooth = [], []
    for seed in range(4):
        depth = depth_map(mount, noise_mm_per_m=3.0, seed=seed)
        raw.append(
            estimate_rut(profile_from_depth(depth, INTRINSICS, GUESS, config=DepthProfileConfig(smooth_m=0)))
        )
        smooth.append(estimate_rut(profile_from_depth(depth, INTRINSICS, GUESS)))
    bias_raw = np.mean([e.depth_mm for e in raw]) - 25.0
    bias_smooth = np.mean([e.depth_mm for e in smooth]) - 25.0
    assert 0 < bias_smooth < bias_raw / 2 + 0.1


def test_size_mismatch_is_refused():
    with pytest.raises(ConfigError, match="intrinsics"):
        profile_from_depth(np.ones((10, 10)), INTRINSICS, GUESS)


def test_degrees_of_a_typical_strip():
    # Sanity of the geometry the defaults rely on: the strip 2.5-6 m ahead is in view.
    bottom = math.degrees(math.atan((INTRINSICS.height_px / 2) / INTRINSICS.fy_px)) + GUESS.pitch_deg
    assert GUESS.height_m / math.tan(math.radians(bottom)) < 2.5
