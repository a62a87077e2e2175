import json
import re

from exporters.gis import segments_to_records
from exporters.web_map import write_web_map
from pavement.diagnosis import Category
from pavement.segments import Direction, Segment, SegmentKey, SegmentMetrics


def test_map_is_self_contained_and_holds_the_segments(tmp_path):
    segs = [
        Segment(
            SegmentKey("3", Direction.DOWN, 12, o),
            40.80 + o * 1e-5,
            140.7,
            40.801 + o * 1e-5,
            140.7,
            metrics=SegmentMetrics(category=c),
        )
        for o, c in ((0, Category.I), (100, Category.III), (200, None))
    ]
    path = tmp_path / "map.html"
    write_web_map(segments_to_records(segs), path, centerlines=[[(140.7, 40.79), (140.7, 40.81)]])
    html = path.read_text(encoding="utf-8")
    # Nothing is fetched: no external scripts, styles or tiles.
    assert not re.search(r"<script[^>]+src=", html)
    assert not re.search(r"<link[^>]+href=", html)
    assert "tile" not in html.split("<script>")[-1].lower()
    assert "L.map(" in html and "Leaflet" in html  # the library itself is inlined
    data = json.loads(re.search(r"const segments = (\{.*?\});\n", html).group(1))
    assert [f["properties"]["category"] for f in data["features"]] == ["I", "III", None]
