"""Rut depth (わだち掘れ量) from the video's rut bursts against truth.json, on synthetic runs.

For each seed, ``pavement synth`` writes a run at full render (1280x720, 30 fps, no depth maps);
the rut stage's own steps then run on it as ``pavement rut RUN --no-depth`` runs them: geotag
(GPS + route ledger + the frame plan with its bursts of 3 consecutive frames every 20 m), one
plane + parallax profile per burst (``pipelines.rut.video_profiles`` ->
``pavement.rut_video.burst_profile``), a rut depth with its 1-sigma per profile
(``estimate_rut``), the mean over 20 m sections (``section_rut``) and 100 m segments
(``segment_rut``), blank above ``RutConfig.max_sigma_mm``. Scored against ``sections_20m`` and
``segments`` of truth.json: MAE, bias, largest error, blanks with the stage's reasons, blanks
where the true depth is large (>= 20 mm, MLIT 区分 II), and how often the error stays within
twice the reported 1-sigma. Also per burst: the refined pitch against the true camera pitch of
the burst's first frame, and the wall time.

Profiles are placed on the route twice: by the geotagged frames (what ``pavement rut`` does;
the ledger's chainage moved onto truth.json's posts) and by the true chainage of the burst's
first frame (the video method alone).

    python eval/rut_video.py --seeds 611 612 613 --length-m 300

Writes eval/results/rut_video.json and .md (the rendered runs stay in --work).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from pavement.camera import CameraProfile
from pavement.rut_profile import estimate_rut
from pipelines.geotag import GeotagResult, run_geotag
from pipelines.rut import RutConfig, ahead_sign, video_profiles
from pipelines.synth import SynthConfig, run_synth

sys.path.insert(0, str(Path(__file__).resolve().parent))  # eval/rut_depth_sensor.py, run or imported
from rut_depth_sensor import _r, score_placed  # the same scoring as the depth-map source

REPO = Path(__file__).resolve().parents[1]
LARGE_MM = 20.0  # 区分 II starts here (pavement.diagnosis): a blank above it hides a finding


def make_run(seed: int, length_m: float, size: str, fps: float, work: Path, crf: int = 26) -> Path:
    """The seed's run in ``work`` (rendered once; reused when its synth_report.json is there)."""
    run_dir = work / f"seed{seed}"
    width, height = (int(v) for v in size.split("x"))
    config = SynthConfig(
        length_m=length_m, seed=seed, fps=fps, width_px=width, height_px=height, render_scale=1.0, crf=crf
    )
    report = run_dir / "synth_report.json"
    if report.is_file():
        made = json.loads(report.read_text(encoding="utf-8"))["config"]
        keys = ("length_m", "seed", "fps", "width_px", "height_px", "render_scale", "crf")
        if all(made.get(k) == getattr(config, k) for k in keys):
            return run_dir
    run_synth(run_dir, config)
    return run_dir


def on_truth_posts(run_dir: Path, geo: GeotagResult) -> GeotagResult:
    """The geotag result with each frame's chainage put on truth.json's post (距離標 + 追加距離):
    the ledger's chainage has its own origin. Frames stay in order (the plan refers to them)."""
    posts = {
        float(p["kp_km"]): p["chainage_m"]
        for p in json.loads((run_dir / "truth.json").read_text(encoding="utf-8"))["route"]["posts"]
    }
    frames = tuple(
        replace(f, route=replace(f.route, chainage_m=posts[f.route.kp_km] + f.route.offset_m))
        if f.route is not None and f.route.kp_km in posts
        else replace(f, route=None)
        for f in geo.frames
    )
    return replace(geo, frames=frames)


