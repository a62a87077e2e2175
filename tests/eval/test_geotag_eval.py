"""eval/geotag.py end to end on two tiny runs: the seed's video is rendered once and shared by two
GPS error models, and the tables are written. Its accuracy is measured by the full run, not here."""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _eval(work: Path, out: Path, *gps: str) -> subprocess.CompletedProcess:
    args = ["--seeds", "3", "--length-m", "40", "--size", "320x180", "--fps", "5", "--crf", "26"]
    args += ["--work", str(work), "--out", str(out), *gps]
    return subprocess.run(
        [sys.executable, str(REPO / "eval" / "geotag.py"), *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
    )


def test_geotag_eval_renders_a_seed_once_for_two_gps_models(tmp_path):
    work = tmp_path / "work"
    done = _eval(work, tmp_path / "correlated")
    assert done.returncode == 0, done.stderr
    done = _eval(work, tmp_path / "independent", "--gps-error-m", "5", "--gps-correlation-s", "0")
    assert done.returncode == 0, done.stderr
    video_dirs = sorted(p.name for p in work.iterdir() if p.name.endswith("_video"))
    assert video_dirs == ["seed3_320x180_5fps_crf26_40m_video"]
    shared = (work / video_dirs[0] / "video.mp4").stat()
    for run in ("seed3", "seed3_gps5m_corr0s"):
        video = (work / run / "video.mp4").stat()
        assert (video.st_ino, video.st_dev) == (shared.st_ino, shared.st_dev)  # one file, linked
    gps = [(work / run / "gps.csv").read_text() for run in ("seed3", "seed3_gps5m_corr0s")]
    assert gps[0] != gps[1]
    for name in ("correlated", "independent"):
        summary = json.loads((tmp_path / f"{name}.json").read_text())
        assert summary["n_runs"] == 1 and 0 <= summary["frames_in_correct_segment_pct_all"] <= 100
        table = (tmp_path / f"{name}.md").read_text()
        assert "| 3 |" in table and "pitch error true / flow" in table
