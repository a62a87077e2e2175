"""``pavement batch``: how well many runs share one machine, what Ray costs, where a run's time goes.

Issue 9 item 4. On N synthetic runs (default 3 x 200 m, 1280x720 at 30 fps, rendered at 0.25 x
size and upscaled) the script measures, in one invocation and in this order:

1. each run alone: ``pavement process RUN`` as a subprocess, one after the other (the single-run
   times, and per-stage seconds from each run's ``report.json`` ``stage_s``);
2. ``pavement batch --engine local --workers W`` on all runs, for each W of ``--workers``
   (default 1 and the number of cores): batch wall time / sum of the single-run times;
3. the start and stop of a local Ray cluster alone (``ray.init`` + ``ray.shutdown``), then
   ``pavement batch --engine ray --workers W`` (W = the cores): the Ray overhead per run, i.e.
   (Ray batch - local batch with the same W) / N, with and without the cluster's start, relative
   to one run's processing time and to a 1 km run's (a 1 km run takes 1000 / length_m times as long:
   processing time grows linearly with the video); with ``--detector-actors A``, also
   ``pavement batch --engine ray --detector-actors A`` (the runs share A actors that hold the damage
   detector, on the CPUs here): its wall time against the plain Ray batch's;
4. that every batch wrote the same segments as the single runs.

Every time is a subprocess's wall time, so each includes Python's start and imports, as a user
would see them. Runs are kept in ``--work`` (outside the repository), with their parameters in
``<run>.json``, and reused by later invocations with the same parameters.

    python bench/batch_scaling.py      # writes bench/results/batch_scaling.json and .md

On the 2-core machine: about 100 s of synthesis per run the first time, then 4-6 min.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/common.py, run or imported by a test
import common
from common import package_versions, pavement_commit

REPO = Path(__file__).resolve().parents[1]
PAVEMENT = Path(sys.executable).with_name("pavement")
STAGES = ("video", "geotag", "iri", "rut", "cracks", "album", "export")


class BenchError(RuntimeError):
    pass


def sh(cmd: list[str], timeout_s: float = 3600) -> tuple[float, subprocess.CompletedProcess]:
    """Run ``cmd``; its wall time in seconds and the finished process."""
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    return time.perf_counter() - started, done


def ensure_runs(args: argparse.Namespace) -> list[tuple[Path, dict]]:
    """The N run folders in ``args.work``, synthesised unless ``<run>.json`` records the same
    parameters."""
    runs = []
    for seed in range(args.seed, args.seed + args.runs):
        params = {
            "length_m": args.length_m,
            "size": args.size,
            "fps": args.fps,
            "render_scale": args.render_scale,
            "seed": seed,
        }
        name = f"run_{args.length_m:g}m_{args.size}_{args.fps:g}fps_rs{args.render_scale:g}_seed{seed}"
        run_dir, meta_path = args.work / name, args.work / f"{name}.json"
        if meta_path.is_file() and json.loads(meta_path.read_text()).get("params") == params:
            print(f"reusing {run_dir}", flush=True)
            runs.append((run_dir, json.loads(meta_path.read_text())))
            continue
        shutil.rmtree(run_dir, ignore_errors=True)
        cmd = [
            str(PAVEMENT),
            "synth",
            "--out",
            str(run_dir),
            "--length-m",
            f"{args.length_m:g}",
            "--size",
            args.size,
            "--fps",
            f"{args.fps:g}",
            "--seed",
            str(seed),
            "--render-scale",
            f"{args.render_scale:g}",
        ]
        print("synthesising:", " ".join(cmd), flush=True)
        wall_s, done = sh(cmd)
        if done.returncode != 0:
            raise BenchError(f"synth failed: {done.stderr[-2000:]}")
        report = json.loads((run_dir / "synth_report.json").read_text())
        meta = {"params": params, "synth_wall_s": round(wall_s, 1), "synth_report": report}
        meta_path.write_text(json.dumps(meta, indent=1) + "\n")
        runs.append((run_dir, meta))
    return runs


def segments(out_dir: Path) -> dict:
    features = json.loads((out_dir / "segments.geojson").read_text(encoding="utf-8"))["features"]
    return {f["properties"]["segment_id"]: (f["properties"], f["geometry"]) for f in features}


def video_facts(report: dict) -> tuple[int, float]:
    """(frames, video seconds) from a run's report.json."""
    v = report["video"]
    return int(v["frames"]), v["frames"] / v["fps"]


