"""``bench/process_speed.py`` on tiny runs: the timing, the memory figures and the truth comparison
are all there. The full benchmark (2 km at 1080p, 1 km and 4 km for memory) is run by hand."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.eval import load_script

REPO = Path(__file__).resolve().parents[2]


def _bench(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "bench" / "process_speed.py"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )


def _write_pair(tmp_path: Path, truth_rows: list[dict], csv_rows: list[dict]) -> tuple[Path, Path]:
    truth = tmp_path / "truth.json"
    truth.write_text(json.dumps({"segments": truth_rows}, ensure_ascii=False), encoding="utf-8")
    segments = tmp_path / "segments.csv"
    with segments.open("w", encoding="utf-8-sig", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(csv_rows[0]))
        writer.writeheader()
        writer.writerows(csv_rows)
    return segments, truth


def test_comparison_scores_full_segments_and_names_blank_indicators(tmp_path):
    bench = load_script("bench/process_speed.py")
    key = {"route_no": "3", "direction": "下り", "kp_km": 12.0}
    truth_rows = [
        {**key, "offset_m": 300.0, "partial": True, "crack_ratio_pct": 5.0, "rut_depth_mm": 4.0,
         "iri_mm_per_m": 2.0, "pothole_count": 0, "category": "I"},
        {**key, "offset_m": 400.0, "partial": False, "crack_ratio_pct": 12.0, "rut_depth_mm": 6.0,
         "iri_mm_per_m": 3.0, "pothole_count": 1, "category": "I"},
        {**key, "offset_m": 500.0, "partial": False, "crack_ratio_pct": 45.0, "rut_depth_mm": 8.0,
         "iri_mm_per_m": 5.0, "pothole_count": 0, "category": "III"},
    ]  # fmt: skip
    blank = {"crack_ratio_pct": "", "rut_depth_mm": "", "category": ""}
    csv_rows = [
        {**key, "offset_m": 300.0, "partial": "True", "iri_mm_per_m": 9.0, "pothole_count": 0, **blank},
        {**key, "offset_m": 400.0, "partial": "False", "iri_mm_per_m": 3.5, "pothole_count": 1, **blank},
        {**key, "offset_m": 500.0, "partial": "False", "iri_mm_per_m": 4.0, "pothole_count": 0, **blank},
        {**key, "offset_m": 600.0, "partial": "True", "iri_mm_per_m": 1.0, "pothole_count": 0, **blank},
    ]
    result = bench.compare_segments(*_write_pair(tmp_path, truth_rows, csv_rows))
    assert (result["matched"], result["full_segments_scored"], result["partial_excluded"]) == (3, 2, 1)
    assert result["process_only"] == ["12+600"] and result["truth_only"] == []
    iri = result["indicators"]["iri_mm_per_m"]
    assert iri["n"] == 2 and iri["mae"] == pytest.approx(0.75) and iri["bias"] == pytest.approx(-0.25)
    assert result["indicators"]["crack_ratio_pct"]["result"] == "not measured (2 blank)"
    assert result["indicators"]["category"]["result"] == "not measured (2 blank)"
    assert result["indicators"]["pothole_count"]["mae"] == 0


def test_bench_on_a_given_run_writes_every_figure(synth_run, tmp_path):
    done = _bench(
        "--run", str(synth_run), "--rss-lengths", "--decode-repeats", "1", "--no-bgr-pass",
        "--work", str(tmp_path / "work"), "--results", str(tmp_path / "results"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads((tmp_path / "results" / "process_speed.json").read_text(encoding="utf-8"))
    assert {"machine", "versions", "notes", "command", "errors"} <= set(out) and out["errors"] == []
    assert out["machine"]["nproc"] >= 1 and out["versions"]["av"]
    speed = out["speed"]
    assert speed["decode_only_before"][0]["frames"] > 0 and speed["decode_only_median_s"] > 0
    assert speed["process"]["wall_s"] > 0 and speed["process"]["peak_rss_mib"] > 50
    assert speed["ratio"] > 1 and isinstance(speed["ratio_within_limit"], bool)
    accuracy = speed["accuracy"]
    assert accuracy["matched"] == accuracy["truth_segments"] == 3 and accuracy["full_segments_scored"] == 1
    assert set(accuracy["indicators"]) == {
        "crack_ratio_pct",
        "rut_depth_mm",
        "iri_mm_per_m",
        "pothole_count",
        "category",
    }
    assert out["rss"] == {"runs": []}
    md = (tmp_path / "results" / "process_speed.md").read_text(encoding="utf-8")
    assert "Ratio" in md and "decode-only" in md and "IRI (mm/m)" in md


def test_bench_refuses_a_folder_without_video(tmp_path):
    done = _bench(
        "--run", str(tmp_path), "--rss-lengths", "--work", str(tmp_path / "w"), "--results", str(tmp_path)
    )
    assert done.returncode == 1 and "has no video.mp4" in done.stderr
    assert json.loads((tmp_path / "process_speed.json").read_text())["errors"]


@pytest.mark.slow
def test_bench_synthesises_reuses_and_compares_peak_rss(tmp_path):
    timed = ["--length-m", "60", "--size", "320x180", "--fps", "10", "--render-scale", "0.5",
             "--decode-repeats", "1", "--no-bgr-pass", "--work", str(tmp_path / "work")]  # fmt: skip
    rss = ["--rss-lengths", "40", "60", "--rss-size", "320x180", "--rss-render-scale", "0.5",
           "--rss-depth-every-m", "0"]  # fmt: skip
    done = _bench(*timed, *rss, "--results", str(tmp_path / "r1"))
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("synthesising") == 2 and done.stdout.count("reusing") == 1  # 60 m twice
    out = json.loads((tmp_path / "r1" / "process_speed.json").read_text(encoding="utf-8"))
    assert out["speed"]["run"]["render_scale"] == 0.5 and out["speed"]["run"]["reused"] is False
    assert [r["run"]["length_m"] for r in out["rss"]["runs"]] == [40.0, 60.0]
    assert out["rss"]["runs"][0]["accuracy"]["coverage_pct"]["n"] >= 0
    assert 0.5 < out["rss"]["longest_over_shortest"] < 2 and isinstance(out["rss"]["within_tolerance"], bool)
    again = _bench(*timed, "--rss-lengths", "--results", str(tmp_path / "r2"))
    assert again.returncode == 0 and "synthesising" not in again.stdout
