"""The synthetic road surface as vectors in route coordinates (chainage s, lateral t), in metres.

Cross-section (Japanese left-hand traffic): two lanes of 3.5 m either side of the centre line
(t = 0), 0.75 m shoulders, 15 cm edge lines just outside the lanes, a centre line that is
white dashed (5 m paint, 5 m gap) or yellow solid where passing is forbidden. Traffic toward
increasing km (下り) keeps left of the centre line: its lane is t in [0, 3.5]; 上り uses
t in [-3.5, 0].

Geometry that makes the truth (``profile_height``, metres, up positive):

- a 2 % cross-fall from the crown to the shoulders;
- ISO 8608 roughness: two independent longitudinal profiles (the wheel paths of the driven
  lane), class A-D varying along the route, interpolated linearly across the road (a linear
  term in t changes no rut depth: the crest line tilts with it);
- ruts: smooth cos^2 troughs, 1 m wide, in each wheel path of each lane, depth varying along s;
- potholes: bowls 30-80 mm deep with steep walls and irregular outlines;
- patching: rectangles raised 3-8 mm with 2 cm ramps.

Relief finer than a profilometer's footprint (asphalt texture of +-0.5 mm and crack grooves) is
added only when rasterising (``surface.py``): it shades the image but is not part of the truth.
Cracks are polylines 2-10 mm wide; they darken the albedo and count in the crack ratio.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
from scipy.interpolate import PchipInterpolator
from scipy.spatial import Voronoi

from pavement.diagnosis import Category
from pavement.segments import Direction
from pavement.synthetic.lane_mesh import (
    MeshTally,
    cells_overlapping,
    cells_touched_by_polylines,
    lane_mesh,
)
from pavement.synthetic.route import Route, Span, profile_stations, section_bounds, segment_spans

INDEX_BIN_M = 5.12  # spatial index bins (= the renderer's chunk length)


@dataclass(frozen=True)
class RoadLayout:
    """Cross-section dimensions (m) and markings."""

    lane_width_m: float = 3.5
    shoulder_m: float = 0.75
    line_width_m: float = 0.15
    crossfall: float = 0.02  # m/m, falling from the crown to the shoulders
    dash_m: float = 5.0  # dashed centre line: paint ...
    gap_m: float = 5.0  # ... and gap
    wheel_offset_m: float = 0.85  # wheel paths at the lane centre +- this

    @property
    def paved_half_m(self) -> float:
        return self.lane_width_m + self.shoulder_m


@dataclass(frozen=True)
class Lane:
    """One lane, seen by its traffic. ``sign`` +1 is the lane at t > 0 (下り), -1 at t < 0 (上り).

    ``u`` runs across the lane from its left edge as the driver sees it (the shoulder side in
    left-hand traffic) to its right edge (the centre line)."""

    sign: int
    width_m: float = 3.5
    wheel_offset_m: float = 0.85

    def t_of_u(self, u_m: np.ndarray | float) -> np.ndarray:
        return self.sign * (self.width_m - np.asarray(u_m, dtype=float))

    def u_of_t(self, t_m: np.ndarray | float) -> np.ndarray:
        return self.width_m - self.sign * np.asarray(t_m, dtype=float)

    @property
    def wheel_paths_u(self) -> tuple[float, float]:
        """Left and right wheel-path centres (u, m)."""
        c = self.width_m / 2
        return c - self.wheel_offset_m, c + self.wheel_offset_m

    @property
    def edges_t(self) -> tuple[float, float]:
        """t of the left edge (u = 0) and of the right edge (u = width)."""
        return float(self.t_of_u(0.0)), float(self.t_of_u(self.width_m))


def lane_for(direction: Direction, layout: RoadLayout = RoadLayout()) -> Lane:
    sign = -1 if direction == Direction.UP else 1
    return Lane(sign, layout.lane_width_m, layout.wheel_offset_m)


class CrackKind(StrEnum):
    LONGITUDINAL = "longitudinal"  # D00
    TRANSVERSE = "transverse"  # D10
    ALLIGATOR = "alligator"  # D20, one polyline per edge of the network


@dataclass(frozen=True, eq=False)
class Crack:
    """A crack polyline: points (n, 2) in (s, t) metres, width in mm."""

    kind: CrackKind
    st_m: np.ndarray
    width_mm: float
    bbox: tuple[float, float, float, float] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        lo, hi = self.st_m.min(axis=0), self.st_m.max(axis=0)
        object.__setattr__(self, "bbox", (float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])))


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


@dataclass(frozen=True)
class Pothole:
    """A bowl with steep walls: depth ``depth_mm`` over most of it, walls over the outer 30 %
    of the radius. The outline is an ellipse (radius ``radius_m``, ``aspect`` = along/across)
    wobbled by a few harmonics."""

    s_m: float
    t_m: float
    radius_m: float
    aspect: float
    rotation_rad: float
    depth_mm: float
    wobble: tuple[tuple[float, float], ...] = ()  # (amplitude as a share of the radius, phase)

    @property
    def max_radius_m(self) -> float:
        return self.radius_m * max(self.aspect, 1 / self.aspect) * (1 + sum(abs(a) for a, _ in self.wobble))

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        r = self.max_radius_m
        return self.s_m - r, self.t_m - r, self.s_m + r, self.t_m + r

    def _polar(self, ds: np.ndarray, dt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        c, s = math.cos(self.rotation_rad), math.sin(self.rotation_rad)
        a = (c * ds + s * dt) / math.sqrt(self.aspect)
        b = (-s * ds + c * dt) * math.sqrt(self.aspect)
        return np.hypot(a, b), np.arctan2(b, a)

    def _boundary(self, angle: np.ndarray) -> np.ndarray:
        r = np.ones_like(angle)
        for k, (amp, phase) in enumerate(self.wobble, start=2):
            r = r + amp * np.cos(k * angle + phase)
        return self.radius_m * r

    def depth_m(self, ds: np.ndarray, dt: np.ndarray) -> np.ndarray:
        """Depth (m, positive down) at offsets (ds, dt) from the centre."""
        rho, ang = self._polar(ds, dt)
        rn = rho / self._boundary(ang)
        wall = _smoothstep((1.0 - rn) / 0.3)
        return self.depth_mm / 1000.0 * (1.0 - 0.15 * np.minimum(rn, 1.0) ** 2) * wall

    def outline_st(self, n: int = 64) -> np.ndarray:
        """The rim (depth 0) as a closed polygon (n, 2) in (s, t)."""
        ang = np.linspace(0, 2 * np.pi, n, endpoint=False)
        r = self._boundary(ang)
        a, b = r * np.cos(ang) * math.sqrt(self.aspect), r * np.sin(ang) / math.sqrt(self.aspect)
        c, s = math.cos(self.rotation_rad), math.sin(self.rotation_rad)
        return np.column_stack([self.s_m + c * a - s * b, self.t_m + s * a + c * b])


@dataclass(frozen=True)
class Patch:
    """A patched rectangle (centre, length along s, width across), raised ``raise_mm`` with
    2 cm ramps, its albedo multiplied by ``tone``."""

    s_m: float
    t_m: float
    length_m: float
    width_m: float
    rotation_rad: float
    raise_mm: float
    tone: float

    RAMP_M = 0.02

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        r = 0.5 * math.hypot(self.length_m, self.width_m) + self.RAMP_M
        return self.s_m - r, self.t_m - r, self.s_m + r, self.t_m + r

    def inside_depth_m(self, ds: np.ndarray, dt: np.ndarray) -> np.ndarray:
        """Signed distance (m) inside the rectangle's edge (negative outside)."""
        c, s = math.cos(self.rotation_rad), math.sin(self.rotation_rad)
        a = c * ds + s * dt
        b = -s * ds + c * dt
        return np.minimum(self.length_m / 2 - np.abs(a), self.width_m / 2 - np.abs(b))

    def height_m(self, ds: np.ndarray, dt: np.ndarray) -> np.ndarray:
        return self.raise_mm / 1000.0 * _smoothstep(self.inside_depth_m(ds, dt) / self.RAMP_M + 0.5)

    def outline_st(self) -> np.ndarray:
        c, s = math.cos(self.rotation_rad), math.sin(self.rotation_rad)
        a = np.array([-1, 1, 1, -1]) * self.length_m / 2
        b = np.array([-1, -1, 1, 1]) * self.width_m / 2
        return np.column_stack([self.s_m + c * a - s * b, self.t_m + s * a + c * b])


