"""Frame plan: spacing by distance, nothing while standing, rut bursts every 20 m."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from pavement.errors import ConfigError
from pavement.frame_plan import NO_BURST, FramePlanConfig, OdometryPlanner, plan_frames, plan_from_selection
from pavement.gps_track import TrackSample


def _sample(speed: np.ndarray, fps: float = 30.0):
    n = len(speed)
    t = np.arange(n) / fps
    d = np.concatenate([[0.0], np.cumsum((speed[1:] + speed[:-1]) / 2 / fps)])
    z = np.zeros(n)
    s = TrackSample(t, d, z, z + 40.8, z + 140.7, z + 90.0, speed, z + 1.0, z + 0.99, np.ones(n, bool))
    return t, s, d


def test_spacing_and_no_frames_while_standing():
    speed = np.concatenate([np.full(300, 10.0), np.zeros(300), np.full(300, 10.0)])  # 100 m, 10 s stop, 100 m
    t, s, d = _sample(speed)
    plan = plan_frames(t, t + 1e9, s, d, FramePlanConfig(spacing_m=5.0, burst_every_m=0))
    spaced = np.array(plan.distance_m)
    assert len(plan) == pytest.approx(200 / 5 + 1, abs=1)
    assert np.all(np.abs(np.diff(spaced) - 5.0) < 0.4)
    assert all(p.speed_mps >= 0.5 for p in plan.poses)
    assert not any(300 <= p.frame_index < 600 for p in plan.poses)


@pytest.mark.parametrize("spacing", [4.0, 5.0, 10.0])
def test_spacing_is_configurable(spacing):
    t, s, d = _sample(np.full(600, 12.0))
    plan = plan_frames(t, t, s, d, FramePlanConfig(spacing_m=spacing, burst_every_m=0))
    assert np.median(np.diff(plan.distance_m)) == pytest.approx(spacing, abs=0.25)


def test_rut_bursts_are_consecutive_frames_every_20_m():
    t, s, d = _sample(np.full(600, 12.0))  # 240 m
    plan = plan_frames(t, t, s, d, FramePlanConfig(spacing_m=5.0, burst_every_m=20.0, burst_frames=3))
    bursts: dict[int, list[int]] = {}
    for pose, b in zip(plan.poses, plan.burst_id, strict=True):
        if b != NO_BURST:
            bursts.setdefault(b, []).append(pose.frame_index)
    assert plan.n_bursts == len(bursts) == 12 or plan.n_bursts == 13
    for frames in bursts.values():
        assert frames == list(range(frames[0], frames[0] + 3))
    starts = [d[f[0]] for f in bursts.values()]
    assert np.allclose(np.diff(starts), 20.0, atol=0.5)


def test_uncovered_frames_are_not_planned():
    t, s, d = _sample(np.full(300, 10.0))
    covered = np.ones(300, bool)
    covered[100:200] = False
    s = TrackSample(
        *[
            getattr(s, f)
            for f in (
                "t_unix_s",
                "x_m",
                "y_m",
                "lat",
                "lon",
                "heading_deg",
                "speed_mps",
                "pos_sigma_m",
                "quality",
            )
        ],
        covered,
    )
    plan = plan_frames(t, t, s, d)
    assert not any(100 <= p.frame_index < 200 for p in plan.poses)


@pytest.mark.parametrize("kwargs", [{"spacing_m": 0}, {"burst_frames": 0}, {"burst_every_m": -1}])
def test_bad_config(kwargs):
    with pytest.raises(ConfigError):
        FramePlanConfig(**kwargs)


# ---- choosing frames while the video streams (pavement process) ----------------------------------


def _stream(planner: OdometryPlanner, steps, fps: float = 30.0) -> dict[int, int]:
    for i, step in enumerate(steps):
        planner.push(i / fps, step)
    return planner.selection


def test_odometry_planner_spaces_by_measured_distance_and_skips_standing():
    # 100 m at 10 m/s, 10 s standing, 100 m: the same rule as the plan from GPS distance
    steps = [10 / 30] * 300 + [0.0] * 300 + [10 / 30] * 300
    planner = OdometryPlanner(FramePlanConfig(spacing_m=5.0, burst_every_m=0))
    chosen = sorted(_stream(planner, steps))
    assert len(chosen) == pytest.approx(200 / 5, abs=1)
    assert not any(300 < i < 600 for i in chosen)
    assert planner.distance_m == pytest.approx(200.0, abs=0.5)
    gaps = np.diff(chosen[:15]) * 10 / 30
    assert np.all(np.abs(gaps - 5.0) <= 10 / 30 + 1e-9)


def test_odometry_planner_bursts_are_consecutive_and_marked():
    planner = OdometryPlanner(FramePlanConfig(spacing_m=5.0, burst_every_m=20.0, burst_frames=3))
    selection = _stream(planner, [12 / 30] * 590)  # 236 m: the last burst has room for its 3 frames
    bursts: dict[int, list[int]] = {}
    for i, b in selection.items():
        if b != NO_BURST:
            bursts.setdefault(b, []).append(i)
    assert len(bursts) == 12
    assert all(len(v) == 3 and np.all(np.diff(sorted(v)) == 1) for v in bursts.values())


def test_odometry_planner_carries_the_last_speed_then_falls_back_to_time():
    planner = OdometryPlanner(
        FramePlanConfig(spacing_m=5.0, burst_every_m=0), hold_s=1.0, fallback_speed_mps=6.0
    )
    _stream(planner, [10 / 30] * 30 + [None] * 30 + [None] * 300)
    # 1 s measured (10 m), 1 s held at 10 m/s (10 m), 10 s at the fallback 6 m/s (60 m)
    assert planner.distance_m == pytest.approx(80.0, abs=1.0)


def test_plan_from_selection_keeps_what_the_track_can_place():
    speed = np.concatenate([np.full(300, 10.0), np.zeros(300)])
    t, s, d = _sample(speed)
    s = replace(s, covered=np.arange(600) >= 30)  # no fix in the first second
    selection = {10: NO_BURST, 100: NO_BURST, 101: 0, 102: 0, 400: NO_BURST, 401: 1}
    plan = plan_from_selection(selection, t, t + 1e9, s, d, FramePlanConfig())
    assert [p.frame_index for p in plan.poses] == [100, 101, 102, 401]  # 10: no fix; 400: standing
    assert plan.burst_id == (NO_BURST, 0, 0, 1)