def measure_run(run_dir: Path, work: Path, config: RutConfig) -> dict:
    """Geotag the run and measure every burst: per burst its first frame, the geotagged and the
    true chainage of the profile, the refined and true pitch, baseline, reason, wall time and
    the profile itself (u, z, sigma)."""
    truth = json.loads((run_dir / "truth.json").read_text(encoding="utf-8"))
    camera = CameraProfile.from_dict(json.loads((run_dir / "camera.json").read_text(encoding="utf-8")))
    t0 = time.perf_counter()
    geo = on_truth_posts(run_dir, run_geotag(run_dir, work / f"{run_dir.name}_geotag", config.geotag))
    geotag_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    bursts, refinement, warnings = video_profiles(run_dir, geo, camera, config)
    video_s = time.perf_counter() - t1
    placed = [f for f in geo.frames if f.route is not None]
    by_index = {f.frame_index: f for f in placed}
    ahead = (config.sweep.x_near_m + config.sweep.x_far_m) / 2
    sign = ahead_sign(placed[0].route.direction) if placed else 1.0
    firsts = _burst_first_frames(geo)
    rows = []
    for i, bp in enumerate(bursts):
        p, k = bp.profile, firsts[i]
        assert p is None or p.frame_index == k, (p.frame_index, k)
        tf = truth["frames"][k]
        rows.append(
            {
                "frame_index": k,
                "chainage_m": _r(by_index[k].route.chainage_m + sign * ahead, 2),
                "true_chainage_m": _r(tf["chainage_m"] + sign * ahead, 2),
                "pitch_deg": _r(bp.pitch_deg, 3),
                "true_pitch_deg": _r(tf["camera_pitch_deg"], 3),
                "roll_deg": _r(bp.roll_deg, 3),
                "true_roll_deg": _r(tf["camera_roll_deg"], 3),
                "baseline_m": _r(bp.baseline_m, 3),
                "reason": bp.reason,
                "profile": None
                if p is None
                else {
                    "u_m": [round(float(v), 3) for v in p.u_m],
                    "z_mm": [_r(v, 2) for v in p.z_mm],
                    "sigma_mm": [_r(v, 2) for v in p.sigma_mm],
                },
            }
        )
    return {
        "run": run_dir.name,
        "geotag_s": round(geotag_s, 1),
        "video_s": round(video_s, 1),
        "vanishing_pitch": refinement.report(camera.mount) if refinement is not None else None,
        "true_mount_pitch_deg": truth["camera"]["mount"]["pitch_deg"],
        "bursts_planned": geo.plan.n_bursts if geo.plan is not None else 0,
        "warnings": list(warnings),
        "bursts": rows,
    }


def _burst_first_frames(geo: GeotagResult) -> list[int]:
    """Video frame index of each placed burst's first frame, in the order the stage measures them
    (the order their last frame is decoded in; bursts whose first frame is off the route are
    skipped, as the stage skips them)."""
    from pavement.frame_plan import NO_BURST

    plan = geo.plan
    if plan is None:
        return []
    groups: dict[int, list[int]] = {}
    for k, b in enumerate(plan.burst_id):
        if b != NO_BURST:
            groups.setdefault(b, []).append(k)
    ordered = sorted(groups.values(), key=lambda ks: geo.frames[max(ks)].frame_index)
    return [geo.frames[min(ks)].frame_index for ks in ordered if geo.frames[min(ks)].route is not None]


def score_run(run_dir: Path, measured: dict, placement: str, max_sigma_mm: float) -> dict:
    """Sections and segments of one run (profiles placed by ``placement``: "chainage_m" = geotag,
    "true_chainage_m" = truth): truth, estimate, 1-sigma, counts, reason."""
    from pavement.rut_profile import TransverseProfile

    truth = json.loads((run_dir / "truth.json").read_text(encoding="utf-8"))
    estimates = []
    for i, b in enumerate(x for x in measured["bursts"] if x["profile"] is not None):
        if b[placement] is None:
            continue
        pr = b["profile"]
        profile = TransverseProfile(
            np.array(pr["u_m"]),
            np.array([math.nan if v is None else v for v in pr["z_mm"]]),
            np.array([math.inf if v is None else v for v in pr["sigma_mm"]]),
            b[placement],
            "video",
            b["frame_index"],
        )
        # The stage's seed for the Monte-Carlo draws is the profile's index (pipelines.rut.aggregate).
        estimates.append((b[placement], estimate_rut(profile, max_sigma_mm, seed=i)))
    sections, segments = score_placed(truth, estimates, max_sigma_mm)
    for row, sec in zip(sections, truth["sections_20m"], strict=True):
        lo, hi = sec["chainage_m"], sec["chainage_m"] + sec["length_m"]
        row["profile_depths_mm"] = [_r(e.depth_mm) for c, e in estimates if lo <= c < hi]
    return {
        "profiles": len(estimates),
        "profiles_blank": sum(e.depth_mm is None for _, e in estimates),
        "sections": sections,
        "segments": segments,
    }


