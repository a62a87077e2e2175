"""Clock offset from video speed vs. GPS speed."""

from __future__ import annotations

import numpy as np
import pytest

from pavement.clock import ClockSource, estimate_clock_offset, user_clock_offset
from tests.drives import make_drive

START = 1_714_521_600.0


def _series(offset_s: float, seed: int, scale: float = 1.05, fps: float = 10.0):
    drive = make_drive(np.array([[0.0, 0.0], [600.0, 0.0]]), speed_mps=12.0, stop_at_m=300.0, stop_s=8.0)
    rng = np.random.default_rng(seed)
    t_video = np.arange(0.0, drive.t_s[-1], 1 / fps)
    v_video = np.interp(t_video, drive.t_s, drive.speed_mps) / scale + rng.normal(0, 0.15, len(t_video))
    t_gps = np.arange(-5.0, drive.t_s[-1] + 5.0, 1.0)  # the log runs a little longer than the video
    v_gps = np.maximum(np.interp(t_gps, drive.t_s, drive.speed_mps) + rng.normal(0, 0.3, len(t_gps)), 0)
    return t_video, v_video, np.ones(len(t_video), bool), START + offset_s + t_gps, v_gps


@pytest.mark.parametrize(("offset_s", "seed"), [(0.0, 0), (2.35, 1), (-4.8, 2), (7.1, 3)])
def test_offset_found_within_its_uncertainty(offset_s, seed):
    # over 30 seeds of this 60 s drive: error rms 0.06 s, none above 0.13 s
    est = estimate_clock_offset(*_series(offset_s, seed), START)
    assert est.source is ClockSource.ESTIMATED and est.reliable
    assert abs(est.offset_s - offset_s) < min(0.2, 3 * est.uncertainty_s)
    assert 0.0 < est.uncertainty_s < 0.2
    assert est.speed_scale == pytest.approx(1.05, abs=0.03)


@pytest.mark.parametrize("seed", [4, 5, 6, 7])
def test_per_frame_noise_and_outlier_frames_do_not_move_the_offset(seed):
    """The road-plane speed of a phone video scatters by a few per cent from frame to frame, and a
    frame of smooth asphalt now and then reads zero or double. The 1 Hz GPS speed samples that
    noise at random: unsmoothed, these drives (seeds 4-15) gave offsets up to 0.32 s off; with
    the 1 s running median, at most 0.093 s."""
    t_video, v_video, valid, t_gps, v_gps = _series(2.0, seed, fps=30.0)
    rng = np.random.default_rng(seed)
    v_video = v_video * (1 + 0.06 * rng.normal(size=len(v_video)))
    odd = rng.random(len(v_video)) < 0.02
    v_video[odd] *= rng.choice([0.0, 2.0], odd.sum())
    est = estimate_clock_offset(t_video, v_video, valid, t_gps, v_gps, START)
    assert est.reliable
    assert abs(est.offset_s - 2.0) < 0.1


def test_constant_speed_is_not_trusted():
    t = np.arange(0.0, 60.0, 0.1)
    rng = np.random.default_rng(0)
    est = estimate_clock_offset(
        t,
        12 + rng.normal(0, 0.1, len(t)),
        np.ones(len(t), bool),
        START + np.arange(0, 60.0),
        12 + rng.normal(0, 0.3, 60),
        START,
    )
    assert not est.reliable and "give --clock-offset" in est.note


def test_no_video_speed_falls_back_to_nominal():
    t = np.arange(0.0, 5.0, 0.1)
    est = estimate_clock_offset(
        t, np.full(len(t), np.nan), np.zeros(len(t), bool), START + np.arange(5.0), np.ones(5), START
    )
    assert est.source is ClockSource.NOMINAL and est.offset_s == 0.0


def test_user_offset_overrides():
    est = user_clock_offset(-3.5)
    assert est.source is ClockSource.USER and est.offset_s == -3.5


@pytest.mark.parametrize(("offset_s", "seed"), [(1.7, 0), (-3.2, 1), (5.5, 2)])
def test_offset_from_positions_only(offset_s, seed):
    """A log without speed (GPX): the video's distance against the fixes' distance along the path."""
    from pavement.clock import estimate_clock_offset_from_distance

    drive = make_drive(np.array([[0.0, 0.0], [600.0, 0.0]]), speed_mps=12.0, stop_at_m=300.0, stop_s=8.0)
    rng = np.random.default_rng(seed)
    t_video = np.arange(0.0, drive.t_s[-1], 0.1)
    v_video = np.interp(t_video, drive.t_s, drive.speed_mps) / 1.05 + rng.normal(0, 0.15, len(t_video))
    t_gps = np.arange(0.0, drive.t_s[-1], 1.0)
    s_gps = np.interp(t_gps, drive.t_s, drive.distance_m) + rng.normal(0, 3.0, len(t_gps))
    est = estimate_clock_offset_from_distance(
        t_video, v_video, np.ones(len(t_video), bool), START + offset_s + t_gps, s_gps, START
    )
    assert est.reliable and abs(est.offset_s - offset_s) < min(0.3, 3 * est.uncertainty_s)
    assert est.speed_scale == pytest.approx(1.05, abs=0.05)


@pytest.mark.parametrize(("offset_s", "seed"), [(2.2, 0), (-3.6, 1)])
def test_offset_from_the_stop_when_the_road_has_no_texture(offset_s, seed):
    """Image change is ~0 while the car stands; the stop is timed against the GPS speed ramps."""
    from pavement.clock import estimate_clock_offset_from_stops

    drive = make_drive(np.array([[0.0, 0.0], [400.0, 0.0]]), speed_mps=11.0, stop_at_m=200.0, stop_s=5.0)
    rng = np.random.default_rng(seed)
    t_video = np.arange(0.0, drive.t_s[-1], 0.1)
    moving = np.interp(t_video, drive.t_s, drive.speed_mps) > 0.02
    change = np.where(moving, rng.uniform(0.5, 3.0, len(t_video)), rng.uniform(0.0, 0.02, len(t_video)))
    t_gps = np.arange(0.0, drive.t_s[-1], 1.0)
    v_gps = np.maximum(np.interp(t_gps, drive.t_s, drive.speed_mps) + rng.normal(0, 0.15, len(t_gps)), 0)
    est = estimate_clock_offset_from_stops(t_video, change, START + offset_s + t_gps, v_gps, START)
    assert est.source is ClockSource.ESTIMATED and est.reliable
    assert abs(est.offset_s - offset_s) < 0.3


def test_no_stop_in_the_video_is_not_timed():
    from pavement.clock import estimate_clock_offset_from_stops

    t = np.arange(0.0, 60.0, 0.1)
    est = estimate_clock_offset_from_stops(
        t, np.full(len(t), 2.0), START + np.arange(60.0), np.full(60, 10.0), START
    )
    assert est.source is ClockSource.NOMINAL and not est.reliable
