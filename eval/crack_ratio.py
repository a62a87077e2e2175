"""ひび割れ率 per 100 m from the video (``pavement cracks``) against ``truth.json``, on synthetic runs.

Runs are rendered at 1280x720, render scale 1 (the full detail the crack segmenter needs), 10
frames per second (the stage analyses one frame every few metres; a lower frame rate only makes
rendering cheaper), and cached in ``--work``. Each run is analysed at ``--spacing-m`` (default
5 m, as ``pavement process`` does) and at half of it: the estimate must not depend on the frame
spacing (issue 5).

Scored per full (non-partial) segment: absolute error of the crack ratio in percentage points
(MAE), agreement of the crack-ratio 区分 (I < 20 % <= II < 40 % <= III, ``pavement.diagnosis``),
coverage, and blanks (segments with no ratio). The truth counts cracks, patching and potholes
by the mesh rule; the stage maps cracks only (patching and potholes are not added to its cells
yet), so segments with patching or potholes are expected to read low.

    python eval/crack_ratio.py [--seeds 501 502 503] [--length-m 450] [--work /tmp/pavement-eval-cracks]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from pavement.diagnosis import GENERAL_ROAD
from pavement.frame_plan import FramePlanConfig
from pavement.vanishing_point import VanishingConfig
from pipelines.cracks import CrackConfig, CrackMaskFn, run_cracks
from pipelines.synth import SynthConfig, run_synth

REPO = Path(__file__).resolve().parents[1]
BANDS = GENERAL_ROAD.crack_ratio_pct
NOTES = (
    "Cells are decided from views 2-4 m ahead only (CrackMeshConfig.max_distance_m; was 5 m). Per-cell "
    "comparison with the scene's truth on the tuning seeds 511-513 (eval/crack_cells.py) showed sound cells "
    "marked cracked 7-10 % of the time 2-3.5 m ahead but 33-40 % at 4-5 m with the segmenter as it was "
    "(23-26 % with it now), where a 720p frame pixel covers 13-20 mm of road along it: sound segments read "
    "+8 to +13 pp. The top view reaches 4.5 m (RoadViewConfig.far_m) for context.",
    "The top-view segmenter drops components shorter than 15 cm (bounding-box diagonal; road grain passed "
    "the seed threshold as compact blobs), and its thresholds came down from 5 / 3 to 4 / 2.5 noise units. "
    "In a cell, crack pieces of 6 px (was 12) count, and pixels spreading more than 1.5 px (was 3) across "
    "their main axis count as two cracks (dense meshes read one of two).",
    "Tuning used seeds 511-516 (18 full segments): every 5 m / 2.5 m MAE 3.67 / 2.92 pp, bias -1.6 pp, "
    "区分 agreement 100 %, halving changes a segment by up to 3.8 pp; every 2 m / 1 m 2.95 / 3.30 pp, "
    "halving 1.65 pp. The settings before this change on seeds 511-515, every 2 m / 1 m: 4.58 / 4.91 pp.",
    "Every 5 m (the default: `pavement process` within its time limit; every 2 m took 2.59 x the "
    "decode-only time on the 2 km 1080p bench run, limit 2.5) the 2-4 m band sees ~40 % of the cells, "
    "in strips; every 2 m 75-99 % (`--spacing-m 2 --out eval/results/crack_ratio_2m.json`). The true "
    "ratio of the cells seen every 5 m differs from the whole segment's by up to 3.8 pp (seeds 511-513, "
    "old 2-5 m band), 1.4 pp every 2.5 m: at 5 m the halving check rests on which strips are seen.",
    "Seeds 501-503 were scored three times while these settings were made (top view to 5 m, to 4.5 m, "
    "final), no setting chosen on them; seeds 504-506 were rendered after and scored once. On 504-506 "
    "alone: every 5 m MAE 5.76 pp, 区分 9 of 9, halving up to 4.8 pp; every 2 m 4.42 pp, 9 of 9, halving "
    "2.5 pp (seed 504's dense segments read 8-11 pp low).",
    "The pitch is refined from the lane lines' vanishing point; roll and yaw are taken from camera.json.",
    "Remaining error: dense alligator meshes still read 2-11 pp low (their 2-4.5 mm cracks are faint at "
    "720p), so a segment just above 40 % can read as 区分 II.",
    "The truth counts patching and potholes by the mesh rule too; the stage maps cracks only (patching shows "
    "only through the cracks found along its seams).",
)


def render(
    seed: int, length_m: float, work: Path, size: tuple[int, int] = (1280, 720), fps: float = 10.0
) -> Path:
    """The run of ``seed`` in ``work`` (rendered once, then reused; synth_report.json is written last)."""
    run_dir = work / f"seed{seed}"
    if not (run_dir / "synth_report.json").is_file():
        run_synth(
            run_dir, SynthConfig(length_m=length_m, seed=seed, fps=fps, width_px=size[0], height_px=size[1])
        )
    return run_dir


def score_run(
    run_dir: Path,
    out_dir: Path,
    spacing_m: float,
    config: CrackConfig | None = None,
    segmenter: CrackMaskFn | None = None,
) -> list[dict]:
    """One row per segment of the run, estimate beside truth, at frame spacing ``spacing_m``
    (``segmenter``: the top view's crack segmenter; default the stage's classical one)."""
    config = config or CrackConfig()
    config = replace(config, geotag=replace(config.geotag, plan=FramePlanConfig(spacing_m=spacing_m)))
    result = run_cracks(run_dir, out_dir, config, segmenter)
    truth_json = json.loads((run_dir / "truth.json").read_text(encoding="utf-8"))
    truth = {(t["kp_km"], t["offset_m"]): t for t in truth_json["segments"]}
    mount = json.loads(result.report_json.read_text(encoding="utf-8"))["camera_mount"]
    features = json.loads(result.segments_geojson.read_text(encoding="utf-8"))["features"]
    rows = []
    for f in features:
        p = f["properties"]
        t = truth.get((p["kp_km"], p["offset_m"]))
        true_pct = None if t is None else t["crack_ratio_pct"]
        est = p["crack_ratio_pct"]
        rows.append(
            {
                "run": run_dir.name,
                "spacing_m": spacing_m,
                "kp_km": p["kp_km"],
                "offset_m": p["offset_m"],
                "partial": bool(p["partial"] or t is None or t["partial"]),
                "true_pct": None if true_pct is None else round(true_pct, 2),
                "estimate_pct": est,
                "error_pp": None if est is None or true_pct is None else round(est - true_pct, 2),
                "true_category": None if true_pct is None else str(BANDS.classify(true_pct)),
                "category": None if est is None else str(BANDS.classify(est)),
                "coverage_pct": p["coverage_pct"],
                "confidence": p["confidence"],
                "frames": result.n_frames,
                "rejected": result.n_rejected,
                "pitch_camera_json_deg": mount["camera_json_pitch_deg"],
                "pitch_used_deg": mount["pitch_deg"],
                "pitch_true_deg": truth_json["camera"]["mount"]["pitch_deg"],
            }
        )
    return rows


def summarise(rows: list[dict]) -> dict:
    """MAE (pp), 区分 agreement and coverage over the full segments of ``rows``."""
    full = [r for r in rows if not r["partial"] and r["true_pct"] is not None]
    scored = [r for r in full if r["estimate_pct"] is not None]
    err = np.array([abs(r["error_pp"]) for r in scored])
    bias = np.array([r["error_pp"] for r in scored])
    agree = sum(r["category"] == r["true_category"] for r in scored)
    cover = np.array([r["coverage_pct"] for r in full]) if full else np.zeros(0)
    return {
        "segments": len(full),
        "blank": len(full) - len(scored),
        "mae_pp": round(float(err.mean()), 2) if len(err) else None,
        "max_error_pp": round(float(err.max()), 2) if len(err) else None,
        "bias_pp": round(float(bias.mean()), 2) if len(bias) else None,
        "category_agreement_pct": round(100.0 * agree / len(scored), 1) if scored else None,
        "coverage_pct_min": round(float(cover.min()), 1) if len(cover) else None,
        "coverage_pct_mean": round(float(cover.mean()), 1) if len(cover) else None,
    }


def spacing_changes(rows: list[dict], spacing_m: float) -> list[float]:
    """|ratio at spacing_m - ratio at spacing_m / 2| (pp) per full segment measured at both."""
    by = {(r["run"], r["kp_km"], r["offset_m"], r["spacing_m"]): r for r in rows if not r["partial"]}
    out = []
    for (run, kp, off, sp), r in by.items():
        half = by.get((run, kp, off, spacing_m / 2))
        if sp == spacing_m and half and r["estimate_pct"] is not None and half["estimate_pct"] is not None:
            out.append(round(abs(r["estimate_pct"] - half["estimate_pct"]), 2))
    return out


def write_markdown(result: dict, path: Path) -> None:
    s, h = result["summary"], result["summary_half_spacing"]
    lines = [
        "# Crack ratio (ひび割れ率) per 100 m vs truth.json (synthetic runs)",
        "",
        f"Command: `{result['command']}`  ",
        f"Machine: {result['machine']}; {result['wall_s']} s (rendering included where runs were "
        "not cached).",
        "",
        f"Runs: seeds {', '.join(map(str, result['seeds']))}, {result['length_m']:g} m each, 1280x720, "
        f"render scale 1, {result['fps']:g} fps; not used for tuning. Full (non-partial) segments only.",
        "",
        "| frame spacing | segments | blank | MAE (pp) | max error (pp) | bias (pp) | 区分 agreement | "
        "coverage min / mean |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for sp, x in ((result["spacing_m"], s), (result["spacing_m"] / 2, h)):
        lines.append(
            f"| {sp:g} m | {x['segments']} | {x['blank']} | {x['mae_pp']} | {x['max_error_pp']} "
            f"| {x['bias_pp']} | {x['category_agreement_pct']} % | {x['coverage_pct_min']} / "
            f"{x['coverage_pct_mean']} % |"
        )
    ch = result["spacing_change_pp"]
    lines += [
        "",
        f"Halving the spacing ({result['spacing_m']:g} m -> {result['spacing_m'] / 2:g} m) changes a full "
        f"segment's ratio by {max(ch) if ch else '—'} pp at most "
        f"(mean {round(float(np.mean(ch)), 2) if ch else '—'}); issue 5 asks < 2.",
        "",
        "Issue 5 asks MAE <= 5 pp and 区分 agreement >= 90 %.",
        "",
        "Camera pitch (deg) per run: camera.json's / the one the mesh was built with "
        f"(refined from the vanishing point of the first {result['refine_frames']} frames; 0: not refined) "
        "/ the true one: "
        + "; ".join(f"{run} {a:g} / {b:g} / {c:g}" for run, (a, b, c) in result["pitch_deg"].items())
        + ".",
        "",
        *[f"- {note}" for note in result["notes"]],
        "",
        "| run | spacing m | segment | partial | true % | estimate % | error pp | 区分 true / est. | "
        "coverage % | confidence |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['run']} | {r['spacing_m']:g} | {r['kp_km']:g} km + {r['offset_m']:g} m | "
            f"{'yes' if r['partial'] else ''} | {r['true_pct']} | {r['estimate_pct']} | {r['error_pp']} | "
            f"{r['true_category']} / {r['category']} | {r['coverage_pct']} | {r['confidence']} |"
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[501, 502, 503])
    parser.add_argument("--length-m", type=float, default=450.0)
    parser.add_argument("--spacing-m", type=float, default=FramePlanConfig().spacing_m)
    parser.add_argument("--fps", type=float, default=10.0)
    parser.add_argument(
        "--refine-frames",
        type=int,
        default=VanishingConfig().frames,
        help="frames whose vanishing points refine the pitch; 0: camera.json's pitch as it is",
    )
    parser.add_argument("--work", type=Path, default=Path("/tmp/pavement-eval-cracks"))
    parser.add_argument("--out", type=Path, default=REPO / "eval" / "results" / "crack_ratio.json")
    args = parser.parse_args()
    started = time.perf_counter()
    rows: list[dict] = []
    for seed in args.seeds:
        run_dir = render(seed, args.length_m, args.work, fps=args.fps)
        for spacing in (args.spacing_m, args.spacing_m / 2):
            out_dir = args.work / f"seed{seed}_cracks_{spacing:g}m_refine{args.refine_frames}"
            config = CrackConfig(vanishing=VanishingConfig(frames=args.refine_frames))
            rows += score_run(run_dir, out_dir, spacing, config)
    at = [r for r in rows if r["spacing_m"] == args.spacing_m]
    half = [r for r in rows if r["spacing_m"] == args.spacing_m / 2]
    result = {
        "command": "python eval/crack_ratio.py --seeds "
        f"{' '.join(map(str, args.seeds))} --length-m {args.length_m:g} --spacing-m {args.spacing_m:g} "
        f"--refine-frames {args.refine_frames}",
        "machine": f"{platform.machine()} {platform.system()}, {os.cpu_count()} cores, CPU only",
        "notes": NOTES,
        "seeds": args.seeds,
        "length_m": args.length_m,
        "fps": args.fps,
        "spacing_m": args.spacing_m,
        "refine_frames": args.refine_frames,
        "pitch_deg": {  # per run: camera.json's, the one the mesh was built with, the true one
            r["run"]: [r["pitch_camera_json_deg"], r["pitch_used_deg"], r["pitch_true_deg"]] for r in at
        },
        "summary": summarise(at),
        "summary_half_spacing": summarise(half),
        "spacing_change_pp": spacing_changes(rows, args.spacing_m),
        "rows": rows,
        "wall_s": round(time.perf_counter() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    write_markdown(result, args.out.with_suffix(".md"))
    print(args.out.with_suffix(".md").read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()
