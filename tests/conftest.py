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
