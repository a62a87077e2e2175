"""Speed and memory of the main job, ``pavement process``, against decoding the same video alone.

Issue 7 item 4. On a synthetic 1920x1080, 30 fps run (default 2 km) the script times, in one
invocation:

- decode-only: PyAV decodes every frame of ``video.mp4`` (``container.decode(video=0)``, thread
  type AUTO) without converting the frames to arrays. This is the strict baseline: the least any
  pipeline that looks at the video must do. It runs before and after the job to show the noise;
  one more pass that also converts every frame to BGR arrays is reported for information;
- ``pavement process RUN --out OUT`` as a subprocess: wall time, CPU time and peak RSS, each
  command measured under its own fresh Python wrapper (``getrusage(RUSAGE_CHILDREN)`` there), so
  the peaks of different commands never mix;

and reports processing time / decode-only time (issue: <= 2.5 on a 2-core machine, target 1.3).
Peak RSS is compared between ``--rss-lengths`` runs (default 1 km and 4 km, at ``--rss-size``):
the 4 km peak should be within 15 % of the 1 km one. Each processed run is also scored against
its ``truth.json`` per 100 m segment: crack ratio, rut depth, IRI (MAE), 診断区分 agreement; an
indicator the job leaves blank is reported as not measured.

Synthetic runs are rendered at ``--render-scale`` times the video size and upscaled (``pavement
synth --render-scale``): rendering every pixel of a 2 km 1080p run would take well over an hour on
2 cores. Upscaled frames carry less detail, so the accuracy figures of the image stages (crack
ratio, rut depth, potholes) are not those of a real phone video (IRI comes from the accelerometer
and is unaffected), and they compress to a lower bitrate than a phone records (``video_mbit_per_s``
in the output): decoding them is at the fast end, which makes the ratio if anything pessimistic.
Runs are kept in ``--work`` (outside the repository) with their parameters in ``<run>.json``
beside them, and reused by later invocations with the same parameters.

    python bench/process_speed.py      # writes bench/results/process_speed.json and .md

On the 2-core machine the first invocation renders 5858 frames (2 km) at 1080p and about 3100 +
11400 (1 km + 4 km) at 720p: 0.19 CPU-s per 1080p frame and 0.08 per 720p frame at --render-scale
0.25, about 35-50 min in all with the cores free. Later invocations reuse the runs: 8-12 min.
Lowering --render-scale further gains little: 1080p encoding and the renderer's per-metre
texture work do not shrink with it.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/common.py, run or imported by a test
from common import libavcodec_version, machine, package_versions, pavement_commit

REPO = Path(__file__).resolve().parents[1]
RATIO_LIMIT = 2.5  # issue 7: processing / decode-only on the 2-core machine
RATIO_TARGET = 1.3
RSS_TOLERANCE = 0.15  # the longest run's peak RSS within 15 % of the shortest one's
INDICATORS = (
    ("crack_ratio_pct", "crack ratio (%)"),
    ("rut_depth_mm", "rut depth (mm)"),
    ("iri_mm_per_m", "IRI (mm/m)"),
    ("pothole_count", "potholes per segment"),
)
DECODE_NOTE = (
    "decode-only = PyAV decoding every frame (container.decode(video=0), thread_type AUTO), frames not "
    "converted to arrays: the strict baseline, the least any pipeline reading the video must do"
)

# Runs one command and reports its wall time and the resource use of its process tree. A fresh
# interpreter per measured command: RUSAGE_CHILDREN keeps the maximum over all waited-for children.
_WRAPPER = """
import json, resource, subprocess, sys, time
log_path, cmd = sys.argv[1], sys.argv[2:]
t0 = time.perf_counter()
with open(log_path, "w") as log:
    try:
        code = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT).returncode
    except OSError as exc:
        log.write(f"cannot start {cmd[0]}: {exc}\\n")
        code = 127
wall = time.perf_counter() - t0
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"returncode": code, "wall_s": wall, "peak_rss_kib": ru.ru_maxrss,
                  "user_s": ru.ru_utime, "sys_s": ru.ru_stime}))
