"""Per-stage throughput of ``pavement process`` on 1080p30 video: each stage timed alone.

Issue 9 item 4. ``bench/batch_scaling.py`` reads the coarse stages of ``report.json``, where
``video`` is decode, road-plane flow, detection and the crack mesh together. This script takes one
synthetic 1920x1080, 30 fps run (default 300 m, with a phone depth map every 20 m) and times, in
one process and one after the other, each thing ``pipelines/process.py`` does, called the same way
and on the frames the pipeline picks:

- decode: PyAV decoding every frame (``video_motion.decode_frames``, thread type AUTO, frames not
  converted), then again with the luma shrunk to the flow's 480 px (``MotionRecorder``'s step);
  ``--decode-repeats`` passes of each, alternated, and their median (decoding is the largest stage
  and the one other jobs disturb most);
- road-plane flow: ``MotionRecorder.push`` of every frame (luma shrink included, decode excluded),
  with the frame plan (``OdometryPlanner``, GPS speed) on the way, as ``_stream`` does; the BGR
  conversion of the frames it picks;
- detect: the ONNX detector on the frames picked every 10 m, in its batch size;
- crack mask: ``CrackAccumulator.push`` on the frames picked every 5 m; the per-segment crack
  ratio (``finish``) after geotagging;
- album candidates (shrink + JPEG of each 50 m's best frame) and privacy masking of the album's
  frames (one per segment, one ONNX thread a call, as ``_write_album`` does);
- geotag (``run_geotag`` given the measured motion and selection), IRI, rut depth from the depth
  maps (per 20 m section), aggregation (potholes, segment metrics, 診断区分 and MCI);
- rut depth from video bursts (``pavement.rut_video.burst_profile``, off in the default pipeline,
  ~10 s a burst): ``--bursts`` bursts only, extrapolated to all the run's bursts and per km;
- export: album.xlsx and frames/ (masking excluded), the GIS files, 様式A xlsx, kpi, map, potholes
  and detections, each writer timed;
- model loading and a fresh interpreter's imports of ``pipelines.process``;

and then ``pavement process RUN`` itself as a subprocess (``bench/process_speed.py``'s
measurement). Per stage: frames handled, seconds, frames/s, 'x real time' (seconds of video per
second of compute, at the pipeline's frame-selection rates: a stage that sees one frame per 5 m
keeps up with the video when it handles those frames faster than the car passes them) and seconds
per km; the stages' sum against the job's wall time. The job overlaps them: its analysis thread
(detection, cracks, album candidates) runs beside the decoder and the flow, and the album's frames
are masked two at a time, so on 2 cores the job takes less than the sum.

Thread settings are the pipeline's and are written to the results: PyAV's codec threads (AUTO),
OpenCV's default thread pool, the detector's ONNX session with ``DetectorConfig.threads`` (min(2,
cores)), the privacy masker with 1 thread a call. Stages run one after the other, so a stage here
may use both cores where in the job it shares them.

The run is rendered at ``--render-scale`` (0.25) of 1080p and upscaled, encoded at crf 14 (near a
phone's bitrate): fine for timing, where the work per frame depends on the frame's size, not on its
detail (the crack segmenter and the quality gate see blurrier frames; the gate rejects more, which
skips some segmentation work: crack figures are if anything optimistic). It is cached in
``--work`` with its parameters and reused.

    python bench/stage_throughput.py   # writes bench/results/stage_throughput.json and .md

On the 2-core machine: ~10 min to render the run the first time (more when shared), then ~3 min.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/common.py, run or imported by a test
from common import libavcodec_version, machine, package_versions, pavement_commit
from process_speed import BenchError, RunSpec, ensure_run, run_process

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Stage:
    """One timed stage: ``frames`` handled in ``seconds``; ``run_s`` what the whole run's frames
    cost (``seconds`` itself unless only a sample was timed and extrapolated)."""

    stage: str
    what: str
    frames: int
    seconds: float
    run_s: float | None = None
    in_job: bool = True  # part of the default `pavement process` (counted in the sum)
    note: str = ""
    detail: dict = field(default_factory=dict)

    def row(self, video_s: float, km: float) -> dict:
        run_s = self.seconds if self.run_s is None else self.run_s
        return {
            "stage": self.stage,
            "what": self.what,
            "frames": self.frames,
            "s": round(self.seconds, 3),
            "frames_per_s": round(self.frames / self.seconds, 1)
            if self.seconds > 0 and self.frames
            else None,
            "run_s": round(run_s, 3),
            "extrapolated": self.run_s is not None,
            "x_real_time": round(video_s / run_s, 2) if run_s > 0 else None,
            "s_per_km": round(run_s / km, 2) if km > 0 else None,
            "in_job": self.in_job,
            "note": self.note,
            **({"detail": self.detail} if self.detail else {}),
        }


def timed(fn: Callable, *args, **kwargs) -> tuple[float, object]:
    started = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - started, result


# ---------------------------------------------------------------------------------------------
# Decode and the streaming pass
# ---------------------------------------------------------------------------------------------


def decode_pass(video: Path, shrink: Callable | None = None) -> tuple[int, float]:
    """Every frame through ``decode_frames`` (and ``shrink`` when given): (frames, seconds)."""
    from pipelines.video_motion import decode_frames

    started, n = time.perf_counter(), 0
    for _, _, frame in decode_frames(video):
        if shrink is not None:
            shrink(frame)
        n += 1
    return n, time.perf_counter() - started


@dataclass
class Recording:
    """What the streaming pass leaves for the later stages, and what it timed."""

    info: object
    motion: object
    selection: dict[int, int]
    distance_m: float
    picked: list[tuple[int, float, np.ndarray, bool]]  # (frame, distance, BGR, to detect)
    bursts: list[tuple[int, list[np.ndarray], list[float]]]  # (first frame, greys, distances from it)
    n_bursts: int
    frames: int
    flow_s: float
    bgr_s: float
    pass_s: float


def streaming_pass(video: Path, camera, gps_speed, config, max_bursts: int) -> Recording:
    """``_stream``'s loop without the analysis thread: decode, ``MotionRecorder.push`` (timed),
    the frame plan, the BGR copies of the picked frames (timed) and the grey frames of the first
    ``max_bursts`` rut bursts after the first one (the car may still be starting there)."""
    from pavement.frame_plan import NO_BURST, OdometryPlanner
    from pipelines.video_motion import MotionRecorder, decode_frames, probe_video

    info = probe_video(video)
    recorder = MotionRecorder(camera, info, config.geotag.max_video_width_px)
    planner = OdometryPlanner(config.geotag.plan)
    picked: list[tuple[int, float, np.ndarray, bool]] = []
    bursts: dict[int, tuple[int, list[np.ndarray], list[float]]] = {}
    flow_s = bgr_s = 0.0
    t_prev, next_detect_m, n = 0.0, 0.0, 0
    started = time.perf_counter()
    for i, t, frame in decode_frames(video):
        t0 = time.perf_counter()
        step = recorder.push(frame, t)
        flow_s += time.perf_counter() - t0
        speed = gps_speed(t) if gps_speed is not None else float("nan")
        chosen = planner.push(t, speed * (t - t_prev) if np.isfinite(speed) else step)
        t_prev = t
        if planner.spaced:
            detect = planner.distance_m >= next_detect_m
            if detect:
                next_detect_m = planner.distance_m + config.detect_every_m - config.geotag.plan.spacing_m / 2
            t0 = time.perf_counter()
            picked.append((i, planner.distance_m, frame.to_ndarray(format="bgr24"), detect))
            bgr_s += time.perf_counter() - t0
        if chosen is not None and chosen != NO_BURST and 1 <= chosen <= max_bursts:
            _, greys, dist = bursts.setdefault(chosen, (i, [], []))
            greys.append(frame.to_ndarray(format="gray"))
            dist.append(planner.distance_m)
        n += 1
    pass_s = time.perf_counter() - started
    n_bursts = len({b for b in planner.selection.values() if b != NO_BURST})
    return Recording(
        info,
        recorder.finish(),
        dict(planner.selection),
        planner.distance_m,
        picked,
        [(first, greys, [d - dist[0] for d in dist]) for first, greys, dist in bursts.values()],
        n_bursts,
        n,
        flow_s,
        bgr_s,
        pass_s,
    )


# ---------------------------------------------------------------------------------------------
# The stages
# ---------------------------------------------------------------------------------------------


def measure(run_dir: Path, out: Path, max_bursts: int, repeats: int = 1) -> tuple[list[Stage], dict]:
    """Every stage of ``pavement process`` on ``run_dir``, timed alone; exports written to ``out``."""
    import pipelines.process as proc
    from exporters.form_a import segments_to_form_rows, write_form_xlsx
    from exporters.gis import segments_to_records, write_csv, write_geojson, write_kml, write_ogr
    from exporters.kpi import kpi_to_json, segments_to_kpi
    from exporters.web_map import write_web_map
    from pavement.camera import CameraProfile
    from pavement.geodesy import PlaneProjection
    from pavement.rut_video import burst_profile
    from pipelines.accel_io import read_accel_csv
    from pipelines.cracks import CrackAccumulator
    from pipelines.detect import detections_to_json, load_detector
    from pipelines.geotag import _read_camera, find_inputs, gps_speed_by_video_time, run_geotag
    from pipelines.iri import segment_iri
    from pipelines.privacy import load_privacy_masker
    from pipelines.rut import aggregate
    from pipelines.rut_depth_source import chainage_of_video_time, profiles_from_depth_folder
    from pipelines.video_motion import MotionRecorder, probe_video

    config = proc.ProcessConfig()
    run_dir, video, gps, _, camera_path = find_inputs(run_dir, config.geotag)
    if camera_path is None:
        raise BenchError(f"{run_dir} has no camera.json: the flow, cracks and rut stages need it")
    camera = _read_camera(camera_path)
    info = probe_video(video)
    gps_speed = gps_speed_by_video_time(gps, info, config.geotag)
    stages: list[Stage] = []
    every = f"all {info.n_frames_expected} frames"

    # Decoding is the largest stage and the most sensitive to other jobs: alternate the two passes
    # `repeats` times and keep the median of each.
    shrinker = MotionRecorder(camera, info, config.geotag.max_video_width_px)
    plain, shrunk = [], []
    for _ in range(repeats):
        n, secs = decode_pass(video)
        plain.append(secs)
        shrunk.append(decode_pass(video, shrinker._gray)[1])
    spread = "median of {}: {}".format
    stages.append(
        Stage(
            "decode",
            f"PyAV decode, {every} (decode_frames, thread type AUTO)",
            n,
            statistics.median(plain),
            note=spread(repeats, ", ".join(f"{x:.2f}" for x in plain)) + " s",
        )
    )
    stages.append(
        Stage(
            "decode + luma shrink",
            f"decode and the luma plane shrunk to {shrinker.w}x{shrinker.h} (MotionRecorder's step)",
            n,
            statistics.median(shrunk),
            in_job=False,
            note=spread(repeats, ", ".join(f"{x:.2f}" for x in shrunk))
            + " s; for information: the shrink is part of the flow's time below",
        )
    )

    rec = streaming_pass(video, camera, gps_speed, config, max_bursts)
    stages.append(
        Stage(
            "road-plane flow",
            f"MotionRecorder.push of {every} (luma shrink included, decode excluded)",
            rec.frames,
            rec.flow_s,
            note=f"the whole pass with decode, plan and copies: {rec.pass_s:.2f} s",
        )
    )
    picked_every = f"one per {config.geotag.plan.spacing_m:g} m"
    stages.append(
        Stage(
            "BGR copies",
            f"frame.to_ndarray(bgr24) of the frames picked {picked_every}",
            len(rec.picked),
            rec.bgr_s,
        )
    )

    secs, detector = timed(load_detector, config.model_path, config.detector)
    masker_load_s, masker = timed(load_privacy_masker, threads=1)
    stages.append(
        Stage(
            "model loading",
            "damage detector and privacy (CenterFace) sessions, sha256 checked",
            0,
            secs + masker_load_s,
            note="once per run",
        )
    )

    to_detect = [(i, img) for i, _, img, d in rec.picked if d]
    secs, found = timed(detector.detect_batch, [img for _, img in to_detect])
    detections = {i: d for (i, _), d in zip(to_detect, found, strict=True)}
    stages.append(
        Stage(
            "detect",
            f"ONNX detector, frames picked one per {config.detect_every_m:g} m, batches of "
            f"{config.detector.batch_size}, {config.detector.threads} threads",
            len(to_detect),
            secs,
            detail={"provider": detector.provider, "input_size_px": detector.input_size},
        )
    )

    cam_full = CameraProfile(
        camera.intrinsics.scaled(info.width_px, info.height_px), camera.mount, camera.name
    )
    cracks = CrackAccumulator(cam_full, (info.width_px, info.height_px), config.cracks)
    started = time.perf_counter()
    for i, _, img, _ in rec.picked:
        cracks.push(i, img)
    stages.append(
        Stage(
            "crack mask",
            f"CrackAccumulator.push (rectify, quality gate, segment, cells), frames picked {picked_every}",
            len(rec.picked),
            time.perf_counter() - started,
            detail={"rejected_by_gate": dict(cracks.rejected)},
        )
    )

    # album candidates: the best-scored detected frame of each 50 m window, reduced and compressed
    best: dict[int, tuple[int, float, np.ndarray]] = {}
    for i, dist, img, detect in rec.picked:
        if detect:
            score = float(np.sum(detections[i].confidence))
            window = int(dist // config.album_window_m)
            if window not in best or score > best[window][1]:
                best[window] = (i, score, img)
    started = time.perf_counter()
    candidates = [
        proc._Candidate(i, score, proc._jpeg(proc._shrink(img, config.album_width_px)))
        for i, score, img in best.values()
    ]
    stages.append(
        Stage(
            "album candidates",
            f"shrink to {config.album_width_px} px + JPEG of each {config.album_window_m:g} m's best frame",
            len(candidates),
            time.perf_counter() - started,
        )
    )
    del best

    secs, geo = timed(
        run_geotag, run_dir, out / "geotag", config.geotag, motion=rec.motion, selection=rec.selection
    )
    stages.append(
        Stage("geotag", "run_geotag with the measured motion and frame selection", len(geo.frames), secs)
    )
    poses = {p.frame_index: p for p in geo.frames}

    started = time.perf_counter()
    iri = [None] * len(geo.segments)
    if (run_dir / "accel.csv").is_file():
        iri = segment_iri(geo, read_accel_csv(run_dir / "accel.csv"), config.vehicle_gain)
    stages.append(Stage("IRI", "accel.csv read, IRI per segment", 0, time.perf_counter() - started))

    depth_dir = run_dir / "depth"
    ruts = None
    if depth_dir.is_dir():
        started = time.perf_counter()
        profiles = profiles_from_depth_folder(depth_dir, camera, chainage_of_video_time(geo.frames))
        _, ruts = aggregate(geo.segments, profiles, config.rut.max_sigma_mm)
        n_maps = sum(1 for p in depth_dir.iterdir() if p.suffix in (".npy", ".png", ".exr", ".tif", ".tiff"))
        stages.append(
            Stage(
                "rut (depth maps)",
                "profiles_from_depth_folder + 20 m sections + segments",
                len(profiles),
                time.perf_counter() - started,
                note=f"frames = depth maps placed on the route ({n_maps} files in depth/)",
            )
        )

    if rec.bursts:
        started = time.perf_counter()
        blank = 0
        for first, greys, dist in rec.bursts:
            bp = burst_profile(greys, dist, cam_full.intrinsics, cam_full.mount, 0.0, first, config.rut.sweep)
            blank += bp.profile is None
        secs = time.perf_counter() - started
        frames = sum(len(g) for _, g, _ in rec.bursts)
        stages.append(
            Stage(
                "rut (video bursts)",
                f"burst_profile on {len(rec.bursts)} of the run's {rec.n_bursts} bursts of "
                f"{config.geotag.plan.burst_frames} frames (one per {config.geotag.plan.burst_every_m:g} m)",
                frames,
                secs,
                run_s=secs / len(rec.bursts) * rec.n_bursts,
                in_job=False,
                note="off in the default job (--rut-video); timed on a sample and extrapolated to all bursts"
                + (f"; {blank} gave no profile" if blank else "")
                + (
                    f"; the job skips bursts below {config.rut.min_video_width_px} px wide"
                    if info.width_px < config.rut.min_video_width_px
                    else ""
                ),
                detail={"s_per_burst": round(secs / len(rec.bursts), 2)},
            )
        )

    started = time.perf_counter()
    crack_segments = cracks.finish(geo)
    stages.append(
        Stage("crack ratio", "CrackAccumulator.finish: ratio per segment", 0, time.perf_counter() - started)
    )

    started = time.perf_counter()
    projection = PlaneProjection.for_location(geo.frames[0].lat, geo.frames[0].lon)
    dets = {i: d for i, d in detections.items() if i in poses}
    cam = replace(camera, intrinsics=camera.intrinsics.scaled(info.width_px, info.height_px))
    potholes = proc._potholes(dets, poses, cam, projection, config)
    holes = proc._count_potholes(geo, potholes, projection)
    album = proc.choose_album(geo, candidates, config.album_frames_per_segment)
    segments = []
    for k, rs in enumerate(geo.segments):
        metrics = proc.segment_metrics(
            crack_segments[k], iri[k], ruts[k] if ruts else None, holes[k], config.thresholds
        )
        segments.append(
            replace(rs.segment, metrics=metrics, representative_frames=tuple(c.frame_index for c in album[k]))
        )
    stages.append(
        Stage(
            "aggregation",
            "potholes placed and merged, per-segment metrics, 診断区分 and MCI",
            0,
            time.perf_counter() - started,
            detail={"segments": len(segments), "potholes": len(potholes)},
        )
    )

    shown = [c for cands in album.values() for c in cands]
    images = [cv2.imdecode(np.frombuffer(c.jpeg, np.uint8), cv2.IMREAD_COLOR) for c in shown]
    started = time.perf_counter()
    for image in images:
        masker.mask(image)
    stages.append(
        Stage(
            "privacy masking",
            f"CenterFace + plates on the album's frames ({config.album_frames_per_segment} per segment, "
            f"{config.album_width_px} px), 1 thread a call",
            len(images),
            time.perf_counter() - started,
            note="the job masks two at a time",
        )
    )

    export = out / "export"
    export.mkdir(parents=True, exist_ok=True)
    writers: dict[str, float] = {}

    def write(name: str, fn: Callable, *args) -> object:
        secs, result = timed(fn, *args)
        writers[name] = round(writers.get(name, 0.0) + secs, 3)
        return result

    photos = write(
        "album.xlsx + frames/",
        proc._write_album,
        export,
        segments,
        album,
        dets,
        poses,
        geo,
        info.width_px,
        replace(config, privacy=False),
        True,
    )
    records = write("records", segments_to_records, segments)
    write("segments.geojson", write_geojson, records, export / "segments.geojson")
    write("segments.csv", write_csv, records, export / "segments.csv")
    write("segments.gpkg", write_ogr, records, export / "segments.gpkg")
    write("segments.kml", write_kml, records, export / "segments.kml")
    run_date = datetime.fromtimestamp(geo.frames[0].t_unix_s, UTC).date()
    form = replace(config.form, inspection_date=config.form.inspection_date or run_date)
    routes = geo.ledger.routes if geo.ledger else ()
    if routes and not form.route_name:
        form = replace(
            form, route_name=routes[0].route_name, road_class=routes[0].road_class or form.road_class
        )
    rows = write("form_a rows", segments_to_form_rows, segments, form, photos)
    write("form_a.xlsx (様式A)", write_form_xlsx, rows, export / "form_a.xlsx")
    write(
        "kpi.json",
        lambda: (export / "kpi.json").write_text(kpi_to_json(segments_to_kpi(segments, [run_date]))),
    )
    centerlines = [
        [tuple(ll[::-1]) for ll in geo.ledger.projection.to_latlon(*np.asarray(r.centreline.coords)[:, :2].T)]
        for r in routes
    ]
    write("map.html", lambda: write_web_map(records, export / "map.html", centerlines=centerlines))
    write("potholes.geojson", proc._write_potholes, export / "potholes.geojson", potholes, projection)
    detections_json = {
        "model": detector.name,
        "frames": [{"frame_index": i, "detections": detections_to_json(d)} for i, d in sorted(dets.items())],
    }
    write("detections.json", lambda: (export / "detections.json").write_text(json.dumps(detections_json)))
    stages.append(
        Stage(
            "export",
            "album.xlsx + frames/ (masking excluded), GeoJSON, CSV, GeoPackage, KML, 様式A xlsx, kpi, map, "
            "potholes, detections",
            len(shown),
            sum(writers.values()),
            note="frames = album photos",
            detail={"writers_s": writers},
        )
    )
    facts = {
        "frames": rec.frames,
        "video_s": rec.frames / info.fps,
        "fps": info.fps,
        "size": f"{info.width_px}x{info.height_px}",
        "distance_by_video_m": round(rec.distance_m, 1),
        "picked_frames": len(rec.picked),
        "detected_frames": len(to_detect),
        "bursts_in_run": rec.n_bursts,
        "segments": len(segments),
        "threads": {
            "pyav_thread_type": "AUTO",
            "opencv": cv2.getNumThreads(),
            "detector_onnx_intra_op": config.detector.threads,
            "privacy_onnx_intra_op": 1,
        },
    }
    return stages, facts


def imports_s() -> float:
    """A fresh interpreter's start and ``import pipelines.process`` (what the CLI pays first)."""
    code = "import time; t = time.perf_counter(); import pipelines.process; print(time.perf_counter() - t)"
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise BenchError(f"importing pipelines.process failed: {done.stderr.strip()[-500:]}")
    return time.perf_counter() - started


