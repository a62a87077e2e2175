"""Linear referencing: from plane positions to route, direction, 距離標 + 追加距離.

A route ledger holds centrelines digitised from the route's start point toward increasing km,
and 距離標 (kilometre posts) as calibration points on them. Posts are not exactly 1000 m apart:
the 追加距離 of a point is the distance measured along the centreline past the post before it, and
its post interval is the measured distance to the next post (``segments.segment_bounds`` lays the
100 m segments out in it). Before the first post and past the last one, posts are assumed at the
ledger's nominal spacing, and positions there are flagged ``extrapolated``.

Map matching is a hidden Markov model solved by Viterbi (after Newson & Krumm, 2009): the states
of a frame are the local nearest points of every centreline within ``search_radius_m``, each in
both directions of travel, plus "off the ledger". Emissions weigh the distance to the centreline
(with the lane offset of left-hand traffic) and the agreement of the car's heading with the
direction of travel; transitions compare the distance moved along the route with the distance the
car travelled, and charge for U-turns, for changing route and for leaving the ledger. So a
parallel road 15 m away, the opposite carriageway and a route that doubles back on itself are
told apart by continuity, not by the nearest line alone.

Direction: 下り (DOWN) when travelling along the digitising direction (increasing km), 上り (UP)
against it. Without a ledger, ``track_positions`` labels distance along the track instead.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import shapely
from shapely.geometry import LineString, Point
from shapely.ops import linemerge, substring

from pavement.errors import ConfigError, RouteLedgerError
from pavement.geodesy import PlaneProjection
from pavement.segments import (
    Direction,
    RoutePosition,
    RunSegment,
    Segment,
    SegmentKey,
    covers_segment,
    segment_bounds,
)
from pavement.track import FramePose

TRACK_ROUTE_NO = "track"  # route number of positions referenced by distance along the track


@dataclass(frozen=True)
class CentrelineRecord:
    """One centreline feature of a ledger file, in lat/lon (EPSG:6668 / WGS84)."""

    route_no: str
    lonlat: np.ndarray  # (n, 2) lon, lat in digitising order
    route_name: str = ""
    road_class: str = ""


@dataclass(frozen=True)
class PostRecord:
    """One 距離標 feature: route number, km value and where it stands."""

    route_no: str
    kp_km: float
    lat: float
    lon: float


@dataclass(frozen=True)
class KilometrePost:
    kp_km: float
    chainage_m: float  # along the centreline from its first vertex


@dataclass(frozen=True)
class Route:
    """One continuous centreline of a route (a route may have several parts), in plane metres."""

    route_no: str
    route_name: str
    road_class: str
    centreline: LineString  # plane coordinates of the ledger's projection, digitised toward increasing km
    posts: tuple[KilometrePost, ...]  # by chainage; km increasing
    part: int = 0

    @property
    def length_m(self) -> float:
        return float(self.centreline.length)

    @property
    def nominal_spacing_km(self) -> float:
        """Median km step between posts (1.0 when there is a single post)."""
        if len(self.posts) < 2:
            return 1.0
        steps = np.diff([p.kp_km for p in self.posts])
        return float(np.median(steps))


@dataclass(frozen=True)
class PostInterval:
    """Where a chainage falls between two posts."""

    kp_km: float  # the post at or before the point (in km order)
    offset_m: float  # 追加距離 past that post
    post_chainage_m: float  # chainage of that post
    interval_m: float  # distance from that post to the next one
    extrapolated: bool  # True before the first or past the last post of the ledger


@dataclass(frozen=True)
class LedgerConfig:
    """Map-matching parameters (metres, degrees)."""

    search_radius_m: float = 50.0  # centrelines farther than this are not candidates
    distance_sigma_m: float = 6.0  # GPS error after smoothing + lane position
    lane_offset_m: float = 1.75  # the car drives this far left of the centreline (left-hand traffic)
    heading_kappa: float = 4.0  # von Mises concentration of heading vs. direction of travel
    # below this the heading says nothing (full weight from 3x): the smoothed GPS of a car pulling
    # away at 4-6 m/s can loop right round with 4 m noise
    min_heading_speed_mps: float = 3.0
    transition_scale_m: float = 4.0  # |distance along route - distance travelled| scale
    # log-likelihood cost of reversing direction on a route (12 let such a loop pass for two U-turns)
    u_turn_penalty: float = 20.0
    route_change_penalty: float = 8.0  # ... of changing to another route / part
    off_ledger_penalty: float = 10.0  # ... of leaving or rejoining the ledger
    off_ledger_distance_m: float = 20.0  # off-ledger emission = on-ledger emission at this distance
    post_tolerance_m: float = 30.0  # a post farther than this from its centreline is an error

    def __post_init__(self) -> None:
        if self.search_radius_m <= 0 or self.distance_sigma_m <= 0 or self.transition_scale_m <= 0:
            raise ConfigError("search_radius_m, distance_sigma_m and transition_scale_m must be positive")


@dataclass(frozen=True)
class RouteLedger:
    """Route centrelines with their 距離標, in the plane of ``projection``."""

    routes: tuple[Route, ...]
    projection: PlaneProjection
    warnings: tuple[str, ...] = ()
    _tree: shapely.STRtree | None = field(default=None, compare=False, repr=False)
    _edges: np.ndarray | None = field(
        default=None, compare=False, repr=False
    )  # (m, 5): route, a.x, a.y, b.x, b.y
    _edge_chainage: np.ndarray | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        edges, chain = [], []
        for r_index, route in enumerate(self.routes):
            xy = np.asarray(route.centreline.coords)[:, :2]
            seg = np.hypot(*np.diff(xy, axis=0).T)
            cum = np.concatenate([[0.0], np.cumsum(seg)])
            for i in range(len(xy) - 1):
                if seg[i] > 0:
                    edges.append((r_index, xy[i, 0], xy[i, 1], xy[i + 1, 0], xy[i + 1, 1]))
                    chain.append(cum[i])
        e = np.array(edges, dtype=float).reshape(-1, 5)
        lines = shapely.linestrings(np.stack([e[:, 1:3], e[:, 3:5]], axis=1)) if len(e) else []
        object.__setattr__(self, "_edges", e)
        object.__setattr__(self, "_edge_chainage", np.array(chain, dtype=float))
        object.__setattr__(self, "_tree", shapely.STRtree(lines))

    # ---- calibration ----------------------------------------------------------------------
    def post_interval(self, route_index: int, chainage_m: float) -> PostInterval:
        """The post at or before ``chainage_m`` on route part ``route_index`` and the interval to the next."""
        route = self.routes[route_index]
        posts = route.posts
        c = [p.chainage_m for p in posts]
        step_km = route.nominal_spacing_km
        step_m = step_km * 1000.0
        if chainage_m < c[0]:
            k = math.ceil((c[0] - chainage_m) / step_m - 1e-9)
            post_c = c[0] - k * step_m
            return PostInterval(
                round(posts[0].kp_km - k * step_km, 3), chainage_m - post_c, post_c, step_m, True
            )
        i = int(np.searchsorted(c, chainage_m, side="right") - 1)
        if i < len(posts) - 1:
            return PostInterval(posts[i].kp_km, chainage_m - c[i], c[i], c[i + 1] - c[i], False)
        k = math.floor((chainage_m - c[-1]) / step_m)
        post_c = c[-1] + k * step_m
        return PostInterval(
            round(posts[-1].kp_km + k * step_km, 3),
            chainage_m - post_c,
            post_c,
            step_m,
            k > 0 or chainage_m > route.length_m,
        )

    def position(self, route_index: int, chainage_m: float, direction: Direction) -> RoutePosition:
        iv = self.post_interval(route_index, chainage_m)
        return RoutePosition(self.routes[route_index].route_no, direction, iv.kp_km, iv.offset_m, chainage_m)

    def segment_span(self, route_index: int, chainage_m: float, direction: Direction) -> SegmentSpan:
        """The 100 m segment holding ``chainage_m``: its key and its chainage extent."""
        iv = self.post_interval(route_index, chainage_m)
        start_off, length = segment_bounds(min(iv.offset_m, iv.interval_m), iv.interval_m)
        key = SegmentKey(
            self.routes[route_index].route_no, direction, iv.kp_km, round(start_off, 3), round(length, 3)
        )
        start = iv.post_chainage_m + start_off
        return SegmentSpan(key, route_index, start, start + length)

    def span_geometry_lonlat(self, span: SegmentSpan) -> np.ndarray:
        """(n, 2) lon/lat of the centreline between the span's ends, from its 起点側 end (clipped
        to the digitised line)."""
        line = self.routes[span.route_index].centreline
        a, b = max(span.start_chainage_m, 0.0), min(span.end_chainage_m, line.length)
        if b <= a:
            pt = line.interpolate(min(max(a, 0.0), line.length))
            xy = np.array([[pt.x, pt.y], [pt.x, pt.y]])
        else:
            part = substring(line, a, b)
            xy = (
                np.asarray(part.coords)[:, :2]
                if isinstance(part, LineString)
                else np.array([[part.x, part.y]] * 2)
            )
        latlon = self.projection.to_latlon(xy[:, 0], xy[:, 1])
        return latlon[:, ::-1]

    # ---- matching ---------------------------------------------------------------------------
    def candidates(self, xy: np.ndarray, radius_m: float) -> list[list[Candidate]]:
        """Per point, the local nearest points of each centreline within ``radius_m``."""
        out: list[list[Candidate]] = []
        if self._tree is None or len(self._edges) == 0:
            return [[] for _ in range(len(xy))]
        boxes = shapely.box(
            xy[:, 0] - radius_m, xy[:, 1] - radius_m, xy[:, 0] + radius_m, xy[:, 1] + radius_m
        )
        pairs = self._tree.query(boxes)
        by_point: list[list[int]] = [[] for _ in range(len(xy))]
        for p_i, e_i in zip(pairs[0], pairs[1], strict=True):
            by_point[p_i].append(e_i)
        for p_i, edge_ids in enumerate(by_point):
            found: list[Candidate] = []
            if edge_ids:
                e = self._edges[edge_ids]
                a, b = e[:, 1:3], e[:, 3:5]
                ab = b - a
                seg_len = np.hypot(ab[:, 0], ab[:, 1])
                u = np.clip(((xy[p_i] - a) * ab).sum(1) / seg_len**2, 0, 1)
                proj = a + u[:, None] * ab
                d_vec = xy[p_i] - proj
                dist = np.hypot(d_vec[:, 0], d_vec[:, 1])
                # signed lateral offset: > 0 left of the digitising direction
                lateral = (ab[:, 0] * d_vec[:, 1] - ab[:, 1] * d_vec[:, 0]) / seg_len
                chain = self._edge_chainage[edge_ids] + u * seg_len
                tangent = np.degrees(np.arctan2(ab[:, 0], ab[:, 1])) % 360
                route_ids = e[:, 0].astype(int)
                for r in np.unique(route_ids):
                    sel = np.flatnonzero((route_ids == r) & (dist <= radius_m))
                    if not len(sel):
                        continue
                    sel = sel[np.argsort(chain[sel])]
                    # clusters of adjacent edges -> one candidate each (the closest point)
                    cluster = [sel[0]]
                    for k in [*list(sel[1:]), None]:
                        if k is not None and chain[k] - chain[cluster[-1]] < 10.0:
                            cluster.append(k)
                            continue
                        best = min(cluster, key=lambda j: dist[j])
                        found.append(
                            Candidate(
                                int(r),
                                float(chain[best]),
                                float(dist[best]),
                                float(lateral[best]),
                                float(tangent[best]),
                                proj[best].copy(),
                            )
                        )
                        if k is not None:
                            cluster = [k]
            out.append(found)
        return out


@dataclass(frozen=True)
class SegmentSpan:
    """A segment's key and its extent along the centreline of route part ``route_index``."""

    key: SegmentKey
    route_index: int
    start_chainage_m: float
    end_chainage_m: float


