"""GPS readers: GPX, NMEA 0183, phone-app CSVs; the bad inputs each give a clear error."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pavement.errors import GpsTrackError
from pipelines.gps_io import TrackFormat, nmea_checksum_ok, parse_time_utc, read_track

T = datetime(2024, 5, 1, 1, 2, 3, tzinfo=UTC).timestamp()


def _nmea(body: str) -> str:
    c = 0
    for ch in body:
        c ^= ord(ch)
    return f"${body}*{c:02X}"


@pytest.mark.parametrize(
    ("text", "expected", "zoned"),
    [
        ("2024-05-01T01:02:03Z", T, True),
        ("2024-05-01T10:02:03+09:00", T, True),
        ("2024-05-01T10:02:03.500+0900", T + 0.5, True),
        ("2024/05/01 01:02:03", T, False),
        (str(int(T)), T, True),
        (str(int(T * 1000)), T, True),
    ],
)
def test_time_stamps(text, expected, zoned):
    assert parse_time_utc(text) == (pytest.approx(expected), zoned)


def test_gpx_1_1_with_offsets(tmp_path):
    f = tmp_path / "a.gpx"
    f.write_text(
        '<?xml version="1.0"?><gpx version="1.1" xmlns="http://www.topografix.com/GPX/1/1"><trk><trkseg>'
        '<trkpt lat="40.8" lon="140.7"><ele>5</ele>'
        "<time>2024-05-01T10:02:03+09:00</time><hdop>0.8</hdop></trkpt>"
        '<trkpt lat="40.8001" lon="140.7"><time>2024-05-01T01:02:04Z</time></trkpt>'
        '<trkpt lat="40.8002" lon="140.7"></trkpt>'
        "</trkseg></trk></gpx>"
    )
    log = read_track(f)
    assert log.format is TrackFormat.GPX and len(log.points) == 2 and log.n_skipped == 1
    assert log.points[0].t_unix_s == pytest.approx(T)
    assert log.points[0].accuracy_m == pytest.approx(4.0)


def test_nmea_rmc_gga_merged_and_bad_checksums_counted(tmp_path):
    lines = [
        _nmea("GPRMC,010203.00,A,4048.000,N,14042.000,E,20.0,90.0,010524,,,A"),
        _nmea("GPGGA,010203.00,4048.000,N,14042.000,E,1,10,0.9,5.0,M,40.0,M,,"),
        _nmea("GNRMC,010204.00,A,4048.001,N,14042.010,E,20.0,90.0,010524,,,A"),
        "$GPRMC,010205.00,A,4048.002,N,14042.020,E,20.0,90.0,010524,,,A*00",  # bad checksum
        _nmea("GPGGA,010206.00,4048.003,N,14042.030,E,1,10,1.2,5.0,M,40.0,M,,"),
        _nmea("GPRMC,010207.00,V,,,,,,,010524,,,N"),  # void
        "garbage line",
    ]
    f = tmp_path / "log.nmea"
    f.write_text("\n".join(lines))
    log = read_track(f)
    assert log.format is TrackFormat.NMEA
    assert log.n_bad_checksum == 1 and any("checksum" in w for w in log.warnings)
    assert [round(p.t_unix_s - T) for p in log.points] == [0, 1, 3]
    first = log.points[0]
    assert first.lat == pytest.approx(40.8) and first.lon == pytest.approx(140.7)
    assert first.speed_mps == pytest.approx(20 * 0.514444) and first.accuracy_m == pytest.approx(4.5)


def test_nmea_with_only_bad_checksums_says_so(tmp_path):
    f = tmp_path / "bad.nmea"
    f.write_text("$GPRMC,010205.00,A,4048.002,N,14042.020,E,20.0,90.0,010524,,,A*00\n" * 3)
    with pytest.raises(GpsTrackError, match="3 with a bad checksum"):
        read_track(f)


def test_checksum_helper():
    good = _nmea("GPGGA,1,2")
    assert nmea_checksum_ok(good) is True
    assert nmea_checksum_ok(good[:-2] + "00") is False
    assert nmea_checksum_ok("$GPGGA,1,2") is None


def test_gpslogger_csv(tmp_path):
    f = tmp_path / "gps.csv"
    f.write_text(
        "time,lat,lon,elevation,accuracy,bearing,speed,satellites,provider,hdop,vdop,pdop,geoidheight,"
        "ageofdgpsdata,dgpsid,activity,battery,annotation\n"
        "2024-05-01T01:02:03.000Z,40.8,140.7,5,3.5,88.0,11.2,12,gps,0.9,1,1,40,,,,90,\n"
        "2024-05-01T01:02:04.000Z,40.8001,140.7,5,,,,12,gps,1.2,1,1,40,,,,90,\n"
    )
    log = read_track(f)
    assert log.format is TrackFormat.CSV and len(log.points) == 2
    p0, p1 = log.points
    assert (p0.t_unix_s, p0.speed_mps, p0.heading_deg, p0.accuracy_m) == (pytest.approx(T), 11.2, 88.0, 3.5)
    assert p1.accuracy_m == pytest.approx(6.0)  # from hdop when accuracy is blank


def test_other_app_csv_headers_and_units(tmp_path):
    f = tmp_path / "export.csv"
    f.write_text(
        "Timestamp;Latitude;Longitude;Speed (km/h);Course\n"
        f"{int(T * 1000)};40.8;140.7;36.0;90\n"
        f"{int(T * 1000) + 1000};40.8001;140.7;72.0;91\n"
    )
    log = read_track(f)
    assert [p.speed_mps for p in log.points] == [pytest.approx(10.0), pytest.approx(20.0)]
    assert log.points[0].t_unix_s == pytest.approx(T) and log.points[1].heading_deg == 91


def test_csv_with_japan_time_column(tmp_path):
    f = tmp_path / "jst.csv"
    f.write_text("Time (JST),lat,lng\n2024-05-01 10:02:03,40.8,140.7\n")
    assert read_track(f).points[0].t_unix_s == pytest.approx(T)


def test_csv_missing_columns_named_with_the_headers_found(tmp_path):
    f = tmp_path / "x.csv"
    f.write_text("when,northing,easting\n1,2,3\n")
    with pytest.raises(GpsTrackError) as err:
        read_track(f)
    msg = str(err.value)
    assert "time, latitude, longitude" in msg and "when, northing, easting" in msg


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("empty.csv", "", "empty"),
        ("empty.gpx", "", "empty"),
        (
            "nofix.gpx",
            '<gpx xmlns="http://www.topografix.com/GPX/1/1"><trk><trkseg></trkseg></trk></gpx>',
            "no fixes",
        ),
        ("broken.gpx", "<gpx><trk>", "not valid GPX"),
        ("header_only.csv", "time,lat,lon\n", "no row"),
        ("nothing.nmea", "hello\n", "no NMEA sentences"),
    ],
)
def test_bad_gps_files(tmp_path, name, content, match):
    f = tmp_path / name
    f.write_text(content)
    with pytest.raises(GpsTrackError, match=match):
        read_track(f)


def test_missing_file(tmp_path):
    with pytest.raises(GpsTrackError, match="does not exist"):
        read_track(tmp_path / "nope.gpx")
