"""Route locations and 100 m segments (MLIT: 距離標 + 追加距離, 上り / 下り).

A location on a route is a 距離標 (kilometre post, km from the route's legal start point) plus
the metres past it (追加距離). Posts are not exactly 1000 m apart, so segments restart at every
post: offsets 0, 100, 200, ... and the last segment of a post interval runs to the next post
(a remainder shorter than half a step is merged into the segment before it).

Segment keys name the segment's end nearer the route's start point (起点側) in both directions;
the direction is part of the key. 上り = toward the start point (decreasing km), 下り = away.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum

from pavement.diagnosis import Category
from pavement.errors import ConfigError

SEGMENT_STEP_M = 100.0


class Direction(StrEnum):
    UP = "上り"  # toward the route's start point, decreasing km
    DOWN = "下り"  # away from the start point, increasing km
    UNKNOWN = "不明"  # no route ledger: segmented by distance along the track


@dataclass(frozen=True, order=True)
class SegmentKey:
    """Identity of one segment: route, direction, 距離標 (km) + 追加距離 (m) of its 起点側 end."""

    route_no: str
    direction: Direction
    kp_km: float
    offset_m: float
    length_m: float = SEGMENT_STEP_M

    def __post_init__(self) -> None:
        if self.length_m <= 0 or self.offset_m < 0:
            raise ConfigError(
                f"segment needs offset_m >= 0 and length_m > 0, got {self.offset_m}, {self.length_m}"
            )

    @property
    def label(self) -> str:
        """Human form, e.g. ``3 下り 12km+300m``."""
        return f"{self.route_no} {self.direction} {self.kp_km:g}km+{self.offset_m:.0f}m"


def segment_bounds(
    offset_m: float, post_interval_m: float, step_m: float = SEGMENT_STEP_M
) -> tuple[float, float]:
    """(start offset, length) in metres of the segment holding ``offset_m`` past a post whose
    next post is ``post_interval_m`` further on."""
    if post_interval_m <= 0 or step_m <= 0:
        raise ConfigError(f"post interval and step must be positive, got {post_interval_m}, {step_m}")
    if not 0 <= offset_m <= post_interval_m:
        raise ConfigError(
            f"offset {offset_m:.1f} m lies outside the post interval of {post_interval_m:.1f} m"
        )
    n_full = math.floor(post_interval_m / step_m + 1e-9)
    remainder = post_interval_m - n_full * step_m
    n_segments = n_full + (1 if remainder >= step_m / 2 else 0)
    n_segments = max(n_segments, 1)
    index = min(int(offset_m // step_m), n_segments - 1)
    start = index * step_m
    end = post_interval_m if index == n_segments - 1 else start + step_m
    return start, end - start


@dataclass(frozen=True)
class RoutePosition:
    """A point placed on a route."""

    route_no: str
    direction: Direction
    kp_km: float  # the 距離標 at or before the point (in km order)
    offset_m: float  # 追加距離 past that post
    chainage_m: float  # distance from the route's start point along the ledger centreline


@dataclass(frozen=True)
class SegmentMetrics:
    """Indicators of one segment; None = not measured (never a guess)."""

    crack_ratio_pct: float | None = None
    rut_depth_mm: float | None = None
    rut_depth_max_mm: float | None = None
    rut_uncertainty_mm: float | None = None  # 1-sigma of rut_depth_mm
    iri_mm_per_m: float | None = None
    iri_uncertainty_mm_per_m: float | None = None  # 1-sigma
    pothole_count: int = 0
    mci: float | None = None
    category: Category | None = None
    coverage_pct: float | None = None  # share of the lane's 0.5 m cells seen well (crack ratio)
    crack_confidence: float | None = None  # 0-1: how well the surveyed cells were seen


@dataclass(frozen=True)
class Segment:
    """A 100 m segment of one run: key, end points (WGS84 lat/lon), frames and metrics."""

    key: SegmentKey
    start_lat: float
    start_lon: float
    end_lat: float
    end_lon: float
    partial: bool = False
    frame_indices: tuple[int, ...] = ()
    representative_frames: tuple[int, ...] = ()  # the album's frames of this segment
    metrics: SegmentMetrics = field(default_factory=SegmentMetrics)
    #: (lon, lat) vertices along the segment; empty = the straight line from start to end.
    coordinates: tuple[tuple[float, float], ...] = ()


# ---------------------------------------------------------------------------------------------
# The segments of one run (geotagging): which 100 m segments a run passed, and how completely.
# ---------------------------------------------------------------------------------------------
SEGMENT_GEOMETRY_CRS = "EPSG:6668"  # JGD2011 lon/lat (WGS84 to within centimetres in Japan)


@dataclass(frozen=True)
class RunSegment:
    """A segment as one run saw it: the ``Segment`` (key, ends, partial flag, frames, lon/lat
    centreline from the 起点側 end in ``coordinates``), its extent along the route's centreline, and
    the mean location quality of its frames (0-1, see ``pavement.gps_track``)."""

    segment: Segment
    start_chainage_m: float
    end_chainage_m: float
    location_quality: float
    crs: str = SEGMENT_GEOMETRY_CRS

    @property
    def key(self) -> SegmentKey:
        return self.segment.key

    @property
    def frame_count(self) -> int:
        return len(self.segment.frame_indices)


def covers_segment(
    start_m: float, end_m: float, covered_from_m: float, covered_to_m: float, tolerance_m: float = 1.0
) -> bool:
    """True when a stretch driven [covered_from_m, covered_to_m] (chainage, any order) spans the whole
    segment [start_m, end_m] to within ``tolerance_m`` at each end; otherwise the run saw it partly."""
    lo, hi = min(covered_from_m, covered_to_m), max(covered_from_m, covered_to_m)
    return lo <= start_m + tolerance_m and hi >= end_m - tolerance_m
