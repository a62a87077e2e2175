"""``bench/stage_throughput.py`` on a tiny run: every stage timed and its rates in the results.
The real benchmark (300 m at 1080p30) is run by hand."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.eval import load_script

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("frames", "seconds", "run_s", "expected"),
    [
        (0, 2.0, None, {"frames_per_s": None, "run_s": 2.0, "extrapolated": False, "x_real_time": 30.0}),
        (120, 2.0, None, {"frames_per_s": 60.0, "run_s": 2.0, "extrapolated": False, "x_real_time": 30.0}),
        (6, 20.0, 100.0, {"frames_per_s": 0.3, "run_s": 100.0, "extrapolated": True, "x_real_time": 0.6}),
    ],
)
def test_stage_rates_per_frame_real_time_and_km(frames, seconds, run_s, expected):
    bench = load_script("bench/stage_throughput.py")
    row = bench.Stage("s", "what", frames, seconds, run_s=run_s).row(video_s=60.0, km=0.5)
    assert {k: row[k] for k in expected} == expected
    assert row["s_per_km"] == pytest.approx(2 * row["run_s"])


def test_bench_on_a_given_run_times_every_stage(synth_depth_run, tmp_path):
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "stage_throughput.py"), "--run", str(synth_depth_run),
         "--bursts", "0", "--decode-repeats", "1",
         "--work", str(tmp_path / "work"), "--results", str(tmp_path / "results")],
        capture_output=True, text=True, timeout=120, cwd=REPO,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads((tmp_path / "results" / "stage_throughput.json").read_text(encoding="utf-8"))
    assert {"machine", "versions", "command", "load_average_before", "load_average_after"} <= set(out)
    assert out["machine"]["nproc"] >= 1 and out["versions"]["onnxruntime"]
    stages = {r["stage"]: r for r in out["stages"]}
    wanted = {"decode", "road-plane flow", "detect", "crack mask", "geotag", "rut (depth maps)",
              "privacy masking", "aggregation", "export"}  # fmt: skip
    assert wanted <= set(stages) and "rut (video bursts)" not in stages
    for name in ("decode", "road-plane flow", "detect", "crack mask"):
        r = stages[name]
        assert r["frames"] > 0 and r["s"] > 0 and r["frames_per_s"] > 0 and r["x_real_time"] > 0
    assert stages["decode"]["frames"] == out["video"]["frames"] > stages["crack mask"]["frames"]
    assert stages["crack mask"]["frames"] >= stages["detect"]["frames"] >= 1
    assert out["sum_in_job_s"] == pytest.approx(
        sum(r["run_s"] for r in out["stages"] if r["in_job"]), abs=0.02
    )
    assert out["process"]["wall_s"] > 0 and out["process_over_sum"] > 0
    md = (tmp_path / "results" / "stage_throughput.md").read_text(encoding="utf-8")
    assert "x real time" in md and "| detect |" in md
