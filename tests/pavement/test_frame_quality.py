"""Frame quality gate on the top view: sharp frames pass, blurred / dark / over-exposed ones are
rejected with the reason."""

import cv2
import numpy as np
import pytest

from pavement.camera import CameraProfile
from pavement.crack_mesh import cell_grid
from pavement.errors import ConfigError
from pavement.frame_quality import (
    FrameQualityConfig,
    RejectReason,
    assess_frame,
    grey_histogram,
    grey_median,
    histogram_median,
    near_rows,
    occluded_cells,
)
from pavement.road_view import road_view, warp_road_view
from tests.road_scenes import camera, render_road


@pytest.fixture(scope="module")
def scene():
    cam = camera()
    frame = render_road(cam, [((3.0, 1.0), (3.0, -1.0), 0.01)], oversample=1)
    # the synthetic texture is faint; real asphalt has stones: add grain fixed to the pixels
    grain = np.random.default_rng(3).normal(0, 8, frame.shape)
    frame = np.clip(frame + grain, 0, 255).astype(np.uint8)
    return road_view(cam), frame


def test_sharp_frame_passes_with_full_weight(scene):
    view, frame = scene
    q = assess_frame(warp_road_view(frame, view), view.valid)
    assert q.accepted and q.reason is None and q.weight == 1.0


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda f: cv2.GaussianBlur(f, (0, 0), 3.0), RejectReason.BLUR),
        (lambda f: (f * 0.2).astype(np.uint8), RejectReason.DARK),
        (lambda f: np.clip(f.astype(float) * 3, 0, 255).astype(np.uint8), RejectReason.OVER_EXPOSED),
        (lambda f: np.full_like(f, 90), RejectReason.BLUR),  # something in front of the lens
    ],
)
def test_bad_frames_are_rejected_with_the_reason(scene, change, reason):
    view, frame = scene
    q = assess_frame(warp_road_view(change(frame), view), view.valid)
    assert q.reason is reason and q.weight == 0.0 and not q.accepted


def test_a_view_mostly_outside_the_frame_has_no_road():
    top = np.full((100, 100), 100, np.uint8)
    road = np.zeros((100, 100), bool)
    road[:10] = True
    assert assess_frame(top, road).reason is RejectReason.NO_ROAD


def test_shapes_and_thresholds_are_checked():
    with pytest.raises(ConfigError):
        assess_frame(np.zeros((10, 10), np.uint8), np.ones((10, 11), bool))
    with pytest.raises(ConfigError):
        FrameQualityConfig(min_sharpness=0.01, sharp_sharpness=0.005)


def test_a_sharp_low_resolution_frame_passes_at_its_own_sampling():
    # At 320x180 a 5 mm top-view pixel is a fraction of a frame pixel: the top view is interpolated
    # and smooth however sharp the frame. Measured back at the frame's sampling it passes; blurred
    # by 2 frame pixels it is still rejected.
    big = camera()
    cam = CameraProfile(big.intrinsics.scaled(320, 180), big.mount)
    frame = render_road(cam, [((3.0, 1.0), (3.0, -1.0), 0.01)])  # 1 cm texture: ~1 frame pixel
    view = road_view(cam)
    h = view.shape[0]
    sampling = view.frame_px_per_view_px(h - near_rows(h) / 2)
    assert sampling[0] < 0.6 and sampling[1] < 0.3
    assert assess_frame(warp_road_view(frame, view), view.valid).reason is RejectReason.BLUR  # upsampled
    assert assess_frame(warp_road_view(frame, view), view.valid, frame_px_per_view_px=sampling).accepted
    blurred = warp_road_view(cv2.GaussianBlur(frame, (0, 0), 2.0), view)
    assert assess_frame(blurred, view.valid, frame_px_per_view_px=sampling).reason is RejectReason.BLUR


def test_an_occluder_in_front_of_part_of_the_road_leaves_its_cells_unseen():
    cam = camera()
    frame = render_road(cam, [((3.0, 1.0), (3.0, -1.0), 0.01)], oversample=1)
    frame = np.clip(frame + np.random.default_rng(5).normal(0, 3, frame.shape), 0, 255).astype(np.uint8)
    view = road_view(cam)
    rows, cols = cell_grid(view)
    top = warp_road_view(frame, view)
    assert not occluded_cells(top, view.valid, rows, cols).any()
    covered = top.copy()
    covered[rows[1] : rows[3], : cols[2]] = 60  # a flat dark body over two columns of two rows
    got = occluded_cells(covered, view.valid, rows, cols)
    expected = np.zeros(got.shape, bool)
    expected[1:3, :2] = True
    assert np.array_equal(got, expected)
    smooth = top.copy()
    smooth[rows[1] : rows[3], : cols[2]] = int(np.median(top[view.valid]))  # flat, but the road's grey
    assert not occluded_cells(smooth, view.valid, rows, cols).any()


@pytest.mark.parametrize("n", [1, 2, 7, 10, 1001])
def test_grey_median_is_the_middle_value(n):
    values = np.random.default_rng(n).integers(0, 256, n).astype(np.uint8)
    assert grey_median(values) == np.sort(values)[(n - 1) // 2]


def test_grey_histogram_counts_only_the_masked_pixels():
    rng = np.random.default_rng(3)
    grey = rng.integers(0, 256, (61, 47)).astype(np.uint8)
    mask = rng.random((61, 47)) < 0.3
    counts = grey_histogram(grey, mask)
    assert np.array_equal(counts, np.bincount(grey[mask], minlength=256))
    assert histogram_median(counts) == grey_median(grey[mask])
    assert grey_histogram(grey).sum() == grey.size
    with pytest.raises(ConfigError, match="no grey values"):
        histogram_median(grey_histogram(grey, np.zeros_like(mask)))
