"""The MLIT 0.5 m mesh over one lane, and which vector defects touch which cell.

Cells are boxes in route coordinates (chainage s, lateral t): along the lane they are anchored
at the start of the segment (its 起点側 end, the smaller chainage, in both driving directions),
across they are anchored at the lane's edges (a 3.5 m lane has 7 cells). A last cell that the
segment end cuts short is kept (clipped), as ``pavement.crack_ratio.mesh_shape`` counts it.

Per cell (the inputs of ``pavement.crack_ratio.crack_ratio``):

- ``crack_count``: how many distinct crack polylines touch the cell (a polyline of width w
  touches a cell when it comes within w / 2 of it);
- ``patch_share``: the share of the cell's area covered by patching (0-1);
- ``pothole``: whether a pothole outline overlaps the cell.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from shapely import STRtree

from pavement.crack_ratio import CELL_SIZE_M, CrackRatio, crack_ratio
from pavement.errors import ConfigError


@dataclass(frozen=True, eq=False)
class LaneMesh:
    """Cells of one lane between chainages ``s_from_m`` and ``s_to_m`` (m).

    ``cells`` is a flat array of shapely boxes in (s, t), ``shape`` = (n_along, n_across):
    cell (i, j) is ``cells[i * n_across + j]``; j = 0 is the lane edge at ``t_first_m``.
    """

    s_from_m: float
    s_to_m: float
    t_first_m: float  # the lane edge where across-index 0 starts
    t_last_m: float
    shape: tuple[int, int]
    cells: np.ndarray
    tree: STRtree

    @property
    def n_cells(self) -> int:
        return self.shape[0] * self.shape[1]


def lane_mesh(s_from_m: float, s_to_m: float, t_first_m: float, t_last_m: float) -> LaneMesh:
    """Mesh anchored at ``s_from_m`` (cells of 0.5 m, the last one clipped at ``s_to_m``)."""
    length = s_to_m - s_from_m
    width = abs(t_last_m - t_first_m)
    if length <= 0 or width <= 0:
        raise ConfigError(f"lane mesh needs a positive extent, got {length:.3f} m x {width:.3f} m")
    n_along = int(np.ceil(length / CELL_SIZE_M - 1e-9))
    n_across = int(np.ceil(width / CELL_SIZE_M - 1e-9))
    s_edges = np.minimum(s_from_m + np.arange(n_along + 1) * CELL_SIZE_M, s_to_m)
    direction = 1.0 if t_last_m > t_first_m else -1.0
    t_edges = t_first_m + direction * np.minimum(np.arange(n_across + 1) * CELL_SIZE_M, width)
    s_lo = np.repeat(s_edges[:-1], n_across)
    s_hi = np.repeat(s_edges[1:], n_across)
    t_a = np.tile(t_edges[:-1], n_along)
    t_b = np.tile(t_edges[1:], n_along)
    cells = shapely.box(s_lo, np.minimum(t_a, t_b), s_hi, np.maximum(t_a, t_b))
    return LaneMesh(s_from_m, s_to_m, t_first_m, t_last_m, (n_along, n_across), cells, STRtree(cells))


def cells_touched_by_polyline(mesh: LaneMesh, st_m: np.ndarray, width_m: float) -> np.ndarray:
    """Flat indices of the cells a crack polyline (n, 2) of ``width_m`` touches."""
    line = shapely.LineString(st_m)
    return np.unique(mesh.tree.query(line, predicate="dwithin", distance=width_m / 2))


def cells_touched_by_polylines(
    mesh: LaneMesh, polylines: list[np.ndarray], widths_m: list[float]
) -> np.ndarray:
    """Flat cell indices touched by each of several polylines, concatenated: a cell appears
    once per polyline that touches it (the crack count it adds)."""
    if not polylines:
        return np.zeros(0, np.int64)
    coords = np.concatenate(polylines)
    lines = shapely.linestrings(
        coords, indices=np.repeat(np.arange(len(polylines)), [len(p) for p in polylines])
    )
    pairs = mesh.tree.query(lines, predicate="dwithin", distance=np.asarray(widths_m) / 2)
    pairs = np.unique(pairs, axis=1)  # (line, cell) pairs, each once
    return pairs[1]


def cells_overlapping(mesh: LaneMesh, outline_st_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flat indices of the cells a polygon (n, 2) overlaps with positive area, and the
    overlapped share (0-1) of each of those cells' area."""
    poly = shapely.Polygon(outline_st_m)
    idx = mesh.tree.query(poly, predicate="intersects")
    if len(idx) == 0:
        return idx, np.zeros(0)
    cells = mesh.cells[idx]
    share = shapely.area(shapely.intersection(cells, poly)) / shapely.area(cells)
    keep = share > 1e-9
    return idx[keep], np.clip(share[keep], 0.0, 1.0)


@dataclass
class MeshTally:
    """Mutable per-cell tally of one mesh (crack polylines, patch share, potholes)."""

    mesh: LaneMesh
    crack_count: np.ndarray
    patch_share: np.ndarray
    pothole: np.ndarray

    @classmethod
    def empty(cls, mesh: LaneMesh) -> MeshTally:
        n = mesh.n_cells
        return cls(mesh, np.zeros(n, np.int32), np.zeros(n), np.zeros(n, bool))

    def ratio(self, surveyed: np.ndarray | None = None) -> CrackRatio:
        return crack_ratio(self.crack_count, self.patch_share, self.pothole, surveyed)

    def ratio_pct_if(
        self,
        cracks: np.ndarray | None = None,
        patch: tuple[np.ndarray, np.ndarray] | None = None,
        pothole: np.ndarray | None = None,
    ) -> float:
        """The crack ratio (%) this tally would have after adding the given cells."""
        counts = self.crack_count.copy()
        share = self.patch_share.copy()
        holes = self.pothole.copy()
        if cracks is not None:
            np.add.at(counts, cracks, 1)  # a cell listed twice (two polylines) counts twice
        if patch is not None:
            share[patch[0]] = np.minimum(share[patch[0]] + patch[1], 1.0)
        if pothole is not None:
            holes[pothole] = True
        return float(crack_ratio(counts, share, holes).crack_ratio_pct or 0.0)

    def add(
        self,
        cracks: np.ndarray | None = None,
        patch: tuple[np.ndarray, np.ndarray] | None = None,
        pothole: np.ndarray | None = None,
    ) -> None:
        if cracks is not None:
            np.add.at(self.crack_count, cracks, 1)
        if patch is not None:
            self.patch_share[patch[0]] = np.minimum(self.patch_share[patch[0]] + patch[1], 1.0)
        if pothole is not None:
            self.pothole[pothole] = True
