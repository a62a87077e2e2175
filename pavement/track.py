"""GPS track points and per-frame poses."""

from __future__ import annotations

from dataclasses import dataclass

from pavement.segments import RoutePosition


@dataclass(frozen=True)
class TrackPoint:
    """One GPS fix. Time is UTC in seconds since the Unix epoch; lat/lon WGS84 / JGD2011 degrees."""

    t_unix_s: float
    lat: float
    lon: float
    speed_mps: float | None = None
    heading_deg: float | None = None  # clockwise from north
    accuracy_m: float | None = None
    quality: float = 1.0  # 0 = rejected, 1 = trusted; set by track cleaning


@dataclass(frozen=True)
class FramePose:
    """Where a video frame was taken: its time, position, heading and speed, and its place on
    the route when a ledger matched."""

    frame_index: int
    t_video_s: float  # seconds from the start of the video
    t_unix_s: float  # UTC, after clock alignment
    lat: float
    lon: float
    heading_deg: float
    speed_mps: float
    quality: float = 1.0
    route: RoutePosition | None = None
