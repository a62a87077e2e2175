import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pavement.diagnosis import (
    EXPRESSWAY,
    GENERAL_ROAD,
    Category,
    DiagnosisThresholds,
    IndicatorBands,
    diagnose,
)
from pavement.errors import ConfigError


@pytest.mark.parametrize(
    ("crack", "rut", "iri", "expected"),
    [
        (None, None, None, None),
        (math.nan, None, None, None),
        (0.0, 0.0, 0.0, Category.I),
        (19.99, 19.99, 2.99, Category.I),
        (20.0, 0.0, 0.0, Category.II),
        (0.0, 20.0, 0.0, Category.II),
        (0.0, 0.0, 3.0, Category.II),
        (39.9, 39.9, 7.99, Category.II),
        (40.0, 0.0, 0.0, Category.III),
        (0.0, 40.0, 0.0, Category.III),
        (0.0, 0.0, 8.0, Category.III),
        (5.0, None, 9.0, Category.III),  # unknown rut: the known indicators decide
        (None, 25.0, None, Category.II),
    ],
)
def test_general_road_bands(crack, rut, iri, expected):
    assert diagnose(crack, rut, iri, GENERAL_ROAD) == expected


@pytest.mark.parametrize(
    ("crack", "rut", "iri", "expected"),
    [
        (19.0, 24.0, 3.4, Category.I),
        (20.0, 0, 0, Category.III),
        (0, 25.0, 0, Category.III),
        (0, 0, 3.5, Category.III),
    ],
)
def test_expressway_set(crack, rut, iri, expected):
    assert diagnose(crack, rut, iri, EXPRESSWAY) == expected


def test_custom_thresholds_are_configuration():
    strict = DiagnosisThresholds(IndicatorBands(10, 30), IndicatorBands(15, 30), IndicatorBands(2, 6))
    assert diagnose(12.0, None, None, strict) == Category.II
    assert diagnose(12.0, None, None, GENERAL_ROAD) == Category.I


def test_bands_must_be_ordered():
    with pytest.raises(ConfigError):
        IndicatorBands(40, 20)


finite = st.floats(0, 200, allow_nan=False)


@given(finite, finite, finite, finite)
def test_category_is_monotonic_in_each_indicator(crack, rut, iri, bump):
    base = diagnose(crack, rut, iri).rank
    assert diagnose(crack + bump, rut, iri).rank >= base
    assert diagnose(crack, rut + bump, iri).rank >= base
    assert diagnose(crack, rut, iri + bump).rank >= base