def summarise(rows: list[dict]) -> dict:
    """MAE, bias, largest error, share within 2 sigma, blanks (with their reasons, and how many
    where the true depth is >= LARGE_MM) of rows with true_mm."""
    scored = [r for r in rows if r["estimate_mm"] is not None]
    blank = [r for r in rows if r["estimate_mm"] is None]
    reasons: dict[str, int] = {}
    for r in blank:
        key = _reason_kind(r["reason"])
        reasons[key] = reasons.get(key, 0) + 1
    out = {
        "n": len(rows),
        "blank": len(blank),
        "coverage_pct": round(100.0 * len(scored) / len(rows), 1) if rows else None,
        "blank_reasons": dict(sorted(reasons.items())),
        f"blank_true_ge_{LARGE_MM:g}mm": sum(r["true_mm"] >= LARGE_MM for r in blank),
    }
    if not scored:
        return out
    err = np.array([r["estimate_mm"] - r["true_mm"] for r in scored])
    sigma = np.array([r["sigma_mm"] for r in scored])
    return {
        **out,
        "mae_mm": round(float(np.mean(np.abs(err))), 2),
        "bias_mm": round(float(np.mean(err)), 2),
        "max_abs_error_mm": round(float(np.max(np.abs(err))), 2),
        "within_2_sigma_pct": round(100.0 * float(np.mean(np.abs(err) <= 2 * sigma)), 1),
        "true_range_mm": [min(r["true_mm"] for r in scored), max(r["true_mm"] for r in scored)],
    }


def _reason_kind(reason: str) -> str:
    """A reason without its figures ("uncertainty 4.2 mm > 3 mm" -> "uncertainty > max")."""
    if reason.startswith("uncertainty"):
        return "uncertainty > max_sigma_mm"
    return reason or "(none)"


def burst_summary(bursts: list[dict]) -> dict:
    """Counts and reasons of blank bursts, pitch error of the refinement."""
    dp = np.array([b["pitch_deg"] - b["true_pitch_deg"] for b in bursts if b["pitch_deg"] is not None])
    dr = np.array([b["roll_deg"] - b["true_roll_deg"] for b in bursts if b["roll_deg"] is not None])
    reasons: dict[str, int] = {}
    for b in bursts:
        if b["profile"] is None:
            reasons[b["reason"] or "(none)"] = reasons.get(b["reason"] or "(none)", 0) + 1
    return {
        "n": len(bursts),
        "blank": sum(b["profile"] is None for b in bursts),
        "blank_reasons": reasons,
        "pitch_error_deg": _stats(dp, 3),
        "roll_error_deg": _stats(dr, 3),
        "baseline_m": _stats(np.array([b["baseline_m"] for b in bursts]), 3),
    }


def _pitch_text(measured: dict) -> str:
    v = measured.get("vanishing_pitch")
    if v is None:
        return "not measured"
    if not v["refined"]:
        return f"not refined ({v['note']}), true {measured['true_mount_pitch_deg']:.2f}"
    return (
        f"{v['pitch_deg']:.2f} deg from {v['vanishing_point_frames']} frames (camera.json "
        f"{v['camera_json_pitch_deg']:g}, true {measured['true_mount_pitch_deg']:.2f})"
    )


def _stats(v: np.ndarray, digits: int) -> dict:
    if len(v) == 0:
        return {}
    return {
        "mean": round(float(v.mean()), digits),
        "mean_abs": round(float(np.abs(v).mean()), digits),
        "min": round(float(v.min()), digits),
        "max": round(float(v.max()), digits),
    }