@dataclass(frozen=True)
class Candidate:
    """A local nearest point of a centreline to a track point."""

    route_index: int
    chainage_m: float
    distance_m: float
    lateral_m: float  # > 0: the point is left of the digitising direction
    tangent_deg: float  # digitising direction there, clockwise from north
    xy_m: np.ndarray


@dataclass(frozen=True)
class Match:
    """A track point placed on a route part (None entries of ``match_track`` = off the ledger)."""

    route_index: int
    chainage_m: float
    direction: Direction
    distance_m: float


# --------------------------------------------------------------------------------------------
# Building a ledger
# --------------------------------------------------------------------------------------------
def build_ledger(
    centrelines: Sequence[CentrelineRecord],
    posts: Sequence[PostRecord],
    projection: PlaneProjection,
    config: LedgerConfig = LedgerConfig(),
) -> RouteLedger:
    """Merge each route's centreline features, project them, and put its posts on them.

    Raises ``RouteLedgerError`` for a ledger without centrelines, a route without 距離標, a post far
    from its route, or km values that do not increase along the line (reversed lines are turned)."""
    if not centrelines:
        raise RouteLedgerError("the route ledger holds no centreline (LineString features with route_no)")
    if not posts:
        raise RouteLedgerError(
            "the route ledger has no 距離標 (kilometre post) points, so no 距離標 + 追加距離 can be "
            "given; add Point features with kind 'kilometer_post', route_no and kp_km on each "
            "centreline, or run without a ledger "
            "to segment by distance along the track"
        )
    warnings: list[str] = []
    by_route: dict[str, list[CentrelineRecord]] = {}
    for rec in centrelines:
        by_route.setdefault(str(rec.route_no), []).append(rec)
    posts_by_route: dict[str, list[PostRecord]] = {}
    for p in posts:
        posts_by_route.setdefault(str(p.route_no), []).append(p)
    routes: list[Route] = []
    for route_no, recs in by_route.items():
        if route_no not in posts_by_route:
            raise RouteLedgerError(
                f"route {route_no} has no 距離標 (kilometre post) in the ledger; add its kilometre posts "
                f"(Point features with route_no {route_no!r} and kp_km), or drop the route from the ledger"
            )
        lines = []
        for rec in recs:
            ll = np.asarray(rec.lonlat, dtype=float)
            if ll.ndim != 2 or len(ll) < 2 or not np.isfinite(ll).all():
                raise RouteLedgerError(f"a centreline of route {route_no} has fewer than 2 valid vertices")
            xy = projection.to_plane(ll[:, 1], ll[:, 0])
            lines.append(LineString(xy))
        merged = linemerge(lines) if len(lines) > 1 else lines[0]
        parts = list(merged.geoms) if merged.geom_type == "MultiLineString" else [merged]
        route_posts = posts_by_route[route_no]
        post_xy = projection.to_plane(
            np.array([p.lat for p in route_posts]), np.array([p.lon for p in route_posts])
        )
        assigned: list[list[tuple[float, float]]] = [[] for _ in parts]
        for p, (px, py) in zip(route_posts, post_xy, strict=True):
            d = [part.distance(Point(px, py)) for part in parts]
            i = int(np.argmin(d))
            if d[i] > config.post_tolerance_m:
                raise RouteLedgerError(
                    f"距離標 {p.kp_km:g} km of route {route_no} lies {d[i]:.0f} m from the route's "
                    "centreline (at "
                    f"most {config.post_tolerance_m:g} m); correct its coordinates or its route_no"
                )
            assigned[i].append((p.kp_km, float(parts[i].project(Point(px, py)))))
        name, road_class = recs[0].route_name, recs[0].road_class
        for part_no, (part, pa) in enumerate(zip(parts, assigned, strict=True)):
            if not pa:
                raise RouteLedgerError(
                    f"a part of route {route_no} ({part.length:.0f} m long) has no 距離標 on it; "
                    "add its kilometre "
                    "posts or join it to the rest of the route"
                )
            pa.sort(key=lambda kc: kc[1])
            km = np.array([k for k, _ in pa])
            if len(km) > 1 and np.all(np.diff(km) < 0):
                part = LineString(list(part.coords)[::-1])
                pa = sorted(((k, part.length - c) for k, c in pa), key=lambda kc: kc[1])
                km = km[::-1]
                warnings.append(
                    f"route {route_no}: the centreline was digitised from high to low km; "
                    "it was reversed so that "
                    "下り runs toward increasing km"
                )
            if len(km) > 1 and not np.all(np.diff(km) > 0):
                raise RouteLedgerError(
                    f"route {route_no}: 距離標 km values {', '.join(f'{k:g}' for k in km)} "
                    "do not increase along the "
                    "centreline; check the posts' km values and positions"
                )
            routes.append(
                Route(
                    route_no,
                    name,
                    road_class,
                    part,
                    tuple(KilometrePost(float(k), float(c)) for k, c in pa),
                    part_no,
                )
            )
    return RouteLedger(tuple(routes), projection, tuple(warnings))


