"""The 0.5 m mesh on the route: per-frame cells placed by chainage, each route cell decided once.

Frames are made from a known crack map of the route (cells of 0.5 m along x 7 across): a frame
at chainage c sees the route cells 2-5 m ahead of it, as ``pavement.road_view`` / ``frame_cells``
would give them (rows at whole 0.5 m steps ahead of the camera, whatever c is)."""

import numpy as np
import pytest

from pavement.crack_mesh import (
    FrameCells,
    FramePlace,
    RouteStretch,
    count_cracks,
    decide_route_cells,
    frame_cells,
    places_by_frame,
    survey_segments,
)
from pavement.crack_ratio import crack_ratio
from pavement.errors import ConfigError
from pavement.segments import Direction

DOWN, UP = Direction.DOWN, Direction.UP
NEAR_M, FAR_M = 2.0, 5.0


def crack_map(n_along: int, ratio_seed: int, share_one=0.15, share_two=0.2) -> np.ndarray:
    """Crack counts (n_along, 7) of a stretch of lane: ~15 % cells with one crack, ~20 % with two+."""
    rng = np.random.default_rng(ratio_seed)
    u = rng.random((n_along, 7))
    return np.where(u < share_two, 2, np.where(u < share_two + share_one, 1, 0))


def frame_from_map(
    index: int, chainage_m: float, counts: np.ndarray, origin_m: float = 0.0, sign: float = 1.0
) -> FrameCells:
    """What a frame at ``chainage_m`` sees of the map anchored at ``origin_m`` (cells 2-5 m ahead)."""
    forward = np.arange(FAR_M - 0.25, NEAR_M, -0.5)  # 4.75 .. 2.25
    along = np.floor((chainage_m + sign * forward - origin_m) / 0.5).astype(int)
    inside = (along >= 0) & (along < len(counts))
    got = np.zeros((len(forward), 7), np.uint8)
    got[inside] = counts[along[inside]]
    seen = np.repeat(inside[:, None], 7, axis=1)
    return FrameCells(index, forward, np.linspace(1.5, -1.5, 7), got, seen)


def survey(frames, chainages, stretch, direction=DOWN):
    places = [FramePlace("3", direction, c) for c in chainages]
    return survey_segments(frames, places, [stretch])[0]


def test_no_frames_no_ratio():
    got = survey([], [], RouteStretch("3", DOWN, 0.0, 100.0))
    assert got.crack_ratio_pct is None and got.coverage_pct == 0.0 and got.confidence == 0.0
    assert got.n_cells == 200 * 7


def test_same_crack_in_five_consecutive_frames_counts_once():
    counts = np.zeros((40, 7), int)
    counts[10, 2:5] = 1  # one transverse crack, 5.0-5.5 m from the segment start, 3 cells
    chainages = [0.7, 1.2, 1.7, 2.2, 2.7]  # every frame sees the crack (2-5 m ahead)
    frames = [frame_from_map(i, c, counts) for i, c in enumerate(chainages)]
    assert all(f.crack_count.sum() == 3 for f in frames)
    cells = decide_route_cells(
        frames, [FramePlace("3", DOWN, c) for c in chainages], [RouteStretch("3", DOWN, 0, 20)]
    )[0]
    assert cells.crack_count.sum() == 3  # not 15
    assert (cells.crack_count > 0).sum() == 3
    # every view saw the same: the mean is that; the cell names its nearest view (the last frame)
    assert cells.damage_m2.sum() == pytest.approx(3 * 0.15) and (cells.views[cells.damage_m2 > 0] == 5).all()
    assert set(cells.frame_index[cells.crack_count > 0]) == {4}
    got = survey(frames, chainages, RouteStretch("3", DOWN, 0, 20))
    assert got.n_cracked == 3
    assert got.damaged_area_m2 == pytest.approx(3 * 0.15)


