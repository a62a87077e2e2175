"""The main job: one patrol run folder -> per-segment figures and every export.

``run_process(run_dir, out_dir, config)`` chains the stages that exist today:

1. geotag (``pipelines.geotag``): clock, frame plan, 距離標, 100 m segments;
2. damage detection on the planned frames (``pipelines.detect``), potholes placed on the road
   and merged across frames (``pavement.potholes``);
3. IRI per segment from ``accel.csv`` (``pavement.ride``; default vehicle unless calibrated);
4. exports: segments.geojson / .csv / .gpkg / .kml, form_a.xlsx (様式A), kpi.json, map.html,
   potholes.geojson, detections.json, report.json.

Not yet measured (left blank, never guessed): ひび割れ率 (issue 5) and わだち掘れ量 (issue 6); the
診断区分 needs the crack ratio, so it is blank too, and so is MCI.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import shapely

from exporters.form_a import FormContext, segments_to_form_rows, write_form_xlsx
from exporters.gis import segments_to_records, write_csv, write_geojson, write_kml, write_ogr
from exporters.kpi import kpi_to_json, segments_to_kpi
from exporters.web_map import write_web_map
from pavement.camera import CameraProfile
from pavement.detections import DamageClass, Detections
from pavement.diagnosis import GENERAL_ROAD, DiagnosisThresholds
from pavement.errors import ExportError
from pavement.geodesy import PlaneProjection
from pavement.potholes import Pothole, PotholeSighting, box_ground_points, merge_sightings, place_on_plane
from pavement.ride import IriEstimate
from pavement.segments import Segment, SegmentMetrics
from pavement.track import FramePose
from pipelines.accel_io import read_accel_csv
from pipelines.detect import DEFAULT_MODEL, DetectorConfig, detections_to_json, load_detector
from pipelines.geotag import GeotagConfig, GeotagResult, run_geotag
from pipelines.iri import segment_iri
from pipelines.video_motion import iter_frames, probe_video

logger = logging.getLogger(__name__)

#: progress(stage, done, total)
ProgressCallback = Callable[[str, int, int], None]


@dataclass(frozen=True)
class ProcessConfig:
    geotag: GeotagConfig = field(default_factory=GeotagConfig)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    model_path: Path = DEFAULT_MODEL
    detect: bool = True
    thresholds: DiagnosisThresholds = GENERAL_ROAD
    form: FormContext = field(default_factory=FormContext)
    vehicle_gain: float = 1.0  # from `pavement calibrate-vehicle`; 1.0 = uncalibrated default car
    pothole_merge_radius_m: float = 1.5
    max_detection_distance_m: float = 25.0  # farther boxes are too small to place reliably


@dataclass(frozen=True)
class ProcessResult:
    out_dir: Path
    segments: tuple[Segment, ...]
    potholes: int
    report_json: Path
    warnings: tuple[str, ...]


def _detect_frames(
    run_dir: Path, geo: GeotagResult, config: ProcessConfig, progress: ProgressCallback | None
) -> tuple[dict[int, Detections], str]:
    video = config.geotag.video_path or run_dir / "video.mp4"
    detector = load_detector(config.model_path, config.detector)
    wanted = {p.frame_index for p in geo.frames}
    results: dict[int, Detections] = {}
    batch: list[tuple[int, np.ndarray]] = []

    def flush() -> None:
        for (i, _), dets in zip(batch, detector.detect_batch([img for _, img in batch]), strict=True):
            results[i] = dets
        batch.clear()
        if progress:
            progress("detect", len(results), len(wanted))

    for index, image in iter_frames(video, wanted):
        batch.append((index, image))
        if len(batch) == config.detector.batch_size:
            flush()
    if batch:
        flush()
    return results, detector.name


def _potholes(
    detections: dict[int, Detections],
    poses: dict[int, FramePose],
    camera: CameraProfile,
    projection: PlaneProjection,
    config: ProcessConfig,
) -> list[Pothole]:
    d40 = list(DamageClass).index(DamageClass.D40)
    sightings = []
    for index, dets in detections.items():
        holes = dets[dets.class_id == d40]
        if not len(holes):
            continue
        pose = poses[index]
        ground = box_ground_points(holes.xyxy, camera)
        x0, y0 = projection.to_plane(pose.lat, pose.lon)[0]
        plane = place_on_plane(ground, x0, y0, pose.heading_deg)
        for (fwd, _), (x, y), conf in zip(ground, plane, holes.confidence, strict=True):
            if np.isfinite(fwd) and fwd <= config.max_detection_distance_m:
                sightings.append(PotholeSighting(index, float(conf), float(x), float(y), float(fwd)))
    return merge_sightings(sightings, config.pothole_merge_radius_m)


def _write_potholes(path: Path, potholes: list[Pothole], projection: PlaneProjection) -> None:
    features = []
    for n, hole in enumerate(potholes, start=1):
        lat, lon = projection.to_latlon(hole.x_m, hole.y_m)[0]
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [round(lon, 7), round(lat, 7)]},
                "properties": {
                    "pothole_id": n,
                    "confidence": round(hole.confidence, 3),
                    "frame_index": hole.best_frame_index,
                    "sightings": hole.n_sightings,
                },
            }
        )
    path.write_text(
        json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False, indent=1)
    )


def run_process(
    run_dir: Path,
    out_dir: Path,
    config: ProcessConfig = ProcessConfig(),
    progress: ProgressCallback | None = None,
) -> ProcessResult:
    """Process one run folder into ``out_dir`` (see the module docstring for the outputs)."""
    started = time.perf_counter()
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"cannot create the output folder {out_dir}: {exc}") from exc
    stage_s: dict[str, float] = {}
    warnings: list[str] = []

    t0 = time.perf_counter()
    geo = run_geotag(
        run_dir,
        out_dir / "geotag",
        config.geotag,
        (lambda done, total: progress("geotag", done, total)) if progress else None,
    )
    warnings.extend(geo.warnings)
    stage_s["geotag"] = time.perf_counter() - t0
    poses = {p.frame_index: p for p in geo.frames}
    projection = PlaneProjection.for_location(geo.frames[0].lat, geo.frames[0].lon) if geo.frames else None

    detections: dict[int, Detections] = {}
    potholes: list[Pothole] = []
    model_name = None
    if config.detect and geo.frames:
        t0 = time.perf_counter()
        detections, model_name = _detect_frames(run_dir, geo, config, progress)
        camera_path = config.geotag.camera_path or run_dir / "camera.json"
        if camera_path.is_file():
            info = probe_video(config.geotag.video_path or run_dir / "video.mp4")
            camera = CameraProfile.from_dict(json.loads(camera_path.read_text(encoding="utf-8")))
            camera = replace(camera, intrinsics=camera.intrinsics.scaled(info.width_px, info.height_px))
            potholes = _potholes(detections, poses, camera, projection, config)
        else:
            warnings.append("no camera.json: potholes cannot be placed on the road or de-duplicated")
        stage_s["detect"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    iri: list[IriEstimate | None] = [None] * len(geo.segments)
    if (run_dir / "accel.csv").is_file():
        iri = segment_iri(geo, read_accel_csv(run_dir / "accel.csv"), config.vehicle_gain)
        if config.vehicle_gain == 1.0:
            warnings.append(
                "IRI from the default vehicle model: this car is not calibrated, "
                "so read the values as indicative"
            )
    else:
        warnings.append("no accel.csv: IRI not estimated")
    stage_s["iri"] = time.perf_counter() - t0

    # Potholes belong to the segment whose centreline passes nearest.
    lines = (
        [
            shapely.LineString(projection.to_plane(*np.array(rs.segment.coordinates)[:, ::-1].T))
            if len(rs.segment.coordinates) >= 2
            else None
            for rs in geo.segments
        ]
        if projection
        else []
    )
    hole_count = [0] * len(geo.segments)
    for hole in potholes:
        dists = [line.distance(shapely.Point(hole.x_m, hole.y_m)) if line else np.inf for line in lines]
        if dists and min(dists) < 10.0:
            hole_count[int(np.argmin(dists))] += 1

    segments = []
    for i, rs in enumerate(geo.segments):
        iri_value = iri[i].iri_mm_per_m if iri[i] is not None else None
        metrics = SegmentMetrics(iri_mm_per_m=iri_value, pothole_count=hole_count[i])
        segments.append(replace(rs.segment, metrics=metrics))
    if segments:
        warnings.append(
            "ひび割れ率 and わだち掘れ量 are not measured yet (issues 5, 6): 診断区分 and MCI left blank"
        )

    t0 = time.perf_counter()
    records = segments_to_records(segments)
    write_geojson(records, out_dir / "segments.geojson")
    write_csv(records, out_dir / "segments.csv")
    write_ogr(records, out_dir / "segments.gpkg")
    write_kml(records, out_dir / "segments.kml")
    run_date = datetime.fromtimestamp(geo.frames[0].t_unix_s, UTC).date() if geo.frames else None
    form = replace(config.form, inspection_date=config.form.inspection_date or run_date)
    routes = geo.ledger.routes if geo.ledger else ()
    if routes and not form.route_name:  # the ledger names the road and its class (A/B) for 様式A
        form = replace(
            form, route_name=routes[0].route_name, road_class=routes[0].road_class or form.road_class
        )
    write_form_xlsx(segments_to_form_rows(segments, form), out_dir / "form_a.xlsx")
    (out_dir / "kpi.json").write_text(kpi_to_json(segments_to_kpi(segments, [run_date] if run_date else [])))
    centerlines = [
        [
            tuple(lonlat[::-1])
            for lonlat in geo.ledger.projection.to_latlon(*np.asarray(r.centreline.coords)[:, :2].T)
        ]
        for r in routes
    ]
    write_web_map(records, out_dir / "map.html", centerlines=centerlines)
    if projection:
        _write_potholes(out_dir / "potholes.geojson", potholes, projection)
    (out_dir / "detections.json").write_text(
        json.dumps(
            {
                "model": model_name,
                "frames": [
                    {"frame_index": i, "detections": detections_to_json(d)}
                    for i, d in sorted(detections.items())
                ],
            }
        )
    )
    stage_s["export"] = time.perf_counter() - t0

    report = {
        "run_dir": str(run_dir),
        "wall_s": round(time.perf_counter() - started, 2),
        "stage_s": {k: round(v, 2) for k, v in stage_s.items()},
        "clock_offset_s": geo.clock.offset_s,
        "referencing": geo.referencing,
        "planned_frames": len(geo.frames),
        "segments": len(segments),
        "detections": int(sum(len(d) for d in detections.values())),
        "potholes": len(potholes),
        "model": model_name,
        "warnings": warnings,
    }
    report_path = out_dir / "report.json"
    report_path.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n")
    return ProcessResult(out_dir, tuple(segments), len(potholes), report_path, tuple(warnings))
