"""The camera's pitch from the road's vanishing point.

Lane markings and the edges of the carriageway run along the driving direction; in the image
their straight stretches meet at the vanishing point of that direction. Its pixel fixes the
forward direction in camera coordinates, and with the roll of camera.json kept, that direction
gives the mount's pitch. (Its yaw too, in principle; but on curves the lines' vanishing point
swings sideways, and on the synthetic runs the yaw it gives was further from the truth than
camera.json's, so yaw is kept.) Pitch drifts with load (a full boot, passengers) and with how the
crew clipped the phone in that morning: 1-2 degrees of pitch move a point 5 m ahead by 0.3-0.6 m
in the rectified top view, so the crack mesh is built with the refined mount.

Per frame (shrunk to ``width_px``): Canny edges below the nominal horizon, probabilistic Hough
segments that are neither near-horizontal nor near-vertical, the least-squares intersection of
their lines with the worst outliers dropped (curves and shadows). Per run: the median of the
points of the first ``frames`` frames (``PitchRefiner``), with the spread of the pitch they give as
its uncertainty; too few frames or too wide a spread keeps the mount of camera.json, with the
reason. The crack mesh and the rut bursts use the refined mount.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import cv2
import numpy as np

from pavement.camera import CameraIntrinsics, CameraMount


@dataclass(frozen=True)
class VanishingConfig:
    min_angle_deg: float = 15.0  # segments flatter than this (shadows, crossings) are not lane lines
    max_angle_deg: float = 80.0  # nor steeper (poles, the car's own edges)
    min_length: float = 0.06  # segment length, share of the image width
    min_lines: int = 4
    inlier_px: float = 0.01  # a line passes within this share of the width of the point
    horizon_margin: float = 0.04  # edges searched from this share of the height below the nominal horizon
    min_frames: int = 5
    max_spread_deg: float = 1.0  # robust spread (1.4826 MAD) of the frames' pitch allowed
    max_change_deg: float = 5.0  # a refined pitch further than this from camera.json is not believed
    frames: int = 12  # frames whose vanishing points refine the pitch (0: camera.json's as it is)
    width_px: int = 640  # lane lines are found on frames shrunk to this width


@dataclass(frozen=True)
class MountRefinement:
    """The mount to use, and how it was found (``refined`` False: camera.json's, with ``reason``)."""

    mount: CameraMount
    refined: bool
    n_frames: int  # frames that gave a vanishing point
    pitch_spread_deg: float | None = None
    reason: str = ""

    def report(self, nominal: CameraMount) -> dict:
        """For report.json: the mount used, camera.json's pitch (``nominal``), the frames and the
        spread behind the refined pitch, or why it was not refined."""
        m = self.mount
        return {
            "height_m": m.height_m,
            "pitch_deg": m.pitch_deg,
            "roll_deg": m.roll_deg,
            "yaw_deg": m.yaw_deg,
            "refined": self.refined,
            "camera_json_pitch_deg": nominal.pitch_deg,
            "vanishing_point_frames": self.n_frames,
            "pitch_spread_deg": None if self.pitch_spread_deg is None else round(self.pitch_spread_deg, 3),
            "note": self.reason,
        }


def road_segments(
    gray: np.ndarray, horizon_row: float, config: VanishingConfig = VanishingConfig()
) -> np.ndarray:
    """(n, 4) line segments x1, y1, x2, y2 (pixels) below ``horizon_row`` that may be lane lines."""
    h, w = gray.shape[:2]
    top = int(np.clip(horizon_row + config.horizon_margin * h, 0, h - 2))
    roi = cv2.GaussianBlur(gray[top:], (5, 5), 0)
    edges = cv2.Canny(roi, 40, 120)
    found = cv2.HoughLinesP(
        edges,
        1,
        np.pi / 360,
        threshold=max(20, int(0.03 * w)),
        minLineLength=config.min_length * w,
        maxLineGap=0.01 * w,
    )
    if found is None:
        return np.empty((0, 4))
    seg = np.asarray(found, dtype=float).reshape(-1, 4)
    seg[:, [1, 3]] += top
    angle = np.degrees(np.arctan2(np.abs(seg[:, 3] - seg[:, 1]), np.abs(seg[:, 2] - seg[:, 0])))
    return seg[(angle >= config.min_angle_deg) & (angle <= config.max_angle_deg)]


def intersection(segments: np.ndarray, width_px: int, config: VanishingConfig = VanishingConfig()):
    """The point (u, v) nearest all segments' lines, weighted by length, after dropping lines that
    miss it by more than ``inlier_px``; None with fewer than ``min_lines`` lines on both sides
    (lines leaning left and right: one family alone does not fix a point)."""
    seg = np.asarray(segments, dtype=float)
    for _ in range(4):
        if len(seg) < config.min_lines:
            return None
        slope_sign = np.sign((seg[:, 2] - seg[:, 0]) * (seg[:, 3] - seg[:, 1]))
        if (slope_sign > 0).sum() < 1 or (slope_sign < 0).sum() < 1:
            return None
        d = seg[:, 2:] - seg[:, :2]
        length = np.hypot(d[:, 0], d[:, 1])
        n = np.column_stack([-d[:, 1], d[:, 0]]) / length[:, None]  # unit normals
        c = np.sum(n * seg[:, :2], axis=1)
        a = n * np.sqrt(length)[:, None]
        point, *_ = np.linalg.lstsq(a, c * np.sqrt(length), rcond=None)
        miss = np.abs(n @ point - c)
        keep = miss <= config.inlier_px * width_px
        if keep.all():
            return float(point[0]), float(point[1])
        seg = seg[keep]
    return None


def mount_from_vanishing_point(
    u: float, v: float, intrinsics: CameraIntrinsics, mount: CameraMount
) -> CameraMount:
    """``mount`` with the pitch and yaw that put the forward direction at pixel (u, v); height,
    roll and lateral offset kept (see ``CameraMount.rotation_vehicle_to_camera``)."""
    k = intrinsics
    d = np.array([(u - k.cx_px) / k.fx_px, (v - k.cy_px) / k.fy_px, 1.0])
    roll = math.radians(mount.roll_deg)
    # undo the roll about the optical axis (the rotation is applied last)
    rr = np.array([[math.cos(roll), math.sin(roll), 0], [-math.sin(roll), math.cos(roll), 0], [0, 0, 1]])
    x, y, z = rr.T @ d
    pitch = math.degrees(math.atan2(-y, z))
    yaw = math.degrees(math.atan2(x, math.hypot(y, z)))
    return replace(mount, pitch_deg=round(pitch, 3), yaw_deg=round(yaw, 3))


def horizon_row(intrinsics: CameraIntrinsics, mount: CameraMount) -> float:
    """Image row of the horizon straight ahead for ``mount`` (roll ignored)."""
    return intrinsics.cy_px - intrinsics.fy_px * math.tan(math.radians(mount.pitch_deg))


def refine_mount(
    points: list[tuple[float, float]],
    intrinsics: CameraIntrinsics,
    mount: CameraMount,
    config: VanishingConfig = VanishingConfig(),
) -> MountRefinement:
    """The run's mount from its frames' vanishing points (see the module docstring)."""
    if len(points) < config.min_frames:
        return MountRefinement(
            mount,
            False,
            len(points),
            reason=f"only {len(points)} frames showed lane lines meeting at a point "
            f"(needs {config.min_frames}); the mount of camera.json is used",
        )
    mounts = [mount_from_vanishing_point(u, v, intrinsics, mount) for u, v in points]
    pitch = np.array([m.pitch_deg for m in mounts])
    spread = float(1.4826 * np.median(np.abs(pitch - np.median(pitch))))
    refined = replace(mount, pitch_deg=round(float(np.median(pitch)), 3))
    if spread > config.max_spread_deg or abs(refined.pitch_deg - mount.pitch_deg) > config.max_change_deg:
        return MountRefinement(
            mount,
            False,
            len(points),
            spread,
            reason=f"the frames' vanishing points disagree (pitch {refined.pitch_deg:.1f} +- {spread:.1f} "
            f"deg against {mount.pitch_deg:.1f} in camera.json); the mount of camera.json is used",
        )
    return MountRefinement(refined, True, len(points), spread)


class PitchRefiner:
    """A run's pitch from its first ``config.frames`` frames: ``push`` grey frames (full size) until
    it answers the refinement (``refinement``; ``settle`` decides early, e.g. at the end of a
    short video). ``intrinsics`` and ``mount``: camera.json's, at the frames' size."""

    def __init__(
        self, intrinsics: CameraIntrinsics, mount: CameraMount, config: VanishingConfig = VanishingConfig()
    ):
        self.nominal = mount
        self.config = config
        k, scale = intrinsics, min(1.0, config.width_px / intrinsics.width_px)
        self._size = (max(round(k.width_px * scale), 16), max(round(k.height_px * scale), 16))
        self._intrinsics = intrinsics.scaled(*self._size)
        self._points: list[tuple[float, float]] = []
        self._seen = 0
        self.refinement: MountRefinement | None = None
        if config.frames <= 0:
            self.refinement = MountRefinement(mount, False, 0, reason="pitch refinement switched off")

    def push(self, grey: np.ndarray) -> MountRefinement | None:
        """Look for the vanishing point in one frame; the refinement once ``frames`` were seen."""
        if self.refinement is not None:
            return self.refinement
        small = cv2.resize(grey, self._size, interpolation=cv2.INTER_AREA)
        horizon = horizon_row(self._intrinsics, self.nominal)
        point = intersection(road_segments(small, horizon, self.config), small.shape[1], self.config)
        if point is not None:
            self._points.append(point)
        self._seen += 1
        return self.settle() if self._seen >= self.config.frames else None

    def settle(self) -> MountRefinement:
        """Decide the mount from the vanishing points seen so far."""
        if self.refinement is None:
            self.refinement = refine_mount(self._points, self._intrinsics, self.nominal, self.config)
        return self.refinement
