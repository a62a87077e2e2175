"""GPS track cleaning and smoothing in plane coordinates.

1. ``clean_track``: sort, drop duplicate times, flag fixes whose reported accuracy is poor, whose
   position is far from what their neighbours predict (robust local fit) or that imply a speed no
   car reaches. Each fix keeps a ``quality`` (0 = rejected).
2. ``smooth_track``: a constant-velocity Kalman filter with a Rauch-Tung-Striebel smoother in the
   plane rectangular system of the area, on a fine time grid. It takes the GPS positions, the
   phone's Doppler speed and course when the log has them, and optionally the speed of the camera
   over the road measured in the video (``SpeedSeries``), which pins the distance travelled
   between fixes and makes stops exact (zero-velocity updates).
3. ``SmoothTrack.sample``: position, heading, speed and a location quality at any times.

Location quality of a sample = P(position error < 5 m) under the smoother's Gaussian posterior,
``1 - exp(-25 / (2 sigma^2))``: 1.0 at sigma 1 m, 0.96 at 2 m, 0.39 at 5 m. It is 0 in gaps
longer than ``max_gap_s`` (no position is given there).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum

import numpy as np

from pavement.errors import ConfigError, GpsTrackError
from pavement.geodesy import PlaneProjection
from pavement.track import TrackPoint

QUALITY_RADIUS_M = 5.0


class FixFlag(StrEnum):
    OK = "ok"
    DUPLICATE = "duplicate"  # same time as the fix before
    POOR_ACCURACY = "poor_accuracy"  # reported accuracy worse than max_accuracy_m
    OUTLIER = "outlier"  # far from the track its neighbours describe
    IMPOSSIBLE_SPEED = "impossible_speed"  # would need a speed no car reaches


@dataclass(frozen=True)
class TrackConfig:
    """Parameters of cleaning and smoothing (metres, seconds)."""

    max_speed_mps: float = 70.0  # 250 km/h: faster than any patrol car
    max_accel_mps2: float = 8.0  # ~0.8 g: harder than a car brakes or accelerates
    max_accuracy_m: float = 30.0  # fixes reporting worse accuracy are dropped
    default_accuracy_m: float = 5.0  # 1-sigma of a fix when the log gives none
    min_accuracy_m: float = 2.0  # phones over-promise; never trust a fix more than this
    outlier_window_s: float = 5.0  # half-width of the neighbourhood of the robust local fit
    outlier_sigmas: float = 4.0  # residual gate, in robust sigmas of the residuals
    min_outlier_gate_m: float = 12.0  # never gate tighter than this
    max_gap_s: float = 30.0  # longer gaps without fixes are not bridged
    accel_psd_m2_per_s3: float = 1.0  # white-acceleration density along the direction of travel
    lateral_accel_psd_m2_per_s3: float = 6.0  # ... and across it (turning)
    grid_step_s: float = 0.1  # smoother time step
    doppler_sigma_mps: float = 0.5  # 1-sigma of the phone's Doppler speed
    video_speed_sigma_mps: float = 0.15  # 1-sigma of the video speed (plus video_speed_rel)
    video_speed_rel: float = 0.03
    stop_speed_mps: float = 0.3  # video speed below this = standing still (zero-velocity update)
    soft_gate: bool = False  # down-weight fixes far from the prediction (cleaning already drops outliers)

    def __post_init__(self) -> None:
        for name in (
            "max_speed_mps",
            "max_accel_mps2",
            "max_accuracy_m",
            "default_accuracy_m",
            "max_gap_s",
            "accel_psd_m2_per_s3",
            "grid_step_s",
            "outlier_window_s",
        ):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")


@dataclass(frozen=True)
class CleanTrack:
    """Fixes after cleaning, in time order; ``flags[i]`` says why fix i was kept or dropped."""

    points: tuple[TrackPoint, ...]
    flags: tuple[FixFlag, ...]

    @property
    def kept(self) -> tuple[TrackPoint, ...]:
        return tuple(p for p, f in zip(self.points, self.flags, strict=True) if f is FixFlag.OK)

    def count(self, flag: FixFlag) -> int:
        return sum(f is flag for f in self.flags)


@dataclass(frozen=True)
class TrackGap:
    """A stretch without fixes longer than the bridging limit."""

    start_unix_s: float
    end_unix_s: float

    @property
    def duration_s(self) -> float:
        return self.end_unix_s - self.start_unix_s

    def message(self, max_gap_s: float) -> str:
        at = datetime.fromtimestamp(self.start_unix_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return (
            f"GPS gap of {self.duration_s:.1f} s at {at}; at most {max_gap_s:g} s is bridged, "
            "so frames in it "
            "get no position (raise max_gap_s, or record with the phone's GPS on)"
        )


@dataclass(frozen=True)
class SpeedSeries:
    """Speed of the camera over the road, from the video, on the GPS clock.

    ``t_unix_s`` (n,), ``speed_mps`` (n,), ``valid`` (n,) bool: False where the video gave no
    reliable measurement (dark frame, no texture)."""

    t_unix_s: np.ndarray
    speed_mps: np.ndarray
    valid: np.ndarray


@dataclass(frozen=True)
class TrackSample:
    """The smoothed track at given times (struct of arrays, each (n,))."""

    t_unix_s: np.ndarray
    x_m: np.ndarray
    y_m: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    heading_deg: np.ndarray  # clockwise from north; held through stops
    speed_mps: np.ndarray
    pos_sigma_m: np.ndarray
    quality: np.ndarray
    covered: np.ndarray  # bool: inside the track's time span and not in a long gap

    def __len__(self) -> int:
        return len(self.t_unix_s)


@dataclass(frozen=True)
class SmoothTrack:
    """Smoothed states on a time grid: position (x, y) and velocity (vx, vy) in plane metres."""

    projection: PlaneProjection
    t_unix_s: np.ndarray  # (n,)
    state: np.ndarray  # (n, 4): x_m, y_m, vx_mps, vy_mps
    pos_sigma_m: np.ndarray  # (n,) sqrt of the mean of the x and y variances
    gaps: tuple[TrackGap, ...] = field(default_factory=tuple)

    @property
    def start_unix_s(self) -> float:
        return float(self.t_unix_s[0])

    @property
    def end_unix_s(self) -> float:
        return float(self.t_unix_s[-1])

    def sample(self, t_unix_s: np.ndarray) -> TrackSample:
        """Position, heading, speed and quality at ``t_unix_s`` (cubic Hermite between grid states)."""
        t = np.asarray(t_unix_s, dtype=float)
        tg, s = self.t_unix_s, self.state
        covered = (t >= tg[0]) & (t <= tg[-1])
        for gap in self.gaps:
            covered &= ~((t > gap.start_unix_s) & (t < gap.end_unix_s))
        tc = np.clip(t, tg[0], tg[-1])
        i = (
            np.clip(np.searchsorted(tg, tc, side="right") - 1, 0, len(tg) - 2)
            if len(tg) > 1
            else np.zeros(len(t), dtype=int)
        )
        if len(tg) > 1:
            h = tg[i + 1] - tg[i]
            u = (tc - tg[i]) / h
            h00, h10 = 2 * u**3 - 3 * u**2 + 1, u**3 - 2 * u**2 + u
            h01, h11 = -2 * u**3 + 3 * u**2, u**3 - u**2
            xy = (
                h00[:, None] * s[i, :2]
                + (h10 * h)[:, None] * s[i, 2:]
                + h01[:, None] * s[i + 1, :2]
                + (h11 * h)[:, None] * s[i + 1, 2:]
            )
            v = (1 - u)[:, None] * s[i, 2:] + u[:, None] * s[i + 1, 2:]
            sig = (1 - u) * self.pos_sigma_m[i] + u * self.pos_sigma_m[i + 1]
        else:
            xy, v, sig = s[i, :2], s[i, 2:], self.pos_sigma_m[i]
        speed = np.hypot(v[:, 0], v[:, 1])
        heading = _held_heading(self.t_unix_s, self.state, tc)
        quality = np.where(
            covered, 1 - np.exp(-(QUALITY_RADIUS_M**2) / (2 * np.maximum(sig, 1e-6) ** 2)), 0.0
        )
        latlon = self.projection.to_latlon(xy[:, 0], xy[:, 1])
        return TrackSample(
            t, xy[:, 0], xy[:, 1], latlon[:, 0], latlon[:, 1], heading, speed, sig, quality, covered
        )


def _held_heading(tg: np.ndarray, state: np.ndarray, t: np.ndarray, min_speed_mps: float = 1.0) -> np.ndarray:
    """Heading of the velocity, held at its last value while the car is (nearly) stopped."""
    speed = np.hypot(state[:, 2], state[:, 3])
    moving = speed >= min_speed_mps
    heading = np.degrees(np.arctan2(state[:, 2], state[:, 3])) % 360
    if not moving.any():
        return np.zeros(len(t))
    idx = np.where(moving, np.arange(len(tg)), -1)
    idx = np.maximum.accumulate(idx)
    first = int(np.argmax(moving))
    idx[idx < 0] = first
    held = heading[idx]
    # unwrap and interpolate between grid points
    unwrapped = np.degrees(np.unwrap(np.radians(held)))
    return np.interp(t, tg, unwrapped) % 360


# --------------------------------------------------------------------------------------------
# Cleaning
# --------------------------------------------------------------------------------------------
def clean_track(
    points: tuple[TrackPoint, ...] | list[TrackPoint],
    projection: PlaneProjection,
    config: TrackConfig = TrackConfig(),
) -> CleanTrack:
    """Flag duplicates, poor accuracy, outliers and impossible speeds; set each fix's quality."""
    pts = sorted(points, key=lambda p: p.t_unix_s)
    if not pts:
        raise GpsTrackError("the GPS log holds no fixes; upload the log the phone app wrote during the run")
    n = len(pts)
    flags = [FixFlag.OK] * n
    t = np.array([p.t_unix_s for p in pts])
    for i in range(1, n):
        if t[i] - t[i - 1] < 1e-3:
            flags[i] = FixFlag.DUPLICATE
    for i, p in enumerate(pts):
        if flags[i] is FixFlag.OK and p.accuracy_m is not None and p.accuracy_m > config.max_accuracy_m:
            flags[i] = FixFlag.POOR_ACCURACY
    xy = projection.to_plane(np.array([p.lat for p in pts]), np.array([p.lon for p in pts]))
    _flag_outliers(t, xy, flags, config)
    _flag_impossible_speeds(t, xy, pts, flags, config)
    cleaned: list[TrackPoint] = []
    for p, f in zip(pts, flags, strict=True):
        if f is FixFlag.OK:
            acc = p.accuracy_m if p.accuracy_m is not None else config.default_accuracy_m
            quality = float(1 - math.exp(-(QUALITY_RADIUS_M**2) / (2 * max(acc, config.min_accuracy_m) ** 2)))
        else:
            quality = 0.0
        cleaned.append(replace(p, quality=quality))
    if not any(f is FixFlag.OK for f in flags):
        raise GpsTrackError(
            f"all {n} GPS fixes were rejected (accuracy worse than {config.max_accuracy_m:g} m or outliers); "
            "check the log, or raise max_accuracy_m"
        )
    return CleanTrack(tuple(cleaned), tuple(flags))


