"""Plane coordinates for measuring: the Japanese plane rectangular systems (JGD2011, EPSG:6669-6687).

Positions are exchanged as lat/lon (WGS84 ~ JGD2011, EPSG:6668; the two differ by centimetres
in Japan) and measured in the plane rectangular system (平面直角座標系) of the area, e.g. zone X
(EPSG:6678) for Aomori. The zones are defined per prefecture (and per municipality in Hokkaido),
so the zone is chosen by the nearest reference town of a small table below; near a prefecture
border this may pick the neighbouring zone, which only changes the scale by parts per 10,000.
Outside Japan the UTM zone of the location is used instead, and named so.

Plane coordinates are ``(x_m, y_m)`` = (easting, northing) in metres, whatever the EPSG axis order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

from pavement.errors import ConfigError

LATLON_EPSG = 6668  # JGD2011 geographic; GPS WGS84 coordinates are used as such (cm-level difference)
JGD2011_ZONE_EPSG = {zone: 6668 + zone for zone in range(1, 20)}  # zone I = EPSG:6669 ... XIX = 6687
_ROMAN = (
    "I",
    "II",
    "III",
    "IV",
    "V",
    "VI",
    "VII",
    "VIII",
    "IX",
    "X",
    "XI",
    "XII",
    "XIII",
    "XIV",
    "XV",
    "XVI",
    "XVII",
    "XVIII",
    "XIX",
)

# Reference towns (lat, lon, zone): prefectural capitals plus towns at the edges of large
# prefectures and of the Hokkaido zones, so that "nearest town" follows the prefecture borders.
_TOWNS: tuple[tuple[float, float, int], ...] = (
    # I Nagasaki and its islands
    (32.74, 129.87, 1),
    (33.18, 129.72, 1),
    (32.70, 128.84, 1),
    (34.20, 129.29, 1),
    (33.75, 129.69, 1),
    # II Fukuoka, Saga, Kumamoto, Oita, Miyazaki, Kagoshima
    (33.61, 130.42, 2),
    (33.88, 130.88, 2),
    (33.25, 130.30, 2),
    (32.79, 130.74, 2),
    (33.24, 131.61, 2),
    (31.91, 131.42, 2),
    (31.56, 130.56, 2),
    (32.51, 131.67, 2),
    (31.37, 130.85, 2),
    # III Yamaguchi, Shimane, Hiroshima
    (34.19, 131.47, 3),
    (33.96, 130.94, 3),
    (34.41, 131.40, 3),
    (35.47, 133.05, 3),
    (34.40, 132.46, 3),
    (34.81, 132.85, 3),
    (36.21, 133.32, 3),
    (34.67, 131.85, 3),
    # IV Kagawa, Ehime, Tokushima, Kochi
    (34.34, 134.04, 4),
    (33.84, 132.77, 4),
    (34.07, 134.56, 4),
    (33.56, 133.53, 4),
    (33.22, 132.56, 4),
    (33.29, 134.15, 4),
    (32.78, 132.96, 4),
    # V Hyogo, Tottori, Okayama
    (34.69, 135.18, 5),
    (34.82, 134.69, 5),
    (35.54, 134.82, 5),
    (35.50, 134.24, 5),
    (35.43, 133.83, 5),
    (34.66, 133.93, 5),
    (35.07, 134.00, 5),
    # VI Kyoto, Osaka, Fukui, Shiga, Mie, Nara, Wakayama
    (35.02, 135.76, 6),
    (35.47, 135.39, 6),
    (34.69, 135.52, 6),
    (36.07, 136.22, 6),
    (35.65, 136.06, 6),
    (35.00, 135.87, 6),
    (35.38, 136.27, 6),
    (34.73, 136.51, 6),
    (34.07, 136.19, 6),
    (34.69, 135.83, 6),
    (34.23, 135.17, 6),
    (33.72, 135.99, 6),
    (33.47, 135.77, 6),
    # VII Ishikawa, Toyama, Gifu, Aichi
    (36.59, 136.63, 7),
    (37.39, 136.90, 7),
    (36.70, 137.21, 7),
    (35.39, 136.72, 7),
    (36.15, 137.25, 7),
    (35.18, 136.91, 7),
    (34.77, 137.39, 7),
    # VIII Niigata, Nagano, Yamanashi, Shizuoka
    (37.90, 139.02, 8),
    (37.45, 138.85, 8),
    (37.15, 138.24, 8),
    (38.02, 138.37, 8),
    (36.65, 138.18, 8),
    (36.24, 137.97, 8),
    (35.66, 138.57, 8),
    (35.49, 138.81, 8),
    (34.98, 138.38, 8),
    (34.71, 137.73, 8),
    (34.68, 138.94, 8),
    (38.22, 139.48, 8),
    # IX Tokyo (main part and Izu islands), Fukushima, Tochigi, Ibaraki, Saitama, Chiba, Gunma, Kanagawa
    (35.69, 139.69, 9),
    (37.75, 140.47, 9),
    (37.05, 140.89, 9),
    (37.49, 139.93, 9),
    (37.80, 140.92, 9),
    (37.13, 140.21, 9),
    (36.57, 139.88, 9),
    (36.72, 139.70, 9),
    (36.34, 140.45, 9),
    (35.86, 139.65, 9),
    (35.61, 140.12, 9),
    (35.73, 140.83, 9),
    (34.99, 139.87, 9),
    (36.39, 139.06, 9),
    (35.45, 139.64, 9),
    (34.75, 139.36, 9),
    (33.11, 139.79, 9),
    # X Aomori, Akita, Yamagata, Iwate, Miyagi
    (40.82, 140.74, 10),
    (40.51, 141.49, 10),
    (40.60, 140.46, 10),
    (41.29, 141.18, 10),
    (41.53, 140.91, 10),
    (41.25, 140.37, 10),
    (39.72, 140.10, 10),
    (40.27, 140.56, 10),
    (38.24, 140.36, 10),
    (38.91, 139.84, 10),
    (39.70, 141.15, 10),
    (39.64, 141.95, 10),
    (38.27, 140.87, 10),
    (38.90, 141.57, 10),
    # XI Hokkaido west: Otaru, Hakodate, Date, Hokuto, Shiribeshi, Oshima, Hiyama
    (41.77, 140.73, 11),
    (41.87, 140.13, 11),
    (41.43, 140.11, 11),
    (42.90, 140.76, 11),
    (43.19, 141.00, 11),
    (42.47, 140.87, 11),
    (42.26, 140.27, 11),
    # XII Hokkaido centre: Sapporo, Asahikawa, Muroran, Tomakomai, Rumoi, Wakkanai, Hidaka ...
    (43.06, 141.35, 12),
    (43.77, 142.37, 12),
    (42.32, 140.97, 12),
    (42.63, 141.60, 12),
    (43.20, 141.76, 12),
    (43.94, 141.64, 12),
    (45.42, 141.67, 12),
    (42.17, 142.77, 12),
    (44.35, 142.46, 12),
    # XIII Hokkaido east: Kitami, Obihiro, Kushiro, Abashiri, Nemuro, Monbetsu
    (43.80, 143.90, 13),
    (42.92, 143.20, 13),
    (42.98, 144.38, 13),
    (44.02, 144.27, 13),
    (43.33, 145.58, 13),
    (44.36, 143.35, 13),
)
_TOWN_ARRAY = np.array(_TOWNS, dtype=float)


@dataclass(frozen=True)
class PlaneCrs:
    """A projected CRS in metres used for measuring, e.g. EPSG:6678 (JGD2011 plane rectangular CS X)."""

    epsg: int
    name: str

    @property
    def srs(self) -> str:
        return f"EPSG:{self.epsg}"


def jgd2011_zone(zone: int) -> PlaneCrs:
    """The plane rectangular system number ``zone`` (1-19, I-XIX)."""
    if zone not in JGD2011_ZONE_EPSG:
        raise ConfigError(f"plane rectangular zone {zone} does not exist; zones are 1 (I) to 19 (XIX)")
    return PlaneCrs(JGD2011_ZONE_EPSG[zone], f"JGD2011 / Japan Plane Rectangular CS {_ROMAN[zone - 1]}")


def _special_zone(lat: float, lon: float) -> int | None:
    """Zones defined by coordinates rather than by prefecture (Okinawa, Tokyo's far islands,
    Kagoshima's western islands), from the MLIT notice on the plane rectangular systems."""
    if lat < 28.0 and 140.5 <= lon < 143.0:
        return 14  # Ogasawara
    if lat < 28.0 and 134.0 <= lon < 140.5:
        return 18  # Okinotorishima
    if lat < 28.0 and lon >= 143.0:
        return 19  # Minamitorishima
    okinawa = lat < 27.0 or (lat < 27.2 and lon < 128.2)  # Iheya belongs to Okinawa, Yoron does not
    if okinawa and lon < 126.0:
        return 16  # Miyako, Yaeyama
    if okinawa and 130.0 <= lon < 134.0:
        return 17  # Daito islands
    if okinawa and 126.0 <= lon < 130.0:
        return 15  # Okinawa main island
    if 27.0 <= lat < 32.0 and lon < 130.0 and not (lat > 31.0 and lon > 129.9):
        return 1  # Kagoshima's islands west of 130 E (Koshiki, Amami ...)
    return None


def _in_japan(lat: float, lon: float) -> bool:
    return 20.0 <= lat <= 46.0 and 122.0 <= lon <= 154.5


def plane_crs_for(lat: float, lon: float) -> PlaneCrs:
    """The plane rectangular system (JGD2011) covering ``(lat, lon)``; outside Japan, the UTM zone.

    Choose it once per run (e.g. from the track's median) so that every distance of a run is
    measured in one plane."""
    if not (math.isfinite(lat) and math.isfinite(lon)) or not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise ConfigError(f"({lat}, {lon}) is not a latitude/longitude in degrees")
    if _in_japan(lat, lon):
        zone = _special_zone(lat, lon)
        if zone is None:
            dlat = _TOWN_ARRAY[:, 0] - lat
            dlon = (_TOWN_ARRAY[:, 1] - lon) * math.cos(math.radians(lat))
            zone = int(_TOWN_ARRAY[int(np.argmin(dlat**2 + dlon**2)), 2])
        return jgd2011_zone(zone)
    utm = int((lon + 180) // 6) % 60 + 1
    epsg = (32600 if lat >= 0 else 32700) + utm
    return PlaneCrs(epsg, f"WGS 84 / UTM zone {utm}{'N' if lat >= 0 else 'S'} (outside Japan)")


def plane_crs_from_epsg(epsg: int) -> PlaneCrs:
    """A user-chosen projected CRS; it must be in metres."""
    try:
        crs = CRS.from_epsg(int(epsg))
    except (CRSError, ValueError, TypeError) as exc:
        raise ConfigError(f"EPSG:{epsg} is not a known CRS; for Aomori use 6678 (JGD2011 zone X)") from exc
    unit = crs.axis_info[0].unit_name if crs.axis_info else ""
    if not crs.is_projected or unit not in ("metre", "meter"):
        raise ConfigError(
            f"EPSG:{epsg} ({crs.name}) is not a projected CRS in metres; use a plane rectangular "
            "zone, EPSG:6669-6687 (Aomori: 6678)"
        )
    return PlaneCrs(int(epsg), crs.name)


@lru_cache(maxsize=32)
def _transformers(epsg: int) -> tuple[Transformer, Transformer]:
    geographic = LATLON_EPSG if 6669 <= epsg <= 6687 else 4326
    forward = Transformer.from_crs(geographic, epsg, always_xy=True)
    inverse = Transformer.from_crs(epsg, geographic, always_xy=True)
    return forward, inverse


@dataclass(frozen=True)
class PlaneProjection:
    """lat/lon <-> plane metres in one ``PlaneCrs`` (transformers cached per EPSG code)."""

    crs: PlaneCrs

    @classmethod
    def for_location(cls, lat: float, lon: float) -> PlaneProjection:
        return cls(plane_crs_for(lat, lon))

    def to_plane(self, lat: np.ndarray | float, lon: np.ndarray | float) -> np.ndarray:
        """Degrees -> ``(n, 2)`` array of (x_m easting, y_m northing)."""
        lat_a = np.atleast_1d(np.asarray(lat, dtype=float))
        lon_a = np.atleast_1d(np.asarray(lon, dtype=float))
        x, y = _transformers(self.crs.epsg)[0].transform(lon_a, lat_a)
        return np.column_stack([np.asarray(x, dtype=float), np.asarray(y, dtype=float)])

    def to_latlon(self, x_m: np.ndarray | float, y_m: np.ndarray | float) -> np.ndarray:
        """Plane metres -> ``(n, 2)`` array of (lat, lon) degrees."""
        x_a = np.atleast_1d(np.asarray(x_m, dtype=float))
        y_a = np.atleast_1d(np.asarray(y_m, dtype=float))
        lon, lat = _transformers(self.crs.epsg)[1].transform(x_a, y_a)
        return np.column_stack([np.asarray(lat, dtype=float), np.asarray(lon, dtype=float)])
