"""Rasters of the road surface, generated lazily per chunk of road from the vector scene.

A chunk covers 5.12 m of chainage and t in [-7.68, 7.68] m. It is rasterised at a "tier" g
(texels of 5 mm x 2^g) and reduced to "levels": anisotropic mip maps (rip maps) with texels of
5 mm x 2^a_s along s and 5 mm x 2^a_t across t, because the camera sees the road foreshortened
along s far more than across it. Each level is always made from the same tier (``a_t``), so a
level's texels do not depend on which chunks were generated before: same scene, same frames.

Per texel a level holds:

- ``albedo`` (rows, cols, 4) uint8: reflectance RGB x 255 and the sun's visibility (shadows of
  trees and poles, x 255);
- ``geometry`` (rows, cols, 4) int16: height z (the truth's ``Scene.profile_height`` plus
  sub-centimetre relief: asphalt texture and crack grooves) in units of 0.01 mm, dz/ds and dz/dt
  in units of 1e-4, 0 (``GEOMETRY_SCALE`` converts back to metres and m/m); half the memory of
  float32, and ample: +-0.33 m of height, slopes up to +-3.

Rows run along t (increasing), columns along s (increasing). Noise that must agree between
chunks and tiers (mottling, shadows' dapple) is value noise on global lattices; the finest
grain is per-chunk random, where a seam of a few 5 mm texels does not show.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from pavement.synthetic.scene import Scene

R0_M = 0.005  # finest texel (m)
CHUNK_TEXELS = 1024  # along s at R0: 5.12 m
ROW_TEXELS = 3072  # across t at R0: 15.36 m
CHUNK_M = CHUNK_TEXELS * R0_M
T_HALF_M = ROW_TEXELS * R0_M / 2
MAX_LEVEL = 10  # a_s <= 10: one column per chunk
_MARGIN = 4  # texels generated around a tile, for gradients and blurs


@dataclass(frozen=True)
class LevelSpec:
    """Texel size of one level: 5 mm x 2^a_s along s, 5 mm x 2^a_t across t."""

    a_s: int
    a_t: int

    @property
    def res_s_m(self) -> float:
        return R0_M * 2**self.a_s

    @property
    def res_t_m(self) -> float:
        return R0_M * 2**self.a_t

    @property
    def cols(self) -> int:
        return CHUNK_TEXELS >> self.a_s

    @property
    def rows(self) -> int:
        return ROW_TEXELS >> self.a_t


N_VARIANTS = 4  # per level: the matched a_t, and 2, 4, 8 times coarser across
MAX_A_T = 7


def level_specs(focal_px: float, camera_height_m: float) -> dict[int, LevelSpec]:
    """Rip-map levels for a camera, keyed ``L * N_VARIANTS + v``: a_s = L (0..MAX_LEVEL) and
    a_t = a_t(L) + v, where a_t(L) matches the foreshortening straight ahead.

    A pixel at range d looking along the road sees f_s = d^2 / (f h) along it and f_t = d / f
    across; so f_s / f_t = d / h = sqrt(f_s f / h), and a_t(L) = L - log2 of that ratio. Pixels
    looking obliquely (the verge, the far lane) need coarser texels across: variants v > 0."""
    out = {}
    for level in range(MAX_LEVEL + 1):
        for v in range(N_VARIANTS):
            out[level * N_VARIANTS + v] = LevelSpec(
                level, min(matched_a_t(level, focal_px, camera_height_m) + v, MAX_A_T)
            )
    return out


def matched_a_t(level: int, focal_px: float, camera_height_m: float) -> int:
    ratio = math.sqrt(R0_M * 2**level * focal_px / camera_height_m)
    return int(np.clip(round(level - math.log2(max(ratio, 1.0))), 0, min(level, 5)))


GEOMETRY_SCALE = np.array([1e-5, 1e-4, 1e-4, 1.0], np.float32)  # int16 geometry -> m, m/m, m/m
_TO_INT16 = (1.0 / GEOMETRY_SCALE).astype(np.float32)


@dataclass(frozen=True, eq=False)
class ChunkLevel:
    """One level of one chunk (see the module docstring)."""

    spec: LevelSpec
    albedo: np.ndarray
    geometry: np.ndarray


# ----------------------------------------------------------------------------------------------
# Noise
# ----------------------------------------------------------------------------------------------


def _hash_unit(key: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Deterministic pseudo-random values in [-1, 1) for integer lattice nodes (i, j)."""
    h = i.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + j.astype(np.uint64) * np.uint64(
        0xC2B2AE3D27D4EB4F
    )
    h = h + np.uint64(((key & 0xFFFFFFFF) * 0x165667B19E3779F9) & 0xFFFFFFFFFFFFFFFF)
    h ^= h >> np.uint64(31)
    h *= np.uint64(0xBF58476D1CE4E5B9)
    h ^= h >> np.uint64(29)
    return ((h >> np.uint64(40)).astype(np.float32) / float(1 << 23)) - 1.0


