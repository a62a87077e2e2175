"""Ray casting of the road's height field through the camera: a dash-camera frame.

Per pixel: the ray from the camera (vehicle frame: x forward, y left, z up) meets the datum
plane z = 0 at range lambda0; that point is mapped to route coordinates (s, t); then a few
Newton steps on h(lambda) = ray height - surface height move it onto the height field, using the
surface gradient stored with the heights. Shading: albedo x (sky light + sun light x sun
visibility x cos of the angle between the surface normal and the sun), distance haze, a filmic
tone curve with the frame's exposure, vignetting. Above the horizon: sky. Roadside poles and
trees are drawn as projected solids over the ground (they stand on it, so everything they cover
lies behind them).

Cost control: the exact plane -> (s, t) mapping (Newton on the centreline) runs on a coarse grid
of pixels (every 4th); full resolution adds the exact rigid part (a rotation and a shift) to the
interpolated, smooth, curvature residual. Textures are sampled from an atlas of rip-map levels
chosen per pixel from its footprint along and across the road, blending two levels.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import cv2
import numpy as np

from pavement.camera import CameraIntrinsics, CameraMount
from pavement.errors import ConfigError
from pavement.synthetic.scene import Scene
from pavement.synthetic.surface import (
    CHUNK_M,
    GEOMETRY_SCALE,
    MAX_LEVEL,
    N_VARIANTS,
    R0_M,
    T_HALF_M,
    ChunkLevel,
    LevelSpec,
    canonical_tier,
    chunk_levels,
    generate_tile,
    lattice_noise,
    level_specs,
)


@dataclass(frozen=True)
class CameraPose:
    """The true camera of one frame.

    ``s_m``, ``t_m``: route coordinates of the vehicle frame's origin (on the datum below the
    camera); ``heading_rad``: the vehicle's heading in the plane (math angle); ``mount``: the
    camera's height above the datum and its angles, body motion included."""

    s_m: float
    t_m: float
    heading_rad: float
    mount: CameraMount


@dataclass(frozen=True)
class RenderConfig:
    coarse_step_px: int = 4
    iterations: int = 3  # Newton steps onto the height field
    max_range_m: float = 250.0  # farther ground is haze
    haze_m: float = 900.0  # e-folding distance of the haze
    vignette: float = 0.22
    keep_frames: int = 20  # a strip of chunks unused for this many frames is dropped
    threads: int = 2  # bands of pixel rows rendered in parallel


@dataclass(frozen=True, eq=False)
class RenderedFrame:
    image_rgb: np.ndarray  # (h, w, 3) uint8
    mean_luma: float  # mean of the tone-mapped image (0-1), for auto-exposure


@dataclass(frozen=True, eq=False)
class SurfaceHit:
    """Where each pixel's ray meets the road (NaN where it does not: sky, beyond max range)."""

    s_m: np.ndarray
    t_m: np.ndarray
    range_m: np.ndarray


SKY_HORIZON_RGB = np.array([0.80, 0.84, 0.90], np.float32)
SKY_ZENITH_RGB = np.array([0.36, 0.52, 0.82], np.float32)
_SKY_LUMINANCE = 1.6  # sky radiance relative to the irradiance units of the ground
_POLE_RGB = np.array([0.30, 0.295, 0.285], np.float32)
_CLOUD_RGB = np.array([1.05, 1.05, 1.06], np.float32)
_TRUNK_RGB = np.array([0.16, 0.12, 0.09], np.float32)
_CANOPY_RGB = np.array([0.06, 0.11, 0.04], np.float32)
_FOLD_M = 2.0  # width of the outer verge band mirrored beyond the raster's edge
_T_TEX = T_HALF_M - 0.01  # texture lookups stay inside the raster
_Z_SCALE, _G_SCALE = GEOMETRY_SCALE[0], GEOMETRY_SCALE[1]
_TYPICAL_CAMERA_HEIGHT_M = 1.35  # pairs the rip-map levels' texel sizes (any height renders right)
_STRIP_MIN_A_S = 3  # levels this coarse along s are assembled from cached strips of chunks
_LUT_MAX = 12.0  # exposure x radiance covered by the tone-curve lookup table
_LUT_SIZE = 4096


def tone_map(radiance: np.ndarray, exposure: float) -> np.ndarray:
    """Linear radiance -> display value in [0, 1]: a soft shoulder, gamma 1/2.2, and a mild
    S-curve around mid-grey (a phone's "punchy" default look)."""
    y = (1.0 - np.exp(-exposure * np.asarray(radiance))) ** (1 / 2.2)
    return np.clip(0.5 + 1.2 * (y - 0.5), 0.0, 1.0)


_TONE_LUT = np.clip(tone_map(np.linspace(0, _LUT_MAX, _LUT_SIZE), 1.0) * 255 + 0.5, 0, 255).astype(np.uint8)


def _tone_u8(value: np.ndarray) -> np.ndarray:
    """Exposed radiance -> uint8 display value through the tone-curve table."""
    idx = np.minimum(value * ((_LUT_SIZE - 1) / _LUT_MAX), _LUT_SIZE - 1).astype(np.int32)
    return _TONE_LUT[idx]


@dataclass
class _Atlas:
    geometry: np.ndarray  # (rows, cols, 4) int16, see surface.GEOMETRY_SCALE
    albedo: np.ndarray  # (rows, cols, 4) uint8
    coef: np.ndarray  # (4, n_keys) float32: A_x, B_x, A_y, B_y with x = A_x s_rel + B_x, y = A_y t + B_y
    rects: dict[int, tuple[int, int, int, int]]  # key -> x0, y0, x1, y1 of its piece


