"""Transverse profile of the lane from a burst of consecutive video frames (plane + parallax).

A single image has no depth; two images taken a known distance apart do. The burst's first
frame A is the reference; for every later frame B:

1. **Pose**: the road surface is nearly a plane, so A and B are related by the homography that
   plane induces. It is found by direct photometric alignment (least squares on band-passed
   images sampled over a top-view grid of the lane 2.6-7 m ahead): B's motion relative to A
   (forward, lateral, yaw), B's height change, pitch and roll, and A's pitch and roll. The
   camera's mount height (``camera.json``) fixes the metric scale; everything else is refined,
   so a mount that sagged with load or a braking pitch does not bias the result. A's pitch and
   roll are first *seated* by the residual of that fit over a few degrees around camera.json's,
   then levelled on the swept road plane. The refined pitch and roll of A are reported.
2. **Sweep**: for each lateral bin of the lane (5 cm) and each candidate height z of the surface
   there (1 mm steps), the grid points at height z are projected into A and B; where the
   surface really lies at z, the two images agree. The sum of squared differences over the bin's
   strip (4.4 m long: ruts run along the road) is minimal at the surface's height. Costs of all
   pairs of the burst add up; longer baselines weigh in more because their costs curve more.
3. **Uncertainty** per bin from the cost curve: for n samples with residual variance r at the
   minimum and curvature S'' of the summed cost, var(z) = 2 r / S'' x ``correlation``, where
   ``correlation`` counts how many grid samples one independent image sample spans (the grid is
   finer than the pixels far away and the band-pass correlates neighbours).

The plane the pose step fits absorbs any overall height and tilt of the profile; rut depth
(``pavement.rutting``) is measured below the crest line and does not depend on either.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from scipy.optimize import least_squares

from pavement.camera import CameraIntrinsics, CameraMount
from pavement.rut_profile import TransverseProfile


@dataclass(frozen=True)
class RutSweepConfig:
    """Geometry and resolution of the sweep (metres unless named otherwise)."""

    x_near_m: float = 2.6  # strip of road used, ahead of the camera
    x_far_m: float = 7.0
    grid_m: float = 0.01  # top-view sampling
    bin_m: float = 0.05  # lateral resolution of the profile
    lane_width_m: float = 3.5
    z_min_mm: float = -60.0  # heights swept, relative to the fitted plane
    z_max_mm: float = 25.0
    z_step_mm: float = 1.0
    correlation: float = 12.0  # grid samples per independent image sample (see module doc)
    min_samples: int = 400  # a bin seen by fewer grid samples (per pair) is not measured
    band_sigma_px: tuple[float, float] = (0.7, 2.5)  # difference of Gaussians kept for matching
    # Seating: the reference camera's pitch and roll tried around camera.json's (degrees); the one
    # whose plane fit leaves the least residual seeds the levelling (see ``seat_mount``).
    seat_pitch_deg: tuple[float, ...] = (-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0)
    seat_roll_deg: tuple[float, ...] = (-2.0, -1.0, 0.0, 1.0, 2.0)
    seat_grid_step: int = 4  # seating fits on every this many grid points (4 cm)
    # A fit that turns the camera further than this from the mount it started from (degrees of
    # pitch or roll) found no road plane: the burst is blank.
    max_turn_deg: float = 4.0


@dataclass(frozen=True)
class PairPose:
    """B relative to A: B's vehicle origin at (forward_m, lateral_m) in A's vehicle frame and its
    heading yaw_rad (left positive); the refined mounts of A and B; rms of the fit (grey levels)."""

    forward_m: float
    lateral_m: float
    yaw_rad: float
    mount_a: CameraMount
    mount_b: CameraMount
    rms: float


@dataclass(frozen=True)
class BurstProfile:
    """A burst's profile (or None when it could not be measured) and what the fit found."""

    profile: TransverseProfile | None
    pitch_deg: float  # refined pitch of the reference frame (mount + body)
    roll_deg: float
    baseline_m: float  # longest baseline used
    reason: str = ""


def bandpass(gray: np.ndarray, sigmas: tuple[float, float]) -> np.ndarray:
    """Difference of Gaussians of a grey image (float32): the texture the match relies on,
    without the slow shading and exposure differences between frames."""
    g = gray.astype(np.float32)
    return cv2.GaussianBlur(g, (0, 0), sigmas[0]) - cv2.GaussianBlur(g, (0, 0), sigmas[1])


