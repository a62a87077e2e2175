"""Frame plan: which video frames to analyse, chosen by distance travelled.

One frame every ``spacing_m`` of travel (default 5 m: the 0.5 m crack mesh of a 100 m segment is
seen several times over, without decoding every frame), none while the car stands, plus a short
burst of consecutive frames every ``burst_every_m`` (20 m): rut depth is measured per 20 m cross
profile (MLIT 舗装点検要領), from the parallax between consecutive frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pavement.errors import ConfigError
from pavement.gps_track import TrackSample
from pavement.track import FramePose

NO_BURST = -1


@dataclass(frozen=True)
class FramePlanConfig:
    spacing_m: float = 5.0  # one frame per this much travel
    burst_every_m: float = 20.0  # a rut burst every this much travel (0 = none)
    burst_frames: int = 3  # consecutive frames in a burst
    min_speed_mps: float = 0.5  # slower = standing: no frame

    def __post_init__(self) -> None:
        if not self.spacing_m > 0:
            raise ConfigError(f"frame spacing must be positive, got {self.spacing_m} m; the default is 5 m")
        if self.burst_every_m < 0 or self.burst_frames < 1:
            raise ConfigError(
                f"burst_every_m must be >= 0 and burst_frames >= 1, "
                f"got {self.burst_every_m}, {self.burst_frames}"
            )


@dataclass(frozen=True)
class FramePlan:
    """Planned frames in frame order, with the distance travelled at each and the rut burst each
    belongs to (``NO_BURST`` for a frame planned by spacing only)."""

    poses: tuple[FramePose, ...]
    distance_m: tuple[float, ...]
    burst_id: tuple[int, ...]
    spacing_m: float

    def __len__(self) -> int:
        return len(self.poses)

    @property
    def n_bursts(self) -> int:
        return len({b for b in self.burst_id if b != NO_BURST})


def _frames_at_marks(distance_m: np.ndarray, usable: np.ndarray, step_m: float) -> list[tuple[int, int]]:
    """(mark number, frame index) of the usable frame nearest each multiple of ``step_m``."""
    idx = np.flatnonzero(usable)
    if len(idx) == 0:
        return []
    d = distance_m[idx]
    marks = np.arange(np.ceil(d[0] / step_m - 1e-9), np.floor(d[-1] / step_m + 1e-9) + 1)
    out: list[tuple[int, int]] = []
    last = -1
    for m in marks:
        target = m * step_m
        j = int(np.searchsorted(d, target - 1e-9))
        choices = [k for k in (j - 1, j) if 0 <= k < len(d)]
        k = min(choices, key=lambda c: abs(d[c] - target))
        if abs(d[k] - target) > step_m / 2:
            continue  # a gap in the track: no frame near this mark
        if idx[k] != last:
            out.append((int(m), int(idx[k])))
            last = idx[k]
    return out


def plan_frames(
    t_video_s: np.ndarray,
    t_unix_s: np.ndarray,
    sample: TrackSample,
    distance_m: np.ndarray,
    config: FramePlanConfig = FramePlanConfig(),
) -> FramePlan:
    """Plan frames from per-video-frame times (n,), the track sampled at those times and the
    distance travelled (n,). Frames outside the track's coverage or standing still are skipped."""
    n = len(t_video_s)
    distance = np.asarray(distance_m, dtype=float)
    usable = np.asarray(sample.covered, dtype=bool) & (np.asarray(sample.speed_mps) >= config.min_speed_mps)
    chosen: dict[int, int] = {i: NO_BURST for _, i in _frames_at_marks(distance, usable, config.spacing_m)}
    if config.burst_every_m > 0:
        for burst, start in _frames_at_marks(distance, usable, config.burst_every_m):
            for i in range(start, min(start + config.burst_frames, n)):
                if sample.covered[i]:
                    chosen[i] = burst
    order = sorted(chosen)
    poses = tuple(
        FramePose(
            frame_index=i,
            t_video_s=float(t_video_s[i]),
            t_unix_s=float(t_unix_s[i]),
            lat=float(sample.lat[i]),
            lon=float(sample.lon[i]),
            heading_deg=float(sample.heading_deg[i]),
            speed_mps=float(sample.speed_mps[i]),
            quality=float(sample.quality[i]),
        )
        for i in order
    )
    return FramePlan(
        poses, tuple(float(distance[i]) for i in order), tuple(chosen[i] for i in order), config.spacing_m
    )