# --------------------------------------------------------------------------------------------
# Map matching
# --------------------------------------------------------------------------------------------
def _angle_diff_deg(a: np.ndarray | float, b: np.ndarray | float) -> np.ndarray:
    return np.abs((np.asarray(a) - np.asarray(b) + 180.0) % 360.0 - 180.0)


def match_track(
    ledger: RouteLedger,
    xy_m: np.ndarray,
    heading_deg: np.ndarray,
    speed_mps: np.ndarray,
    distance_m: np.ndarray,
    config: LedgerConfig = LedgerConfig(),
    breaks: np.ndarray | None = None,
) -> list[Match | None]:
    """Viterbi map matching of a sequence of track points (in travel order).

    ``xy_m`` (n, 2) plane positions, ``heading_deg`` (n,), ``speed_mps`` (n,), ``distance_m`` (n,)
    cumulative distance travelled; ``breaks`` (n,) bool: True where the sequence restarts (after a
    gap in the track). Returns per point a ``Match`` or None (off the ledger)."""
    n = len(xy_m)
    if n == 0:
        return []
    xy = np.asarray(xy_m, dtype=float)
    cands = ledger.candidates(xy, config.search_radius_m)
    off_emission = -0.5 * (
        config.off_ledger_distance_m / config.distance_sigma_m
    ) ** 2 - config.heading_kappa * (1 - math.cos(math.radians(45)))
    # a slow car's heading (from the smoothed GPS velocity) is unreliable: full weight from 3x the minimum
    heading_weight = np.clip(
        (np.asarray(speed_mps, dtype=float) - config.min_heading_speed_mps)
        / (2 * config.min_heading_speed_mps),
        0.0,
        1.0,
    )
    # states per point: (candidate index, direction) + off-ledger as the last state
    states: list[list[tuple[int, Direction]]] = []
    emissions: list[np.ndarray] = []
    for i in range(n):
        st: list[tuple[int, Direction]] = []
        em: list[float] = []
        for c_i, c in enumerate(cands[i]):
            for direction in (Direction.DOWN, Direction.UP):
                expected_lateral = (
                    config.lane_offset_m if direction is Direction.DOWN else -config.lane_offset_m
                )
                beyond_end = math.sqrt(max(c.distance_m**2 - c.lateral_m**2, 0.0))  # past the line's end
                d_eff = math.hypot(beyond_end, c.lateral_m - expected_lateral)
                e = -0.5 * (d_eff / config.distance_sigma_m) ** 2
                if heading_weight[i] > 0:
                    travel = c.tangent_deg if direction is Direction.DOWN else (c.tangent_deg + 180.0) % 360
                    diff = math.radians(float(_angle_diff_deg(heading_deg[i], travel)))
                    e -= heading_weight[i] * config.heading_kappa * (1 - math.cos(diff))
                st.append((c_i, direction))
                em.append(e)
        st.append((-1, Direction.UNKNOWN))
        em.append(off_emission)
        states.append(st)
        emissions.append(np.array(em))
    score = emissions[0].copy()
    back: list[np.ndarray] = [np.full(len(score), -1)]
    for i in range(1, n):
        restart = breaks is not None and bool(breaks[i])
        trans = np.zeros((len(states[i - 1]), len(states[i])))
        if not restart:
            moved = max(float(distance_m[i] - distance_m[i - 1]), 0.0)
            for a, (ca, da) in enumerate(states[i - 1]):
                for b, (cb, db) in enumerate(states[i]):
                    trans[a, b] = _transition(
                        cands[i - 1][ca] if ca >= 0 else None,
                        da,
                        cands[i][cb] if cb >= 0 else None,
                        db,
                        moved,
                        config,
                    )
        total = score[:, None] + trans
        best_prev = np.argmax(total, axis=0)
        score = total[best_prev, np.arange(len(states[i]))] + emissions[i]
        score -= score.max()
        back.append(best_prev)
    path = [int(np.argmax(score))]
    for i in range(n - 1, 0, -1):
        path.append(int(back[i][path[-1]]))
    path.reverse()
    out: list[Match | None] = []
    for i, s in enumerate(path):
        c_i, direction = states[i][s]
        if c_i < 0:
            out.append(None)
        else:
            c = cands[i][c_i]
            out.append(Match(c.route_index, c.chainage_m, direction, c.distance_m))
    return _monotone_passes(out)


