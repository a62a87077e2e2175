"""The per-cell evaluation (eval/crack_cells.py) on the tiny synthetic run: cells, bands, report."""

import shutil

import numpy as np

from tests.eval import load_script


def test_crack_cells_evaluation_compares_every_seen_cell_with_the_road(synth_run, tmp_path):
    ev = load_script("eval/crack_cells.py")
    run_dir = shutil.copytree(synth_run, tmp_path / "seed7")
    cells = ev.view_cells(run_dir, 7, 200.0, 5.0, 5.0)
    assert cells.shape[1] == 4 and len(cells) > 100
    assert cells[:, 0].min() >= 2.0 and cells[:, 0].max() <= 5.0
    assert set(np.unique(cells[:, 1:])) <= {0.0, 1.0, 2.0}
    assert (cells[:, 3] >= cells[:, 2]).all()  # the cell and its neighbours hold at least the cell's cracks
    assert (cells[:, 2] > 0).any() and (cells[:, 2] == 0).any()  # the run has cracked and sound cells
    bands = ev.by_distance(cells, 2.0, 5.0)
    assert [b["from_m"] for b in bands] == [2.0, 2.5, 3.0, 3.5, 4.0, 4.5]
    assert sum(b["cells"] for b in bands) == len(cells)
    result = {
        "command": "python eval/crack_cells.py --seeds 7",
        "machine": "test",
        "wall_s": 0.0,
        "seeds": [7],
        "length_m": 200.0,
        "spacing_m": 5.0,
        "reach_m": 5.0,
        "cells": len(cells),
        "bands": bands,
    }
    ev.write_markdown(result, tmp_path / "crack_cells.md")
    assert "| 4.5-5 |" in (tmp_path / "crack_cells.md").read_text(encoding="utf-8")
