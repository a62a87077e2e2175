"""Geotagging stage: place every planned video frame on the route.

``run_geotag(run_dir, out_dir, config)`` reads the run folder (video, GPS log, optional route
ledger and camera profile), and writes:

- ``frames.csv``: one row per planned frame: frame_index, t_video_s, lat, lon, heading_deg,
  speed_mps, route_no, direction, kp_km, offset_m, quality (then t_unix_s, chainage_m, distance_m,
  rut_burst);
- ``segments.geojson``: one LineString feature per 100 m segment (lon/lat, EPSG:6668) with
  route_no, direction, kp_km, offset_m, length_m, frame_count, partial, ... ;
- ``report.json``: clock_offset_s and clock_offset_uncertainty_s, counts, warnings, wall time.

Steps: read GPS -> clean -> (video pass: road speed per frame) -> clock offset -> smooth with the
video speed -> sample every frame -> frame plan -> map matching / linear referencing -> segments.
"""

from __future__ import annotations

import csv
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from pavement.camera import CameraProfile
from pavement.clock import (
    ClockConfig,
    ClockEstimate,
    ClockSource,
    estimate_clock_offset,
    estimate_clock_offset_from_distance,
    estimate_clock_offset_from_stops,
    user_clock_offset,
)
from pavement.errors import CalibrationError, ConfigError, GpsTrackError, VideoUnreadable
from pavement.frame_plan import NO_BURST, FramePlan, FramePlanConfig, plan_frames, plan_from_selection
from pavement.geodesy import PlaneProjection, plane_crs_for, plane_crs_from_epsg
from pavement.gps_track import (
    FixFlag,
    SpeedSeries,
    TrackConfig,
    clean_track,
    distance_travelled_m,
    fix_arc_lengths,
    smooth_track,
)
from pavement.linear_referencing import (
    LedgerConfig,
    RouteLedger,
    SegmentSpan,
    TrackLine,
    assemble_segments,
    build_ledger,
    match_track,
    track_positions,
    track_segment_span,
)
from pavement.segments import RunSegment
from pavement.track import FramePose
from pipelines.gps_io import read_track
from pipelines.route_ledger_io import read_route_ledger
from pipelines.video_motion import (
    ProgressCallback,
    VideoInfo,
    VideoMotion,
    frame_times,
    measure_video_motion,
    probe_video,
)

logger = logging.getLogger(__name__)

GPS_NAMES = ("gps.csv", "gps.gpx", "gps.nmea", "gps.txt")
VIDEO_NAMES = ("video.mp4", "video.mov", "video.MP4", "video.MOV")
ROUTE_NAMES = ("route.geojson", "route.gpkg", "route.shp", "route.json")
FRAMES_COLUMNS = (
    "frame_index",
    "t_video_s",
    "lat",
    "lon",
    "heading_deg",
    "speed_mps",
    "route_no",
    "direction",
    "kp_km",
    "offset_m",
    "quality",
    "t_unix_s",
    "chainage_m",
    "distance_m",
    "rut_burst",
)


@dataclass(frozen=True)
class GeotagConfig:
    """Inputs that override the run folder's files, and the parameters of each step."""

    gps_path: Path | None = None  # default: gps.csv, gps.gpx or gps.nmea in the run folder
    route_path: Path | None = None  # default: route.geojson / .gpkg / .shp in the run folder, else none
    video_path: Path | None = None  # default: video.mp4
    camera_path: Path | None = None  # default: camera.json (needed for the video speed)
    clock_offset_s: float | None = None  # user-given offset; overrides the estimate
    plane_epsg: int | None = None  # default: the plane rectangular zone of the track's location
    max_video_width_px: int = 960  # shrink the video to at most this for the road-speed pass
    fuse_video_speed: bool = True  # smooth the track with the video's speed as well as the GPS
    min_flow_correlation: float = 0.9  # video/GPS speed correlation needed to trust the road-plane flow
    track: TrackConfig = field(default_factory=TrackConfig)
    clock: ClockConfig = field(default_factory=ClockConfig)
    plan: FramePlanConfig = field(default_factory=FramePlanConfig)
    ledger: LedgerConfig = field(default_factory=LedgerConfig)


