import pytest

from pavement.errors import ConfigError
from pavement.mci import mci, sigma_from_iri


def test_sound_road_scores_ten():
    r = mci(0.0, 0.0, 0.0)
    assert r.value == pytest.approx(10.0)


def test_hand_computed_values():
    # C = 20 %, D = 15 mm, sigma = 2 mm: 20^0.3 = 2.45646, 15^0.7 = 6.65678, 2^0.2 = 1.14870
    r = mci(20.0, 15.0, 2.0)
    assert r.mci == pytest.approx(10 - 1.48 * 2.45646 - 0.29 * 6.65678 - 0.47 * 1.14870, abs=1e-4)
    assert r.mci0 == pytest.approx(10 - 1.51 * 2.45646 - 0.30 * 6.65678, abs=1e-4)
    assert r.mci1 == pytest.approx(10 - 2.23 * 2.45646, abs=1e-4)
    assert r.mci2 == pytest.approx(10 - 0.54 * 6.65678, abs=1e-4)
    assert r.value == pytest.approx(3.8941, abs=1e-3)  # the full MCI is the minimum here


def test_without_sigma_uses_the_variants():
    r = mci(40.0, 30.0)
    assert r.mci is None
    assert r.value == pytest.approx(min(r.mci0, r.mci1, r.mci2))


def test_negative_input_is_refused():
    with pytest.raises(ConfigError, match="crack_ratio_pct"):
        mci(-1.0, 0.0)


def test_sigma_from_iri_inverts_the_regression():
    assert 1.2054 * sigma_from_iri(3.0) + 0.123 == pytest.approx(3.0)
    assert sigma_from_iri(0.0) == 0.0
