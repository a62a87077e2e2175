"""What the benchmarks in bench/ say about the machine and the software they ran on.

The scripts import this module as ``common`` (their own folder is put first on ``sys.path``, so
that it is found whether a script is run or loaded by a test)."""

from __future__ import annotations

import os
import platform
import re
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def machine() -> dict:
    """CPU model and the instruction sets that matter for inference, usable cores (this process's
    affinity) and all cores, memory (GiB), Python and the OS."""
    model, flags = platform.processor() or platform.machine(), []
    try:
        text = Path("/proc/cpuinfo").read_text()
        if m := re.search(r"^model name\s*:\s*(.+)$", text, re.M):
            model = m[1].strip()
        if m := re.search(r"^flags\s*:\s*(.+)$", text, re.M):
            flags = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_tile") if f in m[1].split()]
    except OSError:
        pass
    mem_gib = None
    try:
        if m := re.search(r"^MemTotal:\s*(\d+) kB", Path("/proc/meminfo").read_text(), re.M):
            mem_gib = round(int(m[1]) / 1024**2, 1)
    except OSError:
        pass
    nproc = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": model,
        "cpu_flags": flags,
        "nproc": nproc,
        "cpu_count": os.cpu_count(),
        "memory_gib": mem_gib,
        "python": platform.python_version(),
        "os": platform.platform(),
    }


def package_versions(dists: tuple[str, ...]) -> dict[str, str | None]:
    """The installed version of each distribution, None where it is not installed."""
    out: dict[str, str | None] = {}
    for dist in dists:
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = None
    return out


def libavcodec_version() -> str | None:
    """The FFmpeg libavcodec that PyAV decodes with, None without PyAV."""
    try:
        import av

        return ".".join(str(x) for x in av.library_versions["libavcodec"])
    except (ImportError, KeyError, AttributeError):
        return None


def pavement_commit() -> str | None:
    """The repository's short commit, marked when tracked files carry uncommitted edits."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None
    return commit + (" (with uncommitted edits)" if dirty else "") if commit else None
