"""Each frame's 0.5 m cells (``pavement cracks``) against the synthetic road's own cells, by distance.

For every cell a frame saw well: its crack count (0, 1, 2+) from the top view, beside the mesh-rule
count of the road cell below it (``pavement.synthetic.truth.crack_tally`` on the scene the run was
rendered from, ``pipelines.synth.synth_scene``), placed with the frame's true chainage (no geotag
error). Per 0.5 m band of distance ahead: how often a sound cell reads as cracked (also counting
only sound cells with no crack in the 8 around them, which takes out misplacements by a few
centimetres), how often a cracked cell is missed, and how often two or more cracks read as one.
This is the measurement behind ``CrackMeshConfig.max_distance_m``.

The frame's columns are compared with the lane's columns as they are: the synthetic car keeps to
within a few centimetres of the lane centre.

    python eval/crack_cells.py [--seeds 511 512 513] [--spacing-m 5] [--reach-m 5]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from scipy.ndimage import maximum_filter

from pavement.camera import CameraProfile
from pavement.crack_mesh import CrackMeshConfig, ahead_sign
from pavement.crack_ratio import CELL_SIZE_M
from pavement.frame_plan import FramePlanConfig
from pavement.road_view import RoadViewConfig
from pavement.segments import Direction
from pavement.synthetic.truth import crack_tally
from pipelines.cracks import CrackAccumulator, CrackConfig
from pipelines.geotag import run_geotag
from pipelines.synth import SynthConfig, synth_scene
from pipelines.video_motion import iter_frames, probe_video

sys.path.insert(0, str(Path(__file__).resolve().parent))
from crack_ratio import render  # the same cached runs

REPO = Path(__file__).resolve().parents[1]


def view_cells(run_dir: Path, seed: int, length_m: float, spacing_m: float, reach_m: float) -> np.ndarray:
    """(k, 4) per cell seen: distance ahead (m), frame count, true count, the most cracks of the
    true cell and its 8 neighbours (counts clipped at 2)."""
    config = CrackConfig(view=RoadViewConfig(far_m=reach_m), mesh=CrackMeshConfig(max_distance_m=reach_m))
    config = replace(config, geotag=replace(config.geotag, plan=FramePlanConfig(spacing_m=spacing_m)))
    camera = CameraProfile.from_dict(json.loads((run_dir / "camera.json").read_text(encoding="utf-8")))
    video = run_dir / "video.mp4"
    info = probe_video(video)
    accumulator = CrackAccumulator(camera, (info.width_px, info.height_px), config)
    geo = run_geotag(run_dir, run_dir.parent / f"{run_dir.name}_cells_geotag", config.geotag)
    for index, image in iter_frames(video, {p.frame_index for p in geo.frames}, grey_only=True):
        accumulator.push(index, image)
    accumulator.settle()
    truth = json.loads((run_dir / "truth.json").read_text(encoding="utf-8"))
    s0 = min(s["chainage_m"] for s in truth["segments"])
    s1 = max(s["chainage_m"] + s["length_m"] for s in truth["segments"])
    tally = crack_tally(synth_scene(SynthConfig(length_m=length_m, seed=seed)), s0, s1)
    true_count = np.minimum(tally.crack_count.reshape(tally.mesh.shape), 2)
    around = maximum_filter(true_count, size=3)
    sign = ahead_sign(Direction(truth["run"]["direction"]))
    chainage = {f["frame_index"]: f["chainage_m"] for f in truth["frames"]}
    rows = []
    for fc in accumulator.frames:
        r, c = np.nonzero(fc.seen)
        along = np.floor((chainage[fc.frame_index] + sign * fc.forward_m[r] - s0) / CELL_SIZE_M).astype(int)
        ok = (along >= 0) & (along < true_count.shape[0]) & (c < true_count.shape[1])
        r, c, along = r[ok], c[ok], along[ok]
        rows.append(
            np.column_stack(
                [fc.forward_m[r], np.minimum(fc.crack_count[r, c], 2), true_count[along, c], around[along, c]]
            )
        )
    return np.concatenate(rows) if rows else np.zeros((0, 4))


def _share(hit: np.ndarray, of: np.ndarray) -> float | None:
    return round(100.0 * float(hit[of].mean()), 1) if of.any() else None


def by_distance(cells: np.ndarray, near_m: float, reach_m: float) -> list[dict]:
    """Error rates (%) per 0.5 m band of distance ahead."""
    out = []
    for lo in np.arange(near_m, reach_m - 1e-9, CELL_SIZE_M):
        band = cells[(cells[:, 0] > lo) & (cells[:, 0] <= lo + CELL_SIZE_M)]
        est, true, around = (band[:, i] for i in range(1, 4))
        out.append(
            {
                "from_m": round(float(lo), 2),
                "to_m": round(float(lo + CELL_SIZE_M), 2),
                "cells": len(band),
                "sound_read_cracked_pct": _share(est > 0, true == 0),
                "sound_in_sound_read_cracked_pct": _share(est > 0, around == 0),
                "cracked_missed_pct": _share(est == 0, true > 0),
                "two_read_as_one_pct": _share(est == 1, true == 2),
            }
        )
    return out


def write_markdown(result: dict, path: Path) -> None:
    lines = [
        "# Frame cells against the road's cells, by distance ahead (synthetic runs)",
        "",
        f"Command: `{result['command']}`  ",
        f"Machine: {result['machine']}; {result['wall_s']} s.",
        "",
        f"Runs: seeds {', '.join(map(str, result['seeds']))}, {result['length_m']:g} m each, 1280x720, "
        f"a frame every {result['spacing_m']:g} m, cells up to {result['reach_m']:g} m ahead; "
        f"{result['cells']} cells seen.",
        "",
        "| ahead (m) | cells | sound read cracked | sound, no crack around, read cracked | cracked missed "
        "| 2+ cracks read as 1 |",
        "|---|---|---|---|---|---|",
    ]
    for b in result["bands"]:
        lines.append(
            f"| {b['from_m']:g}-{b['to_m']:g} | {b['cells']} | {b['sound_read_cracked_pct']} % | "
            f"{b['sound_in_sound_read_cracked_pct']} % | {b['cracked_missed_pct']} % | "
            f"{b['two_read_as_one_pct']} % |"
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[511, 512, 513])
    parser.add_argument("--length-m", type=float, default=450.0)
    parser.add_argument("--spacing-m", type=float, default=5.0)
    parser.add_argument("--reach-m", type=float, default=5.0, help="farthest cells studied (m ahead)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/pavement-eval-cracks"))
    parser.add_argument("--out", type=Path, default=REPO / "eval" / "results" / "crack_cells.json")
    args = parser.parse_args()
    started = time.perf_counter()
    cells = np.concatenate(
        [
            view_cells(render(s, args.length_m, args.work), s, args.length_m, args.spacing_m, args.reach_m)
            for s in args.seeds
        ]
    )
    result = {
        "command": f"python eval/crack_cells.py --seeds {' '.join(map(str, args.seeds))} --length-m "
        f"{args.length_m:g} --spacing-m {args.spacing_m:g} --reach-m {args.reach_m:g}",
        "machine": f"{platform.machine()} {platform.system()}",
        "seeds": args.seeds,
        "length_m": args.length_m,
        "spacing_m": args.spacing_m,
        "reach_m": args.reach_m,
        "cells": len(cells),
        "bands": by_distance(cells, RoadViewConfig().near_m, args.reach_m),
        "wall_s": round(time.perf_counter() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    write_markdown(result, args.out.with_suffix(".md"))
    print(args.out.with_suffix(".md").read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()
