"""The phone's sensors: GPS fixes at 1 Hz, the 3-axis accelerometer at 100 Hz, and a depth sensor.

Times are true UTC (Unix seconds). The video's clock is the one that is off: a frame's true
time is creation_time + pts + clock_offset_s (see ``pipelines/synth.py``).

GPS: the true position of the phone plus a slowly wandering error (first-order Gauss-Markov,
3-5 m rms per axis, 20 s correlation: consecutive fixes err alike, as multipath and atmosphere
do), and a few outliers of 20-60 m with a high HDOP.

Accelerometer: specific force (acceleration minus gravity, so +g upward at rest) of the body at
the phone, in the phone's axes. The phone is the camera, mounted in landscape with its screen to
the driver: phone x = up in the image (-camera y), phone y = left (-camera x), phone z = toward
the driver (-camera z). At rest and level, x reads about +9.8 m/s^2, tilted by the mount's pitch
and roll, which include the body's pitch and roll. White noise and a constant bias per axis.

Depth sensor (phone LiDAR / ToF, as on phones that have one): co-located with the camera and
looking the same way, at a lower resolution (the colour camera's intrinsics scaled, 256 px wide;
phones give 256x192 at 4:3). Per pixel the z-depth of the ray's hit on the height field, plus
independent Gaussian noise of 1-sigma 2 mm + 0.2 % of the depth (6 mm at 2 m, 10 mm at 4 m,
14 mm at 6 m: the +-1 cm reported for phone LiDAR at a few metres), rounded to whole millimetres;
no return beyond 8 m of range, above the horizon, and at 1 % of the pixels at random. Not
modelled: the smoothing and flying pixels of real depth maps, multipath, and the roadside poles
and trees (they are drawn only in the colour image).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import signal

from pavement.camera import CameraIntrinsics, CameraMount
from pavement.synthetic.route import Route
from pavement.synthetic.vehicle import GRAVITY_MPS2, Drive

# Camera axes (x right, y down, z forward) -> phone axes (x up, y left, z toward the driver).
CAMERA_TO_PHONE = np.array([[0.0, -1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, -1.0]])


@dataclass(frozen=True, eq=False)
class GpsFixes:
    """Fixes as a struct of arrays (n,): true UTC time, WGS84 degrees, metres, m/s, degrees."""

    t_unix_s: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    ele_m: np.ndarray
    hdop: np.ndarray
    speed_mps: np.ndarray
    bearing_deg: np.ndarray
    satellites: np.ndarray
    outlier: np.ndarray  # bool: the fixes made outliers (truth only)


@dataclass(frozen=True, eq=False)
class AccelSamples:
    """Accelerometer samples (n,) and (n, 3): true UTC time and phone-axis specific force."""

    t_unix_s: np.ndarray
    accel_mps2: np.ndarray


@dataclass(frozen=True)
class GpsSpec:
    error_rms_m: float  # per axis
    correlation_s: float = 20.0  # 0: independent fixes (white noise)
    n_outliers: int = 3
    elevation_m: float = 38.0


def simulate_gps(
    drive: Drive, route: Route, video_start_unix_s: float, spec: GpsSpec, rng: np.random.Generator
) -> GpsFixes:
    """Fixes at whole UTC seconds over the drive (which starts before the video)."""
    t0 = video_start_unix_s + drive.t_s[0]
    t1 = video_start_unix_s + drive.t_s[-1]
    times = np.arange(math.ceil(t0), math.floor(t1) + 1, 1.0)
    tv = times - video_start_unix_s
    x = drive.at(tv, "x_m")
    y = drive.at(tv, "y_m")
    n = len(times)
    rho = math.exp(-1.0 / spec.correlation_s) if spec.correlation_s > 0 else 0.0  # 0: independent
    err = np.zeros((n, 2))
    err[0] = rng.normal(0, spec.error_rms_m, 2)
    for i in range(1, n):
        err[i] = rho * err[i - 1] + math.sqrt(1 - rho * rho) * rng.normal(0, spec.error_rms_m, 2)
    hdop = np.round(rng.uniform(0.7, 1.4, n), 1)
    outlier = np.zeros(n, bool)
    if n > 10:
        idx = rng.choice(np.arange(3, n - 3), size=min(spec.n_outliers, n - 6), replace=False)
        outlier[idx] = True
        ang = rng.uniform(0, 2 * np.pi, len(idx))
        dist = rng.uniform(20.0, 60.0, len(idx))
        err[idx] += np.column_stack([np.cos(ang), np.sin(ang)]) * dist[:, None]
        hdop[idx] = np.round(rng.uniform(2.5, 6.0, len(idx)), 1)
    latlon = route.to_latlon(x + err[:, 0], y + err[:, 1])
    speed = np.maximum(drive.at(tv, "speed_mps") + rng.normal(0, 0.15, n), 0.0)
    bearing = route.bearing_deg(drive.heading_at(tv)) + rng.normal(0, 2.0, n)
    return GpsFixes(
        t_unix_s=times,
        lat=latlon[:, 0],
        lon=latlon[:, 1],
        ele_m=np.round(spec.elevation_m + rng.normal(0, 3.0, n), 1),
        hdop=hdop,
        speed_mps=np.round(speed, 2),
        bearing_deg=np.round(np.mod(bearing, 360.0), 1),
        satellites=rng.integers(7, 14, n),
        outlier=outlier,
    )


def simulate_accel(
    drive: Drive,
    mount: CameraMount,
    video_start_unix_s: float,
    rng: np.random.Generator,
    rate_hz: float = 100.0,
    noise_mps2: float = 0.03,
) -> AccelSamples:
    """Phone accelerometer at ``rate_hz`` over the drive; ``mount`` is the true static mount
    (the body's pitch and roll are added per sample)."""
    t_start = video_start_unix_s + drive.t_s[0]
    n = int((drive.t_s[-1] - drive.t_s[0]) * rate_hz)
    tv = drive.t_s[0] + np.arange(n) / rate_hz
    # Specific force in the level, yaw-aligned vehicle frame (x forward, y left, z up).
    f = np.column_stack(
        [
            drive.at(tv, "accel_long_mps2"),
            drive.at(tv, "accel_lat_mps2"),
            drive.at(tv, "accel_vert_mps2") + GRAVITY_MPS2,
        ]
    )
    pitch = mount.pitch_deg + drive.at(tv, "pitch_deg")
    roll = mount.roll_deg + drive.at(tv, "roll_deg")
    out = np.empty_like(f)
    for i in range(n):
        m = CameraMount(mount.height_m, float(pitch[i]), float(roll[i]), mount.yaw_deg, mount.lateral_m)
        out[i] = CAMERA_TO_PHONE @ (m.rotation_vehicle_to_camera() @ f[i])
    # The phone's digital low-pass (~40 Hz), then noise, a bias per axis, 1 mg quantisation.
    sos = signal.butter(4, 40.0 / (rate_hz / 2) * 0.98, output="sos")
    out = signal.sosfilt(sos, out - out[0], axis=0) + out[0]
    out += rng.normal(0, noise_mps2, out.shape) + rng.uniform(-0.06, 0.06, 3)
    out = np.round(out / 0.0098) * 0.0098
    return AccelSamples(t_start + np.arange(n) / rate_hz, out)


@dataclass(frozen=True)
class DepthSpec:
    """The phone's depth sensor (see the module's docstring)."""

    width_px: int = 256  # height follows the colour camera's aspect ratio
    noise_mm: float = 2.0  # 1-sigma = noise_mm + noise_rel x depth
    noise_rel: float = 0.002
    max_range_m: float = 8.0  # no return farther along the ray
    dropout: float = 0.01  # share of pixels without a return, at random

    def intrinsics(self, camera: CameraIntrinsics) -> CameraIntrinsics:
        """The depth sensor's pinhole: the colour camera's, scaled to ``width_px``."""
        return camera.scaled(self.width_px, max(1, round(self.width_px * camera.height_px / camera.width_px)))


def depth_map_mm(
    range_m: np.ndarray, intrinsics: CameraIntrinsics, rng: np.random.Generator, spec: DepthSpec = DepthSpec()
) -> np.ndarray:
    """A depth map (h, w) uint16 in millimetres of z-depth (0 = no return) from the range of each
    pixel's hit along its unit ray (m, NaN = no hit) as the renderer gives it (``Renderer.hits``)."""
    h, w = range_m.shape
    v, u = np.mgrid[0:h, 0:w].astype(float)
    cos_axis = 1.0 / np.sqrt(
        ((u - intrinsics.cx_px) / intrinsics.fx_px) ** 2
        + ((v - intrinsics.cy_px) / intrinsics.fy_px) ** 2
        + 1.0
    )
    z_mm = range_m * cos_axis * 1000.0
    z_mm = z_mm + rng.normal(0.0, 1.0, z_mm.shape) * (spec.noise_mm + spec.noise_rel * z_mm)
    ok = np.isfinite(z_mm) & (range_m <= spec.max_range_m) & (rng.random(z_mm.shape) >= spec.dropout)
    return np.where(ok, np.clip(np.round(z_mm), 1, 65535), 0).astype(np.uint16)