def single_runs(runs: list[tuple[Path, dict]], work: Path) -> list[dict]:
    out = []
    for run_dir, _ in runs:
        dest = work / "single" / run_dir.name
        shutil.rmtree(dest, ignore_errors=True)
        wall_s, done = sh([str(PAVEMENT), "process", str(run_dir), "--out", str(dest)])
        if done.returncode != 0:
            raise BenchError(f"pavement process {run_dir} failed: {done.stderr[-2000:]}")
        report = json.loads((dest / "report.json").read_text())
        frames, video_s = video_facts(report)
        out.append(
            {
                "run": run_dir.name,
                "wall_s": round(wall_s, 2),
                "job_wall_s": report["wall_s"],
                "stage_s": report["stage_s"],
                "frames": frames,
                "video_s": round(video_s, 2),
                "distance_m": report["video"]["distance_by_video_m"],
                "size": f"{report['video']['width_px']}x{report['video']['height_px']}",
            }
        )
        print(f"single {run_dir.name}: {wall_s:.1f} s", flush=True)
    return out


def batch(runs: list[tuple[Path, dict]], work: Path, engine: str, workers: int, actors: int = 0) -> dict:
    dest = (
        work / f"batch_{engine}_w{workers}" if not actors else work / f"batch_{engine}_w{workers}_a{actors}"
    )
    shutil.rmtree(dest, ignore_errors=True)
    cmd = [str(PAVEMENT), "batch", *(str(r) for r, _ in runs), "--out", str(dest)]
    cmd += ["--detector-actors", str(actors)] if actors else []
    wall_s, done = sh([*cmd, "--engine", engine, "--workers", str(workers)])
    if done.returncode != 0:
        raise BenchError(
            f"pavement batch --engine {engine} failed: {done.stdout[-1500:]} {done.stderr[-1500:]}"
        )
    report = json.loads((dest / "batch_report.json").read_text())
    print(
        f"batch {engine} x{workers}{f' + {actors} detector actors' if actors else ''}: {wall_s:.1f} s",
        flush=True,
    )
    return {
        "engine": engine,
        "workers": workers,
        "detector_actors": actors,
        "wall_s": round(wall_s, 2),
        "run_wall_s": [r["wall_s"] for r in report["runs"]],
        "out": dest,
    }


def ray_start_stop_s(workers: int) -> float:
    code = (
        "import time, ray; t = time.perf_counter(); "
        f"ray.init(num_cpus={workers}, include_dashboard=False, object_store_memory=256 * 1024**2); "
        "ray.shutdown(); print(time.perf_counter() - t)"
    )
    _, done = sh([sys.executable, "-c", code], timeout_s=600)
    if done.returncode != 0:
        raise BenchError(f"ray.init failed: {done.stderr[-2000:]}")
    return float(done.stdout.strip().splitlines()[-1])


def stage_throughput(singles: list[dict]) -> list[dict]:
    """Per stage over all single runs: frames/s, x real time, seconds per km."""
    frames = sum(s["frames"] for s in singles)
    video_s = sum(s["video_s"] for s in singles)
    km = sum(s["distance_m"] for s in singles) / 1000
    rows = []
    for stage in [*STAGES, "job"]:
        secs = sum(s["job_wall_s"] if stage == "job" else s["stage_s"].get(stage, 0.0) for s in singles)
        rows.append(
            {
                "stage": stage,
                "s": round(secs, 2),
                "frames_per_s": round(frames / secs, 1) if secs > 0 else None,
                "x_real_time": round(video_s / secs, 2) if secs > 0 else None,
                "s_per_km": round(secs / km, 2),
            }
        )
    return rows


def machine() -> dict:
    return {
        **common.machine(),
        "gpu": None,
        "versions": package_versions(("ray", "onnxruntime", "av")),
        "pavement_commit": pavement_commit(),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=3, help="number of runs N")
    p.add_argument("--length-m", type=float, default=200.0)
    p.add_argument("--size", default="1280x720")
    p.add_argument("--fps", type=float, default=30.0)
    p.add_argument("--render-scale", type=float, default=0.25)
    p.add_argument("--seed", type=int, default=901, help="seed of the first run (then +1, +2, ...)")
    p.add_argument("--workers", default=None, help="comma-separated worker counts (default: 1,cores)")
    p.add_argument("--no-ray", action="store_true", help="skip the Ray engine")
    p.add_argument(
        "--detector-actors",
        type=int,
        default=0,
        help="also time the Ray engine with this many detector actors (0: not)",
    )
    p.add_argument("--repeat", type=int, default=2, help="repetitions of the whole measurement")
    p.add_argument("--work", type=Path, default=Path("/tmp/pavement-batch-bench"))
    p.add_argument("--results", type=Path, default=REPO / "bench" / "results")
    return p.parse_args(argv)


