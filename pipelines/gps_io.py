"""Read the GPS logs phones write: GPX, NMEA 0183 (RMC / GGA) and phone-app CSVs.

Every reader returns a ``GpsLog``: the fixes as ``TrackPoint`` (UTC Unix seconds, WGS84 degrees,
speed in m/s, heading clockwise from north, horizontal accuracy in metres) plus counts of what was
skipped, so that a report can say how much of the file was usable. Times with a UTC offset are
converted; times without one are taken as UTC and a warning says so.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from pathlib import Path

from pavement.errors import GpsTrackError
from pavement.track import TrackPoint

logger = logging.getLogger(__name__)

# Phones report HDOP, not metres; horizontal accuracy ~ HDOP x UERE, with a user-equivalent range
# error of ~5 m for phone GNSS chipsets (a common rule of thumb, e.g. u-blox application notes).
UERE_M = 5.0
KNOT_MPS = 0.514444


class TrackFormat(StrEnum):
    GPX = "gpx"
    NMEA = "nmea"
    CSV = "csv"


@dataclass(frozen=True)
class GpsLog:
    """The fixes of one GPS file, in time order, and what was left out of it."""

    points: tuple[TrackPoint, ...]
    path: str
    format: TrackFormat
    n_skipped: int = 0  # records without a usable fix (void, no time, unparsable)
    n_bad_checksum: int = 0  # NMEA sentences whose checksum did not match (skipped)
    warnings: tuple[str, ...] = field(default_factory=tuple)


# --------------------------------------------------------------------------------------------
# Time stamps
# --------------------------------------------------------------------------------------------
_EPOCH_MIN_S = 946_684_800  # 2000-01-01: smaller numbers are not Unix times of a phone log


def parse_time_utc(text: str) -> tuple[float, bool]:
    """Unix seconds (UTC) of an ISO 8601 / 'YYYY/MM/DD hh:mm:ss' time or a Unix time in s or ms,
    and whether the text carried its UTC offset (False: taken as UTC)."""
    s = text.strip().strip('"')
    if not s:
        raise ValueError("empty time")
    try:
        number = float(s)
    except ValueError:
        number = None
    if number is not None:
        if number > _EPOCH_MIN_S * 1000:
            return number / 1000.0, True  # milliseconds
        if number > _EPOCH_MIN_S:
            return number, True
        raise ValueError(f"number {s} is not a Unix time")
    s = s.replace("/", "-")
    if len(s) > 10 and s[10] == " ":
        s = s[:10] + "T" + s[11:]
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    s = re.sub(r" ?(UTC|GMT)$", "+00:00", s)
    s = re.sub(r"([+-]\d\d)(\d\d)$", r"\1:\2", s)  # +0900 -> +09:00
    dt = datetime.fromisoformat(s)
    if dt.tzinfo is None:
        return dt.replace(tzinfo=UTC).timestamp(), False
    return dt.timestamp(), True


# --------------------------------------------------------------------------------------------
# GPX
# --------------------------------------------------------------------------------------------
def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1].lower()


def read_gpx(path: Path) -> GpsLog:
    """Track points (``trkpt``; ``rtept`` if there are none) with ``time``; speed and course from
    GPX 1.0 elements or common extensions; accuracy from ``hdop`` x UERE."""
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise GpsTrackError(
            f"{path.name} is not valid GPX/XML ({exc}); re-export the track as GPX 1.1"
        ) from exc
    except OSError as exc:
        raise GpsTrackError(f"cannot read GPS file {path}: {exc.strerror}") from exc
    nodes = [e for e in root.iter() if _local(e.tag) == "trkpt"]
    if not nodes:
        nodes = [e for e in root.iter() if _local(e.tag) == "rtept"]
    points: list[TrackPoint] = []
    skipped, naive = 0, 0
    for node in nodes:
        values: dict[str, str] = {}
        for child in node.iter():
            if child is not node and child.text and _local(child.tag) not in values:
                values[_local(child.tag)] = child.text.strip()
        try:
            lat, lon = float(node.attrib["lat"]), float(node.attrib["lon"])
            t, has_zone = parse_time_utc(values["time"])
        except (KeyError, ValueError):
            skipped += 1
            continue
        naive += not has_zone
        hdop = _float_or_none(values.get("hdop"))
        points.append(
            TrackPoint(
                t_unix_s=t,
                lat=lat,
                lon=lon,
                speed_mps=_float_or_none(values.get("speed")),
                heading_deg=_float_or_none(values.get("course") or values.get("bearing")),
                accuracy_m=None if hdop is None else hdop * UERE_M,
            )
        )
    if not points:
        raise GpsTrackError(
            f"GPX file {path.name} holds no fixes ({len(nodes)} track points, none with lat, lon and time); "
            "record the track with a logger app that writes <trkpt lat lon><time>"
        )
    return _finish(points, path, TrackFormat.GPX, skipped, 0, naive)


def _float_or_none(text: str | None) -> float | None:
    if text is None or text.strip() == "":
        return None
    try:
        v = float(text)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


# --------------------------------------------------------------------------------------------
# NMEA 0183
# --------------------------------------------------------------------------------------------
def nmea_checksum_ok(sentence: str) -> bool | None:
    """True/False for a sentence ``$...*hh`` with a checksum, None when it carries none."""
    body = sentence[1:]
    if "*" not in body:
        return None
    data, _, given = body.partition("*")
    calc = 0
    for ch in data:
        calc ^= ord(ch)
    try:
        return calc == int(given[:2], 16)
    except ValueError:
        return False


def _nmea_angle(value: str, hemisphere: str) -> float:
    if not value:
        raise ValueError("empty coordinate")
    dot = value.index(".") if "." in value else len(value)
    degrees = float(value[: dot - 2])
    minutes = float(value[dot - 2 :])
    sign = -1.0 if hemisphere in ("S", "W") else 1.0
    return sign * (degrees + minutes / 60.0)


def _nmea_time_of_day(value: str) -> float:
    return int(value[0:2]) * 3600 + int(value[2:4]) * 60 + float(value[4:])


@dataclass
class _NmeaFix:
    seconds_of_day: float
    day: date | None
    lat: float
    lon: float
    speed_mps: float | None = None
    heading_deg: float | None = None
    accuracy_m: float | None = None


def read_nmea(path: Path) -> GpsLog:
    """Fixes from RMC (time, date, position, speed, course) and GGA (time, position, HDOP).

    Sentences with a wrong checksum are skipped and counted; void RMC (status V) and GGA without a
    fix (quality 0) are skipped. GGA carries no date: it takes the date of the RMC around it."""
    path = Path(path)
    text = _read_text(path)
    bad_checksum, skipped = 0, 0
    fixes: dict[tuple[date | None, float], _NmeaFix] = {}
    order: list[tuple[date | None, float]] = []
    current_day: date | None = None
    last_tod: float | None = None
    n_sentences = 0
    for raw in text.splitlines():
        start = raw.find("$")
        if start < 0:
            continue
        sentence = raw[start:].strip()
        if len(sentence) < 7:
            continue
        n_sentences += 1
        ok = nmea_checksum_ok(sentence)
        if ok is False:
            bad_checksum += 1
            continue
        fields = sentence[1:].split("*")[0].split(",")
        kind = fields[0][2:] if len(fields[0]) == 5 else fields[0][-3:]
        try:
            if kind == "RMC":
                if len(fields) < 10 or fields[2] != "A":
                    skipped += 1
                    continue
                tod = _nmea_time_of_day(fields[1])
                d = fields[9]
                current_day = date(2000 + int(d[4:6]), int(d[2:4]), int(d[0:2]))
                fix = _NmeaFix(
                    tod,
                    current_day,
                    _nmea_angle(fields[3], fields[4]),
                    _nmea_angle(fields[5], fields[6]),
                    speed_mps=None if fields[7] == "" else float(fields[7]) * KNOT_MPS,
                    heading_deg=None if fields[8] == "" else float(fields[8]),
                )
            elif kind == "GGA":
                if len(fields) < 9 or fields[6] in ("", "0"):
                    skipped += 1
                    continue
                tod = _nmea_time_of_day(fields[1])
                day = current_day
                if day is not None and last_tod is not None and tod < last_tod - 43200:
                    day = day + timedelta(days=1)  # passed midnight since the last RMC
                fix = _NmeaFix(
                    tod,
                    day,
                    _nmea_angle(fields[2], fields[3]),
                    _nmea_angle(fields[4], fields[5]),
                    accuracy_m=None if fields[8] == "" else float(fields[8]) * UERE_M,
                )
            else:
                continue
        except (ValueError, IndexError):
            skipped += 1
            continue
        last_tod = fix.seconds_of_day
        key = (fix.day, round(fix.seconds_of_day, 2))
        if key in fixes:
            old = fixes[key]
            old.speed_mps = old.speed_mps if old.speed_mps is not None else fix.speed_mps
            old.heading_deg = old.heading_deg if old.heading_deg is not None else fix.heading_deg
            old.accuracy_m = old.accuracy_m if old.accuracy_m is not None else fix.accuracy_m
        else:
            fixes[key] = fix
            order.append(key)
    if n_sentences == 0:
        raise GpsTrackError(
            f"{path.name} holds no NMEA sentences ($GPRMC / $GPGGA lines); is it an NMEA log?"
        )
    # GGA seen before the first RMC: give them the first date seen (a day earlier if past midnight)
    first_day = next((f.day for f in fixes.values() if f.day is not None), None)
    first_day_tod = next((f.seconds_of_day for f in fixes.values() if f.day is not None), 0.0)
    points: list[TrackPoint] = []
    for key in order:
        fix = fixes[key]
        day = fix.day
        if day is None:
            if first_day is None:
                raise GpsTrackError(
                    f"{path.name} has GGA fixes but no valid RMC sentence, so their date is unknown; "
                    "log RMC sentences too (most apps have an option for it)"
                )
            day = first_day - timedelta(days=1) if fix.seconds_of_day > first_day_tod + 43200 else first_day
        t = datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() + fix.seconds_of_day
        points.append(TrackPoint(t, fix.lat, fix.lon, fix.speed_mps, fix.heading_deg, fix.accuracy_m))
    if not points:
        raise GpsTrackError(
            f"{path.name} holds no valid fix ({n_sentences} sentences, {bad_checksum} with a bad checksum, "
            f"{skipped} without a fix); check that the receiver had a fix while logging"
        )
    log = _finish(points, path, TrackFormat.NMEA, skipped, bad_checksum, 0)
    if bad_checksum:
        logger.warning("%s: %d NMEA sentences with a bad checksum skipped", path.name, bad_checksum)
    return log


# --------------------------------------------------------------------------------------------
# CSV of phone logger apps
# --------------------------------------------------------------------------------------------
_TIME_NAMES = (
    "time",
    "timestamp",
    "datetime",
    "date time",
    "time utc",
    "utc time",
    "utc",
    "gps time",
    "gpstime",
    "date time utc",
    "timestamp utc",
    "time stamp",
    "unix time",
    "epoch",
    "loggingtime",
    "logging time",
    "locationtimestamp since1970",
    "gps timestamp",
)
_DATE_NAMES = ("date", "date utc", "utc date", "gps date")
_LAT_NAMES = (
    "lat",
    "latitude",
    "lat deg",
    "latitude deg",
    "locationlatitude",
    "location latitude",
    "gps lat",
)
_LON_NAMES = (
    "lon",
    "lng",
    "long",
    "longitude",
    "lon deg",
    "longitude deg",
    "locationlongitude",
    "location longitude",
    "gps lon",
    "gps long",
)
_SPEED_NAMES = (
    "speed",
    "speed mps",
    "speed m s",
    "speed kmh",
    "speed km h",
    "speed kph",
    "velocity",
    "gps speed",
    "locationspeed",
    "location speed",
    "ground speed",
)
_HEADING_NAMES = (
    "bearing",
    "course",
    "heading",
    "bearing deg",
    "course deg",
    "heading deg",
    "locationcourse",
    "location course",
    "track",
    "direction",
)
_ACCURACY_NAMES = (
    "accuracy",
    "accuracy m",
    "horizontal accuracy",
    "horizontal accuracy m",
    "hacc",
    "h acc",
    "locationhorizontalaccuracy",
    "location horizontal accuracy",
    "precision",
    "hor acc",
    "horacc",
)
_HDOP_NAMES = ("hdop",)


def _normalise_header(name: str) -> tuple[str, str]:
    """('speed', 'km/h') from 'Speed (km/h)'; lower case, units split off, punctuation to spaces."""
    raw = name.strip().strip('"').lstrip("\ufeff").lower()
    unit = ""
    m = re.search(r"[(\[]([^)\]]*)[)\]]", raw)
    if m:
        unit = m.group(1).strip()
        raw = raw[: m.start()] + raw[m.end() :]
    key = re.sub(r"[^0-9a-z]+", " ", raw).strip()
    for suffix, u in (
        (" kmh", "km/h"),
        (" km h", "km/h"),
        (" kph", "km/h"),
        (" mph", "mph"),
        (" knots", "kn"),
        (" kn", "kn"),
        (" mps", "m/s"),
        (" m s", "m/s"),
    ):
        if key.endswith(suffix) and not unit:
            unit = u
    return key, unit


def _speed_factor(unit: str, key: str) -> float:
    u = (unit + " " + key).replace(" ", "")
    if "km/h" in u or "kmh" in u or "kph" in u:
        return 1 / 3.6
    if "mph" in u:
        return 0.44704
    if "kn" in u or "knot" in u:
        return KNOT_MPS
    return 1.0


def _find_column(keys: list[str], names: tuple[str, ...]) -> int | None:
    for name in names:
        if name in keys:
            return keys.index(name)
    return None


def read_csv_track(path: Path) -> GpsLog:
    """Fixes from a CSV with a header row: GPSLogger for Android (``time,lat,lon,...,accuracy,
    bearing,speed``) and other apps (``timestamp``, ``Latitude``, ``Speed (km/h)`` ...).

    Header names are matched case-insensitively, with units in brackets; time may be ISO 8601 (with
    or without offset), Unix seconds or milliseconds, or split into date and time columns."""
    path = Path(path)
    text = _read_text(path)
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise GpsTrackError(
            f"GPS file {path.name} is empty; upload the log the phone app wrote during the run"
        )
    header_line = lines[0]
    delimiter = max((",", ";", "\t", "|"), key=header_line.count)
    rows = list(csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter))
    headers = [h.strip().lstrip("\ufeff") for h in rows[0]]
    normalised = [_normalise_header(h) for h in headers]
    keys = [k for k, _ in normalised]
    i_time = _find_column(keys, _TIME_NAMES)
    i_date = _find_column(keys, _DATE_NAMES)
    if i_time is None and i_date is not None:
        i_time, i_date = i_date, None
    i_lat, i_lon = _find_column(keys, _LAT_NAMES), _find_column(keys, _LON_NAMES)
    missing = [n for n, i in (("time", i_time), ("latitude", i_lat), ("longitude", i_lon)) if i is None]
    if missing:
        raise GpsTrackError(
            f"{path.name}: no column for {', '.join(missing)}; "
            f"headers found: {', '.join(headers) or '(none)'}. Expected e.g. 'time' (or timestamp, "
            "datetime), 'lat' (or latitude) and 'lon' (or lng, longitude); "
            "rename the columns or export the log as GPX"
        )
    time_unit = normalised[i_time][1]
    zone_offset_s = 9 * 3600.0 if "jst" in time_unit else 0.0  # a 'Time (JST)' column: Japan time
    zone_in_header = zone_offset_s != 0 or "utc" in time_unit or "gmt" in time_unit or "utc" in keys[i_time]
    i_speed = _find_column(keys, _SPEED_NAMES)
    speed_factor = 1.0 if i_speed is None else _speed_factor(normalised[i_speed][1], keys[i_speed])
    i_heading = _find_column(keys, _HEADING_NAMES)
    i_acc = _find_column(keys, _ACCURACY_NAMES)
    i_hdop = _find_column(keys, _HDOP_NAMES)
    points: list[TrackPoint] = []
    skipped, naive = 0, 0
    for row in rows[1:]:
        if len(row) <= max(i_time, i_lat, i_lon):
            skipped += 1
            continue
        try:
            time_text = row[i_time]
            if i_date is not None and len(row) > i_date and ":" in time_text and "-" not in time_text:
                time_text = f"{row[i_date].strip()} {time_text.strip()}"
            t, has_zone = parse_time_utc(time_text)
            if not has_zone and zone_in_header:
                t, has_zone = t - zone_offset_s, True
            lat, lon = float(row[i_lat]), float(row[i_lon])
        except ValueError:
            skipped += 1
            continue
        if not (-90 <= lat <= 90 and -180 <= lon <= 180) or (lat == 0 and lon == 0):
            skipped += 1
            continue
        naive += not has_zone
        speed = _cell(row, i_speed)
        accuracy = _cell(row, i_acc)
        if accuracy is None:
            hdop = _cell(row, i_hdop)
            accuracy = None if hdop is None else hdop * UERE_M
        points.append(
            TrackPoint(
                t,
                lat,
                lon,
                speed_mps=None if speed is None else speed * speed_factor,
                heading_deg=_cell(row, i_heading),
                accuracy_m=accuracy,
            )
        )
    if not points:
        raise GpsTrackError(
            f"{path.name} has a header ({', '.join(headers)}) but no row with a valid time, latitude and "
            f"longitude ({len(rows) - 1} rows); check the file is the log of this run"
        )
    return _finish(points, path, TrackFormat.CSV, skipped, 0, naive)


def _cell(row: list[str], index: int | None) -> float | None:
    if index is None or index >= len(row):
        return None
    return _float_or_none(row[index])


# --------------------------------------------------------------------------------------------
# Any GPS file
# --------------------------------------------------------------------------------------------
def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig", errors="replace")
    except FileNotFoundError as exc:
        raise GpsTrackError(f"GPS file {path} does not exist; give the log with --gps FILE") from exc
    except OSError as exc:
        raise GpsTrackError(f"cannot read GPS file {path}: {exc.strerror}") from exc


def detect_format(path: Path) -> TrackFormat:
    """From the extension, else from the first bytes (``<`` XML, ``$`` NMEA, else CSV)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".gpx":
        return TrackFormat.GPX
    if suffix in (".nmea", ".nma"):
        return TrackFormat.NMEA
    head = _read_text(path)[:4096]
    stripped = head.lstrip()
    if stripped.startswith("<"):
        return TrackFormat.GPX
    if re.search(r"\$[A-Z]{2}(RMC|GGA)", head):
        return TrackFormat.NMEA
    return TrackFormat.CSV


