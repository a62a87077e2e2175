"""``map.html``: a self-contained segment map that opens offline (Leaflet inlined, no tiles).

Segments are coloured by 診断区分 (or grey when unknown); a click shows the segment's figures.
There is no background map, since nothing may be fetched at run time; the route ledger's
centreline, when given, is drawn underneath for orientation.
"""

from __future__ import annotations

import json
from pathlib import Path

from exporters.gis import SegmentRecord
from pavement.errors import ExportError

CATEGORY_COLOR = {"I": "#3cb371", "II": "#ffa500", "III": "#e02020"}
UNKNOWN_COLOR = "#9e9e9e"


def _leaflet_assets() -> tuple[str, str]:
    try:
        import xstatic.pkg.leaflet as leaflet
    except ImportError as exc:
        raise ImportError("map.html needs Leaflet's files: pip install xstatic-leaflet") from exc
    base = Path(leaflet.BASE_DIR)
    return (base / "leaflet.js").read_text(encoding="utf-8"), (base / "leaflet.css").read_text(
        encoding="utf-8"
    )


def records_to_feature_collection(records: list[SegmentRecord]) -> dict:
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": {"type": "LineString", "coordinates": [list(c) for c in r.coordinates]},
                "properties": r.properties(),
            }
            for r in records
        ],
    }


def write_web_map(
    records: list[SegmentRecord],
    path: Path,
    title: str = "路面点検 区間図",
    centerlines: list[list[tuple[float, float]]] | None = None,
) -> None:
    """Write one HTML file holding Leaflet, the segments and (optionally) ledger centrelines."""
    js, css = _leaflet_assets()
    data = json.dumps(records_to_feature_collection(records), ensure_ascii=False)
    lines = json.dumps([[[lat, lon] for lon, lat in line] for line in centerlines or []])
    colors = json.dumps(CATEGORY_COLOR)
    html = f"""<!DOCTYPE html>
<html lang="ja"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>{css}
html, body, #map {{ height: 100%; margin: 0; font-family: sans-serif; }}
#map {{ background: #f4f1ea; }}
.legend {{ background: white; padding: 6px 10px; line-height: 1.6; border-radius: 4px; }}
.legend i {{ display: inline-block; width: 18px; height: 6px; margin-right: 6px; vertical-align: middle; }}
table.seg td {{ padding: 0 6px; }}
</style></head>
<body><div id="map"></div>
<script>{js}</script>
<script>
const segments = {data};
const centerlines = {lines};
const colors = {colors};
const map = L.map("map", {{ preferCanvas: false }});
centerlines.forEach(l => L.polyline(l, {{ color: "#555", weight: 2, dashArray: "4 4" }}).addTo(map));
const layer = L.geoJSON(segments, {{
  style: f => ({{ color: colors[f.properties.category] || "{UNKNOWN_COLOR}", weight: 7, opacity: 0.9 }}),
  onEachFeature: (f, l) => {{
    const rows = Object.entries(f.properties)
      .map(([k, v]) => `<tr><td>${{k}}</td><td>${{v === null ? "—" : v}}</td></tr>`).join("");
    l.bindPopup(`<table class="seg">${{rows}}</table>`);
    const p = f.properties;
    l.bindTooltip(`${{p.route_no}} ${{p.direction}} ${{p.kp_km}}km+${{p.offset_m}}m`);
  }}
}}).addTo(map);
if (segments.features.length) {{ map.fitBounds(layer.getBounds(), {{ padding: [30, 30] }}); }}
else {{ map.setView([40.82, 140.74], 12); }}
const legend = L.control({{ position: "topright" }});
legend.onAdd = () => {{
  const d = L.DomUtil.create("div", "legend");
  const rows = Object.entries(colors).map(([k, c]) => `<i style="background:${{c}}"></i>${{k}}`);
  rows.push(`<i style="background:{UNKNOWN_COLOR}"></i>未評価`);
  d.innerHTML = "<b>診断区分</b><br>" + rows.join("<br>");
  return d;
}};
legend.addTo(map);
</script></body></html>
"""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(html, encoding="utf-8")
    except OSError as exc:
        raise ExportError(f"cannot write {path}: {exc}") from exc
