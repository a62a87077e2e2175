"""Shared fixtures: the synthetic runs that several stages are tested on, made once per session."""

import subprocess
import sys
from pathlib import Path

import pytest

PAVEMENT = Path(sys.executable).with_name("pavement")
SMALL_RUN_ARGS = ("--length-m", "200", "--seed", "7", "--size", "320x180", "--fps", "10")


def pavement_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the installed ``pavement`` console script, as a user would."""
    return subprocess.run([str(PAVEMENT), *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def synth_run(tmp_path_factory) -> Path:
    """``pavement synth`` 200 m, seed 7, 320x180 at 10 fps: all files of a run folder + truth.json."""
    out = tmp_path_factory.mktemp("synth") / "RUN"
    done = pavement_cli("synth", "--out", str(out), *SMALL_RUN_ARGS)
    assert done.returncode == 0, done.stderr
    assert str(out) in done.stdout
    return out


@pytest.fixture(scope="session")
def synth_depth_run(tmp_path_factory) -> Path:
    """A 40 m run (seed 5, 320x180 at 5 fps) with a depth map every 5 m of travel (``depth/``)."""
    from pipelines.synth import SynthConfig, run_synth

    out = tmp_path_factory.mktemp("synth_depth") / "RUN"
    config = SynthConfig(length_m=40.0, seed=5, fps=5.0, width_px=320, height_px=180, depth_every_m=5.0)
    assert run_synth(out, config).n_depth_maps >= 8
    return out