def measure_once(runs: list[tuple[Path, dict]], args: argparse.Namespace, workers: list[int]) -> dict:
    """Single runs, then the local batches, then (unless --no-ray) the Ray cluster's start and a
    Ray batch with the most workers: one repetition."""
    singles = single_runs(runs, args.work)
    sum_single = sum(s["wall_s"] for s in singles)
    mean_job = sum(s["job_wall_s"] for s in singles) / len(singles)
    km_factor = 1000 / (sum(s["distance_m"] for s in singles) / len(singles))
    batches = [batch(runs, args.work, "local", w) for w in workers]
    if not args.no_ray:
        w = max(workers)
        init_s = ray_start_stop_s(w)
        rb = batch(runs, args.work, "ray", w)
        local = next(b for b in batches if b["workers"] == w)
        per_run = (rb["wall_s"] - local["wall_s"]) / len(runs)
        per_run_warm = (rb["wall_s"] - init_s - local["wall_s"]) / len(runs)
        batches.append(
            {
                **rb,
                "cluster_start_stop_s": round(init_s, 2),
                "overhead_per_run_s": round(per_run, 2),
                "overhead_per_run_s_cluster_running": round(per_run_warm, 2),
                "overhead_vs_run_pct": round(100 * per_run / mean_job, 1),
                "overhead_vs_1km_run_pct": round(100 * per_run / (mean_job * km_factor), 1),
                "overhead_vs_1km_run_pct_cluster_running": round(
                    100 * per_run_warm / (mean_job * km_factor), 1
                ),
            }
        )
        if args.detector_actors:
            ab = batch(runs, args.work, "ray", w, args.detector_actors)
            ab["vs_ray_per_run_s"] = round((ab["wall_s"] - rb["wall_s"]) / len(runs), 2)
            batches.append(ab)
    same = True
    for b in batches:
        b["batch_over_sum_single"] = round(b["wall_s"] / sum_single, 3)
        for (run_dir, _), single in zip(runs, singles, strict=True):
            same &= segments(b["out"] / run_dir.name) == segments(args.work / "single" / single["run"])
        b["out"] = str(b["out"])
    return {
        "single": singles,
        "sum_single_wall_s": round(sum_single, 2),
        "mean_job_wall_s": round(mean_job, 2),
        "km_factor": km_factor,
        "batches": batches,
        "same_segments": same,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    cores = len(os.sched_getaffinity(0))
    workers = [int(w) for w in args.workers.split(",")] if args.workers else sorted({1, cores})
    started = time.perf_counter()
    load_start = os.getloadavg()[0]
    runs = ensure_runs(args)
    reps = []
    for n in range(args.repeat):
        print(f"repetition {n + 1} of {args.repeat}", flush=True)
        reps.append(measure_once(runs, args, workers))
    singles = [s for rep in reps for s in rep["single"]]
    km_factor = reps[0]["km_factor"]
    mean_job = round(statistics.median(r["mean_job_wall_s"] for r in reps), 2)
    summary = []
    for n, b in enumerate(reps[0]["batches"]):
        row = {"engine": b["engine"], "workers": b["workers"], "detector_actors": b["detector_actors"]}
        for key in (
            "batch_over_sum_single",
            "overhead_per_run_s",
            "overhead_vs_1km_run_pct",
            "vs_ray_per_run_s",
        ):
            if key in b:
                row[key] = round(statistics.median(rep["batches"][n][key] for rep in reps), 3)
        summary.append(row)
    out = {
        "command": "python bench/batch_scaling.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": machine(),
        "load_average_start_end": [round(load_start, 2), round(os.getloadavg()[0], 2)],
        "runs": [{"run": r.name, **m["params"]} for r, m in runs],
        "repetitions": reps,
        "median": summary,
        "mean_job_wall_s": mean_job,
        "per_km": {
            "job_wall_s": round(mean_job * km_factor, 1),
            "video_s": round(sum(s["video_s"] for s in reps[0]["single"]) / len(runs) * km_factor, 1),
        },
        "stages": stage_throughput(singles),
        "same_segments_everywhere": all(r["same_segments"] for r in reps),
        "bench_wall_s": round(time.perf_counter() - started, 1),
    }
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "batch_scaling.json").write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n")
    (args.results / "batch_scaling.md").write_text(markdown(out))
    print(markdown(out))
    return 0 if out["same_segments_everywhere"] else 1


