"""The video rut-depth evaluation (eval/rut_video.py) on the tiny synthetic run: its machinery
(render reuse, geotag onto truth's posts, bursts, scoring, summaries, report), not its accuracy:
the tiny run is 320 px wide and swept on a coarse grid so that it takes seconds."""

import json
import shutil

from pavement.frame_plan import FramePlanConfig
from pavement.rut_video import RutSweepConfig
from pipelines.geotag import GeotagConfig
from pipelines.rut import RutConfig
from tests.eval import load_script


def test_rut_video_evaluation_rows_and_report(synth_run, tmp_path):
    ev = load_script("eval/rut_video.py")
    shutil.copytree(synth_run, tmp_path / "seed7")
    config = RutConfig(
        geotag=GeotagConfig(plan=FramePlanConfig(burst_every_m=60.0)),
        sweep=RutSweepConfig(grid_m=0.025, x_near_m=3.0, x_far_m=5.0),
        min_video_width_px=320,
    )
    result = ev.evaluate([7], 200.0, "320x180", 10.0, tmp_path, config)  # reused: nothing is rendered
    assert result["synth_s"][7] < 5.0
    truth = json.loads((tmp_path / "seed7" / "truth.json").read_text(encoding="utf-8"))
    bursts = result["measured"][0]["bursts"]
    assert 2 <= len(bursts) <= 4
    for b in bursts:
        assert abs(b["true_pitch_deg"] - truth["frames"][b["frame_index"]]["camera_pitch_deg"]) < 1e-3
        # Geotag places the burst within the GPS error of its true place.
        assert abs(b["chainage_m"] - b["true_chainage_m"]) < 15.0
        assert 0.5 < b["baseline_m"] < 5.0
    for name in ("geotag", "true_chainage"):
        sections = result[name]["runs"][0]["sections"]
        assert len(sections) == len(truth["sections_20m"])
        assert sum(s["n_profiles"] for s in sections) <= len(bursts)
        summary = result[name]["sections_20m"]
        assert summary["n"] == len(sections) and summary["blank"] + len(
            [s for s in sections if s["estimate_mm"] is not None]
        ) == len(sections)
        assert sum(summary["blank_reasons"].values()) == summary["blank"]
    assert result["bursts"]["n"] == len(bursts) and "mean" in result["bursts"]["pitch_error_deg"]
    assert result["seconds_per_burst"] > 0
    # The bursts start from the pitch of the lane lines' vanishing point, not camera.json's 12 deg.
    pitch = result["measured"][0]["vanishing_pitch"]
    assert pitch["refined"] and pitch["camera_json_pitch_deg"] == 12.0
    assert abs(pitch["pitch_deg"] - truth["camera"]["mount"]["pitch_deg"]) < 0.6
    out = tmp_path / "results" / "rut_video.json"
    lines = ev.write(
        {"command": "test", "generator": "test", "seeds": [7], "machine": "test", "max_sigma_mm": 3.0,
         "wall_s": 0.0, **result},
        out,
        tmp_path,
    )  # fmt: skip
    written = json.loads(out.read_text(encoding="utf-8"))
    assert "profile" not in written["measured"][0]["bursts"][0]
    assert written["geotag"]["segments_100m"]["n"] == len(
        [s for s in truth["segments"] if s["rut_depth_mm"] is not None]
    )
    text = out.with_suffix(".md").read_text(encoding="utf-8")
    assert text == "\n".join(lines) and "MAE" in text and "| 7 |" in text
    measured = json.loads((tmp_path / "measured.json").read_text(encoding="utf-8"))
    assert len(measured[0]["bursts"]) == len(bursts)


def test_reason_kinds_and_summary_of_blanks():
    ev = load_script("eval/rut_video.py")
    rows = [
        {"true_mm": 25.0, "estimate_mm": None, "sigma_mm": None, "reason": "uncertainty 4.1 mm > 3 mm"},
        {"true_mm": 5.0, "estimate_mm": None, "sigma_mm": None, "reason": "no profile measured"},
        {"true_mm": 10.0, "estimate_mm": 12.0, "sigma_mm": 1.0, "reason": ""},
        {"true_mm": 30.0, "estimate_mm": 27.0, "sigma_mm": 1.0, "reason": ""},
    ]
    s = ev.summarise(rows)
    assert s["blank"] == 2 and s["blank_true_ge_20mm"] == 1 and s["coverage_pct"] == 50.0
    assert s["blank_reasons"] == {"no profile measured": 1, "uncertainty > max_sigma_mm": 1}
    assert s["mae_mm"] == 2.5 and s["bias_mm"] == -0.5 and s["max_abs_error_mm"] == 3.0
    assert s["within_2_sigma_pct"] == 50.0
