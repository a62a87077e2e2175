"""Route ledgers from GeoJSON, GeoPackage and Shapefile, with loose property names."""

from __future__ import annotations

import json

import numpy as np
import pytest
import shapely

from pavement.errors import RouteLedgerError
from pipelines.route_ledger_io import read_route_ledger
from tests.drives import ORIGIN_XY, PROJECTION, ledger_geojson

PATH = np.array([[0.0, 0.0], [500.0, 0.0], [1500.0, 100.0]])


def _doc():
    return ledger_geojson([("3", PATH, [(0.0, 0.0), (1.0, 990.0)])])


def test_geojson(tmp_path):
    f = tmp_path / "route.geojson"
    f.write_text(json.dumps(_doc()))
    lines, posts = read_route_ledger(f)
    assert [r.route_no for r in lines] == ["3"] and lines[0].route_name == "R3"
    assert [(p.route_no, p.kp_km) for p in posts] == [("3", 0.0), ("3", 1.0)]


def test_japanese_property_names_and_no_kind(tmp_path):
    doc = _doc()
    for feat in doc["features"]:
        props = feat["properties"]
        props.pop("kind")
        props["路線番号"] = int(props.pop("route_no"))
        if "kp_km" in props:
            props["距離標"] = props.pop("kp_km")
    f = tmp_path / "ledger.json"
    f.write_text(json.dumps(doc, ensure_ascii=False))
    lines, posts = read_route_ledger(f)
    assert lines[0].route_no == "3" and len(posts) == 2


def test_geojson_in_plane_coordinates(tmp_path):
    doc = {
        "type": "FeatureCollection",
        "crs": {"type": "name", "properties": {"name": "EPSG:6678"}},
        "features": [
            {
                "type": "Feature",
                "properties": {"route_no": "9"},
                "geometry": {"type": "LineString", "coordinates": (PATH + ORIGIN_XY).tolist()},
            }
        ],
    }
    f = tmp_path / "plane.geojson"
    f.write_text(json.dumps(doc))
    lines, _ = read_route_ledger(f)
    lat, lon = PROJECTION.to_latlon(*(PATH[0] + ORIGIN_XY))[0]
    assert lines[0].lonlat[0] == pytest.approx([lon, lat], abs=1e-8)


@pytest.mark.parametrize("suffix", ["gpkg", "shp"])
def test_geopackage_and_shapefile_round_trip(tmp_path, suffix):
    pyogrio = pytest.importorskip("pyogrio")
    doc = _doc()
    f = tmp_path / f"route.{suffix}"
    for kind, gtype in (("centerline", "LineString"), ("kilometer_post", "Point")):
        feats = [x for x in doc["features"] if x["properties"]["kind"] == kind]
        geoms = np.array([shapely.to_wkb(shapely.geometry.shape(x["geometry"])) for x in feats], dtype=object)
        fields = ["kind", "route_no", "kp_km"]
        data = [np.array([x["properties"].get(k, "") for x in feats], dtype=object) for k in fields[:2]] + [
            np.array([float(x["properties"].get("kp_km", 0)) for x in feats])
        ]
        target = f if suffix == "gpkg" else tmp_path / f"{kind}.shp"
        pyogrio.raw.write(
            str(target),
            geoms,
            data,
            fields,
            layer=kind,
            geometry_type=gtype,
            crs="EPSG:6668",
            driver="GPKG" if suffix == "gpkg" else "ESRI Shapefile",
            append=suffix == "gpkg" and kind != "centerline",
        )
    if suffix == "shp":
        # a Shapefile holds one geometry type: centrelines and posts come as two files in a folder
        lines, posts = read_route_ledger(tmp_path)
    else:
        lines, posts = read_route_ledger(f)
    assert lines[0].route_no == "3" and sorted(p.kp_km for p in posts) == [0.0, 1.0]
    want = np.array(doc["features"][0]["geometry"]["coordinates"])
    assert lines[0].lonlat == pytest.approx(want, abs=1e-9)


def test_centreline_without_route_number(tmp_path):
    doc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"kind": "centerline"},
                "geometry": {"type": "LineString", "coordinates": [[140.7, 40.8], [140.71, 40.8]]},
            }
        ],
    }
    f = tmp_path / "r.geojson"
    f.write_text(json.dumps(doc))
    with pytest.raises(RouteLedgerError, match="no route number"):
        read_route_ledger(f)


def test_unknown_format(tmp_path):
    f = tmp_path / "r.kml"
    f.write_text("<kml/>")
    with pytest.raises(RouteLedgerError, match="GeoJSON, GeoPackage or Shapefile"):
        read_route_ledger(f)