@dataclass
class _Strip:
    chunk0: int
    n_chunks: int
    geometry: np.ndarray
    albedo: np.ndarray
    last_used: int


@dataclass
class _Setup:
    """What the row bands of one frame share."""

    pose: CameraPose
    row0: int  # rows above cannot hold ground
    m: np.ndarray  # vehicle <- camera rotation (float32)
    dz: np.ndarray  # (h, w) vertical component of each pixel's unit ray
    up: dict[str, np.ndarray]  # coarse-grid fields upsampled to (h, w)
    atlas: _Atlas
    cd: float  # cos, sin of (vehicle heading - route heading at the vehicle)
    sd: float
    keys_of: Callable
    sample: Callable


@dataclass
class _Trace:
    """Per-pixel hits of one band of rows (from ``row0``)."""

    row0: int
    ground: np.ndarray
    lam: np.ndarray
    s_rel: np.ndarray
    t: np.ndarray
    dz: np.ndarray
    gradient: tuple[np.ndarray, np.ndarray]  # dz/ds, dz/dt at the hits (last Newton sample)
    keys: tuple[np.ndarray, np.ndarray]
    frac: np.ndarray
    t_off: np.ndarray  # lateral shift of texture lookups (verge mirroring)
    sun_st: tuple[np.ndarray, np.ndarray]


