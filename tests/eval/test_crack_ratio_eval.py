"""The crack-ratio evaluation (eval/crack_ratio.py) on the tiny synthetic run: rows, summary, report."""

import json
import shutil

from tests.eval import load_script


def test_crack_ratio_evaluation_rows_and_report(synth_run, tmp_path):
    ev = load_script("eval/crack_ratio.py")
    shutil.copytree(synth_run, tmp_path / "seed7")
    run_dir = ev.render(7, 200.0, tmp_path)  # cached: truth.json is there, nothing is rendered
    assert run_dir == tmp_path / "seed7"
    rows = ev.score_run(run_dir, tmp_path / "out", 5.0)
    truth = json.loads((run_dir / "truth.json").read_text(encoding="utf-8"))["segments"]
    assert len(rows) == len(truth) and any(not r["partial"] for r in rows)
    for r in rows:
        assert 0.0 <= r["coverage_pct"] <= 100.0 and r["true_category"] in ("I", "II", "III")
        if r["estimate_pct"] is not None:
            assert r["error_pp"] == round(r["estimate_pct"] - r["true_pct"], 2)
        assert r["pitch_camera_json_deg"] == 12.0 and abs(r["pitch_used_deg"] - r["pitch_true_deg"]) < 0.3
    summary = ev.summarise(rows)
    assert summary["segments"] >= 1 and summary["blank"] == 0 and summary["mae_pp"] >= 0.0
    halved = [dict(r, spacing_m=2.5) for r in rows]
    assert ev.spacing_changes(rows + halved, 5.0) == [0.0] * summary["segments"]
    result = {
        "command": "python eval/crack_ratio.py --seeds 7",
        "machine": "test",
        "notes": ["a note"],
        "wall_s": 0.0,
        "seeds": [7],
        "length_m": 200.0,
        "fps": 10.0,
        "spacing_m": 5.0,
        "refine_frames": 12,
        "pitch_deg": {"seed7": [12.0, rows[0]["pitch_used_deg"], rows[0]["pitch_true_deg"]]},
        "summary": summary,
        "summary_half_spacing": ev.summarise(halved),
        "spacing_change_pp": [0.0],
        "rows": rows,
    }
    ev.write_markdown(result, tmp_path / "crack_ratio.md")
    text = (tmp_path / "crack_ratio.md").read_text(encoding="utf-8")
    assert "MAE" in text and "- a note" in text and "seed7 12 / " in text