def test_ties_go_to_the_earlier_frame():
    counts = np.ones((20, 7), int)
    frames = [frame_from_map(0, 1.0, counts), frame_from_map(1, 1.0, counts)]
    cells = decide_route_cells(frames, [FramePlace("3", DOWN, 1.0)] * 2, [RouteStretch("3", DOWN, 0, 10)])[0]
    assert set(cells.frame_index[cells.seen]) == {0}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_halving_the_frame_spacing_changes_the_ratio_by_less_than_2_points(seed):
    counts = crack_map(200, seed)
    truth = crack_ratio(counts).crack_ratio_pct
    rng = np.random.default_rng(seed + 10)
    results = {}
    for spacing in (5.0, 2.5):
        # frames every `spacing` m with a little jitter (the plan follows GPS distance)
        chainages = np.arange(-4.0, 100.0, spacing) + rng.uniform(-0.2, 0.2)
        frames = [frame_from_map(i, c, counts) for i, c in enumerate(chainages)]
        results[spacing] = survey(frames, chainages, RouteStretch("3", DOWN, 0.0, 100.0))
    assert abs(results[5.0].crack_ratio_pct - results[2.5].crack_ratio_pct) < 2.0
    assert abs(results[2.5].crack_ratio_pct - truth) < 1.0  # all cells seen: the map itself
    assert results[2.5].coverage_pct > 95.0
    assert 40.0 < results[5.0].coverage_pct < 65.0  # 3 m of every 5 m are seen


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_segmenter_blind_far_ahead_reads_the_same_at_any_spacing(seed):
    """The segmenter finds cracks only up to 3.5 m ahead (of the 2-5 m each frame maps): the nearest
    view would read the whole map at 1.25 m (every cell's nearest view is within 3.5 m) but miss
    about half of it at 2.5 m; the mean of the views reads the same share at both."""
    counts = crack_map(200, seed)
    rng = np.random.default_rng(seed + 20)
    ratios = {}
    for spacing in (2.5, 1.25):
        chainages = np.arange(-4.0, 100.0, spacing) + rng.uniform(-0.2, 0.2)
        frames = []
        for i, c in enumerate(chainages):
            f = frame_from_map(i, c, counts)
            blind = np.where((f.forward_m > 3.5)[:, None], 0, f.crack_count).astype(np.uint8)
            frames.append(FrameCells(i, f.forward_m, f.lateral_m, blind, f.seen))
        ratios[spacing] = survey(frames, chainages, RouteStretch("3", DOWN, 0.0, 100.0)).crack_ratio_pct
    assert abs(ratios[2.5] - ratios[1.25]) < 1.0
    assert 0.35 < ratios[2.5] / crack_ratio(counts).crack_ratio_pct < 0.65  # views 2-3.5 of 2-5 m


def test_segment_seen_only_half_has_half_coverage():
    counts = crack_map(200, 5)
    chainages = np.arange(-4.0, 48.0, 2.5)  # the car stops seeing the lane after ~50 m
    frames = [frame_from_map(i, c, counts) for i, c in enumerate(chainages)]
    got = survey(frames, chainages, RouteStretch("3", DOWN, 0.0, 100.0))
    assert 47.0 < got.coverage_pct < 53.0
    assert got.n_surveyed == pytest.approx(got.n_cells / 2, rel=0.06)
    assert abs(got.crack_ratio_pct - crack_ratio(counts[:100]).crack_ratio_pct) < 1.0
    full = survey(
        [frame_from_map(i, c, counts) for i, c in enumerate(np.arange(-4.0, 100.0, 2.5))],
        np.arange(-4.0, 100.0, 2.5),
        RouteStretch("3", DOWN, 0.0, 100.0),
    )
    assert got.confidence < 0.6 * full.confidence


def test_up_direction_looks_toward_smaller_chainage():
    counts = crack_map(200, 7)
    # 上り: the car drives from chainage 104 toward 0; the map is anchored at the 起点側 end (0)
    chainages = np.arange(104.0, 0.0, -2.5)
    frames = [frame_from_map(i, c, counts, sign=-1.0) for i, c in enumerate(chainages)]
    got = survey(frames, chainages, RouteStretch("3", UP, 100.0, 0.0), direction=UP)
    assert got.coverage_pct > 95.0
    assert abs(got.crack_ratio_pct - crack_ratio(counts).crack_ratio_pct) < 1.0


def test_frames_of_another_route_or_direction_are_not_placed():
    counts = np.ones((40, 7), int)
    frames = [frame_from_map(0, 5.0, counts)]
    for place in (FramePlace("4", DOWN, 5.0), FramePlace("3", UP, 5.0), None):
        got = survey_segments(frames, [place], [RouteStretch("3", DOWN, 0.0, 20.0)])[0]
        assert got.n_surveyed == 0


def test_cells_fall_into_the_segment_that_holds_them():
    counts = np.ones((40, 7), int)
    frames = [frame_from_map(0, 8.0, counts)]  # sees 10.0-13.0 m
    stretches = [RouteStretch("3", DOWN, 0.0, 11.0), RouteStretch("3", DOWN, 11.0, 20.0)]
    a, b = survey_segments(frames, [FramePlace("3", DOWN, 8.0)], stretches)
    assert a.n_surveyed == 2 * 7 and b.n_surveyed == 4 * 7


