"""Hand-made routes and scenes with known geometry for the synthetic-run tests."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from pavement.segments import Direction
from pavement.synthetic.route import KilometerPost, Route
from pavement.synthetic.scene import (
    Crack,
    Lane,
    Patch,
    Pothole,
    RoadLayout,
    Roughness,
    RutField,
    Scene,
    Sun,
    lane_for,
)

ORIGIN_X, ORIGIN_Y = -30000.0, 80000.0  # plane metres, somewhere in zone X


def straight_route(length_m: float = 1200.0, s0_m: float = 11950.0, heading_rad: float = 0.3) -> Route:
    """A straight centreline from chainage ``s0_m`` with posts 12 and 13 at 12000 m and 13000 m."""
    step = 0.25
    n = int(length_m / step) + 1
    d = np.arange(n) * step
    return Route(
        "3",
        "test road",
        "B",
        6678,
        s0_m,
        step,
        ORIGIN_X + np.cos(heading_rad) * d,
        ORIGIN_Y + np.sin(heading_rad) * d,
        np.full(n, heading_rad),
        np.zeros(n),
        (KilometerPost(12, 12000.0), KilometerPost(13, 13000.0)),
    )


def flat_scene(
    route: Route,
    *,
    direction: Direction = Direction.DOWN,
    rut_mm: float = 0.0,
    crossfall: float = 0.0,
    cracks: tuple[Crack, ...] = (),
    potholes: tuple[Pothole, ...] = (),
    patches: tuple[Patch, ...] = (),
    seed: int = 0,
) -> Scene:
    """No roughness, no roadside objects; ruts of ``rut_mm`` in both wheel paths of both lanes."""
    layout = replace(RoadLayout(), crossfall=crossfall)
    lane = lane_for(direction, layout)
    other = Lane(-lane.sign, lane.width_m, lane.wheel_offset_m)
    centres = np.array(
        [*lane.t_of_u(np.array(lane.wheel_paths_u)), *other.t_of_u(np.array(other.wheel_paths_u))]
    )
    knots = np.array([route.s0_m, route.s_end_m])
    ruts = RutField(knots, np.full((2, 4), rut_mm), centres)
    n = int((route.s_end_m - route.s0_m) / 0.05) + 1
    t_l, t_r = (float(v) for v in lane.t_of_u(np.array(lane.wheel_paths_u)))
    rough = Roughness(route.s0_m, 0.05, np.zeros(n), np.zeros(n), t_l, t_r, np.zeros(n))
    return Scene(
        seed,
        route,
        layout,
        lane,
        cracks,
        potholes,
        patches,
        ruts,
        rough,
        (),
        (),
        Sun(180.0, 45.0),
        (),
        np.array([route.s0_m, route.s_end_m]),
        np.array([1.0, 1.0]),
    )
