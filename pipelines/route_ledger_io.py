"""Read a route ledger: centrelines with 路線番号 and 距離標 points, from GeoJSON, GeoPackage or Shapefile.

Feature properties are matched loosely, because prefectures' ledgers name them differently:
``kind`` ("centerline" / "centreline" / "kilometer_post" ...; without it LineStrings are centrelines
and Points are posts), ``route_no`` (路線番号, ROUTE_NO, rosen_no ...), ``route_name`` (路線名),
``road_class`` (分類), ``kp_km`` (距離標, KP, km ...). Coordinates in any CRS the file declares are
brought to lon/lat; GeoJSON without a ``crs`` member is lon/lat (RFC 7946). GeoPackage and
Shapefile need the ``pyogrio`` package.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

from pavement.errors import RouteLedgerError
from pavement.linear_referencing import CentrelineRecord, PostRecord

_ROUTE_NO_KEYS = (
    "route_no",
    "routeno",
    "route",
    "路線番号",
    "rosen_no",
    "rosenno",
    "road_no",
    "route_id",
    "路線",
)
_ROUTE_NAME_KEYS = ("route_name", "routename", "路線名", "name", "rosen_name")
_CLASS_KEYS = ("road_class", "class", "分類", "roadclass")
_KP_KEYS = (
    "kp_km",
    "kp",
    "km",
    "距離標",
    "kilopost",
    "kilometer_post",
    "kilometre_post",
    "post_km",
    "kp_value",
)
_CENTRE_KINDS = ("centerline", "centreline", "center_line", "centre_line", "中心線", "road", "route")
_POST_KINDS = ("kilometer_post", "kilometre_post", "kp", "post", "距離標", "kilopost")


def _norm(key: str) -> str:
    return re.sub(r"[\s\-]+", "_", str(key).strip().lower())


def _get(props: dict[str, Any], keys: tuple[str, ...]) -> Any:
    normalised = {_norm(k): v for k, v in props.items()}
    for k in keys:
        if k in normalised and normalised[k] not in (None, ""):
            return normalised[k]
    return None


def _route_no(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _kp(value: Any, where: str) -> float:
    try:
        return float(str(value).replace("km", "").strip())
    except ValueError as exc:
        raise RouteLedgerError(
            f"距離標 value {value!r} of {where} is not a number of km; write e.g. 12 or 12.0"
        ) from exc


def records_from_features(
    features: list[tuple[shapely.Geometry, dict[str, Any]]], source: str
) -> tuple[list[CentrelineRecord], list[PostRecord]]:
    """Centrelines and posts from (lon/lat geometry, properties) pairs."""
    lines: list[CentrelineRecord] = []
    posts: list[PostRecord] = []
    for n, (geom, props) in enumerate(features):
        if geom is None or geom.is_empty:
            continue
        kind = _norm(props.get("kind", "") or "")
        gtype = geom.geom_type
        is_line = gtype in ("LineString", "MultiLineString")
        is_point = gtype in ("Point", "MultiPoint")
        if kind in _CENTRE_KINDS or (not kind and is_line):
            if not is_line:
                continue
            route = _get(props, _ROUTE_NO_KEYS)
            if route is None:
                raise RouteLedgerError(
                    f"centreline feature {n} of {source} has no route number "
                    "(property route_no or 路線番号); "
                    f"its properties are {sorted(props)}"
                )
            parts = list(geom.geoms) if gtype == "MultiLineString" else [geom]
            for part in parts:
                lines.append(
                    CentrelineRecord(
                        _route_no(route),
                        np.asarray(part.coords)[:, :2],
                        str(_get(props, _ROUTE_NAME_KEYS) or ""),
                        str(_get(props, _CLASS_KEYS) or ""),
                    )
                )
        elif kind in _POST_KINDS or (not kind and is_point):
            if not is_point:
                continue
            route, kp = _get(props, _ROUTE_NO_KEYS), _get(props, _KP_KEYS)
            if route is None or kp is None:
                raise RouteLedgerError(
                    f"距離標 feature {n} of {source} needs route_no and kp_km properties; "
                    f"it has {sorted(props)}"
                )
            pt = geom.geoms[0] if gtype == "MultiPoint" else geom
            posts.append(
                PostRecord(_route_no(route), _kp(kp, f"feature {n} of {source}"), float(pt.y), float(pt.x))
            )
    return lines, posts


def _to_lonlat(geoms: list[shapely.Geometry], crs: CRS | None) -> list[shapely.Geometry]:
    """Geometries in lon/lat. Geographic CRSs (WGS84, JGD2000, JGD2011) are used as they are (x = lon,
    as GeoJSON and OGR store them; they differ by centimetres in Japan); projected ones are transformed."""
    if crs is None or crs.is_geographic:
        return geoms
    tf = Transformer.from_crs(crs, 6668, always_xy=True)

    def move(xy: np.ndarray) -> np.ndarray:
        return np.column_stack(tf.transform(xy[:, 0], xy[:, 1]))

    return [shapely.transform(g, move) if g is not None else None for g in geoms]


def read_geojson(path: Path) -> tuple[list[CentrelineRecord], list[PostRecord]]:
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8-sig"))
    except (OSError, json.JSONDecodeError) as exc:
        raise RouteLedgerError(f"cannot read route ledger {Path(path).name}: {exc}") from exc
    feats = doc.get("features", []) if isinstance(doc, dict) else []
    if isinstance(doc, dict) and doc.get("type") == "Feature":
        feats = [doc]
    crs = None
    name = (doc.get("crs") or {}).get("properties", {}).get("name") if isinstance(doc, dict) else None
    if name:
        try:
            crs = CRS.from_user_input(name)
        except CRSError as exc:
            raise RouteLedgerError(
                f"unknown CRS {name!r} in {Path(path).name}; use lon/lat (RFC 7946)"
            ) from exc
    geoms = [shapely.geometry.shape(f["geometry"]) if f.get("geometry") else None for f in feats]
    geoms = _to_lonlat(geoms, crs)
    return records_from_features(
        [(g, f.get("properties") or {}) for g, f in zip(geoms, feats, strict=True)], Path(path).name
    )


def read_ogr(path: Path) -> tuple[list[CentrelineRecord], list[PostRecord]]:
    """GeoPackage / Shapefile (every layer), through pyogrio."""
    try:
        import pyogrio
        from pyogrio.raw import read as ogr_read
    except ImportError as exc:
        raise ImportError(
            "reading GeoPackage or Shapefile ledgers needs pyogrio: pip install pyogrio "
            "(or convert the ledger to GeoJSON)"
        ) from exc
    features: list[tuple[shapely.Geometry, dict[str, Any]]] = []
    try:
        layers = [row[0] for row in pyogrio.list_layers(str(path))]
    except Exception as exc:  # pyogrio raises DataSourceError and friends
        raise RouteLedgerError(f"cannot open route ledger {Path(path).name}: {exc}") from exc
    for layer in layers:
        meta, _, wkb, field_data = ogr_read(str(path), layer=layer)
        crs = CRS.from_user_input(meta["crs"]) if meta.get("crs") else None
        geoms = _to_lonlat([shapely.from_wkb(g) if g is not None else None for g in wkb], crs)
        names = list(meta["fields"])
        for i, g in enumerate(geoms):
            props = {names[j]: _plain(field_data[j][i]) for j in range(len(names))}
            features.append((g, props))
    return records_from_features(features, Path(path).name)


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value


def read_route_ledger(path: Path) -> tuple[list[CentrelineRecord], list[PostRecord]]:
    """Centrelines and 距離標 of a ledger file (.geojson/.json, .gpkg, .shp), or of every such file in a
    folder (Shapefiles hold one geometry type, so centrelines and posts often come as two files)."""
    path = Path(path)
    if not path.exists():
        raise RouteLedgerError(f"route ledger {path} does not exist; give it with --route FILE")
    if path.is_dir():
        files = sorted(
            f for f in path.iterdir() if f.suffix.lower() in (".geojson", ".json", ".gpkg", ".shp")
        )
        if not files:
            raise RouteLedgerError(f"folder {path} holds no GeoJSON, GeoPackage or Shapefile ledger")
        lines: list[CentrelineRecord] = []
        posts: list[PostRecord] = []
        for f in files:
            more_lines, more_posts = read_route_ledger(f)
            lines += more_lines
            posts += more_posts
        return lines, posts
    suffix = path.suffix.lower()
    if suffix in (".geojson", ".json"):
        return read_geojson(path)
    if suffix in (".gpkg", ".shp", ".zip"):
        return read_ogr(path)
    raise RouteLedgerError(
        f"route ledger {path.name}: unknown format {suffix!r}; use GeoJSON, GeoPackage or Shapefile"
    )