def test_rejected_frames_contribute_no_cells():
    view_mask = np.full((600, 700), 255, np.uint8)
    from pavement.camera import CameraIntrinsics, CameraMount, CameraProfile
    from pavement.road_view import road_view

    cam = CameraProfile(CameraIntrinsics.from_fov(1280, 720, 70.0), CameraMount(1.35, 12.0))
    view = road_view(cam)
    mask = np.zeros(view.shape, np.uint8)
    rejected = frame_cells(0, view_mask[: view.shape[0]], view, accepted=False)
    assert not rejected.seen.any() and rejected.crack_count.sum() == 0 and rejected.weight == 0.0
    accepted = frame_cells(0, mask, view)
    # no cells beyond max_distance_m (4 m); the nearest row is cut by the image's bottom edge
    assert accepted.forward_m[0] == pytest.approx(3.75)
    assert accepted.seen[:-1].all() and not accepted.seen[-1].any()


def test_interpolated_places_between_geotagged_frames():
    known = {
        10: FramePlace("3", DOWN, 100.0),
        20: FramePlace("3", DOWN, 110.0),
        40: FramePlace("3", UP, 50.0),
    }
    got = places_by_frame([5, 10, 15, 30, 400], known, max_gap_frames=300)
    assert got[0] is None  # before the first geotagged frame
    assert got[1] == known[10]
    assert got[2].chainage_m == pytest.approx(105.0)
    assert got[3] is None  # between different directions
    assert got[4] is None  # after the last
    assert places_by_frame([15], {10: known[10], 500: FramePlace("3", DOWN, 200.0)}, 300) == [None]


def blank(size=100):
    return np.zeros((size, size), np.uint8)


def with_lines(*segments, width=3):
    import cv2

    m = blank()
    for p0, p1 in segments:
        cv2.line(m, p0, p1, 255, width)
    return m


@pytest.mark.parametrize(
    ("mask", "expected"),
    [
        (blank(), 0),
        (with_lines(((50, 0), (50, 99))), 1),
        (with_lines(((20, 0), (20, 99)), ((80, 0), (80, 99))), 2),
        (with_lines(((50, 0), (50, 0))), 0),  # a corner clip below min_piece_px
        (
            with_lines(
                ((10, 10), (90, 10)), ((90, 10), (90, 90)), ((90, 90), (10, 90)), ((10, 90), (10, 10))
            ),
            2,
        ),
    ],
)
def test_count_cracks(mask, expected):
    assert count_cracks(mask, min_piece_px=12, min_loop_px=200) == expected


@pytest.mark.parametrize(
    ("mask", "expected"),
    [
        (with_lines(((50, 0), (50, 99))), 1),  # straight across the cell
        (with_lines(((30, 0), (36, 50)), ((36, 50), (32, 99))), 1),  # wandering 3 cm
        (with_lines(((5, 95), (95, 5))), 1),  # diagonal
        (with_lines(((50, 0), (50, 50)), ((50, 50), (0, 90)), ((50, 50), (99, 90))), 2),  # a branch (Y)
        (with_lines(((50, 0), (50, 99)), ((0, 50), (99, 50))), 2),  # two cracks crossing
        (with_lines(((0, 20), (60, 20)), ((60, 20), (60, 99))), 2),  # where two cracks of a mesh meet
        (with_lines(((50, 0), (50, 30)), ((51, 40), (51, 70)), ((50, 80), (50, 99))), 1),  # one, broken
        (with_lines(((20, 0), (20, 99)), ((80, 0), (80, 99))), 2),  # two apart
        (with_lines(((50, 0), (50, 99)), width=30), 1),  # a wide one
        (np.full((100, 100), 255, np.uint8), 1),  # all crack pixels: one blob, not a mesh of lines
    ],
)
def test_a_cells_crack_pixels_along_one_line_are_one_crack(mask, expected):
    # the mesh rule counts "two or more cracks" in a cell: one connected piece may be several,
    # and a faint crack detected in collinear pieces is one
    assert count_cracks(mask, min_piece_px=12, max_spread_px=3.0) == expected


def test_occluded_cells_are_not_seen():
    from pavement.camera import CameraIntrinsics, CameraMount, CameraProfile
    from pavement.road_view import road_view

    view = road_view(CameraProfile(CameraIntrinsics.from_fov(1280, 720, 70.0), CameraMount(1.35, 12.0)))
    mask = np.full(view.shape, 255, np.uint8)
    plain = frame_cells(0, mask, view)
    occluded = np.zeros(plain.seen.shape, bool)
    occluded[1, 2:4] = True
    got = frame_cells(0, mask, view, occluded=occluded)
    assert got.seen.sum() == plain.seen.sum() - 2 and not got.seen[1, 2:4].any()
    assert got.crack_count[1, 2:4].sum() == 0
    with pytest.raises(ConfigError):
        frame_cells(0, mask, view, occluded=occluded[:-1])