def _monotone_passes(matches: list[Match | None]) -> list[Match | None]:
    """Within each pass (consecutive matches on one route part in one direction) the car cannot go
    back along the route: replace its chainages by the nearest monotone sequence (least squares,
    pool-adjacent-violators), non-decreasing for 下り and non-increasing for 上り."""
    out = list(matches)
    i = 0
    while i < len(out):
        m = out[i]
        if m is None:
            i += 1
            continue
        j = i
        while (
            j + 1 < len(out)
            and out[j + 1] is not None
            and out[j + 1].route_index == m.route_index
            and out[j + 1].direction is m.direction
        ):
            j += 1
        sign = -1.0 if m.direction is Direction.UP else 1.0
        fitted = sign * isotonic_increasing(sign * np.array([out[k].chainage_m for k in range(i, j + 1)]))
        for k, c in zip(range(i, j + 1), fitted, strict=True):
            out[k] = Match(out[k].route_index, float(c), out[k].direction, out[k].distance_m)
        i = j + 1
    return out


def isotonic_increasing(y: np.ndarray) -> np.ndarray:
    """Least-squares non-decreasing fit of ``y`` (pool adjacent violators)."""
    values: list[float] = []
    weights: list[int] = []
    for v in np.asarray(y, dtype=float):
        values.append(float(v))
        weights.append(1)
        while len(values) > 1 and values[-2] > values[-1]:
            w = weights[-2] + weights[-1]
            merged = (values[-2] * weights[-2] + values[-1] * weights[-1]) / w
            values[-2:] = [merged]
            weights[-2:] = [w]
    return np.repeat(values, weights)


