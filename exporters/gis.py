"""Segments as GIS files: GeoJSON, CSV, GeoPackage / Shapefile (GDAL via pyogrio) and KML.

``segments_to_records`` is the pure converter (one flat record per segment, WGS84 lon/lat
geometry); the ``write_*`` functions are thin writers. Coordinates are EPSG:4326 (JGD2011
lat/lon, EPSG:6668, differs from it by far less than GPS accuracy).
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from xml.sax.saxutils import escape

from pavement.errors import ExportError
from pavement.segments import Segment

CRS_WKT_4326 = (
    'GEOGCRS["WGS 84",DATUM["World Geodetic System 1984",ELLIPSOID["WGS 84",6378137,298.257223563]],'
    'CS[ellipsoidal,2],AXIS["latitude",north],AXIS["longitude",east],UNIT["degree",0.0174532925199433],'
    'ID["EPSG",4326]]'
)

#: KML colours (aabbggrr) per 診断区分: green, amber, red; grey when unknown.
KML_COLOR = {"I": "ff3cb371", "II": "ff00a5ff", "III": "ff2020e0", "": "ff9e9e9e"}


@dataclass(frozen=True)
class SegmentRecord:
    """One segment as a flat record; None = not measured."""

    segment_id: str
    route_no: str
    direction: str
    kp_km: float
    offset_m: float
    length_m: float
    partial: bool
    crack_ratio_pct: float | None
    coverage_pct: float | None
    crack_confidence: float | None
    rut_depth_mm: float | None
    rut_depth_max_mm: float | None
    rut_uncertainty_mm: float | None
    iri_mm_per_m: float | None
    iri_uncertainty_mm_per_m: float | None
    pothole_count: int
    mci: float | None
    category: str | None
    frame_ids: str
    representative_frame_ids: str
    coordinates: tuple[tuple[float, float], ...]  # (lon, lat) along the segment

    def properties(self) -> dict[str, object]:
        d = asdict(self)
        d.pop("coordinates")
        return d


PROPERTY_NAMES = [f.name for f in fields(SegmentRecord) if f.name != "coordinates"]

#: Shapefile (dBase) field names hold at most 10 characters.
SHAPEFILE_NAMES = {
    "segment_id": "seg_id",
    "crack_ratio_pct": "crack_pct",
    "coverage_pct": "cover_pct",
    "crack_confidence": "crack_conf",
    "rut_depth_mm": "rut_mm",
    "rut_depth_max_mm": "rut_max_mm",
    "rut_uncertainty_mm": "rut_sd_mm",
    "iri_uncertainty_mm_per_m": "iri_sd",
    "representative_frame_ids": "album_ids",
    "iri_mm_per_m": "iri",
    "pothole_count": "potholes",
}


def segment_id(segment: Segment) -> str:
    """Stable id from the key: route, direction, km post and offset (e.g. ``3_下り_12_0300``)."""
    k = segment.key
    return f"{k.route_no}_{k.direction}_{k.kp_km:g}_{k.offset_m:04.0f}"


def _clean(value: float | None, ndigits: int) -> float | None:
    return None if value is None or math.isnan(value) else round(value, ndigits)


def segments_to_records(segments: list[Segment]) -> list[SegmentRecord]:
    """Flat records sorted by route, direction, 距離標."""
    records = []
    for seg in sorted(segments, key=lambda s: s.key):
        k, m = seg.key, seg.metrics
        coords = seg.coordinates or ((seg.start_lon, seg.start_lat), (seg.end_lon, seg.end_lat))
        records.append(
            SegmentRecord(
                segment_id=segment_id(seg),
                route_no=k.route_no,
                direction=str(k.direction),
                kp_km=k.kp_km,
                offset_m=k.offset_m,
                length_m=round(k.length_m, 1),
                partial=seg.partial,
                crack_ratio_pct=_clean(m.crack_ratio_pct, 1),
                coverage_pct=_clean(m.coverage_pct, 1),
                crack_confidence=_clean(m.crack_confidence, 3),
                rut_depth_mm=_clean(m.rut_depth_mm, 1),
                rut_depth_max_mm=_clean(m.rut_depth_max_mm, 1),
                rut_uncertainty_mm=_clean(m.rut_uncertainty_mm, 1),
                iri_mm_per_m=_clean(m.iri_mm_per_m, 2),
                iri_uncertainty_mm_per_m=_clean(m.iri_uncertainty_mm_per_m, 2),
                pothole_count=m.pothole_count,
                mci=_clean(m.mci, 2),
                category=str(m.category) if m.category else None,
                frame_ids=",".join(str(i) for i in seg.frame_indices),
                representative_frame_ids=",".join(str(i) for i in seg.representative_frames),
                coordinates=tuple((round(lon, 7), round(lat, 7)) for lon, lat in coords),
            )
        )
    return records


def _prepare(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"cannot create the folder for {path}: {exc}") from exc


def write_geojson(records: list[SegmentRecord], path: Path) -> None:
    """A FeatureCollection of LineStrings with every record field as a property."""
    _prepare(path)
    collection = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": r.segment_id,
                "geometry": {"type": "LineString", "coordinates": [list(c) for c in r.coordinates]},
                "properties": r.properties(),
            }
            for r in records
        ],
    }
    try:
        path.write_text(json.dumps(collection, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    except OSError as exc:
        raise ExportError(f"cannot write {path}: {exc}") from exc


def write_csv(records: list[SegmentRecord], path: Path) -> None:
    """UTF-8 with BOM so Excel opens the Japanese headers and values correctly; start/end lat/lon."""
    _prepare(path)
    names = [*PROPERTY_NAMES, "start_lat", "start_lon", "end_lat", "end_lon"]
    try:
        with path.open("w", newline="", encoding="utf-8-sig") as f:
            writer = csv.writer(f)
            writer.writerow(names)
            for r in records:
                props = r.properties()
                (lon0, lat0), (lon1, lat1) = r.coordinates[0], r.coordinates[-1]
                row = ["" if props[n] is None else props[n] for n in PROPERTY_NAMES]
                writer.writerow([*row, lat0, lon0, lat1, lon1])
    except OSError as exc:
        raise ExportError(f"cannot write {path}: {exc}") from exc


def write_ogr(
    records: list[SegmentRecord], path: Path, driver: str = "GPKG", layer: str = "segments"
) -> None:
    """GeoPackage (default) or another GDAL vector format (``ESRI Shapefile``: field names
    shortened by ``SHAPEFILE_NAMES``) through pyogrio."""
    try:
        import numpy as np
        import pyogrio.raw
        import shapely
    except ImportError as exc:  # pragma: no cover - base dependencies
        raise ImportError(
            "writing GeoPackage needs pyogrio and shapely: pip install pyogrio shapely"
        ) from exc
    _prepare(path)
    geometry = shapely.to_wkb(np.array([shapely.LineString(r.coordinates) for r in records], dtype=object))
    columns, masks = [], []
    for name in PROPERTY_NAMES:
        values = [getattr(r, name) for r in records]
        mask = np.array([v is None for v in values], bool)
        sample = next((v for v in values if v is not None), "")
        if isinstance(sample, bool):
            arr = np.array([bool(v) for v in values])
        elif isinstance(sample, int):
            arr = np.array([0 if v is None else v for v in values], np.int64)
        elif isinstance(sample, float):
            arr = np.array([math.nan if v is None else v for v in values], np.float64)
        else:
            arr = np.array(["" if v is None else str(v) for v in values], dtype=object)
        columns.append(arr)
        masks.append(mask if mask.any() else None)
    names = (
        [SHAPEFILE_NAMES.get(n, n) for n in PROPERTY_NAMES] if driver == "ESRI Shapefile" else PROPERTY_NAMES
    )
    try:
        pyogrio.raw.write(
            str(path),
            np.asarray(geometry, dtype=object),
            columns,
            names,
            field_mask=masks,
            layer=layer,
            driver=driver,
            geometry_type="LineString",
            crs=CRS_WKT_4326,
            encoding="UTF-8",
        )
    except Exception as exc:  # GDAL errors come in several types
        raise ExportError(f"cannot write {path} ({driver}): {exc}") from exc


def write_kml(records: list[SegmentRecord], path: Path, name: str = "路面点検") -> None:
    """Google Earth / GIS viewers: one coloured line per segment (by 診断区分) with its figures."""
    _prepare(path)
    styles = "".join(
        f'<Style id="c{key or "none"}"><LineStyle><color>{color}</color><width>6</width></LineStyle></Style>'
        for key, color in KML_COLOR.items()
    )
    placemarks = []
    for r in records:
        rows = "".join(
            f"<tr><td>{escape(k)}</td><td>{escape('' if v is None else str(v))}</td></tr>"
            for k, v in r.properties().items()
        )
        coords = " ".join(f"{lon},{lat},0" for lon, lat in r.coordinates)
        placemarks.append(
            f"<Placemark><name>{escape(r.segment_id)}</name><styleUrl>#c{r.category or 'none'}</styleUrl>"
            f"<description><![CDATA[<table>{rows}</table>]]></description>"
            f"<LineString><tessellate>1</tessellate><coordinates>{coords}</coordinates></LineString></Placemark>"
        )
    kml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<kml xmlns="http://www.opengis.net/kml/2.2"><Document>'
        f"<name>{escape(name)}</name>{styles}{''.join(placemarks)}</Document></kml>\n"
    )
    try:
        path.write_text(kml, encoding="utf-8")
    except OSError as exc:
        raise ExportError(f"cannot write {path}: {exc}") from exc
