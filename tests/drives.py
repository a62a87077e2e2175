"""Hand-made drives and route ledgers for the geotagging tests (plane metres around Aomori).

A drive follows a polyline at a speed profile; GPS fixes are sampled from it with seeded noise
and outliers, so every test knows the true position at every time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pavement.geodesy import PlaneProjection, jgd2011_zone
from pavement.track import TrackPoint

PROJECTION = PlaneProjection(jgd2011_zone(10))  # EPSG:6678, Aomori
ORIGIN_XY = PROJECTION.to_plane(40.82, 140.74)[0]  # near Aomori city
T0_UNIX_S = 1_714_521_600.0  # 2024-05-01T00:00:00Z


@dataclass(frozen=True)
class Drive:
    """True motion: time (s from T0), plane position (relative to ORIGIN_XY), distance travelled."""

    t_s: np.ndarray
    xy_m: np.ndarray
    distance_m: np.ndarray
    speed_mps: np.ndarray

    def position_at(self, t_s: np.ndarray) -> np.ndarray:
        return np.column_stack(
            [np.interp(t_s, self.t_s, self.xy_m[:, 0]), np.interp(t_s, self.t_s, self.xy_m[:, 1])]
        )

    def latlon_at(self, t_s: np.ndarray) -> np.ndarray:
        xy = self.position_at(t_s) + ORIGIN_XY
        return PROJECTION.to_latlon(xy[:, 0], xy[:, 1])


def polyline_point(path_xy: np.ndarray, s_m: np.ndarray) -> np.ndarray:
    """Points at arc lengths ``s_m`` along a polyline (n, 2)."""
    seg = np.hypot(*np.diff(path_xy, axis=0).T)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    s = np.clip(s_m, 0, cum[-1])
    return np.column_stack([np.interp(s, cum, path_xy[:, 0]), np.interp(s, cum, path_xy[:, 1])])


def polyline_length(path_xy: np.ndarray) -> float:
    return float(np.hypot(*np.diff(path_xy, axis=0).T).sum())


def make_drive(
    path_xy: np.ndarray,
    speed_mps: float = 12.0,
    stop_at_m: float | None = None,
    stop_s: float = 10.0,
    accel_mps2: float = 1.5,
    dt_s: float = 0.02,
) -> Drive:
    """Drive the whole polyline: start from rest, cruise, optionally stop once, stop at the end."""
    length = polyline_length(path_xy)
    limit_s, limit_v = _corner_speed_limits(path_xy, speed_mps, accel_mps2)
    t, s, v = [0.0], [0.0], [0.0]
    stopped_for = 0.0
    stop_done = stop_at_m is None
    while s[-1] < length:
        remaining = length - s[-1]
        target = min(speed_mps, float(np.interp(s[-1], limit_s, limit_v)))
        if not stop_done:
            to_stop = stop_at_m - s[-1]
            if to_stop <= 0.05:
                target = 0.0
            elif v[-1] ** 2 / (2 * accel_mps2) >= to_stop:
                target = 0.0
        if remaining < v[-1] ** 2 / (2 * accel_mps2) + 0.5:
            target = 0.0
        if target < v[-1]:
            vn = max(v[-1] - accel_mps2 * dt_s, 0.0)
        else:
            vn = min(v[-1] + accel_mps2 * dt_s, target)
        if not stop_done and vn == 0.0 and target == 0.0:
            stopped_for += dt_s
            if stopped_for >= stop_s:
                stop_done = True
        if vn == 0.0 and stop_done and remaining < 1.0:
            break
        if vn == 0.0 and stop_done and target > 0:
            vn = accel_mps2 * dt_s
        t.append(t[-1] + dt_s)
        s.append(min(s[-1] + 0.5 * (v[-1] + vn) * dt_s, length))
        v.append(vn)
    t_a, s_a = np.array(t), np.array(s)
    return Drive(t_a, polyline_point(path_xy, s_a), s_a, np.array(v))


def gps_fixes(
    drive: Drive,
    noise_m: float = 4.0,
    seed: int = 0,
    outlier_every: int = 0,
    outlier_m: float = 40.0,
    rate_hz: float = 1.0,
    with_speed: bool = True,
    t_offset_s: float = 0.0,
) -> list[TrackPoint]:
    """1 Hz fixes with Gaussian noise (per axis), every ``outlier_every``-th fix thrown ``outlier_m``."""
    rng = np.random.default_rng(seed)
    ts = np.arange(0.0, drive.t_s[-1], 1.0 / rate_hz)
    xy = drive.position_at(ts) + rng.normal(0, noise_m, (len(ts), 2))
    if outlier_every:
        for i in range(outlier_every // 2, len(ts), outlier_every):
            ang = rng.uniform(0, 2 * np.pi)
            xy[i] += outlier_m * np.array([np.cos(ang), np.sin(ang)])
    latlon = PROJECTION.to_latlon(xy[:, 0] + ORIGIN_XY[0], xy[:, 1] + ORIGIN_XY[1])
    speeds = np.interp(ts, drive.t_s, drive.speed_mps) + rng.normal(0, 0.2, len(ts))
    return [
        TrackPoint(
            T0_UNIX_S + t_offset_s + float(t),
            float(la),
            float(lo),
            speed_mps=float(max(sp, 0.0)) if with_speed else None,
            accuracy_m=noise_m,
        )
        for t, (la, lo), sp in zip(ts, latlon, speeds, strict=True)
    ]


def rounded(path_xy: np.ndarray, radius_m: float = 20.0, step_m: float = 1.0) -> np.ndarray:
    """The polyline with each inner corner replaced by a circular arc (cars do not turn on a point)."""
    path = np.asarray(path_xy, dtype=float)
    out = [path[0]]
    for i in range(1, len(path) - 1):
        a, b, c = path[i - 1], path[i], path[i + 1]
        u, w = (a - b) / np.linalg.norm(a - b), (c - b) / np.linalg.norm(c - b)
        cos_t = float(np.clip(u @ w, -1, 1))
        theta = np.arccos(cos_t)  # angle between the legs
        if theta > np.pi - 1e-6 or theta < 1e-3:
            out.append(b)
            continue
        cut = min(radius_m / np.tan(theta / 2), 0.45 * np.linalg.norm(a - b), 0.45 * np.linalg.norm(c - b))
        p1, p2 = b + u * cut, b + w * cut
        r = cut * np.tan(theta / 2)
        bis = (u + w) / np.linalg.norm(u + w)
        centre = b + bis * (r / np.sin(theta / 2))
        a1, a2 = np.arctan2(*(p1 - centre)[::-1]), np.arctan2(*(p2 - centre)[::-1])
        da = (a2 - a1 + np.pi) % (2 * np.pi) - np.pi
        n = max(int(abs(da) * r / step_m), 2)
        for ang in np.linspace(a1, a1 + da, n):
            out.append(centre + r * np.array([np.cos(ang), np.sin(ang)]))
    out.append(path[-1])
    return np.array(out)


def _corner_speed_limits(
    path_xy: np.ndarray, speed_mps: float, accel_mps2: float, lateral_mps2: float = 2.5
) -> tuple[np.ndarray, np.ndarray]:
    """Speed limit along the path: sqrt(lateral accel x radius) in bends, reached by braking early."""
    s = np.arange(0.0, polyline_length(path_xy) + 1.0, 1.0)
    p = polyline_point(path_xy, s)
    heading = np.unwrap(np.arctan2(*np.gradient(p, axis=0).T[::-1]))
    curvature = np.abs(np.gradient(heading)) + 1e-9
    limit = np.minimum(speed_mps, np.sqrt(lateral_mps2 / curvature))
    for i in range(len(s) - 2, -1, -1):  # brake before the bend
        limit[i] = min(limit[i], np.sqrt(limit[i + 1] ** 2 + 2 * accel_mps2 * 1.0))
    return s, limit


# --------------------------------------------------------------------------------------------
# A tiny run folder: video rendered from a road texture, GPS logs, route ledger, camera profile
# --------------------------------------------------------------------------------------------
CAMERA_DICT = {
    "name": "test phone",
    "intrinsics": {"width_px": 320, "height_px": 180, "hfov_deg": 70.0},
    "mount": {"height_m": 1.3, "pitch_deg": 12.0, "roll_deg": 0.0},
}
GPSLOGGER_HEADER = (
    "time,lat,lon,elevation,accuracy,bearing,speed,satellites,provider,hdop,vdop,pdop,geoidheight,"
    "ageofdgpsdata,dgpsid,activity,battery,annotation"
)


def _road_texture(length_m: float, res_m: float, seed: int) -> np.ndarray:
    import cv2

    rng = np.random.default_rng(seed)
    h = int(8.0 / res_m)
    w = int((length_m + 40.0) / res_m)
    tex = np.zeros((h, w), np.float32)
    for sigma, amp in ((1.0, 30), (3.0, 25), (10.0, 20)):
        tex += amp * cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), sigma)
    tex += 110
    # dashed centre line 1.75 m left of the camera (row for y = +1.75)
    row = int((4.0 - 1.75) / res_m)
    dash = (np.arange(w) * res_m) % 10.0 < 5.0
    tex[row - 4 : row + 4, dash] = 220
    return np.clip(tex, 0, 255).astype(np.uint8)


def render_video(
    path, drive: Drive, fps: float = 10.0, creation_time: str = "2024-05-01T00:00:00.000000Z", seed: int = 0
) -> int:
    """Render the drive as seen by CAMERA_DICT over a textured straight road (the path unrolled);
    returns the number of frames."""
    import av
    import cv2

    from pavement.camera import CameraProfile

    cam = CameraProfile.from_dict(CAMERA_DICT)
    k = cam.intrinsics
    res = 0.02
    tex = _road_texture(float(drive.distance_m[-1]), res, seed)
    u, v = np.meshgrid(np.arange(k.width_px) + 0.5, np.arange(k.height_px) + 0.5)
    rays = cam.pixel_rays_vehicle(u, v)
    ground = rays[..., 2] < -1e-3
    lam = np.where(ground, cam.mount.height_m / np.maximum(-rays[..., 2], 1e-3), 0)
    gx = np.where(ground, lam * rays[..., 0], 0.0)
    gy = np.where(ground, lam * rays[..., 1], 0.0)
    far = ground & (gx < 60)
    container = av.open(str(path), "w")
    container.metadata["creation_time"] = creation_time
    stream = container.add_stream("libx264", rate=int(fps))
    stream.width, stream.height, stream.pix_fmt = k.width_px, k.height_px, "yuv420p"
    stream.options = {"crf": "18", "preset": "veryfast"}
    n = int(drive.t_s[-1] * fps)
    for i in range(n):
        s = float(np.interp(i / fps, drive.t_s, drive.distance_m))
        map_x = ((s + 10.0 + gx) / res).astype(np.float32)
        map_y = ((4.0 - gy) / res).astype(np.float32)
        img = cv2.remap(tex, map_x, map_y, cv2.INTER_LINEAR, borderValue=90)
        img = np.where(far, img, 170).astype(np.uint8)
        frame = av.VideoFrame.from_ndarray(np.dstack([img] * 3), format="rgb24")
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    return n


def write_gpslogger_csv(path, fixes: list[TrackPoint]) -> None:
    from datetime import UTC, datetime

    lines = [GPSLOGGER_HEADER]
    for p in fixes:
        t = datetime.fromtimestamp(p.t_unix_s, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        lines.append(
            f"{t},{p.lat:.8f},{p.lon:.8f},50.0,{p.accuracy_m or 5:.1f},,"
            f"{'' if p.speed_mps is None else f'{p.speed_mps:.2f}'},12,gps,1.0,1.2,1.5,40.0,,,,90,"
        )
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_gpx(path, fixes: list[TrackPoint]) -> None:
    from datetime import UTC, datetime

    pts = "".join(
        f'<trkpt lat="{p.lat:.8f}" lon="{p.lon:.8f}"><ele>50.0</ele>'
        f"<time>{datetime.fromtimestamp(p.t_unix_s, UTC).strftime('%Y-%m-%dT%H:%M:%S.%f')[:-3]}Z</time>"
        f"<hdop>{(p.accuracy_m or 5) / 5:.2f}</hdop></trkpt>"
        for p in fixes
    )
    Path(path).write_text(
        '<?xml version="1.0" encoding="UTF-8"?><gpx version="1.1" creator="test" '
        'xmlns="http://www.topografix.com/GPX/1/1"><trk><trkseg>' + pts + "</trkseg></trk></gpx>",
        encoding="utf-8",
    )


def ledger_geojson(routes: list[tuple[str, np.ndarray, list[tuple[float, float]]]]) -> dict:
    """GeoJSON ledger from (route_no, plane path relative to ORIGIN_XY, [(kp_km, arc length m)])."""
    feats = []
    for route_no, path, posts in routes:
        ll = PROJECTION.to_latlon(path[:, 0] + ORIGIN_XY[0], path[:, 1] + ORIGIN_XY[1])
        feats.append(
            {
                "type": "Feature",
                "geometry": {"type": "LineString", "coordinates": ll[:, ::-1].tolist()},
                "properties": {
                    "kind": "centerline",
                    "route_no": route_no,
                    "route_name": f"R{route_no}",
                    "road_class": "B",
                },
            }
        )
        for kp, s in posts:
            p = polyline_point(path, np.array([s]))[0] + ORIGIN_XY
            la, lo = PROJECTION.to_latlon(p[0], p[1])[0]
            feats.append(
                {
                    "type": "Feature",
                    "geometry": {"type": "Point", "coordinates": [lo, la]},
                    "properties": {"kind": "kilometer_post", "route_no": route_no, "kp_km": kp},
                }
            )
    return {"type": "FeatureCollection", "features": feats}


def write_run(
    run_dir,
    seed: int = 0,
    clock_offset_s: float = 2.7,
    length_m: float = 300.0,
    fps: float = 10.0,
    noise_m: float = 4.0,
) -> Drive:
    """A run folder along a gentle S-curve on route '7' (posts 985 m apart, the run starting inside
    km 3): video.mp4, gps.csv, gps.gpx, route.geojson, camera.json. Returns the true drive (times
    from the video's first frame in GPS time = creation_time + clock_offset_s)."""
    import json
    from datetime import UTC, datetime

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    route = rounded(
        np.array([[-1200.0, -50.0], [0.0, 0.0], [150.0, 60.0], [400.0, 40.0], [1500.0, 120.0]]), 80.0
    )
    start_s = 1210.0  # arc length along the route where the run starts
    s_total = polyline_length(route)
    run_path = polyline_point(route, np.linspace(start_s, start_s + length_m, int(length_m) + 1))
    drive = make_drive(run_path, speed_mps=11.0, stop_at_m=length_m * 0.45, stop_s=6.0)
    t_video0 = T0_UNIX_S  # nominal creation_time
    fixes = gps_fixes(
        drive, noise_m=noise_m, seed=seed, outlier_every=23, outlier_m=45.0, t_offset_s=clock_offset_s
    )
    # the log starts before and ends after the video, as a logger left running does
    creation = datetime.fromtimestamp(t_video0, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    render_video(run_dir / "video.mp4", drive, fps=fps, creation_time=creation, seed=seed)
    write_gpslogger_csv(run_dir / "gps.csv", fixes)
    write_gpx(run_dir / "gps.gpx", fixes)
    posts = [(float(k), 15.0 + 985.0 * k) for k in range(int((s_total - 15.0) // 985.0) + 1)]
    (run_dir / "route.geojson").write_text(
        json.dumps(ledger_geojson([("7", route, posts)])), encoding="utf-8"
    )
    (run_dir / "camera.json").write_text(json.dumps(CAMERA_DICT), encoding="utf-8")
    return drive


# --------------------------------------------------------------------------------------------
# Placing a drive on a ledger with the pure core (no video): used by the scenario tests
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PlacedDrive:
    poses: tuple  # FramePose with .route set (None off the ledger)
    true_xy: np.ndarray  # (n, 2) true position of each planned frame, relative to ORIGIN_XY
    true_distance_m: np.ndarray
    segments: tuple


def centreline(route_no: str, path_xy: np.ndarray, posts: list[tuple[float, float]]):
    """(CentrelineRecord, [PostRecord]) for a plane path relative to ORIGIN_XY and (kp_km, arc m) posts."""
    from pavement.linear_referencing import CentrelineRecord, PostRecord

    ll = PROJECTION.to_latlon(path_xy[:, 0] + ORIGIN_XY[0], path_xy[:, 1] + ORIGIN_XY[1])
    records = []
    for kp, s in posts:
        p = polyline_point(path_xy, np.array([s]))[0] + ORIGIN_XY
        la, lo = PROJECTION.to_latlon(p[0], p[1])[0]
        records.append(PostRecord(route_no, kp, float(la), float(lo)))
    return CentrelineRecord(route_no, ll[:, ::-1]), records


def place_drive(
    drive: Drive, routes: list, noise_m: float = 4.0, seed: int = 0, fps: float = 10.0, spacing_m: float = 5.0
) -> PlacedDrive:
    """Fixes from the drive -> clean -> smooth -> plan frames at ``fps`` -> match on the ledger."""
    from dataclasses import replace

    from pavement.frame_plan import FramePlanConfig, plan_frames
    from pavement.gps_track import clean_track, distance_travelled_m, smooth_track
    from pavement.linear_referencing import assemble_segments, build_ledger, match_track

    fixes = gps_fixes(drive, noise_m=noise_m, seed=seed, outlier_every=29)
    clean = clean_track(fixes, PROJECTION)
    track = smooth_track(clean, PROJECTION)
    t_video = np.arange(0.0, drive.t_s[-1], 1.0 / fps)
    sample = track.sample(T0_UNIX_S + t_video)
    dist = distance_travelled_m(sample)
    plan = plan_frames(t_video, T0_UNIX_S + t_video, sample, dist, FramePlanConfig(spacing_m=spacing_m))
    ledger = build_ledger([c for c, _ in routes], [p for _, ps in routes for p in ps], PROJECTION)
    idx = np.array([p.frame_index for p in plan.poses])
    matches = match_track(
        ledger,
        np.column_stack([sample.x_m[idx], sample.y_m[idx]]),
        sample.heading_deg[idx],
        sample.speed_mps[idx],
        np.array(plan.distance_m),
    )
    poses, spans = [], []
    for pose, m in zip(plan.poses, matches, strict=True):
        if m is None:
            poses.append(pose)
            spans.append(None)
        else:
            poses.append(replace(pose, route=ledger.position(m.route_index, m.chainage_m, m.direction)))
            spans.append(ledger.segment_span(m.route_index, m.chainage_m, m.direction))
    segments = assemble_segments(poses, spans, ledger)
    return PlacedDrive(
        tuple(poses),
        drive.position_at(t_video[idx]),
        np.interp(t_video[idx], drive.t_s, drive.distance_m),
        segments,
    )


def write_nmea(path, fixes: list[TrackPoint], bad_checksum_every: int = 0) -> int:
    """RMC + GGA sentences for each fix; every ``bad_checksum_every``-th sentence gets a wrong
    checksum. Returns the number of corrupted sentences."""
    from datetime import UTC, datetime

    def angle(value: float, pos: str, neg: str, width: int) -> tuple[str, str]:
        a = abs(value)
        deg = int(a)
        return f"{deg:0{width}d}{(a - deg) * 60:07.4f}", pos if value >= 0 else neg

    def checked(body: str) -> str:
        c = 0
        for ch in body:
            c ^= ord(ch)
        return f"${body}*{c:02X}"

    lines, bad = [], 0
    for p in fixes:
        dt = datetime.fromtimestamp(p.t_unix_s, UTC)
        hms = dt.strftime("%H%M%S.") + f"{dt.microsecond // 10000:02d}"
        lat, ns = angle(p.lat, "N", "S", 2)
        lon, ew = angle(p.lon, "E", "W", 3)
        knots = "" if p.speed_mps is None else f"{p.speed_mps / 0.514444:.2f}"
        lines.append(checked(f"GPRMC,{hms},A,{lat},{ns},{lon},{ew},{knots},,{dt.strftime('%d%m%y')},,,A"))
        lines.append(
            checked(f"GPGGA,{hms},{lat},{ns},{lon},{ew},1,10,{(p.accuracy_m or 5) / 5:.1f},50.0,M,40.0,M,,")
        )
    if bad_checksum_every:
        for i in range(0, len(lines), bad_checksum_every):
            body, _, cs = lines[i].rpartition("*")
            lines[i] = f"{body}*{(int(cs, 16) + 1) % 256:02X}"
            bad += 1
    Path(path).write_text("\r\n".join(lines) + "\r\n", encoding="ascii")
    return bad
