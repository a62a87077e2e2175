import cv2
import numpy as np
import pytest

from pavement.errors import ConfigError
from pavement.privacy import (
    PRIVACY_CLASSES,
    MaskConfig,
    PrivacyBoxes,
    PrivacyClass,
    box_coverage,
    box_mask,
    enlarge_boxes,
    mask_regions,
    masked_area,
    merge_boxes,
)

FACE, PLATE = PrivacyClass.FACE, PrivacyClass.PLATE


def _detailed_image(seed: int = 0) -> np.ndarray:
    """A smooth gradient with a 'plate' of sharp digits and a patch of fine noise."""
    rng = np.random.default_rng(seed)
    x = np.linspace(60, 180, 320)
    image = np.repeat(np.repeat(x[None, :, None], 240, axis=0), 3, axis=2).astype(np.uint8)
    cv2.rectangle(image, (100, 100), (180, 140), (240, 240, 240), -1)
    cv2.putText(image, "12-34", (104, 132), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (30, 90, 20), 2)
    image[20:60, 220:280] = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    return image


def _hf_energy(image: np.ndarray) -> float:
    """High-frequency energy: mean squared Laplacian of the grey image."""
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float64)
    return float((cv2.Laplacian(gray, cv2.CV_64F) ** 2).mean())


@pytest.mark.parametrize(
    "box",
    [
        (100, 100, 180, 140),  # the digits
        (220, 20, 280, 60),  # the noise patch
    ],
)
def test_mask_destroys_the_detail_inside_and_keeps_everything_outside(box):
    image = _detailed_image()
    config = MaskConfig()
    out = mask_regions(image, PrivacyBoxes.of(PLATE, [box]), config)
    x1, y1, x2, y2 = box
    before, after = _hf_energy(image[y1:y2, x1:x2]), _hf_energy(out[y1:y2, x1:x2])
    assert after < 0.1 * before  # > 90 % of the high-frequency energy is gone
    changed = (out != image).any(axis=2)
    allowed = masked_area(PrivacyBoxes.of(PLATE, [box]), *image.shape[:2], config)
    assert not (changed & ~allowed).any()  # nothing outside the enlarged box moved
    assert allowed.sum() < 2 * (x2 - x1) * (y2 - y1)  # the enlargement stays modest
    assert out.shape == image.shape and out.dtype == image.dtype
    assert not np.shares_memory(out, image)


def test_mask_of_two_different_numbers_is_nearly_the_same():
    # Irreversible in the sense that matters: what is left does not tell 12-34 from 56-78.
    a, b = _detailed_image(), _detailed_image()
    cv2.rectangle(b, (100, 100), (180, 140), (240, 240, 240), -1)
    cv2.putText(b, "56-78", (104, 132), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (30, 90, 20), 2)
    boxes = PrivacyBoxes.of(PLATE, [(100, 100, 180, 140)])
    raw = np.abs(a[100:140, 100:180].astype(int) - b[100:140, 100:180].astype(int)).mean()
    masked_a, masked_b = mask_regions(a, boxes), mask_regions(b, boxes)
    left = np.abs(masked_a[100:140, 100:180].astype(int) - masked_b[100:140, 100:180].astype(int)).mean()
    assert raw > 10 and left < 0.2 * raw


def test_mask_with_no_boxes_returns_an_equal_copy():
    image = _detailed_image()
    out = mask_regions(image, PrivacyBoxes.empty())
    assert np.array_equal(out, image) and out is not image


def test_mask_of_a_grey_image_and_a_box_at_the_border():
    gray = _detailed_image()[..., 0]
    out = mask_regions(gray, PrivacyBoxes.of(FACE, [(-10, -10, 30, 30)]))
    assert out.shape == gray.shape
    assert (out[50:, 50:] == gray[50:, 50:]).all()


@pytest.mark.parametrize(
    ("xyxy", "expected"),
    [
        (np.zeros((0, 4)), np.zeros((0, 4))),
        ([[100, 100, 200, 150]], [[85, 92.5, 215, 157.5]]),  # 15 % of the width and of the height
        ([[0, 0, 10, 10]], [[0, 0, 12, 12]]),  # at least 2 px; clipped at the image edge
        ([[310, 230, 320, 240]], [[308, 228, 320, 240]]),
    ],
)
def test_enlarge_boxes(xyxy, expected):
    out = enlarge_boxes(np.asarray(xyxy, float), 320, 240, 0.15, 2.0)
    np.testing.assert_allclose(out, np.asarray(expected, float).reshape(-1, 4))


def test_merge_boxes_of_nothing_is_empty():
    assert len(merge_boxes()) == 0
    assert len(merge_boxes(PrivacyBoxes.empty(), PrivacyBoxes.empty())) == 0


def test_merge_boxes_joins_overlaps_of_a_class_across_detectors():
    faces_a = PrivacyBoxes.of(FACE, [(10, 10, 30, 40), (100, 100, 120, 130)], np.array([0.9, 0.4]))
    faces_b = PrivacyBoxes.of(FACE, [(12, 12, 32, 42)], np.array([0.6]))
    plates = PrivacyBoxes.of(PLATE, [(11, 11, 31, 41), (200, 50, 240, 70), (205, 55, 215, 60)])
    merged = merge_boxes(faces_a, faces_b, plates)
    faces, plate = merged.of_class(FACE), merged.of_class(PLATE)
    # The two overlapping faces become their union with the best score; the far one stays.
    np.testing.assert_allclose(faces.xyxy, [[10, 10, 32, 42], [100, 100, 120, 130]])
    np.testing.assert_allclose(faces.confidence, [0.9, 0.4])
    # A plate never merges with a face; a plate box inside another is absorbed.
    np.testing.assert_allclose(plate.xyxy, [[11, 11, 31, 41], [200, 50, 240, 70]])


def test_merge_boxes_follows_chains_and_drops_empty_boxes():
    chain = PrivacyBoxes.of(PLATE, [(0, 0, 10, 10), (5, 0, 15, 10), (10, 0, 20, 10), (50, 50, 50, 60)])
    merged = merge_boxes(chain)
    np.testing.assert_allclose(merged.xyxy, [[0, 0, 20, 10]])


def test_box_coverage_and_mask():
    mask = box_mask(np.array([[0, 0, 10, 20]]), 20, 20)
    assert mask.sum() == 200
    cover = box_coverage(np.array([[0, 0, 20, 20], [0, 0, 5, 5], [30, 30, 40, 40]]), mask)
    np.testing.assert_allclose(cover, [0.5, 1.0, 0.0])


def test_privacy_boxes_check_their_arrays():
    with pytest.raises(ConfigError, match="class_id"):
        PrivacyBoxes(np.zeros((1, 4)), np.array([len(PRIVACY_CLASSES)]), np.ones(1))
    with pytest.raises(ConfigError, match="differ in length"):
        PrivacyBoxes(np.zeros((2, 4)), np.zeros(1), np.ones(1))
    boxes = PrivacyBoxes.of(PLATE, [(0, 0, 1, 1), (1, 1, 2, 2)], np.array([0.2, 0.8]))
    assert boxes[boxes.confidence > 0.5].classes == [PLATE]


@pytest.mark.parametrize("kwargs", [{"cells": 0}, {"cells": 40}, {"margin_frac": -0.1}, {"merge_iou": 0}])
def test_mask_config_refuses_unsafe_values(kwargs):
    with pytest.raises(ConfigError):
        MaskConfig(**kwargs)