@dataclass(frozen=True, eq=False)
class RutField:
    """Rut depth (mm) of the wheel paths of both lanes along s, and their cos^2 cross-section.

    ``depth_mm`` has shape (k, 4) at ``knots_s_m`` (k,); columns follow ``centres_t_m`` (4,).
    The trough of depth D centred at c is D cos^2(pi (t - c) / (2 h)) for |t - c| < h."""

    knots_s_m: np.ndarray
    depth_mm: np.ndarray
    centres_t_m: np.ndarray
    half_width_m: float = 0.5
    _interp: PchipInterpolator = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_interp", PchipInterpolator(self.knots_s_m, self.depth_mm, axis=0))

    def depths_mm(self, s_m: np.ndarray) -> np.ndarray:
        """(n, 4) depths at chainages (n,); clamped to the knots' range."""
        s = np.clip(np.asarray(s_m, dtype=float), self.knots_s_m[0], self.knots_s_m[-1])
        return np.maximum(self._interp(s), 0.0)

    def shape(self, dt_m: np.ndarray) -> np.ndarray:
        x = np.clip(np.abs(dt_m) / self.half_width_m, 0.0, 1.0)
        return np.cos(0.5 * np.pi * x) ** 2

    def height_m(self, s_m: np.ndarray, t_m: np.ndarray) -> np.ndarray:
        """Height (m, <= 0) at points; ``s_m`` and ``t_m`` broadcast together."""
        s_m, t_m = np.broadcast_arrays(np.asarray(s_m, float), np.asarray(t_m, float))
        d = self.depths_mm(s_m.ravel()).reshape(*s_m.shape, 4)
        z = np.zeros(s_m.shape)
        for k, c in enumerate(self.centres_t_m):
            z -= d[..., k] * self.shape(t_m - c)
        return z / 1000.0


