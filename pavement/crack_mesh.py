"""The MLIT 0.5 m mesh in road coordinates: per-frame cells, then each route cell decided once.

Two steps, so that a run streams (no image is kept):

1. **Per frame** (``frame_cells``): the top view's crack mask (``pavement.road_view``) is cut into
   0.5 m cells of the vehicle frame (forward x, lateral y): rows at whole multiples of 0.5 m
   ahead of the camera, columns across the view from its left edge (a 3.5 m view = 7 columns,
   the lane's cells when the car keeps to the lane centre). Per cell: the number of distinct
   cracks (the mesh rule only needs 0, 1 or >= 2: crack pixels along one line are one crack,
   however broken; spread across it, a branch, a crossing or a mesh, two or more; see
   ``count_cracks``), whether it was seen well (inside the frame, frame accepted by the quality
   gate, no occluder in the cell, not too far) and its viewing distance. That is a few hundred
   small numbers per frame.
2. **On the route** (``survey_segments``), once geotagging has given each frame its chainage and
   direction: every frame cell lands on the route cell holding its centre (chainage rounded to
   0.5 m cells anchored at each segment's 起点側 end, x the lane's columns). A route cell seen by
   several frames is decided ONCE, fused: its damaged area is the mean of the mesh-rule areas its
   views give (``cell_damage_area_m2`` per view), so overlapping frames never count a crack
   twice. The mean, not the nearest view, keeps the estimate independent of the frame spacing:
   the segmenter finds cracks a little differently 2.5 m and 5 m ahead, and the nearest view of a
   cell is nearer the denser the frames, while its views' distances spread evenly over the view
   whatever the spacing (seen on synthetic runs: halving 2.5 m to 1.25 m moved a segment by up
   to 4 points with the nearest view). Cells nobody saw well are "not surveyed": they are left out
   of the ratio and reported as coverage (``pavement.crack_ratio``).

Patching and potholes can be added per frame cell (``patch_share``, ``pothole``) and are fused
the same way.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from pavement.crack_ratio import CELL_SIZE_M, cell_damage_area_m2, ratio_of_areas
from pavement.errors import ConfigError
from pavement.road_view import RoadView
from pavement.segments import Direction


@dataclass(frozen=True)
class CrackMeshConfig:
    """How a top-view crack mask becomes cell counts (pixel sizes at the top view's scale)."""

    # a piece of crack smaller than this inside a cell is noise (6 px = 3 cm; the mesh rule counts a
    # crack that clips a cell's corner, and the segmenter has already judged the whole crack)
    min_piece_px: int = 6
    bridge_px: int = 2  # gaps up to about twice this are closed first: a broken crack is one crack
    min_loop_px: int = 200  # a crack closing a loop around this much road is a mesh: two or more cracks
    # crack pixels of a cell spreading more than this across their main axis (std. dev.): two or
    # more cracks; less: one (see count_cracks)
    max_spread_px: float = 1.5  # (3 and 2 read dense meshes low: one of two cracks found)
    min_seen_share: float = 0.95  # share of a cell's pixels that must be inside the frame
    # Cells whose centre is farther ahead are not made (cell_grid). A 720p frame pixel covers
    # d^2 / (f h) of road along it: 13 mm at 4 m, 20 mm at 5 m, where the top view is a 3-4x
    # upsampled picture and grain passes for cracks. eval/crack_cells.py (seeds 511-513, each
    # frame's cells against the scene's): sound cells read as cracked 9-10 % of the time 2-3.5 m
    # ahead, 15 % at 3.5-4 m, 23-26 % at 4-5 m (33-40 % with the segmenter before its length test).
    # The top view reaches 0.5 m farther for the segmenter's context. Frames every 2 m cover the
    # lane with this band, every 5 m ~40 % of it (pavement.frame_plan).
    max_distance_m: float = 4.0

    def __post_init__(self) -> None:
        if self.min_piece_px < 1 or self.bridge_px < 0:
            raise ConfigError("min_piece_px must be >= 1 and bridge_px >= 0")
        if not 0 < self.min_seen_share <= 1:
            raise ConfigError(f"min_seen_share must lie in (0, 1], got {self.min_seen_share}")


@dataclass(frozen=True, eq=False)
class FrameCells:
    """One frame's 0.5 m cells in the vehicle frame (shapes: rows (n,), cols (m,), cells (n, m)).

    Rows run from far to near, columns from the view's left edge to its right edge."""

    frame_index: int
    forward_m: np.ndarray  # (n,) forward distance of each row's centre = the viewing distance
    lateral_m: np.ndarray  # (m,) lateral offset of each column's centre, left +
    crack_count: np.ndarray  # (n, m) uint8, distinct cracks (clipped at 255)
    seen: np.ndarray  # (n, m) bool, seen well
    weight: float = 1.0  # the frame's quality weight (0-1), for the confidence
    patch_share: np.ndarray | None = None  # (n, m) float32, 0-1
    pothole: np.ndarray | None = None  # (n, m) bool

    @property
    def n_seen(self) -> int:
        return int(self.seen.sum())


def cell_grid(view: RoadView, max_distance_m: float = math.inf) -> tuple[np.ndarray, np.ndarray]:
    """Top-view pixel edges of the cells: row edges (n + 1,) from far to near and column edges
    (m + 1,), clipped to the view. Rows sit at whole multiples of 0.5 m ahead of the camera; rows
    whose centre lies beyond ``max_distance_m`` are left out (the view above them is context)."""
    res = view.metres_per_px
    reach = view.far_m
    if math.isfinite(max_distance_m):
        reach = min(reach, CELL_SIZE_M * math.floor((max_distance_m + CELL_SIZE_M / 2) / CELL_SIZE_M + 1e-9))
    k_far = math.floor(reach / CELL_SIZE_M + 1e-9)
    k_near = math.ceil(view.near_m / CELL_SIZE_M - 1e-9)
    x_edges = CELL_SIZE_M * np.arange(k_far, k_near - 1, -1)  # far to near
    rows = np.clip(np.round((view.far_m - x_edges) / res), 0, view.shape[0]).astype(int)
    if reach - x_edges[0] > 1e-9:  # a far partial cell (the view ends before the next 0.5 m)
        rows = np.concatenate([[0], rows])
    if x_edges[-1] - view.near_m > 1e-9:  # a near partial cell
        rows = np.concatenate([rows, [view.shape[0]]])
    n_cols = max(1, round(view.size_px[0] * res / CELL_SIZE_M))
    cols = np.round(np.linspace(0, view.size_px[0], n_cols + 1)).astype(int)
    return rows, cols


def count_cracks(mask: np.ndarray, min_piece_px: int, min_loop_px: int = 0, max_spread_px: float = 0) -> int:
    """Distinct cracks in one cell's mask (uint8, nonzero = crack); the mesh rule needs 0, 1 or >= 2.

    The pieces are the connected components of at least ``min_piece_px`` pixels. With
    ``max_spread_px`` > 0 the cell's crack pixels are judged as one set: when they spread no more
    than ``max_spread_px`` (standard deviation) across their main axis, beyond what their own
    width explains (a straight band of width w spreads w / sqrt(12)), they lie along one line,
    one crack however broken its detection (a faint crack comes out in collinear pieces); when
    they spread more they are a branch, a crossing, the corner where two cracks of a mesh meet
    or separate cracks: two or more. One crack across a 0.5 m cell is nearly straight (it wanders
    a centimetre or two). A piece closing a loop around at least ``min_loop_px`` pixels of road
    is a mesh of alligator cracking: two or more. Without ``max_spread_px`` every piece counts."""
    if not mask.any():
        return 0
    _, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    big = np.flatnonzero(stats[1:, cv2.CC_STAT_AREA] >= min_piece_px) + 1
    if len(big) == 0:
        return 0
    if max_spread_px > 0:
        keep = np.zeros(len(stats), bool)
        keep[big] = True
        rows, cols = np.nonzero(keep[labels])
        across, along = np.linalg.eigvalsh(np.cov(np.stack([cols, rows]).astype(np.float64)))
        # the spread a straight band of the pixels' own width has (width^2 / 12) is no second crack
        length = math.sqrt(12.0 * max(float(along), 1.0))
        width = len(rows) / length
        if math.sqrt(max(float(across) - width * width / 12.0, 0.0)) > max_spread_px:
            return max(2, len(big))
        pieces = 1
    else:
        pieces = len(big)
    if pieces == 1 and min_loop_px > 0:
        contours, hierarchy = cv2.findContours(mask, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
        holes = (
            [] if hierarchy is None else [c for c, h in zip(contours, hierarchy[0], strict=True) if h[3] >= 0]
        )
        if any(cv2.contourArea(c) >= min_loop_px for c in holes):
            return 2
    return pieces


def frame_cells(
    frame_index: int,
    crack_mask: np.ndarray,
    view: RoadView,
    accepted: bool = True,
    weight: float = 1.0,
    config: CrackMeshConfig = CrackMeshConfig(),
    occluded: np.ndarray | None = None,
) -> FrameCells:
    """Reduce a top-view crack mask (H, W) (nonzero = crack) to the frame's cells.

    ``accepted`` False (the quality gate rejected the frame) leaves every cell unseen; so does
    ``occluded`` (n, m) bool (``pavement.frame_quality.occluded_cells``) for single cells."""
    if crack_mask.shape != view.shape:
        raise ConfigError(f"crack mask {crack_mask.shape} does not match the top view {view.shape}")
    rows, cols = cell_grid(view, config.max_distance_m)
    res = view.metres_per_px
    forward = view.far_m - (rows[:-1] + rows[1:]) / 2 * res
    lateral = view.left_m - (cols[:-1] + cols[1:]) / 2 * res
    mask = (crack_mask > 0).astype(np.uint8)
    if config.bridge_px > 0:
        k = 2 * config.bridge_px + 1
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    valid = view.valid.astype(np.float32)
    n, m = len(rows) - 1, len(cols) - 1
    counts = np.zeros((n, m), np.uint8)
    seen = np.zeros((n, m), bool)
    for i in range(n):
        r0, r1 = rows[i], rows[i + 1]
        # a partial cell (the view cut it) never counts as seen: it is not a whole 0.5 m cell
        whole = abs((r1 - r0) * res - CELL_SIZE_M) < 2 * res
        for j in range(m):
            c0, c1 = cols[j], cols[j + 1]
            share = float(valid[r0:r1, c0:c1].mean()) if r1 > r0 and c1 > c0 else 0.0
            seen[i, j] = accepted and whole and share >= config.min_seen_share
            if seen[i, j]:
                counts[i, j] = min(
                    count_cracks(
                        mask[r0:r1, c0:c1], config.min_piece_px, config.min_loop_px, config.max_spread_px
                    ),
                    255,
                )
    if occluded is not None:
        if occluded.shape != seen.shape:
            raise ConfigError(f"occluded cells {occluded.shape} do not match the frame's cells {seen.shape}")
        seen &= ~occluded
        counts[occluded] = 0
    return FrameCells(frame_index, forward, lateral, counts, seen, float(weight) if accepted else 0.0)


# ---------------------------------------------------------------------------------------------
# On the route
# ---------------------------------------------------------------------------------------------


def ahead_sign(direction: Direction) -> float:
    """+1 when chainage grows in the direction of travel (下り, and track distance), -1 on 上り."""
    return -1.0 if direction == Direction.UP else 1.0


@dataclass(frozen=True)
class FramePlace:
    """Where a frame was taken on the route: the chainage of the point below the camera."""

    route_no: str
    direction: Direction
    chainage_m: float


def places_by_frame(
    frame_indices: Sequence[int], known: Mapping[int, FramePlace], max_gap_frames: int = 300
) -> list[FramePlace | None]:
    """The place of each frame: its own when it was geotagged (``known``), else interpolated in
    frame index between the nearest geotagged frames before and after it, when both lie on the same
    route and direction and at most ``max_gap_frames`` apart; otherwise None (not placed)."""
    order = sorted(known)
    out: list[FramePlace | None] = []
    for f in frame_indices:
        if f in known:
            out.append(known[f])
            continue
        k = bisect.bisect_left(order, f)
        if k == 0 or k == len(order):
            out.append(None)
            continue
        a, b = order[k - 1], order[k]
        pa, pb = known[a], known[b]
        if b - a > max_gap_frames or (pa.route_no, pa.direction) != (pb.route_no, pb.direction):
            out.append(None)
            continue
        w = (f - a) / (b - a)
        out.append(FramePlace(pa.route_no, pa.direction, pa.chainage_m + w * (pb.chainage_m - pa.chainage_m)))
    return out


@dataclass(frozen=True)
class RouteStretch:
    """A segment's extent along its route (chainage, either order) and the lane's cells across."""

    route_no: str
    direction: Direction
    start_chainage_m: float
    end_chainage_m: float
    n_across: int = 7  # a 3.5 m lane

    @property
    def lo_m(self) -> float:
        return min(self.start_chainage_m, self.end_chainage_m)

    @property
    def hi_m(self) -> float:
        return max(self.start_chainage_m, self.end_chainage_m)

    @property
    def n_along(self) -> int:
        return max(1, math.ceil((self.hi_m - self.lo_m) / CELL_SIZE_M - 1e-9))


@dataclass(frozen=True)
class SegmentCracks:
    """The crack survey of one segment (None where nothing was surveyed)."""

    crack_ratio_pct: float | None
    coverage_pct: float  # surveyed cells / all cells of the segment's lane area x 100
    confidence: float  # 0-1: coverage x mean quality of the deciding views (see ``survey_segments``)
    n_cells: int
    n_surveyed: int
    n_cracked: int  # surveyed cells with at least one crack
    damaged_area_m2: float
    n_frames: int  # frames that decided at least one cell


@dataclass(frozen=True, eq=False)
class RouteCells:
    """The decided cells of one segment, (n_along, n_across) arrays, along from its 起点側 end."""

    damage_m2: np.ndarray  # mean of the views' mesh-rule areas (0 where unseen)
    views: np.ndarray  # how many frames saw the cell well
    crack_count: np.ndarray  # the nearest view's: what a photo of the cell would show
    distance_m: np.ndarray  # the nearest view's distance (inf where unseen)
    frame_index: np.ndarray  # the nearest view's frame (-1 where unseen)
    weight: np.ndarray  # its quality weight

    @property
    def seen(self) -> np.ndarray:
        """Cells some frame saw well (the surveyed ones)."""
        return self.views > 0


def decide_route_cells(
    frames: Sequence[FrameCells], places: Sequence[FramePlace | None], stretches: Sequence[RouteStretch]
) -> list[RouteCells]:
    """Every seen frame cell placed on the route cell that holds its centre; each route cell's
    damaged area the mean of its views' (see the module docstring), its nearest view (ties: the
    earlier frame in ``frames``) named. Frames without a place (off the route, not geotagged) are
    skipped."""
    if len(frames) != len(places):
        raise ConfigError(f"{len(frames)} frames but {len(places)} places")
    # candidates as flat arrays: stretch, along, across, distance, order, and where to read values
    cand: list[np.ndarray] = []
    by_route: dict[tuple[str, Direction], list[int]] = {}
    for k, st in enumerate(stretches):
        by_route.setdefault((st.route_no, st.direction), []).append(k)
    lo = np.array([st.lo_m for st in stretches])
    hi = np.array([st.hi_m for st in stretches])
    for order, (fc, place) in enumerate(zip(frames, places, strict=True)):
        if place is None or not fc.seen.any():
            continue
        ks = by_route.get((place.route_no, place.direction))
        if not ks:
            continue
        r, c = np.nonzero(fc.seen)
        chain = place.chainage_m + ahead_sign(place.direction) * fc.forward_m[r]
        ks_arr = np.array(ks)
        inside = (chain[:, None] >= lo[ks_arr][None]) & (chain[:, None] < hi[ks_arr][None])
        hit = inside.any(axis=1)
        if not hit.any():
            continue
        seg = ks_arr[np.argmax(inside[hit], axis=1)]
        r, c, chain = r[hit], c[hit], chain[hit]
        along = np.floor((chain - lo[seg]) / CELL_SIZE_M).astype(int)
        n_along = np.array([stretches[s].n_along for s in seg])
        n_across = np.array([stretches[s].n_across for s in seg])
        ok = (along >= 0) & (along < n_along) & (c < n_across)
        n, r, c = int(ok.sum()), r[ok], c[ok]
        area = cell_damage_area_m2(
            fc.crack_count[r, c],
            None if fc.patch_share is None else fc.patch_share[r, c],
            None if fc.pothole is None else fc.pothole[r, c],
        )
        cand.append(
            np.column_stack([seg[ok], along[ok], c, fc.forward_m[r], np.full(n, order), r, area]).astype(
                float
            )
        )
    out = []
    for st in stretches:
        shape = (st.n_along, st.n_across)
        out.append(
            RouteCells(
                np.zeros(shape),
                np.zeros(shape, np.int32),
                np.zeros(shape, np.int32),
                np.full(shape, np.inf),
                np.full(shape, -1, np.int64),
                np.zeros(shape),
            )
        )
    if not cand:
        return out
    a = np.concatenate(cand)
    seg, along, across, dist, order, row, area = (a[:, i] for i in range(7))
    seg, along, across, order, row = (v.astype(int) for v in (seg, along, across, order, row))
    for s in np.unique(seg):
        mine = seg == s
        np.add.at(out[s].damage_m2, (along[mine], across[mine]), area[mine])
        np.add.at(out[s].views, (along[mine], across[mine]), 1)
    for rc in out:
        rc.damage_m2[rc.seen] /= rc.views[rc.seen]
    # the nearest view names the cell: per cell, smallest distance, then earliest frame
    key = np.lexsort((order, dist, across, along, seg))
    seg, along, across, dist, order, row = (v[key] for v in (seg, along, across, dist, order, row))
    first = np.ones(len(seg), bool)
    first[1:] = (np.diff(seg) != 0) | (np.diff(along) != 0) | (np.diff(across) != 0)
    for s, i, j, d, o, rr in zip(
        seg[first], along[first], across[first], dist[first], order[first], row[first], strict=True
    ):
        fc, rc = frames[o], out[s]
        rc.crack_count[i, j] = fc.crack_count[rr, j]
        rc.distance_m[i, j] = d
        rc.frame_index[i, j] = fc.frame_index
        rc.weight[i, j] = fc.weight
    return out


def survey_segment(cells: RouteCells, near_m: float = 6.0) -> SegmentCracks:
    """Mesh-rule figures of one segment's decided cells.

    Confidence = coverage (0-1) x the mean, over surveyed cells, of the deciding frame's quality
    weight x min(1, ``near_m`` / viewing distance) (farther views resolve thin cracks less well)."""
    r = ratio_of_areas(cells.damage_m2, cells.seen)
    n_seen = r.n_surveyed
    if n_seen:
        view = cells.weight[cells.seen] * np.minimum(
            1.0, near_m / np.maximum(cells.distance_m[cells.seen], 1e-6)
        )
        confidence = r.coverage_pct / 100 * float(view.mean())
    else:
        confidence = 0.0
    return SegmentCracks(
        crack_ratio_pct=r.crack_ratio_pct,
        coverage_pct=r.coverage_pct,
        confidence=confidence,
        n_cells=r.n_cells,
        n_surveyed=n_seen,
        n_cracked=int(((cells.damage_m2 > 0) & cells.seen).sum()),
        damaged_area_m2=r.damaged_area_m2,
        n_frames=len(np.unique(cells.frame_index[cells.seen])),
    )


def survey_segments(
    frames: Sequence[FrameCells],
    places: Sequence[FramePlace | None],
    stretches: Sequence[RouteStretch],
    near_m: float = 6.0,
) -> list[SegmentCracks]:
    """Crack ratio, coverage and confidence per segment (aligned with ``stretches``)."""
    return [survey_segment(c, near_m) for c in decide_route_cells(frames, places, stretches)]
