"""Plane rectangular zones and lat/lon <-> plane round trips."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pavement.errors import ConfigError
from pavement.geodesy import PlaneProjection, jgd2011_zone, plane_crs_for, plane_crs_from_epsg


@pytest.mark.parametrize(
    ("place", "lat", "lon", "epsg"),
    [
        ("Aomori city", 40.822, 140.747, 6678),
        ("Hachinohe", 40.512, 141.488, 6678),
        ("Oma (tip of Shimokita)", 41.53, 140.91, 6678),
        ("Hirosaki", 40.603, 140.464, 6678),
        ("Hakodate (across the strait)", 41.77, 140.73, 6679),
        ("Sapporo", 43.06, 141.35, 6680),
        ("Kushiro", 42.98, 144.38, 6681),
        ("Tokyo", 35.69, 139.69, 6677),
        ("Nagoya", 35.18, 136.91, 6675),
        ("Fukuoka", 33.59, 130.40, 6670),
        ("Naha", 26.21, 127.68, 6683),
        ("Ishigaki", 24.34, 124.16, 6684),
        ("Chichijima", 27.09, 142.19, 6682),
    ],
)
def test_zone_by_location(place, lat, lon, epsg):
    assert plane_crs_for(lat, lon).epsg == epsg, place


def test_outside_japan_uses_utm_and_says_so():
    crs = plane_crs_for(48.85, 2.35)
    assert crs.epsg == 32631 and "outside Japan" in crs.name


@pytest.mark.parametrize("bad", [0, 4326, 99999999])
def test_bad_user_epsg_is_a_clear_error(bad):
    with pytest.raises(ConfigError, match="EPSG"):
        plane_crs_from_epsg(bad)


def test_zone_numbers_are_checked():
    assert jgd2011_zone(10).epsg == 6678
    with pytest.raises(ConfigError, match="zones are 1"):
        jgd2011_zone(20)


@settings(max_examples=200, deadline=None)
@given(st.floats(40.2, 41.6), st.floats(139.4, 141.8))
def test_round_trip_within_a_millimetre(lat, lon):
    proj = PlaneProjection(jgd2011_zone(10))
    xy = proj.to_plane(lat, lon)
    back = proj.to_latlon(xy[:, 0], xy[:, 1])[0]
    xy2 = proj.to_plane(back[0], back[1])[0]
    assert abs(xy2[0] - xy[0, 0]) < 1e-3 and abs(xy2[1] - xy[0, 1]) < 1e-3
    # and in degrees: 1 mm is ~9e-9 degrees of latitude
    assert abs(back[0] - lat) < 1e-8 and abs(back[1] - lon) < 1e-8


def test_zone_x_origin_is_at_40n_140_50e():
    proj = PlaneProjection(jgd2011_zone(10))
    assert proj.to_plane(40.0, 140 + 50 / 60)[0] == pytest.approx([0.0, 0.0], abs=1e-4)
