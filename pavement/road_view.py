"""Rectified top view of the lane ahead: road-plane metres at a fixed scale (issue 5).

The ground homography (``pavement.camera``) maps road-plane points to pixels; resampling the
frame on a regular grid of road points gives a top view in which a pixel is a fixed area of road
(5 mm x 5 mm by default), so crack lengths, cell sizes and areas are real metres and the MLIT
0.5 m mesh can be laid over it directly.

Top-view axes: column 0 is the left edge of the view (y = ``lateral_centre_m + width_m / 2`` in
the vehicle frame, x forward, y left), row 0 its far edge (x = ``far_m``); rows grow toward the
camera. Lens distortion, when the profile has some, is applied through a precomputed remap table;
otherwise one ``warpPerspective`` per frame does it.

Resolution falls with distance (a pixel of the frame covers about d^2 / (f h) metres of road
along it at distance d), so the far rows are an upsampled, blurred picture; ``viewing distance``
per row lets later stages prefer near views.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pavement.camera import CameraProfile
from pavement.errors import CalibrationError, ConfigError


@dataclass(frozen=True)
class RoadViewConfig:
    """Extent and scale of the top view, in the vehicle frame (metres)."""

    metres_per_px: float = 0.005  # 5 mm: a 2-10 mm crack is 1-2 px wide
    near_m: float = 2.0  # moved out to the nearest road the frame shows; raise it when the bonnet shows
    # A 720p frame pixel covers d^2 / (f h) of road along it: ~3 mm at 2 m, ~13 mm at 4 m, ~80 mm at
    # 10 m. The crack mesh decides cells up to 4 m ahead (CrackMeshConfig.max_distance_m); the half
    # metre beyond gives the segmenter its context (the texture's noise is measured over 0.5 m).
    far_m: float = 4.5
    width_m: float = 3.5  # one lane (MLIT surveys the lane)
    lateral_centre_m: float = 0.0  # centre of the view, left of the vehicle's centre line

    def __post_init__(self) -> None:
        if not 0.0005 <= self.metres_per_px <= 0.1:
            raise ConfigError(f"top-view scale {self.metres_per_px} m/px out of range [0.0005, 0.1]")
        if not 0 < self.near_m < self.far_m:
            raise ConfigError(f"top view needs 0 < near_m < far_m, got {self.near_m}, {self.far_m}")
        if self.width_m <= 0:
            raise ConfigError(f"top-view width must be positive, got {self.width_m} m")


@dataclass(frozen=True, eq=False)
class RoadView:
    """How one camera's frames are rectified: top-view pixel -> frame pixel, and the view's extent.

    ``valid`` (H, W) bool marks the top-view pixels whose road point is inside the frame."""

    matrix: np.ndarray  # 3x3: top-view (col, row, 1) -> frame pixel (WARP_INVERSE_MAP)
    size_px: tuple[int, int]  # (width, height), as cv2 takes it
    metres_per_px: float
    near_m: float
    far_m: float
    left_m: float  # y of the view's left edge (vehicle frame, m)
    valid: np.ndarray
    maps: tuple[np.ndarray, np.ndarray] | None = None  # remap tables when the lens distorts

    @property
    def shape(self) -> tuple[int, int]:
        return self.size_px[1], self.size_px[0]

    def forward_m(self, rows: np.ndarray) -> np.ndarray:
        """Forward distance (x, m) of the centres of top-view ``rows``."""
        return self.far_m - (np.asarray(rows, dtype=float) + 0.5) * self.metres_per_px

    def lateral_m(self, cols: np.ndarray) -> np.ndarray:
        """Lateral position (y, m, left +) of the centres of top-view ``cols``."""
        return self.left_m - (np.asarray(cols, dtype=float) + 0.5) * self.metres_per_px

    def frame_px_per_view_px(self, row: float) -> tuple[float, float]:
        """How many frame pixels one top-view pixel spans (across, along) at top-view ``row``, on
        the view's centre column. Below 1 the top view is an upsampled (interpolated) picture there:
        at 320x180 a 5 mm top-view pixel is ~0.2-0.5 frame pixel 2-3 m ahead, at 1080p ~1-3."""
        w, h = self.size_px
        if self.maps is not None:  # the lens distorts: differences of the remap tables
            r, c = int(np.clip(round(row), 0, h - 2)), w // 2
            u, v = self.maps
            across = np.hypot(u[r, c + 1] - u[r, c], v[r, c + 1] - v[r, c])
            along = np.hypot(u[r + 1, c] - u[r, c], v[r + 1, c] - v[r, c])
            return float(across), float(along)
        pts = self.matrix @ np.array([[w / 2, w / 2 + 1, w / 2], [row, row, row + 1], [1.0, 1.0, 1.0]])
        uv = pts[:2] / pts[2]
        return float(np.linalg.norm(uv[:, 1] - uv[:, 0])), float(np.linalg.norm(uv[:, 2] - uv[:, 0]))

    def to_pixels(self, x_m: np.ndarray, y_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Top-view (col, row) of road points (x forward, y left), continuous, pixel centres at +0.5."""
        res = self.metres_per_px
        return (self.left_m - np.asarray(y_m)) / res, (self.far_m - np.asarray(x_m)) / res