def _transition(
    ca: Candidate | None,
    da: Direction,
    cb: Candidate | None,
    db: Direction,
    moved_m: float,
    config: LedgerConfig,
) -> float:
    if ca is None and cb is None:
        return 0.0
    if ca is None or cb is None:
        return -config.off_ledger_penalty
    beta = config.transition_scale_m
    if ca.route_index == cb.route_index:
        delta = cb.chainage_m - ca.chainage_m
        if da is db:
            signed = delta if da is Direction.DOWN else -delta
            return -abs(signed - moved_m) / beta
        # turning round on the route: anywhere within the distance travelled
        return -config.u_turn_penalty - max(0.0, abs(delta) - moved_m) / beta
    jump = float(np.hypot(*(cb.xy_m - ca.xy_m)))
    return -config.route_change_penalty - max(0.0, jump - moved_m) / beta


def track_positions(distance_m: np.ndarray) -> list[RoutePosition]:
    """Fallback without a ledger: route ``track``, direction UNKNOWN, 'km post' = whole km of the
    distance travelled since the start of the run, 追加距離 = metres past it."""
    out = []
    for d in np.asarray(distance_m, dtype=float):
        kp = math.floor(d / 1000.0 + 1e-9)
        out.append(
            RoutePosition(TRACK_ROUTE_NO, Direction.UNKNOWN, float(kp), float(d - kp * 1000.0), float(d))
        )
    return out


