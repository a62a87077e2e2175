"""Potholes on the ground: detection boxes projected to the road plane and merged across frames.

A pothole is seen in several consecutive frames; each sighting is placed on the road by the
ground homography (a hole is flat: the box's bottom edge is its near side on the road and its
top edge the far side, so its centre is midway between their ground points) and the frame's
pose, and sightings closer than a merge radius are one pothole. MLIT also counts each
pothole's cell as fully damaged; that is the crack-ratio stage's part.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pavement.camera import CameraProfile
from pavement.errors import ConfigError


@dataclass(frozen=True)
class PotholeSighting:
    frame_index: int
    confidence: float
    x_m: float  # plane coordinates (easting, northing) of the pothole's centre
    y_m: float
    distance_ahead_m: float  # from the camera, along the road


@dataclass(frozen=True)
class Pothole:
    x_m: float
    y_m: float
    confidence: float  # best sighting
    best_frame_index: int  # the frame that saw it nearest (sharpest, least foreshortened)
    n_sightings: int


def box_ground_points(xyxy: np.ndarray, camera: CameraProfile) -> np.ndarray:
    """Road-plane points (n, 2) = (forward, left) metres in the vehicle frame of the centre of each
    box taken as a flat patch of road (midway between the ground points of its bottom and top edge
    centres). NaN where a point is above the horizon."""
    boxes = np.asarray(xyxy, dtype=float).reshape(-1, 4)
    h_inv = np.linalg.inv(camera.ground_homography())
    u = (boxes[:, 0] + boxes[:, 2]) / 2
    pts = []
    for v in (boxes[:, 3], boxes[:, 1]):
        g = h_inv @ np.stack([u, v, np.ones_like(u)])
        with np.errstate(divide="ignore", invalid="ignore"):
            xy = (g[:2] / g[2]).T
        xy[(g[2] <= 0) | (xy[:, 0] <= 0)] = np.nan
        pts.append(xy)
    return (pts[0] + pts[1]) / 2


def place_on_plane(points_vehicle: np.ndarray, x_m: float, y_m: float, heading_deg: float) -> np.ndarray:
    """Vehicle-frame (forward, left) points -> plane (easting, northing), heading clockwise from north."""
    h = math.radians(heading_deg)
    forward = np.array([math.sin(h), math.cos(h)])
    left = np.array([-math.cos(h), math.sin(h)])
    p = np.asarray(points_vehicle, dtype=float).reshape(-1, 2)
    return np.array([x_m, y_m]) + p[:, :1] * forward + p[:, 1:2] * left


def merge_sightings(sightings: list[PotholeSighting], radius_m: float = 1.5) -> list[Pothole]:
    """One pothole per group of sightings within ``radius_m`` of the group's running centre,
    taking the strongest sightings first."""
    if radius_m <= 0:
        raise ConfigError(f"merge radius must be positive, got {radius_m} m")
    groups: list[list[PotholeSighting]] = []
    centres: list[np.ndarray] = []
    for s in sorted(sightings, key=lambda s: -s.confidence):
        p = np.array([s.x_m, s.y_m])
        dists = [float(np.hypot(*(c - p))) for c in centres]
        if dists and min(dists) <= radius_m:
            i = int(np.argmin(dists))
            groups[i].append(s)
            centres[i] = np.mean([[g.x_m, g.y_m] for g in groups[i]], axis=0)
        else:
            groups.append([s])
            centres.append(p)
    return [
        Pothole(
            x_m=float(c[0]),
            y_m=float(c[1]),
            confidence=max(g.confidence for g in group),
            best_frame_index=min(group, key=lambda g: g.distance_ahead_m).frame_index,
            n_sightings=len(group),
        )
        for c, group in zip(centres, groups, strict=True)
    ]
