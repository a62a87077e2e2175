"""Track cleaning and smoothing on hand-made drives with known truth."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from pavement.errors import ConfigError, GpsTrackError
from pavement.gps_track import (
    FixFlag,
    SpeedSeries,
    TrackConfig,
    clean_track,
    distance_travelled_m,
    smooth_track,
)
from tests.drives import ORIGIN_XY, PROJECTION, T0_UNIX_S, gps_fixes, make_drive, rounded

PATH = rounded(np.array([[0.0, 0.0], [400.0, 0.0], [400.0, 300.0], [700.0, 500.0]]), 20.0)


@pytest.fixture(scope="module")
def drive():
    return make_drive(PATH, speed_mps=13.0, stop_at_m=520.0, stop_s=10.0)


def _errors(track, drive, step_s=0.5):
    t = np.arange(2.0, drive.t_s[-1] - 2.0, step_s)
    s = track.sample(T0_UNIX_S + t)
    true = drive.position_at(t) + ORIGIN_XY
    return np.hypot(s.x_m - true[:, 0], s.y_m - true[:, 1]), s


def test_empty_track_is_an_error():
    with pytest.raises(GpsTrackError, match="no fixes"):
        clean_track([], PROJECTION)


def test_outliers_and_poor_accuracy_are_flagged(drive):
    fixes = gps_fixes(drive, noise_m=4.0, seed=3, outlier_every=15, outlier_m=40.0)
    thrown = {i for i in range(7, len(fixes), 15)}
    fixes[3] = replace(fixes[3], accuracy_m=80.0)
    clean = clean_track(fixes, PROJECTION)
    flagged = {i for i, f in enumerate(clean.flags) if f is FixFlag.OUTLIER}
    assert clean.flags[3] is FixFlag.POOR_ACCURACY
    assert len(thrown & flagged) >= 0.9 * len(thrown)  # outliers caught
    assert len(flagged - thrown) <= 2  # few good fixes lost
    assert all(p.quality == 0 for p, f in zip(clean.points, clean.flags, strict=True) if f is not FixFlag.OK)
    assert all(0.5 < p.quality <= 1 for p in clean.kept)


def test_impossible_jump_is_flagged(drive):
    fixes = gps_fixes(drive, noise_m=1.0, seed=1)
    lat, lon = PROJECTION.to_latlon(*(PROJECTION.to_plane(fixes[20].lat, fixes[20].lon)[0] + [3000.0, 0.0]))[
        0
    ]
    fixes[20] = replace(fixes[20], lat=lat, lon=lon)
    flags = clean_track(fixes, PROJECTION).flags
    assert flags[20] in (FixFlag.OUTLIER, FixFlag.IMPOSSIBLE_SPEED)


@pytest.mark.parametrize("with_speed", [False, True])
def test_smoothing_beats_the_raw_fixes(drive, with_speed):
    fixes = gps_fixes(drive, noise_m=4.0, seed=5, outlier_every=20, with_speed=with_speed)
    track = smooth_track(clean_track(fixes, PROJECTION), PROJECTION)
    err, sample = _errors(track, drive)
    assert np.sqrt(np.mean(err**2)) < 3.0  # raw fixes: 4 m per axis, 5.7 m rms
    assert np.all(sample.quality > 0.5)


def test_video_speed_pins_the_distance_between_fixes(drive):
    fixes = gps_fixes(drive, noise_m=4.0, seed=7, with_speed=False)
    clean = clean_track(fixes, PROJECTION)
    t = drive.t_s[::5]
    speed = SpeedSeries(T0_UNIX_S + t, drive.speed_mps[::5], np.ones(len(t), bool))
    err_vid, s = _errors(smooth_track(clean, PROJECTION, video_speed=speed), drive)
    assert np.sqrt(np.mean(err_vid**2)) < 3.0
    # while standing, the position does not creep and no distance accumulates
    standing = (s.t_unix_s - T0_UNIX_S > 0) & (
        np.interp(s.t_unix_s - T0_UNIX_S, drive.t_s, drive.speed_mps) == 0
    )
    d = distance_travelled_m(s)
    stop = np.flatnonzero(standing[1:] & standing[:-1])
    assert np.sum(np.diff(d)[stop]) < 0.5


def test_long_gap_is_not_bridged_and_named(drive):
    fixes = gps_fixes(drive, noise_m=3.0, seed=2)
    t0 = fixes[0].t_unix_s
    fixes = [p for p in fixes if not 10 <= p.t_unix_s - t0 <= 50]
    config = TrackConfig(max_gap_s=30.0)
    track = smooth_track(clean_track(fixes, PROJECTION, config), PROJECTION, config)
    assert len(track.gaps) == 1
    msg = track.gaps[0].message(30.0)
    assert "GPS gap of 42.0 s" in msg and "at most 30 s is bridged" in msg
    s = track.sample(np.array([t0 + 5.0, t0 + 30.0, t0 + 60.0]))
    assert list(s.covered) == [True, False, True] and s.quality[1] == 0.0


def test_short_gap_is_bridged(drive):
    fixes = gps_fixes(drive, noise_m=3.0, seed=2, with_speed=False)
    t0 = fixes[0].t_unix_s
    fixes = [p for p in fixes if not 15 <= p.t_unix_s - t0 <= 22]
    track = smooth_track(clean_track(fixes, PROJECTION), PROJECTION)
    err, s = _errors(track, drive)
    assert not track.gaps and s.covered.all()
    assert err.max() < 12.0


def test_too_few_fixes():
    fixes = gps_fixes(make_drive(np.array([[0.0, 0.0], [50.0, 0.0]])), noise_m=1.0)[:1]
    with pytest.raises(GpsTrackError, match="at least 2"):
        smooth_track(clean_track(fixes, PROJECTION), PROJECTION)


def test_config_is_checked():
    with pytest.raises(ConfigError, match="max_gap_s"):
        TrackConfig(max_gap_s=0)
