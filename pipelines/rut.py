"""Rut stage: わだち掘れ量 per 20 m section and per 100 m segment (``pavement rut``).

Two sources of transverse profiles, used together when both are there:

- **video**: every rut burst of the frame plan (consecutive frames every 20 m) gives one profile
  by plane + parallax (``pavement.rut_video``). It needs frames sharp enough to match the road's
  texture between them: at least ``min_video_width_px`` wide and a bitrate at which the stones
  of the surface survive compression. Where the match fails, the burst's profile is blank and
  the section says why.
- **depth**: a folder of depth maps from a phone's depth sensor (``docs/run_folder.md``), one
  profile per map (``pavement.depth_profile``).

Each profile's rut depth carries a 1-sigma (``pavement.rut_profile.estimate_rut``); sections and
segments whose uncertainty exceeds ``max_sigma_mm`` are blank (null) with the reason.
"""

from __future__ import annotations

import csv
import itertools
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pavement.camera import CameraProfile
from pavement.errors import InputError
from pavement.frame_plan import NO_BURST
from pavement.rut_profile import (
    RutEstimate,
    SectionRut,
    SegmentRut,
    TransverseProfile,
    estimate_rut,
    section_rut,
    segment_rut,
)
from pavement.rut_video import BurstProfile, RutSweepConfig, burst_profile
from pavement.segments import Direction, RunSegment
from pavement.vanishing_point import MountRefinement, PitchRefiner, VanishingConfig
from pipelines.geotag import GeotagConfig, GeotagResult, run_geotag, segment_feature
from pipelines.rut_depth_source import chainage_of_video_time, profiles_from_depth_folder
from pipelines.video_motion import VideoInfo, iter_frames, probe_video

logger = logging.getLogger(__name__)

SECTION_M = 20.0


@dataclass(frozen=True)
class RutConfig:
    geotag: GeotagConfig = field(default_factory=GeotagConfig)
    sweep: RutSweepConfig = field(default_factory=RutSweepConfig)
    max_sigma_mm: float = 3.0  # blank above this 1-sigma (survey vehicles hold about +-3 mm)
    use_video: bool = True
    depth_dir: Path | None = None  # default: RUN_DIR/depth when it exists
    min_video_width_px: int = 1280
    # Below this many bits per pixel and frame (the whole file's rate) the codec wipes the road's
    # texture the bursts match: warned. Measured on held-out synthetic runs: at 0.06 (1.7 Mbit/s at
    # 720p30) every section blank, at 0.21-0.25 (5.7-6.8 Mbit/s) some bursts measure
    # (eval/results/rut_video.md, rut_video_crf18.md); a phone's 1080p30 is ~0.3.
    min_bits_per_px: float = 0.15
    vanishing: VanishingConfig = field(default_factory=VanishingConfig)  # the pitch that seeds the bursts


@dataclass(frozen=True)
class RutResult:
    segments_geojson: Path
    sections_csv: Path
    report_json: Path
    segments: tuple[SegmentRut, ...]
    n_profiles: int
    warnings: tuple[str, ...]


def ahead_sign(direction: Direction) -> float:
    """Chainage grows in the direction of travel except on 上り."""
    return -1.0 if direction == Direction.UP else 1.0


class BurstMeter:
    """Measures one video's rut bursts in order (``pavement.rut_video.burst_profile``) from a mount
    whose pitch is first refined on the bursts' own frames (``PitchRefiner``: the lane lines'
    vanishing point): the first bursts wait, in grey, until ``config.vanishing.frames`` frames
    were seen. The refined pitch is where each burst's own seating and levelling start, instead
    of camera.json's (1-2 degrees off on a phone clipped in that morning). ``camera``: at the
    video's size."""

    def __init__(self, camera: CameraProfile, config: RutConfig):
        self.camera = camera
        self.config = config
        self.pitch = PitchRefiner(camera.intrinsics, camera.mount, config.vanishing)
        self._waiting: list[tuple[list[np.ndarray], list[float], float, int]] = []

    def push(
        self, grays: list[np.ndarray], distances_m: list[float], chainage_m: float, frame_index: int
    ) -> list[BurstProfile]:
        """Add one burst (grey frames, travel of each from the first); the bursts measured now: none
        while the pitch is being refined, then those that waited and this one."""
        self._waiting.append((grays, distances_m, chainage_m, frame_index))
        for grey in grays:
            if self.pitch.push(grey) is not None:
                return self._measure()
        return []

    def finish(self) -> list[BurstProfile]:
        """The bursts still waiting (a video with fewer frames than the refinement wants)."""
        self.pitch.settle()
        return self._measure()

    @property
    def refinement(self) -> MountRefinement:
        return self.pitch.settle()

    def _measure(self) -> list[BurstProfile]:
        mount = self.pitch.settle().mount
        waiting, self._waiting = self._waiting, []
        return [
            burst_profile(g, d, self.camera.intrinsics, mount, c, i, self.config.sweep)
            for g, d, c, i in waiting
        ]