@dataclass
class Renderer:
    """Renders frames of one scene through one set of intrinsics; keeps a cache of chunk levels."""

    scene: Scene
    intrinsics: CameraIntrinsics
    config: RenderConfig = field(default_factory=RenderConfig)

    def __post_init__(self) -> None:
        k = self.intrinsics
        if any(abs(d) > 0 for d in k.distortion):
            raise ConfigError("the synthetic renderer draws an ideal pinhole camera; set distortion to zeros")
        w, h = k.width_px, k.height_px
        u, v = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        self._rx, self._ry = (u - k.cx_px) / k.fx_px, (v - k.cy_px) / k.fy_px
        self._rinv = 1.0 / np.sqrt(self._rx**2 + self._ry**2 + 1.0)
        step = self.config.coarse_step_px
        self._cw, self._ch = max(2, -(-w // step)), max(2, -(-h // step))
        # Coarse samples sit where cv2.resize puts the centres of the coarse pixels.
        cu = (np.arange(self._cw) + 0.5) * (w / self._cw) - 0.5
        cv = (np.arange(self._ch) + 0.5) * (h / self._ch) - 0.5
        cu, cv = np.meshgrid(cu, cv)
        self._rays_coarse = np.stack(
            [(cu - k.cx_px) / k.fx_px, (cv - k.cy_px) / k.fy_px, np.ones_like(cu)]
        ).reshape(3, -1)
        self._specs = level_specs(k.fx_px, _TYPICAL_CAMERA_HEIGHT_M)
        self._matched_a_t = np.array(
            [self._specs[L * N_VARIANTS].a_t for L in range(MAX_LEVEL + 1)], np.float32
        )
        self._cache: dict[tuple[int, int], ChunkLevel] = {}
        self._last_used: dict[tuple[int, int], int] = {}
        self._frame_no = 0
        self._pool = ThreadPoolExecutor(max(1, self.config.threads))
        self._strips: dict[int, _Strip] = {}
        self._view_m = (-np.inf, np.inf)  # chainage range the last frame looked at
        self._ahead = 1.0  # +1 when the view lies toward increasing chainage
        z_lo, z_hi = self.scene.height_range_m()
        self._z_lo, self._z_hi = z_lo - 0.01, z_hi + 0.005
        # Clouds: value noise over azimuth (1024 px for 360 deg, wrapping) x elevation (0-0.7 rad).
        cover = sum(
            amp * lattice_noise(self.scene.seed * 13 + i, cell, 1.0, 0, 256, 0, 1024)
            for i, (cell, amp) in enumerate(((64.0, 0.6), (16.0, 0.3), (4.0, 0.15)))
        )
        stretch = np.linspace(1.0, 0.55, 256, dtype=np.float32)[:, None]  # flatter toward the zenith
        self._cloud_tex = np.clip((cover * stretch + 0.05) * 2.2, 0.0, 0.85).astype(np.float32)
        r = np.hypot(u - k.cx_px, v - k.cy_px) / math.hypot(k.cx_px, k.cy_px)
        self._vignette = (1.0 - self.config.vignette * r**2).astype(np.float32)

    # ------------------------------------------------------------------------------------------
    def _up(self, a: np.ndarray) -> np.ndarray:
        """A coarse-grid field (ch * cw,) bilinearly upsampled to the image (h, w)."""
        k = self.intrinsics
        return cv2.resize(
            a.reshape(self._ch, self._cw).astype(np.float32),
            (k.width_px, k.height_px),
            interpolation=cv2.INTER_LINEAR,
        )

    def _level(self, chunk: int, key: int) -> ChunkLevel:
        if (chunk, key) not in self._cache:
            tile = generate_tile(self.scene, chunk, canonical_tier(self._specs[key]))
            for lv, data in chunk_levels(tile, self._specs).items():
                if (chunk, lv) not in self._cache:  # the same tier may already have served a key
                    self._cache[(chunk, lv)] = data
                    self._last_used[(chunk, lv)] = self._frame_no
        self._last_used[(chunk, key)] = self._frame_no
        return self._cache[(chunk, key)]

    def _strip(self, key: int, chunk_a: int, chunk_b: int) -> _Strip:
        """Chunks ``chunk_a``..``chunk_b`` of a coarse level side by side, kept across frames
        (a far level spans dozens of chunks; rebuilt, reusing what it had, when the view leaves
        it, two chunks ahead either way)."""
        old = self._strips.get(key)
        if old is None or not (old.chunk0 <= chunk_a and chunk_b < old.chunk0 + old.n_chunks):
            spec = self._specs[key]
            first, n = chunk_a - 2, chunk_b - chunk_a + 5
            geo = np.empty((spec.rows, n * spec.cols, 4), np.int16)
            alb = np.empty((spec.rows, n * spec.cols, 4), np.uint8)
            for chunk in range(first, first + n):
                dst = slice((chunk - first) * spec.cols, (chunk - first + 1) * spec.cols)
                if old is not None and old.chunk0 <= chunk < old.chunk0 + old.n_chunks:
                    src = slice((chunk - old.chunk0) * spec.cols, (chunk - old.chunk0 + 1) * spec.cols)
                    geo[:, dst], alb[:, dst] = old.geometry[:, src], old.albedo[:, src]
                else:
                    data = self._level(chunk, key)
                    geo[:, dst], alb[:, dst] = data.geometry, data.albedo
            old = _Strip(first, n, geo, alb, self._frame_no)
            self._strips[key] = old
        old.last_used = self._frame_no
        return old

    def _evict(self) -> None:
        """Drop chunk levels outside the current view (+- a margin: the car may stand still or
        pitch back and forth) and strips unused for a while."""
        for key in [
            k for k, st in self._strips.items() if self._frame_no - st.last_used > self.config.keep_frames
        ]:
            del self._strips[key]
        lo, hi = self._view_m
        # Keep little behind the view (the car moves on), more ahead of it.
        back, front = (3.0, 12.0) if self._ahead > 0 else (12.0, 3.0)
        first, last = math.floor((lo - back) / CHUNK_M), math.floor((hi + front) / CHUNK_M)
        for k in [k for k in self._cache if not first <= k[0] <= last]:
            del self._cache[k]
            self._last_used.pop(k, None)

    def _build_atlas(self, s_v: float, boxes: dict[int, tuple[float, float, float, float]]) -> _Atlas:
        """Copy the needed part (s_rel range x t range) of every level key into one image,
        packed on shelves."""
        pieces = []
        self._view_m = (s_v + min(b[0] for b in boxes.values()), s_v + max(b[1] for b in boxes.values()))
        self._ahead = 1.0 if sum(b[0] + b[1] for b in boxes.values()) >= 0 else -1.0
        for key in sorted(boxes):
            spec: LevelSpec = self._specs[key]
            s_lo, s_hi, t_lo, t_hi = boxes[key]
            c0 = math.floor((s_v + s_lo) / spec.res_s_m) - 2
            c1 = math.ceil((s_v + s_hi) / spec.res_s_m) + 3
            # Rows r0 - 1 .. r1 are copied, edge rows repeated: lookups up to the raster's edge.
            r0 = max(0, math.floor((t_lo + T_HALF_M) / spec.res_t_m) - 2) - 1
            r1 = max(r0 + 2, min(spec.rows, math.ceil((t_hi + T_HALF_M) / spec.res_t_m) + 3)) + 1
            pieces.append((key, spec, c0, c1, r0, r1))
        width = max(1024, max(p[3] - p[2] for p in pieces))
        # Shelf packing: tallest first, left to right.
        place: dict[int, tuple[int, int]] = {}
        x = y = shelf = 0
        for key, _, c0, c1, r0, r1 in sorted(pieces, key=lambda p: -(p[5] - p[4])):
            if x + (c1 - c0) > width:
                x, y, shelf = 0, y + shelf, 0
            place[key] = (x, y)
            x += c1 - c0
            shelf = max(shelf, r1 - r0)
        geometry = np.zeros((y + shelf, width, 4), np.int16)
        albedo = np.zeros((y + shelf, width, 4), np.uint8)
        coef = np.zeros((4, (MAX_LEVEL + 1) * N_VARIANTS), np.float64)
        for key, spec, c0, c1, r0, r1 in pieces:
            px, py = place[key]
            rows = np.clip(np.arange(r0, r1), 0, spec.rows - 1)
            if spec.a_s >= _STRIP_MIN_A_S:
                strip = self._strip(key, c0 // spec.cols, (c1 - 1) // spec.cols)
                src = slice(c0 - strip.chunk0 * spec.cols, c1 - strip.chunk0 * spec.cols)
                dst = (slice(py, py + r1 - r0), slice(px, px + c1 - c0))
                geometry[dst] = strip.geometry[rows, src]
                albedo[dst] = strip.albedo[rows, src]
            else:
                for chunk in range(c0 // spec.cols, (c1 - 1) // spec.cols + 1):
                    data = self._level(chunk, key)
                    a, b = max(c0, chunk * spec.cols), min(c1, (chunk + 1) * spec.cols)
                    src = slice(a - chunk * spec.cols, b - chunk * spec.cols)
                    dst = (slice(py, py + r1 - r0), slice(px + a - c0, px + b - c0))
                    geometry[dst] = data.geometry[rows, src]
                    albedo[dst] = data.albedo[rows, src]
            # x = px + (s_v + s_rel) / res_s - c0 - 0.5 ;  y = py + (t + T) / res_t - r0 - 0.5
            coef[:, key] = (
                1 / spec.res_s_m,
                px + s_v / spec.res_s_m - c0 - 0.5,
                1 / spec.res_t_m,
                py + T_HALF_M / spec.res_t_m - r0 - 0.5,
            )
        rects = {
            p[0]: (place[p[0]][0], place[p[0]][1], place[p[0]][0] + p[3] - p[2], place[p[0]][1] + p[5] - p[4])
            for p in pieces
        }
        return _Atlas(geometry, albedo, coef.astype(np.float32), rects)

    # ------------------------------------------------------------------------------------------
    def _trace(self, pose: CameraPose) -> _Setup:
        """Everything the bands of pixel rows share: coarse-grid route coordinates, levels, the
        atlas, a coarse first guess of the hits on the height field."""
        route = self.scene.route
        k = self.intrinsics
        cfg = self.config
        mount = pose.mount
        rot = mount.rotation_vehicle_to_camera()
        cam_h, lat = mount.height_m, mount.lateral_m
        px, py = route.to_plane(np.array([pose.s_m]), np.array([pose.t_m]))
        _, _, theta_v, _ = route.sample(np.array([pose.s_m]))
        delta = pose.heading_rad - float(theta_v[0])
        cd, sd = math.cos(delta), math.sin(delta)
        cp, sp = math.cos(pose.heading_rad), math.sin(pose.heading_rad)

        # --- coarse grid: exact route coordinates of the plane hits ---
        dc = rot.T @ self._rays_coarse
        dc /= np.linalg.norm(dc, axis=0)
        ground_c = dc[2] < -1e-6
        grazing = np.maximum(-dc[2], 1e-4)
        horiz = np.maximum(np.hypot(dc[0], dc[1]), 1e-6)
        lam_c = np.minimum(np.where(ground_c, cam_h / grazing, np.inf), cfg.max_range_m / horiz)
        ground_c &= lam_c * horiz < cfg.max_range_m * 0.999
        xg, yg = lam_c * dc[0], lat + lam_c * dc[1]
        along, across = cd * xg - sd * yg, sd * xg + cd * yg
        s_c, t_c = route.to_route(px[0] + cp * xg - sp * yg, py[0] + sp * xg + cp * yg, pose.s_m + along)
        res_s = s_c - pose.s_m - along
        res_t = t_c - (pose.t_m + across)
        _, _, theta_c, kappa_c = route.sample(s_c)
        alpha = pose.heading_rad - theta_c
        ca, sa = np.cos(alpha), np.sin(alpha)
        dsdl_c = (ca * dc[0] - sa * dc[1]) / np.maximum(1.0 - kappa_c * t_c, 0.2)
        dtdl_c = sa * dc[0] + ca * dc[1]
        # Footprint (m per pixel): the ellipse's extent along s and across t -> level and variant.
        f_ray = lam_c / (k.fx_px * grazing)
        f_cross = lam_c / k.fx_px
        hyp = np.maximum(np.hypot(dsdl_c, dtdl_c), 1e-9)
        cb, sb = np.abs(dsdl_c) / hyp, np.abs(dtdl_c) / hyp
        lev_c = np.clip(np.log2(np.maximum(f_ray * cb + f_cross * sb, 1e-6) / R0_M), 0.0, MAX_LEVEL)
        across_c = np.log2(np.maximum(f_ray * sb + f_cross * cb, 1e-6) / R0_M)
        sun = self.scene.sun
        rel = math.radians(90.0 - sun.azimuth_deg) - theta_c
        ce = math.cos(math.radians(sun.elevation_deg))

        # --- atlas: the level keys pixels around each coarse point may use (bilinear upsampling
        # stays within the 3 x 3 neighbourhood's bounds), and the ground they may see ---
        grid = lambda a: a.reshape(self._ch, self._cw).astype(np.float32)  # noqa: E731
        box3 = np.ones((3, 3), np.uint8)
        lev_i = np.floor(grid(lev_c))
        l_min, l_max = cv2.erode(lev_i, box3).ravel(), cv2.dilate(lev_i, box3).ravel()
        f_min, f_max = cv2.erode(grid(across_c), box3).ravel(), cv2.dilate(grid(across_c), box3).ravel()
        lam_top = np.where(ground_c, (cam_h - self._z_hi) / grazing, lam_c)
        lam_bot = np.where(
            ground_c, np.minimum((cam_h - self._z_lo) / grazing, cfg.max_range_m / horiz), lam_c
        )
        s_rel_c = s_c - pose.s_m
        s_pts = np.stack([s_rel_c + dsdl_c * (lam_top - lam_c), s_rel_c + dsdl_c * (lam_bot - lam_c)])
        t_pts = np.clip(
            np.stack([t_c + dtdl_c * (lam_top - lam_c), t_c + dtdl_c * (lam_bot - lam_c)]),
            -T_HALF_M,
            T_HALF_M,
        )
        near = cv2.dilate(grid(ground_c).astype(np.uint8), box3).astype(bool).ravel()
        boxes = {}
        if near.any():
            for level in range(int(l_min[near].min()), min(MAX_LEVEL, int(l_max[near].max()) + 1) + 1):
                cand = near & (l_min <= level) & (l_max + 1 >= level)
                if not cand.any():
                    continue
                v_lo = np.clip(np.floor(f_min - self._matched_a_t[level] + 0.5), 0, N_VARIANTS - 1)
                v_hi = np.clip(np.floor(f_max - self._matched_a_t[level] + 0.5), 0, N_VARIANTS - 1)
                for v in range(N_VARIANTS):
                    # Variant 0 always: heights are sampled there (see _trace's Newton steps).
                    m = cand & (v_lo <= v) & (v_hi >= v) if v else cand
                    if not m.any():
                        continue
                    key = level * N_VARIANTS + v
                    ms, mt = 0.02 + 3 * self._specs[key].res_s_m, 0.02 + 3 * self._specs[key].res_t_m
                    t_lo, t_hi = float(t_pts[:, m].min()), float(t_pts[:, m].max())
                    # Lookups beyond the raster's edge land in its outer 2 m (see _fold).
                    if t_hi > T_HALF_M - _FOLD_M - 0.02:
                        t_lo, t_hi = min(t_lo, T_HALF_M - _FOLD_M - 0.03), T_HALF_M
                    if t_lo < -T_HALF_M + _FOLD_M + 0.02:
                        t_lo, t_hi = -T_HALF_M, max(t_hi, -T_HALF_M + _FOLD_M + 0.03)
                    boxes[key] = (
                        float(s_pts[:, m].min()) - ms,
                        float(s_pts[:, m].max()) + ms,
                        t_lo - mt,
                        t_hi + mt,
                    )
        if not boxes:
            boxes[MAX_LEVEL * N_VARIANTS] = (0.0, 1.0, -1.0, 1.0)
        atlas = self._build_atlas(pose.s_m, boxes)
        coef = atlas.coef

        def keys_of(lev: np.ndarray, across: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            lo = np.floor(lev).astype(np.int32)
            hi = np.minimum(lo + 1, MAX_LEVEL)
            v_lo = np.clip(np.floor(across - self._matched_a_t[lo] + 0.5), 0, N_VARIANTS - 1).astype(np.int32)
            v_hi = np.clip(np.floor(across - self._matched_a_t[hi] + 0.5), 0, N_VARIANTS - 1).astype(np.int32)
            return lo * N_VARIANTS + v_lo, hi * N_VARIANTS + v_hi, (lev - lo).astype(np.float32)

        def sample(img: np.ndarray, key: np.ndarray, s_rel: np.ndarray, t: np.ndarray) -> np.ndarray:
            mx = (coef[0][key] * s_rel + coef[1][key]).astype(np.float32)
            my = (coef[2][key] * t + coef[3][key]).astype(np.float32)
            return cv2.remap(img, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

        # --- coarse Newton steps onto the height field: a close start for full resolution ---
        key_c = np.floor(lev_c).astype(np.int32) * N_VARIANTS
        t_off_c = _fold(t_c) - t_c
        lam = lam_c.copy()
        z_c = np.zeros_like(lam_c)
        for _ in range(3):
            s_i = s_rel_c + dsdl_c * (lam - lam_c)
            t_i = t_c + dtdl_c * (lam - lam_c)
            t_tex = np.clip(t_i + t_off_c, -_T_TEX, _T_TEX)
            geo = sample(atlas.geometry, grid(key_c).astype(np.int32), grid(s_i), grid(t_tex)).reshape(-1, 4)
            geo = geo * GEOMETRY_SCALE
            z_c = geo[:, 0].astype(np.float64)
            hp = np.minimum(dc[2] - (geo[:, 1] * dsdl_c + geo[:, 2] * dtdl_c), 0.3 * dc[2])
            h = cam_h + lam * dc[2] - z_c
            lam = np.where(ground_c, np.clip(lam - h / np.where(ground_c, hp, -1.0), lam_top, lam_bot), lam_c)
        z_c = np.where(ground_c, z_c, 0.0)

        # --- full resolution: per-pixel fields upsampled once, then bands of rows ---
        rows_with_ground = np.flatnonzero(grid(near).any(axis=1))
        row0 = (
            0
            if not len(rows_with_ground)
            else max(0, int((rows_with_ground[0] - 1) * k.height_px / self._ch))
        )
        m = rot.T.astype(np.float32)  # d_vehicle = R^T d_camera, d_camera = (rx, ry, 1)
        up = {
            name: self._up(a)
            for name, a in (
                ("res_s", res_s),
                ("res_t", res_t),
                ("dsdl", dsdl_c),
                ("dtdl", dtdl_c),
                ("lev", lev_c),
                ("across", across_c),
                ("z", z_c),
                ("t_off", t_off_c),
                ("ls", ce * np.cos(rel)),
                ("lt", ce * np.sin(rel)),
            )
        }
        dz_all = (m[2, 0] * self._rx + m[2, 1] * self._ry + m[2, 2]) * self._rinv
        return _Setup(pose, row0, m, dz_all, up, atlas, cd, sd, keys_of, sample)

    def _trace_band(self, st: _Setup, r_a: int, r_b: int) -> _Trace:
        """Hits of the pixels in rows [r_a, r_b) (all at or below ``st.row0``)."""
        cfg = self.config
        cam_h, lat = st.pose.mount.height_m, st.pose.mount.lateral_m
        sl = slice(r_a, r_b)
        m = st.m
        rx, ry, ri = self._rx[sl], self._ry[sl], self._rinv[sl]
        dx = (m[0, 0] * rx + m[0, 1] * ry + m[0, 2]) * ri
        dy = (m[1, 0] * rx + m[1, 1] * ry + m[1, 2]) * ri
        dz = st.dz[sl]
        up = {name: a[sl] for name, a in st.up.items()}
        ground = dz < -1e-6
        grazing_f = np.maximum(-dz, 1e-6)
        range_f = cfg.max_range_m / np.maximum(np.hypot(dx, dy), 1e-6)
        lam0 = np.minimum(cam_h / grazing_f, range_f)
        xg_f, yg_f = lam0 * dx, lat + lam0 * dy
        s0 = (st.cd * xg_f - st.sd * yg_f) + up["res_s"]  # relative to pose.s_m
        t0 = st.pose.t_m + (st.sd * xg_f + st.cd * yg_f) + up["res_t"]
        dsdl, dtdl = up["dsdl"], up["dtdl"]
        key_lo, key_hi, frac = st.keys_of(up["lev"], up["across"])
        # Heights come from the variant matched to the view straight ahead, whatever the pixel's
        # obliquity: texels coarser across the road would round off the ruts' cross-section.
        key_geo = np.floor(up["lev"]).astype(np.int32) * N_VARIANTS
        ground &= lam0 < range_f * 0.999
        lam_lo = (cam_h - self._z_hi) / grazing_f
        lam_hi = np.minimum((cam_h - self._z_lo) / grazing_f, range_f)
        lam = np.where(ground, (cam_h - up["z"]) / grazing_f, lam0)
        neg_one = np.float32(-1.0)
        gs = gt = None
        for _ in range(cfg.iterations):
            s_rel = s0 + dsdl * (lam - lam0)
            t = t0 + dtdl * (lam - lam0)
            geo = st.sample(st.atlas.geometry, key_geo, s_rel, np.clip(t + up["t_off"], -_T_TEX, _T_TEX))
            z, gs, gt, _ = cv2.split(geo)
            z, gs, gt = z * _Z_SCALE, gs * _G_SCALE, gt * _G_SCALE
            hp = np.minimum(dz - (gs * dsdl + gt * dtdl), 0.3 * dz)
            h = (cam_h - z) + lam * dz
            lam = np.where(ground, np.clip(lam - h / np.where(ground, hp, neg_one), lam_lo, lam_hi), lam0)
        s_rel = s0 + dsdl * (lam - lam0)
        t = t0 + dtdl * (lam - lam0)
        return _Trace(
            r_a,
            ground,
            lam,
            s_rel,
            t,
            dz,
            (gs, gt),
            (key_lo, key_hi),
            frac,
            up["t_off"],
            (up["ls"], up["lt"]),
        )

    def _bands(self, st: _Setup) -> list[tuple[int, int]]:
        """Row bands below ``row0``, one per worker thread (numpy and OpenCV release the GIL)."""
        h = self.intrinsics.height_px
        n = max(1, min(self.config.threads, (h - st.row0) // 16))
        edges = np.linspace(st.row0, h, n + 1).round().astype(int)
        return [(int(a), int(b)) for a, b in itertools.pairwise(edges) if b > a]

    def _map(self, fn, items):
        if len(items) == 1:
            return [fn(*items[0])]
        return list(self._pool.map(lambda it: fn(*it), items))

    def hits(self, pose: CameraPose) -> SurfaceHit:
        """Route coordinates and range of every pixel's hit on the road (for tests)."""
        self._frame_no += 1
        st = self._trace(pose)
        k = self.intrinsics
        out = [np.full((k.height_px, k.width_px), np.nan, np.float32) for _ in range(3)]
        for tr in self._map(lambda a, b: self._trace_band(st, a, b), self._bands(st)):
            rows = slice(tr.row0, tr.row0 + tr.lam.shape[0])
            for o, v in zip(out, (tr.s_rel + pose.s_m, tr.t, tr.lam), strict=True):
                o[rows] = np.where(tr.ground, v, np.nan)
        self._evict()
        return SurfaceHit(*out)

    def render(self, pose: CameraPose, exposure: float) -> RenderedFrame:
        """One frame (RGB uint8) of the scene from ``pose`` with ``exposure`` (gain on radiance)."""
        self._frame_no += 1
        k = self.intrinsics
        st = self._trace(pose)
        out = np.empty((k.height_px, k.width_px, 3), np.uint8)
        if st.row0 > 0:
            self._shade_sky(st, 0, st.row0, exposure, out)
        self._map(
            lambda a, b: self._shade_band(st, self._trace_band(st, a, b), exposure, out), self._bands(st)
        )
        mean_luma = float(out[::4, ::4, 1].mean()) / 255.0
        self._draw_objects(out, pose, exposure)
        self._evict()
        return RenderedFrame(out, mean_luma)

    def _sky(self, st: _Setup, r_a: int, r_b: int, exposure: float) -> np.ndarray:
        """Sky radiance x exposure x vignetting (rows, cols, 3), with clouds fixed in the world."""
        dz = st.dz[r_a:r_b]
        up = (np.clip(dz * 2.5, 0.0, 1.0) ** 0.7)[..., None]
        cloud = self._clouds(st, r_a, r_b)[..., None]
        sky = SKY_HORIZON_RGB + (SKY_ZENITH_RGB - SKY_HORIZON_RGB) * up
        sky = sky + (_CLOUD_RGB - sky) * cloud
        return sky * (self._vignette[r_a:r_b] * np.float32(exposure * _SKY_LUMINANCE))[..., None]

    def _shade_sky(self, st: _Setup, r_a: int, r_b: int, exposure: float, out: np.ndarray) -> None:
        out[r_a:r_b] = _tone_u8(self._sky(st, r_a, r_b, exposure))

    def _shade_band(self, st: _Setup, tr: _Trace, exposure: float, out: np.ndarray) -> None:
        """Albedo x (sky + sun) light, haze, tone curve; sky where the rays miss the road."""
        cfg = self.config
        sun = self.scene.sun
        coef = st.atlas.coef
        r_a, r_b = tr.row0, tr.row0 + tr.lam.shape[0]
        t_tex = np.clip(tr.t + tr.t_off, -_T_TEX, _T_TEX)

        def sample_albedo(key: np.ndarray) -> np.ndarray:
            mx = (coef[0][key] * tr.s_rel + coef[1][key]).astype(np.float32)
            my = (coef[2][key] * t_tex + coef[3][key]).astype(np.float32)
            return cv2.remap(st.atlas.albedo, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

        w = tr.frac
        alb = cv2.blendLinear(sample_albedo(tr.keys[0]), sample_albedo(tr.keys[1]), 1.0 - w, w)
        a_r, a_g, a_b, a_vis = cv2.split(alb)
        gs, gt = tr.gradient
        ls, lt = tr.sun_st
        lz = math.sin(math.radians(sun.elevation_deg))
        inv_norm = 1.0 / np.sqrt(1.0 + gs * gs + gt * gt)
        ndotl = np.maximum((lz - gs * ls - gt * lt) * inv_norm, 0.0)
        irradiance = (
            sun.sky_irradiance * (0.55 + 0.45 * inv_norm) + (sun.sun_irradiance / 255.0) * a_vis * ndotl
        )
        vig = self._vignette[r_a:r_b] * np.float32(exposure)
        haze = 1.0 - np.exp(tr.lam * np.float32(-1.0 / cfg.haze_m))
        gain = irradiance * (1.0 - haze) * vig * np.float32(1 / 255.0)
        veil = haze * vig * np.float32(_SKY_LUMINANCE)
        far = ~tr.ground
        sky = self._sky(st, r_a, r_b, exposure) if np.any(tr.dz >= 0) else None
        for c, a in enumerate((a_r, a_g, a_b)):
            ground_c = a * gain + veil * SKY_HORIZON_RGB[c]
            horizon_c = vig * np.float32(_SKY_LUMINANCE * SKY_HORIZON_RGB[c])
            miss = horizon_c if sky is None else np.where(tr.dz < 0, horizon_c, sky[..., c])
            out[r_a:r_b, :, c] = _tone_u8(np.where(far, miss, ground_c))

    def _clouds(self, st: _Setup, r_a: int, r_b: int) -> np.ndarray:
        """Cloud cover (0-1) per pixel of rows [r_a, r_b) from a texture over the sky's azimuth
        and elevation (fixed in the world, so the clouds turn with the road)."""
        m = st.m
        sl = slice(r_a, r_b)
        rx, ry, ri = self._rx[sl], self._ry[sl], self._rinv[sl]
        dx = (m[0, 0] * rx + m[0, 1] * ry + m[0, 2]) * ri
        dy = (m[1, 0] * rx + m[1, 1] * ry + m[1, 2]) * ri
        az = np.mod(np.arctan2(dy, dx) + st.pose.heading_rad, 2 * np.pi) * (
            self._cloud_tex.shape[1] / (2 * np.pi)
        )
        el = np.clip(st.dz[sl], 0.0, 1.0) * (self._cloud_tex.shape[0] / 0.7)
        return cv2.remap(
            self._cloud_tex,
            az.astype(np.float32),
            el.astype(np.float32),
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_WRAP,
        )

    # ------------------------------------------------------------------------------------------
    def _draw_objects(self, img: np.ndarray, pose: CameraPose, exposure: float) -> None:
        """Utility poles and trees as projected solids, far to near."""
        scene = self.scene
        route = scene.route
        mount = pose.mount
        rot = mount.rotation_vehicle_to_camera()
        cam = np.array([0.0, mount.lateral_m, mount.height_m])
        kmat = self.intrinsics.matrix
        px, py = route.to_plane(np.array([pose.s_m]), np.array([pose.t_m]))
        cp, sp = math.cos(pose.heading_rad), math.sin(pose.heading_rad)
        sun = scene.sun
        phi = math.radians(90.0 - sun.azimuth_deg)
        sun_v = np.array([math.cos(phi - pose.heading_rad), math.sin(phi - pose.heading_rad)])
        w, h = self.intrinsics.width_px, self.intrinsics.height_px
        lo, hi = pose.s_m - 60.0, pose.s_m + self.config.max_range_m
        items = []
        for obj in (*scene.poles, *scene.trees):
            if not lo < obj.s_m < hi:
                continue
            ox, oy = route.to_plane(np.array([obj.s_m]), np.array([obj.t_m]))
            dxw, dyw = ox[0] - px[0], oy[0] - py[0]
            xv, yv = cp * dxw + sp * dyw, -sp * dxw + cp * dyw
            if xv < 1.0:
                continue
            ground_z = float(scene.crossfall_m(np.array([obj.t_m]))[0])
            items.append((xv, yv, ground_z, obj))
        items.sort(key=lambda it: -it[0])

        def project(p: np.ndarray) -> np.ndarray | None:
            c = rot @ (p - cam)
            if c[2] < 0.3:
                return None
            q = kmat @ c
            return q[:2] / q[2]

        def colour(rgb: np.ndarray, lit: float, dist: float) -> tuple[float, float, float]:
            rad = rgb * (sun.sky_irradiance * 0.8 + sun.sun_irradiance * lit)
            haze = 1 - math.exp(-dist / self.config.haze_m)
            rad = rad * (1 - haze) + SKY_HORIZON_RGB * _SKY_LUMINANCE * haze
            return tuple(float(v) for v in np.clip(tone_map(rad, exposure) * 255, 0, 255))

        for xv, yv, gz, obj in items:
            to_cam = -np.array([xv, yv]) / math.hypot(xv, yv)
            lit = max(0.0, float(to_cam @ sun_v)) * 0.6 + 0.15
            if hasattr(obj, "diameter_m"):
                segs = [(obj.height_m, obj.diameter_m / 2, _POLE_RGB)]
                top_z = gz + obj.height_m
            else:
                segs = [(obj.trunk_height_m + obj.canopy_radius_m * 0.3, 0.15, _TRUNK_RGB)]
                top_z = None
            for height, radius, rgb in segs:
                a = project(np.array([xv, yv, gz]))
                b = project(np.array([xv, yv, gz + height]))
                if a is None or b is None:
                    continue
                side = np.array([-to_cam[1], to_cam[0]]) * radius
                a2 = project(np.array([xv + side[0], yv + side[1], gz]))
                if a2 is None:
                    continue
                half = float(np.hypot(*(a2 - a)))
                axis = b - a
                n = np.array([-axis[1], axis[0]]) / max(float(np.hypot(*axis)), 1e-6) * max(half, 0.6)
                quad = np.array([a - n, a + n, b + n * 0.8, b - n * 0.8])
                if (
                    np.all(quad[:, 0] < 0)
                    or np.all(quad[:, 0] > w)
                    or np.all(quad[:, 1] < 0)
                    or np.all(quad[:, 1] > h)
                ):
                    continue
                cv2.fillConvexPoly(
                    img, np.round(quad * 16).astype(np.int32), colour(rgb, lit, xv), cv2.LINE_AA, 4
                )
            if top_z is not None:
                arm_a = project(np.array([xv, yv - 0.9, top_z - 0.8]))
                arm_b = project(np.array([xv, yv + 0.9, top_z - 0.8]))
                if arm_a is not None and arm_b is not None:
                    thick = max(1, round(float(np.hypot(*(arm_b - arm_a))) * 0.06))
                    cv2.line(
                        img,
                        tuple(np.round(arm_a * 16).astype(int)),
                        tuple(np.round(arm_b * 16).astype(int)),
                        colour(_POLE_RGB * 0.8, lit, xv),
                        thick,
                        cv2.LINE_AA,
                        4,
                    )
            if not hasattr(obj, "diameter_m"):
                centre = project(np.array([xv, yv, gz + obj.canopy_height_m]))
                edge = project(np.array([xv, yv, gz + obj.canopy_height_m + obj.canopy_radius_m]))
                if centre is None or edge is None:
                    continue
                r_px = float(np.hypot(*(edge - centre)))
                if r_px < 0.7 or not (-r_px < centre[0] < w + r_px and -r_px < centre[1] < h + r_px):
                    continue
                # A canopy is a cluster of leafy clumps: lit from the sun's side and from above,
                # darker underneath; the same clumps every frame (seeded by the tree).
                rng = np.random.default_rng(int(obj.s_m * 100) & 0xFFFFFFFF)
                n_clumps = 1 if r_px < 3 else 16
                clumps = rng.normal(0, 0.42, (n_clumps, 3)) if n_clumps > 1 else np.zeros((1, 3))
                clumps = clumps[np.argsort(-clumps[:, 0])]  # far side of the canopy first
                sun_side = np.array([sun_v[0], sun_v[1]])
                for cx, cy, cz in clumps:
                    p = project(
                        np.array(
                            [
                                xv + cx * obj.canopy_radius_m,
                                yv + cy * obj.canopy_radius_m,
                                gz + obj.canopy_height_m + cz * obj.canopy_radius_m,
                            ]
                        )
                    )
                    if p is None:
                        continue
                    shade = (
                        0.55
                        + 0.35 * np.clip(cz + 0.5, 0, 1)
                        + 0.35 * max(0.0, float(np.array([cx, cy]) @ sun_side))
                    )
                    shade *= 0.85 + 0.3 * rng.random()
                    c = colour(_CANOPY_RGB * shade, lit + 0.25, xv)
                    rad = r_px * (0.5 + 0.15 * rng.random()) if n_clumps > 1 else r_px
                    cv2.circle(
                        img,
                        (round(p[0] * 16), round(p[1] * 16)),
                        round(rad * 16),
                        c,
                        -1,
                        cv2.LINE_AA,
                        4,
                    )


def _fold(t: np.ndarray) -> np.ndarray:
    """Lateral coordinate for texture lookup: beyond the raster's edge (|t| > 7.68 m) the outer
    2 m of verge repeat, mirrored, so the far verge keeps a texture instead of streaks."""
    a = np.abs(t)
    over = a - (T_HALF_M - 0.01)
    period = _FOLD_M
    m = np.mod(over, 2 * period)
    folded = np.where(over > 0, (T_HALF_M - 0.01) - np.minimum(m, 2 * period - m), a)
    return np.sign(t) * folded
