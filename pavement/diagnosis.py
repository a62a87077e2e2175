"""MLIT 診断区分 (舗装点検要領, H28.10): the worst of crack ratio, rut depth and IRI.

Thresholds are configuration, not literals: general roads and expressways differ.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from pavement.errors import ConfigError


class Category(StrEnum):
    I = "I"  # noqa: E741 - 健全 (sound)
    II = "II"  # 表層機能保持段階 (keep the surface functional)
    III = "III"  # 修繕段階 (repair stage)

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Category.I: 1, Category.II: 2, Category.III: 3}


@dataclass(frozen=True)
class IndicatorBands:
    """Lower bounds of 区分 II and III for one indicator; ``ii_from == iii_from`` means no II band."""

    ii_from: float
    iii_from: float

    def __post_init__(self) -> None:
        if not (0 <= self.ii_from <= self.iii_from):
            raise ConfigError(f"bands need 0 <= ii_from <= iii_from, got {self.ii_from}, {self.iii_from}")

    def classify(self, value: float) -> Category:
        if value >= self.iii_from:
            return Category.III
        if value >= self.ii_from:
            return Category.II
        return Category.I


@dataclass(frozen=True)
class DiagnosisThresholds:
    """Band limits per indicator: crack ratio (%), rut depth (mm), IRI (mm/m)."""

    crack_ratio_pct: IndicatorBands
    rut_depth_mm: IndicatorBands
    iri_mm_per_m: IndicatorBands
    name: str = ""


#: 舗装点検要領 (H28.10), asphalt pavement of general roads, classes A and B.
GENERAL_ROAD = DiagnosisThresholds(
    crack_ratio_pct=IndicatorBands(20.0, 40.0),
    rut_depth_mm=IndicatorBands(20.0, 40.0),
    iri_mm_per_m=IndicatorBands(3.0, 8.0),
    name="general",
)

#: Expressways: one repair threshold per indicator (20 %, 25 mm, 3.5 mm/m, DESIGN.md). The source
#: gives no separate II band, so II is empty here; override with a DiagnosisThresholds of your own.
EXPRESSWAY = DiagnosisThresholds(
    crack_ratio_pct=IndicatorBands(20.0, 20.0),
    rut_depth_mm=IndicatorBands(25.0, 25.0),
    iri_mm_per_m=IndicatorBands(3.5, 3.5),
    name="expressway",
)

THRESHOLD_SETS = {t.name: t for t in (GENERAL_ROAD, EXPRESSWAY)}


def _known(value: float | None) -> bool:
    return value is not None and not math.isnan(value)


def diagnose(
    crack_ratio_pct: float | None,
    rut_depth_mm: float | None,
    iri_mm_per_m: float | None,
    thresholds: DiagnosisThresholds = GENERAL_ROAD,
) -> Category | None:
    """The worst 区分 over the indicators that are known (None or NaN = not measured).

    Returns None when no indicator is known: a segment without data has no 区分.
    """
    categories = [
        bands.classify(value)
        for value, bands in (
            (crack_ratio_pct, thresholds.crack_ratio_pct),
            (rut_depth_mm, thresholds.rut_depth_mm),
            (iri_mm_per_m, thresholds.iri_mm_per_m),
        )
        if _known(value)
    ]
    if not categories:
        return None
    return max(categories, key=lambda c: c.rank)