def video_warnings(video: Path, info: VideoInfo, config: RutConfig) -> list[str]:
    """Why the video cannot carry rut depth (too narrow: no bursts are measured) or likely will not
    (a bitrate too low to keep the road's texture, ``config.min_bits_per_px``: blanks expected)."""
    if info.width_px < config.min_video_width_px:
        return [
            f"video is {info.width_px} px wide; rut depth from video needs "
            f">= {config.min_video_width_px} px (record in 720p or better)"
        ]
    size_bits = video.stat().st_size * 8
    bits_per_px = size_bits / max(info.duration_s * info.fps * info.width_px * info.height_px, 1.0)
    if bits_per_px >= config.min_bits_per_px:
        return []
    return [
        f"video bitrate {size_bits / max(info.duration_s, 1e-9) / 1e6:.1f} Mbit/s ({bits_per_px:.2f} bit "
        f"per pixel and frame) is below the {config.min_bits_per_px:g} rut depth from video needs: "
        "compression wipes the road texture the bursts match, expect blank sections; record at the "
        "phone's highest quality setting"
    ]


def video_profiles(
    run_dir: Path,
    geo: GeotagResult,
    camera: CameraProfile,
    config: RutConfig,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[BurstProfile], MountRefinement | None, list[str]]:
    """One profile (or its reason for none) per rut burst, decoding only the bursts' frames, and
    the pitch refinement they started from, and warnings."""
    video = config.geotag.video_path or run_dir / "video.mp4"
    info = probe_video(video)
    warnings = video_warnings(video, info, config)
    if info.width_px < config.min_video_width_px:
        return [], None, warnings
    plan = geo.plan
    if plan is None:
        return [], None, [*warnings, "no frame plan: rut bursts unknown"]
    bursts: dict[int, list[int]] = {}
    for k, b in enumerate(plan.burst_id):
        if b != NO_BURST:
            bursts.setdefault(b, []).append(k)
    if camera.intrinsics.width_px != info.width_px or camera.intrinsics.height_px != info.height_px:
        camera = CameraProfile(
            camera.intrinsics.scaled(info.width_px, info.height_px), camera.mount, camera.name
        )
    wanted = {geo.frames[k].frame_index: (b, k) for b, ks in bursts.items() for k in ks}
    pending: dict[int, dict[int, np.ndarray]] = {b: {} for b in bursts}
    meter = BurstMeter(camera, config)
    measured: list[BurstProfile] = []
    done = 0
    for frame_index, image in iter_frames(video, set(wanted), grey_only=True):
        b, k = wanted[frame_index]
        pending[b][k] = image
        if len(pending[b]) < len(bursts[b]):
            continue
        ks = sorted(pending[b])
        frames = pending.pop(b)
        grays = [frames[j] for j in ks]
        first = geo.frames[ks[0]]
        done += 1
        if progress is not None:
            progress(done, len(bursts))
        if first.route is None:
            continue
        dist = [plan.distance_m[j] - plan.distance_m[ks[0]] for j in ks]
        ahead = (config.sweep.x_near_m + config.sweep.x_far_m) / 2
        chainage = first.route.chainage_m + ahead_sign(first.route.direction) * ahead
        measured += meter.push(grays, dist, chainage, first.frame_index)
    measured += meter.finish()
    refinement = meter.refinement
    if not refinement.refined:
        warnings.append(f"rut bursts: camera pitch not refined: {refinement.reason}")
    return measured, refinement, warnings


def _sections_of(rs: RunSegment) -> list[tuple[float, float]]:
    """The segment's 20 m sections as chainage intervals from its 起点側 end."""
    lo, hi = sorted((rs.start_chainage_m, rs.end_chainage_m))
    edges = [*np.arange(lo, hi, SECTION_M), hi]
    return [(a, b) for a, b in itertools.pairwise(edges) if b - a > 1.0]


def aggregate(
    segments: tuple[RunSegment, ...], profiles: list[TransverseProfile], max_sigma_mm: float
) -> tuple[list[list[SectionRut]], list[SegmentRut]]:
    """Profiles -> rut estimates -> 20 m sections -> 100 m segments."""
    estimates: list[tuple[float, RutEstimate]] = [
        (p.chainage_m, estimate_rut(p, max_sigma_mm, seed=i)) for i, p in enumerate(profiles)
    ]
    per_segment: list[list[SectionRut]] = []
    for rs in segments:
        sections = []
        for a, b in _sections_of(rs):
            inside = [e for c, e in estimates if a <= c < b]
            sections.append(section_rut(a, b, inside, max_sigma_mm))
        per_segment.append(sections)
    return per_segment, [segment_rut(s) for s in per_segment]