def track_segment_span(distance_m: float) -> SegmentSpan:
    """The 100 m segment of the no-ledger fallback holding ``distance_m`` (posts every 1000 m)."""
    kp = math.floor(distance_m / 1000.0 + 1e-9)
    start_off, length = segment_bounds(min(max(distance_m - kp * 1000.0, 0.0), 1000.0), 1000.0)
    key = SegmentKey(TRACK_ROUTE_NO, Direction.UNKNOWN, float(kp), start_off, length)
    return SegmentSpan(key, -1, kp * 1000.0 + start_off, kp * 1000.0 + start_off + length)


# --------------------------------------------------------------------------------------------
# The 100 m segments of a run
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrackLine:
    """The run's own path, for segment geometry without a ledger: distance travelled (m,) and
    lon/lat (m, 2) of dense samples."""

    distance_m: np.ndarray
    lonlat: np.ndarray

    def between(self, start_m: float, end_m: float) -> np.ndarray:
        inside = (self.distance_m > start_m) & (self.distance_m < end_m)
        ends = [start_m, end_m]
        d = np.concatenate([[ends[0]], self.distance_m[inside], [ends[1]]])
        lon = np.interp(d, self.distance_m, self.lonlat[:, 0])
        lat = np.interp(d, self.distance_m, self.lonlat[:, 1])
        return np.column_stack([lon, lat])


