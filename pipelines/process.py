"""The main job: one patrol run folder -> per-segment figures and every export.

``run_process(run_dir, out_dir, config)`` decodes the video once, streaming (memory does not grow
with the video's length). Each frame is measured for the road-plane flow (the clock alignment and
the distance travelled); the frames the plan picks on the way (one every 5 m by that distance) go
to an analysis thread: crack mesh (``pipelines.cracks``) on each, the damage detector on one every
10 m, and the best-looking frame of every 50 m is kept, compressed, for the album. After the pass:

1. geotag (``pipelines.geotag``): clock, track, 距離標, 100 m segments, for the frames picked;
2. potholes placed on the road and merged across frames (``pavement.potholes``);
3. IRI per segment from ``accel.csv`` (``pavement.ride``; default vehicle unless calibrated);
4. わだち掘れ量 per segment from the phone's depth maps when the run has ``depth/``; from the
   video's rut bursts only with ``rut_video`` (experimental: ``pavement rut``);
5. ひび割れ率, coverage and confidence per segment: each 0.5 m cell of the lane decided once;
   then 診断区分 and MCI (where the crack ratio is known);
6. exports: segments.geojson / .csv / .gpkg / .kml, form_a.xlsx (様式A), album.xlsx (画像集; the
   frames it shows are privacy-masked first, two at a time), frames/ (the album's frames),
   kpi.json, map.html, potholes.geojson, detections.json, report.json.

Everything is written into a temporary folder beside ``out_dir`` that replaces ``out_dir`` only
when the run is complete: a failed run leaves nothing that looks finished.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import shapely

from exporters.album import album_jpeg, album_photo_frames, segments_to_album, write_album_xlsx
from exporters.form_a import FormContext, segments_to_form_rows, write_form_xlsx
from exporters.gis import segments_to_records, write_csv, write_geojson, write_kml, write_ogr
from exporters.kpi import kpi_to_json, segments_to_kpi
from exporters.web_map import write_web_map
from pavement.camera import CameraProfile
from pavement.crack_mesh import SegmentCracks
from pavement.detections import DamageClass, Detections
from pavement.diagnosis import GENERAL_ROAD, DiagnosisThresholds, diagnose
from pavement.errors import ConfigError, ExportError
from pavement.frame_plan import NO_BURST, OdometryPlanner
from pavement.geodesy import PlaneProjection
from pavement.mci import mci, sigma_from_iri
from pavement.potholes import Pothole, PotholeSighting, box_ground_points, merge_sightings, place_on_plane
from pavement.ride import IriEstimate
from pavement.rut_profile import SegmentRut, TransverseProfile
from pavement.rut_video import BurstProfile
from pavement.segments import Segment, SegmentMetrics
from pavement.track import FramePose
from pavement.vanishing_point import MountRefinement
from pipelines.accel_io import read_accel_csv
from pipelines.cracks import CrackAccumulator, CrackConfig, mount_report
from pipelines.detect import DEFAULT_MODEL, BatchDetector, DetectorConfig, detections_to_json, load_detector
from pipelines.geotag import (
    GeotagConfig,
    GeotagResult,
    _read_camera,
    find_inputs,
    gps_speed_by_video_time,
    run_geotag,
)
from pipelines.iri import segment_iri
from pipelines.privacy import load_privacy_masker
from pipelines.rut import BurstMeter, RutConfig, aggregate, ahead_sign, video_warnings
from pipelines.rut_depth_source import chainage_of_video_time, profiles_from_depth_folder
from pipelines.video_motion import MotionRecorder, VideoInfo, VideoMotion, decode_frames, grey, probe_video

logger = logging.getLogger(__name__)

#: progress(stage, done, total, km travelled so far or None)
ProgressCallback = Callable[[str, int, int, float | None], None]


@dataclass(frozen=True)
class ProcessConfig:
    geotag: GeotagConfig = field(default_factory=GeotagConfig)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    model_path: Path = DEFAULT_MODEL
    detect: bool = True
    # The damage detector looks at one planned frame per this much travel (the crack mesh at every
    # one): a pothole is in view from ~3 to 25 m ahead, so it is still seen in two or more frames.
    detect_every_m: float = 10.0
    thresholds: DiagnosisThresholds = GENERAL_ROAD
    form: FormContext = field(default_factory=FormContext)
    vehicle_gain: float = 1.0  # from `pavement calibrate-vehicle`; 1.0 = uncalibrated default car
    pothole_merge_radius_m: float = 1.5
    max_detection_distance_m: float = 25.0  # farther boxes are too small to place reliably
    rut: RutConfig = field(default_factory=RutConfig)
    rut_video: bool = False  # rut depth from the video's bursts (experimental, ~10 s per burst)
    album_window_m: float = 50.0  # keep the best frame of every this much travel for the album
    # The 画像集 shows the frame with the most damage of each segment (様式A has one photo number a
    # row); more cost ~0.3 s each on 2 cores, for the privacy masking.
    album_frames_per_segment: int = 1
    album_width_px: int = 1280  # album frames are kept and written at most this wide
    measure_cracks: bool = True  # ひび割れ率 on the planned frames (needs camera.json)
    cracks: CrackConfig = field(default_factory=CrackConfig)
    privacy: bool = True  # blur faces and licence plates in every image written

    def __post_init__(self) -> None:
        if not self.detect_every_m > 0 or not self.album_window_m > 0:
            raise ConfigError(
                f"detect_every_m ({self.detect_every_m}) and album_window_m ({self.album_window_m}) "
                "must be > 0"
            )


@dataclass(frozen=True)
class ProcessResult:
    out_dir: Path
    segments: tuple[Segment, ...]
    potholes: int
    report_json: Path
    warnings: tuple[str, ...]


@dataclass
class _Candidate:
    """The album's candidate for one stretch of road: the frame with the most detected damage,
    reduced to the album's width and JPEG-compressed (not masked yet: only the frames the album
    shows are, before anything is written)."""

    frame_index: int
    score: float
    jpeg: bytes


@dataclass
class _Stream:
    """What the single pass over the video leaves behind (all of it small)."""

    info: VideoInfo
    motion: VideoMotion | None
    selection: dict[int, int]
    detections: dict[int, Detections]
    candidates: dict[int, _Candidate]  # album window -> its best frame
    cracks: CrackAccumulator | None
    bursts: list[BurstProfile]  # the rut bursts' profiles (chainage 0: placed after geotagging)
    burst_mount: MountRefinement | None  # the pitch the bursts started from
    model_name: str | None
    provider: str | None  # the ONNX Runtime execution provider that ran the detector
    distance_m: float


#: A planned frame on its way to the analysis thread: index, distance, BGR or None, grey, to detect.
_Planned = tuple[int, float, np.ndarray | None, np.ndarray, bool]


def _jpeg(image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 88])
    if not ok:
        raise ExportError("JPEG encoding failed")
    return buf.tobytes()


def _shrink(image: np.ndarray, max_width_px: int) -> np.ndarray:
    h, w = image.shape[:2]
    if w <= max_width_px:
        return image
    return cv2.resize(image, (max_width_px, round(h * max_width_px / w)), interpolation=cv2.INTER_AREA)


#: batches handed to the analysis thread and not yet collected; bounds the frames held in memory
_MAX_IN_FLIGHT = 2


def _stream(
    video: Path,
    camera: CameraProfile | None,
    gps_speed: Callable[[float], float] | None,
    config: ProcessConfig,
    progress: ProgressCallback | None,
    detector: BatchDetector | None = None,
) -> _Stream:
    """Decode the video once: road flow of every frame (for the clock), the frame plan by distance
    (the GPS speed by the video's nominal clock; the flow where that is unknown), damage detection
    and the crack mesh on the planned frames, album candidates (the best frame of each 50 m), and
    (``rut_video``) the bursts' profiles.

    Two threads share the work: this one decodes and measures the flow of every frame; an analysis
    thread takes the planned frames in batches (detection, cracks; ONNX Runtime and OpenCV
    release the GIL), so the decoder's threads and the models keep both cores busy. At most
    ``_MAX_IN_FLIGHT`` batches wait, so memory does not grow with the video. ``detector`` (with
    ``config.detect``): the model to use, by default ``config.model_path`` loaded here."""
    info = probe_video(video)
    recorder = MotionRecorder(camera, info, config.geotag.max_video_width_px) if camera is not None else None
    planner = OdometryPlanner(config.geotag.plan)
    if not config.detect:
        detector = None
    elif detector is None:
        detector = load_detector(config.model_path, config.detector)
    cam_full = (
        CameraProfile(camera.intrinsics.scaled(info.width_px, info.height_px), camera.mount, camera.name)
        if camera
        else None
    )
    cracks = (
        CrackAccumulator(cam_full, (info.width_px, info.height_px), config.cracks)
        if config.measure_cracks and cam_full is not None
        else None
    )
    video_rut = config.rut_video and cam_full is not None and info.width_px >= config.rut.min_video_width_px
    detections: dict[int, Detections] = {}
    candidates: dict[int, Future[_Candidate]] = {}  # album window -> its best frame, compressed
    # (frame index, distance, BGR (None where neither the detector nor the album needs it), grey, to detect)
    batch: list[_Planned] = []
    in_flight: deque[Future] = deque()
    pending: list = [-1, None]  # [album window, (frame index, score, BGR) of its best frame so far]
    burst: list[tuple[int, float, np.ndarray]] = []  # (frame index, distance, grey)
    meter = BurstMeter(cam_full, config.rut) if video_rut else None
    bursts: list[BurstProfile] = []

    def analyse(frames: list[_Planned]) -> list[Detections | None]:
        """Analysis thread: damage boxes (frames marked for detection) and the crack mesh of one batch."""
        marked = [bgr for _, _, bgr, _, detect in frames if detect]
        boxes = iter(detector.detect_batch(marked) if detector and marked else [])
        found = [next(boxes) if detect and detector else None for *_, detect in frames]
        if cracks is not None:
            for i, _, _, grey_image, _ in frames:
                cracks.push(i, grey_image)
        return found

    def album_candidate(i: int, score: float, image: np.ndarray) -> _Candidate:
        """Analysis thread: the album's copy of a frame, reduced and compressed (masked once chosen)."""
        return _Candidate(i, score, _jpeg(_shrink(image, config.album_width_px)))

    def collect(frames: list[_Planned], found: list[Detections | None]) -> None:
        for (i, dist, img, _, detect), dets in zip(frames, found, strict=True):
            if detector is not None and not detect:
                continue  # the album shows frames whose damage was looked for
            score = 0.0
            if dets is not None:
                detections[i] = dets
                score = float(np.sum(dets.confidence))
            window = int(dist // config.album_window_m)
            if window != pending[0]:  # windows only move forward: the last one is complete
                keep_pending()
                pending[:] = [window, None]
            if pending[1] is None or score > pending[1][1]:
                pending[1] = (i, score, img)

    def keep_pending() -> None:
        if pending[1] is not None:
            candidates[pending[0]] = pool.submit(album_candidate, *pending[1])

    def submit() -> None:
        frames = list(batch)
        batch.clear()
        in_flight.append((frames, pool.submit(analyse, frames)))
        while in_flight and (len(in_flight) > _MAX_IN_FLIGHT or in_flight[0][1].done()):
            done_frames, future = in_flight.popleft()
            collect(done_frames, future.result())

    def measure_burst() -> None:
        grays = [g for _, _, g in burst]
        dist = [d - burst[0][1] for _, d, _ in burst]
        bursts.extend(meter.push(grays, dist, 0.0, burst[0][0]))
        burst.clear()

    t_prev, next_detect_m = 0.0, 0.0
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="analyse") as pool:
        try:
            for i, t, frame in decode_frames(video):
                step = recorder.push(frame, t) if recorder is not None else None
                speed = gps_speed(t) if gps_speed is not None else float("nan")
                chosen = planner.push(t, speed * (t - t_prev) if np.isfinite(speed) else step)
                t_prev = t
                if planner.spaced:  # cracks on every spaced frame, damage every detect_every_m
                    detect = planner.distance_m >= next_detect_m
                    if detect:
                        next_detect_m = (
                            planner.distance_m + config.detect_every_m - config.geotag.plan.spacing_m / 2
                        )
                    # colour only where the detector or the album needs it; the crack mesh reads grey
                    colour = frame.to_ndarray(format="bgr24") if detect or detector is None else None
                    batch.append((i, planner.distance_m, colour, grey(frame), detect))
                    if sum(d for *_, d in batch) >= config.detector.batch_size or len(batch) >= 16:
                        submit()
                if video_rut:
                    if chosen is not None and chosen != NO_BURST:
                        if burst and planner.selection.get(burst[0][0]) != chosen:
                            measure_burst()
                        burst.append((i, planner.distance_m, grey(frame)))
                        if len(burst) == config.geotag.plan.burst_frames:
                            measure_burst()
                if progress is not None and i % 15 == 0:
                    progress("video", i + 1, info.n_frames_expected, planner.distance_m / 1000)
            if batch:
                submit()
            if video_rut:
                if burst:
                    measure_burst()  # the video ended in the middle of a burst
                bursts.extend(meter.finish())
            while in_flight:
                done_frames, future = in_flight.popleft()
                collect(done_frames, future.result())
            keep_pending()
            kept = {window: future.result() for window, future in candidates.items()}
        except BaseException:
            for _, future in in_flight:
                future.cancel()
            raise
    if progress is not None:
        progress("video", info.n_frames_expected, info.n_frames_expected, planner.distance_m / 1000)
    return _Stream(
        info,
        recorder.finish() if recorder is not None else None,
        dict(planner.selection),
        detections,
        kept,
        cracks,
        bursts,
        meter.refinement if meter is not None else None,
        detector.name if detector else None,
        getattr(detector, "provider", None),
        planner.distance_m,
    )


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


def _start_output(out_dir: Path) -> Path:
    """A fresh temporary folder beside ``out_dir`` (same file system, so the final rename is atomic);
    ``out_dir`` itself must be new, empty, or an earlier result of this command."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ExportError(f"output {out_dir} is a file; give a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / "report.json").is_file():
        raise ExportError(
            f"output folder {out_dir} holds other files and is not an earlier result of "
            "'pavement process'; give a new or empty folder"
        )
    # host and process: runs of a cluster writing to one shared disk never share a temporary folder
    work = out_dir.parent / f".{out_dir.name}.partial-{socket.gethostname()}-{os.getpid()}"
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
    except OSError as exc:
        raise ExportError(
            f"cannot write into {out_dir.parent}: {exc.strerror or exc}; choose an output folder "
            "you may write to, on a disk with free space"
        ) from exc
    return work


def _finish_output(work: Path, out_dir: Path) -> None:
    """Replace ``out_dir`` by the complete ``work`` folder."""
    old = out_dir.parent / f".{out_dir.name}.old-{os.getpid()}"
    if out_dir.exists():
        out_dir.rename(old)
    work.rename(out_dir)
    shutil.rmtree(old, ignore_errors=True)


def run_process(
    run_dir: Path,
    out_dir: Path,
    config: ProcessConfig = ProcessConfig(),
    progress: ProgressCallback | None = None,
    detector: BatchDetector | None = None,
) -> ProcessResult:
    """Process one run folder into ``out_dir`` (see the module docstring for the outputs).

    ``detector``: the damage detector to run (anything with ``detect_batch``, e.g. a Ray actor's
    through ``pipelines.inference``); by default ``config.model_path`` is loaded for this run."""
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    run_dir, video, gps, _, camera_path = find_inputs(run_dir, config.geotag)
    info = probe_video(video)
    gps_speed = gps_speed_by_video_time(gps, info, config.geotag)
    camera = _read_camera(camera_path) if camera_path else None
    work = _start_output(out_dir)
    try:
        result = _process(run_dir, video, camera, gps_speed, work, config, progress, detector)
        _finish_output(work, out_dir)
    except OSError as exc:
        shutil.rmtree(work, ignore_errors=True)
        raise ExportError(
            f"writing the results failed: {exc.strerror or exc} ({exc.filename or out_dir}); "
            "nothing was left in the output folder"
        ) from exc
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return replace(result, out_dir=out_dir, report_json=out_dir / "report.json")


def choose_album(
    geo: GeotagResult, candidates: Iterable[_Candidate], per_segment: int
) -> dict[int, list[_Candidate]]:
    """Per segment (its index in ``geo.segments``, every one present): its ``per_segment`` album
    candidates with the most damage (then the earliest), in frame order."""
    by_segment = {i: n for n, rs in enumerate(geo.segments) for i in rs.segment.frame_indices}
    found: dict[int, list[_Candidate]] = {}
    for cand in candidates:
        if cand.frame_index in by_segment:
            found.setdefault(by_segment[cand.frame_index], []).append(cand)
    album = {}
    for n in range(len(geo.segments)):
        chosen = sorted(found.get(n, []), key=lambda c: (-c.score, c.frame_index))
        album[n] = sorted(chosen[:per_segment], key=lambda c: c.frame_index)
    return album


def _process(
    run_dir: Path,
    video: Path,
    camera: CameraProfile | None,
    gps_speed: Callable[[float], float] | None,
    out: Path,
    config: ProcessConfig,
    progress: ProgressCallback | None,
    detector: BatchDetector | None = None,
) -> ProcessResult:
    started = time.perf_counter()
    stage_s: dict[str, float] = {}
    warnings: list[str] = []

    t0 = time.perf_counter()
    stream = _stream(video, camera, gps_speed, config, progress, detector)
    stage_s["video"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    geo = run_geotag(run_dir, out / "geotag", config.geotag, motion=stream.motion, selection=stream.selection)
    warnings.extend(geo.warnings)
    stage_s["geotag"] = time.perf_counter() - t0
    poses = {p.frame_index: p for p in geo.frames}
    detections = {i: d for i, d in stream.detections.items() if i in poses}
    projection = PlaneProjection.for_location(geo.frames[0].lat, geo.frames[0].lon) if geo.frames else None

    potholes: list[Pothole] = []
    if config.detect and camera is not None and projection is not None:
        cam = replace(
            camera, intrinsics=camera.intrinsics.scaled(stream.info.width_px, stream.info.height_px)
        )
        potholes = _potholes(detections, poses, cam, projection, config)
    elif config.detect:
        warnings.append("no camera.json: potholes cannot be placed on the road or de-duplicated")

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

    t0 = time.perf_counter()
    ruts, rut_sources = _rut(run_dir, geo, camera, stream, config, warnings)
    stage_s["rut"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    cracks = stream.cracks.finish(geo) if stream.cracks is not None else None
    if cracks is None:
        warnings.append("no camera.json: ひび割れ率 cannot be measured (the road view needs the camera)")
    else:
        if not stream.cracks.refinement.refined:
            warnings.append(f"camera pitch not refined: {stream.cracks.refinement.reason}")
        if rejected := stream.cracks.rejected:
            warnings.append(
                f"{sum(rejected.values())} of {len(stream.cracks.frames)} frames rejected for the crack "
                f"ratio ({', '.join(f'{k}: {v}' for k, v in sorted(rejected.items()))}); their cells are "
                "not surveyed"
            )
    stage_s["cracks"] = time.perf_counter() - t0

    hole_count = _count_potholes(geo, potholes, projection)
    album = choose_album(geo, stream.candidates.values(), config.album_frames_per_segment)
    segments = []
    for n, rs in enumerate(geo.segments):
        metrics = segment_metrics(
            cracks[n] if cracks else None,
            iri[n],
            ruts[n] if ruts else None,
            hole_count[n],
            config.thresholds,
        )
        segments.append(
            replace(rs.segment, metrics=metrics, representative_frames=tuple(c.frame_index for c in album[n]))
        )
    blank = sum(s.metrics.crack_ratio_pct is None for s in segments)
    if segments and blank:
        warnings.append(
            f"ひび割れ率 not measured on {blank} of {len(segments)} segments (too little of the lane seen "
            "well): their 診断区分 and MCI are left blank"
        )

    t0 = time.perf_counter()
    photos = _write_album(
        out,
        segments,
        album,
        detections if config.detect else None,
        poses,
        geo,
        stream.info.width_px,
        config,
        potholes_measured=config.detect and camera is not None,
    )
    stage_s["album"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    records = segments_to_records(segments)
    write_geojson(records, out / "segments.geojson")
    write_csv(records, out / "segments.csv")
    write_ogr(records, out / "segments.gpkg")
    write_kml(records, out / "segments.kml")
    run_date = datetime.fromtimestamp(geo.frames[0].t_unix_s, UTC).date() if geo.frames else None
    form = replace(config.form, inspection_date=config.form.inspection_date or run_date)
    routes = geo.ledger.routes if geo.ledger else ()
    if routes and not form.route_name:  # the ledger names the road and its class (A/B) for 様式A
        form = replace(
            form, route_name=routes[0].route_name, road_class=routes[0].road_class or form.road_class
        )
    write_form_xlsx(segments_to_form_rows(segments, form, photo_frames=photos), out / "form_a.xlsx")
    (out / "kpi.json").write_text(kpi_to_json(segments_to_kpi(segments, [run_date] if run_date else [])))
    centerlines = [
        [
            tuple(lonlat[::-1])
            for lonlat in geo.ledger.projection.to_latlon(*np.asarray(r.centreline.coords)[:, :2].T)
        ]
        for r in routes
    ]
    write_web_map(records, out / "map.html", centerlines=centerlines)
    if projection:
        _write_potholes(out / "potholes.geojson", potholes, projection)
    (out / "detections.json").write_text(
        json.dumps(
            {
                "model": stream.model_name,
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
        "video": {
            "frames": stream.info.n_frames_expected,
            "width_px": stream.info.width_px,
            "height_px": stream.info.height_px,
            "fps": round(stream.info.fps, 3),
            "distance_by_video_m": round(stream.distance_m, 1),
        },
        "clock_offset_s": geo.clock.offset_s,
        "referencing": geo.referencing,
        "planned_frames": len(geo.frames),
        "detected_frames": len(detections),
        "segments": len(segments),
        "detections": int(sum(len(d) for d in detections.values())),
        "potholes": len(potholes),
        "model": stream.model_name,
        "detector_provider": stream.provider,
        "rut_profiles": rut_sources,
        "camera_mount": None if stream.cracks is None else mount_report(stream.cracks),
        "rut_bursts_camera_mount": (
            None if stream.burst_mount is None else stream.burst_mount.report(camera.mount)
        ),
        "album_images": sum(len(v) for v in photos.values()),
        "privacy_masking": config.privacy,
        "warnings": warnings,
    }
    (out / "report.json").write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n")
    return ProcessResult(out, tuple(segments), len(potholes), out / "report.json", tuple(warnings))


def segment_metrics(
    crack: SegmentCracks | None,
    iri: IriEstimate | None,
    rut: SegmentRut | None,
    potholes: int,
    thresholds: DiagnosisThresholds,
) -> SegmentMetrics:
    """One segment's figures from its stages' results (None: not measured), with 診断区分 (the
    worst of the known indicators) and MCI, both only where the crack ratio, the indicator
    engineers act on first, is known: without it a 区分 would understate the damage. MCI needs
    the rut depth too (sigma from the IRI where known)."""
    metrics = SegmentMetrics(
        crack_ratio_pct=crack.crack_ratio_pct if crack else None,
        coverage_pct=crack.coverage_pct if crack else None,
        crack_confidence=crack.confidence if crack and crack.crack_ratio_pct is not None else None,
        iri_mm_per_m=iri.iri_mm_per_m if iri is not None else None,
        iri_uncertainty_mm_per_m=iri.uncertainty_mm_per_m if iri is not None else None,
        rut_depth_mm=rut.rut_depth_mm if rut else None,
        rut_depth_max_mm=rut.rut_depth_max_mm if rut else None,
        rut_uncertainty_mm=rut.sigma_mm if rut and rut.rut_depth_mm is not None else None,
        pothole_count=potholes,
    )
    if metrics.crack_ratio_pct is None:
        return metrics
    category = diagnose(metrics.crack_ratio_pct, metrics.rut_depth_mm, metrics.iri_mm_per_m, thresholds)
    value = None
    if metrics.rut_depth_mm is not None:
        sigma = sigma_from_iri(metrics.iri_mm_per_m) if metrics.iri_mm_per_m is not None else None
        value = mci(metrics.crack_ratio_pct, metrics.rut_depth_mm, sigma).value
    return replace(metrics, category=category, mci=value)


def _count_potholes(
    geo: GeotagResult, potholes: list[Pothole], projection: PlaneProjection | None
) -> list[int]:
    """Potholes per segment: each belongs to the segment whose centreline passes nearest."""
    counts = [0] * len(geo.segments)
    if projection is None:
        return counts
    lines = [
        shapely.LineString(projection.to_plane(*np.array(rs.segment.coordinates)[:, ::-1].T))
        if len(rs.segment.coordinates) >= 2
        else None
        for rs in geo.segments
    ]
    for hole in potholes:
        dists = [line.distance(shapely.Point(hole.x_m, hole.y_m)) if line else np.inf for line in lines]
        if dists and min(dists) < 10.0:
            counts[int(np.argmin(dists))] += 1
    return counts


def _rut(
    run_dir: Path,
    geo: GeotagResult,
    camera: CameraProfile | None,
    stream: _Stream,
    config: ProcessConfig,
    warnings: list[str],
) -> tuple[list[SegmentRut] | None, dict[str, int]]:
    """Rut depth per segment from the bursts' profiles (placed now that the frames have chainages)
    and from depth maps; None when neither source is there."""
    profiles: list[TransverseProfile] = []
    placed = {p.frame_index: p for p in geo.frames if p.route is not None}
    ahead = (config.rut.sweep.x_near_m + config.rut.sweep.x_far_m) / 2
    for profile in (b.profile for b in stream.bursts if b.profile is not None):
        pose = placed.get(profile.frame_index)
        if pose is not None:
            chainage = pose.route.chainage_m + ahead_sign(pose.route.direction) * ahead
            profiles.append(replace(profile, chainage_m=chainage))
    n_video = len(profiles)
    depth_dir = config.rut.depth_dir or (run_dir / "depth" if (run_dir / "depth").is_dir() else None)
    if depth_dir is not None and camera is not None:
        profiles += profiles_from_depth_folder(depth_dir, camera, chainage_of_video_time(geo.frames))
    blank = sum(b.profile is None for b in stream.bursts)
    sources = {"video": n_video, "video_blank": blank, "depth": len(profiles) - n_video}
    if config.rut_video and camera is not None:
        warnings += video_warnings(Path(stream.info.path), stream.info, config.rut)
        if stream.burst_mount is not None and not stream.burst_mount.refined:
            warnings.append(f"rut bursts: camera pitch not refined: {stream.burst_mount.reason}")
    if not profiles:
        if not config.rut_video:
            warnings.append(
                "わだち掘れ量 not measured: the run has no depth/ maps (rut depth from the video itself is "
                "experimental: --rut-video or 'pavement rut')"
            )
        return None, sources
    _, segments = aggregate(geo.segments, profiles, config.rut.max_sigma_mm)
    return segments, sources


def _write_album(
    out: Path,
    segments: list[Segment],
    album: dict[int, list[_Candidate]],
    detections: dict[int, Detections] | None,
    poses: dict[int, FramePose],
    geo: GeotagResult,
    video_width_px: int,
    config: ProcessConfig,
    potholes_measured: bool,
) -> dict:
    """album.xlsx (画像集) and frames/<index>.jpg: each segment's representative frames with the
    damage boxes drawn, faces and licence plates blurred before anything is written. Returns the
    photo numbers per segment for 様式A."""
    routes = geo.ledger.routes if geo.ledger else ()
    sections = segments_to_album(
        segments,
        poses,
        detections=detections,
        route_names={r.route_no: r.route_name for r in routes},
        chosen_frames={s.key: s.representative_frames for s in segments},
        frames_per_segment=config.album_frames_per_segment,
        potholes_measured=potholes_measured,
    )
    frames_dir = out / "frames"
    frames_dir.mkdir()
    masker = load_privacy_masker(threads=1) if config.privacy else None
    chosen = [cand for cands in album.values() for cand in cands]

    def masked(cand: _Candidate) -> np.ndarray:
        image = cv2.imdecode(np.frombuffer(cand.jpeg, np.uint8), cv2.IMREAD_COLOR)
        return masker.mask(image) if masker is not None else image

    def images():
        """The album's frames one at a time, masked two at a time (one per core) and each saved to
        frames/ with its boxes drawn; at most four wait in memory."""
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="mask") as pool:
            waiting: deque[tuple[_Candidate, Future[np.ndarray]]] = deque()

            def oldest() -> tuple[int, np.ndarray]:
                cand, future = waiting.popleft()
                image = future.result()
                dets = detections.get(cand.frame_index) if detections else None
                jpeg = album_jpeg(image, dets, width_px=image.shape[1], detections_width_px=video_width_px)
                (frames_dir / f"{cand.frame_index}.jpg").write_bytes(jpeg)
                return cand.frame_index, image

            for cand in chosen:
                waiting.append((cand, pool.submit(masked, cand)))
                if len(waiting) > 4:
                    yield oldest()
            while waiting:
                yield oldest()

    write_album_xlsx(sections, images(), out / "album.xlsx", detections_width_px=video_width_px)
    return album_photo_frames(sections)