def evaluate(
    seeds: list[int],
    length_m: float,
    size: str,
    fps: float,
    work: Path,
    config: RutConfig,
    crf: int = 26,
    reuse_measured: bool = False,
) -> dict:
    """Render (or reuse) and measure every seed's run; the scores under both placements. With
    ``reuse_measured``, the bursts measured by an earlier run of the same command
    (``work``/measured.json) are scored again instead of measured."""
    runs: dict[str, list[dict]] = {"geotag": [], "true_chainage": []}
    measured_runs, synth_s, bitrate = [], {}, {}
    earlier = {}
    if reuse_measured:
        earlier = {m["seed"]: m for m in json.loads((work / "measured.json").read_text(encoding="utf-8"))}
    for seed in seeds:
        t0 = time.perf_counter()
        run_dir = make_run(seed, length_m, size, fps, work, crf)
        video = run_dir / "video.mp4"
        bitrate[seed] = round(
            video.stat().st_size
            * 8
            / json.loads((run_dir / "synth_report.json").read_text(encoding="utf-8"))["video_duration_s"]
            / 1e6,
            2,
        )
        synth_s[seed] = round(time.perf_counter() - t0, 1)
        measured = earlier[seed] if seed in earlier else {"seed": seed, **measure_run(run_dir, work, config)}
        measured_runs.append(measured)
        for name, placement in (("geotag", "chainage_m"), ("true_chainage", "true_chainage_m")):
            runs[name].append({"seed": seed, **score_run(run_dir, measured, placement, config.max_sigma_mm)})
    bursts = [b for m in measured_runs for b in m["bursts"]]
    return {
        "bursts": burst_summary(bursts),
        "seconds_per_burst": round(
            sum(m["video_s"] for m in measured_runs) / max(1, sum(len(m["bursts"]) for m in measured_runs)), 1
        ),
        **{
            name: {
                "sections_20m": summarise([s for r in rr for s in r["sections"]]),
                "segments_100m": summarise([s for r in rr for s in r["segments"]]),
                "runs": rr,
            }
            for name, rr in runs.items()
        },
        "measured": measured_runs,
        "synth_s": synth_s,
        "video_mbit_per_s": bitrate,
    }