def _flag_outliers(t: np.ndarray, xy: np.ndarray, flags: list[FixFlag], config: TrackConfig) -> None:
    """Robust local fit: each fix against a quadratic-in-time fit of its kept neighbours within
    +-outlier_window_s; fixes beyond the gate are flagged, repeated until nothing changes."""
    n = len(t)
    for _ in range(4):
        ok = np.array([f is FixFlag.OK for f in flags])
        residual = np.full(n, np.nan)
        for i in range(n):
            if flags[i] not in (FixFlag.OK, FixFlag.OUTLIER):
                continue
            lo, hi = np.searchsorted(t, [t[i] - config.outlier_window_s, t[i] + config.outlier_window_s])
            idx = np.arange(lo, hi)
            idx = idx[(idx != i) & ok[lo:hi]]
            if len(idx) < 3:
                continue
            dt = t[idx] - t[i]
            degree = 2 if len(idx) >= 5 else 1
            a = np.vander(dt, degree + 1)
            coef, *_ = np.linalg.lstsq(a, xy[idx], rcond=None)
            residual[i] = float(np.hypot(*(xy[i] - coef[-1])))
        finite = residual[np.isfinite(residual) & ok]
        if len(finite) < 5:
            return
        sigma = float(np.median(finite)) / 1.1774  # Rayleigh: median = 1.1774 sigma
        gate = max(config.outlier_sigmas * sigma, config.min_outlier_gate_m)
        changed = False
        for i in range(n):
            if not np.isfinite(residual[i]):
                continue
            # the worst offender first: neighbours of an outlier also show large residuals
            if flags[i] is FixFlag.OK and residual[i] > gate:
                lo, hi = np.searchsorted(t, [t[i] - config.outlier_window_s, t[i] + config.outlier_window_s])
                window = residual[lo:hi]
                if residual[i] >= np.nanmax(window):
                    flags[i] = FixFlag.OUTLIER
                    changed = True
            elif flags[i] is FixFlag.OUTLIER and residual[i] <= gate * 0.8:
                flags[i] = FixFlag.OK  # its neighbours were the outliers
                changed = True
        if not changed:
            return