"""


class BenchError(Exception):
    """A step of the benchmark failed; the message says which and what to do."""


@dataclass(frozen=True)
class RunSpec:
    """A synthetic run: what ``pavement synth`` is given."""

    length_m: float
    width_px: int
    height_px: int
    fps: float
    render_scale: float
    seed: int
    crf: int = 14  # x264 quality; low, so that the bitrate nears a phone's (the default 26 is far below)
    depth_every_m: float = 0.0  # > 0: the run carries phone depth maps (depth/), so rut depth is scored

    @property
    def name(self) -> str:
        return (
            f"run_{self.length_m:g}m_{self.width_px}x{self.height_px}_{self.fps:g}fps"
            f"_rs{self.render_scale:g}_seed{self.seed}_crf{self.crf}"
            + (f"_depth{self.depth_every_m:g}" if self.depth_every_m > 0 else "")
        )

    def synth_command(self, out: Path) -> str:
        return (
            f"pavement synth --out {out} --length-m {self.length_m:g} --size {self.width_px}x{self.height_px}"
            f" --fps {self.fps:g} --seed {self.seed} --render-scale {self.render_scale:g} --crf {self.crf}"
            + (f" --depth-every-m {self.depth_every_m:g}" if self.depth_every_m > 0 else "")
        )


# ---------------------------------------------------------------------------------------------
# Runs
# ---------------------------------------------------------------------------------------------


def ensure_run(spec: RunSpec, work: Path) -> tuple[Path, dict]:
    """The run folder for ``spec`` in ``work``: reused when ``<name>.json`` beside it records the
    same parameters, else (re)synthesised. Returns the folder and what was done."""
    run_dir, params_path = work / spec.name, work / f"{spec.name}.json"
    wanted = asdict(spec)
    if params_path.is_file() and all((run_dir / f).is_file() for f in ("video.mp4", "truth.json")):
        try:
            recorded = json.loads(params_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            recorded = {}
        if recorded.get("params") == wanted:
            print(f"reusing {run_dir} (same parameters, {params_path.name})", flush=True)
            return run_dir, {**recorded, "reused": True}
    from pavement.errors import PavementError
    from pipelines.synth import SynthConfig, run_synth

    params_path.unlink(missing_ok=True)  # a run interrupted half-way must not be reused
    if run_dir.exists():
        shutil.rmtree(run_dir)
    print(f"synthesising {run_dir}: {spec.synth_command(run_dir)}", flush=True)
    step = [0.0]

    def progress(done: int, total: int) -> None:
        if done / total >= step[0] or done == total:
            print(f"  rendered {done}/{total} frames", flush=True)
            step[0] += 0.1

    try:
        config = SynthConfig(
            length_m=spec.length_m,
            seed=spec.seed,
            fps=spec.fps,
            width_px=spec.width_px,
            height_px=spec.height_px,
            render_scale=spec.render_scale,
            crf=spec.crf,
            depth_every_m=spec.depth_every_m,
        )
        result = run_synth(run_dir, config, progress)
    except PavementError as exc:
        raise BenchError(f"synthesising {run_dir} failed: {type(exc).__name__}: {exc}") from exc
    except OSError as exc:
        raise BenchError(f"synthesising {run_dir} failed: {exc}; is there room in {work}?") from exc
    recorded = {
        "params": wanted,
        "n_frames": result.n_frames,
        "video_duration_s": round(result.duration_s, 2),
        "synth_wall_s": round(result.wall_s, 1),
        "render_s_per_frame": round(result.render_s / result.n_frames, 4),
        "video_bytes": (run_dir / "video.mp4").stat().st_size,
        "video_mbit_per_s": round((run_dir / "video.mp4").stat().st_size * 8e-6 / result.duration_s, 2),
        "command": spec.synth_command(run_dir),
    }
    params_path.write_text(json.dumps(recorded, indent=1) + "\n", encoding="utf-8")
    print(
        f"  {result.n_frames} frames in {result.wall_s:.0f} s "
        f"({recorded['render_s_per_frame']:.3f} s per frame, rendering and encoding)",
        flush=True,
    )
    return run_dir, {**recorded, "reused": False}


# ---------------------------------------------------------------------------------------------
# Measurements
# ---------------------------------------------------------------------------------------------


def decode_only(video: Path, to_bgr: bool = False) -> dict:
    """Decode every frame with PyAV (thread type AUTO); with ``to_bgr`` also convert each to a
    BGR array. Wall time in seconds."""
    import av

    try:
        with av.open(str(video)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            started = time.perf_counter()
            n = 0
            for frame in container.decode(video=0):
                if to_bgr:
                    frame.to_ndarray(format="bgr24")
                n += 1
            wall = time.perf_counter() - started
    except (av.error.FFmpegError, OSError, IndexError) as exc:
        raise BenchError(f"cannot decode {video}: {exc}") from exc
    return {"wall_s": round(wall, 3), "frames": n, "fps": round(n / wall, 1) if wall > 0 else None}


def pavement_command() -> list[str]:
    """The installed console script beside this interpreter, else the CLI module through it."""
    script = Path(sys.executable).with_name("pavement")
    if script.is_file():
        return [str(script)]
    return [
        sys.executable,
        "-c",
        "import sys; from pipelines.cli import main; sys.argv[0] = 'pavement'; main()",
    ]


def measure(cmd: list[str], log_path: Path, timeout_s: float) -> dict:
    """Run ``cmd`` under a fresh wrapper interpreter: wall time (s), peak RSS (MiB: the largest of
    its processes), CPU time (s, all of them), exit status; its output goes to ``log_path``."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", _WRAPPER, str(log_path), *cmd],
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"{' '.join(cmd)} ran past --timeout-s {timeout_s:g}; see {log_path}") from exc
    try:
        m = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError) as exc:
        raise BenchError(f"the measuring wrapper failed: {done.stderr.strip()[-500:]}") from exc
    return {
        "returncode": m["returncode"],
        "wall_s": round(m["wall_s"], 2),
        "peak_rss_mib": round(m["peak_rss_kib"] / 1024, 1),
        "cpu_s": round(m["user_s"] + m["sys_s"], 1),
        "log": str(log_path),
    }


