"""Ground truth of a synthetic run: per frame, per 20 m section, per 100 m segment, per pothole.

All indicators come from the true surface (``Scene.profile_height``) and the vector defects,
through the project's own MLIT rules:

- crack ratio: ``pavement.crack_ratio`` on the 0.5 m cells of the driven lane (``lane_mesh``),
  cells anchored at each segment's 起点側 start and at the lane's edges (7 across 3.5 m);
- rut depth: ``pavement.rutting.rut_depth`` on transverse profiles across the full lane sampled
  every 1 cm; each 20 m section averages 5 profiles at 2, 6, 10, 14 and 18 m (10 %, 30 %, ...,
  90 % of a shorter section), and a segment averages its sections (and keeps their maximum);
- IRI: ``pavement.roughness`` (golden car, 80 km/h) on the longitudinal profile of each wheel
  path of the driven lane (lane centre +- 0.85 m) every 5 cm, simulated in the driving direction
  from 60 m before the run; a segment's IRI is the mean of its two wheel paths;
- category: ``pavement.diagnosis.diagnose`` with the general-road thresholds.

Only what the run covers counts: cells wholly between the first and last frame's chainage, and
20 m sections whose profiles all lie there. A segment the run only partly covers is ``partial``.
The lane's cross profile runs from its left edge (driver's view, the shoulder side) to its right
edge: ``d1_mm`` is the outer (left) wheel path, ``d2_mm`` the inner one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pavement.crack_ratio import CELL_SIZE_M
from pavement.diagnosis import GENERAL_ROAD, Category, diagnose
from pavement.roughness import rectified_slope
from pavement.rutting import rut_depth
from pavement.segments import Direction
from pavement.synthetic.lane_mesh import MeshTally, cells_overlapping, cells_touched_by_polylines, lane_mesh
from pavement.synthetic.route import Route, Span, profile_stations, section_bounds, segment_spans
from pavement.synthetic.scene import Scene

PROFILE_STEP_M = 0.01  # transverse profile sampling
IRI_STEP_M = 0.05
IRI_LEAD_M = 60.0


@dataclass(frozen=True)
class SectionTruth:
    """One 20 m section of the driven lane."""

    kp_km: float
    offset_m: float
    length_m: float
    chainage_m: float  # of the section's 起点側 start
    rut_depth_mm: float  # mean over its profiles of max(D1, D2)
    d1_mm: float  # mean D1 (outer, left wheel path)
    d2_mm: float  # mean D2 (inner, right wheel path)
    n_profiles: int


@dataclass(frozen=True)
class SegmentTruth:
    """One 100 m segment of the driven lane (MLIT indicators over the part the run covers)."""

    route_no: str
    direction: Direction
    kp_km: float
    offset_m: float
    length_m: float
    chainage_m: float
    partial: bool
    covered_length_m: float
    n_cells: int
    crack_ratio_pct: float | None
    rut_depth_mm: float | None
    rut_depth_max_mm: float | None
    iri_mm_per_m: float | None
    iri_left_mm_per_m: float | None
    iri_right_mm_per_m: float | None
    pothole_count: int
    category: Category | None


@dataclass(frozen=True)
class PotholeTruth:
    lat: float
    lon: float
    chainage_m: float
    kp_km: float
    offset_m: float
    lateral_m: float  # t of its centre
    depth_mm: float
    diameter_m: float
    in_driven_lane: bool


def transverse_profile(scene: Scene, s_m: float) -> tuple[np.ndarray, np.ndarray]:
    """The driven lane's true cross profile at chainage ``s_m``: positions (m from the lane's
    left edge, 1 cm apart) and heights (mm)."""
    lane = scene.lane
    u = np.arange(0.0, lane.width_m + PROFILE_STEP_M / 2, PROFILE_STEP_M)
    z = scene.profile_height(np.full_like(u, s_m), lane.t_of_u(u))
    return u, z * 1000.0


def section_truth(
    scene: Scene, s_from_m: float, s_to_m: float, kp_km: float, offset_m: float
) -> SectionTruth:
    """Rut depth of the section [s_from_m, s_to_m] (chainage, 起点側 first)."""
    length = s_to_m - s_from_m
    ds = [rut_depth(*transverse_profile(scene, float(s))) for s in profile_stations(s_from_m, s_to_m)]
    return SectionTruth(
        kp_km=kp_km,
        offset_m=offset_m,
        length_m=length,
        chainage_m=s_from_m,
        rut_depth_mm=float(np.mean([d.depth_mm for d in ds])),
        d1_mm=float(np.mean([d.d1_mm for d in ds])),
        d2_mm=float(np.mean([d.d2_mm for d in ds])),
        n_profiles=len(ds),
    )


def crack_tally(scene: Scene, s_from_m: float, s_to_m: float) -> MeshTally:
    """The driven lane's cells from ``s_from_m`` (cells anchored there) to ``s_to_m``, with the
    cracks, patching and potholes that touch them."""
    left, right = scene.lane.edges_t
    mesh = lane_mesh(s_from_m, s_to_m, left, right)
    tally = MeshTally.empty(mesh)
    cracks, potholes, patches = scene.defects_in(s_from_m - 0.5, s_to_m + 0.5)
    t_lo, t_hi = min(left, right), max(left, right)
    near = [c for c in cracks if c.bbox[3] >= t_lo - 0.05 and c.bbox[1] <= t_hi + 0.05]
    if near:
        tally.add(
            cracks=cells_touched_by_polylines(mesh, [c.st_m for c in near], [c.width_mm / 1000 for c in near])
        )
    for p in patches:
        idx, share = cells_overlapping(mesh, p.outline_st())
        tally.add(patch=(idx, share))
    for h in potholes:
        idx, _ = cells_overlapping(mesh, h.outline_st())
        tally.add(pothole=idx)
    return tally


def wheel_path_iri(
    scene: Scene, run_from_m: float, run_to_m: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Golden-car rectified slope (mm/m) per 5 cm step along both wheel paths of the driven lane,
    simulated in the driving direction: (chainage of each step, left, right)."""
    sign = 1.0 if run_to_m >= run_from_m else -1.0
    n = int(np.ceil((abs(run_to_m - run_from_m) + 2 * IRI_LEAD_M) / IRI_STEP_M)) + 1
    s = run_from_m - sign * IRI_LEAD_M + sign * IRI_STEP_M * np.arange(n)
    out = []
    for u in scene.lane.wheel_paths_u:
        z = scene.profile_height(s, np.full_like(s, float(scene.lane.t_of_u(u))))
        out.append(rectified_slope(z, IRI_STEP_M) * 1000.0)
    m = len(out[0])
    return s[:m] + sign * IRI_STEP_M / 2, out[0], out[1]


