"""Speed of the camera over the road from consecutive video frames (road-plane optical flow).

Each frame is warped through the camera's ground homography into a top view of a patch of road
ahead (x forward, y left, fixed metres per pixel); between consecutive top views the road moves
toward the camera by the distance travelled, which phase correlation measures in pixels. Working
in the road plane makes the shift the same over the whole patch (in the image it grows toward the
bottom), and the scale comes from the camera's mounting height. A wrong nominal height or pitch
scales the result; clock alignment fits that scale against GPS speed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from pavement.camera import CameraProfile
from pavement.errors import CalibrationError


@dataclass(frozen=True)
class TopViewConfig:
    width_m: float = 3.0  # lateral extent of the patch, centred on the camera
    max_speed_mps: float = 35.0  # the patch is long enough for this speed at the video's frame rate
    min_length_m: float = 6.0
    max_length_m: float = 16.0
    pixels_along: int = 192  # top-view resolution along the road
    min_response: float = 0.08  # phase-correlation peak below this = no reliable measurement


@dataclass(frozen=True)
class TopView:
    """Mapping from top-view pixels to image pixels (``WARP_INVERSE_MAP`` matrix) and its scale."""

    matrix: np.ndarray  # 3x3: top-view (col, row, 1) -> image pixel
    size_px: tuple[int, int]  # (width, height) for cv2
    metres_per_px: float
    near_m: float
    far_m: float


def top_view(camera: CameraProfile, fps: float, config: TopViewConfig = TopViewConfig()) -> TopView:
    """The road patch to watch: it starts just beyond the bottom edge of the image and is long
    enough to overlap itself between frames at ``max_speed_mps``."""
    k = camera.intrinsics
    # nearest visible ground: ray through the bottom-centre pixel
    ray = camera.pixel_rays_vehicle(np.array([k.cx_px]), np.array([k.height_px - 1.0]))[0]
    if ray[2] >= -1e-6:
        raise CalibrationError(
            f"the camera (pitch {camera.mount.pitch_deg} deg) does not see the road at the bottom "
            "of the image; "
            "check the mount pitch in camera.json (down is positive)"
        )
    near = camera.mount.height_m * ray[0] / -ray[2] + 0.5
    step = config.max_speed_mps / max(fps, 1e-3)
    length = float(np.clip(3.0 * step, config.min_length_m, config.max_length_m))
    # do not reach beyond ~35 % of the distance to the horizon: resolution falls off fast
    horizon_ray = camera.pixel_rays_vehicle(np.array([k.cx_px]), np.array([0.0]))[0]
    if horizon_ray[2] < 0:
        length = min(length, max(camera.mount.height_m * horizon_ray[0] / -horizon_ray[2] - near, 2.0))
    far = near + length
    res = length / config.pixels_along
    width_px = max(round(config.width_m / res), 16)
    a = np.array([[0.0, -res, far], [-res, 0.0, config.width_m / 2], [0.0, 0.0, 1.0]])  # top view -> ground
    y_left = camera.mount.lateral_m  # centre the patch straight ahead of the lens
    a[1, 2] += y_left
    m = camera.ground_homography() @ a
    return TopView(m / m[2, 2], (width_px, config.pixels_along), res, near, far)


def warp_top_view(gray: np.ndarray, view: TopView) -> np.ndarray:
    """Top view (float32) of a grayscale frame; pixels outside the image are 0."""
    return cv2.warpPerspective(
        gray, view.matrix, view.size_px, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    ).astype(np.float32)


@dataclass(frozen=True)
class RoadShift:
    forward_m: float  # road travelled between the two frames (camera moving forward > 0)
    lateral_m: float
    response: float  # phase-correlation peak (0..1)


class RoadMotionMeter:
    """Feeds consecutive grayscale frames; returns the road shift since the previous frame."""

    def __init__(self, view: TopView):
        self.view = view
        self._window = cv2.createHanningWindow(view.size_px, cv2.CV_32F)
        self._prev: np.ndarray | None = None

    def reset(self) -> None:
        self._prev = None

    def push(self, gray: np.ndarray) -> RoadShift | None:
        top = warp_top_view(gray, self.view)
        # remove the mean and slow shading so that lighting changes do not correlate
        top = top - cv2.GaussianBlur(top, (0, 0), 8)
        prev, self._prev = self._prev, top
        if prev is None:
            return None
        (dx, dy), response = cv2.phaseCorrelate(prev, top, self._window)
        # road features move down the top view (toward the camera) as the car moves forward
        res = self.view.metres_per_px
        if not (math.isfinite(dx) and math.isfinite(dy)):
            return RoadShift(float("nan"), float("nan"), 0.0)
        return RoadShift(float(dy) * res, float(-dx) * res, float(response))