def run_process(run_dir: Path, out_dir: Path, timeout_s: float, vehicle: Path | None = None) -> dict:
    """``pavement process RUN --out OUT [--vehicle V]`` measured; its report.json stage times added."""
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    cmd = [*pavement_command(), "process", str(run_dir), "--out", str(out_dir)]
    if vehicle is not None:
        cmd += ["--vehicle", str(vehicle)]
    log_path = out_dir.parent / f"{out_dir.name}.log"
    print(f"timing: pavement process {run_dir} --out {out_dir}", flush=True)
    m = measure(cmd, log_path, timeout_s)
    m["command"] = " ".join(["pavement", *cmd[len(pavement_command()) :]])
    if m["returncode"] != 0:
        tail = log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-5:]
        raise BenchError(
            f"pavement process {run_dir} exited with {m['returncode']}: "
            + " | ".join(tail)
            + f" (log: {log_path})"
        )
    report = out_dir / "report.json"
    if report.is_file():
        rep = json.loads(report.read_text(encoding="utf-8"))
        m["stage_s"] = rep.get("stage_s", {})
        m["in_process_wall_s"] = rep.get("wall_s")
        m["planned_frames"] = rep.get("planned_frames")
    print(f"  {m['wall_s']:.1f} s, peak RSS {m['peak_rss_mib']:.0f} MiB", flush=True)
    return m


# ---------------------------------------------------------------------------------------------
# Accuracy against truth.json
# ---------------------------------------------------------------------------------------------


def _key(route_no: object, direction: object, kp_km: object, offset_m: object) -> tuple:
    return str(route_no), str(direction), round(float(kp_km), 3), round(float(offset_m), 1)


