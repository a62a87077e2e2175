import csv
import json
import xml.etree.ElementTree as ET

import pyogrio
import pytest
import shapely

from exporters.gis import segments_to_records, write_csv, write_geojson, write_kml, write_ogr
from pavement.diagnosis import Category
from pavement.errors import ExportError
from pavement.segments import Direction, Segment, SegmentKey, SegmentMetrics


def _segments() -> list[Segment]:
    return [
        Segment(
            SegmentKey("3", Direction.DOWN, 12, 300),
            40.8010,
            140.7000,
            40.8019,
            140.7001,
            frame_indices=(5, 9),
            metrics=SegmentMetrics(
                crack_ratio_pct=41.26, iri_mm_per_m=3.456, category=Category.III, pothole_count=2
            ),
            coordinates=((140.7000, 40.8010), (140.70004, 40.8015), (140.7001, 40.8019)),
        ),
        Segment(SegmentKey("3", Direction.DOWN, 12, 200), 40.8001, 140.6999, 40.8010, 140.7000, partial=True),
    ]


def test_records_are_sorted_and_rounded():
    records = segments_to_records(_segments())
    assert [r.offset_m for r in records] == [200, 300]
    assert records[1].crack_ratio_pct == 41.3 and records[1].iri_mm_per_m == 3.46
    assert records[1].category == "III" and records[0].category is None
    assert records[0].coordinates == ((140.6999, 40.8001), (140.7, 40.801))  # straight when no geometry
    assert records[1].segment_id == "3_下り_12_0300"


def test_geojson_round_trip(tmp_path):
    path = tmp_path / "segments.geojson"
    write_geojson(segments_to_records(_segments()), path)
    data = json.loads(path.read_text(encoding="utf-8"))
    f = data["features"][1]
    assert f["geometry"]["type"] == "LineString" and len(f["geometry"]["coordinates"]) == 3
    assert f["properties"]["direction"] == "下り" and f["properties"]["rut_depth_mm"] is None
    assert f["properties"]["pothole_count"] == 2


def test_csv_round_trip(tmp_path):
    path = tmp_path / "segments.csv"
    write_csv(segments_to_records(_segments()), path)
    with path.open(encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    assert rows[1]["category"] == "III" and rows[0]["category"] == ""
    assert float(rows[1]["end_lat"]) == pytest.approx(40.8019)


@pytest.mark.parametrize(
    ("name", "driver", "crack_field"),
    [("segments.gpkg", "GPKG", "crack_ratio_pct"), ("segments.shp", "ESRI Shapefile", "crack_pct")],
)
def test_ogr_round_trip(tmp_path, name, driver, crack_field):
    path = tmp_path / name
    write_ogr(segments_to_records(_segments()), path, driver)
    meta = pyogrio.read_info(path)
    assert meta["features"] == 2 and meta["geometry_type"] == "LineString"
    assert "4326" in meta["crs"]
    _, _, geometry, fields = pyogrio.raw.read(path)
    names = list(meta["fields"])
    assert len(shapely.from_wkb(geometry[1]).coords) == 3
    assert fields[names.index(crack_field)][1] == pytest.approx(41.3)
    assert fields[names.index("direction")][0] == "下り"


def test_kml_is_well_formed_and_coloured(tmp_path):
    path = tmp_path / "segments.kml"
    write_kml(segments_to_records(_segments()), path)
    root = ET.parse(path).getroot()
    ns = {"k": "http://www.opengis.net/kml/2.2"}
    marks = root.findall(".//k:Placemark", ns)
    assert len(marks) == 2
    assert marks[1].find("k:styleUrl", ns).text == "#cIII"


def test_unwritable_path_is_an_export_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ExportError):
        write_geojson(segments_to_records(_segments()), blocker / "x.geojson")