@dataclass(frozen=True)
class GeotagResult:
    frames_csv: Path
    segments_geojson: Path
    report_json: Path
    clock: ClockEstimate
    frames: tuple[FramePose, ...]
    segments: tuple[RunSegment, ...]
    referencing: str  # "ledger" or "track_distance"
    warnings: tuple[str, ...]
    ledger: RouteLedger | None = None  # the route ledger the frames were placed on
    plan: FramePlan | None = None  # the frame plan, in the order of ``frames`` (rut bursts)


def _find(run_dir: Path, names: tuple[str, ...], patterns: tuple[str, ...] = ()) -> Path | None:
    for name in names:
        if (run_dir / name).is_file():
            return run_dir / name
    for pattern in patterns:
        found = sorted(run_dir.glob(pattern))
        if found:
            return found[0]
    return None


def _median_or_none(values: np.ndarray | None) -> float | None:
    if values is None or not np.isfinite(values).any():
        return None
    return round(float(np.nanmedian(values)), 2)


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-5] + "Z"


def find_inputs(run_dir: Path, config: GeotagConfig) -> tuple[Path, Path, Path, Path | None, Path | None]:
    """(run folder, video, GPS log, route ledger or None, camera.json or None): the config's
    overrides, else the run folder's files (docs/run_folder.md); a missing video or GPS log is an
    error that says what to put where."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ConfigError(
            f"run folder {run_dir} does not exist; give the folder holding video.mp4 and the GPS log"
        )
    video_path = config.video_path or _find(run_dir, VIDEO_NAMES, ("*.mp4", "*.MP4", "*.mov", "*.MOV"))
    if video_path is None:
        raise VideoUnreadable(f"no video in {run_dir}; expected video.mp4 (or give --video FILE)")
    gps_path = config.gps_path or _find(run_dir, GPS_NAMES, ("*.gpx", "*.nmea", "*.nma"))
    if gps_path is None:
        raise GpsTrackError(
            f"no GPS log in {run_dir}; expected gps.csv, gps.gpx or gps.nmea (or give --gps FILE)"
        )
    route_path = config.route_path or _find(run_dir, ROUTE_NAMES)
    camera_path = config.camera_path or _find(run_dir, ("camera.json",))
    return run_dir, video_path, gps_path, route_path, camera_path


def gps_speed_by_video_time(
    gps_path: Path, info: VideoInfo, config: GeotagConfig
) -> Callable[[float], float] | None:
    """Read the GPS log before the video is decoded: fail early when it cannot belong to the video
    (empty; or, with the video's creation_time, ending before or starting after the video by more
    than the clock search allows, Japan time written as UTC included), and return the GPS speed
    (m/s) at a video time by the nominal clock (creation_time; the user's offset when given).
    None when the video has no creation_time: the nominal clock is unknown.

    A clock error of a few seconds moves where a speed applies by as much; good enough to space
    the frames while the video streams, not to place them (``run_geotag`` does that)."""
    log = read_track(gps_path)
    if info.creation_time_unix_s is None:
        return None
    t = np.array([p.t_unix_s for p in log.points])
    if config.clock_offset_s is not None:
        start = info.creation_time_unix_s + config.clock_offset_s
    else:
        slack = config.clock.max_offset_s
        start = _jst_fix(info.creation_time_unix_s, info.duration_s, t, [])
        if start + info.duration_s + slack < t.min() or start - slack > t.max():
            raise GpsTrackError(
                f"the GPS log {gps_path.name} ({_iso(t.min())} to {_iso(t.max())}) is not from the time of "
                f"the video ({_iso(start)}, {info.duration_s:.0f} s): check that it is this run's log, "
                "or give --clock-offset SECONDS if the phone's clock was wrong"
            )
    lat = float(np.median([p.lat for p in log.points]))
    lon = float(np.median([p.lon for p in log.points]))
    crs = plane_crs_from_epsg(config.plane_epsg) if config.plane_epsg else plane_crs_for(lat, lon)
    projection = PlaneProjection(crs)
    track = smooth_track(clean_track(log.points, projection, config.track), projection, config.track)

    grid = np.arange(-1.0, info.duration_s + 1.0, 0.1)
    sample = track.sample(start + grid)
    speeds = np.where(sample.covered, sample.speed_mps, np.nan)

    def speed(t_video_s: float) -> float:
        return float(np.interp(t_video_s, grid, speeds))

    return speed


def run_geotag(
    run_dir: Path,
    out_dir: Path,
    config: GeotagConfig = GeotagConfig(),
    on_progress: ProgressCallback | None = None,
    motion: VideoMotion | None = None,
    selection: dict[int, int] | None = None,
) -> GeotagResult:
    """Geotag the run in ``run_dir``; write frames.csv, segments.geojson, report.json to ``out_dir``.

    ``motion``: the video's road speed when the caller has already decoded the video (``pavement
    process`` measures it in its own single pass); otherwise the video is decoded here.
    ``selection``: frames chosen beforehand (frame index -> burst id) instead of planning them
    from the GPS distance."""
    started = time.perf_counter()
    out_dir = Path(out_dir)
    run_dir, video_path, gps_path, route_path, camera_path = find_inputs(run_dir, config)
    warnings: list[str] = []

    log = read_track(gps_path)
    warnings.extend(log.warnings)
    lat_med = float(np.median([p.lat for p in log.points]))
    lon_med = float(np.median([p.lon for p in log.points]))
    crs = plane_crs_from_epsg(config.plane_epsg) if config.plane_epsg else plane_crs_for(lat_med, lon_med)
    projection = PlaneProjection(crs)
    clean = clean_track(log.points, projection, config.track)
    gps_only = smooth_track(clean, projection, config.track)
    for gap in gps_only.gaps:
        warnings.append(gap.message(config.track.max_gap_s))

    info = probe_video(video_path)
    camera = _read_camera(camera_path) if camera_path else None
    if motion is None and camera is not None:
        motion = measure_video_motion(video_path, camera, config.max_video_width_px, on_progress)
    if motion is not None:
        t_video = motion.t_video_s
    else:
        warnings.append(
            "no camera.json: the video's speed over the road cannot be measured, so the clock offset "
            "is not estimated and positions rest on GPS alone"
        )
        t_video = frame_times(video_path)
        if on_progress is not None:
            on_progress(len(t_video), len(t_video))

    # ---- clock ---------------------------------------------------------------------------------
    kept = clean.kept
    gps_t = np.array([p.t_unix_s for p in kept])
    video_start = info.creation_time_unix_s
    clock_cfg = config.clock
    if video_start is None:
        video_start = float(gps_t[0])
        span = float(gps_t[-1] - gps_t[0])
        clock_cfg = replace(clock_cfg, max_offset_s=max(clock_cfg.max_offset_s, span))
        warnings.append("the video has no creation_time; its start was searched over the whole GPS log")
    else:
        video_start = _jst_fix(video_start, float(t_video[-1]), gps_t, warnings)
    estimate: ClockEstimate | None = None
    flow_trusted = False  # the road-plane speed is good enough to fuse into the track
    if motion is not None:
        doppler = np.array([np.nan if p.speed_mps is None else p.speed_mps for p in kept], dtype=float)
        has_doppler = bool(np.isfinite(doppler).mean() > 0.8)
        if has_doppler:
            # the phone's Doppler speed: independent per fix, sharp at stops and starts
            estimate = estimate_clock_offset(
                motion.t_speed_s, motion.speed_mps, motion.valid, gps_t, doppler, video_start, clock_cfg
            )
            flow_trusted = estimate.reliable and (estimate.correlation or 0.0) >= config.min_flow_correlation
        else:
            # positions only (most GPX): video distance against each fix's place along the path
            estimate = estimate_clock_offset_from_distance(
                motion.t_speed_s,
                motion.speed_mps,
                motion.valid,
                gps_t,
                fix_arc_lengths(gps_only, clean),
                video_start,
                clock_cfg,
            )
            flow_trusted = estimate.reliable
        if not flow_trusted:
            # asphalt too smooth (or too blurred) for road-plane flow: time the stops and starts
            # with the video's image change instead
            reference = doppler if has_doppler else gps_only.sample(gps_t).speed_mps
            by_motion = estimate_clock_offset_from_stops(
                motion.t_speed_s, motion.change, gps_t, reference, video_start, clock_cfg
            )
            corr = float("nan") if estimate.correlation is None else estimate.correlation
            warnings.append(
                f"the road-plane optical flow did not match the GPS speed (correlation {corr:.2f}); "
                "the clock was aligned on the video's stops and starts instead, and positions rest on GPS"
            )
            estimate = by_motion
        if estimate.note and config.clock_offset_s is None:
            warnings.append(estimate.note)
        if not estimate.reliable and config.clock_offset_s is None:
            warnings.append(
                f"clock offset estimate {estimate.offset_s:+.2f} s is not trusted; the video's creation_time "
                "is used as it is (give --clock-offset SECONDS)"
            )
            estimate = replace(estimate, offset_s=0.0, source=ClockSource.NOMINAL)
    if config.clock_offset_s is not None:
        clock = user_clock_offset(config.clock_offset_s)
        if estimate is not None and estimate.source is ClockSource.ESTIMATED:
            clock = replace(
                clock,
                speed_scale=estimate.speed_scale,
                note=f"user offset {config.clock_offset_s:+.2f} s; the video/GPS speed match gave "
                f"{estimate.offset_s:+.2f} +- {estimate.uncertainty_s:.2f} s",
            )
    elif estimate is not None:
        clock = estimate
    else:
        clock = ClockEstimate(
            0.0,
            None,
            ClockSource.NOMINAL,
            reliable=False,
            note="clock offset not estimated; the video's creation_time is taken as GPS time",
        )
    t_unix = video_start + t_video + clock.offset_s
    overlap = min(t_unix[-1], gps_t[-1]) - max(t_unix[0], gps_t[0])
    if overlap <= 0:
        via = " and the clock offset" if clock.offset_s else ""
        raise GpsTrackError(
            f"the GPS log ({_iso(gps_t[0])} to {_iso(gps_t[-1])}) does not overlap the video "
            f"({_iso(t_unix[0])} to {_iso(t_unix[-1])}, from its creation_time{via}); check that this "
            "is the log of this run, or give --clock-offset SECONDS if the phone's clock was wrong"
        )

    # ---- track with the video's speed, sampled at every frame ------------------------------------
    track = gps_only
    if (
        motion is not None
        and flow_trusted
        and clock.source is not ClockSource.NOMINAL
        and config.fuse_video_speed
    ):
        speed = SpeedSeries(
            video_start + motion.t_speed_s + clock.offset_s,
            motion.speed_mps * clock.speed_scale,
            motion.valid,
        )
        track = smooth_track(clean, projection, config.track, video_speed=speed)
    sample = track.sample(t_unix)
    n_uncovered = int((~sample.covered).sum())
    if n_uncovered:
        warnings.append(
            f"{n_uncovered} of {len(t_unix)} video frames fall outside the GPS log or in a gap "
            "of it and get no position"
        )
    distance = distance_travelled_m(sample, config.plan.min_speed_mps)
    plan = (
        plan_frames(t_video, t_unix, sample, distance, config.plan)
        if selection is None
        else plan_from_selection(selection, t_video, t_unix, sample, distance, config.plan)
    )
    if len(plan) == 0:
        raise GpsTrackError(
            "no frame could be planned: the car never moves while the video and the GPS log overlap "
            f"({overlap:.0f} s); check the GPS log belongs to this video"
        )

    # ---- linear referencing -----------------------------------------------------------------------
    ledger: RouteLedger | None = None
    if route_path is not None:
        lines, posts = read_route_ledger(route_path)
        ledger = build_ledger(lines, posts, projection, config.ledger)
        warnings.extend(ledger.warnings)
    poses, spans = _reference(plan, sample, ledger, config, warnings)
    covered_idx = np.flatnonzero(sample.covered)
    track_line = TrackLine(distance[covered_idx], np.column_stack([sample.lon, sample.lat])[covered_idx])
    lead_in = plan.distance_m[0] - float(distance[covered_idx[0]])
    lead_out = float(distance[covered_idx[-1]]) - plan.distance_m[-1]
    segments = assemble_segments(poses, spans, ledger, track_line, lead_in, lead_out)

    # ---- outputs --------------------------------------------------------------------------------
    out_dir.mkdir(parents=True, exist_ok=True)
    frames_csv = out_dir / "frames.csv"
    _write_frames(frames_csv, poses, plan)
    segments_geojson = out_dir / "segments.geojson"
    _write_segments(segments_geojson, segments)
    report_json = out_dir / "report.json"
    referencing = "ledger" if ledger is not None else "track_distance"
    if ledger is None:
        warnings.append(
            "no route ledger: frames and segments are referenced by distance along the track "
            "(route_no 'track', direction 不明, 'kp_km' = whole km travelled)"
        )
    report = {
        "stage": "geotag",
        "run_dir": str(run_dir),
        "inputs": {
            "video": str(video_path),
            "gps": str(gps_path),
            "gps_format": str(log.format),
            "route": None if route_path is None else str(route_path),
            "camera": None if camera_path is None else str(camera_path),
        },
        "clock_offset_s": round(clock.offset_s, 4),
        "clock_offset_uncertainty_s": None if clock.uncertainty_s is None else round(clock.uncertainty_s, 4),
        "clock": {
            "source": str(clock.source),
            "video_speed_scale": round(clock.speed_scale, 4),
            # camera.json's pitch minus the body's, measured by the road flow's strips (median over
            # the run; None where too few frames showed texture far enough ahead)
            "video_pitch_error_deg": _median_or_none(None if motion is None else motion.pitch_error_deg),
            "video_pitch_measured_share": None if motion is None else round(motion.pitch_measured_share, 3),
            "correlation": None if clock.correlation is None else round(clock.correlation, 4),
            "reliable": clock.reliable,
            "n_fixes_compared": clock.n_samples,
            "note": clock.note,
            "video_creation_time": None
            if info.creation_time_unix_s is None
            else _iso(info.creation_time_unix_s),
            "estimate": None
            if estimate is None
            else {
                "offset_s": round(estimate.offset_s, 4),
                "uncertainty_s": None if estimate.uncertainty_s is None else round(estimate.uncertainty_s, 4),
            },
        },
        "plane_crs": crs.srs,
        "referencing": referencing,
        "config": {
            "frame_spacing_m": config.plan.spacing_m,
            "burst_every_m": config.plan.burst_every_m,
            "burst_frames": config.plan.burst_frames,
            "max_gap_s": config.track.max_gap_s,
        },
        "counts": {
            "gps_fixes": len(log.points),
            "gps_fixes_kept": len(kept),
            "gps_rejected": {str(f): clean.count(f) for f in FixFlag if f is not FixFlag.OK},
            "gps_records_skipped": log.n_skipped,
            "nmea_bad_checksums": log.n_bad_checksum,
            "video_frames": len(t_video),
            "video_frames_without_position": n_uncovered,
            "planned_frames": len(plan),
            "rut_bursts": plan.n_bursts,
            "burst_frames": sum(b != NO_BURST for b in plan.burst_id),
            "matched_frames": sum(s is not None for s in spans),
            "off_ledger_frames": sum(s is None for s in spans),
            "segments": len(segments),
            "partial_segments": sum(s.segment.partial for s in segments),
            "distance_travelled_m": round(float(distance[-1]), 1),
        },
        "mean_location_quality": round(float(np.mean([p.quality for p in poses])), 4),
        "warnings": warnings,
        "wall_time_s": round(time.perf_counter() - started, 2),
    }
    report_json.write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    return GeotagResult(
        frames_csv,
        segments_geojson,
        report_json,
        clock,
        poses,
        segments,
        referencing,
        tuple(warnings),
        ledger,
        plan,
    )


JST_OFFSET_S = 9 * 3600.0


def _jst_fix(video_start: float, duration_s: float, gps_t: np.ndarray, warnings: list[str]) -> float:
    """Phones often write Japan time into creation_time but label it UTC. When the video only
    overlaps the GPS log after taking 9 h off, do so and say it."""

    def overlap(start: float) -> float:
        return min(start + duration_s, gps_t[-1]) - max(start, gps_t[0])

    if overlap(video_start) <= 0 < overlap(video_start - JST_OFFSET_S):
        warnings.append(
            "the video's creation_time is 9 h after the GPS log: it was taken as Japan time "
            "(JST) written as UTC, and 9 h were taken off"
        )
        return video_start - JST_OFFSET_S
    return video_start


def _read_camera(path: Path) -> CameraProfile:
    try:
        return CameraProfile.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
    except (OSError, json.JSONDecodeError) as exc:
        raise CalibrationError(f"cannot read camera profile {path}: {exc}") from exc


def _reference(
    plan: FramePlan, sample, ledger: RouteLedger | None, config: GeotagConfig, warnings: list[str]
) -> tuple[tuple[FramePose, ...], list[SegmentSpan | None]]:
    """Route positions and segment spans of the planned frames."""
    idx = np.array([p.frame_index for p in plan.poses])
    distance = np.array(plan.distance_m)
    if ledger is None:
        positions = track_positions(distance)
        poses = tuple(replace(p, route=r) for p, r in zip(plan.poses, positions, strict=True))
        return poses, [track_segment_span(d) for d in distance]
    xy = np.column_stack([sample.x_m[idx], sample.y_m[idx]])
    t = np.array([p.t_unix_s for p in plan.poses])
    breaks = np.concatenate([[False], np.diff(t) > config.track.max_gap_s])
    matches = match_track(
        ledger, xy, sample.heading_deg[idx], sample.speed_mps[idx], distance, config.ledger, breaks
    )
    poses: list[FramePose] = []
    spans: list[SegmentSpan | None] = []
    for pose, m in zip(plan.poses, matches, strict=True):
        if m is None:
            poses.append(pose)
            spans.append(None)
            continue
        poses.append(replace(pose, route=ledger.position(m.route_index, m.chainage_m, m.direction)))
        spans.append(ledger.segment_span(m.route_index, m.chainage_m, m.direction))
    n_off = sum(s is None for s in spans)
    if n_off:
        warnings.append(f"{n_off} of {len(spans)} planned frames are off the ledger's routes (no route_no)")
    return tuple(poses), spans


def _fmt(v: float | None, digits: int) -> str:
    return "" if v is None else f"{v:.{digits}f}"


def _write_frames(path: Path, poses: tuple[FramePose, ...], plan: FramePlan) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(FRAMES_COLUMNS)
        for pose, d, burst in zip(poses, plan.distance_m, plan.burst_id, strict=True):
            r = pose.route
            w.writerow(
                [
                    pose.frame_index,
                    f"{pose.t_video_s:.4f}",
                    f"{pose.lat:.8f}",
                    f"{pose.lon:.8f}",
                    f"{pose.heading_deg:.1f}",
                    f"{pose.speed_mps:.2f}",
                    "" if r is None else r.route_no,
                    "" if r is None else str(r.direction),
                    "" if r is None else f"{r.kp_km:g}",
                    "" if r is None else f"{r.offset_m:.2f}",
                    f"{pose.quality:.3f}",
                    f"{pose.t_unix_s:.3f}",
                    "" if r is None else f"{r.chainage_m:.2f}",
                    f"{d:.2f}",
                    "" if burst == NO_BURST else burst,
                ]
            )


def segment_feature(rs: RunSegment, properties: dict) -> dict:
    """A GeoJSON feature of one run segment: its keys and partial flag, then ``properties``
    (the per-stage figures of ``pavement iri``, ``pavement rut``)."""
    k = rs.key
    keys = {
        "route_no": k.route_no,
        "direction": str(k.direction),
        "kp_km": k.kp_km,
        "offset_m": k.offset_m,
        "length_m": k.length_m,
        "partial": rs.segment.partial,
    }
    return {
        "type": "Feature",
        "geometry": {"type": "LineString", "coordinates": [list(c) for c in rs.segment.coordinates]},
        "properties": keys | properties,
    }


def _write_segments(path: Path, segments: tuple[RunSegment, ...]) -> None:
    features = []
    for rs in segments:
        seg, key = rs.segment, rs.key
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "LineString", "coordinates": [list(c) for c in seg.coordinates]},
                "properties": {
                    "route_no": key.route_no,
                    "direction": str(key.direction),
                    "kp_km": key.kp_km,
                    "offset_m": key.offset_m,
                    "length_m": key.length_m,
                    "label": key.label,
                    "frame_count": rs.frame_count,
                    "partial": seg.partial,
                    "start_lat": seg.start_lat,
                    "start_lon": seg.start_lon,
                    "end_lat": seg.end_lat,
                    "end_lon": seg.end_lon,
                    "start_chainage_m": round(rs.start_chainage_m, 2),
                    "end_chainage_m": round(rs.end_chainage_m, 2),
                    "location_quality": round(rs.location_quality, 4),
                    "frame_indices": list(seg.frame_indices),
                },
            }
        )
    # RFC 7946: lon/lat without a crs member (JGD2011 EPSG:6668 and WGS84 agree to centimetres in Japan)
    doc = {"type": "FeatureCollection", "name": "segments", "features": features}
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