# ---------------------------------------------------------------------------------------------
# Command line, results
# ---------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--length-m", type=float, default=300.0, help="Length of the synthetic run (m).")
    p.add_argument("--seed", type=int, default=931, help="Seed of the synthetic run.")
    p.add_argument("--render-scale", type=float, default=0.25, help="Rendered fraction of 1920x1080.")
    p.add_argument("--run", type=Path, help="Time this existing run folder instead (no synthesis).")
    p.add_argument(
        "--bursts", type=int, default=3, help="Rut bursts timed for the video rut stage (0: skip it)."
    )
    p.add_argument(
        "--decode-repeats", type=int, default=3, help="Decode passes of each kind (the median is kept)."
    )
    p.add_argument("--no-process", action="store_true", help="Do not time `pavement process` itself.")
    p.add_argument(
        "--work", type=Path, default=REPO / "work" / "bench_stages", help="Folder for the run and outputs."
    )
    p.add_argument("--results", type=Path, default=REPO / "bench" / "results", help="Where to write.")
    p.add_argument(
        "--timeout-s", type=float, default=3600.0, help="Give up on `pavement process` after this."
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = "python bench/stage_throughput.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    try:
        if args.run is not None:
            run_dir, run_info = args.run.resolve(), {"given_run": True, "folder": str(args.run.resolve())}
            if not (run_dir / "video.mp4").is_file():
                raise BenchError(f"--run {run_dir} has no video.mp4; give a run folder (docs/run_folder.md)")
        else:
            spec = RunSpec(args.length_m, 1920, 1080, 30.0, args.render_scale, args.seed, depth_every_m=20.0)
            run_dir, info = ensure_run(spec, work)
            run_info = {
                "folder": str(run_dir),
                **asdict(spec),
                **{k: v for k, v in info.items() if k != "params"},
            }
        load_start = [round(v, 2) for v in os.getloadavg()]
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(dir=work) as tmp:
            stages, facts = measure(run_dir, Path(tmp), args.bursts, args.decode_repeats)
        stages.append(
            Stage(
                "imports",
                "interpreter start + import pipelines.process (fresh process)",
                0,
                imports_s(),
                note="once per run",
            )
        )
        job = None
        if not args.no_process:
            job = run_process(run_dir, work / "process_out", args.timeout_s)
        load_end = [round(v, 2) for v in os.getloadavg()]
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    video_s, km = facts["video_s"], facts["distance_by_video_m"] / 1000
    rows = [s.row(video_s, km) for s in stages]
    in_job = sum(r["run_s"] for r in rows if r["in_job"])
    out = {
        "issue": "9 item 4: per-stage throughput for 1080p30 video",
        "command": command,
        "machine": machine(),
        "versions": {
            **package_versions(("av", "onnxruntime", "numpy", "opencv-python-headless")),
            "ffmpeg_libavcodec": libavcodec_version(),
            "pavement_commit": pavement_commit(),
        },
        "load_average_before": load_start,
        "load_average_after": load_end,
        "nice": os.nice(0),
        "autogroup": _autogroup(),
        "run": run_info,
        "video": facts,
        "stages": rows,
        "sum_in_job_s": round(in_job, 2),
        "sum_in_job_s_per_km": round(in_job / km, 1) if km > 0 else None,
        "process": job,
        "process_over_sum": round(job["wall_s"] / in_job, 3) if job and in_job > 0 else None,
        "bench_wall_s": round(time.perf_counter() - started, 1),
    }
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "stage_throughput.json").write_text(
        json.dumps(out, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )
    (args.results / "stage_throughput.md").write_text(markdown(out), encoding="utf-8")
    print(markdown(out))
    return 0


def _autogroup() -> str | None:
    """This process's scheduler autogroup and its niceness: with autogroups on, ``nice`` only ranks
    processes within one session; sessions share the cores by their autogroups' niceness."""
    try:
        enabled = Path("/proc/sys/kernel/sched_autogroup_enabled").read_text().strip() == "1"
        return Path("/proc/self/autogroup").read_text().strip() if enabled else None
    except OSError:
        return None


def markdown(out: dict) -> str:
    m, v, f = out["machine"], out["versions"], out["video"]
    run = out["run"]
    made = (
        f"`{run['folder']}` (given)"
        if run.get("given_run")
        else f"synthetic, {run['length_m']:g} m, seed {run['seed']}, rendered at {run['render_scale']:g} x "
        f"size and upscaled, crf {run['crf']}, a depth map every {run['depth_every_m']:g} m"
    )
    lines = [
        "# Per-stage throughput of `pavement process`, 1080p30 (issue 9 item 4)",
        "",
        f"Machine: {m['cpu']} ({', '.join(m['cpu_flags'])}), {m['nproc']} cores, {m['memory_gib']} GiB, "
        "no GPU; "
        f"Python {m['python']}, PyAV {v['av']} (libavcodec {v['ffmpeg_libavcodec']}), ONNX Runtime "
        f"{v['onnxruntime']}, OpenCV {v['opencv-python-headless']}, NumPy {v['numpy']}; pavement "
        f"{v['pavement_commit']}. Load average (1, 5, 15 min) before {out['load_average_before']}, after "
        f"{out['load_average_after']}; niceness {out['nice']}"
        + (f", scheduler autogroup `{out['autogroup']}`" if out.get("autogroup") else "")
        + ".",
        "",
        f"Command: `{out['command'].strip()}` ({out['bench_wall_s']:.0f} s, the job included).",
        "",
        f"Run: {made}: {f['size']} at {f['fps']:g} fps, {f['frames']} frames = {f['video_s']:.1f} s of "
        f"video, {f['distance_by_video_m']:g} m by the video; {f['picked_frames']} frames picked (one per "
        f"5 m), {f['detected_frames']} detected (one per 10 m), {f['bursts_in_run']} rut bursts, "
        f"{f['segments']} segments. Rendering at a quarter of the size changes the images' detail, not the "
        "work per frame: fine for timing, not for accuracy.",
        "",
        "Threads, as in the job: PyAV codec threads AUTO; OpenCV "
        f"{f['threads']['opencv']} threads; detector ONNX session {f['threads']['detector_onnx_intra_op']} "
        f"intra-op threads; privacy masker {f['threads']['privacy_onnx_intra_op']} thread a call. Each stage "
        "runs alone here; in the job the analysis thread (detect, crack mask, album candidates) runs beside "
        "the decoder and the flow, and album frames are masked two at a time.",
        "",
        "'x real time' = seconds of video per second of compute at the pipeline's frame-selection rates "
        "(> 1: the stage keeps up with the video on this machine); 's per km' for the run's distance.",
        "",
        "| stage | what | frames | s | frames/s | x real time | s per km | in job sum |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in out["stages"]:
        s = f"{r['s']:.2f}" + (f" (run: {r['run_s']:.1f}, extrapolated)" if r["extrapolated"] else "")
        what = r["what"] + (f"; {r['note']}" if r["note"] else "")
        lines.append(
            f"| {r['stage']} | {what} | {r['frames'] or ''} | {s} | {r['frames_per_s'] or ''} "
            f"| {r['x_real_time']} | {r['s_per_km']} | {'yes' if r['in_job'] else 'no'} |"
        )
    lines += [
        "",
        f"Sum of the stages in the job: **{out['sum_in_job_s']} s** ({out['sum_in_job_s_per_km']} s per km).",
    ]
    job = out["process"]
    if job:
        lines += [
            "",
            f"`{job['command']}` on the same run: **{job['wall_s']} s** wall ({job['cpu_s']} CPU-s, peak RSS "
            f"{job['peak_rss_mib']:.0f} MiB), {out['process_over_sum']} x the sum; its report.json: "
            + ", ".join(f"{k} {s}" for k, s in job.get("stage_s", {}).items())
            + " s. Less than the sum where the analysis thread and the decoder overlap on the two cores "
            "(the sum is one stage after another); more where they compete for them.",
        ]
    export = next((r for r in out["stages"] if r["stage"] == "export"), None)
    if export:
        lines += [
            "",
            "Export writers (s): "
            + ", ".join(f"{k} {s}" for k, s in export["detail"]["writers_s"].items())
            + ".",
        ]
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
