import numpy as np
import pytest

from pavement.camera import CameraIntrinsics, CameraMount
from pavement.segments import Direction
from pavement.synthetic.sensors import DepthSpec, GpsSpec, depth_map_mm, simulate_accel, simulate_gps
from pavement.synthetic.vehicle import GRAVITY_MPS2, DriveSpec, random_vehicle, simulate_drive

from .helpers import flat_scene, straight_route

START = 12100.0


@pytest.fixture(scope="module")
def drive():
    rng = np.random.default_rng(2)
    scene = flat_scene(straight_route(), rut_mm=10.0, crossfall=0.02)
    return scene, simulate_drive(scene, DriveSpec(START, 400.0, Direction.DOWN), random_vehicle(rng), rng)


def test_speed_profile_has_one_stop_of_a_few_seconds(drive):
    _, d = drive
    kmh = d.speed_mps * 3.6
    assert kmh.max() <= 60.0 and np.all(kmh >= 0)
    moving = (kmh[(d.t_s > 0) & (d.t_s < d.video_duration_s)] > 0).astype(int)
    assert np.count_nonzero(np.diff(moving) == -1) == 1  # stops exactly once
    assert 3.0 <= d.stop_t_s[1] - d.stop_t_s[0] <= 6.1
    cruising = kmh[(d.t_s > 0) & (kmh > 1)]
    assert np.median(cruising) > 20.0
    assert d.at(0.0, "s_m") == pytest.approx(START, abs=0.05)
    assert d.at(d.video_duration_s, "s_m") == pytest.approx(START + 400.0, abs=0.05)


def test_car_stays_in_its_lane_and_rides_the_crossfall(drive):
    _, d = drive
    assert np.all((d.t_m > 1.2) & (d.t_m < 2.3))  # lane centre 1.75 m, wander +- 0.35 m at most
    still = d.speed_mps == 0
    # Standing on a 2 % cross-fall the body rolls by about 1.15 deg, left side (the shoulder) down.
    assert np.median(d.roll_deg[still]) == pytest.approx(-1.15, abs=0.15)


def test_phone_at_rest_reads_gravity_along_its_up_axis(drive):
    _, d = drive
    mount = CameraMount(1.35, 12.0, 0.0)
    acc = simulate_accel(d, mount, 1.7e9, np.random.default_rng(0))
    assert np.allclose(np.diff(acc.t_unix_s), 0.01, atol=1e-6)
    t_still = 1.7e9 + (d.stop_t_s[0] + d.stop_t_s[1]) / 2
    a = acc.accel_mps2[np.argmin(np.abs(acc.t_unix_s - t_still))]
    assert np.linalg.norm(a) == pytest.approx(GRAVITY_MPS2, abs=0.25)
    assert a[0] == pytest.approx(GRAVITY_MPS2 * np.cos(np.radians(12.0)), abs=0.3)  # x = up in the image
    assert a[2] == pytest.approx(GRAVITY_MPS2 * np.sin(np.radians(12.0)), abs=0.3)  # pitched down 12 deg


def test_gps_is_1_hz_noisy_with_outliers(drive):
    scene, d = drive
    gps = simulate_gps(d, scene.route, 1.7e9 + 0.4, GpsSpec(error_rms_m=4.0), np.random.default_rng(0))
    assert np.all(np.diff(gps.t_unix_s) == 1.0) and np.all(gps.t_unix_s % 1 == 0)
    xy = scene.route.projection.to_plane(gps.lat, gps.lon)
    tv = gps.t_unix_s - (1.7e9 + 0.4)
    err = np.hypot(xy[:, 0] - d.at(tv, "x_m"), xy[:, 1] - d.at(tv, "y_m"))
    assert 2.0 < np.sqrt(np.mean(err[~gps.outlier] ** 2)) < 9.0
    assert gps.outlier.sum() == 3 and np.all(err[gps.outlier] > 12.0)


def test_depth_sensor_noise_grows_with_depth_and_stops_at_8_m():
    spec = DepthSpec()
    k = spec.intrinsics(CameraIntrinsics.from_fov(1280, 720, 70.0))
    assert (k.width_px, k.height_px) == (256, 144) and k.fx_px == pytest.approx(182.8, abs=0.1)
    v, u = np.mgrid[0:144, 0:256].astype(float)
    cos_axis = 1 / np.sqrt(((u - k.cx_px) / k.fx_px) ** 2 + ((v - k.cy_px) / k.fy_px) ** 2 + 1)
    rng = np.random.default_rng(0)
    for z_m, sigma_mm in ((2.0, 6.0), (6.0, 14.0)):
        mm = depth_map_mm(z_m / cos_axis, k, rng, spec)  # a wall at z-depth z_m
        got = mm[mm > 0].astype(float)
        assert np.median(got) == pytest.approx(z_m * 1000, abs=1.0)
        assert np.std(got) == pytest.approx(sigma_mm, rel=0.05)
        assert 0.007 < np.mean(mm == 0) < 0.013  # 1 % dropouts
    far = depth_map_mm(np.full((144, 256), 8.5), k, rng, spec)
    sky = depth_map_mm(np.full((144, 256), np.nan), k, rng, spec)
    assert far.dtype == np.uint16 and not far.any() and not sky.any()


@pytest.mark.parametrize(("correlation_s", "low", "high"), [(0.0, 0.5, 1.5), (20.0, 0.0, 0.25)])
def test_gps_error_is_correlated_over_time_or_independent(drive, correlation_s, low, high):
    scene, d = drive
    spec = GpsSpec(error_rms_m=5.0, correlation_s=correlation_s, n_outliers=0)
    gps = simulate_gps(d, scene.route, 1.7e9, spec, np.random.default_rng(1))
    xy = scene.route.projection.to_plane(gps.lat, gps.lon)
    tv = gps.t_unix_s - 1.7e9
    ex = xy[:, 0] - d.at(tv, "x_m")
    # mean squared step between consecutive fixes' errors over 2 sigma^2: 1 when independent,
    # 1 - exp(-1 s / 20 s) = 0.05 when correlated over 20 s
    step = np.mean(np.diff(ex) ** 2) / (2 * 5.0**2)
    assert low < step < high
