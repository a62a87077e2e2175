"""Synthetic road frames drawn exactly through a camera's ground homography (crack-stage tests)."""

import numpy as np

from pavement.camera import CameraIntrinsics, CameraMount, CameraProfile


def camera(pitch=12.0, height=1.35, distortion=(0.0,) * 5) -> CameraProfile:
    k = CameraIntrinsics.from_fov(1280, 720, 70.0)
    k = CameraIntrinsics(k.width_px, k.height_px, k.fx_px, k.fy_px, k.cx_px, k.cy_px, distortion)
    return CameraProfile(k, CameraMount(height, pitch))


def render_road(cam: CameraProfile, lines, seed=0, oversample=3) -> np.ndarray:
    """A grey frame of the road plane (fine asphalt-like texture) with dark lines drawn on it:
    ``lines`` = [((x0, y0), (x1, y1), width_m)] in vehicle-frame metres. Every sub-pixel's ray is
    intersected with the road plane; ``oversample`` x ``oversample`` sub-pixels are averaged."""
    k = cam.intrinsics
    step = 1.0 / oversample
    u, v = np.meshgrid(
        np.arange(k.width_px * oversample) * step + step / 2 - 0.5,
        np.arange(k.height_px * oversample) * step + step / 2 - 0.5,
    )
    h_inv = np.linalg.inv(cam.ground_homography())
    g = np.tensordot(h_inv, np.stack([u, v, np.ones_like(u)]), axes=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        x, y = g[0] / g[2], g[1] / g[2]
    ground = (g[2] > 0) & (x > 0)
    rng = np.random.default_rng(seed)
    # texture fixed to the road (1 cm cells, ~2 % contrast, as the synthetic renderer shows it at 2-5 m)
    cells = rng.normal(0, 1, (4000, 1000))
    ix = np.clip(np.nan_to_num(x * 100).astype(int), 0, 3999)
    iy = np.clip(np.nan_to_num((y + 5) * 100).astype(int), 0, 999)
    image = 110 + 2 * cells[ix, iy]
    for (x0, y0), (x1, y1), w in lines:
        p0, d = np.array([x0, y0]), np.array([x1 - x0, y1 - y0])
        t = np.clip(((x - x0) * d[0] + (y - y0) * d[1]) / (d @ d), 0, 1)
        dist = np.hypot(x - (p0[0] + t * d[0]), y - (p0[1] + t * d[1]))
        image = np.where(ground & (dist <= w / 2), 35, image)
    image = np.where(ground, image, 200)  # sky
    image = image.reshape(k.height_px, oversample, k.width_px, oversample).mean(axis=(1, 3))
    return np.clip(image, 0, 255).astype(np.uint8)