def _number(value: object) -> float | None:
    if value is None or value == "":
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def compare_segments(segments_csv: Path, truth_json: Path) -> dict:
    """Per 100 m segment, the job's ``segments.csv`` against ``truth.json``, matched on route,
    direction, 距離標 and 追加距離. Full segments only (as in eval/iri.py): a partial one covers
    50 m or less, and the MLIT indicators are defined per full segment."""
    if not truth_json.is_file():
        return {"note": f"no {truth_json.name}: not a synthetic run, nothing to compare"}
    truth = {
        _key(t["route_no"], t["direction"], t["kp_km"], t["offset_m"]): t
        for t in json.loads(truth_json.read_text(encoding="utf-8"))["segments"]
    }
    with segments_csv.open(encoding="utf-8-sig", newline="") as f:
        rows = {_key(r["route_no"], r["direction"], r["kp_km"], r["offset_m"]): r for r in csv.DictReader(f)}
    matched = [k for k in truth if k in rows]
    full = [k for k in matched if not truth[k]["partial"] and rows[k]["partial"].lower() != "true"]
    out: dict = {
        "truth_segments": len(truth),
        "process_segments": len(rows),
        "matched": len(matched),
        "full_segments_scored": len(full),
        "partial_excluded": len(matched) - len(full),
        "truth_only": sorted(f"{k[2]:g}+{k[3]:g}" for k in truth if k not in rows),
        "process_only": sorted(f"{k[2]:g}+{k[3]:g}" for k in rows if k not in truth),
        "indicators": {},
    }
    for name, label in INDICATORS:
        pairs = [(_number(truth[k].get(name)), _number(rows[k].get(name))) for k in full]
        pairs = [(t, p) for t, p in pairs if t is not None]
        blank = sum(p is None for _, p in pairs)
        errors = [p - t for t, p in pairs if p is not None]
        entry: dict = {"label": label, "n": len(errors), "blank": blank}
        if errors:
            entry |= {
                "mae": round(statistics.fmean(abs(e) for e in errors), 3),
                "bias": round(statistics.fmean(errors), 3),
                "max_abs": round(max(abs(e) for e in errors), 3),
            }
        else:
            entry["result"] = f"not measured ({blank} blank)" if blank else "no segment to score"
        out["indicators"][name] = entry
    cats = [(truth[k].get("category") or None, rows[k].get("category") or None) for k in full]
    cats = [(t, p) for t, p in cats if t is not None]
    blank = sum(p is None for _, p in cats)
    scored = [(t, p) for t, p in cats if p is not None]
    entry = {"label": "診断区分 agreement", "n": len(scored), "blank": blank}
    if scored:
        agree = sum(t == p for t, p in scored)
        entry |= {"agree": agree, "agreement_pct": round(100 * agree / len(scored), 1)}
    else:
        entry["result"] = f"not measured ({blank} blank)" if blank else "no segment to score"
    out["indicators"]["category"] = entry
    coverage = [c for c in (_number(rows[k].get("coverage_pct")) for k in full) if c is not None]
    out["coverage_pct"] = (
        {"n": len(coverage), "mean": round(statistics.fmean(coverage), 1), "min": round(min(coverage), 1)}
        if coverage
        else {"n": 0}
    )
    return out


# ---------------------------------------------------------------------------------------------
# Machine and versions
# ---------------------------------------------------------------------------------------------


def versions() -> dict:
    return {
        **package_versions(("av", "onnxruntime", "numpy", "opencv-python-headless")),
        "ffmpeg_libavcodec": libavcodec_version(),
        "pavement_commit": pavement_commit(),
    }


# ---------------------------------------------------------------------------------------------
# The benchmark
# ---------------------------------------------------------------------------------------------


