import json
from datetime import date

import pytest

from exporters.kpi import kpi_to_json, segments_to_kpi
from pavement.diagnosis import Category
from pavement.segments import Direction, Segment, SegmentKey, SegmentMetrics


def _seg(offset, category, length=100.0, potholes=0, coverage=None):
    return Segment(
        SegmentKey("3", Direction.DOWN, 12, offset, length),
        0,
        0,
        0,
        0,
        metrics=SegmentMetrics(category=category, pothole_count=potholes, coverage_pct=coverage),
    )


def test_empty_set():
    kpi = segments_to_kpi([])
    assert kpi.surveyed_km == 0 and kpi.potholes_per_km is None and kpi.period_start is None


def test_lengths_shares_and_potholes():
    segs = [
        _seg(0, Category.I, coverage=90),
        _seg(100, Category.I, coverage=70),
        _seg(200, Category.II),
        _seg(300, Category.III, potholes=3),
        _seg(400, None, length=50),
    ]
    kpi = segments_to_kpi(segs, [date(2026, 11, 2), date(2026, 10, 1)])
    shares = {c.category: (c.length_km, c.share_pct) for c in kpi.by_category}
    assert kpi.surveyed_km == pytest.approx(0.45)
    assert shares["I"] == (0.2, pytest.approx(44.4, abs=0.05))
    assert shares["III"][0] == 0.1 and kpi.repair_km == 0.1
    assert shares["unknown"][0] == 0.05
    assert kpi.potholes_per_km == pytest.approx(6.67, abs=0.01)
    assert kpi.mean_coverage_pct == 80.0
    assert (kpi.period_start, kpi.period_end) == ("2026-10-01", "2026-11-02")
    assert sum(c.share_pct for c in kpi.by_category) == pytest.approx(100, abs=0.2)
    assert json.loads(kpi_to_json(kpi))["by_category"][0]["category"] == "I"