def _grid(config: RutSweepConfig, step: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Top-view grid (rows = lateral y from +half to -half, cols = forward x) in A's vehicle frame."""
    half = config.lane_width_m / 2
    xs = np.arange(config.x_near_m, config.x_far_m, config.grid_m * step)
    ys = np.arange(half - config.grid_m / 2, -half, -config.grid_m * step)
    return np.meshgrid(xs, ys)


def _project(
    k: np.ndarray, mount: CameraMount, x: np.ndarray, y: np.ndarray, z: float | np.ndarray, motion=None
) -> tuple[np.ndarray, np.ndarray]:
    """Pixel maps (float32) of points (x, y, z) of A's vehicle frame seen by a camera whose vehicle
    origin is at motion = (forward, lateral, yaw) in A's frame (None = A itself)."""
    if motion is not None:
        fwd, lat, yaw = motion
        c, s = math.cos(yaw), math.sin(yaw)
        dx, dy = x - fwd, y - lat
        x, y = c * dx + s * dy, -s * dx + c * dy
    m = k @ mount.rotation_vehicle_to_camera()
    p = mount.position_vehicle
    px, py, pz = x - p[0], y - p[1], z - p[2]
    u = m[0, 0] * px + m[0, 1] * py + m[0, 2] * pz
    v = m[1, 0] * px + m[1, 1] * py + m[1, 2] * pz
    w = m[2, 0] * px + m[2, 1] * py + m[2, 2] * pz
    w = np.where(w > 1e-6, w, np.nan)
    return (u / w).astype(np.float32), (v / w).astype(np.float32)


def _sample(img: np.ndarray, maps: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    return cv2.remap(
        img, maps[0], maps[1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=np.nan
    )


def _with(mount: CameraMount, dh: float = 0.0, dpitch: float = 0.0, droll: float = 0.0) -> CameraMount:
    return CameraMount(
        mount.height_m + dh, mount.pitch_deg + dpitch, mount.roll_deg + droll, mount.yaw_deg, mount.lateral_m
    )


def refine_pair(
    band_a: np.ndarray,
    band_b: np.ndarray,
    intrinsics: CameraIntrinsics,
    mount: CameraMount,
    forward_guess_m: float,
    config: RutSweepConfig,
    step: int = 2,
) -> PairPose:
    """B's pose relative to A (whose mount is ``mount``), by robust least squares of the photometric
    residual the road plane z = 0 induces, on a grid of ``step`` x 1 cm."""
    k = intrinsics.matrix
    x, y = _grid(config, step=step)

    def unpack(q: np.ndarray) -> tuple[CameraMount, CameraMount, tuple[float, float, float]]:
        fwd, lat, yaw, dh, dpitch, droll = q
        return mount, _with(mount, dh, dpitch, droll), (fwd, lat, yaw)

    def residual(q: np.ndarray) -> np.ndarray:
        mount_a, mount_b, motion = unpack(q)
        r = _sample(band_a, _project(k, mount_a, x, y, 0.0)) - _sample(
            band_b, _project(k, mount_b, x, y, 0.0, motion)
        )
        return np.nan_to_num(r, nan=0.0).ravel()

    sol = least_squares(
        residual,
        [forward_guess_m, 0, 0, 0, 0, 0],
        x_scale=[0.05, 0.01, 0.001, 0.005, 0.05, 0.05],
        diff_step=1e-3,
        loss="soft_l1",
        f_scale=3.0,
        max_nfev=200,
    )
    mount_a, mount_b, motion = unpack(sol.x)
    valid = sol.fun != 0
    rms = float(np.sqrt(np.mean(sol.fun[valid] ** 2))) if valid.any() else math.inf
    return PairPose(*motion, mount_a, mount_b, rms)


def sweep_pair(
    band_a: np.ndarray,
    band_b: np.ndarray,
    intrinsics: CameraIntrinsics,
    pose: PairPose,
    config: RutSweepConfig,
    bin_m: tuple[float, float] | None = None,
    zs_mm: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Summed squared differences and sample counts (n_z, n_y, n_x) over blocks of ``bin_m`` =
    (lateral, forward) metres (default: the profile's bins over the whole strip), with the blocks'
    centres x (n_x,) and y (n_y,)."""
    k = intrinsics.matrix
    x, y = _grid(config)
    by, bx = bin_m or (config.bin_m, config.x_far_m - config.x_near_m)
    py, px = round(by / config.grid_m), min(x.shape[1], round(bx / config.grid_m))
    ny, nx = x.shape[0] // py, x.shape[1] // px
    x, y = x[: ny * py, : nx * px], y[: ny * py, : nx * px]
    zs = (zs_mm if zs_mm is not None else _heights_mm(config)) / 1000.0
    cost = np.zeros((len(zs), ny, nx))
    count = np.zeros((len(zs), ny, nx))
    motion = (pose.forward_m, pose.lateral_m, pose.yaw_rad)
    for i, z in enumerate(zs):
        d = _sample(band_a, _project(k, pose.mount_a, x, y, z)) - _sample(
            band_b, _project(k, pose.mount_b, x, y, z, motion)
        )
        ok = np.isfinite(d)
        cost[i] = np.where(ok, d * d, 0.0).reshape(ny, py, nx, px).sum(axis=(1, 3))
        count[i] = ok.reshape(ny, py, nx, px).sum(axis=(1, 3))
    return cost, count, x[0].reshape(nx, px).mean(axis=1), y[:, 0].reshape(ny, py).mean(axis=1)


def _parabola_min(xs: list[float], costs: list[float]) -> float | None:
    """Abscissa of the smallest finite cost, moved to the vertex of the parabola through it and its
    two neighbours when it has both (equally spaced xs); None when no cost is finite."""
    c = np.asarray(costs, dtype=float)
    if not np.isfinite(c).any():
        return None
    i = int(np.argmin(np.where(np.isfinite(c), c, np.inf)))
    if 0 < i < len(xs) - 1 and np.isfinite(c[i - 1]) and np.isfinite(c[i + 1]):
        den = c[i - 1] - 2 * c[i] + c[i + 1]
        if den > 0:
            return xs[i] + 0.5 * (c[i - 1] - c[i + 1]) / den * (xs[i + 1] - xs[i])
    return xs[i]


def seat_mount(
    band_a: np.ndarray,
    band_b: np.ndarray,
    intrinsics: CameraIntrinsics,
    mount: CameraMount,
    forward_guess_m: float,
    config: RutSweepConfig,
) -> CameraMount:
    """The reference camera's pitch, then roll, relative to the road plane, chosen among offsets
    from ``mount`` by the residual of the pair's plane fit (``refine_pair`` on a coarse grid).

    With A's pitch wrong by a degree or more, B's six parameters cannot reproduce the homography
    the road induces: the fit trades pitch for forward travel and height, its residual stays
    high, and levelling on the swept plane then moves the pitch further the wrong way (seen on
    synthetic runs: nominal 12 deg, true 10 deg, levelled to 15 deg). The residual itself has a
    sharp minimum at the right pitch, so it is searched first."""

    def rms(m: CameraMount) -> float:
        return refine_pair(band_a, band_b, intrinsics, m, forward_guess_m, config, config.seat_grid_step).rms

    if config.seat_pitch_deg:
        pitches = [mount.pitch_deg + d for d in config.seat_pitch_deg]
        pitch = _parabola_min(pitches, [rms(_with(mount, dpitch=p - mount.pitch_deg)) for p in pitches])
        if pitch is not None:  # None: nothing matched at any pitch (no texture); keep it
            mount = _with(mount, dpitch=pitch - mount.pitch_deg)
    if config.seat_roll_deg:
        rolls = [mount.roll_deg + d for d in config.seat_roll_deg]
        roll = _parabola_min(rolls, [rms(_with(mount, droll=r - mount.roll_deg)) for r in rolls])
        if roll is not None:
            mount = _with(mount, droll=roll - mount.roll_deg)
    return mount


def _heights_mm(config: RutSweepConfig) -> np.ndarray:
    return np.arange(config.z_min_mm, config.z_max_mm + 1e-9, config.z_step_mm)


def level_mount(
    mount: CameraMount, x: np.ndarray, y: np.ndarray, z: np.ndarray, w: np.ndarray
) -> CameraMount:
    """The mount turned so that the plane z = a + b x + c y, fitted (weights w) to heights z
    measured at (x, y) in the mount's vehicle frame, is level: new pitch and roll; the height
    stays (it is the metric scale of everything the two views measure)."""
    a_mat = np.column_stack([np.ones_like(x), x, y]) * w[:, None]
    a, b, c = np.linalg.lstsq(a_mat, z * w, rcond=None)[0]
    gx, gy = np.meshgrid([3.0, 5.0, 7.0], [-1.5, 0.0, 1.5])
    pts = np.column_stack([gx.ravel(), gy.ravel(), a + b * gx.ravel() + c * gy.ravel()])
    cam = (pts - mount.position_vehicle) @ mount.rotation_vehicle_to_camera().T

    def unlevel(q: np.ndarray) -> np.ndarray:
        m = _with(mount, 0.0, *q)
        h = (cam @ m.rotation_vehicle_to_camera() + m.position_vehicle)[:, 2]
        return h - h.mean()

    q = least_squares(unlevel, [0.0, 0.0], x_scale=[0.5, 0.5]).x
    return _with(mount, 0.0, *q)


def _minimum(zs_mm: np.ndarray, cost: np.ndarray, n: float, correlation: float) -> tuple[float, float]:
    """Sub-step minimum of one bin's summed cost and its 1-sigma (mm); NaN, inf when the curve has
    no interior minimum."""
    if not np.all(np.isfinite(cost)) or n <= 0:
        return math.nan, math.inf
    i = int(np.argmin(cost))
    if i == 0 or i == len(cost) - 1:
        return math.nan, math.inf
    c0, c1, c2 = cost[i - 1], cost[i], cost[i + 1]
    h = zs_mm[1] - zs_mm[0]
    curv = (c0 - 2 * c1 + c2) / (h * h)
    if curv <= 0:
        return math.nan, math.inf
    offset = 0.5 * (c0 - c2) / (c0 - 2 * c1 + c2) * h
    r = c1 / n  # residual variance per sample at the minimum
    return float(zs_mm[i] + offset), math.sqrt(2.0 * r / curv * correlation)


def _drop_outliers(z: np.ndarray, sigma: np.ndarray, window: int = 7, k: float = 4.0):
    """Bins more than k robust sigmas (and 5 mm) off the running median of their neighbours are
    false matches (a spurious minimum of the cost): they become unmeasured (NaN)."""
    z, sigma = z.copy(), sigma.copy()
    med = np.full_like(z, np.nan)
    for b in range(len(z)):
        near = z[max(0, b - window // 2) : b + window // 2 + 1]
        near = near[np.isfinite(near)]
        if len(near) >= 3:
            med[b] = np.median(near)
    dev = np.abs(z - med)
    scale = 1.4826 * np.nanmedian(dev)
    bad = ~(dev <= max(k * scale, 5.0))
    z[bad], sigma[bad] = np.nan, np.inf
    return z, sigma


def burst_profile(
    grays: list[np.ndarray],
    distances_m: list[float],
    intrinsics: CameraIntrinsics,
    mount: CameraMount,
    chainage_m: float,
    frame_index: int = -1,
    config: RutSweepConfig | None = None,
) -> BurstProfile:
    """The lane's cross profile at the burst's first frame.

    grays: the burst's grey frames in order; distances_m: travel of each from the first (from the
    track; the fit refines them); mount: the camera's mount (height = metric scale)."""
    config = config or RutSweepConfig()
    if len(grays) < 2:
        return BurstProfile(None, mount.pitch_deg, mount.roll_deg, 0.0, "a burst needs two frames")
    bands = [bandpass(g, config.band_sigma_px) for g in grays]
    # The longest pair levels the camera; every pair (first frame with each later one) measures.
    pairs = [len(grays) - 1]
    baseline = distances_m[-1]
    if baseline < 0.1:
        return BurstProfile(
            None, mount.pitch_deg, mount.roll_deg, baseline, "the car hardly moved in the burst"
        )
    # Level the reference camera on the road: sweep 25 x 50 cm blocks with the longest pair, fit a
    # plane to their heights, move the mount onto it, fit the pair again; the road plane's tilt
    # and offset are what a wrong pitch or roll leaves.
    guesses = {j: distances_m[j] for j in pairs}
    start = mount
    if config.seat_pitch_deg or config.seat_roll_deg:
        mount = seat_mount(bands[0], bands[pairs[-1]], intrinsics, mount, baseline, config)
    coarse = np.arange(-150.0, 150.0 + 1e-9, 3.0)
    for _ in range(6):
        j = pairs[-1]
        pose = refine_pair(bands[0], bands[j], intrinsics, mount, guesses[j], config)
        guesses[j] = pose.forward_m
        cost, count, xc, yc = sweep_pair(bands[0], bands[j], intrinsics, pose, config, (0.25, 0.5), coarse)
        xs, ys, zs, ws = [], [], [], []
        for iy in range(len(yc)):
            for ix in range(len(xc)):
                n = count[:, iy, ix].min()
                if n < config.min_samples / 4:
                    continue
                z, sig = _minimum(coarse, cost[:, iy, ix], n, config.correlation)
                if math.isfinite(z):
                    (
                        xs.append(xc[ix]),
                        ys.append(yc[iy]),
                        zs.append(z / 1000.0),
                        ws.append(1.0 / max(sig, 1.0)),
                    )
        if len(zs) < 6:
            return BurstProfile(
                None, mount.pitch_deg, mount.roll_deg, baseline, "too little road texture to match"
            )
        new = level_mount(mount, np.array(xs), np.array(ys), np.array(zs), np.array(ws))
        moved = abs(new.pitch_deg - mount.pitch_deg) + abs(new.roll_deg - mount.roll_deg)
        mount = new
        if moved < 0.02:
            break
    turned = max(abs(mount.pitch_deg - start.pitch_deg), abs(mount.roll_deg - start.roll_deg))
    if turned > config.max_turn_deg:
        return BurstProfile(
            None,
            mount.pitch_deg,
            mount.roll_deg,
            baseline,
            f"the road plane's fit turned the camera {turned:.1f} deg from where it started "
            f"(> {config.max_turn_deg:g}): no plane found",
        )
    heights = _heights_mm(config)
    total, counts, per_pair = None, None, []
    for j in range(1, len(grays)):
        pose = refine_pair(bands[0], bands[j], intrinsics, mount, guesses.get(j, distances_m[j]), config)
        cost, count, _, _ = sweep_pair(bands[0], bands[j], intrinsics, pose, config)
        cost, count = cost[:, :, 0], count[:, :, 0].min(axis=0)
        cost = np.where(count >= config.min_samples, cost, np.nan)
        per_pair.append(
            np.array([_minimum(heights, cost[:, b], count[b], 1.0)[0] for b in range(cost.shape[1])])
        )
        total = cost if total is None else total + cost
        counts = count if counts is None else counts + count
    n_bins = total.shape[1]
    z = np.full(n_bins, np.nan)
    sigma = np.full(n_bins, np.inf)
    for b in range(n_bins):
        if np.all(np.isfinite(total[:, b])):
            z[b], sigma[b] = _minimum(heights, total[:, b], counts[b], config.correlation)
    # Cross-check: each pair alone must find the same height (its plane removed: the pairs' planes
    # differ by their own fit); a false match in one pair shows as disagreement, which becomes the
    # bin's sigma when it is larger than the cost curve's.
    if len(per_pair) >= 2:
        stack = np.array([p - np.nanmedian(p) for p in per_pair])
        spread = np.nanstd(stack, axis=0) * math.sqrt(len(per_pair) / (len(per_pair) - 1))
        spread = np.where(np.isfinite(spread), spread, np.inf)
        sigma = np.maximum(sigma, spread / math.sqrt(len(per_pair)))
    else:
        sigma = sigma * 2.0  # one pair: no cross-check, so no credit for it
    z, sigma = _drop_outliers(z, sigma)
    # Bin b spans lateral y from the lane's left edge (y = +width/2) b bin widths to the right.
    u = (np.arange(n_bins) + 0.5) * config.bin_m
    profile = TransverseProfile(u, z, sigma, float(chainage_m), "video", frame_index)
    return BurstProfile(profile, mount.pitch_deg, mount.roll_deg, baseline)
