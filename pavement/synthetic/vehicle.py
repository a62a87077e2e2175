"""The patrol car: speed profile with one stop, lane wander, and body motion over the road.

Longitudinal: cruise speeds of 20-60 km/h changing every 60-150 m, with jerk-limited
acceleration, and one full stop of a few seconds (a signal, a junction) somewhere in the middle
of the run. Lateral: the car wanders in its lane (sum of slow sinusoids, ~0.15 m rms).

Vertical: a quarter-car per axle (a realistic passenger car, *not* the IRI golden car) driven by
the lane's true surface under its wheels, averaged over a 12 cm tyre contact patch. The body's
heave and vertical acceleration at the phone are interpolated between the axles; body pitch is
the axles' height difference plus a second-order dive under braking (squat under throttle);
body roll follows the left-right difference of the road under the front axle.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import signal
from scipy.linalg import expm

from pavement.roughness import QuarterCar
from pavement.segments import Direction
from pavement.synthetic.scene import Scene

GRAVITY_MPS2 = 9.80665


@dataclass(frozen=True)
class VehicleParams:
    """The true car. Quarter-car parameters are per unit sprung mass, as ``QuarterCar``."""

    quarter_car: QuarterCar
    wheelbase_m: float = 2.65
    track_m: float = 1.5
    front_axle_ahead_m: float = 0.9  # front axle ahead of the phone on the dashboard
    dive_deg_per_mps2: float = 0.35  # nose-down pitch per m/s^2 of deceleration
    pitch_hz: float = 1.5
    roll_hz: float = 1.6
    body_damping: float = 0.45
    tyre_patch_m: float = 0.12


def random_vehicle(rng: np.random.Generator) -> VehicleParams:
    """A compact car: body bounce ~1.2-1.4 Hz, damping ratio ~0.3, wheel hop ~10-11 Hz."""
    f_body = rng.uniform(1.2, 1.4)
    zeta = rng.uniform(0.25, 0.35)
    mu = rng.uniform(0.11, 0.14)
    k2 = (2 * math.pi * f_body) ** 2 * 1.08  # the tyre's compliance lowers the body mode a little
    c = 2 * zeta * math.sqrt(k2)
    f_wheel = rng.uniform(10.0, 11.5)
    k1 = (2 * math.pi * f_wheel) ** 2 * mu - k2
    return VehicleParams(QuarterCar(k1=round(k1, 1), k2=round(k2, 2), c=round(c, 3), mu=round(mu, 4)))


@dataclass(frozen=True)
class DriveSpec:
    """What the driver does over a run of ``length_m`` in ``direction`` from chainage ``start_m``."""

    start_m: float
    length_m: float
    direction: Direction
    min_speed_kmh: float = 20.0
    max_speed_kmh: float = 60.0
    stop_s: tuple[float, float] = (3.0, 6.0)
    lead_s: float = 4.0  # logging starts this long before the video
    tail_s: float = 3.0  # and ends this long after it
    dt_s: float = 0.01


@dataclass(frozen=True, eq=False)
class Drive:
    """The true motion, every ``dt_s`` from ``t_s[0]`` (seconds from the first video frame).

    Per sample (n,): chainage ``s_m`` and lateral ``t_m`` of the vehicle frame's origin (on the
    datum below the phone), plane position, heading (rad, math angle), speed (m/s), longitudinal
    and lateral acceleration (m/s^2), body heave (m above the datum, includes the road under the
    wheels), pitch (deg, nose down +) and roll (deg, right side down +), vertical acceleration of
    the body at the phone (m/s^2, without gravity)."""

    t_s: np.ndarray
    s_m: np.ndarray
    t_m: np.ndarray
    x_m: np.ndarray
    y_m: np.ndarray
    heading_rad: np.ndarray
    speed_mps: np.ndarray
    accel_long_mps2: np.ndarray
    accel_lat_mps2: np.ndarray
    heave_m: np.ndarray
    pitch_deg: np.ndarray
    roll_deg: np.ndarray
    accel_vert_mps2: np.ndarray
    video_duration_s: float
    stop_t_s: tuple[float, float]  # when the car stood still (video seconds)

    def at(self, t_s: np.ndarray | float, name: str) -> np.ndarray:
        """Linear interpolation of the field ``name`` at times ``t_s`` (video seconds)."""
        return np.interp(t_s, self.t_s, getattr(self, name))

    def heading_at(self, t_s: np.ndarray | float) -> np.ndarray:
        return np.interp(t_s, self.t_s, np.unwrap(self.heading_rad))


def _speed_profile(rng: np.random.Generator, spec: DriveSpec) -> tuple[np.ndarray, ...]:
    """Times t (s, 0 when the run starts), distance travelled p (m from the run start), speed
    and acceleration every dt, from ``lead_s`` before the run start to ``tail_s`` after its
    end; plus the video's end time and the stop interval."""
    dt = spec.dt_s
    lo, hi = spec.min_speed_kmh / 3.6, spec.max_speed_kmh / 3.6
    edges = [-400.0]  # target speed per stretch of road
    while edges[-1] < spec.length_m + 400:
        edges.append(edges[-1] + rng.uniform(60.0, 150.0))
    targets = rng.uniform(lo + 1.0, hi - 1.0, len(edges))
    stop_at = spec.length_m * rng.uniform(0.35, 0.65)
    dwell = rng.uniform(*spec.stop_s)
    v = float(targets[0])
    p, a, t = -v * spec.lead_s, 0.0, -spec.lead_s
    ts, ps, vs, accs = [], [], [], []
    state, stopped_since, t_end = "cruise", 0.0, None
    jerk = 2.5  # m/s^3
    while t_end is None or t < t_end + spec.tail_s:
        ts.append(t)
        ps.append(p)
        vs.append(v)
        accs.append(a)
        to_stop = stop_at - p
        if state == "cruise" and 0 < to_stop <= v * v / (2 * 1.6) + 1.0:
            state = "brake"
        if state == "brake":
            want = max(-v * v / (2 * max(to_stop, 0.05)), -3.5) if v > 0.3 else -1.0
            if v <= 0.05 or to_stop <= 0.02:
                state, stopped_since, v, a = "stopped", t, 0.0, 0.0
        elif state == "stopped":
            want = 0.0
            if t - stopped_since >= dwell:
                state = "go"
        else:
            target = float(targets[np.searchsorted(edges, p) - 1])
            want = float(np.clip(0.5 * (target - v), -1.5, 1.4))
        if state != "stopped":
            a += float(np.clip(want - a, -3 * jerk * dt, jerk * dt))  # braking builds up faster
            v = max(0.0, v + a * dt)
            p += v * dt
        t += dt
        if t_end is None and p >= spec.length_m:
            t_end = t
    t_arr, p_arr, v_arr = np.array(ts), np.array(ps), np.array(vs)
    t_arr -= np.interp(0.0, p_arr, t_arr)  # the video starts when the car passes the run's start
    t_video_end = float(np.interp(spec.length_m, p_arr, t_arr))
    still = np.flatnonzero(v_arr == 0.0)
    stop_t = (float(t_arr[still[0]]), float(t_arr[still[-1]])) if len(still) else (0.0, 0.0)
    return t_arr, p_arr, v_arr, np.array(accs), t_video_end, stop_t