def assemble_segments(
    poses: Sequence[FramePose],
    spans: Sequence[SegmentSpan | None],
    ledger: RouteLedger | None,
    track_line: TrackLine | None = None,
    lead_in_m: float = 0.0,
    lead_out_m: float = 0.0,
    tolerance_m: float = 1.0,
) -> tuple[RunSegment, ...]:
    """Group planned frames (in frame order, with their ``route`` set) into segments by key.

    A segment is partial unless one continuous pass over it (consecutive frames on the same route
    part and direction) spans it end to end; the run's first and last passes are extended by
    ``lead_in_m`` / ``lead_out_m``, the travel before the first and after the last planned frame."""
    if len(poses) != len(spans):
        raise ConfigError(f"{len(poses)} frames but {len(spans)} segment spans")
    # passes: (route part, direction, chainage from, chainage to)
    passes: list[list] = []
    for pose, span in zip(poses, spans, strict=True):
        if span is None or pose.route is None:
            passes.append([None])  # a break
            continue
        last = passes[-1] if passes else None
        ident = (span.route_index, pose.route.direction)
        if last is not None and last[0] == ident:
            last[2] = pose.route.chainage_m
        else:
            passes.append([ident, pose.route.chainage_m, pose.route.chainage_m])
    real = [p for p in passes if p[0] is not None]
    if real:
        sign = {Direction.UP: -1.0}
        first, last = real[0], real[-1]
        if passes[0] is first:
            first[1] -= sign.get(first[0][1], 1.0) * lead_in_m
        if passes[-1] is last:
            last[2] += sign.get(last[0][1], 1.0) * lead_out_m
    groups: dict[SegmentKey, list[int]] = {}
    span_of: dict[SegmentKey, SegmentSpan] = {}
    for i, span in enumerate(spans):
        if span is None:
            continue
        groups.setdefault(span.key, []).append(i)
        span_of[span.key] = span
    out: list[RunSegment] = []
    for key in sorted(groups):
        span = span_of[key]
        members = groups[key]
        if ledger is not None and span.route_index >= 0:
            lonlat = ledger.span_geometry_lonlat(span)
            covering = [p for p in real if p[0][0] == span.route_index]
        else:
            lonlat = (
                track_line.between(span.start_chainage_m, span.end_chainage_m)
                if track_line is not None
                else np.array(
                    [
                        [poses[members[0]].lon, poses[members[0]].lat],
                        [poses[members[-1]].lon, poses[members[-1]].lat],
                    ]
                )
            )
            covering = real
        complete = any(
            covers_segment(span.start_chainage_m, span.end_chainage_m, p[1], p[2], tolerance_m)
            for p in covering
            if p[0][1] is key.direction
        )
        segment = Segment(
            key=key,
            start_lat=float(lonlat[0, 1]),
            start_lon=float(lonlat[0, 0]),
            end_lat=float(lonlat[-1, 1]),
            end_lon=float(lonlat[-1, 0]),
            partial=not complete,
            frame_indices=tuple(poses[i].frame_index for i in members),
            coordinates=tuple((float(lo), float(la)) for lo, la in lonlat),
        )
        quality = float(np.mean([poses[i].quality for i in members]))
        out.append(RunSegment(segment, span.start_chainage_m, span.end_chainage_m, quality))
    return tuple(out)
