"""Crack stage: ひび割れ率 per 100 m segment from the video (``pavement cracks``), and crack masks
of loose images (``pavement segment-cracks``).

Per analysed frame (``CrackAccumulator.push``, streaming, nothing of the image kept):
rectified top view of the lane ahead (``pavement.road_view``) -> quality gate
(``pavement.frame_quality``) -> crack mask on the top view (the classical segmenter by default;
any ``CrackMaskFn`` drops in) -> 0.5 m cells in the vehicle frame (``pavement.crack_mesh``).
After geotagging (``CrackAccumulator.finish``): cells placed on the route, each decided once
from its views 2-4 m ahead (the mean of their mesh-rule areas), and per segment
``crack_ratio_pct``, ``coverage_pct`` and ``confidence``.

Patching and potholes from the damage detector are not added to the cells yet: the ratio counts
cracks only (patching shows only as the cracks the segmenter finds along its seams).
The camera's pitch is refined per run from the lane lines' vanishing point in the first
``vanishing.frames`` frames (``pavement.vanishing_point``; they wait, in grey, until it is known);
roll, yaw and height are taken from camera.json.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import cv2
import numpy as np

from pavement.camera import CameraProfile
from pavement.crack_mesh import (
    CrackMeshConfig,
    FrameCells,
    FramePlace,
    RouteStretch,
    SegmentCracks,
    cell_grid,
    frame_cells,
    places_by_frame,
    survey_segments,
)
from pavement.crack_segmentation import segment_cracks
from pavement.errors import CalibrationError, ConfigError, ExportError, ImageUnreadable, InputError
from pavement.frame_quality import (
    FrameQuality,
    FrameQualityConfig,
    assess_frame,
    near_rows,
    occluded_cells,
)
from pavement.road_view import RoadView, RoadViewConfig, road_view, warp_road_view
from pavement.top_view_cracks import TopViewSegmenterConfig, segment_top_view
from pavement.vanishing_point import MountRefinement, PitchRefiner, VanishingConfig
from pipelines.geotag import GeotagConfig, GeotagResult, find_inputs, run_geotag, segment_feature
from pipelines.video_motion import iter_frames, probe_video

logger = logging.getLogger(__name__)

#: A crack segmenter: image (H, W[, 3]) uint8 -> mask (H, W) uint8, 0 = background, 255 = crack.
CrackMaskFn = Callable[[np.ndarray], np.ndarray]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


@dataclass(frozen=True)
class CrackConfig:
    geotag: GeotagConfig = field(default_factory=GeotagConfig)
    view: RoadViewConfig = field(default_factory=RoadViewConfig)
    quality: FrameQualityConfig = field(default_factory=FrameQualityConfig)
    mesh: CrackMeshConfig = field(default_factory=CrackMeshConfig)
    segmenter: TopViewSegmenterConfig = field(default_factory=TopViewSegmenterConfig)  # without a CrackMaskFn
    edge_margin_px: int = 6  # crack pixels this close to the frame's edge in the top view are dropped
    confidence_near_m: float = 6.0  # views nearer than this count fully in the confidence
    vanishing: VanishingConfig = field(default_factory=VanishingConfig)  # the pitch's refinement


@dataclass(frozen=True)
class CrackResult:
    segments_geojson: Path
    report_json: Path
    segments: tuple[SegmentCracks, ...]
    n_frames: int
    n_rejected: int
    warnings: tuple[str, ...]


class CrackAccumulator:
    """The streaming part of the crack stage: ``push`` every analysed frame (a few hundred numbers
    are kept per frame, never the image), then ``finish`` once the frames are geotagged.

    ``camera``: the profile of camera.json (any resolution: its intrinsics are scaled to
    ``video_size`` = (width, height) of the frames pushed). ``segmenter``: any ``CrackMaskFn``;
    default the classical one with ``config.segmenter``. The first ``config.vanishing.frames`` frames
    are kept (grey) until their vanishing points have refined the pitch (``refinement``); then they
    and all later frames are rectified with the refined mount."""

    def __init__(
        self,
        camera: CameraProfile,
        video_size: tuple[int, int],
        config: CrackConfig = CrackConfig(),
        segmenter: CrackMaskFn | None = None,
    ):
        width, height = video_size
        if (camera.intrinsics.width_px, camera.intrinsics.height_px) != (width, height):
            camera = CameraProfile(camera.intrinsics.scaled(width, height), camera.mount, camera.name)
        self.nominal = camera
        self.config = config
        self._segmenter = segmenter
        self.frames: list[FrameCells] = []
        self.qualities: dict[int, FrameQuality] = {}
        self._waiting: list[tuple[int, np.ndarray]] = []  # (frame index, grey) until the mount is known
        self._pitch = PitchRefiner(camera.intrinsics, camera.mount, config.vanishing)
        self.refinement: MountRefinement | None = None
        if self._pitch.refinement is not None:  # switched off
            self._settle(self._pitch.refinement)

    def _settle(self, refinement: MountRefinement) -> None:
        """Fix the mount and everything made from it: top view, segmenter, cell grid."""
        self.refinement = refinement
        self.camera = CameraProfile(self.nominal.intrinsics, refinement.mount, self.nominal.name)
        config = self.config
        self.view: RoadView = road_view(self.camera, config.view)
        self.segmenter: CrackMaskFn = self._segmenter or partial(
            segment_top_view, road=self.view.valid, config=config.segmenter
        )
        margin = 2 * config.edge_margin_px + 1
        self._inner = cv2.erode(self.view.valid.astype(np.uint8), np.ones((margin, margin), np.uint8)) > 0
        # the gate measures blur at the frame's sampling, in the middle of its near band
        n_near = near_rows(self.view.shape[0], config.quality)
        self._sampling = self.view.frame_px_per_view_px(self.view.shape[0] - n_near / 2)
        self._grid = cell_grid(self.view, config.mesh.max_distance_m)
        waiting, self._waiting = self._waiting, []
        for frame_index, grey in waiting:
            self.push_top_view(frame_index, warp_road_view(grey, self.view))

    def settle(self) -> MountRefinement:
        """Decide the mount now from the vanishing points seen so far (``finish`` does it too)."""
        if self.refinement is None:
            self._settle(self._pitch.settle())
        return self.refinement

    def push(self, frame_index: int, image_bgr: np.ndarray) -> None:
        """Rectify, gate, segment and reduce one frame (BGR or grey, at ``video_size``) to its cells
        (``frames``); while the mount is being refined the frame waits, in grey."""
        h, w = image_bgr.shape[:2]
        k = self.nominal.intrinsics
        if (w, h) != (k.width_px, k.height_px):
            raise ConfigError(
                f"frame {frame_index} is {w}x{h}; the accumulator was made for {k.width_px}x{k.height_px}"
            )
        grey = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY) if image_bgr.ndim == 3 else image_bgr
        if self.refinement is not None:
            self.push_top_view(frame_index, warp_road_view(grey, self.view))
            return
        self._waiting.append((frame_index, grey.copy()))
        if self._pitch.push(grey) is not None:
            self.settle()

    def push_top_view(self, frame_index: int, top: np.ndarray) -> FrameCells:
        """``push`` for a frame already rectified: ``top`` (H, W) uint8, grey, ``self.view``'s shape
        (the mount must be settled: ``settle``)."""
        if self.refinement is None:
            raise ConfigError("the accumulator's mount is not settled yet: call settle() first")
        if top.shape != self.view.shape:
            raise ConfigError(f"top view {top.shape} does not match the accumulator's {self.view.shape}")
        quality = assess_frame(top, self.view.valid, self.config.quality, self._sampling)
        self.qualities[frame_index] = quality
        if quality.accepted:
            # outside the frame: the road's median grey, so that the view's edge is no dark line
            filled = np.where(self.view.valid, top, np.uint8(quality.median_grey))
            mask = self.segmenter(filled)
            if mask.shape != top.shape:
                raise ConfigError(f"the crack segmenter returned a {mask.shape} mask for a {top.shape} view")
            mask = np.where(self._inner, mask, 0).astype(np.uint8)
            occluded = occluded_cells(top, self.view.valid, *self._grid, self.config.quality)
        else:
            mask = np.zeros(top.shape, np.uint8)
            occluded = None
        cells = frame_cells(
            frame_index, mask, self.view, quality.accepted, quality.weight, self.config.mesh, occluded
        )
        self.frames.append(cells)
        return cells

    @property
    def rejected(self) -> Counter:
        """How many pushed frames the gate rejected, by reason."""
        return Counter(str(q.reason) for q in self.qualities.values() if q.reason is not None)

    def finish(self, geo: GeotagResult) -> list[SegmentCracks]:
        """Per segment of ``geo.segments`` (same order): crack ratio, coverage, confidence."""
        self.settle()
        known = {
            p.frame_index: FramePlace(p.route.route_no, p.route.direction, p.route.chainage_m)
            for p in geo.frames
            if p.route is not None
        }
        # frames pushed between the geotagged ones (a denser crack cadence) are placed in between
        places = places_by_frame([fc.frame_index for fc in self.frames], known)
        n_across = self.frames[0].crack_count.shape[1] if self.frames else 7
        stretches = [
            RouteStretch(rs.key.route_no, rs.key.direction, rs.start_chainage_m, rs.end_chainage_m, n_across)
            for rs in geo.segments
        ]
        return survey_segments(self.frames, places, stretches, self.config.confidence_near_m)


def mount_report(accumulator: CrackAccumulator) -> dict:
    """The mount the crack mesh was built with, for report.json (``MountRefinement.report``)."""
    return accumulator.settle().report(accumulator.nominal.mount)


def _round(v: float | None, digits: int = 1) -> float | None:
    return None if v is None or not math.isfinite(v) else round(v, digits)


def crack_properties(sc: SegmentCracks) -> dict:
    """The crack fields of a segment feature (segments.geojson)."""
    return {
        "crack_ratio_pct": _round(sc.crack_ratio_pct),
        "coverage_pct": _round(sc.coverage_pct),
        "confidence": _round(sc.confidence, 3),
        "crack_cells": sc.n_cracked,
        "surveyed_cells": sc.n_surveyed,
        "cells": sc.n_cells,
        "crack_frames": sc.n_frames,
    }


def run_cracks(
    run_dir: Path,
    out_dir: Path,
    config: CrackConfig | None = None,
    segmenter: CrackMaskFn | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> CrackResult:
    """Geotag the run, decode its planned frames once, and write ``segments.geojson`` (segment keys
    + crack_ratio_pct, coverage_pct, confidence) and ``report.json`` to ``out_dir``."""
    config = config or CrackConfig()
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    started = time.perf_counter()
    run_dir, video, _, _, camera_path = find_inputs(run_dir, config.geotag)
    if camera_path is None:
        raise InputError(
            f"no camera.json in {run_dir}; the crack ratio needs the camera's intrinsics and mount to "
            "rectify the road (docs/run_folder.md)"
        )
    try:
        camera = CameraProfile.from_dict(json.loads(camera_path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        raise CalibrationError(f"cannot read camera profile {camera_path}: {exc}") from exc
    info = probe_video(video)
    accumulator = CrackAccumulator(camera, (info.width_px, info.height_px), config, segmenter)
    geo = run_geotag(run_dir, out_dir / "geotag", config.geotag)
    warnings = list(geo.warnings)
    wanted = {p.frame_index for p in geo.frames}
    t0 = time.perf_counter()
    for n, (index, image) in enumerate(iter_frames(video, wanted, grey_only=True), start=1):
        accumulator.push(index, image)
        if progress is not None:
            progress(n, len(wanted))
    frames_s = time.perf_counter() - t0
    segments = accumulator.finish(geo)
    if not accumulator.refinement.refined:
        warnings.append(f"camera pitch not refined: {accumulator.refinement.reason}")
    rejected = accumulator.rejected
    if rejected:
        warnings.append(
            f"{sum(rejected.values())} of {len(accumulator.frames)} frames rejected by the quality gate "
            f"({', '.join(f'{k}: {v}' for k, v in sorted(rejected.items()))}); their cells are not surveyed"
        )
    features = [
        segment_feature(rs, crack_properties(sc)) for rs, sc in zip(geo.segments, segments, strict=True)
    ]
    out_dir.mkdir(parents=True, exist_ok=True)
    segments_geojson = out_dir / "segments.geojson"
    segments_geojson.write_text(
        json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False, indent=1),
        encoding="utf-8",
    )
    view = accumulator.view
    report = {
        "stage": "cracks",
        "wall_s": round(time.perf_counter() - started, 2),
        "frames_s": round(frames_s, 2),
        "frames": len(accumulator.frames),
        "frames_rejected": dict(rejected),
        "segments": len(segments),
        "segments_measured": sum(s.crack_ratio_pct is not None for s in segments),
        "top_view": {
            "metres_per_px": view.metres_per_px,
            "near_m": round(view.near_m, 3),
            "far_m": view.far_m,
            "width_m": round(view.size_px[0] * view.metres_per_px, 3),
            "size_px": list(view.size_px),
        },
        "camera_mount": mount_report(accumulator),
        "warnings": warnings,
    }
    report_json = out_dir / "report.json"
    report_json.write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
    return CrackResult(
        segments_geojson,
        report_json,
        tuple(segments),
        len(accumulator.frames),
        sum(rejected.values()),
        tuple(warnings),
    )


@dataclass(frozen=True)
class SegmentCracksResult:
    out_dir: Path
    written: tuple[Path, ...]
    skipped: tuple[str, ...]  # files that could not be read, with the reason


def run_segment_cracks(
    image_dir: Path,
    out_dir: Path,
    segmenter: CrackMaskFn | None = None,
) -> SegmentCracksResult:
    """One PNG mask per image of ``image_dir`` (same name, .png; same width and height;
    0 = background, 255 = crack) by ``segmenter`` (default: the classical ``segment_cracks``).
    Unreadable files are skipped and listed."""
    image_dir, out_dir = Path(image_dir), Path(out_dir)
    if not image_dir.is_dir():
        raise InputError(f"image folder {image_dir} does not exist; give a folder of JPEG/PNG images")
    paths = sorted(p for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise InputError(f"no images in {image_dir} (looked for {', '.join(IMAGE_SUFFIXES)})")
    fn = segmenter or segment_cracks
    out_dir.mkdir(parents=True, exist_ok=True)
    written, skipped = [], []
    for path in paths:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            skipped.append(f"{path.name}: {ImageUnreadable.__name__}, not a readable image")
            continue
        mask = fn(image)
        target = out_dir / f"{path.stem}.png"
        if not cv2.imwrite(str(target), np.where(mask > 0, 255, 0).astype(np.uint8)):
            raise ExportError(f"cannot write {target}; check that the output folder is writable")
        written.append(target)
    return SegmentCracksResult(out_dir, tuple(written), tuple(skipped))