def _second_order(x: np.ndarray, dt: float, freq_hz: float, damping: float) -> np.ndarray:
    """Response of a unit-gain second-order low-pass (a body mode) to x, from rest at x[0]."""
    w = 2 * math.pi * freq_hz
    b, a = signal.bilinear([w * w], [1.0, 2 * damping * w, w * w], fs=1.0 / dt)
    zi = signal.lfilter_zi(b, a) * x[0]
    return signal.lfilter(b, a, x, zi=zi)[0]


def _quarter_car(car: QuarterCar, road_m: np.ndarray, dt: float) -> tuple[np.ndarray, np.ndarray]:
    """Sprung-mass displacement (m) and acceleration (m/s^2) over a road input sampled every
    dt, starting at rest on road_m[0]; exact zero-order-hold discretisation."""
    a, b = car.matrices()
    ad = expm(a * dt)
    bd = np.linalg.solve(a, (ad - np.eye(4)) @ b)
    c = np.array([[1.0, 0, 0, 0], a[1]])
    d = np.zeros((2, 1))
    num, den = signal.ss2tf(ad, bd[:, None], c, d)
    u = road_m - road_m[0]
    z = signal.lfilter(num[0], den, u) + road_m[0]
    acc = signal.lfilter(num[1], den, u)
    return z, acc


