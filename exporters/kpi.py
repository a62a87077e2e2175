"""Infrastructure KPI for the DX office: coverage, length and share per 診断区分, potholes per km.

``segments_to_kpi`` is the pure converter; ``kpi_to_json`` the serialiser. Lengths count each
segment and direction once (both directions of a road are two surveyed lengths).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import date

from pavement.diagnosis import Category
from pavement.segments import Segment


@dataclass(frozen=True)
class CategoryLength:
    category: str  # I, II, III or "unknown"
    length_km: float
    share_pct: float  # of the surveyed length


@dataclass(frozen=True)
class Kpi:
    period_start: str | None  # ISO dates of the first and last inspection in the set
    period_end: str | None
    segments: int
    surveyed_km: float
    by_category: tuple[CategoryLength, ...]
    potholes: int
    potholes_per_km: float | None
    mean_coverage_pct: float | None  # mean crack-ratio coverage over the segments that report it
    repair_km: float  # 区分 III


def segments_to_kpi(segments: list[Segment], dates: list[date] | None = None) -> Kpi:
    """KPI of one set of segments (a run, a month, a year), with the inspection dates it covers."""
    lengths: dict[str, float] = {str(c): 0.0 for c in Category} | {"unknown": 0.0}
    for seg in segments:
        key = str(seg.metrics.category) if seg.metrics.category else "unknown"
        lengths[key] += seg.key.length_m / 1000.0
    total = sum(lengths.values())
    potholes = sum(seg.metrics.pothole_count for seg in segments)
    coverages = [s.metrics.coverage_pct for s in segments if s.metrics.coverage_pct is not None]
    dates = sorted(dates or [])
    return Kpi(
        period_start=dates[0].isoformat() if dates else None,
        period_end=dates[-1].isoformat() if dates else None,
        segments=len(segments),
        surveyed_km=round(total, 3),
        by_category=tuple(
            CategoryLength(k, round(v, 3), round(100.0 * v / total, 1) if total else 0.0)
            for k, v in lengths.items()
        ),
        potholes=potholes,
        potholes_per_km=round(potholes / total, 2) if total else None,
        mean_coverage_pct=round(sum(coverages) / len(coverages), 1) if coverages else None,
        repair_km=round(lengths[str(Category.III)], 3),
    )


def kpi_to_json(kpi: Kpi) -> str:
    return json.dumps(asdict(kpi), ensure_ascii=False, indent=2) + "\n"