def _upsample_nodes(
    nodes: np.ndarray, node_i0: int, node_j0: int, k: int, i0: int, n_i: int, j0: int, n_j: int
) -> np.ndarray:
    """Bicubic upsampling of values on a lattice whose node (a, b) covers texels [a k, (a+1) k)
    (global texel indices) to the texels [i0, i0 + n_i) x [j0, j0 + n_j)."""
    if k == 1:
        return nodes[i0 - node_i0 : i0 - node_i0 + n_i, j0 - node_j0 : j0 - node_j0 + n_j]
    big = cv2.resize(nodes, (nodes.shape[1] * k, nodes.shape[0] * k), interpolation=cv2.INTER_CUBIC)
    oi, oj = i0 - node_i0 * k, j0 - node_j0 * k
    return big[oi : oi + n_i, oj : oj + n_j]


def lattice_noise(key: int, cell_m: float, res_m: float, i0: int, n_i: int, j0: int, n_j: int) -> np.ndarray:
    """Value noise in [-1, 1] with lattice spacing ``cell_m`` on the texels of size ``res_m``
    with global indices rows [i0, i0 + n_i) (t) x cols [j0, j0 + n_j) (s). Zeros when the
    lattice is finer than the texels (its box average is about zero)."""
    k = round(cell_m / res_m)
    if k < 1:
        return np.zeros((n_i, n_j), np.float32)
    a0, a1 = i0 // k - 2, (i0 + n_i) // k + 3
    b0, b1 = j0 // k - 2, (j0 + n_j) // k + 3
    ii, jj = np.meshgrid(np.arange(a0, a1), np.arange(b0, b1), indexing="ij")
    return _upsample_nodes(_hash_unit(key, ii, jj), a0, b0, k, i0, n_i, j0, n_j)


# ----------------------------------------------------------------------------------------------
# Tiles
# ----------------------------------------------------------------------------------------------

ASPHALT_RGB = np.array([0.165, 0.16, 0.152], np.float32)
WHITE_PAINT_RGB = np.array([0.72, 0.72, 0.69], np.float32)
YELLOW_PAINT_RGB = np.array([0.70, 0.50, 0.10], np.float32)
GRAVEL_RGB = np.array([0.27, 0.25, 0.21], np.float32)
GRASS_RGB = np.array([0.075, 0.13, 0.045], np.float32)
DRY_GRASS_RGB = np.array([0.21, 0.19, 0.11], np.float32)
CRACK_GROOVE_M = 0.005
# Stones of the surface course against the binder, 1-2 cm: the texture a camera sees at 2-8 m.
# A function of position only (lattice noise), so every frame sees the same stones, as multi-view
# measurement (rut depth) needs; the per-tier ``grain`` is finer than a pixel there.
AGGREGATE_CONTRAST = 0.16  # depth of a crack groove at full coverage


@dataclass(frozen=True, eq=False)
class Tile:
    """A chunk rasterised at one tier, with ``_MARGIN`` extra texels on every side."""

    tier: int
    s_axis_m: np.ndarray  # (cols,) texel centres
    t_axis_m: np.ndarray  # (rows,)
    albedo: np.ndarray  # (rows, cols, 4) uint8: RGB reflectance and sun visibility, x 255
    height_m: np.ndarray  # (rows, cols) float32


def _coverage(dist_inside_m: np.ndarray, res_m: float) -> np.ndarray:
    """Anti-aliased coverage of a shape from the signed distance inside its edge."""
    return np.clip(dist_inside_m / res_m + 0.5, 0.0, 1.0).astype(np.float32)