def simulate_drive(scene: Scene, spec: DriveSpec, vehicle: VehicleParams, rng: np.random.Generator) -> Drive:
    """The car's motion over the run and the body's response to the road."""
    route = scene.route
    t, p, v, acc, t_video_end, stop_t = _speed_profile(rng, spec)
    sign = 1.0 if spec.direction == Direction.DOWN else -1.0
    lane = scene.lane
    # Lane wander (m, positive to the driver's left) as slow sinusoids of distance.
    wl = rng.uniform(40.0, 220.0, 3)
    amp = rng.uniform(0.05, 0.12, 3)
    phase = rng.uniform(0, 2 * np.pi, 3)
    wander = sum(am * np.sin(2 * np.pi * p / w + ph) for am, w, ph in zip(amp, wl, phase, strict=True))
    dwander = sum(
        am * 2 * np.pi / w * np.cos(2 * np.pi * p / w + ph) for am, w, ph in zip(amp, wl, phase, strict=True)
    )
    s = spec.start_m + sign * p
    lane_centre_t = float(lane.t_of_u(lane.width_m / 2))
    t_lat = lane_centre_t + sign * wander
    x, y, theta, kappa = route.sample(s)
    x, y = route.to_plane(s, t_lat)
    heading = theta + (0.0 if sign > 0 else np.pi) + np.arctan(dwander)
    # Lateral acceleration: v^2 times the path's curvature (road curvature seen from the car's
    # side of the road, plus the wander's own curvature).
    d2w = sum(
        -am * (2 * np.pi / w) ** 2 * np.sin(2 * np.pi * p / w + ph)
        for am, w, ph in zip(amp, wl, phase, strict=True)
    )
    acc_lat = v * v * (sign * kappa / np.maximum(1 - kappa * t_lat, 0.5) + d2w)

    # Vertical: road under the wheels at 1 kHz, averaged over the tyre patch.
    dt_q = 0.001
    tq = np.arange(t[0], t[-1], dt_q)
    pq = np.interp(tq, t, p)
    wq = np.interp(tq, t, wander)
    half_track = vehicle.track_m / 2

    def road(axle_ahead_m: float, side: float) -> np.ndarray:
        out = np.zeros_like(pq)
        for off in (-vehicle.tyre_patch_m / 2, 0.0, vehicle.tyre_patch_m / 2):
            sq = spec.start_m + sign * (pq + axle_ahead_m + off)
            out += scene.profile_height(sq, lane_centre_t + sign * (wq + side * half_track))
        return out / 3

    front_l, front_r = road(vehicle.front_axle_ahead_m, 1.0), road(vehicle.front_axle_ahead_m, -1.0)
    rear_ahead = vehicle.front_axle_ahead_m - vehicle.wheelbase_m
    rear = (road(rear_ahead, 1.0) + road(rear_ahead, -1.0)) / 2
    z_f, a_f = _quarter_car(vehicle.quarter_car, (front_l + front_r) / 2, dt_q)
    z_r, a_r = _quarter_car(vehicle.quarter_car, rear, dt_q)
    w_front = 1.0 - vehicle.front_axle_ahead_m / vehicle.wheelbase_m  # phone between the axles
    heave = w_front * z_f + (1 - w_front) * z_r
    acc_vert = w_front * a_f + (1 - w_front) * a_r
    pitch_road = np.degrees((z_r - z_f) / vehicle.wheelbase_m)
    roll_road = np.degrees((front_l - front_r) / vehicle.track_m)
    roll_road = _second_order(roll_road, dt_q, vehicle.roll_hz, vehicle.body_damping)
    # Back to the 100 Hz grid; the phone's own low-pass (~40 Hz) is applied by the sensor model.
    pick = np.clip(np.round((t - t[0]) / dt_q).astype(int), 0, len(tq) - 1)
    dive = _second_order(-acc * vehicle.dive_deg_per_mps2, spec.dt_s, vehicle.pitch_hz, vehicle.body_damping)
    # Centripetal load rolls the body outward: ~0.5 deg per m/s^2.
    lean = _second_order(acc_lat * 0.5, spec.dt_s, vehicle.roll_hz, vehicle.body_damping)
    lp = _antialias(dt_q, 10)
    return Drive(
        t_s=t,
        s_m=s,
        t_m=t_lat,
        x_m=x,
        y_m=y,
        heading_rad=heading,
        speed_mps=v,
        accel_long_mps2=acc,
        accel_lat_mps2=acc_lat,
        heave_m=heave[pick],
        pitch_deg=pitch_road[pick] + dive,
        roll_deg=roll_road[pick] + lean,
        accel_vert_mps2=signal.sosfiltfilt(lp, acc_vert)[pick],
        video_duration_s=t_video_end,
        stop_t_s=stop_t,
    )


def _antialias(dt: float, factor: int) -> np.ndarray:
    """Low-pass below the Nyquist frequency of a ``factor``-times slower sampling."""
    return signal.butter(6, 0.8 / factor, output="sos")
