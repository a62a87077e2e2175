"""Smoke tests of the evaluation and benchmark scripts (eval/, bench/): tiny inputs, real code."""

import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def load_script(relative: str):
    """Import a script of the repository (e.g. ``eval/crack_ratio.py``) as a module by its path."""
    path = REPO / relative
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module