def read_track(path: Path) -> GpsLog:
    """Read any supported GPS log (GPX, NMEA 0183, CSV)."""
    path = Path(path)
    if not path.is_file():
        raise GpsTrackError(f"GPS file {path} does not exist; give the log with --gps FILE")
    if path.stat().st_size == 0:
        raise GpsTrackError(f"GPS file {path.name} is empty (0 bytes); upload the log the phone app wrote")
    fmt = detect_format(path)
    reader = {TrackFormat.GPX: read_gpx, TrackFormat.NMEA: read_nmea, TrackFormat.CSV: read_csv_track}[fmt]
    return reader(path)


def _finish(
    points: list[TrackPoint], path: Path, fmt: TrackFormat, skipped: int, bad_checksum: int, naive: int
) -> GpsLog:
    points.sort(key=lambda p: p.t_unix_s)
    warnings: list[str] = []
    if naive:
        warnings.append(f"{naive} times in {path.name} carry no UTC offset; they were taken as UTC")
    if skipped:
        warnings.append(f"{skipped} records of {path.name} without a usable fix were skipped")
    if bad_checksum:
        warnings.append(f"{bad_checksum} NMEA sentences of {path.name} with a bad checksum were skipped")
    return GpsLog(tuple(points), str(path), fmt, skipped, bad_checksum, tuple(warnings))
