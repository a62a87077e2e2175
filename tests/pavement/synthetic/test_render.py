import numpy as np
import pytest

from pavement.camera import CameraIntrinsics, CameraMount, CameraProfile
from pavement.synthetic.render import CameraPose, Renderer
from pavement.synthetic.scene import Patch

from .helpers import flat_scene, straight_route

HEADING = 0.3
MOUNT = CameraMount(1.35, 12.0, 0.8, 0.0)
INTRINSICS = CameraIntrinsics.from_fov(320, 180, 70.0)
POSE = CameraPose(12100.0, 1.75, HEADING, MOUNT)


def _ground_from_homography(u, v):
    """Vehicle-frame road points (x forward, y left) of pixels, by the camera profile alone."""
    h_inv = np.linalg.inv(CameraProfile(INTRINSICS, MOUNT).ground_homography())
    p = h_inv @ np.stack([u, v, np.ones_like(u)])
    return p[0] / p[2], p[1] / p[2]


def test_pixels_see_the_ground_point_the_homography_predicts():
    renderer = Renderer(flat_scene(straight_route()), INTRINSICS)
    hit = renderer.hits(POSE)
    v, u = np.mgrid[100:180:7, 0:320:13].astype(float)
    x, y = _ground_from_homography(u.ravel(), v.ravel())
    near = x < 15.0
    # Straight route, vehicle along it: route s = s_v + x, t = t_v + y. The height field holds
    # only sub-millimetre texture here, which shifts a hit by under 1 cm within 15 m.
    s = hit.s_m[v.astype(int), u.astype(int)].ravel()[near]
    t = hit.t_m[v.astype(int), u.astype(int)].ravel()[near]
    assert np.abs(s - (POSE.s_m + x[near])).max() < 0.01
    assert np.abs(t - (POSE.t_m + y[near])).max() < 0.01


def test_a_bright_patch_is_drawn_where_the_camera_projects_it():
    s_c, t_c = POSE.s_m + 6.0, POSE.t_m - 0.4  # 6 m ahead, 0.4 m to the right
    scene = flat_scene(straight_route(), patches=(Patch(s_c, t_c, 0.4, 0.4, 0.0, 0.0, 6.0),))
    img = Renderer(scene, INTRINSICS).render(POSE, 1.0).image_rgb.astype(float).mean(axis=2)
    base = (
        Renderer(flat_scene(straight_route()), INTRINSICS)
        .render(POSE, 1.0)
        .image_rgb.astype(float)
        .mean(axis=2)
    )
    diff = np.clip(img - base, 0, None)
    assert diff.max() > 60
    w = diff * (diff > 0.3 * diff.max())
    vv, uu = np.mgrid[: img.shape[0], : img.shape[1]]
    centroid = np.array([(uu * w).sum(), (vv * w).sum()]) / w.sum()
    p = CameraProfile(INTRINSICS, MOUNT).projection_matrix() @ np.array([6.0, -0.4, 0.0, 1.0])
    assert np.linalg.norm(centroid - p[:2] / p[2]) < 1.0


def test_the_same_pose_renders_identical_frames():
    scene = flat_scene(straight_route(), rut_mm=25.0, crossfall=0.02, seed=4)
    first = Renderer(scene, INTRINSICS)
    a = first.render(POSE, 1.1).image_rgb
    first.render(CameraPose(POSE.s_m + 40.0, 1.6, HEADING, MOUNT), 1.1)  # other chunks in its cache
    b = first.render(POSE, 1.1).image_rgb
    c = Renderer(scene, INTRINSICS).render(POSE, 1.1).image_rgb
    assert np.array_equal(a, b) and np.array_equal(a, c)
    assert a.shape == (180, 320, 3) and a.dtype == np.uint8 and 40 < a.mean() < 200


@pytest.mark.parametrize("rut_mm", [0.0, 40.0])
def test_rays_stop_on_the_rutted_surface(rut_mm):
    scene = flat_scene(straight_route(), rut_mm=rut_mm, crossfall=0.02)
    renderer = Renderer(scene, INTRINSICS)
    hit = renderer.hits(POSE)
    v, u = np.mgrid[: INTRINSICS.height_px, : INTRINSICS.width_px]
    ok = np.isfinite(hit.range_m) & (hit.range_m < 25.0) & (np.abs(hit.t_m) < 4.2)  # the paved width
    d = CameraProfile(INTRINSICS, MOUNT).pixel_rays_vehicle(u[ok].astype(float), v[ok].astype(float))
    ray_z = MOUNT.height_m + hit.range_m[ok] * d[:, 2]
    surface_z = scene.profile_height(hit.s_m[ok].astype(float), hit.t_m[ok].astype(float))
    # Within 1 mm: the texture relief (+-0.5 mm) is in the rendered height field, not the truth's.
    assert np.quantile(np.abs(ray_z - surface_z), 0.99) < 0.001
    if rut_mm:  # the ruts moved the hits: they are geometry, not paint
        flat = Renderer(flat_scene(straight_route(), crossfall=0.02), INTRINSICS).hits(POSE)
        shift = np.abs(hit.s_m - flat.s_m)[ok]
        assert np.nanmax(shift) > 0.05
