"""False alarms per km of the damage detector on a sound road, against the same road damaged.

For each seed, ``pavement synth`` makes the same road twice: once with cracks, potholes and
patching (``surface_damage``) and once without (``--clean``: ruts, roughness, markings, shadows and
roadside stay). Both go through the real stages: geotag plans a frame every 5 m, the detector runs
on those frames at its shipped threshold. On the clean road every box is a false alarm.

    python eval/detector_false_alarms.py [--seeds 201 202] [--length-m 1000] [--work work/false_alarms]

Writes eval/results/detector_false_alarms.json and .md. The runs are made at 640x360, 10 fps:
the detector letterboxes every frame to 416 px, so a larger frame adds little.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

from pavement.detections import DAMAGE_CLASSES
from pipelines.detect import DEFAULT_CONF, DEFAULT_MODEL, DetectorConfig, load_detector
from pipelines.geotag import run_geotag
from pipelines.synth import SynthConfig, run_synth
from pipelines.video_motion import iter_frames

REPO = Path(__file__).resolve().parents[1]


def count_run(run_dir: Path, out_dir: Path, detector) -> dict:
    geo = run_geotag(run_dir, out_dir)
    wanted = {p.frame_index for p in geo.frames}
    counts: Counter[str] = Counter()
    frames_with_any = 0
    for _, image in iter_frames(run_dir / "video.mp4", wanted):
        dets = detector(image)
        counts.update(DAMAGE_CLASSES[c].value for c in dets.class_id)
        frames_with_any += bool(len(dets))
    truth = json.loads((run_dir / "truth.json").read_text())
    km = (truth["frames"][-1]["chainage_m"] - truth["frames"][0]["chainage_m"]) / 1000.0
    km = abs(km)
    return {
        "km": round(km, 3),
        "frames": len(wanted),
        "frames_with_a_box": frames_with_any,
        "boxes": dict(sorted(counts.items())),
        "boxes_per_km": {k: round(v / km, 1) for k, v in sorted(counts.items())},
        "all_per_km": round(sum(counts.values()) / km, 1),
        "true_potholes": len(truth["potholes"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[201, 202])
    parser.add_argument("--length-m", type=float, default=1000.0)
    parser.add_argument("--work", type=Path, default=REPO / "work" / "false_alarms")
    parser.add_argument("--out", type=Path, default=REPO / "eval" / "results" / "detector_false_alarms.json")
    args = parser.parse_args()
    detector = load_detector(DEFAULT_MODEL, DetectorConfig())
    started = time.perf_counter()
    runs = []
    for seed in args.seeds:
        row = {"seed": seed}
        for name, damage in (("clean", False), ("damaged", True)):
            run_dir = args.work / f"seed{seed}_{name}"
            if not (run_dir / "truth.json").is_file():
                cfg = SynthConfig(
                    length_m=args.length_m,
                    seed=seed,
                    fps=10,
                    width_px=640,
                    height_px=360,
                    surface_damage=damage,
                )
                run_synth(run_dir, cfg)
            row[name] = count_run(run_dir, args.work / f"seed{seed}_{name}_geotag", detector)
        runs.append(row)
        print(json.dumps(row))
    km = sum(r["clean"]["km"] for r in runs)
    clean_boxes = sum(sum(r["clean"]["boxes"].values()) for r in runs)
    result = {
        "model": DEFAULT_MODEL.name,
        "conf": DEFAULT_CONF,
        "frame_spacing_m": 5.0,
        "video": "640x360, 10 fps, synthetic (pavement synth)",
        "runs": runs,
        "clean_km": round(km, 3),
        "false_alarms_per_km": round(clean_boxes / km, 1) if km else None,
        "wall_s": round(time.perf_counter() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# Detector false alarms on a sound (synthetic) road",
        "",
        f"Command: `python eval/detector_false_alarms.py --seeds {' '.join(map(str, args.seeds))} "
        f"--length-m {args.length_m:g}`. Model `{result['model']}`, threshold {DEFAULT_CONF}, "
        "a frame every 5 m (geotag's plan), 640x360 synthetic video.",
        "",
        "| seed | road | km | frames | frames with a box | boxes per km by class | all per km "
        "| potholes (truth) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        for name in ("clean", "damaged"):
            c = r[name]
            per = ", ".join(f"{k} {v}" for k, v in c["boxes_per_km"].items()) or "none"
            cells = (
                r["seed"],
                name,
                c["km"],
                c["frames"],
                c["frames_with_a_box"],
                per,
                c["all_per_km"],
                c["true_potholes"],
            )
            lines.append("| " + " | ".join(map(str, cells)) + " |")
    lines += [
        "",
        "On the damaged road the boxes are mostly D00/D20 on real cracks; potholes (D40) are rarely found in",
        "these forward views (the model was trained on steep top-down photos): see the true pothole counts.",
        "",
        f"**False alarms on the clean road: {result['false_alarms_per_km']} boxes per km** "
        f"({clean_boxes} boxes over {result['clean_km']} km).",
    ]
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
