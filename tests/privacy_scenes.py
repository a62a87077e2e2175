"""Small generated scenes for the privacy tests: a road-like frame, a Japanese-style plate on a car
rear, and a real face from a photo that an installed package ships (matplotlib's Grace Hopper)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np

#: Hand box (x1, y1, x2, y2) of the face in matplotlib's sample_data/grace_hopper.jpg.
HOPPER_FACE = (172, 125, 362, 340)


def road_frame(width: int = 640, height: int = 360, seed: int = 0) -> np.ndarray:
    """Sky over grey asphalt with mild sensor noise: nothing to mask."""
    rng = np.random.default_rng(seed)
    image = np.empty((height, width, 3), np.float64)
    horizon = height // 3
    image[:horizon] = np.linspace(230, 190, horizon)[:, None, None] * np.array([1.0, 0.97, 0.9])
    image[horizon:] = np.linspace(120, 100, height - horizon)[:, None, None]
    image += rng.normal(0, 2.0, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def plate(width_px: int, number: str = "12-34") -> np.ndarray:
    """A white plate with a green frame line and green characters, 2:1, ``width_px`` wide."""
    w, h = 330, 165
    out = np.full((h, w, 3), (236, 238, 240), np.uint8)
    green = (48, 96, 22)
    cv2.rectangle(out, (4, 4), (w - 5, h - 5), green, 3)
    cv2.putText(out, "500", (150, 48), cv2.FONT_HERSHEY_SIMPLEX, 1.3, green, 4)
    cv2.putText(out, number, (38, 140), cv2.FONT_HERSHEY_SIMPLEX, 3.2, green, 12)
    return cv2.resize(out, (width_px, width_px // 2), interpolation=cv2.INTER_AREA)


def car_with_plate(
    image: np.ndarray, x: int, y: int, plate_w: int, number: str = "12-34"
) -> tuple[int, int, int, int]:
    """Draw a dark car rear with a plate whose top-left corner is (x, y); return the plate's box."""
    p = plate(plate_w, number)
    ph, pw = p.shape[:2]
    cv2.rectangle(image, (x - 2 * pw, y - 3 * ph), (x + 3 * pw, y + 2 * ph), (70, 40, 30), -1)
    image[y : y + ph, x : x + pw] = p
    return x, y, x + pw, y + ph


def hopper() -> np.ndarray | None:
    """matplotlib's grace_hopper.jpg (BGR), or None where matplotlib is not installed."""
    spec = importlib.util.find_spec("matplotlib")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "mpl-data" / "sample_data" / "grace_hopper.jpg"
    return cv2.imread(str(path)) if path.is_file() else None


def paste_face(
    image: np.ndarray, photo: np.ndarray, x: int, y: int, face_h: int
) -> tuple[float, float, float, float]:
    """Paste the head and shoulders of ``photo`` so that its face is ``face_h`` px tall with its
    top-left at (x, y); return the face's box in ``image``."""
    fx1, fy1, fx2, fy2 = HOPPER_FACE
    scale = face_h / (fy2 - fy1)
    crop = photo[max(0, fy1 - 60) : fy2 + 120, max(0, fx1 - 90) : fx2 + 90]
    small = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    ox, oy = round(x - (fx1 - max(0, fx1 - 90)) * scale), round(y - (fy1 - max(0, fy1 - 60)) * scale)
    h, w = small.shape[:2]
    image[oy : oy + h, ox : ox + w] = small[: image.shape[0] - oy, : image.shape[1] - ox]
    return x, y, x + (fx2 - fx1) * scale, y + face_h