def _flag_impossible_speeds(
    t: np.ndarray, xy: np.ndarray, pts: list[TrackPoint], flags: list[FixFlag], config: TrackConfig
) -> None:
    """A fix that needs more than max_speed_mps (beyond its noise) from the kept fix before it."""
    last = None
    for i in range(len(t)):
        if flags[i] is not FixFlag.OK:
            continue
        if last is not None:
            dt = t[i] - t[last]
            acc = 2 * (config.default_accuracy_m if pts[i].accuracy_m is None else pts[i].accuracy_m)
            if np.hypot(*(xy[i] - xy[last])) > config.max_speed_mps * dt + acc:
                flags[i] = FixFlag.IMPOSSIBLE_SPEED
                continue
        last = i


def find_gaps(t_unix_s: np.ndarray, max_gap_s: float) -> tuple[TrackGap, ...]:
    """Stretches between consecutive kept fixes longer than ``max_gap_s``."""
    t = np.asarray(t_unix_s, dtype=float)
    d = np.diff(t)
    return tuple(TrackGap(float(t[i]), float(t[i + 1])) for i in np.flatnonzero(d > max_gap_s))


# --------------------------------------------------------------------------------------------
# Smoothing
# --------------------------------------------------------------------------------------------
def smooth_track(
    clean: CleanTrack,
    projection: PlaneProjection,
    config: TrackConfig = TrackConfig(),
    video_speed: SpeedSeries | None = None,
) -> SmoothTrack:
    """Kalman filter + RTS smoother over the kept fixes, on a grid of ``grid_step_s`` plus every
    fix time. With the video's speed over the road, a second, along-track smoother places the car
    on the smoothed path: the fixes fix where it is, the video how far it moved in between."""
    kept = clean.kept
    if len(kept) < 2:
        raise GpsTrackError(
            f"only {len(kept)} usable GPS fix(es) after cleaning; at least 2 are needed to place frames"
        )
    tf = np.array([p.t_unix_s for p in kept])
    zf = projection.to_plane(np.array([p.lat for p in kept]), np.array([p.lon for p in kept]))
    rf = (
        np.array(
            [
                max(
                    p.accuracy_m if p.accuracy_m is not None else config.default_accuracy_m,
                    config.min_accuracy_m,
                )
                for p in kept
            ]
        )
        ** 2
    )
    gaps = find_gaps(tf, config.max_gap_s)
    grid = np.arange(tf[0], tf[-1], config.grid_step_s)
    times = np.union1d(grid, tf)
    fix_at = np.full(len(times), -1)
    fix_at[np.searchsorted(times, tf)] = np.arange(len(tf))
    doppler = [(p.speed_mps, p.heading_deg) for p in kept]
    states, pos_sigma = _smooth_plane(times, fix_at, zf, rf, doppler, config)
    if video_speed is not None:
        speed = _speed_per_step(times, video_speed)
        if np.isfinite(speed).sum() > 10:
            doppler_speed = np.array([np.nan if sp is None else sp for sp, _ in doppler], dtype=float)
            states, pos_sigma = _refine_along_track(
                times, states, pos_sigma, tf, zf, rf, doppler_speed, speed, config
            )
    return SmoothTrack(projection, times, states, pos_sigma, gaps)


