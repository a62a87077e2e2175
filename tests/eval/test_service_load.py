"""``bench/service_load.py`` on a tiny load: three small concurrent tus uploads against a real
``pavement serve`` and 500 segments queried; every figure of the report is there. The full
benchmark (20 x 200 MB, 50,000 segments) is run by hand."""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_bench_on_a_tiny_load_writes_every_figure(tmp_path):
    done = subprocess.run(
        [
            sys.executable, str(REPO / "bench" / "service_load.py"),
            "--uploads", "3", "--upload-mb", "2", "--small-upload-mb", "1", "--chunk-mb", "0.5",
            "--segments", "500", "--requests", "3", "--cold-requests", "2", "--walks", "2",
            "--work", str(tmp_path / "work"), "--results", str(tmp_path / "results"),
        ],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads((tmp_path / "results" / "service_load.json").read_text(encoding="utf-8"))
    assert out["errors"] == [] and out["machine"]["nproc"] >= 1 and out["command"].startswith("python bench/")
    small, large = out["uploads"]["runs"]
    assert small["upload_mb"] == 1 and large["upload_mb"] == 2 and large["patches"] == 3 * 4
    assert small["all_complete_with_the_right_sha256"] and large["all_complete_with_the_right_sha256"]
    assert large["throughput_mb_per_s"] > 0 and 30 < large["server_peak_rss_mib"] < 1000
    assert isinstance(out["uploads"]["memory_constant"], bool)
    segments = out["segments"]
    assert segments["segments"] == 500 and segments["segments_on_route"] == 500
    queries = segments["queries"]
    assert queries["whole map (view=map)"]["features"] == 500
    assert queries["bbox ~1 % (view=map)"]["features"] == segments["segments_meeting_bbox"] >= 1
    default = queries["default: no parameters (full GeoJSON, first page of 1,000)"]
    assert default["features"] == 500 and queries["whole map (view=map)"]["body_mb"] < default["body_mb"]
    assert queries["page of 1,000 after a cursor at 250, full GeoJSON"]["features"] == 250
    assert queries["page of 1,000 at offset 250, full GeoJSON"]["features"] == 250
    for walk in segments["walks"].values():  # 500 segments: one page of 1,000 or of 10,000
        assert walk["pages"] == 1 and walk["features"] == 500
        assert (
            walk["warm"]["n"] == walk["cold"]["n"] == 2 and walk["cold"]["max_s"] >= walk["cold"]["p50_s"] > 0
        )
    for q in queries.values():
        assert q["warm"]["n"] == 3 and q["cold"]["n"] == 2 and q["warm"]["p95_ms"] >= q["warm"]["p50_ms"] > 0
        assert q["content_encoding"] == "gzip" or q["body_mb"] < 0.01
    md = (tmp_path / "results" / "service_load.md").read_text(encoding="utf-8")
    assert "Concurrent tus uploads" in md and "warm p50 / p95" in md and "p95 < 200 ms" in md
    assert "every page of 1,000 (the default)" in md
    assert not (tmp_path / "work").exists()  # the work folder is removed


def test_percentile_interpolates():
    sys.path.insert(0, str(REPO / "bench"))
    try:
        import service_load
    finally:
        sys.path.remove(str(REPO / "bench"))
    assert service_load.percentile([1, 2, 3, 4], 50) == 2.5
    assert service_load.percentile(list(range(1, 51)), 95) == 47.55
    assert service_load.percentile([7], 95) == 7