def _mean_or_none(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def segment_truths(
    scene: Scene, run_from_m: float, run_to_m: float, direction: Direction
) -> tuple[list[SegmentTruth], list[SectionTruth]]:
    """Segments and 20 m sections of the driven lane that the run covers, in driving order."""
    route = scene.route
    lo, hi = min(run_from_m, run_to_m), max(run_from_m, run_to_m)
    s_iri, rs_left, rs_right = wheel_path_iri(scene, run_from_m, run_to_m)
    segments, sections = [], []
    for span in segment_spans(route):
        if span.kp_km is None or span.post_interval_m is None or span.s_to_m <= lo or span.s_from_m >= hi:
            continue
        seg, secs = _segment(scene, route, span, lo, hi, direction, s_iri, rs_left, rs_right)
        if seg is not None:
            segments.append(seg)
            sections.extend(secs)
    if direction == Direction.UP:
        segments.reverse()
        sections.reverse()
    return segments, sections


def _segment(
    scene: Scene,
    route: Route,
    span: Span,
    lo: float,
    hi: float,
    direction: Direction,
    s_iri: np.ndarray,
    rs_left: np.ndarray,
    rs_right: np.ndarray,
) -> tuple[SegmentTruth | None, list[SectionTruth]]:
    covered_from, covered_to = max(span.s_from_m, lo), min(span.s_to_m, hi)
    if covered_to - covered_from < 0.01:
        return None, []
    # Cells wholly covered: the grid is anchored at the segment's start.
    first = int(np.ceil((covered_from - span.s_from_m) / CELL_SIZE_M - 1e-9))
    last = int(np.floor((covered_to - span.s_from_m) / CELL_SIZE_M + 1e-9))
    n_along = int(np.ceil(span.length_m / CELL_SIZE_M - 1e-9))
    cell_to = span.s_to_m if last >= n_along else span.s_from_m + last * CELL_SIZE_M
    ratio = None
    n_cells = 0
    if last > first:
        tally = crack_tally(scene, span.s_from_m + first * CELL_SIZE_M, cell_to)
        r = tally.ratio()
        ratio, n_cells = r.crack_ratio_pct, r.n_cells
    sections = [
        section_truth(scene, a, b, float(span.kp_km), span.offset_m + a - span.s_from_m)
        for a, b in section_bounds(span)
        if a >= lo - 1e-9 and b <= hi + 1e-9
    ]
    m = (s_iri >= covered_from) & (s_iri < covered_to)
    iri_l = float(rs_left[m].mean()) if m.any() else None
    iri_r = float(rs_right[m].mean()) if m.any() else None
    iri = (iri_l + iri_r) / 2 if iri_l is not None and iri_r is not None else None
    rut = _mean_or_none([s.rut_depth_mm for s in sections])
    rut_max = max((s.rut_depth_mm for s in sections), default=None)
    holes = sum(1 for h in scene.potholes if covered_from <= h.s_m < covered_to and _in_lane(scene, h.t_m))
    seg = SegmentTruth(
        route_no=route.route_no,
        direction=direction,
        kp_km=float(span.kp_km),
        offset_m=float(span.offset_m),
        length_m=float(span.length_m),
        chainage_m=float(span.s_from_m),
        partial=bool(covered_from > span.s_from_m + 1e-6 or covered_to < span.s_to_m - 1e-6),
        covered_length_m=float(covered_to - covered_from),
        n_cells=n_cells,
        crack_ratio_pct=ratio,
        rut_depth_mm=rut,
        rut_depth_max_mm=rut_max,
        iri_mm_per_m=iri,
        iri_left_mm_per_m=iri_l,
        iri_right_mm_per_m=iri_r,
        pothole_count=holes,
        category=diagnose(ratio, rut, iri, GENERAL_ROAD),
    )
    return seg, sections


def _in_lane(scene: Scene, t_m: float) -> bool:
    left, right = scene.lane.edges_t
    return min(left, right) <= t_m <= max(left, right)


def pothole_truths(scene: Scene, lo_m: float, hi_m: float, direction: Direction) -> list[PotholeTruth]:
    """Every pothole between chainages ``lo_m`` and ``hi_m`` (both lanes)."""
    route = scene.route
    out = []
    for h in scene.potholes:
        if not lo_m <= h.s_m <= hi_m:
            continue
        x, y = route.to_plane(np.array([h.s_m]), np.array([h.t_m]))
        lat, lon = route.to_latlon(x, y)[0]
        pos = route.locate(h.s_m, direction)
        outline = h.outline_st()
        diameter = float(np.max(np.linalg.norm(outline[:, None] - outline[None], axis=-1)))
        out.append(
            PotholeTruth(
                float(lat),
                float(lon),
                h.s_m,
                pos.kp_km,
                pos.offset_m,
                h.t_m,
                h.depth_mm,
                diameter,
                _in_lane(scene, h.t_m),
            )
        )
    out.sort(key=lambda p: p.chainage_m, reverse=direction == Direction.UP)
    return out


@dataclass(frozen=True)
class FrameTruth:
    """Where the phone was when a frame was taken (its true UTC time = video start + t_s)."""

    frame_index: int
    t_s: float  # video pts (s)
    lat: float
    lon: float
    heading_deg: float  # compass, clockwise from north
    speed_mps: float
    route_no: str
    direction: Direction
    kp_km: float
    offset_m: float
    chainage_m: float
    lateral_m: float  # t of the point below the phone (m, left of the centreline +)
    camera_height_m: float  # true lens height above the road datum, body motion included
    camera_pitch_deg: float
    camera_roll_deg: float


def frame_truths(
    route: Route,
    direction: Direction,
    t_s: np.ndarray,
    s_m: np.ndarray,
    t_m: np.ndarray,
    heading_rad: np.ndarray,
    speed_mps: np.ndarray,
    height_m: np.ndarray,
    pitch_deg: np.ndarray,
    roll_deg: np.ndarray,
) -> list[FrameTruth]:
    """Per frame (arrays of the frames' values, shape (n,))."""
    x, y = route.to_plane(s_m, t_m)
    latlon = route.to_latlon(x, y)
    bearing = route.bearing_deg(heading_rad)
    out = []
    for i in range(len(t_s)):
        pos = route.locate(float(s_m[i]), direction)
        out.append(
            FrameTruth(
                i,
                float(t_s[i]),
                float(latlon[i, 0]),
                float(latlon[i, 1]),
                float(bearing[i]),
                float(speed_mps[i]),
                route.route_no,
                direction,
                pos.kp_km,
                pos.offset_m,
                float(s_m[i]),
                float(t_m[i]),
                float(height_m[i]),
                float(pitch_deg[i]),
                float(roll_deg[i]),
            )
        )
    return out
