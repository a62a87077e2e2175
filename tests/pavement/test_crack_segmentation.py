import cv2
import numpy as np
import pytest

from pavement.crack_segmentation import PixelScores, segment_cracks, tolerant_pixel_scores
from pavement.errors import ConfigError


def test_empty_masks_score_zero_not_nan():
    s = tolerant_pixel_scores(np.zeros((10, 10)), np.zeros((10, 10)))
    assert (s.precision, s.recall, s.f1) == (0.0, 0.0, 0.0)


@pytest.mark.parametrize(("shift", "inside"), [(0, True), (2, True), (3, False)])
def test_tolerance_of_two_pixels(shift, inside):
    truth = np.zeros((50, 50), bool)
    truth[:, 20] = True
    pred = np.zeros_like(truth)
    pred[:, 20 + shift] = True
    s = tolerant_pixel_scores(pred, truth, 2.0)
    assert s.precision == (1.0 if inside else 0.0)
    assert s.recall == (1.0 if inside else 0.0)


def test_scores_are_summed_over_pixels_not_averaged_over_images():
    a = PixelScores(10, 10, 5, 10)
    b = PixelScores(0, 90, 0, 90)
    total = a + b
    assert total.precision == pytest.approx(0.1) and total.recall == pytest.approx(0.05)


def test_shape_mismatch_is_refused():
    with pytest.raises(ConfigError):
        tolerant_pixel_scores(np.zeros((4, 4)), np.zeros((4, 5)))


def test_a_dark_line_on_grainy_asphalt_is_found():
    rng = np.random.default_rng(0)
    image = np.clip(rng.normal(120, 12, (240, 320)), 0, 255).astype(np.uint8)
    truth = np.zeros_like(image)
    cv2.polylines(truth, [np.array([[20, 30], [150, 120], [300, 200]], np.int32)], False, 255, 3)
    image[truth > 0] = 50
    s = tolerant_pixel_scores(segment_cracks(image), truth)
    assert s.recall > 0.8
    assert s.precision > 0.6
