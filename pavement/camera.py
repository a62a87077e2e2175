"""Camera profile (intrinsics + mount) and the ground-plane geometry it implies.

Frames used throughout the project:

- vehicle frame: origin on the road surface straight below the camera, x forward, y left, z up
  (metres);
- camera frame (OpenCV): x right, y down, z along the optical axis.

Mount angles: ``pitch_deg`` > 0 tilts the camera down toward the road, ``roll_deg`` > 0 makes the
horizon rise to the right in the image, ``yaw_deg`` > 0 turns the camera to the left of the
driving direction.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from pavement.errors import CalibrationError


@dataclass(frozen=True)
class CameraIntrinsics:
    """Pinhole intrinsics in pixels, with OpenCV distortion (k1, k2, p1, p2, k3)."""

    width_px: int
    height_px: int
    fx_px: float
    fy_px: float
    cx_px: float
    cy_px: float
    distortion: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        if self.width_px <= 0 or self.height_px <= 0:
            raise CalibrationError(f"image size must be positive, got {self.width_px}x{self.height_px}")
        if self.fx_px <= 0 or self.fy_px <= 0:
            raise CalibrationError(f"focal lengths must be positive, got fx={self.fx_px}, fy={self.fy_px}")
        object.__setattr__(self, "distortion", tuple(float(d) for d in self.distortion))

    @classmethod
    def from_fov(cls, width_px: int, height_px: int, hfov_deg: float) -> CameraIntrinsics:
        """Square pixels, principal point at the centre, focal length from the horizontal FOV."""
        if not 1 < hfov_deg < 179:
            raise CalibrationError(f"horizontal field of view must be in (1, 179) degrees, got {hfov_deg}")
        f = (width_px / 2) / math.tan(math.radians(hfov_deg) / 2)
        return cls(width_px, height_px, f, f, width_px / 2, height_px / 2)

    @property
    def matrix(self) -> np.ndarray:
        """The 3x3 camera matrix K."""
        return np.array([[self.fx_px, 0, self.cx_px], [0, self.fy_px, self.cy_px], [0, 0, 1.0]])

    @property
    def hfov_deg(self) -> float:
        return math.degrees(2 * math.atan(self.width_px / 2 / self.fx_px))

    def scaled(self, width_px: int, height_px: int) -> CameraIntrinsics:
        """The same camera at another resolution (video downscaled for processing)."""
        sx, sy = width_px / self.width_px, height_px / self.height_px
        return CameraIntrinsics(
            width_px,
            height_px,
            self.fx_px * sx,
            self.fy_px * sy,
            self.cx_px * sx,
            self.cy_px * sy,
            self.distortion,
        )


@dataclass(frozen=True)
class CameraMount:
    """Where the phone sits: height of the lens above the road and its angles (degrees)."""

    height_m: float
    pitch_deg: float
    roll_deg: float = 0.0
    yaw_deg: float = 0.0
    lateral_m: float = 0.0  # lens offset to the left of the vehicle's centre line

    def __post_init__(self) -> None:
        if not 0.3 <= self.height_m <= 5.0:
            raise CalibrationError(
                f"camera height {self.height_m} m is implausible; measure the lens height above the "
                "road in metres (a dashboard phone sits at about 1.2-1.6 m)"
            )
        if not -10 <= self.pitch_deg <= 80:
            raise CalibrationError(f"pitch {self.pitch_deg} deg out of range [-10, 80]; down is positive")

    def rotation_vehicle_to_camera(self) -> np.ndarray:
        """R such that p_camera = R @ (p_vehicle - camera_position)."""
        # Axis swap for a camera looking straight ahead: cam x = -veh y, cam y = -veh z, cam z = veh x.
        base = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])
        yaw, pitch, roll = (math.radians(a) for a in (self.yaw_deg, self.pitch_deg, self.roll_deg))
        # Yaw about the vehicle's up axis, pitch about the camera's x axis, roll about its optical axis.
        rz = np.array([[math.cos(yaw), math.sin(yaw), 0], [-math.sin(yaw), math.cos(yaw), 0], [0, 0, 1]])
        rx = np.array(
            [[1, 0, 0], [0, math.cos(pitch), -math.sin(pitch)], [0, math.sin(pitch), math.cos(pitch)]]
        )
        rr = np.array([[math.cos(roll), math.sin(roll), 0], [-math.sin(roll), math.cos(roll), 0], [0, 0, 1]])
        return rr @ rx @ base @ rz

    @property
    def position_vehicle(self) -> np.ndarray:
        return np.array([0.0, self.lateral_m, self.height_m])


@dataclass(frozen=True)
class CameraProfile:
    """A phone model + mount, as in ``camera.json``."""

    intrinsics: CameraIntrinsics
    mount: CameraMount
    name: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict[str, Any]:
        d = {"name": self.name, "intrinsics": asdict(self.intrinsics), "mount": asdict(self.mount)}
        d["intrinsics"]["distortion"] = list(self.intrinsics.distortion)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CameraProfile:
        """Parse the ``camera.json`` structure; intrinsics may be given as ``hfov_deg`` + size."""
        try:
            intr = dict(d["intrinsics"])
            if "hfov_deg" in intr and "fx_px" not in intr:
                intrinsics = CameraIntrinsics.from_fov(intr["width_px"], intr["height_px"], intr["hfov_deg"])
            else:
                intr.pop("hfov_deg", None)
                intrinsics = CameraIntrinsics(**intr)
            mount = CameraMount(**d["mount"])
        except (KeyError, TypeError) as exc:
            raise CalibrationError(
                f"camera profile is missing or has an unknown field ({exc}); expected "
                '{"intrinsics": {"width_px", "height_px", "fx_px", "fy_px", "cx_px", "cy_px"} or '
                '{"width_px", "height_px", "hfov_deg"}, "mount": {"height_m", "pitch_deg", "roll_deg"}}'
            ) from exc
        return cls(intrinsics, mount, str(d.get("name", "")))

    def projection_matrix(self) -> np.ndarray:
        """3x4 P mapping homogeneous vehicle-frame points to pixels (no distortion)."""
        r = self.mount.rotation_vehicle_to_camera()
        t = -r @ self.mount.position_vehicle
        return self.intrinsics.matrix @ np.hstack([r, t[:, None]])

    def ground_homography(self) -> np.ndarray:
        """3x3 H mapping road-plane points (x forward, y left, 1) in metres to pixels."""
        p = self.projection_matrix()
        return p[:, [0, 1, 3]]

    def pixel_rays_vehicle(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Unit ray directions (..., 3) in the vehicle frame through pixel centres (u, v)."""
        k = self.intrinsics
        d_cam = np.stack([(u - k.cx_px) / k.fx_px, (v - k.cy_px) / k.fy_px, np.ones_like(u, dtype=float)], -1)
        d_veh = d_cam @ self.mount.rotation_vehicle_to_camera()  # R^T applied to row vectors
        return d_veh / np.linalg.norm(d_veh, axis=-1, keepdims=True)