def markdown(out: dict) -> str:
    m, reps = out["machine"], out["repetitions"]
    first = reps[0]["single"]
    lines = [
        "# `pavement batch` scaling, Ray overhead, per-stage throughput (issue 9 item 4)",
        "",
        f"Machine: {m['cpu']}, nproc {m['nproc']}, {m['memory_gib']} GiB, no GPU, Python {m['python']}; "
        f"Ray {m['versions']['ray']}, ONNX Runtime {m['versions']['onnxruntime']}, "
        f"PyAV {m['versions']['av']}; pavement {m['pavement_commit']}. Load average "
        f"{out['load_average_start_end'][0]} at the start, {out['load_average_start_end'][1]} at the end: "
        "the machine was shared with other jobs, so each figure is measured in "
        f"{len(reps)} repetitions and the median given; compare figures of one repetition.",
        "",
        f"Command: `{out['command'].strip()}` ({out['bench_wall_s']:.0f} s in all).",
        "",
        "Runs: "
        + ", ".join(
            f"{r['run']} ({s['distance_m']:.0f} m by video, {s['size']}, {s['frames']} frames, "
            f"{s['video_s']:.1f} s)"
            for r, s in zip(out["runs"], first, strict=True)
        )
        + ". Every time below is a subprocess's wall time (Python start and imports included).",
        "",
        "## Batch time / sum of single-run times",
        "",
        "| rep. | engine | workers | batch wall s | sum of single runs s | batch / sum | per-run job s |",
        "|---|---|---|---|---|---|---|",
    ]
    for n, rep in enumerate(reps, 1):
        for b in rep["batches"]:
            lines.append(
                f"| {n} | {_engine(b)} | {b['workers']} | {b['wall_s']} | {rep['sum_single_wall_s']} "
                f"| {b['batch_over_sum_single']:.3f} | {', '.join(f'{x:.1f}' for x in b['run_wall_s'])} |"
            )
    lines += ["", "Median batch / sum of singles: "]
    lines[-1] += "; ".join(
        f"{_engine(row)} x{row['workers']} **{row['batch_over_sum_single']:.3f}**" for row in out["median"]
    )
    ray = [b for rep in reps for b in rep["batches"] if b["engine"] == "ray" and not b["detector_actors"]]
    if ray:
        med = next(row for row in out["median"] if row["engine"] == "ray" and not row["detector_actors"])
        lines += [
            "",
            "## Ray overhead per run",
            "",
            "(Ray batch - local batch, same workers) / runs, where the Ray batch includes starting and "
            "stopping its local cluster. Per repetition: "
            + "; ".join(
                f"{b['overhead_per_run_s']} s per run = {b['overhead_vs_run_pct']} % of one of these runs, "
                f"{b['overhead_vs_1km_run_pct']} % of a 1 km run (cluster start + stop alone "
                f"{b['cluster_start_stop_s']} s; without it "
                f"{b['overhead_per_run_s_cluster_running']} s per run)"
                for b in ray
            )
            + ".",
            "",
            f"Median: **{med['overhead_per_run_s']} s per run, {med['overhead_vs_1km_run_pct']} % of a 1 km "
            f"run's processing** ({out['per_km']['job_wall_s']} s; processing grows linearly with length). "
            "Differences within the noise of the shared machine read as 'no measurable overhead'.",
        ]
    actors = [b for rep in reps for b in rep["batches"] if b["detector_actors"]]
    if actors:
        med = next(row for row in out["median"] if row["detector_actors"])
        lines += [
            "",
            "## Ray with detector actors",
            "",
            f"The same Ray batch as `{_engine(actors[0])}` (the model loaded once per actor, the runs' "
            "frames sent to it, on the CPUs here): (that batch - the plain Ray batch) "
            "/ runs, per repetition: "
            + "; ".join(f"{b['vs_ray_per_run_s']} s per run" for b in actors)
            + f"; median **{med['vs_ray_per_run_s']} s per run**.",
        ]
    lines += [
        "",
        "## Where a run's time goes (`report.json` `stage_s`, all single runs)",
        "",
        "`video` is the one streaming pass: decode, road-plane flow of every frame, and on the frames "
        "picked every 5 m damage detection, crack mesh and album candidates (privacy masking).",
        "",
        "| stage | s (all runs) | frames/s | x real time | s per km |",
        "|---|---|---|---|---|",
    ]
    for r in out["stages"]:
        lines.append(
            f"| {r['stage']} | {r['s']} | {r['frames_per_s']} | {r['x_real_time']} | {r['s_per_km']} |"
        )
    lines += [
        "",
        f"Per km: {out['per_km']['video_s']} s of video, {out['per_km']['job_wall_s']} s of processing "
        "(median, one run on the whole machine). Cost model: docs/scale.md.",
        "",
        f"Same segments (ids, figures, geometry) from the single runs and every batch: "
        f"**{out['same_segments_everywhere']}**.",
        "",
    ]
    return "\n".join(lines)


def _engine(row: dict) -> str:
    actors = row.get("detector_actors")
    return (
        f"{row['engine']} + {actors} detector actor{'s' if actors > 1 else ''}" if actors else row["engine"]
    )


if __name__ == "__main__":
    sys.exit(main())