def road_view(camera: CameraProfile, config: RoadViewConfig = RoadViewConfig()) -> RoadView:
    """The top view of ``config``'s road patch for ``camera`` (intrinsics at the frames' size).

    The near edge moves out to the nearest road the frame shows when the camera cannot see as
    near as ``near_m``; a camera that sees none of the patch is a ``CalibrationError``."""
    k = camera.intrinsics
    res = config.metres_per_px
    near, far = config.near_m, config.far_m
    # nearest visible road straight ahead: the ray through the bottom row's centre
    ray = camera.pixel_rays_vehicle(np.array([k.cx_px]), np.array([k.height_px - 1.0]))[0]
    if ray[2] >= -1e-6:
        raise CalibrationError(
            f"the camera (pitch {camera.mount.pitch_deg} deg) does not see the road at the bottom of "
            "the image; check the mount pitch in camera.json (down is positive)"
        )
    nearest = camera.mount.height_m * ray[0] / -ray[2]
    near = max(near, float(nearest))
    if far - near < 1.0:
        raise CalibrationError(
            f"the camera sees the road only from {nearest:.1f} m ahead; the top view needs at least 1 m "
            f"before {far:.1f} m (check height and pitch in camera.json, or raise far_m)"
        )
    height_px = round((far - near) / res)
    width_px = round(config.width_m / res)
    near = far - height_px * res
    left = config.lateral_centre_m + width_px * res / 2
    # top-view (col, row, 1) -> road (x, y, 1), pixel centres at +0.5
    a = np.array([[0.0, -res, far - 0.5 * res], [-res, 0.0, left - 0.5 * res], [0.0, 0.0, 1.0]])
    m = camera.ground_homography() @ a
    m = m / m[2, 2]
    cols, rows = np.meshgrid(np.arange(width_px, dtype=np.float32), np.arange(height_px, dtype=np.float32))
    maps = None
    if any(abs(d) > 0 for d in k.distortion):
        x = far - (rows + 0.5) * res
        y = left - (cols + 0.5) * res
        p = camera.projection_matrix()
        r, t = p[:, :3], p[:, 3]  # K [R | t]; undo K to get R and t for projectPoints
        k_inv = np.linalg.inv(k.matrix)
        rvec, _ = cv2.Rodrigues(k_inv @ r)
        pts = np.stack([x, y, np.zeros_like(x)], -1).reshape(-1, 1, 3).astype(np.float64)
        img, _ = cv2.projectPoints(pts, rvec, k_inv @ t, k.matrix, np.array(k.distortion))
        img = img.reshape(height_px, width_px, 2).astype(np.float32)
        maps = (img[..., 0], img[..., 1])
        u, v = maps
    else:
        den = m[2, 0] * cols + m[2, 1] * rows + m[2, 2]
        u = (m[0, 0] * cols + m[0, 1] * rows + m[0, 2]) / den
        v = (m[1, 0] * cols + m[1, 1] * rows + m[1, 2]) / den
    valid = (u >= 0) & (u <= k.width_px - 1) & (v >= 0) & (v <= k.height_px - 1)
    if not valid.any():
        raise CalibrationError(
            f"the camera sees none of the road {near:.1f}-{far:.1f} m ahead; check camera.json"
        )
    return RoadView(m, (width_px, height_px), res, near, far, left, valid, maps)


def warp_road_view(image: np.ndarray, view: RoadView) -> np.ndarray:
    """Top view (H, W[, 3]) of a frame (uint8, BGR or grey, at the camera's size); 0 outside it."""
    if view.maps is not None:
        return cv2.remap(image, *view.maps, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    return cv2.warpPerspective(
        image, view.matrix, view.size_px, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    )