def _speed_per_step(times: np.ndarray, video_speed: SpeedSeries) -> np.ndarray:
    """Mean valid video speed over each grid interval [times[k-1], times[k]); NaN where none."""
    n = len(times)
    vt = np.asarray(video_speed.t_unix_s, dtype=float)
    vs = np.asarray(video_speed.speed_mps, dtype=float)
    vv = np.asarray(video_speed.valid, dtype=bool) & np.isfinite(vs)
    k = np.searchsorted(times, vt[vv], side="right")
    inside = (k >= 1) & (k < n)
    sums = np.bincount(k[inside], weights=vs[vv][inside], minlength=n)
    cnts = np.bincount(k[inside], minlength=n)
    return np.where(cnts > 0, sums / np.maximum(cnts, 1), np.nan)


def _smooth_plane(
    times: np.ndarray,
    fix_at: np.ndarray,
    zf: np.ndarray,
    rf: np.ndarray,
    doppler: list[tuple[float | None, float | None]],
    config: TrackConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """Constant-velocity Kalman filter + RTS smoother in the plane; states (n, 4) and position sigma."""
    n = len(times)
    q = config.accel_psd_m2_per_s3
    q_lat = config.lateral_accel_psd_m2_per_s3
    x = np.zeros(4)
    x[:2] = zf[0]
    p_mat = np.diag([rf[0], rf[0], 100.0, 100.0])
    xs_f = np.zeros((n, 4))
    ps_f = np.zeros((n, 4, 4))
    xs_p = np.zeros((n, 4))
    ps_p = np.zeros((n, 4, 4))
    f_mats = np.zeros((n, 4, 4))
    gate2 = 18.4  # chi-square, 2 dof, 0.9999
    h_pos = np.array([[1.0, 0, 0, 0], [0, 1.0, 0, 0]])
    h_vel = np.array([[0, 0, 1.0, 0], [0, 0, 0, 1.0]])
    heading_unit = np.zeros(2)  # direction of travel, held through stops for speed-only updates
    for k in range(n):
        dt = times[k] - times[k - 1] if k else 0.0
        f = np.array([[1, 0, dt, 0], [0, 1, 0, dt], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=float)
        # Acceleration noise split along / across the direction of travel: a car brakes gently
        # but turns hard (lateral 2-4 m/s2 in a bend).
        if heading_unit.any() and math.hypot(x[2], x[3]) > 4.0:  # slow cars turn round: isotropic
            normal = np.array([-heading_unit[1], heading_unit[0]])
            acc_cov = q * np.outer(heading_unit, heading_unit) + q_lat * np.outer(normal, normal)
        else:
            acc_cov = np.eye(2) * q_lat
        qm = np.block([[acc_cov * dt**3 / 3, acc_cov * dt**2 / 2], [acc_cov * dt**2 / 2, acc_cov * dt]])
        x = f @ x
        p_mat = f @ p_mat @ f.T + qm
        f_mats[k], xs_p[k], ps_p[k] = f, x, p_mat
        j = fix_at[k]
        if j >= 0:
            innov = zf[j] - x[:2]
            d2 = float(innov @ np.linalg.solve(p_mat[:2, :2] + np.eye(2) * rf[j], innov))
            inflate = max(1.0, d2 / gate2) if config.soft_gate else 1.0
            x, p_mat = _update(x, p_mat, h_pos, zf[j], x[:2], np.eye(2) * rf[j] * inflate)
            speed, course = doppler[j]
            if speed is not None and np.isfinite(speed):
                r = config.doppler_sigma_mps**2
                if course is not None and speed > 2.0 and np.isfinite(course):
                    c = math.radians(course)
                    z = np.array([speed * math.sin(c), speed * math.cos(c)])
                    x, p_mat = _update(x, p_mat, h_vel, z, x[2:], np.eye(2) * r)
                elif speed < 0.2:
                    x, p_mat = _update(x, p_mat, h_vel, np.zeros(2), x[2:], np.eye(2) * r)
                else:
                    x, p_mat = _speed_update(x, p_mat, speed, r, heading_unit)
        sp = math.hypot(x[2], x[3])
        if sp > 2.0:
            heading_unit = x[2:] / sp
        xs_f[k], ps_f[k] = x, p_mat
    xs, ps = _rts(xs_f, ps_f, xs_p, ps_p, f_mats)
    return xs, np.sqrt(np.maximum((ps[:, 0, 0] + ps[:, 1, 1]) / 2, 0))


def _rts(
    xs_f: np.ndarray, ps_f: np.ndarray, xs_p: np.ndarray, ps_p: np.ndarray, f_mats: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Rauch-Tung-Striebel backward pass."""
    xs, ps = xs_f.copy(), ps_f.copy()
    eye = np.eye(xs_f.shape[1]) * 1e-12
    for k in range(len(xs) - 2, -1, -1):
        c = ps_f[k] @ f_mats[k + 1].T @ np.linalg.inv(ps_p[k + 1] + eye)
        xs[k] = xs_f[k] + c @ (xs[k + 1] - xs_p[k + 1])
        ps[k] = ps_f[k] + c @ (ps[k + 1] - ps_p[k + 1]) @ c.T
    return xs, ps


def _arc_of_points(
    times: np.ndarray, path: np.ndarray, arc: np.ndarray, t: np.ndarray, xy: np.ndarray
) -> np.ndarray:
    """Arc length of each point (t, xy) projected onto the path near its time (+-15 s), so that a
    path that doubles back is not confused with its other leg."""
    out = np.empty(len(t))
    for j, tj in enumerate(t):
        lo, hi = np.searchsorted(times, [tj - 15.0, tj + 15.0])
        lo, hi = max(lo, 0), min(max(hi, lo + 2), len(times))
        a, b = path[lo : hi - 1], path[lo + 1 : hi]
        ab = b - a
        len2 = np.maximum((ab**2).sum(1), 1e-12)
        u = np.clip(((xy[j] - a) * ab).sum(1) / len2, 0, 1)
        proj = a + u[:, None] * ab
        i = int(np.argmin(((xy[j] - proj) ** 2).sum(1)))
        out[j] = arc[lo + i] + u[i] * (arc[lo + i + 1] - arc[lo + i])
    return out


def fix_arc_lengths(track: SmoothTrack, clean: CleanTrack, min_speed_mps: float = 0.5) -> np.ndarray:
    """Distance along the smoothed path (m, from its start) of each kept fix, projected onto the
    path near its own time; the path does not grow while the smoothed speed is below
    ``min_speed_mps`` (GPS jitter at a stop). One value per ``clean.kept`` fix."""
    kept = clean.kept
    xy = track.projection.to_plane(np.array([p.lat for p in kept]), np.array([p.lon for p in kept]))
    path = track.state[:, :2]
    moving = np.hypot(track.state[:, 2], track.state[:, 3]) >= min_speed_mps
    step = np.where(moving[1:] | moving[:-1], np.hypot(*np.diff(path, axis=0).T), 0.0)
    arc = np.concatenate([[0.0], np.cumsum(step)])
    return _arc_of_points(track.t_unix_s, path, arc, np.array([p.t_unix_s for p in kept]), xy)


def _refine_along_track(
    times: np.ndarray,
    states: np.ndarray,
    pos_sigma: np.ndarray,
    tf: np.ndarray,
    zf: np.ndarray,
    rf: np.ndarray,
    doppler_speed: np.ndarray,
    speed: np.ndarray,
    config: TrackConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """Along-track Kalman/RTS smoother on the smoothed path: state (s, v) with s the arc length;
    measurements: each fix projected onto the path near its time, and the video speed (zero
    velocity while standing). Returns the states moved along the path to the refined s."""
    path = states[:, :2]
    # the path's length does not grow while the video says the car stands (GPS jitter)
    standing = np.nan_to_num(speed, nan=np.inf)[1:] < config.stop_speed_mps
    arc = np.concatenate([[0.0], np.cumsum(np.where(standing, 0.0, np.hypot(*np.diff(path, axis=0).T)))])
    s_fix = _arc_of_points(times, path, arc, tf, zf)
    fix_at = np.full(len(times), -1)
    fix_at[np.searchsorted(times, tf)] = np.arange(len(tf))
    n = len(times)
    q = config.accel_psd_m2_per_s3
    x = np.array([s_fix[0], 0.0])
    p_mat = np.diag([rf[0], 100.0])
    xs_f, ps_f = np.zeros((n, 2)), np.zeros((n, 2, 2))
    xs_p, ps_p = np.zeros((n, 2)), np.zeros((n, 2, 2))
    f_mats = np.zeros((n, 2, 2))
    h_s, h_v = np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])
    for k in range(n):
        dt = times[k] - times[k - 1] if k else 0.0
        f = np.array([[1.0, dt], [0.0, 1.0]])
        x = f @ x
        p_mat = f @ p_mat @ f.T + q * np.array([[dt**3 / 3, dt**2 / 2], [dt**2 / 2, dt]])
        f_mats[k], xs_p[k], ps_p[k] = f, x, p_mat
        if np.isfinite(speed[k]):
            if speed[k] < config.stop_speed_mps:
                x, p_mat = _update(x, p_mat, h_v, np.zeros(1), x[1:], np.array([[0.05**2]]))
            else:
                r = (config.video_speed_sigma_mps + config.video_speed_rel * speed[k]) ** 2
                x, p_mat = _update(x, p_mat, h_v, speed[k : k + 1], x[1:], np.array([[r]]))
        j = fix_at[k]
        if j >= 0:
            x, p_mat = _update(x, p_mat, h_s, s_fix[j : j + 1], x[:1], np.array([[rf[j]]]))
            if np.isfinite(doppler_speed[j]):
                x, p_mat = _update(
                    x, p_mat, h_v, doppler_speed[j : j + 1], x[1:], np.array([[config.doppler_sigma_mps**2]])
                )
        xs_f[k], ps_f[k] = x, p_mat
    xs, ps = _rts(xs_f, ps_f, xs_p, ps_p, f_mats)
    s_new = np.clip(xs[:, 0], arc[0], arc[-1])
    # position on the path at s_new; direction of the path there; speed from the along-track state
    xy = np.column_stack([np.interp(s_new, arc, path[:, 0]), np.interp(s_new, arc, path[:, 1])])
    step = np.maximum(np.diff(arc), 1e-9)
    tangent = np.diff(path, axis=0) / step[:, None]
    seg = np.clip(np.searchsorted(arc, s_new, side="right") - 1, 0, len(tangent) - 1)
    moving_dir = states[:, 2:] / np.maximum(np.hypot(states[:, 2], states[:, 3]), 1e-9)[:, None]
    direction = np.where((np.diff(arc)[seg] > 1e-3)[:, None], tangent[seg], moving_dir)
    v = np.maximum(xs[:, 1], 0.0)[:, None] * direction
    refined = np.column_stack([xy, v])
    sigma = np.sqrt(np.maximum((ps[:, 0, 0] + pos_sigma**2) / 2, 0))
    return refined, sigma


def _speed_update(
    x: np.ndarray, p: np.ndarray, speed_mps: float, r: float, heading_unit: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Measured speed = |v|, linearised along the current velocity; while the filter's velocity
    is too small to give a direction (pulling away after a stop), along the last heading."""
    sp = math.hypot(x[2], x[3])
    u = x[2:] / sp if sp > 2.0 else heading_unit
    if not u.any():
        return x, p
    h = np.array([[0.0, 0.0, u[0], u[1]]])
    return _update(x, p, h, np.array([speed_mps]), h[:, 2:] @ x[2:], np.array([[r]]))


def _update(
    x: np.ndarray, p: np.ndarray, h: np.ndarray, z: np.ndarray, hx: np.ndarray, r: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    s = h @ p @ h.T + r
    k = p @ h.T @ np.linalg.inv(s)
    x = x + k @ (z - hx)
    i_kh = np.eye(len(x)) - k @ h
    p = i_kh @ p @ i_kh.T + k @ r @ k.T  # Joseph form: stays symmetric positive definite
    return x, p


def distance_travelled_m(sample: TrackSample, min_speed_mps: float = 0.5) -> np.ndarray:
    """Cumulative distance (m) along the samples, counting only steps where the car moves
    (speed >= min_speed_mps): GPS jitter while standing adds nothing."""
    if len(sample) == 0:
        return np.zeros(0)
    step = np.hypot(np.diff(sample.x_m), np.diff(sample.y_m))
    moving = (sample.speed_mps[1:] >= min_speed_mps) | (sample.speed_mps[:-1] >= min_speed_mps)
    step = np.where(moving & sample.covered[1:] & sample.covered[:-1], step, 0.0)
    return np.concatenate([[0.0], np.cumsum(step)])