def speed_run(spec: RunSpec, run_dir: Path, run_info: dict, work: Path, args: argparse.Namespace) -> dict:
    """Decode-only before and after, the job in between, one decode+BGR pass; the ratio."""
    video = run_dir / "video.mp4"
    before = [decode_only(video) for _ in range(args.decode_repeats)]
    print(f"decode-only before: {[d['wall_s'] for d in before]} s", flush=True)
    proc = run_process(run_dir, work / f"out_{run_dir.name}", args.timeout_s, args.vehicle)
    after = [decode_only(video) for _ in range(args.decode_repeats)]
    print(f"decode-only after: {[d['wall_s'] for d in after]} s", flush=True)
    bgr = decode_only(video, to_bgr=True) if args.bgr_pass else None
    walls = [d["wall_s"] for d in before + after]
    median = statistics.median(walls)
    ratio = proc["wall_s"] / median if median > 0 else None
    return {
        "run": {
            "folder": str(run_dir),
            **asdict(spec),
            **{k: v for k, v in run_info.items() if k != "params"},
        },
        "decode_only_before": before,
        "decode_only_after": after,
        "decode_only_median_s": round(median, 3),
        "decode_to_bgr_info": bgr,
        "process": proc,
        "ratio": None if ratio is None else round(ratio, 3),
        "ratio_range": [round(proc["wall_s"] / max(walls), 3), round(proc["wall_s"] / min(walls), 3)]
        if min(walls) > 0
        else None,
        "ratio_within_limit": None if ratio is None else ratio <= RATIO_LIMIT,
        "ratio_within_target": None if ratio is None else ratio <= RATIO_TARGET,
        "accuracy": compare_segments(work / f"out_{run_dir.name}" / "segments.csv", run_dir / "truth.json"),
    }


def _size(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"{text!r} is not WIDTHxHEIGHT, e.g. 1920x1080")
    return int(m[1]), int(m[2])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--length-m", type=float, default=2000.0, help="Length of the timed run (m).")
    parser.add_argument("--size", type=_size, default=(1920, 1080), help="Video size of the timed run.")
    parser.add_argument("--fps", type=float, default=30.0, help="Frames per second of every run.")
    parser.add_argument(
        "--render-scale", type=float, default=0.25, help="Rendered fraction of the timed run's video size."
    )
    parser.add_argument("--seed", type=int, default=0, help="Seed of the synthetic runs.")
    parser.add_argument(
        "--run", type=Path, help="Time this existing run folder instead of a synthetic one (no synthesis)."
    )
    parser.add_argument(
        "--rss-lengths",
        type=float,
        nargs="*",
        default=[1000.0, 4000.0],
        help="Lengths (m) of the runs whose peak RSS is compared; none to skip.",
    )
    parser.add_argument("--rss-size", type=_size, default=(1280, 720), help="Video size of the RSS runs.")
    parser.add_argument(
        "--rss-render-scale", type=float, default=0.25, help="Rendered fraction of the RSS runs' size."
    )
    parser.add_argument(
        "--rss-depth-every-m",
        type=float,
        default=20.0,
        help="The RSS runs carry a phone depth map every this many metres (rut depth scored); 0: none.",
    )
    parser.add_argument(
        "--vehicle",
        type=Path,
        help="vehicle.json for every job's IRI (default: the synthetic car's gain from "
        "eval/results/iri.json, as `pavement calibrate-vehicle` would give it).",
    )
    parser.add_argument(
        "--decode-repeats", type=int, default=2, help="Decode-only passes before and again after the job."
    )
    parser.add_argument(
        "--no-bgr-pass",
        dest="bgr_pass",
        action="store_false",
        help="Skip the extra decode pass that converts frames to BGR (for information only).",
    )
    parser.add_argument(
        "--work",
        type=Path,
        default=Path("/tmp/pavement-bench"),
        help="Folder for the runs and outputs (outside the repository; runs are reused).",
    )
    parser.add_argument("--results", type=Path, default=REPO / "bench" / "results", help="Where to write.")
    parser.add_argument(
        "--timeout-s", type=float, default=7200.0, help="Give up on one pavement process after this long."
    )
    args = parser.parse_args(argv)
    if args.decode_repeats < 1:
        parser.error("--decode-repeats must be at least 1")
    return args