def _round(v: float | None, digits: int = 1) -> float | None:
    return None if v is None or not math.isfinite(v) else round(v, digits)


def run_rut(
    run_dir: Path,
    out_dir: Path,
    config: RutConfig | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> RutResult:
    """Geotag the run, measure profiles from the video bursts and/or depth maps, and write
    ``sections_20m.csv``, ``segments.geojson`` and ``report.json`` to ``out_dir``."""
    config = config or RutConfig()
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    started = time.perf_counter()
    depth_dir = config.depth_dir or (run_dir / "depth" if (run_dir / "depth").is_dir() else None)
    if not config.use_video and depth_dir is None:
        raise InputError(
            f"no depth maps in {run_dir} and video disabled: give --depth DIR or drop --no-video"
        )
    camera_path = config.geotag.camera_path or run_dir / "camera.json"
    if not camera_path.is_file():
        raise InputError(
            f"no camera.json in {run_dir}; rut depth needs the camera's mount height (docs/run_folder.md)"
        )
    try:
        camera = CameraProfile.from_dict(json.loads(camera_path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read {camera_path}: {exc}") from exc
    geo = run_geotag(run_dir, out_dir / "geotag", config.geotag)
    warnings = list(geo.warnings)
    profiles: list[TransverseProfile] = []
    bursts: list[BurstProfile] = []
    refinement = None
    if config.use_video:
        bursts, refinement, w = video_profiles(run_dir, geo, camera, config, progress)
        profiles += [b.profile for b in bursts if b.profile is not None]
        warnings += w
    n_video = len(profiles)
    if depth_dir is not None:
        profiles += profiles_from_depth_folder(depth_dir, camera, chainage_of_video_time(geo.frames))
    sections, segments = aggregate(geo.segments, profiles, config.max_sigma_mm)

    out_dir.mkdir(parents=True, exist_ok=True)
    sections_csv = out_dir / "sections_20m.csv"
    with sections_csv.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(
            ["route_no", "direction", "kp_km", "segment_offset_m", "chainage_from_m", "chainage_to_m",
             "rut_depth_mm", "rut_uncertainty_mm", "n_profiles", "n_used", "reason"]
        )  # fmt: skip
        for rs, secs in zip(geo.segments, sections, strict=True):
            k = rs.key
            for s in secs:
                w.writerow(
                    [k.route_no, str(k.direction), k.kp_km, k.offset_m, round(s.chainage_from_m, 2),
                     round(s.chainage_to_m, 2), _round(s.rut_depth_mm), _round(s.sigma_mm),
                     s.n_profiles, s.n_used, s.reason]
                )  # fmt: skip
    features = []
    for rs, seg in zip(geo.segments, segments, strict=True):
        features.append(
            segment_feature(
                rs,
                {
                    "rut_depth_mm": _round(seg.rut_depth_mm),
                    "rut_depth_max_mm": _round(seg.rut_depth_max_mm),
                    "rut_uncertainty_mm": _round(seg.sigma_mm),
                    "rut_sections": seg.n_sections,
                    "rut_sections_measured": seg.n_used,
                    "reason": seg.reason,
                },
            )
        )
    segments_geojson = out_dir / "segments.geojson"
    segments_geojson.write_text(
        json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False, indent=1)
    )
    report = {
        "stage": "rut",
        "wall_s": round(time.perf_counter() - started, 2),
        "profiles": {"video": n_video, "depth": len(profiles) - n_video},
        "video_bursts": len(bursts),
        "video_bursts_blank": sum(b.profile is None for b in bursts),
        "camera_mount": None if refinement is None else refinement.report(camera.mount),
        "refined_pitch_deg": _round(float(np.median([b.pitch_deg for b in bursts])), 2) if bursts else None,
        "refined_roll_deg": _round(float(np.median([b.roll_deg for b in bursts])), 2) if bursts else None,
        "sections": sum(len(s) for s in sections),
        "sections_measured": sum(s.rut_depth_mm is not None for secs in sections for s in secs),
        "segments_measured": sum(s.rut_depth_mm is not None for s in segments),
        "max_sigma_mm": config.max_sigma_mm,
        "warnings": warnings,
    }
    report_json = out_dir / "report.json"
    report_json.write_text(json.dumps(report, ensure_ascii=False, indent=1))
    return RutResult(
        segments_geojson, sections_csv, report_json, tuple(segments), len(profiles), tuple(warnings)
    )
