"""A synthetic route ledger: a curved centreline with 距離標 (kilometre posts) near Aomori.

The centreline is built from its curvature, as road designers do: straights, clothoids
(curvature linear in length) and circular arcs, integrated in the plane rectangular CS of
Aomori (JGD2011 zone X, EPSG:6678). Only a window of the route around the run is built, but
chainage ``s`` is counted from the route's legal start point (km 0), so posts carry their real
numbers. Posts are irregularly spaced (1000 m +- 40 m), as surveyed posts are.

Route coordinates: chainage ``s`` (m along the centreline) and lateral offset ``t`` (m, positive
to the left when facing increasing ``s``). Plane coordinates are (x easting, y northing) in
metres; headings are math angles (radians, counter-clockwise from east).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from pavement.errors import ConfigError
from pavement.geodesy import PlaneProjection, jgd2011_zone
from pavement.segments import Direction, RoutePosition

ROUTE_EPSG = 6678  # JGD2011 / Japan Plane Rectangular CS X (Aomori)
SAMPLE_STEP_M = 0.25  # centreline sampling; chord error at R = 150 m is 0.05 mm
POST_INTERVAL_M = 1000.0
POST_JITTER_M = 40.0
LEDGER_MARGIN_M = 300.0  # the ledger extends at least this far beyond the run at both ends

# Where the built window of the route starts (rural Aomori, south-west of the city).
_ORIGIN_LAT, _ORIGIN_LON = 40.7050, 140.5880


@dataclass(frozen=True)
class KilometerPost:
    """A 距離標: its number (km) and its chainage along the ledger centreline (m)."""

    kp_km: int
    chainage_m: float


@dataclass(frozen=True, eq=False)
class Route:
    """A built window of a route: centreline samples every ``step_m`` from chainage ``s0_m``.

    Arrays have shape (n,): plane coordinates of the centreline, heading (rad) and curvature
    (1/m, positive = turning left). ``posts`` are those inside the window, in km order.
    """

    route_no: str
    route_name: str
    road_class: str
    epsg: int
    s0_m: float
    step_m: float
    x_m: np.ndarray
    y_m: np.ndarray
    heading_rad: np.ndarray
    curvature_per_m: np.ndarray
    posts: tuple[KilometerPost, ...]

    @property
    def s_end_m(self) -> float:
        return self.s0_m + (len(self.x_m) - 1) * self.step_m

    @property
    def projection(self) -> PlaneProjection:
        return PlaneProjection(jgd2011_zone(self.epsg - 6668))

    def sample(self, s_m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Centreline (x, y, heading, curvature) at chainages ``s_m`` (any shape), linearly
        interpolated between samples; chainages outside the window are clamped to it."""
        f = np.clip((np.asarray(s_m, dtype=float) - self.s0_m) / self.step_m, 0.0, len(self.x_m) - 1.000001)
        i = f.astype(np.int64)
        w = f - i
        out = []
        for a in (self.x_m, self.y_m, self.heading_rad, self.curvature_per_m):
            out.append(a[i] * (1.0 - w) + a[i + 1] * w)
        return out[0], out[1], out[2], out[3]

    def to_plane(self, s_m: np.ndarray, t_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Route coordinates -> plane (x, y) in metres."""
        x, y, h, _ = self.sample(s_m)
        return x - np.sin(h) * t_m, y + np.cos(h) * t_m

    def to_route(
        self, x_m: np.ndarray, y_m: np.ndarray, s_guess_m: np.ndarray, iterations: int = 4
    ) -> tuple[np.ndarray, np.ndarray]:
        """Plane (x, y) -> route (s, t) by Newton steps on the centreline from ``s_guess_m``.

        Each step moves s by the along-track distance to the foot point, scaled by 1 / (1 - k t)
        (the foot point moves slower than a point offset toward the centre of curvature).
        """
        s = np.array(s_guess_m, dtype=float, copy=True)
        for _ in range(iterations):
            cx, cy, h, k = self.sample(s)
            dx, dy = x_m - cx, y_m - cy
            along = dx * np.cos(h) + dy * np.sin(h)
            t = -dx * np.sin(h) + dy * np.cos(h)
            s = np.clip(s + along / np.maximum(1.0 - k * t, 0.2), self.s0_m, self.s_end_m)
        cx, cy, h, _ = self.sample(s)
        t = -(x_m - cx) * np.sin(h) + (y_m - cy) * np.cos(h)
        return s, t

    def to_latlon(self, x_m: np.ndarray, y_m: np.ndarray) -> np.ndarray:
        """Plane metres -> (n, 2) array of (lat, lon) degrees (JGD2011 ~ WGS84)."""
        return self.projection.to_latlon(x_m, y_m)

    def bearing_deg(self, heading_rad: np.ndarray) -> np.ndarray:
        """Math heading (rad, CCW from east) -> compass bearing (deg, clockwise from north).
        The grid convergence of the plane CS (< 1 deg here) is ignored."""
        return np.mod(90.0 - np.degrees(heading_rad), 360.0)

    def post_at_or_before(self, s_m: float) -> tuple[KilometerPost, KilometerPost]:
        """The post at or before chainage ``s_m`` and the next one (both inside the window)."""
        for a, b in zip(self.posts, self.posts[1:], strict=False):
            if a.chainage_m <= s_m < b.chainage_m:
                return a, b
        if self.posts and abs(s_m - self.posts[-1].chainage_m) < 1e-6 and len(self.posts) >= 2:
            return self.posts[-2], self.posts[-1]
        raise ConfigError(f"chainage {s_m:.1f} m has no pair of 距離標 around it in the built route window")

    def locate(self, s_m: float, direction: Direction) -> RoutePosition:
        """距離標 + 追加距離 of a chainage, in km order whatever the driving direction."""
        post, _ = self.post_at_or_before(s_m)
        return RoutePosition(
            self.route_no, direction, float(post.kp_km), float(s_m - post.chainage_m), float(s_m)
        )


@dataclass(frozen=True)
class RouteSpec:
    """What to build: the run's place on the route and the route's identity."""

    start_kp_km: int = 12
    start_offset_m: float = 350.0
    length_m: float = 500.0
    direction: Direction = Direction.DOWN
    route_no: str = "3"
    route_name: str = "県道3号 合成線 (synthetic)"
    road_class: str = "B"


def post_chainages(rng: np.random.Generator, n_posts: int) -> np.ndarray:
    """Chainages (m) of posts 0 .. n_posts-1: 1000 m +- 40 m apart, post 0 at the start point."""
    gaps = POST_INTERVAL_M + rng.uniform(-POST_JITTER_M, POST_JITTER_M, n_posts - 1)
    return np.concatenate([[0.0], np.cumsum(gaps)])


def _curvature_profile(rng: np.random.Generator, length_m: float, step_m: float) -> np.ndarray:
    """Curvature (1/m) every ``step_m``: straight, clothoid in, arc, clothoid out, repeated.

    Radii 180-700 m and clothoid parameters of road design for 40-60 km/h (A ~ 80-150 m)."""
    pieces: list[np.ndarray] = []
    total = 0
    n_needed = math.ceil(length_m / step_m) + 2
    sign = rng.choice([-1.0, 1.0])
    while total < n_needed:
        straight = rng.uniform(40.0, 180.0)
        radius = rng.uniform(180.0, 700.0)
        clothoid = rng.uniform(30.0, 70.0)
        arc = rng.uniform(40.0, 160.0)
        k = sign / radius
        n_s, n_c, n_a = (max(1, round(v / step_m)) for v in (straight, clothoid, arc))
        pieces += [
            np.zeros(n_s),
            np.linspace(0.0, k, n_c, endpoint=False),
            np.full(n_a, k),
            np.linspace(k, 0.0, n_c, endpoint=False),
        ]
        total += n_s + 2 * n_c + n_a
        sign = -sign if rng.random() < 0.75 else sign
    return np.concatenate(pieces)[:n_needed]


def run_range_m(spec: RouteSpec, posts_m: np.ndarray) -> tuple[float, float]:
    """Chainage of the run's start and end (start < end for 下り, start > end for 上り)."""
    start = float(posts_m[spec.start_kp_km]) + spec.start_offset_m
    sign = 1.0 if spec.direction == Direction.DOWN else -1.0
    return start, start + sign * spec.length_m


def build_route(spec: RouteSpec, rng: np.random.Generator) -> Route:
    """The route window around the run: from the post before the run (or 300 m before it,
    whichever is further) to the post after it (or 300 m after), plus 50 m."""
    if spec.length_m <= 0:
        raise ConfigError(f"run length must be > 0 m, got {spec.length_m}")
    if spec.start_kp_km < 1:
        raise ConfigError(
            f"start post must be >= 1 km so the ledger can extend before it, got {spec.start_kp_km}"
        )
    n_posts = spec.start_kp_km + int(spec.length_m // 900) + 4
    posts_m = post_chainages(rng, n_posts)
    start, end = run_range_m(spec, posts_m)
    lo, hi = min(start, end), max(start, end)
    if lo - LEDGER_MARGIN_M < 0:
        raise ConfigError("the run starts too close to the route's start point for a 300 m ledger margin")
    first_post = posts_m[posts_m <= lo].max()
    last_post = posts_m[posts_m > hi].min()
    s0 = math.floor(min(first_post, lo - LEDGER_MARGIN_M) - 50.0)
    s1 = math.ceil(max(last_post, hi + LEDGER_MARGIN_M) + 50.0)
    n = round((s1 - s0) / SAMPLE_STEP_M) + 1
    curvature = _curvature_profile(rng, s1 - s0, SAMPLE_STEP_M)[:n]
    heading0 = rng.uniform(-math.pi, math.pi)
    # Heading at samples by the trapezoid rule; positions by the midpoint heading (2nd order).
    heading = heading0 + np.concatenate(
        [[0.0], np.cumsum((curvature[1:] + curvature[:-1]) / 2 * SAMPLE_STEP_M)]
    )
    mid = (heading[1:] + heading[:-1]) / 2
    origin = PlaneProjection(jgd2011_zone(ROUTE_EPSG - 6668)).to_plane(_ORIGIN_LAT, _ORIGIN_LON)[0]
    x = origin[0] + np.concatenate([[0.0], np.cumsum(np.cos(mid) * SAMPLE_STEP_M)])
    y = origin[1] + np.concatenate([[0.0], np.cumsum(np.sin(mid) * SAMPLE_STEP_M)])
    inside = (posts_m >= s0) & (posts_m <= s0 + (n - 1) * SAMPLE_STEP_M)
    posts = tuple(
        KilometerPost(int(k), float(c)) for k, c in zip(np.flatnonzero(inside), posts_m[inside], strict=True)
    )
    return Route(
        route_no=spec.route_no,
        route_name=spec.route_name,
        road_class=spec.road_class,
        epsg=ROUTE_EPSG,
        s0_m=float(s0),
        step_m=SAMPLE_STEP_M,
        x_m=x,
        y_m=y,
        heading_rad=heading,
        curvature_per_m=curvature,
        posts=posts,
    )


@dataclass(frozen=True)
class Span:
    """A stretch of the route between chainages ``s_from_m`` and ``s_to_m``: a 100 m segment
    keyed by the 距離標 at its 起点側 end (``kp_km`` None before the first post of the window)."""

    kp_km: int | None
    offset_m: float
    s_from_m: float
    s_to_m: float
    post_interval_m: float | None  # None when the next post lies outside the window

    @property
    def length_m(self) -> float:
        return self.s_to_m - self.s_from_m


def segment_spans(route: Route, step_m: float = 100.0) -> list[Span]:
    """The route window cut into segments by ``pavement.segments.segment_bounds`` (they restart
    at every post); the ends of the window outside the posts are cut every ``step_m``."""
    from pavement.segments import segment_bounds

    spans: list[Span] = []
    posts = route.posts
    first = posts[0].chainage_m if posts else route.s_end_m
    spans.append(Span(None, 0.0, route.s0_m, first, None))
    for a, b in itertools.pairwise(posts):
        interval = b.chainage_m - a.chainage_m
        offset = 0.0
        while offset < interval - 1e-9:
            start, length = segment_bounds(offset, interval, step_m)
            spans.append(Span(a.kp_km, start, a.chainage_m + start, a.chainage_m + start + length, interval))
            offset = start + length
    if posts:
        last = posts[-1]
        s = last.chainage_m
        while s < route.s_end_m - 1e-9:
            e = min(s + step_m, route.s_end_m)
            spans.append(Span(last.kp_km, s - last.chainage_m, s, e, None))
            s = e
    return [sp for sp in spans if sp.length_m > 1e-6]


SECTION_M = 20.0
PROFILES_PER_SECTION = 5


def section_bounds(span: Span) -> list[tuple[float, float]]:
    """Chainage ranges of the 20 m sections of a segment (the last one may be longer or shorter,
    as ``segment_bounds`` cuts segments at posts)."""
    from pavement.segments import segment_bounds

    out = []
    offset = 0.0
    while offset < span.length_m - 1e-9:
        start, length = segment_bounds(offset, span.length_m, SECTION_M)
        out.append((span.s_from_m + start, span.s_from_m + start + length))
        offset = start + length
    return out


def profile_stations(a_m: float, b_m: float) -> np.ndarray:
    """Chainages of the transverse profiles of the section [a_m, b_m]: at 10 %, 30 %, ... 90 %."""
    return a_m + (np.arange(PROFILES_PER_SECTION) + 0.5) * (b_m - a_m) / PROFILES_PER_SECTION