@dataclass(frozen=True, eq=False)
class Roughness:
    """Longitudinal elevation (m) of the driven lane's two wheel paths every ``step_m`` from
    ``s0_m``, interpolated linearly in t across the road."""

    s0_m: float
    step_m: float
    left_m: np.ndarray
    right_m: np.ndarray
    t_left_m: float
    t_right_m: float
    gd_n0: np.ndarray  # ISO 8608 Gd(n0) (m^3) that shaped the profile, per sample (diagnostic)

    def _at(self, profile: np.ndarray, s_m: np.ndarray) -> np.ndarray:
        f = np.clip((np.asarray(s_m, float) - self.s0_m) / self.step_m, 0.0, len(profile) - 1.000001)
        i = f.astype(np.int64)
        w = f - i
        return profile[i] * (1 - w) + profile[i + 1] * w

    def height_m(self, s_m: np.ndarray, t_m: np.ndarray) -> np.ndarray:
        zl, zr = self._at(self.left_m, s_m), self._at(self.right_m, s_m)
        return zl + (zr - zl) * self.weight(t_m)

    def weight(self, t_m: np.ndarray) -> np.ndarray:
        """Weight of the right wheel path's profile at ``t_m``: linear across the driven lane
        (its wheel paths at 0 and 1, its edges at about -0.53 and 1.53), constant beyond it, so
        that the other lane does not tilt without bound."""
        w = (np.asarray(t_m, float) - self.t_left_m) / (self.t_right_m - self.t_left_m)
        return np.clip(w, -0.6, 1.6)


@dataclass(frozen=True)
class Tree:
    s_m: float
    t_m: float
    trunk_height_m: float
    canopy_radius_m: float
    canopy_height_m: float  # height of the canopy's centre


@dataclass(frozen=True)
class Pole:
    s_m: float
    t_m: float
    height_m: float = 9.0
    diameter_m: float = 0.3


@dataclass(frozen=True)
class Sun:
    azimuth_deg: float  # compass, clockwise from north
    elevation_deg: float
    sun_irradiance: float = 2.6  # relative units; shade receives only the sky term
    sky_irradiance: float = 0.75


@dataclass(frozen=True)
class SpanPlan:
    """The condition a generated stretch of one lane was aimed at (for tests and reports)."""

    span: Span
    lane_sign: int
    crack_category: Category
    crack_target_pct: float
    crack_estimate_pct: float
    rut_target_mm: float
    roughness_class: str