def generate_tile(scene: Scene, chunk: int, tier: int) -> Tile:
    """Rasterise chunk ``chunk`` (s in [chunk, chunk + 1) x 5.12 m) at 5 mm x 2^tier."""
    res = R0_M * 2**tier
    n_s = (CHUNK_TEXELS >> tier) + 2 * _MARGIN
    n_t = (ROW_TEXELS >> tier) + 2 * _MARGIN
    j0 = chunk * (CHUNK_TEXELS >> tier) - _MARGIN  # global texel index of the first column
    i0 = -(ROW_TEXELS >> tier) // 2 - _MARGIN  # rows: global index 0 starts at t = 0
    s_start, t_start = j0 * res, i0 * res
    s_axis = s_start + (np.arange(n_s) + 0.5) * res
    t_axis = t_start + (np.arange(n_t) + 0.5) * res
    key = scene.seed * 7919
    noise = {
        c: lattice_noise(key + n, c, res, i0, n_t, j0, n_s)
        for n, c in enumerate((0.02, 0.08, 0.32, 0.64, 0.01))
    }
    rng = np.random.default_rng([scene.seed, chunk, tier, 11])
    # Fine grain: uniform noise (unit variance), blurred to ~3 mm stones; fainter at coarse tiers
    # as the box average of finer grain would be.
    grain = rng.random((n_t, n_s), dtype=np.float32)
    grain = cv2.GaussianBlur(grain, (0, 0), 0.6) * (3.46 * 1.6 / 2**tier)
    grain -= 1.73 * 1.6 / 2**tier
    lay = scene.layout

    # --- height: the truth's profile + sub-centimetre relief ---
    height = scene.profile_height(s_axis[None, :], t_axis[:, None]).astype(np.float32)
    height += 0.0004 * grain + 0.0003 * noise[0.02]

    # --- albedo of the asphalt (one channel until the end, then RGB) ---
    tone = scene.tone(s_axis).astype(np.float32)[None, :]
    gray = tone * (
        1.0
        + 0.10 * grain
        + AGGREGATE_CONTRAST * noise[0.01]
        + 0.10 * noise[0.02]
        + 0.05 * noise[0.08]
        + 0.06 * noise[0.32]
        + 0.05 * noise[0.64]
    )
    # Wheel paths are polished a little lighter, the lane centre darkened by oil drips.
    band = np.ones(n_t, np.float32)
    for sign in (-1, 1):
        centre = sign * lay.lane_width_m / 2
        band *= 1.0 - 0.10 * np.exp(-(((t_axis - centre) / 0.25) ** 2))
        for w in (-lay.wheel_offset_m, lay.wheel_offset_m):
            band *= 1.0 + 0.06 * np.exp(-(((t_axis - centre - w) / 0.3) ** 2))
    band *= np.where(np.abs(t_axis) > lay.lane_width_m + lay.line_width_m, 1.12, 1.0).astype(np.float32)
    gray *= band[:, None]
    rgb = gray[..., None] * ASPHALT_RGB

    def rows(lo: float, hi: float) -> slice:
        """Rows whose |t| may fall in [lo, hi] lie in one or two bands; this returns the hull."""
        inside = np.flatnonzero((np.abs(t_axis) >= lo) & (np.abs(t_axis) <= hi))
        return slice(inside[0], inside[-1] + 1) if len(inside) else slice(0, 0)

    # --- verge: gravel then grass, with a ragged edge (rows beyond the pavement only) ---
    pure_grass_m = lay.paved_half_m + 1.2  # the ragged gravel strip ends before this
    bands = []
    for sign in (-1, 1):
        for lo, hi in ((lay.paved_half_m - 0.2, pure_grass_m), (pure_grass_m, np.inf)):
            sel = np.flatnonzero((sign * t_axis > lo) & (sign * t_axis <= hi))
            if len(sel):
                bands.append(slice(sel[0], sel[-1] + 1))
    for r in bands:
        a_t = np.abs(t_axis[r]).astype(np.float32)[:, None]
        n08, n32, n64, g = noise[0.08][r], noise[0.32][r], noise[0.64][r], grain[r]
        edge = lay.paved_half_m + 0.12 * n32 + 0.05 * n08
        grass = _coverage(a_t - edge - 0.35 - 0.3 * (n64 + 1), res)
        dry = np.clip(n64 * 2.0 + 0.2, 0.0, 1.0)[..., None]
        verge_rgb = (GRASS_RGB + (DRY_GRASS_RGB - GRASS_RGB) * dry) * (1 + 0.35 * n08 + 0.25 * g)[..., None]
        if grass.min() >= 1.0:  # beyond the gravel strip: grass only
            rgb[r] = verge_rgb
        else:
            gravel = _coverage(a_t - edge, res)[..., None]
            gravel_rgb = GRAVEL_RGB * (1 + 0.25 * g + 0.15 * noise[0.02][r])[..., None]
            sub = rgb[r] * (1 - gravel) + gravel_rgb * gravel
            rgb[r] = sub * (1 - grass[..., None]) + verge_rgb * grass[..., None]
        height[r] += (0.004 * n08 + 0.002 * g) * grass

    # --- markings (paint; no height) ---
    wear_all = None

    def paint(r: slice, cov: np.ndarray, colour: np.ndarray) -> None:
        wear = np.clip(1.0 - 0.45 * np.clip(noise[0.08][r] + 0.3 * noise[0.02][r], 0, 1), 0, 1)
        c = (cov * wear)[..., None]
        rgb[r] = rgb[r] * (1 - c) + colour * c

    line_t = lay.lane_width_m + lay.line_width_m / 2
    for sign in (-1, 1):
        sel = np.flatnonzero(np.abs(t_axis - sign * line_t) < lay.line_width_m / 2 + res)
        if len(sel):
            r = slice(sel[0], sel[-1] + 1)
            cov = _coverage(lay.line_width_m / 2 - np.abs(t_axis[r] - sign * line_t), res)[:, None]
            paint(r, np.broadcast_to(cov, (len(sel), n_s)), WHITE_PAINT_RGB)
    yellow = np.zeros(n_s, bool)
    for a, b in scene.no_passing:
        yellow |= (s_axis >= a) & (s_axis <= b)
    phase = np.mod(s_axis, lay.dash_m + lay.gap_m)
    along = np.where(yellow, 1.0, _coverage(np.minimum(phase, lay.dash_m - phase), res)).astype(np.float32)
    sel = np.flatnonzero(np.abs(t_axis) < lay.line_width_m / 2 + res)
    if len(sel):
        r = slice(sel[0], sel[-1] + 1)
        cov = _coverage(lay.line_width_m / 2 - np.abs(t_axis[r]), res)[:, None] * along[None, :]
        for colour, mask in ((YELLOW_PAINT_RGB, yellow), (WHITE_PAINT_RGB, ~yellow)):
            if mask.any():
                paint(r, cov * mask[None, :], colour)
    del wear_all, rows

    # --- patches, potholes ---
    _, potholes, patches = scene.defects_in(s_start - 0.1, s_start + n_s * res + 0.1)
    for p in patches:
        sl = _window(p.bbox, s_axis, t_axis)
        if sl is None:
            continue
        ds = s_axis[sl[1]][None, :] - p.s_m
        dt = t_axis[sl[0]][:, None] - p.t_m
        inside = p.inside_depth_m(ds, dt)
        cov = _coverage(inside, res)
        seam = _coverage(0.012 - np.abs(inside), res)  # sealant along the cut edge
        factor = 1 + cov * (p.tone - 1)
        factor *= 1 - 0.35 * seam
        rgb[sl] *= factor[..., None]
    for h in potholes:
        sl = _window(h.bbox, s_axis, t_axis)
        if sl is None:
            continue
        ds = s_axis[sl[1]][None, :] - h.s_m
        dt = t_axis[sl[0]][:, None] - h.t_m
        depth = h.depth_m(ds, dt) / (h.depth_mm / 1000)
        inner = np.clip(depth * 3, 0, 1)
        rim = np.clip(depth * 6, 0, 1) * (1 - inner)
        # Broken, dirty aggregate inside; the sky sees less of a hole's floor (ambient occlusion,
        # view-independent, so it is baked here); freshly broken lighter edges on the rim.
        factor = (1 - 0.5 * inner * (1 + 0.35 * noise[0.02][sl])) * (1 - 0.3 * inner) * (1 + 0.35 * rim)
        rgb[sl] *= factor[..., None]
        height[sl] += (0.003 * noise[0.02][sl] * inner).astype(np.float32)

    # --- cracks: dark grooves (polylines drawn anti-aliased; thinner than a texel -> fainter) ---
    points, lens, width_mm, alligator = scene.crack_polylines_in(s_start - 0.05, s_start + n_s * res + 0.05)
    if len(lens):
        canvas = np.zeros((n_t, n_s), np.uint8)
        px = np.round(
            np.column_stack([(points[:, 0] - s_start) / res - 0.5, (points[:, 1] - t_start) / res - 0.5]) * 16
        ).astype(np.int32)
        lines = np.split(px, np.cumsum(lens)[:-1])
        w = width_mm / 1000
        thick = np.maximum(1, np.round(w / res)).astype(int)
        level = np.where(w < res, np.round(255 * np.minimum(1.0, w / res) / 32) * 32, 255)
        level = np.where(alligator & (w < res), np.maximum(level, 32), np.maximum(level, 16)).astype(int)
        for th, lv in sorted(set(zip(thick.tolist(), level.tolist(), strict=True)), key=lambda g: g[1]):
            sel = np.flatnonzero((thick == th) & (level == lv))
            cv2.polylines(canvas, [lines[i] for i in sel], False, lv, th, cv2.LINE_AA, 4)
        cov = canvas.astype(np.float32) / 255.0
        rgb *= (1 - 0.78 * cov)[..., None]
        height -= CRACK_GROOVE_M * cov

    vis = _sun_visibility(scene, s_axis, t_axis, res, i0, j0)
    albedo = cv2.merge(
        [*cv2.split(cv2.convertScaleAbs(rgb, alpha=255.0)), cv2.convertScaleAbs(vis, alpha=255.0)]
    )
    return Tile(tier, s_axis, t_axis, albedo, height.astype(np.float32))


