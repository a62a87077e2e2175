"""Rut depth (わだち掘れ量) from the phone's depth sensor against truth.json, on synthetic runs.

For each seed, ``pavement synth`` writes a run with a depth map every ``--depth-every-m`` metres
(docs/run_folder.md: ``depth/``); every map gives a transverse profile (``pavement.depth_profile``),
each profile a rut depth with its uncertainty (``pavement.rut_profile.estimate_rut``), and these
are averaged over the truth's 20 m sections (``section_rut``) and 100 m segments (``segment_rut``).
Scored against ``sections_20m`` and ``segments`` of truth.json: MAE, bias, largest error, blanks,
and how often the error stays within twice the reported 1-sigma.

Profiles are placed on the route twice: by the geotagged frames (GPS + route ledger, what
``pavement rut --depth`` does) and by the true chainage of the frames (the depth method alone).

    python eval/rut_depth_sensor.py --seeds 401 402 403 --length-m 200 --depth-every-m 4

Writes eval/results/rut_depth_sensor.json and .md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from pavement.camera import CameraProfile
from pavement.rut_profile import RutEstimate, estimate_rut, section_rut, segment_rut
from pipelines.geotag import run_geotag
from pipelines.rut_depth_source import chainage_of_video_time, profiles_from_depth_folder
from pipelines.synth import SynthConfig, run_synth

REPO = Path(__file__).resolve().parents[1]


def make_run(seed: int, length_m: float, every_m: float, size: str, fps: float, work: Path) -> Path:
    run_dir = work / f"seed{seed}"
    if not (run_dir / "depth" / "depth.csv").is_file():
        width, height = (int(v) for v in size.split("x"))
        config = SynthConfig(
            length_m=length_m, seed=seed, fps=fps, width_px=width, height_px=height, depth_every_m=every_m
        )
        run_synth(run_dir, config)
    return run_dir


def truth_chainage(run_dir: Path) -> Callable[[float], float | None]:
    frames = json.loads((run_dir / "truth.json").read_text(encoding="utf-8"))["frames"]
    t = np.array([f["t_s"] for f in frames])
    c = np.array([f["chainage_m"] for f in frames])
    return lambda s: float(np.interp(s, t, c)) if t[0] <= s <= t[-1] else None


def geotag_chainage(run_dir: Path, frames) -> Callable[[float], float | None]:
    """Chainage by the geotagged frames, in truth.json's chainage: the ledger's chainage has its
    own origin, so each frame's 距離標 + 追加距離 is put on the truth's post."""
    posts = {
        float(p["kp_km"]): p["chainage_m"]
        for p in json.loads((run_dir / "truth.json").read_text(encoding="utf-8"))["route"]["posts"]
    }
    moved = [
        replace(f, route=replace(f.route, chainage_m=posts[f.route.kp_km] + f.route.offset_m))
        for f in frames
        if f.route is not None and f.route.kp_km in posts
    ]
    return chainage_of_video_time(moved)


def _r(v: float | None, digits: int = 2) -> float | None:
    return None if v is None or not np.isfinite(v) else round(float(v), digits)


def score_placed(
    truth: dict, placed: list[tuple[float, RutEstimate]], max_sigma_mm: float = 3.0
) -> tuple[list[dict], list[dict]]:
    """Per true 20 m section and 100 m segment of ``truth`` (truth.json): the true depth, the
    estimate from the profile depths ``placed`` (chainage, estimate) inside it, 1-sigma, counts,
    reason. Also used by eval/rut_video.py."""
    sections, by_start = [], {}
    for sec in truth["sections_20m"]:
        lo, hi = sec["chainage_m"], sec["chainage_m"] + sec["length_m"]
        got = section_rut(lo, hi, [e for c, e in placed if lo <= c < hi], max_sigma_mm)
        by_start[lo] = got
        sections.append(
            {
                "section": f"{sec['kp_km']:g}km+{sec['offset_m']:.0f}m",
                "true_mm": _r(sec["rut_depth_mm"]),
                "estimate_mm": _r(got.rut_depth_mm),
                "sigma_mm": _r(got.sigma_mm),
                "n_profiles": got.n_profiles,
                "n_used": got.n_used,
                "reason": got.reason,
            }
        )
    segments = []
    for seg in truth["segments"]:
        if seg["rut_depth_mm"] is None:
            continue
        lo, hi = seg["chainage_m"], seg["chainage_m"] + seg["length_m"]
        got = segment_rut([s for start, s in by_start.items() if lo - 1e-6 <= start < hi])
        segments.append(
            {
                "segment": f"{seg['kp_km']:g}km+{seg['offset_m']:.0f}m",
                "partial": seg["partial"],
                "true_mm": _r(seg["rut_depth_mm"]),
                "estimate_mm": _r(got.rut_depth_mm),
                "true_max_mm": _r(seg["rut_depth_max_mm"]),
                "estimate_max_mm": _r(got.rut_depth_max_mm),
                "sigma_mm": _r(got.sigma_mm),
                "n_sections": got.n_sections,
                "n_used": got.n_used,
                "reason": got.reason,
            }
        )
    return sections, segments


def score_run(run_dir: Path, chainage: Callable[[float], float | None]) -> dict:
    """Sections and segments of one run: truth, estimate, 1-sigma, counts, reason."""
    truth = json.loads((run_dir / "truth.json").read_text(encoding="utf-8"))
    nominal = CameraProfile.from_dict(json.loads((run_dir / "camera.json").read_text(encoding="utf-8")))
    n_maps = len((run_dir / "depth" / "depth.csv").read_text(encoding="utf-8").splitlines()) - 1
    profiles = profiles_from_depth_folder(run_dir, nominal, chainage)
    placed = [(p.chainage_m, estimate_rut(p)) for p in profiles]
    sections, segments = score_placed(truth, placed)
    return {
        "run": run_dir.name,
        "depth_maps": n_maps,
        "profiles": len(profiles),
        "profiles_blank": sum(e.depth_mm is None for _, e in placed),
        "sections": sections,
        "segments": segments,
    }


def summarise(rows: list[dict]) -> dict:
    """MAE, bias, largest error, blanks and the share within 2 sigma of rows with true_mm."""
    scored = [r for r in rows if r["estimate_mm"] is not None]
    if not scored:
        return {"n": len(rows), "blank": len(rows)}
    err = np.array([r["estimate_mm"] - r["true_mm"] for r in scored])
    sigma = np.array([r["sigma_mm"] for r in scored])
    return {
        "n": len(rows),
        "blank": len(rows) - len(scored),
        "mae_mm": round(float(np.mean(np.abs(err))), 2),
        "bias_mm": round(float(np.mean(err)), 2),
        "max_abs_error_mm": round(float(np.max(np.abs(err))), 2),
        "within_2_sigma_pct": round(100.0 * float(np.mean(np.abs(err) <= 2 * sigma)), 1),
        "true_range_mm": [min(r["true_mm"] for r in scored), max(r["true_mm"] for r in scored)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[401, 402, 403])
    parser.add_argument("--length-m", type=float, default=200.0)
    parser.add_argument("--depth-every-m", type=float, default=4.0)
    parser.add_argument("--size", default="320x180")
    parser.add_argument("--fps", type=float, default=10.0)
    parser.add_argument("--work", type=Path, default=REPO / "work" / "eval_rut_depth_sensor")
    parser.add_argument("--out", type=Path, default=REPO / "eval" / "results" / "rut_depth_sensor.json")
    args = parser.parse_args()
    started = time.perf_counter()
    runs: dict[str, list[dict]] = {"geotag": [], "true_chainage": []}
    for seed in args.seeds:
        run_dir = make_run(seed, args.length_m, args.depth_every_m, args.size, args.fps, args.work)
        geo = run_geotag(run_dir, args.work / f"seed{seed}_geotag")
        for name, chainage in (
            ("geotag", geotag_chainage(run_dir, geo.frames)),
            ("true_chainage", truth_chainage(run_dir)),
        ):
            runs[name].append({"seed": seed, **score_run(run_dir, chainage)})
    result = {
        "command": "python eval/rut_depth_sensor.py " + " ".join(sys.argv[1:]),
        "generator": f"pavement synth --length-m {args.length_m:g} --size {args.size} --fps {args.fps:g} "
        f"--depth-every-m {args.depth_every_m:g}",
        "seeds": args.seeds,
        **{
            name: {
                "sections_20m": summarise([s for r in rr for s in r["sections"]]),
                "segments_100m": summarise([s for r in rr for s in r["segments"]]),
                "runs": rr,
            }
            for name, rr in runs.items()
        },
        "wall_s": round(time.perf_counter() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    lines = [
        "# Rut depth from the phone's depth sensor vs truth (synthetic runs)",
        "",
        f"Command: `{result['command']}`; runs made by `{result['generator']}` (seeds "
        f"{' '.join(map(str, args.seeds))}). Depth maps 256x144, noise "
        "1-sigma 2 mm + 0.2 % of depth (pavement/synthetic/sensors.py). Errors are estimate - truth.",
        "",
        "| placed by | unit | n | blank | MAE mm | bias mm | max error mm | within 2 sigma | true range mm |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in runs:
        for unit in ("sections_20m", "segments_100m"):
            s = result[name][unit]
            lines.append(
                f"| {name} | {unit} | {s['n']} | {s['blank']} | {s.get('mae_mm', '—')} "
                f"| {s.get('bias_mm', '—')} | {s.get('max_abs_error_mm', '—')} "
                f"| {s.get('within_2_sigma_pct', '—')} % | {s.get('true_range_mm', '—')} |"
            )
    lines += ["", "## Sections (placed by geotag)", ""]
    lines += [
        "| seed | section | true mm | estimate mm | 1-sigma mm | profiles (used) | reason |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in runs["geotag"]:
        lines += [
            f"| {r['seed']} | {s['section']} | {s['true_mm']} "
            f"| {'—' if s['estimate_mm'] is None else s['estimate_mm']} | {s['sigma_mm']} "
            f"| {s['n_profiles']} ({s['n_used']}) | {s['reason']} |"
            for s in r["sections"]
        ]
    lines += [
        "",
        f"Depth maps: {sum(r['depth_maps'] for r in runs['geotag'])}, profiles: "
        f"{sum(r['profiles'] for r in runs['geotag'])} (of which blank: "
        f"{sum(r['profiles_blank'] for r in runs['geotag'])}). Wall time {result['wall_s']} s.",
        "",
    ]
    args.out.with_suffix(".md").write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