@dataclass(frozen=True, eq=False)
class Scene:
    """Everything on and beside the road, in route coordinates."""

    seed: int
    route: Route
    layout: RoadLayout
    lane: Lane  # the driven lane
    cracks: tuple[Crack, ...]
    potholes: tuple[Pothole, ...]
    patches: tuple[Patch, ...]
    ruts: RutField
    roughness: Roughness
    trees: tuple[Tree, ...]
    poles: tuple[Pole, ...]
    sun: Sun
    no_passing: tuple[tuple[float, float], ...]  # chainage intervals with a yellow solid centre line
    tone_knots_s_m: np.ndarray  # asphalt tone (albedo) along the route
    tone_values: np.ndarray
    plans: tuple[SpanPlan, ...] = ()
    _index: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index: dict[int, tuple[list[int], list[int], list[int]]] = {}
        for kind, items in enumerate((self.cracks, self.potholes, self.patches)):
            for i, item in enumerate(items):
                b = item.bbox
                for k in range(int(b[0] // INDEX_BIN_M), int(b[2] // INDEX_BIN_M) + 1):
                    index.setdefault(k, ([], [], []))[kind].append(i)
        object.__setattr__(self, "_index", index)
        # Cracks as flat arrays, for rasterising many at once.
        lengths = np.array([len(c.st_m) for c in self.cracks], np.int64)
        object.__setattr__(
            self,
            "_crack_points",
            np.concatenate([c.st_m for c in self.cracks]) if self.cracks else np.zeros((0, 2)),
        )
        object.__setattr__(self, "_crack_start", np.concatenate([[0], np.cumsum(lengths)]))
        object.__setattr__(self, "_crack_width_mm", np.array([c.width_mm for c in self.cracks]))
        object.__setattr__(
            self, "_crack_alligator", np.array([c.kind == CrackKind.ALLIGATOR for c in self.cracks])
        )
        object.__setattr__(self, "_tree_s", np.array([t.s_m for t in self.trees]))
        object.__setattr__(self, "_pole_s", np.array([p.s_m for p in self.poles]))

    def crack_polylines_in(
        self, s_from_m: float, s_to_m: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Cracks that may reach [s_from_m, s_to_m], flat: points (M, 2), points per crack (m,),
        width (mm, (m,)) and whether each belongs to an alligator network (m,)."""
        ids: set[int] = set()
        for k in range(int(s_from_m // INDEX_BIN_M), int(s_to_m // INDEX_BIN_M) + 1):
            ids.update(self._index.get(k, ((), (), ()))[0])
        idx = np.array(sorted(ids), np.int64)
        starts = self._crack_start[idx]
        lens = self._crack_start[idx + 1] - starts
        point_idx = np.arange(lens.sum()) - np.repeat(np.cumsum(lens) - lens, lens) + np.repeat(starts, lens)
        return self._crack_points[point_idx], lens, self._crack_width_mm[idx], self._crack_alligator[idx]

    def roadside_in(self, s_from_m: float, s_to_m: float) -> tuple[list[Tree], list[Pole]]:
        """Trees and poles standing between the two chainages."""
        ta, tb = np.searchsorted(self._tree_s, [s_from_m, s_to_m])
        pa, pb = np.searchsorted(self._pole_s, [s_from_m, s_to_m])
        return list(self.trees[ta:tb]), list(self.poles[pa:pb])

    def defects_in(self, s_from_m: float, s_to_m: float) -> tuple[list[Crack], list[Pothole], list[Patch]]:
        """Cracks, potholes and patches whose bounding box may reach [s_from_m, s_to_m]."""
        ids: tuple[set[int], set[int], set[int]] = (set(), set(), set())
        for k in range(int(s_from_m // INDEX_BIN_M), int(s_to_m // INDEX_BIN_M) + 1):
            for kind, lst in enumerate(self._index.get(k, ((), (), ()))):
                ids[kind].update(lst)
        return (
            [
                self.cracks[i]
                for i in sorted(ids[0])
                if self.cracks[i].bbox[2] >= s_from_m and self.cracks[i].bbox[0] <= s_to_m
            ],
            [self.potholes[i] for i in sorted(ids[1])],
            [self.patches[i] for i in sorted(ids[2])],
        )

    def crossfall_m(self, t_m: np.ndarray) -> np.ndarray:
        return -self.layout.crossfall * np.minimum(np.abs(t_m), self.layout.paved_half_m)

    def height_range_m(self) -> tuple[float, float]:
        """Bounds of ``profile_height`` anywhere (m), for the renderer's ray bracket."""
        rough = np.concatenate([self.roughness.left_m, self.roughness.right_m])
        slope_lim = np.abs(self.roughness.right_m - self.roughness.left_m).max() * 0.6
        lo = rough.min() - slope_lim - self.layout.crossfall * self.layout.paved_half_m
        lo -= self.ruts.depth_mm.max() / 1000 + max((p.depth_mm for p in self.potholes), default=0) / 1000
        hi = rough.max() + slope_lim + max((p.raise_mm for p in self.patches), default=0) / 1000
        return float(lo - 0.01), float(hi + 0.005)

    def profile_height(self, s_m: np.ndarray, t_m: np.ndarray) -> np.ndarray:
        """True surface height (m) at points; ``s_m`` and ``t_m`` broadcast together, so a
        grid is ``profile_height(s[None, :], t[:, None])`` (rows = t, columns = s)."""
        s_m = np.asarray(s_m, dtype=float)
        t_m = np.asarray(t_m, dtype=float)
        grid = s_m.ndim == 2 and t_m.ndim == 2 and s_m.shape[0] == 1 and t_m.shape[1] == 1
        if grid:  # separable parts evaluated on the axes, then combined
            sa, ta = s_m[0], t_m[:, 0]
            zl, zr = (
                self.roughness._at(self.roughness.left_m, sa),
                self.roughness._at(self.roughness.right_m, sa),
            )
            w = self.roughness.weight(ta)
            z = (self.crossfall_m(ta) * 1.0)[:, None] + zl[None, :] + np.outer(w, zr - zl)
            depth = self.ruts.depths_mm(sa) / 1000.0
            for k, c in enumerate(self.ruts.centres_t_m):
                shape = self.ruts.shape(ta - c)
                rows = np.flatnonzero(shape > 0)
                if len(rows):
                    z[rows[0] : rows[-1] + 1] -= np.outer(shape[rows[0] : rows[-1] + 1], depth[:, k])
        else:
            z = self.crossfall_m(t_m) + self.roughness.height_m(s_m, t_m) + self.ruts.height_m(s_m, t_m)
            z = np.array(np.broadcast_to(z, np.broadcast_shapes(s_m.shape, t_m.shape)), dtype=float)
        s_b, t_b = np.broadcast_arrays(s_m, t_m)
        if z.size == 0:
            return z
        _, potholes, patches = self.defects_in(float(s_b.min()), float(s_b.max()))
        for item in (*potholes, *patches):
            b = item.bbox
            if grid:
                sa, ta = s_m[0], t_m[:, 0]
                i0, i1 = np.searchsorted(sa, [b[0], b[2]])
                j0, j1 = np.searchsorted(ta, [b[1], b[3]])  # t axis ascending
                if i1 <= i0 or j1 <= j0:
                    continue
                ds = sa[i0:i1][None, :] - item.s_m
                dt = ta[j0:j1][:, None] - item.t_m
                sub = (slice(j0, j1), slice(i0, i1))
            else:
                sub = (s_b >= b[0]) & (s_b <= b[2]) & (t_b >= b[1]) & (t_b <= b[3])
                if not sub.any():
                    continue
                ds, dt = s_b[sub] - item.s_m, t_b[sub] - item.t_m
            if isinstance(item, Pothole):
                z[sub] -= item.depth_m(ds, dt)
            else:
                z[sub] += item.height_m(ds, dt)
        return z

    def tone(self, s_m: np.ndarray) -> np.ndarray:
        return np.interp(s_m, self.tone_knots_s_m, self.tone_values)


# --------------------------------------------------------------------------------------------
# Generation
# --------------------------------------------------------------------------------------------

CRACK_TARGET_PCT = {Category.I: (3.0, 15.0), Category.II: (24.0, 35.0), Category.III: (45.0, 65.0)}
CRACK_LIMIT_PCT = {Category.I: 18.5, Category.II: 38.5, Category.III: 80.0}
RUT_TARGET_MM = {Category.I: (2.0, 15.0), Category.II: (23.0, 35.0), Category.III: (42.0, 49.0)}
# ISO 8608 classes: Gd(n0 = 0.1 cycle/m) bounds in 1e-6 m^3 (class A starts at 4: not glass).
# Drawn in the lower half (geometric) of each class: IRI ~ 1.2-2.4, 3.4-4.8, 6.8-9.6, 13-16 mm/m.
ROUGHNESS_CLASSES = {"A": (4.0, 16.0), "B": (32.0, 64.0), "C": (128.0, 256.0), "D": (512.0, 724.0)}
# Rougher classes where the surface is in worse condition (a segment's crack category).
_CLASS_P = {
    Category.I: {"A": 0.6, "B": 0.35, "C": 0.05, "D": 0.0},
    Category.II: {"A": 0.35, "B": 0.45, "C": 0.15, "D": 0.05},
    Category.III: {"A": 0.15, "B": 0.45, "C": 0.3, "D": 0.1},
}


def _lane_st(lane: Lane, s: np.ndarray, u: np.ndarray) -> np.ndarray:
    return np.column_stack([s, lane.t_of_u(u)])


def _longitudinal(rng: np.random.Generator, lane: Lane, s_lo: float, s_hi: float, max_len: float) -> Crack:
    length = min(rng.uniform(1.5, 12.0), max_len, s_hi - s_lo - 0.2)
    s0 = rng.uniform(s_lo + 0.1, s_hi - 0.1 - length)
    wheel = rng.choice((*lane.wheel_paths_u, lane.width_m / 2, 0.25))
    u0 = np.clip(wheel + rng.normal(0, 0.15), 0.08, lane.width_m - 0.08)
    n = max(3, int(length / rng.uniform(0.05, 0.1)))
    s = s0 + np.linspace(0, length, n) + rng.normal(0, 0.01, n)
    s = np.sort(s)
    drift = rng.normal(0, 0.02)
    u = u0 + np.cumsum(rng.normal(drift * (s[1] - s[0]), 0.008, n))
    u = np.clip(u, 0.05, lane.width_m - 0.05)
    return Crack(CrackKind.LONGITUDINAL, _lane_st(lane, s, u), float(rng.uniform(2.0, 10.0)))


def _transverse(rng: np.random.Generator, lane: Lane, s_lo: float, s_hi: float) -> Crack:
    s0 = rng.uniform(s_lo + 0.2, s_hi - 0.2)
    u_a = rng.uniform(0.05, 1.2)
    u_b = rng.uniform(max(u_a + 1.0, 2.2), lane.width_m - 0.05)
    n = max(3, int((u_b - u_a) / rng.uniform(0.05, 0.1)))
    u = np.linspace(u_a, u_b, n)
    skew = rng.normal(0, 0.08)
    s = s0 + skew * (u - u_a) + np.cumsum(rng.normal(0, 0.007, n))
    s = np.clip(s, s_lo + 0.05, s_hi - 0.05)
    return Crack(CrackKind.TRANSVERSE, _lane_st(lane, s, u), float(rng.uniform(2.0, 10.0)))


def _alligator(rng: np.random.Generator, lane: Lane, s_lo: float, s_hi: float, area_m2: float) -> list[Crack]:
    """A network of polygonal cracks (Voronoi edges, jittered) over a patch around a wheel path."""
    width = rng.uniform(0.7, 1.4)
    length = float(np.clip(area_m2 / width, 0.8, min(8.0, s_hi - s_lo - 0.4)))
    s0 = rng.uniform(s_lo + 0.2, s_hi - 0.2 - length)
    uc = rng.choice(lane.wheel_paths_u) + rng.normal(0, 0.1)
    u0 = float(np.clip(uc - width / 2, 0.05, lane.width_m - 0.05 - width))
    cell = rng.uniform(0.15, 0.3)
    ns, nu = max(2, int(length / cell)), max(2, int(width / cell))
    gs, gu = np.meshgrid((np.arange(ns + 4) - 1.5) * length / ns, (np.arange(nu + 4) - 1.5) * width / nu)
    pts = np.column_stack([gs.ravel(), gu.ravel()]) + rng.normal(0, 0.3 * cell, (gs.size, 2))
    vor = Voronoi(pts)
    ridges = np.array([r for r in vor.ridge_vertices if r[0] >= 0 and r[1] >= 0])
    p, q = vor.vertices[ridges[:, 0]], vor.vertices[ridges[:, 1]]
    lim = np.array([length, width])
    inside = np.all((p >= 0) & (p <= lim) & (q >= 0) & (q <= lim), axis=1)
    p, q = p[inside], q[inside]
    m = len(p)
    mids = p[:, None, :] + (q - p)[:, None, :] * np.array([0.33, 0.67])[None, :, None]
    mids += rng.normal(0, 0.012, (m, 2, 2))
    poly = np.concatenate([p[:, None, :], mids, q[:, None, :]], axis=1)
    st = np.stack([s0 + poly[..., 0], lane.t_of_u(u0 + poly[..., 1])], axis=-1)
    widths = np.clip(rng.uniform(2.0, 4.5) + rng.normal(0, 0.6, m), 2.0, 6.0)
    return [Crack(CrackKind.ALLIGATOR, st[i], float(widths[i])) for i in range(m)]


def _patch(rng: np.random.Generator, lane: Lane, s_lo: float, s_hi: float) -> Patch:
    length = min(rng.uniform(0.8, 3.5), s_hi - s_lo - 0.4)
    width = rng.uniform(0.7, 2.2)
    s = rng.uniform(s_lo + 0.2 + length / 2, s_hi - 0.2 - length / 2)
    u = np.clip(
        rng.choice(lane.wheel_paths_u) + rng.normal(0, 0.2), width / 2 + 0.1, lane.width_m - width / 2 - 0.1
    )
    tone = rng.uniform(0.62, 0.8) if rng.random() < 0.7 else rng.uniform(1.15, 1.35)
    return Patch(
        float(s),
        float(lane.t_of_u(u)),
        float(length),
        float(width),
        float(rng.normal(0, 0.03)),
        float(rng.uniform(3.0, 8.0)),
        float(tone),
    )


def _pothole(rng: np.random.Generator, lane: Lane, s_lo: float, s_hi: float, stations: np.ndarray) -> Pothole:
    """A pothole in a wheel path, kept off the rut survey's profile stations so that the truth's
    rut depths describe the ruts (a profile through a pothole would read its depth)."""
    r = rng.uniform(0.15, 0.4)
    for _ in range(50):
        s = rng.uniform(s_lo + 0.6, s_hi - 0.6)
        if len(stations) == 0 or np.min(np.abs(stations - s)) > r * 1.6 + 0.05:
            break
    u = np.clip(rng.choice(lane.wheel_paths_u) + rng.normal(0, 0.25), 0.6, lane.width_m - 0.6)
    wobble = tuple((float(rng.uniform(0.02, 0.1)), float(rng.uniform(0, 2 * np.pi))) for _ in range(3))
    return Pothole(
        float(s),
        float(lane.t_of_u(u)),
        float(r),
        float(rng.uniform(0.7, 1.4)),
        float(rng.uniform(0, np.pi)),
        float(rng.uniform(30.0, 80.0)),
        wobble,
    )


def _fill_span(
    rng: np.random.Generator, span: Span, lane: Lane, category: Category
) -> tuple[list[Crack], list[Patch], list[Pothole], float, float]:
    """Defects for one lane of one span, added until the mesh-rule ratio reaches a target drawn
    in ``category``'s band (never passing the band's top)."""
    target = float(rng.uniform(*CRACK_TARGET_PCT[category]))
    limit = CRACK_LIMIT_PCT[category]
    s_lo, s_hi = span.s_from_m, span.s_to_m
    left, right = lane.edges_t
    mesh = lane_mesh(s_lo, s_hi, left, right)
    tally = MeshTally.empty(mesh)
    cracks: list[Crack] = []
    patches: list[Patch] = []
    potholes: list[Pothole] = []
    if s_hi - s_lo < 3.0:
        return cracks, patches, potholes, target, 0.0
    area = mesh.n_cells * 0.25
    stations = np.concatenate([profile_stations(a, b) for a, b in section_bounds(span)])
    n_holes = int(rng.integers(1, 4)) if category == Category.III and rng.random() < 0.8 else 0
    n_holes = 1 if category == Category.II and rng.random() < 0.3 else n_holes
    for _ in range(n_holes):
        hole = _pothole(rng, lane, s_lo, s_hi, stations)
        tally.add(pothole=cells_overlapping(mesh, hole.outline_st())[0])
        potholes.append(hole)
    crack_boxes = np.zeros((0, 4))
    current = tally.ratio().crack_ratio_pct or 0.0
    weights = {
        "transverse": 0.3,
        "longitudinal": 0.35,
        "alligator": 0.25 if category != Category.I else 0.05,
        "patch": 0.1 if category != Category.I else 0.02,
    }
    kinds = list(weights)
    p = np.array(list(weights.values()))
    p /= p.sum()
    for _ in range(400):
        if current >= target:
            break
        gap_m2 = (target - current) / 100 * area
        kind = kinds[int(rng.choice(len(kinds), p=p))]
        if kind == "patch":
            patch = _patch(rng, lane, s_lo, s_hi)
            # Patching replaces the cracked surface: no crack runs into a patch.
            if any(_overlaps(patch.bbox, q.bbox) for q in patches) or _hits(patch.bbox, crack_boxes):
                continue
            idx, share = cells_overlapping(mesh, patch.outline_st())
            new = tally.ratio_pct_if(patch=(idx, share))
            if new <= limit:
                tally.add(patch=(idx, share))
                patches.append(patch)
                current = new
            continue
        if kind == "alligator":
            group = _alligator(rng, lane, s_lo, s_hi, area_m2=max(0.5, min(gap_m2 * 1.2, 6.0)))
        elif kind == "transverse":
            group = [_transverse(rng, lane, s_lo, s_hi)]
        else:
            group = [_longitudinal(rng, lane, s_lo, s_hi, max_len=max(1.0, gap_m2 / 0.15 * 0.5))]
        group = [c for c in group if not any(_overlaps(c.bbox, p.bbox) for p in patches)]
        if not group:
            continue
        touched = cells_touched_by_polylines(
            mesh, [c.st_m for c in group], [c.width_mm / 1000 for c in group]
        )
        new = tally.ratio_pct_if(cracks=touched)
        if new <= limit:
            tally.add(cracks=touched)
            cracks.extend(group)
            crack_boxes = np.vstack([crack_boxes, [c.bbox for c in group]])
            current = new
    return cracks, patches, potholes, target, current


def _overlaps(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _hits(box: tuple[float, float, float, float], boxes: np.ndarray) -> bool:
    """Whether ``box`` overlaps any row (s_lo, t_lo, s_hi, t_hi) of ``boxes``."""
    return bool(
        np.any(
            (boxes[:, 0] < box[2]) & (box[0] < boxes[:, 2]) & (boxes[:, 1] < box[3]) & (box[1] < boxes[:, 3])
        )
    )


def _iso8608_profile(rng: np.random.Generator, n: int, step_m: float) -> np.ndarray:
    """A random profile (m) with ISO 8608 PSD Gd(n) = 1e-6 (n / 0.1)^-2 m^3 for spatial
    frequencies 0.011-5 cycle/m (wavelengths 0.2-90 m), by random phases."""
    freqs = np.fft.rfftfreq(n, step_m)
    dn = freqs[1] - freqs[0]
    gd = np.zeros_like(freqs)
    band = (freqs >= 0.011) & (freqs <= 5.0)
    gd[band] = 1e-6 * (freqs[band] / 0.1) ** -2.0
    amp = np.sqrt(2 * gd * dn)
    coef = n / 2 * amp * np.exp(1j * rng.uniform(0, 2 * np.pi, len(freqs)))
    return np.fft.irfft(coef, n)


def _plan_categories(rng: np.random.Generator, n: int) -> list[Category]:
    """Categories for consecutive spans: every three in a row hold I, II and III."""
    order = [Category.I, Category.II, Category.III]
    out: list[Category] = []
    while len(out) < n:
        out.extend(order[i] for i in rng.permutation(3))
    return out[:n]


def build_scene(
    route: Route,
    run_from_m: float,
    run_to_m: float,
    direction: Direction,
    rng: np.random.Generator,
    seed: int,
    layout: RoadLayout = RoadLayout(),
    surface_damage: bool = True,
) -> Scene:
    """Generate the whole surface of the route window. Spans of the driven lane that the run
    covers (``run_from_m`` .. ``run_to_m`` in chainage, either order) cycle through crack
    categories I, II, III and rut categories I, II, III (each cycle in a seeded order).

    ``surface_damage=False`` gives the same road without cracks, potholes and patching (ruts and
    roughness stay): the clean road that false alarms are counted on."""
    lo, hi = min(run_from_m, run_to_m), max(run_from_m, run_to_m)
    lane = lane_for(direction, layout)
    other = Lane(-lane.sign, layout.lane_width_m, layout.wheel_offset_m)
    spans = segment_spans(route)
    run_spans = [sp for sp in spans if sp.s_to_m > lo and sp.s_from_m < hi]
    if direction == Direction.UP:
        run_spans = run_spans[::-1]
    crack_cats = _plan_categories(rng, len(run_spans))
    # Ruts cycle through I, II, III too; half the time in step with the cracks (worn stretches
    # are worn all over), so some segments are sound in every indicator.
    rut_cats = crack_cats if rng.random() < 0.5 else _plan_categories(rng, len(run_spans))
    crack_plan = dict(zip(map(id, run_spans), crack_cats, strict=True))
    rut_plan = dict(zip(map(id, run_spans), rut_cats, strict=True))
    cracks: list[Crack] = []
    patches: list[Patch] = []
    potholes: list[Pothole] = []
    plans: list[SpanPlan] = []
    rut_knots: list[float] = []
    rut_depths: list[list[float]] = []
    class_knots: list[float] = []
    class_gd: list[float] = []
    all_cats = [Category.I, Category.II, Category.III]
    for sp in spans:
        rut_row: list[float] = []
        for ln in (lane, other):
            if ln is lane and id(sp) in crack_plan:
                cat, rut_cat = crack_plan[id(sp)], rut_plan[id(sp)]
            else:
                cat = all_cats[int(rng.choice(3, p=[0.5, 0.3, 0.2]))]
                rut_cat = all_cats[int(rng.choice(3, p=[0.5, 0.3, 0.2]))]
            c, p, h, target, est = _fill_span(rng, sp, ln, cat)  # drawn either way: same seed, same road
            if surface_damage:
                cracks += c
                patches += p
                potholes += h
            rut_target = float(rng.uniform(*RUT_TARGET_MM[rut_cat]))
            rut_row.append(rut_target)
            probs = _CLASS_P[cat]
            rclass = str(rng.choice(list(probs), p=list(probs.values())))
            if ln is lane:
                lo_gd, hi_gd = ROUGHNESS_CLASSES[rclass]
                class_knots.append((sp.s_from_m + sp.s_to_m) / 2)
                class_gd.append(1e-6 * float(np.exp(rng.uniform(np.log(lo_gd), np.log(hi_gd)))))
            plans.append(SpanPlan(sp, ln.sign, cat, target, est, rut_target, rclass))
        # Knots at the centres of the 20 m sections; depth varies a little along the span.
        n_k = max(1, round(sp.length_m / 20.0))
        for k in range(n_k):
            rut_knots.append(sp.s_from_m + (k + 0.5) * sp.length_m / n_k)
            row = []
            for d in rut_row:
                main = max(0.0, d + rng.normal(0, 1.2))
                row += (
                    [main, main * rng.uniform(0.55, 1.0)]
                    if rng.random() < 0.5
                    else [main * rng.uniform(0.55, 1.0), main]
                )
            rut_depths.append(row)
    # Columns follow (driven lane left, right, other lane left, right) wheel paths.
    centres = np.array(
        [*lane.t_of_u(np.array(lane.wheel_paths_u)), *other.t_of_u(np.array(other.wheel_paths_u))]
    )
    rut_knots_a = np.array(rut_knots)
    order = np.argsort(rut_knots_a)
    ruts = RutField(rut_knots_a[order], np.clip(np.array(rut_depths)[order], 0.0, 50.0), centres)

    step = 0.05
    n = int(np.ceil((route.s_end_m - route.s0_m) / step)) + 1
    gd = np.exp(np.interp(route.s0_m + np.arange(n) * step, class_knots, np.log(class_gd)))
    gain = np.sqrt(gd / 1e-6)
    t_left, t_right = (float(v) for v in lane.t_of_u(np.array(lane.wheel_paths_u)))
    roughness = Roughness(
        route.s0_m,
        step,
        _iso8608_profile(rng, n, step) * gain,
        _iso8608_profile(rng, n, step) * gain,
        t_left,
        t_right,
        gd,
    )

    trees, poles = _roadside(rng, route, layout)
    sun = Sun(float(rng.uniform(110.0, 250.0)), float(rng.uniform(28.0, 60.0)))
    no_passing = _no_passing(rng, route)
    tone_knots = np.arange(route.s0_m, route.s_end_m + 60.0, 60.0)
    tone_values = rng.uniform(0.75, 1.15, len(tone_knots))
    return Scene(
        seed,
        route,
        layout,
        lane,
        tuple(cracks),
        tuple(potholes),
        tuple(patches),
        ruts,
        roughness,
        tuple(trees),
        tuple(poles),
        sun,
        no_passing,
        tone_knots,
        tone_values,
        tuple(plans),
    )


def _roadside(rng: np.random.Generator, route: Route, layout: RoadLayout) -> tuple[list[Tree], list[Pole]]:
    trees: list[Tree] = []
    s = route.s0_m
    while s < route.s_end_m:
        s += rng.exponential(9.0)
        side = rng.choice([-1.0, 1.0])
        if rng.random() < 0.35:  # open fields: gaps in the tree line
            s += rng.uniform(10, 40)
            continue
        h = rng.uniform(5.0, 12.0)
        r = rng.uniform(1.5, 3.5)
        trees.append(
            Tree(
                float(s),
                float(side * (layout.paved_half_m + 1.2 + r * 0.6 + rng.exponential(2.5))),
                float(h * 0.35),
                float(r),
                float(h - r * 0.8),
            )
        )
    poles: list[Pole] = []
    side = rng.choice([-1.0, 1.0])
    s = route.s0_m + rng.uniform(0, 40)
    while s < route.s_end_m:
        poles.append(Pole(float(s), float(side * (layout.paved_half_m + 0.5 + rng.uniform(0, 0.3)))))
        s += rng.uniform(35.0, 50.0)
    return trees, poles


def _no_passing(rng: np.random.Generator, route: Route) -> tuple[tuple[float, float], ...]:
    """Yellow solid centre line where the road curves (and on some straights)."""
    curved = np.abs(route.curvature_per_m) > 1 / 900
    s = route.s0_m + np.arange(len(curved)) * route.step_m
    out = []
    edges = np.flatnonzero(np.diff(curved.astype(int)))
    bounds = np.concatenate([[0], edges + 1, [len(curved)]])
    for a, b in itertools.pairwise(bounds):
        if curved[a] or rng.random() < 0.15:
            out.append((float(s[a] - 20.0), float(s[b - 1] + 20.0)))
    return tuple(out)