def _window(bbox: tuple[float, float, float, float], s_axis: np.ndarray, t_axis: np.ndarray):
    j0, j1 = np.searchsorted(s_axis, [bbox[0], bbox[2]])
    i0, i1 = np.searchsorted(t_axis, [bbox[1], bbox[3]])
    if j1 <= j0 or i1 <= i0:
        return None
    return slice(i0, i1), slice(j0, j1)


def _sun_visibility(
    scene: Scene, s_axis: np.ndarray, t_axis: np.ndarray, res: float, i0: int, j0: int
) -> np.ndarray:
    """Share of the sun's disc visible from each texel (1 = sunlit): shadows of the roadside
    trees (dappled canopies) and utility poles, cast along the sun's direction in the plane.

    Drawn on a 4 cm lattice and upsampled, which also makes the penumbra (the sun's 0.5 deg
    disc blurs a shadow edge by ~1 cm per metre of height)."""
    sun = scene.sun
    cell = max(0.04, res)
    k = round(cell / res)
    a0, a1 = i0 // k - 2, (i0 + len(t_axis)) // k + 3
    b0, b1 = j0 // k - 2, (j0 + len(s_axis)) // k + 3
    shade = np.zeros((a1 - a0, b1 - b0), np.uint8)
    s_lo, s_hi = b0 * k * res, b1 * k * res
    t_lo = a0 * k * res
    tan_e = math.tan(math.radians(sun.elevation_deg))
    phi = math.radians(90.0 - sun.azimuth_deg)  # toward the sun, math angle in the plane

    def px(s: float, t: float) -> tuple[float, float]:
        return (s - s_lo) / cell - 0.5, (t - t_lo) / cell - 0.5

    reach = 14.0 / tan_e + 4.0
    trees, poles = scene.roadside_in(s_lo - reach, s_hi + reach)
    for tree in trees:
        _, _, heading, _ = scene.route.sample(np.array([tree.s_m]))
        rel = phi - float(heading[0])
        away = np.array([-math.cos(rel), -math.sin(rel)])  # shadow direction in (s, t)
        cs, ct = np.array([tree.s_m, tree.t_m]) + away * tree.canopy_height_m / tan_e
        if not (s_lo - 8 < cs < s_hi + 8):
            continue
        centre = px(cs, ct)
        axes = (
            tree.canopy_radius_m / math.sin(math.radians(sun.elevation_deg)) / cell,
            tree.canopy_radius_m / cell,
        )
        angle = math.degrees(math.atan2(away[1], away[0]))
        cv2.ellipse(
            shade,
            (round(centre[0] * 16), round(centre[1] * 16)),
            (round(axes[0] * 16), round(axes[1] * 16)),
            angle,
            0,
            360,
            200,
            -1,
            cv2.LINE_AA,
            4,
        )
        base = px(tree.s_m, tree.t_m)
        top = px(*(np.array([tree.s_m, tree.t_m]) + away * tree.trunk_height_m / tan_e))
        cv2.line(
            shade,
            (round(base[0] * 16), round(base[1] * 16)),
            (round(top[0] * 16), round(top[1] * 16)),
            230,
            max(1, round(0.3 / cell)),
            cv2.LINE_AA,
            4,
        )
    for pole in poles:
        _, _, heading, _ = scene.route.sample(np.array([pole.s_m]))
        rel = phi - float(heading[0])
        away = np.array([-math.cos(rel), -math.sin(rel)])
        base = np.array([pole.s_m, pole.t_m])
        tip = base + away * pole.height_m / tan_e
        p0, p1 = px(*base), px(*tip)
        cv2.line(
            shade,
            (round(p0[0] * 16), round(p0[1] * 16)),
            (round(p1[0] * 16), round(p1[1] * 16)),
            235,
            max(1, round(pole.diameter_m / cell)),
            cv2.LINE_AA,
            4,
        )
        arm = base + away * (pole.height_m - 0.8) / tan_e
        across = np.array([-away[1], away[0]]) * 0.9
        q0, q1 = px(*(arm - across)), px(*(arm + across))
        cv2.line(
            shade,
            (round(q0[0] * 16), round(q0[1] * 16)),
            (round(q1[0] * 16), round(q1[1] * 16)),
            225,
            max(1, round(0.12 / cell)),
            cv2.LINE_AA,
            4,
        )
    density = shade.astype(np.float32) / 255.0
    # Canopies let light through in flecks: modulate by lattice noise on the same nodes.
    ii, jj = np.meshgrid(np.arange(a0, a1), np.arange(b0, b1), indexing="ij")
    fleck = 0.5 * (_hash_unit(scene.seed * 31 + 5, ii // 3, jj // 3) + 1)
    density = np.where(density < 0.85, density * (0.55 + 0.45 * fleck), density)
    density = cv2.GaussianBlur(density, (0, 0), 0.8)
    vis = 1.0 - _upsample_nodes(density, a0, b0, k, i0, len(t_axis), j0, len(s_axis))
    return np.clip(vis, 0.0, 1.0)


def canonical_tier(spec: LevelSpec) -> int:
    """The tier a level is always made from: its finer texel side."""
    return min(spec.a_s, spec.a_t)


def chunk_levels(tile: Tile, specs: dict[int, LevelSpec]) -> dict[int, ChunkLevel]:
    """The levels (by key) whose canonical tier is this tile's tier."""
    res = R0_M * 2**tile.tier
    z = tile.height_m
    m = _MARGIN
    core = (slice(m, -m), slice(m, -m))

    # To int16 (rounded, saturating): height and central-difference gradients; the levels are
    # then box averages of integers, cheaper than in float.
    def to16(a: np.ndarray, scale: float) -> np.ndarray:
        return cv2.addWeighted(a, scale, a, 0.0, 0.0, dtype=cv2.CV_16S)  # rounds and saturates

    g_scale = float(_TO_INT16[1]) / (2 * res)
    z16 = to16(z, float(_TO_INT16[0]))
    gs16 = to16(cv2.Sobel(z, cv2.CV_32F, 1, 0, ksize=1), g_scale)
    gt16 = to16(cv2.Sobel(z, cv2.CV_32F, 0, 1, ksize=1), g_scale)
    geometry = cv2.merge([z16[core], gs16[core], gt16[core], np.zeros_like(z16[core])])
    albedo = np.ascontiguousarray(tile.albedo[core])
    out: dict[int, ChunkLevel] = {}
    made: dict[tuple[int, int], ChunkLevel] = {}
    for key, spec in specs.items():
        if canonical_tier(spec) != tile.tier:
            continue
        if (spec.a_s, spec.a_t) not in made:
            if (spec.a_s, spec.a_t) == (tile.tier, tile.tier):
                g, a = geometry, albedo
            else:
                # Halve the nearest level already made (a pyramid: less to read than the tile).
                parent = made.get((spec.a_s, spec.a_t - 1)) or made.get((spec.a_s - 1, spec.a_t))
                src_g, src_a = (parent.geometry, parent.albedo) if parent else (geometry, albedo)
                size = (spec.cols, spec.rows)
                g = cv2.resize(src_g, size, interpolation=cv2.INTER_AREA)
                a = cv2.resize(src_a, size, interpolation=cv2.INTER_AREA)
            made[(spec.a_s, spec.a_t)] = ChunkLevel(spec, a, g)
        out[key] = made[(spec.a_s, spec.a_t)]
    return out
