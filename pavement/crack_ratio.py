"""ひび割れ率 by the MLIT mesh rule (舗装点検要領 / 舗装調査・試験法便覧 S029).

The surveyed lane is gridded into 0.5 m x 0.5 m cells. Per cell:

- cracks: one crack -> 0.15 m2, two or more -> 0.25 m2 (the whole cell);
- patching by its share of the cell: < 25 % -> 0, 25-75 % -> 0.125 m2, >= 75 % -> 0.25 m2;
- a pothole makes the cell full (0.25 m2); potholes are also counted separately elsewhere;
- a cell with several kinds counts the largest of them: a cell never counts more than its area.

ratio = damaged area / surveyed area x 100. Cells never seen (occluded, bad frames) are not
surveyed: they are left out of both sums and reported as coverage.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pavement.errors import ConfigError

CELL_SIZE_M = 0.5
CELL_AREA_M2 = CELL_SIZE_M * CELL_SIZE_M
ONE_CRACK_M2 = 0.15
MULTI_CRACK_M2 = 0.25
PATCH_HALF_M2 = 0.125


@dataclass(frozen=True)
class CrackRatio:
    """Mesh-rule result for one area (a 100 m segment, a 20 m section, ...)."""

    crack_ratio_pct: float | None  # None when nothing was surveyed
    coverage_pct: float  # surveyed cells / all cells x 100
    damaged_area_m2: float
    surveyed_area_m2: float
    n_cells: int
    n_surveyed: int


def cell_damage_area_m2(
    crack_count: np.ndarray,
    patch_share: np.ndarray | None = None,
    pothole: np.ndarray | None = None,
) -> np.ndarray:
    """Damaged area (m2) of each cell by the mesh rule; arrays share one shape (cells)."""
    crack_count = np.asarray(crack_count)
    if np.any(crack_count < 0):
        raise ConfigError("crack_count must be >= 0 in every cell")
    area = np.where(crack_count >= 2, MULTI_CRACK_M2, np.where(crack_count == 1, ONE_CRACK_M2, 0.0))
    if patch_share is not None:
        share = np.asarray(patch_share, dtype=float)
        if share.shape != crack_count.shape or np.any((share < 0) | (share > 1)):
            raise ConfigError("patch_share must have the cells' shape and lie in [0, 1]")
        patch = np.where(share >= 0.75, CELL_AREA_M2, np.where(share >= 0.25, PATCH_HALF_M2, 0.0))
        area = np.maximum(area, patch)
    if pothole is not None:
        pothole = np.asarray(pothole, dtype=bool)
        if pothole.shape != crack_count.shape:
            raise ConfigError("pothole must have the cells' shape")
        area = np.where(pothole, CELL_AREA_M2, area)
    return area


def crack_ratio(
    crack_count: np.ndarray,
    patch_share: np.ndarray | None = None,
    pothole: np.ndarray | None = None,
    surveyed: np.ndarray | None = None,
) -> CrackRatio:
    """ひび割れ率 (%) and coverage over a grid of cells; ``surveyed`` defaults to all cells."""
    crack_count = np.asarray(crack_count)
    return ratio_of_areas(cell_damage_area_m2(crack_count, patch_share, pothole), surveyed)


def ratio_of_areas(area_m2: np.ndarray, surveyed: np.ndarray | None = None) -> CrackRatio:
    """ひび割れ率 (%) and coverage from each cell's damaged area (m2, at most the cell's: e.g. the
    mean of several views' ``cell_damage_area_m2``); ``surveyed`` defaults to all cells."""
    area = np.asarray(area_m2, dtype=float)
    seen = np.ones(area.shape, bool) if surveyed is None else np.asarray(surveyed, dtype=bool)
    if seen.shape != area.shape:
        raise ConfigError(f"surveyed has shape {seen.shape}, cells have {area.shape}")
    if np.any((area < 0) | (area > CELL_AREA_M2 + 1e-12)):
        raise ConfigError(f"a cell's damaged area must lie in [0, {CELL_AREA_M2}] m2")
    n_cells = int(area.size)
    n_seen = int(seen.sum())
    damaged = float(area[seen].sum())
    surveyed_area = n_seen * CELL_AREA_M2
    return CrackRatio(
        crack_ratio_pct=100.0 * damaged / surveyed_area if n_seen else None,
        coverage_pct=100.0 * n_seen / n_cells if n_cells else 0.0,
        damaged_area_m2=damaged,
        surveyed_area_m2=surveyed_area,
        n_cells=n_cells,
        n_surveyed=n_seen,
    )


def mesh_shape(length_m: float, width_m: float) -> tuple[int, int]:
    """(n_along, n_across) cells covering a ``length_m`` x ``width_m`` area (partial cells count)."""
    if length_m <= 0 or width_m <= 0:
        raise ConfigError(f"mesh needs a positive length and width, got {length_m} m x {width_m} m")
    return int(np.ceil(length_m / CELL_SIZE_M - 1e-9)), int(np.ceil(width_m / CELL_SIZE_M - 1e-9))
