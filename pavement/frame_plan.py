"""Frame plan: which video frames to analyse, chosen by distance travelled.

One frame every ``spacing_m`` of travel, none while the car stands, plus a short
burst of consecutive frames every ``burst_every_m`` (20 m): rut depth is measured per 20 m cross
profile (MLIT 舗装点検要領), from the parallax between consecutive frames.

The spacing trades coverage for time. The crack mesh decides cells 2-4 m ahead of each frame
(``pavement.crack_mesh.CrackMeshConfig.max_distance_m``): every 5 m (the default) surveys ~40 % of
the lane's 0.5 m cells, in strips (the ratio is over the cells seen, and says its coverage); every
2 m 75-99 %, depending on how the frames fall (``--spacing-m 2``). On the 2 km 1080p bench run,
2 m took 2.59 x the decode-only time against 2.3 at 5 m and a limit of 2.5 (issue 7), so 5 m stays
the default (eval/results/crack_ratio*.md for the accuracy at both).
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
    return _build(chosen, t_video_s, t_unix_s, sample, distance, config)


def plan_from_selection(
    selection: dict[int, int],
    t_video_s: np.ndarray,
    t_unix_s: np.ndarray,
    sample: TrackSample,
    distance_m: np.ndarray,
    config: FramePlanConfig = FramePlanConfig(),
) -> FramePlan:
    """The plan of frames chosen beforehand (frame index -> burst id, e.g. by ``OdometryPlanner``
    while the video streamed), placed on the track. The same rules as ``plan_frames`` drop what
    the track cannot place: frames outside its coverage, and spaced frames while standing."""
    covered = np.asarray(sample.covered, dtype=bool)
    moving = covered & (np.asarray(sample.speed_mps) >= config.min_speed_mps)
    chosen = {
        i: b
        for i, b in selection.items()
        if 0 <= i < len(t_video_s) and (moving[i] if b == NO_BURST else covered[i])
    }
    return _build(chosen, t_video_s, t_unix_s, sample, np.asarray(distance_m, dtype=float), config)


def _build(
    chosen: dict[int, int],
    t_video_s: np.ndarray,
    t_unix_s: np.ndarray,
    sample: TrackSample,
    distance: np.ndarray,
    config: FramePlanConfig,
) -> FramePlan:
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


class OdometryPlanner:
    """Chooses frames while the video streams, by the distance the video itself measures (the
    road-plane flow), so that each frame is decoded once and analysed at once: the first frame at
    or past every ``spacing_m`` mark, and ``burst_frames`` consecutive frames from every
    ``burst_every_m`` mark. The GPS places the chosen frames afterwards (``plan_from_selection``).

    Where the flow finds no match the last measured speed is carried for ``hold_s``; after that the
    car is taken to move at ``fallback_speed_mps`` (frames by time: the track later drops those
    taken while standing)."""

    def __init__(
        self,
        config: FramePlanConfig = FramePlanConfig(),
        hold_s: float = 2.0,
        fallback_speed_mps: float = 8.0,
    ) -> None:
        self.config = config
        self.hold_s = hold_s
        self.fallback_speed_mps = fallback_speed_mps
        self.distance_m = 0.0
        self.selection: dict[int, int] = {}
        self._index = -1
        self._t: float | None = None
        self._speed = (float("-inf"), fallback_speed_mps)  # (time measured, m/s)
        self._next_mark = 0.0
        self._next_burst = 0.0
        self._burst = NO_BURST
        self._burst_left = 0
        self._n_bursts = 0
        self.spaced = False  # the last frame pushed was chosen by spacing (a burst may include it)

    def push(self, t_s: float, step_m: float | None) -> int | None:
        """One frame, in order, with the road travelled since the previous frame (None: not
        measured). Returns None when the frame is not chosen, else its burst id (``NO_BURST`` for
        a frame chosen by spacing only)."""
        self._index += 1
        dt = 0.0 if self._t is None else t_s - self._t
        self._t = t_s
        if step_m is not None and dt > 0:
            self._speed = (t_s, max(step_m, 0.0) / dt)
        elif step_m is None and t_s - self._speed[0] > self.hold_s:
            self._speed = (self._speed[0], self.fallback_speed_mps)
        step = max(step_m, 0.0) if step_m is not None else self._speed[1] * dt
        self.distance_m += step
        moving = self._speed[1] >= self.config.min_speed_mps
        chosen: int | None = None
        self.spaced = False
        if self._burst_left > 0:
            chosen, self._burst_left = self._burst, self._burst_left - 1
        if moving and self.distance_m >= self._next_mark:
            chosen = NO_BURST if chosen is None else chosen
            self.spaced = True
            self._next_mark = (self.distance_m // self.config.spacing_m + 1) * self.config.spacing_m
        if moving and self.config.burst_every_m > 0 and self.distance_m >= self._next_burst:
            chosen, self._burst_left = self._n_bursts, self.config.burst_frames - 1
            self._burst = self._n_bursts
            self._n_bursts += 1
            self._next_burst = (self.distance_m // self.config.burst_every_m + 1) * self.config.burst_every_m
        if chosen is not None:
            self.selection[self._index] = chosen
        return chosen
