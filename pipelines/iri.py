"""Roughness stage: IRI per 100 m segment from the phone accelerometer (``accel.csv``).

``segment_iri`` places every accelerometer sample on the route (its time -> the chainage of the
geotagged frames) and estimates each segment's IRI from the samples taken while the car moved
through it (``pavement.ride``). Where the log has gaps (more than ``RideConfig.max_gap_s`` between
samples) the segment's samples are split there and estimated piece by piece, never interpolated
across; a segment whose pieces cover too little of its moving time is null with the reason.

``run_iri`` is the stage (``pavement iri``); ``run_calibrate_vehicle`` fits the vehicle's gain on
a run over road of known IRI (``pavement calibrate-vehicle``) and writes ``vehicle.json``, which
``pavement iri`` and ``pavement process`` take with ``--vehicle``.
"""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from pavement.errors import AccelerometerError, ConfigError, InputError
from pavement.ride import (
    DEFAULT_VEHICLE,
    IriEstimate,
    RideConfig,
    calibrate_gain,
    iri_from_pieces,
    vertical_acceleration,
)
from pipelines.accel_io import AccelLog, read_accel_csv
from pipelines.geotag import GeotagConfig, GeotagResult, run_geotag, segment_feature

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class VehicleCalibration:
    """What ``calibrate-vehicle`` measured for one car + phone mount."""

    gain: float  # reference IRI / default-model estimate
    n_segments: int
    note: str = ""

    def to_json(self) -> str:
        return json.dumps({"gain": self.gain, "n_segments": self.n_segments, "note": self.note}, indent=2)

    @classmethod
    def read(cls, path: Path) -> VehicleCalibration:
        try:
            d = json.loads(Path(path).read_text(encoding="utf-8"))
            gain = float(d["gain"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputError(
                f"cannot read the vehicle calibration {path}: {exc}; make one with "
                "`pavement calibrate-vehicle`"
            ) from exc
        if not 0.1 <= gain <= 10:
            raise ConfigError(f"vehicle gain {gain} in {path} is implausible (expected 0.1-10)")
        return cls(gain, int(d.get("n_segments", 0)), str(d.get("note", "")))


def _utc(t_unix_s: float) -> str:
    return datetime.fromtimestamp(t_unix_s, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _no_overlap(log: AccelLog, video_from_s: float, video_to_s: float) -> AccelerometerError:
    """The error for a log that never overlaps the video, with the likely fix."""
    shift_h = ((log.t_unix_s[0] + log.t_unix_s[-1]) - (video_from_s + video_to_s)) / 2 / 3600
    whole_h = round(shift_h)
    # Whole hours off, as far as time zones go: a log written in local time and read as UTC.
    if 1 <= abs(whole_h) <= 14 and abs(shift_h - whole_h) * 3600 < 600:
        fix = (
            f"the log is {whole_h:+d} h off, as if its clock were local time (JST is UTC+9): log in UTC "
            f"or shift t_unix_s by {-whole_h * 3600:+d} s"
        )
    else:
        fix = "check that it is this run's log and that the phone sets its clock automatically"
    return AccelerometerError(
        f"the accelerometer log ({_utc(log.t_unix_s[0])} to {_utc(log.t_unix_s[-1])} UTC) never overlaps "
        f"the video ({_utc(video_from_s)} to {_utc(video_to_s)} UTC); {fix}"
    )


def segment_iri(
    geo: GeotagResult, log: AccelLog, gain: float = 1.0, config: RideConfig | None = None
) -> list[IriEstimate | None]:
    """IRI estimate per segment of ``geo.segments`` (None where no samples fall in it)."""
    config = config or RideConfig()
    placed = sorted((p for p in geo.frames if p.route is not None), key=lambda p: p.t_unix_s)
    if len(placed) < 2:
        return [None] * len(geo.segments)
    t = np.array([p.t_unix_s for p in placed])
    chainage = np.array([p.route.chainage_m for p in placed])
    inside = (log.t_unix_s >= t[0]) & (log.t_unix_s <= t[-1])
    if not inside.any():
        raise _no_overlap(log, float(t[0]), float(t[-1]))
    rate = log.rate_hz
    a_vert = vertical_acceleration(log.accel_mps2, rate, config.gravity_window_s)
    s = np.interp(log.t_unix_s, t, chainage)
    speed = np.abs(np.gradient(s, log.t_unix_s))
    # Continuous pieces of the log: a new piece after every gap.
    piece = np.concatenate([[0], np.cumsum(np.diff(log.t_unix_s) > config.max_gap_s)])
    # The time the car spent on each segment while moving, on a regular grid over the part of the
    # video the log spans (gaps included): what the pieces should have covered.
    grid = np.arange(max(t[0], log.t_unix_s[0]), min(t[-1], log.t_unix_s[-1]), 1 / rate)
    s_grid = np.interp(grid, t, chainage)
    speed_grid = np.abs(np.gradient(s_grid, grid)) if len(grid) > 1 else np.zeros_like(grid)
    moving_grid = speed_grid >= config.min_speed_mps
    out: list[IriEstimate | None] = []
    for rs in geo.segments:
        lo, hi = sorted((rs.start_chainage_m, rs.end_chainage_m))
        on_grid = moving_grid & (s_grid >= lo) & (s_grid < hi)
        expected_s = float(np.count_nonzero(on_grid)) / rate
        in_seg = inside & (s >= lo) & (s < hi)
        # Only samples while moving: a stop (or crawling) says nothing about the road.
        moving = in_seg & (speed >= config.min_speed_mps)
        if moving.sum() < 2:
            if expected_s < config.min_piece_s:
                out.append(None)
                continue
            reason = (
                f"accelerometer log has a gap over this segment: {expected_s:.1f} s driven without samples"
            )
            est = IriEstimate(None, None, float(np.mean(speed_grid[on_grid])), reason)
            logger.warning("segment %s: %s", rs.key.label, est.reason)
            out.append(est)
            continue
        idx = np.flatnonzero(moving)
        pieces = np.split(a_vert[idx], np.flatnonzero(np.diff(piece[idx])) + 1)
        est = iri_from_pieces(
            pieces, rate, float(np.mean(speed[moving])), DEFAULT_VEHICLE, gain, config, expected_s
        )
        if est.iri_mm_per_m is None and "gaps" in est.reason:
            logger.warning("segment %s: %s", rs.key.label, est.reason)
        out.append(est)
    return out


def _read_reference(path: Path) -> dict[tuple[float, float], float]:
    """Reference IRI per segment: CSV with kp_km, offset_m, iri_mm_per_m."""
    try:
        with Path(path).open(newline="", encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f))
        return {(float(r["kp_km"]), float(r["offset_m"])): float(r["iri_mm_per_m"]) for r in rows}
    except (OSError, KeyError, ValueError) as exc:
        raise InputError(
            f"cannot read the reference IRI {path}: {exc}; expected a CSV with columns kp_km, offset_m, "
            "iri_mm_per_m (one row per 100 m segment, e.g. from a profiler survey)"
        ) from exc


def run_calibrate_vehicle(
    run_dir: Path, reference_csv: Path, out_json: Path, geotag: GeotagConfig | None = None
) -> VehicleCalibration:
    """Fit the vehicle gain on a run over road whose IRI per segment is known."""
    geotag = geotag or GeotagConfig()
    reference = _read_reference(reference_csv)
    geo = run_geotag(run_dir, Path(out_json).parent / "geotag_calibration", geotag)
    estimates = segment_iri(geo, read_accel_csv(Path(run_dir) / "accel.csv"))
    pairs = [
        (e.iri_mm_per_m, reference[(rs.key.kp_km, rs.key.offset_m)])
        for rs, e in zip(geo.segments, estimates, strict=True)
        if e is not None
        and e.iri_mm_per_m is not None
        and not rs.segment.partial
        and (rs.key.kp_km, rs.key.offset_m) in reference
    ]
    if len(pairs) < 2:
        raise InputError(
            f"only {len(pairs)} full segments of the run have a reference IRI; calibration needs at least 2 "
            "(drive at least 300 m of surveyed road)"
        )
    est, ref = np.array(pairs).T
    cal = VehicleCalibration(calibrate_gain(est, ref), len(pairs), f"from {Path(run_dir).name}")
    Path(out_json).write_text(cal.to_json() + "\n")
    return cal


@dataclass(frozen=True)
class IriResult:
    segments_geojson: Path
    estimates: tuple[IriEstimate | None, ...]
    gain: float


def run_iri(
    run_dir: Path,
    out_dir: Path,
    vehicle: VehicleCalibration | None = None,
    geotag: GeotagConfig | None = None,
) -> IriResult:
    """Geotag the run and write ``segments.geojson``: segment keys + ``iri_mm_per_m`` and its
    uncertainty (null where no estimate, with the reason)."""
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    accel = run_dir / "accel.csv"
    if not accel.is_file():
        raise InputError(
            f"no accel.csv in {run_dir}; IRI needs the phone's accelerometer log (docs/run_folder.md)"
        )
    log = read_accel_csv(accel)  # a log that cannot be used fails before the video is read
    geo = run_geotag(run_dir, out_dir / "geotag", geotag or GeotagConfig())
    gain = vehicle.gain if vehicle else 1.0
    estimates = segment_iri(geo, log, gain)
    features = []
    for rs, est in zip(geo.segments, estimates, strict=True):
        iri = None if est is None or est.iri_mm_per_m is None else round(est.iri_mm_per_m, 2)
        features.append(
            segment_feature(
                rs,
                {
                    "iri_mm_per_m": iri,
                    "iri_uncertainty_mm_per_m": None if iri is None else round(est.uncertainty_mm_per_m, 2),
                    "mean_speed_kmh": None if est is None else round(est.mean_speed_mps * 3.6, 1),
                    "calibrated": vehicle is not None,
                    "reason": "no samples while moving" if est is None else est.reason,
                },
            )
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "segments.geojson"
    path.write_text(
        json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False, indent=1)
    )
    return IriResult(path, tuple(estimates), gain)