def markdown(result: dict) -> list[str]:
    b = result["bursts"]
    lines = [
        "# Rut depth from the video's rut bursts vs truth (synthetic runs)",
        "",
        f"Command: `{result['command']}`; runs made by `{result['generator']}` (seeds "
        f"{' '.join(map(str, result['seeds']))}), profiles from the video only (no depth maps), the "
        f"stage's defaults (blank above {result['max_sigma_mm']:g} mm 1-sigma). Video bitrate (Mbit/s): "
        f"{', '.join(f'{k}: {v}' for k, v in result['video_mbit_per_s'].items())}. Machine: "
        f"{result['machine']}. Errors are estimate - truth.",
        "",
        "| placed by | unit | n | blank | coverage | MAE mm | bias mm | max error mm | within 2 sigma "
        f"| blank where truth >= {LARGE_MM:g} mm | true range mm |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in ("geotag", "true_chainage"):
        for unit in ("sections_20m", "segments_100m"):
            s = result[name][unit]
            lines.append(
                f"| {name} | {unit} | {s['n']} | {s['blank']} | {s['coverage_pct']} % "
                f"| {s.get('mae_mm', '—')} "
                f"| {s.get('bias_mm', '—')} | {s.get('max_abs_error_mm', '—')} "
                f"| {s.get('within_2_sigma_pct', '—')} % | {s[f'blank_true_ge_{LARGE_MM:g}mm']} "
                f"| {s.get('true_range_mm', '—')} |"
            )
    lines += ["", "Why sections are blank (placed by geotag):", ""]
    for name, n in result["geotag"]["sections_20m"]["blank_reasons"].items():
        lines.append(f"- {name}: {n}")
    lines += [
        "",
        f"Bursts: {b['n']}, without a profile: {b['blank']} {b['blank_reasons'] or ''}; refined pitch "
        f"- true pitch of the burst's first frame: mean {b['pitch_error_deg'].get('mean')} deg, mean "
        f"|.| {b['pitch_error_deg'].get('mean_abs')} deg (range {b['pitch_error_deg'].get('min')} to "
        f"{b['pitch_error_deg'].get('max')}); roll: mean {b['roll_error_deg'].get('mean')} deg, mean |.| "
        f"{b['roll_error_deg'].get('mean_abs')} deg. Baseline (first to last frame) "
        f"{b['baseline_m'].get('min')}-{b['baseline_m'].get('max')} m. Wall time per burst (its sweep and "
        f"the decoding of the bursts' frames) {result['seconds_per_burst']} s.",
        "",
        "Pitch the bursts start from (the lane lines' vanishing point on the first bursts' frames, "
        "`pavement.vanishing_point.PitchRefiner`) against the synthetic phone's true mount: "
        + "; ".join(f"{m['seed']}: {_pitch_text(m)}" for m in result["measured"])
        + ".",
        "",
        "## Sections (placed by geotag)",
        "",
        "| seed | section | true mm | estimate mm | 1-sigma mm | profiles (used) | profile depths mm "
        "| reason |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in result["geotag"]["runs"]:
        lines += [
            f"| {r['seed']} | {s['section']} | {s['true_mm']} "
            f"| {'—' if s['estimate_mm'] is None else s['estimate_mm']} | {s['sigma_mm']} "
            f"| {s['n_profiles']} ({s['n_used']}) "
            f"| {', '.join('—' if d is None else f'{d:g}' for d in s['profile_depths_mm'])} | {s['reason']} |"
            for s in r["sections"]
        ]
    lines += [
        "",
        "## Segments (placed by geotag)",
        "",
        "| seed | segment | partial | true mm | estimate mm | true max mm | estimate max mm | 1-sigma mm "
        "| sections (used) | reason |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["geotag"]["runs"]:
        lines += [
            f"| {r['seed']} | {s['segment']} | {s['partial']} | {s['true_mm']} "
            f"| {'—' if s['estimate_mm'] is None else s['estimate_mm']} | {s['true_max_mm']} "
            f"| {'—' if s['estimate_max_mm'] is None else s['estimate_max_mm']} | {s['sigma_mm']} "
            f"| {s['n_sections']} ({s['n_used']}) | {s['reason']} |"
            for s in r["segments"]
        ]
    measure_s = sum(m["geotag_s"] + m["video_s"] for m in result["measured"])
    lines += [
        "",
        f"Wall time {result['wall_s']} s (rendering {sum(result['synth_s'].values()):.0f} s; geotag and "
        f"bursts {measure_s:.0f} s when measured).",
        "",
    ]
    return lines


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores ({platform.processor() or platform.system()})"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[611, 612, 613])
    parser.add_argument("--length-m", type=float, default=300.0)
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument(
        "--crf", type=int, default=26, help="x264 rate factor of the runs (synth's default: 26)"
    )
    parser.add_argument("--work", type=Path, default=REPO / "work" / "eval_rut_video")
    parser.add_argument("--out", type=Path, default=REPO / "eval" / "results" / "rut_video.json")
    parser.add_argument(
        "--reuse-measured",
        action="store_true",
        help="score the bursts an earlier run measured (WORK/measured.json) again instead of measuring",
    )
    args = parser.parse_args()
    started = time.perf_counter()
    config = RutConfig()
    result = {
        "command": "python eval/rut_video.py " + " ".join(sys.argv[1:]),
        "generator": f"pavement synth --length-m {args.length_m:g} --size {args.size} --fps {args.fps:g} "
        f"--render-scale 1 (crf {args.crf})",
        "seeds": args.seeds,
        "machine": machine(),
        "max_sigma_mm": config.max_sigma_mm,
        **evaluate(
            args.seeds, args.length_m, args.size, args.fps, args.work, config, args.crf, args.reuse_measured
        ),
    }
    result["wall_s"] = round(time.perf_counter() - started, 1)
    print("\n".join(write(result, args.out, args.work)))


def write(result: dict, out: Path, work: Path) -> list[str]:
    """Write the figures to ``out`` (.json) and its .md, the measured profiles to
    ``work``/measured.json (for diagnosis); returns the markdown lines."""
    out.parent.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    (work / "measured.json").write_text(json.dumps(result["measured"]) + "\n", encoding="utf-8")
    result = {
        **result,
        "measured": [
            {**m, "bursts": [{k: v for k, v in b.items() if k != "profile"} for b in m["bursts"]]}
            for m in result["measured"]
        ],
    }
    out.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    lines = markdown(result)
    out.with_suffix(".md").write_text("\n".join(lines), encoding="utf-8")
    return lines


if __name__ == "__main__":
    main()
