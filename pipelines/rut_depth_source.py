"""Rut depth's second source: transverse profiles from the phone's depth maps (``RUN/depth/``).

``profiles_from_depth_folder`` reads the folder (``pipelines.depth_io``), measures one profile per
map (``pavement.depth_profile``) and places it on the route: the chainage of the camera at the
map's video time (a function the caller gives, e.g. ``chainage_of_video_time`` over the geotagged
frames) plus the distance to the middle of the measured strip (x_range_m, 4.25 m by default) in
the driving direction. The profiles then go through ``pavement.rut_profile`` (estimate, 20 m
sections, 100 m segments) like the video's.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from pavement.camera import CameraProfile
from pavement.depth_profile import DepthProfileConfig, profile_from_depth
from pavement.rut_profile import TransverseProfile
from pavement.track import FramePose
from pipelines.depth_io import read_depth_folder

logger = logging.getLogger(__name__)

_FRAME_NUMBER = re.compile(r"(\d+)$")


def chainage_of_video_time(frames: Sequence[FramePose]) -> Callable[[float], float | None]:
    """Chainage (m) at a video time (s), interpolated between the geotagged frames placed on a
    route; None before the first or after the last of them, or between two frames placed on
    different routes or directions."""
    placed = sorted((f for f in frames if f.route is not None), key=lambda f: f.t_video_s)
    t = np.array([f.t_video_s for f in placed])
    c = np.array([f.route.chainage_m for f in placed])
    keys = [(f.route.route_no, f.route.direction) for f in placed]

    def chainage(video_time_s: float) -> float | None:
        if len(t) == 0 or not t[0] <= video_time_s <= t[-1]:
            return None
        i = int(np.searchsorted(t, video_time_s))
        if t[i] == video_time_s:
            return float(c[i])
        if keys[i - 1] != keys[i]:
            return None
        return float(np.interp(video_time_s, t[i - 1 : i + 1], c[i - 1 : i + 1]))

    return chainage


def _frame_number(path: Path) -> int:
    """The frame index in a map's file name (depth_000123.png -> 123), or -1."""
    m = _FRAME_NUMBER.search(path.stem)
    return int(m[1]) if m else -1


def profiles_from_depth_folder(
    run_dir_or_depth_dir: Path,
    camera_profile: CameraProfile,
    frame_chainage: Callable[[float], float | None],
    *,
    lane_width_m: float = 3.5,
    x_range_m: tuple[float, float] = (2.5, 6.0),
    step_m: float = 0.05,
    config: DepthProfileConfig | None = None,
) -> list[TransverseProfile]:
    """One ``TransverseProfile`` (source "depth") per depth map that lies on the route and shows
    enough road, in the folder's order.

    ``camera_profile``: the nominal mount (camera.json), which seeds each map's road plane (the
    depth sensor's own intrinsics come from the folder's intrinsics.json); ``frame_chainage``: video
    time (s) -> the camera's chainage (m), None where the run is off the route (that map is
    skipped). A profile's ``chainage_m`` is where its strip lies, ``mean(x_range_m)`` ahead of the
    camera in the driving direction (taken from ``frame_chainage`` 1 s either side, else from the
    first and last maps); its ``frame_index`` is the number in the map's file name (or -1)."""
    config = config or DepthProfileConfig()
    series = read_depth_folder(Path(run_dir_or_depth_dir))
    placed = [
        (i, c) for i, t in enumerate(series.video_time_s) if (c := frame_chainage(float(t))) is not None
    ]
    overall = float(np.sign(placed[-1][1] - placed[0][1])) if len(placed) >= 2 else 0.0
    ahead_m = (x_range_m[0] + x_range_m[1]) / 2
    out: list[TransverseProfile] = []
    skipped = len(series) - len(placed)
    for i, camera_chainage in placed:
        t = float(series.video_time_s[i])
        before, after = frame_chainage(t - 1.0), frame_chainage(t + 1.0)
        sign = overall
        if before is not None and after is not None and abs(after - before) > 0.1:
            sign = math.copysign(1.0, after - before)
        profile = profile_from_depth(
            series.load(i),
            series.intrinsics,
            camera_profile.mount,
            lane_width_m=lane_width_m,
            x_range_m=x_range_m,
            step_m=step_m,
            config=config,
            chainage_m=camera_chainage + sign * ahead_m,
            frame_index=_frame_number(series.files[i]),
        )
        if profile is None:
            skipped += 1
            logger.info("depth map %s shows too little road for a profile", series.files[i].name)
            continue
        out.append(profile)
    logger.info("%d profiles from %d depth maps (%d skipped)", len(out), len(series), skipped)
    return out