def synthetic_vehicle(work: Path) -> Path | None:
    """vehicle.json with the synthetic car's IRI gain, calibrated by eval/iri.py on its own seed (a
    real car is calibrated once with `pavement calibrate-vehicle`); None without that result."""
    result = REPO / "eval" / "results" / "iri.json"
    try:
        d = json.loads(result.read_text(encoding="utf-8"))
        gain = float(d["gain"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    path = work / "vehicle_synthetic.json"
    note = f"gain of the synthetic car, calibrated on seed {d.get('calibrate_seed')} by eval/iri.py"
    path.write_text(json.dumps({"gain": gain, "n_segments": 0, "note": note}), encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load_start = os.getloadavg()[0]
    started = time.perf_counter()
    work = args.work.resolve()
    try:
        work.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(
            f"error: cannot create the work folder {work}: {exc}; choose another with --work", file=sys.stderr
        )
        return 1
    if args.vehicle is None:
        args.vehicle = synthetic_vehicle(work)
    errors: list[str] = []
    out: dict = {
        "issue": "7 item 4: processing time / decode-only time, peak RSS vs run length, accuracy vs truth",
        "checks": {
            "ratio_limit": RATIO_LIMIT,
            "ratio_target": RATIO_TARGET,
            "rss_tolerance_pct": round(100 * RSS_TOLERANCE),
        },
        "machine": machine(),
        "versions": versions(),
        "load_1min_at_start": round(load_start, 2),
        "notes": [
            DECODE_NOTE,
            "process = wall time of `pavement process RUN --out OUT` as a subprocess: interpreter start, "
            "imports and writing every export included",
            "peak RSS = ru_maxrss of the job's process (the largest of its processes, if it started any), "
            "read by a fresh wrapper interpreter per command so that the maxima of different commands "
            "never mix",
            "synthetic frames are rendered at --render-scale of the video size and upscaled: crack ratio, "
            "rut depth and potholes are scored on blurrier images than a phone's (IRI, from the "
            "accelerometer, is unaffected), and the video's bitrate is lower than a phone's, so decoding "
            "is at the fast end and the ratio if anything pessimistic. The crack ratio suffers most (the "
            "quality gate rejects most blurred 720p frames, hence the low coverage; the segmenter misses "
            "fine cracks); its accuracy on fully rendered runs is in eval/results/crack_ratio.md, and the "
            "区分 agreement here follows the crack ratio",
            f"IRI with --vehicle {args.vehicle}: the synthetic car's gain from eval/results/iri.json "
            "(a real car is calibrated once with `pavement calibrate-vehicle`; uncalibrated, the default "
            "model reads low)"
            if args.vehicle
            else "IRI from the uncalibrated default vehicle model (it reads low on the synthetic car)",
            "rut depth is scored on the runs with phone depth maps (the RSS runs, --rss-depth-every-m); the "
            "timed run has none, as most phones, and its rut depth is blank",
        ],
        "command": "python bench/process_speed.py " + " ".join(sys.argv[1:] if argv is None else argv),
    }

    main_run = None
    try:
        if args.run is not None:
            run_dir = args.run.resolve()
            if not (run_dir / "video.mp4").is_file():
                raise BenchError(f"--run {run_dir} has no video.mp4; give a run folder (docs/run_folder.md)")
            spec = RunSpec(0.0, 0, 0, 0.0, 1.0, -1)
            main_run = speed_run(spec, run_dir, {"given_run": True}, work, args)
        else:
            spec = RunSpec(args.length_m, *args.size, args.fps, args.render_scale, args.seed)
            run_dir, info = ensure_run(spec, work)
            main_run = speed_run(spec, run_dir, info, work, args)
        print(
            f"ratio process / decode-only: {main_run['ratio']} "
            f"(range {main_run['ratio_range']}; limit {RATIO_LIMIT}, target {RATIO_TARGET})",
            flush=True,
        )
    except BenchError as exc:
        errors.append(str(exc))
        print(f"error: {exc}", file=sys.stderr, flush=True)
    out["speed"] = main_run

    rss_runs = []
    for length in args.rss_lengths:
        spec = RunSpec(
            length,
            *args.rss_size,
            args.fps,
            args.rss_render_scale,
            args.seed,
            depth_every_m=args.rss_depth_every_m,
        )
        try:
            run_dir, info = ensure_run(spec, work)
            proc = run_process(run_dir, work / f"out_{run_dir.name}", args.timeout_s, args.vehicle)
            decode = decode_only(run_dir / "video.mp4")
            rss_runs.append(
                {
                    "run": {
                        "folder": str(run_dir),
                        **asdict(spec),
                        **{k: v for k, v in info.items() if k != "params"},
                    },
                    "process": proc,
                    "decode_only": decode,
                    "ratio": round(proc["wall_s"] / decode["wall_s"], 3) if decode["wall_s"] > 0 else None,
                    "accuracy": compare_segments(
                        work / f"out_{run_dir.name}" / "segments.csv", run_dir / "truth.json"
                    ),
                }
            )
        except BenchError as exc:
            errors.append(str(exc))
            print(f"error: {exc}", file=sys.stderr, flush=True)
    rss: dict = {"runs": rss_runs}
    if len(rss_runs) >= 2:
        short = min(rss_runs, key=lambda r: r["run"]["length_m"])
        long = max(rss_runs, key=lambda r: r["run"]["length_m"])
        ratio = long["process"]["peak_rss_mib"] / short["process"]["peak_rss_mib"]
        rss |= {
            "longest_over_shortest": round(ratio, 3),
            "within_tolerance": abs(ratio - 1) <= RSS_TOLERANCE,
        }
        print(
            f"peak RSS {long['run']['length_m']:g} m / {short['run']['length_m']:g} m: {ratio:.3f} "
            f"(tolerance +-{RSS_TOLERANCE:.0%})",
            flush=True,
        )
    out["rss"] = rss
    out["load_1min_at_end"] = round(os.getloadavg()[0], 2)
    out["bench_wall_s"] = round(time.perf_counter() - started, 1)
    out["errors"] = errors
    try:
        args.results.mkdir(parents=True, exist_ok=True)
        json_path = args.results / "process_speed.json"
        json_path.write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        (args.results / "process_speed.md").write_text(markdown(out), encoding="utf-8")
    except OSError as exc:
        print(f"error: cannot write the results to {args.results}: {exc}", file=sys.stderr)
        return 1
    print(f"results: {json_path} and process_speed.md ({out['bench_wall_s']:.0f} s in all)", flush=True)
    return 1 if errors else 0


# ---------------------------------------------------------------------------------------------
# Markdown
# ---------------------------------------------------------------------------------------------


def _run_label(run: dict) -> str:
    if run.get("given_run"):
        return f"`{run['folder']}` (given)"
    return (
        f"{run['length_m']:g} m, {run['width_px']}x{run['height_px']} at {run['fps']:g} fps, "
        f"{run.get('n_frames', '?')} frames, rendered at {run['render_scale']:g} x size and upscaled"
    )


def _accuracy_rows(label: str, acc: dict) -> list[str]:
    if "indicators" not in acc:
        return [f"| {label} | {acc.get('note', '')} | | | |"]
    rows = []
    for name, e in acc["indicators"].items():
        if "result" in e:
            rows.append(f"| {label} | {e['label']} | {e['result']} | | |")
        else:
            result = (
                f"{e['agreement_pct']} % ({e['agree']}/{e['n']})"
                if name == "category"
                else f"MAE {e['mae']} (bias {e['bias']:+}, max {e['max_abs']})"
            )
            rows.append(f"| {label} | {e['label']} | {result} | {e['n']} | {e['blank']} |")
    cov = acc.get("coverage_pct", {})
    if cov.get("n"):
        rows.append(
            f"| {label} | crack-ratio coverage (%) | mean {cov['mean']}, min {cov['min']} | {cov['n']} | |"
        )
    return rows


def markdown(out: dict) -> str:
    m, v = out["machine"], out["versions"]
    lines = [
        "# `pavement process` speed and memory (issue 7 item 4)",
        "",
        f"Machine: {m['cpu']}, nproc {m['nproc']} ({', '.join(m['cpu_flags'])}), {m['memory_gib']} GiB, "
        f"Python {m['python']}; PyAV {v.get('av')} (libavcodec {v.get('ffmpeg_libavcodec')}), "
        f"ONNX Runtime {v.get('onnxruntime')}; pavement {v.get('pavement_commit')}. "
        f"Load average {out['load_1min_at_start']} at the start, {out['load_1min_at_end']} at the end "
        "(the machine is shared: compare ratios measured in one run).",
        "",
        f"Command: `{out['command']}` ({out['bench_wall_s']:.0f} s in all).",
        "",
    ]
    s = out.get("speed")
    if s:
        p = s["process"]
        before = ", ".join(str(d["wall_s"]) for d in s["decode_only_before"])
        after = ", ".join(str(d["wall_s"]) for d in s["decode_only_after"])
        walls = [d["wall_s"] for d in s["decode_only_before"] + s["decode_only_after"]]
        lo, hi = s["ratio_range"] or (None, None)
        verdict = (
            "within the target" if s["ratio_within_target"] else
            "within the limit, above the target" if s["ratio_within_limit"] else "above the limit"
        )  # fmt: skip
        lines += [
            "## Processing time / decode-only time",
            "",
            f"Run: {_run_label(s['run'])}.",
            "",
            "| what | wall s | notes |",
            "|---|---|---|",
            f"| decode-only, before the job | {before} | {s['decode_only_before'][0]['frames']} frames |",
            f"| `pavement process` | {p['wall_s']} | CPU {p['cpu_s']} s, "
            f"peak RSS {p['peak_rss_mib']:.0f} MiB; stages {p.get('stage_s', {})} |",
            f"| decode-only, after the job | {after} | |",
        ]
        if s["decode_to_bgr_info"]:
            lines.append(f"| decode + convert to BGR (information) | {s['decode_to_bgr_info']['wall_s']} | |")
        lines += [
            "",
            f"**Ratio {s['ratio']}** (process / median decode-only {s['decode_only_median_s']} s; "
            f"{lo}-{hi} over the decode passes of {min(walls)}-{max(walls)} s): "
            f"{verdict} (limit {RATIO_LIMIT}, target {RATIO_TARGET}).",
            "",
            f"{DECODE_NOTE[0].upper()}{DECODE_NOTE[1:]}.",
            "",
        ]
    rss = out["rss"]
    if rss["runs"]:
        lines += [
            "## Peak RSS against run length",
            "",
            "| run | process wall s | peak RSS MiB | process / decode-only |",
            "|---|---|---|---|",
        ]
        for r in rss["runs"]:
            proc = r["process"]
            lines.append(
                f"| {_run_label(r['run'])} | {proc['wall_s']} | {proc['peak_rss_mib']:.0f} | {r['ratio']} |"
            )
        if "longest_over_shortest" in rss:
            ok = "within" if rss["within_tolerance"] else "outside"
            tolerance = f"+-{round(100 * RSS_TOLERANCE)} %"
            lines += ["", f"Longest / shortest: **{rss['longest_over_shortest']}** ({ok} {tolerance})."]
        lines.append("")
    lines += [
        "## Accuracy against truth.json (full 100 m segments)",
        "",
        "| run | indicator | result | n | blank |",
        "|---|---|---|---|---|",
    ]
    if s:
        lines += _accuracy_rows("timed run", s["accuracy"])
    for r in rss["runs"]:
        lines += _accuracy_rows(f"{r['run']['length_m']:g} m", r["accuracy"])
    lines += ["", "Notes:", *[f"- {n}" for n in out["notes"][1:]]]
    if out["errors"]:
        lines += ["", "Errors:", *[f"- {e}" for e in out["errors"]]]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
