"""Stage ``synth``: write a synthetic patrol run with exact ground truth.

The run folder holds what a real run has (``video.mp4``, ``gps.gpx``, ``gps.csv``,
``accel.csv``, ``route.geojson``, ``camera.json``, and with ``depth_every_m`` a phone depth
sensor's ``depth/`` folder) plus ``truth.json`` and ``synth_report.json``.
Formats: docs/run_folder.md. Everything follows from the seed: same seed, same files (the video's
frames are identical; the encoder is deterministic for a given build and thread count).
``render_scale`` < 1 renders the frames smaller and upscales them (long benchmark runs; less
detail, so not for accuracy evaluation of the image stages); everything but the video is unchanged.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, is_dataclass
from datetime import UTC, datetime
from enum import Enum
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from pavement.camera import CameraIntrinsics, CameraMount, CameraProfile
from pavement.errors import ConfigError, ExportError
from pavement.segments import Direction
from pavement.synthetic.render import CameraPose, Renderer
from pavement.synthetic.route import Route, RouteSpec, build_route, run_range_m
from pavement.synthetic.scene import Scene, build_scene
from pavement.synthetic.sensors import (
    AccelSamples,
    DepthSpec,
    GpsFixes,
    GpsSpec,
    depth_map_mm,
    simulate_accel,
    simulate_gps,
)
from pavement.synthetic.truth import frame_truths, pothole_truths, segment_truths
from pavement.synthetic.vehicle import DriveSpec, random_vehicle, simulate_drive

logger = logging.getLogger(__name__)

GPSLOGGER_HEADER = (
    "time,lat,lon,elevation,accuracy,bearing,speed,satellites,provider,hdop,vdop,pdop,"
    "geoidheight,ageofdgpsdata,dgpsid,activity,battery,annotation"
)
ACCEL_HEADER = "t_unix_s,ax_mps2,ay_mps2,az_mps2"
DEPTH_HEADER = "file,video_time_s"
_BASE_TIME = datetime(2024, 6, 12, 0, 30, tzinfo=UTC)  # 09:30 JST; a seeded 0-5 h is added
_TARGET_LUMA = 0.46  # auto-exposure aims the frame's mean display value here


@dataclass(frozen=True)
class SynthConfig:
    """What to generate. Lengths in metres, angles in degrees."""

    length_m: float = 500.0
    seed: int = 0
    fps: float = 30.0
    width_px: int = 1280
    height_px: int = 720
    direction: Direction = Direction.DOWN
    crf: int = 26  # x264 constant rate factor: higher = smaller file
    preset: str = "veryfast"
    hfov_deg: float = 70.0  # the phone's horizontal field of view
    camera_height_m: float = 1.35  # nominal mount, as a user would type it in camera.json
    camera_pitch_deg: float = 12.0
    start_kp_km: int = 12  # the run starts at this 距離標 ...
    start_offset_m: float = 350.0  # ... plus this 追加距離
    surface_damage: bool = True  # False: no cracks, potholes or patching (false-alarm counts)
    depth_every_m: float = 0.0  # > 0: a depth map (depth/) every this many metres of travel
    # < 1: frames are rendered at this fraction of the video size and upscaled before encoding.
    # A shortcut for long benchmark runs: upscaled frames carry less detail than the video size
    # promises, so such runs are not for accuracy evaluation of the image stages.
    render_scale: float = 1.0
    # GPS error per axis (m rms; None: drawn per seed in 3-5 m) and its correlation time (s; 0:
    # independent fixes). See pavement.synthetic.sensors.
    gps_error_m: float | None = None
    gps_correlation_s: float = 20.0
    # False: everything but video.mp4 (the logs and truth of a video rendered before with the
    # same seed and video settings; the sensors' random streams do not touch the picture's).
    render: bool = True

    def __post_init__(self) -> None:
        if not (
            isinstance(self.length_m, int | float)
            and math.isfinite(self.length_m)
            and 20 <= self.length_m <= 20000
        ):
            raise ConfigError(
                f"--length-m {self.length_m} is out of range; give the run's length in metres, 20-20000"
            )
        if not 1 <= self.fps <= 60:
            raise ConfigError(f"--fps {self.fps} is out of range; use 1-60 frames per second")
        if not (64 <= self.width_px <= 3840 and 48 <= self.height_px <= 2160):
            raise ConfigError(
                f"--size {self.width_px}x{self.height_px} is out of range; use 64x48 to 3840x2160"
            )
        if self.width_px % 2 or self.height_px % 2:
            raise ConfigError(
                f"--size {self.width_px}x{self.height_px}: H.264 in yuv420p needs even width and height"
            )
        if not 0 <= self.crf <= 51:
            raise ConfigError(f"--crf {self.crf} is out of range; x264 takes 0-51 (23-28 is usual)")
        if self.direction not in (Direction.DOWN, Direction.UP):
            raise ConfigError(
                f"direction must be {Direction.DOWN} (down) or {Direction.UP} (up), got {self.direction}"
            )
        if self.start_kp_km < 1 or not 0 <= self.start_offset_m < 900:
            raise ConfigError("the run must start at a post >= 1 km, 0-900 m past it")
        if not (
            isinstance(self.render_scale, int | float)
            and 0 < self.render_scale <= 1
            and min(self.width_px, self.height_px) * self.render_scale >= 16
        ):
            raise ConfigError(
                f"--render-scale {self.render_scale} is out of range; give a fraction in (0, 1] that "
                f"leaves at least 16 px of the {self.width_px}x{self.height_px} video's shorter side"
            )
        if not (self.depth_every_m == 0 or 0.5 <= self.depth_every_m <= 1000):
            raise ConfigError(
                f"--depth-every-m {self.depth_every_m} is out of range; give 0 (no depth maps) or "
                "0.5-1000 metres of travel between depth maps"
            )
        if not (self.gps_error_m is None or 0 <= self.gps_error_m <= 100) or not (
            0 <= self.gps_correlation_s <= 600
        ):
            raise ConfigError(
                f"--gps-error-m {self.gps_error_m} / --gps-correlation-s {self.gps_correlation_s} out of "
                "range; give 0-100 m rms per axis and 0-600 s (0: independent fixes)"
            )


@dataclass(frozen=True)
class SynthResult:
    out_dir: Path
    n_frames: int
    duration_s: float
    wall_s: float
    render_s: float
    n_segments: int
    segment_categories: tuple[str, ...]  # 区分 of each segment in driving order ("" = none)
    report_json: Path
    n_depth_maps: int = 0


def run_synth(
    out_dir: Path, config: SynthConfig, progress: Callable[[int, int], None] | None = None
) -> SynthResult:
    """Generate the run described by ``config`` into ``out_dir`` (created if needed)."""
    wall0 = time.perf_counter()
    out_dir = Path(out_dir)
    _prepare(out_dir)
    rng_route, rng_scene, rng_camera, rng_drive, rng_gps, rng_accel, rng_depth = _streams(config.seed)
    route, scene, run_from = _route_and_scene(config, rng_route, rng_scene)

    intrinsics = CameraIntrinsics.from_fov(config.width_px, config.height_px, config.hfov_deg)
    nominal = CameraProfile(
        intrinsics,
        CameraMount(config.camera_height_m, config.camera_pitch_deg, 0.0),
        name="synthetic phone (nominal mount)",
    )
    pm = rng_camera.choice([-1.0, 1.0], 3)
    true_mount = CameraMount(
        height_m=round(config.camera_height_m + rng_camera.uniform(-0.02, 0.02), 4),
        pitch_deg=round(config.camera_pitch_deg + pm[0] * rng_camera.uniform(1.0, 2.0), 3),
        roll_deg=round(pm[1] * rng_camera.uniform(0.5, 1.5), 3),
        yaw_deg=round(pm[2] * rng_camera.uniform(0.0, 0.5), 3),
    )
    true_camera = CameraProfile(intrinsics, true_mount, name="synthetic phone (true mount)")

    vehicle = random_vehicle(rng_drive)
    drive = simulate_drive(scene, DriveSpec(run_from, config.length_m, config.direction), vehicle, rng_drive)
    creation_unix = _BASE_TIME.timestamp() + int(rng_camera.integers(0, 5 * 3600))
    clock_offset_s = round(float(rng_camera.choice([-1.0, 1.0]) * rng_camera.uniform(2.0, 5.0)), 3)
    video_start_unix = creation_unix + clock_offset_s  # true UTC of the first frame

    n_frames = math.floor(drive.video_duration_s * config.fps + 1e-9) + 1
    t_frames = np.arange(n_frames) / config.fps
    heave = drive.at(t_frames, "heave_m")
    pitch = true_mount.pitch_deg + drive.at(t_frames, "pitch_deg")
    roll = true_mount.roll_deg + drive.at(t_frames, "roll_deg")
    s_f, t_f = drive.at(t_frames, "s_m"), drive.at(t_frames, "t_m")
    heading_f = drive.heading_at(t_frames)
    frames = frame_truths(
        route,
        config.direction,
        t_frames,
        s_f,
        t_f,
        heading_f,
        drive.at(t_frames, "speed_mps"),
        true_mount.height_m + heave,
        pitch,
        roll,
    )
    segments, sections = segment_truths(scene, float(s_f[0]), float(s_f[-1]), config.direction)
    potholes = pothole_truths(scene, min(s_f[0], s_f[-1]), max(s_f[0], s_f[-1]), config.direction)
    drawn_error_m = float(rng_gps.uniform(3.0, 5.0))  # drawn always: a seed's other draws stay the same
    gps_spec = GpsSpec(
        error_rms_m=drawn_error_m if config.gps_error_m is None else config.gps_error_m,
        correlation_s=config.gps_correlation_s,
    )
    gps = simulate_gps(drive, route, video_start_unix, gps_spec, rng_gps)
    accel = simulate_accel(drive, true_mount, video_start_unix, rng_accel)

    _write_json(out_dir / "camera.json", nominal.to_dict())
    _write_json(out_dir / "route.geojson", route_geojson(route))
    (out_dir / "gps.gpx").write_text(gpx_text(gps, f"synthetic run, seed {config.seed}"), encoding="utf-8")
    (out_dir / "gps.csv").write_text(gpslogger_csv(gps), encoding="utf-8")
    (out_dir / "accel.csv").write_text(accel_csv(accel), encoding="utf-8")
    truth = {
        "seed": config.seed,
        "clock_offset_s": clock_offset_s,
        "video_creation_time": _iso(creation_unix, 0),
        "video_start_utc": _iso(video_start_unix, 3),
        "camera": true_camera.to_dict(),
        "lane_width_m": scene.layout.lane_width_m,
        "vehicle": {
            **{
                f.name: getattr(vehicle.quarter_car, f.name)
                for f in fields(vehicle.quarter_car)
                if f.name in ("k1", "k2", "c", "mu")
            },
            "wheelbase_m": vehicle.wheelbase_m,
            "track_m": vehicle.track_m,
            "phone_behind_front_axle_m": vehicle.front_axle_ahead_m,
        },
        "route": {
            "route_no": route.route_no,
            "route_name": route.route_name,
            "road_class": route.road_class,
            "epsg": route.epsg,
            "posts": [{"kp_km": p.kp_km, "chainage_m": p.chainage_m} for p in route.posts],
        },
        "run": {
            "direction": str(config.direction),
            "start_chainage_m": float(s_f[0]),
            "end_chainage_m": float(s_f[-1]),
            "length_m": config.length_m,
            "fps": config.fps,
            "n_frames": n_frames,
            "stop_video_s": list(drive.stop_t_s),
            "gps_error_rms_m": round(float(gps_error_rms(gps, drive, route, video_start_unix)), 2),
            "gps_outlier_times_utc": [_iso(t, 0) for t in gps.t_unix_s[gps.outlier]],
        },
        "frames": frames,
        "sections_20m": sections,
        "segments": segments,
        "potholes": potholes,
    }
    _write_json(out_dir / "truth.json", _jsonable(truth))

    render_s, n_depth = 0.0, 0
    render_intrinsics = rendered_intrinsics(intrinsics, config.render_scale)
    if config.render:
        render0 = time.perf_counter()
        renderer = Renderer(scene, render_intrinsics)
        drift = _exposure_drift(rng_camera)

        def pose(k: int) -> CameraPose:
            mount = CameraMount(
                true_mount.height_m + float(heave[k]),
                float(pitch[k]),
                float(roll[k]),
                true_mount.yaw_deg,
                true_mount.lateral_m,
            )
            return CameraPose(float(s_f[k]), float(t_f[k]), float(heading_f[k]), mount)

        exposure = 1.0
        for _ in range(3):  # the camera has settled before recording starts
            luma = renderer.render(pose(0), exposure).mean_luma
            exposure *= (_TARGET_LUMA / max(luma, 0.02)) ** 1.6
        rate = min(1.0, 0.25 * 30.0 / config.fps)
        _clear_depth(out_dir / "depth")  # maps of an earlier run into the same folder would not match
        depth = (
            _DepthWriter(out_dir / "depth", scene, intrinsics, rng_depth)
            if config.depth_every_m > 0
            else None
        )
        depth_frames = set(depth_frame_indices(s_f, config.depth_every_m)) if depth is not None else set()
        with _VideoWriter(out_dir / "video.mp4", config, _iso(creation_unix, 6)) as video:
            for k in range(n_frames):
                frame = renderer.render(pose(k), exposure * drift(t_frames[k]))
                video.write(_to_video_size(frame.image_rgb, intrinsics))
                if k in depth_frames:
                    depth.write(k, float(t_frames[k]), pose(k))
                # Auto-exposure follows the scene's brightness with a lag (entering shade, sky).
                exposure *= float(np.clip((_TARGET_LUMA / max(frame.mean_luma, 0.02)) ** rate, 0.93, 1.07))
                if progress is not None:
                    progress(k + 1, n_frames)
        render_s = time.perf_counter() - render0
        n_depth = depth.close() if depth is not None else 0

    wall_s = time.perf_counter() - wall0
    report = {
        "stage": "synth",
        "seed": config.seed,
        "config": asdict(config),
        "render_scale": config.render_scale,
        "render_size_px": [render_intrinsics.width_px, render_intrinsics.height_px],
        "wall_s": round(wall_s, 2),
        "render_s": round(render_s, 2),
        "render_s_per_frame": round(render_s / n_frames, 4),
        "n_frames": n_frames,
        "video_duration_s": round(n_frames / config.fps, 3),
        "n_gps_fixes": len(gps.t_unix_s),
        "n_accel_samples": len(accel.t_unix_s),
        "n_segments": len(segments),
        "n_depth_maps": n_depth,
        "segment_categories": [str(s.category or "") for s in segments],
        "files": sorted(p.name for p in out_dir.iterdir() if p.is_file()),
        "bytes": {p.name: p.stat().st_size for p in sorted(out_dir.iterdir()) if p.is_file()},
        "warnings": [],
    }
    report_path = out_dir / "synth_report.json"
    _write_json(report_path, _jsonable(report))
    logger.info("synthetic run of %d frames written to %s in %.1f s", n_frames, out_dir, wall_s)
    return SynthResult(
        out_dir,
        n_frames,
        n_frames / config.fps,
        wall_s,
        render_s,
        len(segments),
        tuple(str(s.category or "") for s in segments),
        report_path,
        n_depth,
    )


# ---------------------------------------------------------------------------------------------
# Writers
# ---------------------------------------------------------------------------------------------


def _streams(seed: int) -> list[np.random.Generator]:
    """The run's random streams: route, scene, camera, drive, GPS, accelerometer, depth (a 7th
    stream left the first six as they were)."""
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(7)]


def _route_and_scene(
    config: SynthConfig, rng_route: np.random.Generator, rng_scene: np.random.Generator
) -> tuple[Route, Scene, float]:
    spec = RouteSpec(config.start_kp_km, config.start_offset_m, config.length_m, config.direction)
    route = build_route(spec, rng_route)
    post_m = {p.kp_km: p.chainage_m for p in route.posts}
    run_from, run_to = run_range_m(spec, np.array([post_m.get(k, np.nan) for k in range(max(post_m) + 1)]))
    scene = build_scene(
        route,
        run_from,
        run_to,
        config.direction,
        rng_scene,
        config.seed,
        surface_damage=config.surface_damage,
    )
    return route, scene, run_from


def synth_scene(config: SynthConfig) -> Scene:
    """The scene ``run_synth(out_dir, config)`` renders (its defects, in route chainage), rebuilt
    without rendering: for evaluations that compare a stage with the road cell by cell."""
    rng_route, rng_scene, *_ = _streams(config.seed)
    return _route_and_scene(config, rng_route, rng_scene)[1]


def _prepare(out_dir: Path) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(
            f"cannot create the output folder {out_dir}: {exc.strerror or exc}; "
            "choose a folder you can write to with --out"
        ) from exc
    if not out_dir.is_dir() or not os.access(out_dir, os.W_OK | os.X_OK):
        raise ExportError(f"the output folder {out_dir} is not writable; choose another with --out")


def _iso(unix_s: float, decimals: int) -> str:
    """ISO 8601 UTC with a Z, e.g. 2024-06-12T01:30:00.123Z."""
    dt = datetime.fromtimestamp(round(unix_s, decimals), tz=UTC)
    text = dt.strftime("%Y-%m-%dT%H:%M:%S")
    if decimals:
        text += f".{dt.microsecond:06d}"[: decimals + 1]
    return text + "Z"


def _jsonable(obj: object) -> object:
    """Dataclasses, enums and numpy values -> JSON types; floats rounded to 8 decimals."""
    if is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _jsonable(getattr(obj, f.name)) for f in fields(obj) if not f.name.startswith("_")}
    if isinstance(obj, Enum):
        return str(obj.value)
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [_jsonable(v) for v in obj.tolist()]
    if isinstance(obj, bool | np.bool_):
        return bool(obj)
    if isinstance(obj, int | np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        return round(float(obj), 8) if math.isfinite(obj) else None
    return obj


def _write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def route_geojson(route: Route, step_m: float = 2.0) -> dict:
    """The ledger: the centreline (WGS84 lon/lat, digitised toward increasing km) and its posts."""
    s = np.arange(route.s0_m, route.s_end_m, step_m)
    s = np.append(s, route.s_end_m)
    x, y = route.to_plane(s, np.zeros_like(s))
    ll = route.to_latlon(x, y)
    feats = [
        {
            "type": "Feature",
            "geometry": {
                "type": "LineString",
                "coordinates": [[round(lon, 8), round(lat, 8)] for lat, lon in ll],
            },
            "properties": {
                "kind": "centerline",
                "route_no": route.route_no,
                "route_name": route.route_name,
                "road_class": route.road_class,
            },
        }
    ]
    for post in route.posts:
        px, py = route.to_plane(np.array([post.chainage_m]), np.zeros(1))
        lat, lon = route.to_latlon(px, py)[0]
        feats.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [round(float(lon), 8), round(float(lat), 8)]},
                "properties": {"kind": "kilometer_post", "route_no": route.route_no, "kp_km": post.kp_km},
            }
        )
    return {
        "type": "FeatureCollection",
        "name": f"route {route.route_no} (synthetic ledger)",
        "features": feats,
    }


def gpx_text(gps: GpsFixes, name: str) -> str:
    """GPX 1.1: one track, one segment, a trkpt per fix with ele, time, sat and hdop."""
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<gpx version="1.1" creator="pavement-inspection synth" xmlns="http://www.topografix.com/GPX/1/1">',
        f"  <metadata><time>{_iso(float(gps.t_unix_s[0]), 0)}</time></metadata>",
        f"  <trk><name>{name}</name><trkseg>",
    ]
    for i in range(len(gps.t_unix_s)):
        lines.append(
            f'    <trkpt lat="{gps.lat[i]:.8f}" lon="{gps.lon[i]:.8f}"><ele>{gps.ele_m[i]:.1f}</ele>'
            f"<time>{_iso(float(gps.t_unix_s[i]), 0)}</time><sat>{int(gps.satellites[i])}</sat>"
            f"<hdop>{gps.hdop[i]:.1f}</hdop></trkpt>"
        )
    lines += ["  </trkseg></trk>", "</gpx>", ""]
    return "\n".join(lines)


def gpslogger_csv(gps: GpsFixes) -> str:
    """The same fixes in the CSV layout of GPSLogger for Android."""
    rows = [GPSLOGGER_HEADER]
    n = len(gps.t_unix_s)
    for i in range(n):
        hdop = float(gps.hdop[i])
        vdop = round(hdop * 1.4, 1)
        rows.append(
            ",".join(
                [
                    _iso(float(gps.t_unix_s[i]), 3),
                    f"{gps.lat[i]:.8f}",
                    f"{gps.lon[i]:.8f}",
                    f"{gps.ele_m[i]:.1f}",
                    f"{hdop * 3.8:.1f}",
                    f"{gps.bearing_deg[i]:.1f}",
                    f"{gps.speed_mps[i]:.2f}",
                    str(int(gps.satellites[i])),
                    "gps",
                    f"{hdop:.1f}",
                    f"{vdop:.1f}",
                    f"{math.hypot(hdop, vdop):.1f}",
                    "39.6",
                    "",
                    "",
                    "",
                    str(int(88 - 3 * i / max(n, 1))),
                    "",
                ]
            )
        )
    return "\n".join(rows) + "\n"


def accel_csv(accel: AccelSamples) -> str:
    rows = [ACCEL_HEADER]
    a = accel.accel_mps2
    rows += [
        f"{t:.3f},{x:.4f},{y:.4f},{z:.4f}"
        for t, x, y, z in zip(accel.t_unix_s, a[:, 0], a[:, 1], a[:, 2], strict=True)
    ]
    return "\n".join(rows) + "\n"


def gps_error_rms(gps: GpsFixes, drive, route: Route, video_start_unix: float) -> float:
    """RMS horizontal error (m) of the fixes that are not outliers (a truth diagnostic)."""
    tv = gps.t_unix_s - video_start_unix
    x, y = drive.at(tv, "x_m"), drive.at(tv, "y_m")
    xy = route.projection.to_plane(gps.lat, gps.lon)
    err = np.hypot(xy[:, 0] - x, xy[:, 1] - y)[~gps.outlier]
    return float(np.sqrt(np.mean(err**2)))


def rendered_intrinsics(video: CameraIntrinsics, scale: float) -> CameraIntrinsics:
    """The camera the renderer draws through when frames are rendered at ``scale`` times the video
    size and upscaled: pixel centres map onto the video's as ``cv2.resize`` maps them
    (``x_video + 0.5 = (x_rendered + 0.5) * video_width / rendered_width``)."""
    if scale == 1:
        return video
    w = max(2, round(video.width_px * scale))
    h = max(2, round(video.height_px * scale))
    sx, sy = w / video.width_px, h / video.height_px
    return CameraIntrinsics(
        w,
        h,
        video.fx_px * sx,
        video.fy_px * sy,
        (video.cx_px + 0.5) * sx - 0.5,
        (video.cy_px + 0.5) * sy - 0.5,
        video.distortion,
    )


def _to_video_size(rgb: np.ndarray, video: CameraIntrinsics) -> np.ndarray:
    if rgb.shape[:2] == (video.height_px, video.width_px):
        return rgb
    return cv2.resize(rgb, (video.width_px, video.height_px), interpolation=cv2.INTER_LINEAR)


def depth_frame_indices(s_m: np.ndarray, every_m: float) -> list[int]:
    """Frames at every ``every_m`` metres of travel: the first frame, then the first frame at or
    past each further multiple (none while the car stands)."""
    travelled = np.maximum.accumulate(np.abs(np.asarray(s_m, dtype=float) - s_m[0]))
    marks = np.floor(travelled / every_m + 1e-9)
    return [0, *(int(k) for k in np.flatnonzero(np.diff(marks) > 0) + 1)]


def _clear_depth(folder: Path) -> None:
    """Remove what ``_DepthWriter`` writes (and the folder, if that leaves it empty)."""
    if not folder.is_dir():
        return
    for path in [*folder.glob("depth_*.png"), folder / "depth.csv", folder / "intrinsics.json"]:
        path.unlink(missing_ok=True)
    if not any(folder.iterdir()):
        folder.rmdir()


class _DepthWriter:
    """The phone's depth sensor: ``depth/depth_<frame:06d>.png`` (16-bit mm), ``depth.csv`` and
    ``intrinsics.json`` (docs/run_folder.md)."""

    def __init__(
        self, folder: Path, scene: Scene, camera: CameraIntrinsics, rng: np.random.Generator
    ) -> None:
        self.folder = folder
        self.spec = DepthSpec()
        self.intrinsics = self.spec.intrinsics(camera)
        self.renderer = Renderer(scene, self.intrinsics)
        self.rng = rng
        self.rows = [DEPTH_HEADER]
        folder.mkdir(parents=True, exist_ok=True)

    def write(self, frame_index: int, video_time_s: float, pose: CameraPose) -> None:
        hit = self.renderer.hits(pose)
        name = f"depth_{frame_index:06d}.png"
        if not cv2.imwrite(
            str(self.folder / name), depth_map_mm(hit.range_m, self.intrinsics, self.rng, self.spec)
        ):
            raise ExportError(
                f"cannot write {self.folder / name}; check the disk and the folder's permissions"
            )
        self.rows.append(f"{name},{video_time_s:.6f}")

    def close(self) -> int:
        (self.folder / "depth.csv").write_text("\n".join(self.rows) + "\n", encoding="utf-8")
        k = self.intrinsics
        _write_json(
            self.folder / "intrinsics.json",
            {"width_px": k.width_px, "height_px": k.height_px, "fx_px": k.fx_px, "fy_px": k.fy_px,
             "cx_px": k.cx_px, "cy_px": k.cy_px},
        )  # fmt: skip
        return len(self.rows) - 1


def _exposure_drift(rng: np.random.Generator) -> Callable[[float], float]:
    """A slow multiplicative wander of the exposure (+-10 %): the phone's own AE hunting."""
    periods = rng.uniform(8.0, 40.0, 3)
    phases = rng.uniform(0, 2 * np.pi, 3)
    amps = np.array([0.06, 0.04, 0.02])

    def drift(t_s: float) -> float:
        return float(np.exp(np.sum(amps * np.sin(2 * np.pi * t_s / periods + phases))))

    return drift


class _VideoWriter:
    """H.264 (libx264, yuv420p) in MP4 through PyAV, frames streamed as they come."""

    def __init__(self, path: Path, config: SynthConfig, creation_time: str) -> None:
        import av

        self._av = av
        try:
            self._container = av.open(str(path), mode="w")
        except OSError as exc:
            raise ExportError(f"cannot write {path}: {exc}") from exc
        self._container.metadata["creation_time"] = creation_time
        rate = Fraction(config.fps).limit_denominator(1001)
        self._stream = self._container.add_stream("libx264", rate=rate)
        self._stream.width = config.width_px
        self._stream.height = config.height_px
        self._stream.pix_fmt = "yuv420p"
        self._stream.codec_context.time_base = 1 / rate
        self._stream.options = {"crf": str(config.crf), "preset": config.preset}
        self._n = 0

    def write(self, rgb: np.ndarray) -> None:
        frame = self._av.VideoFrame.from_ndarray(rgb, format="rgb24")
        frame.pts = self._n
        self._n += 1
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def __enter__(self) -> _VideoWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            for packet in self._stream.encode():
                self._container.mux(packet)
        finally:
            self._container.close()
