"""Letterbox geometry, YOLO decoding, NMS and IoU on hand-made boxes with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from pavement.boxes import (
    PAD_VALUE,
    batched_nms,
    box_iou,
    class_thresholds,
    decode_yolo,
    letterbox,
    letterbox_geometry,
    nms,
)
from pavement.detections import DAMAGE_CLASSES
from pavement.errors import ConfigError, ModelError

N_CLASSES = len(DAMAGE_CLASSES)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ([[0, 0, 0, 0]], [[0, 0, 10, 10]], 0.0),  # degenerate box first
        ([[0, 0, 10, 10]], [[0, 0, 10, 10]], 1.0),
        ([[0, 0, 10, 10]], [[5, 0, 15, 10]], 50 / 150),
        ([[0, 0, 10, 10]], [[20, 20, 30, 30]], 0.0),
    ],
)
def test_box_iou(a, b, expected):
    assert box_iou(a, b)[0, 0] == pytest.approx(expected)


def test_box_iou_shape_with_empty_side():
    assert box_iou(np.zeros((0, 4)), np.ones((3, 4))).shape == (0, 3)


@pytest.mark.parametrize(
    ("width", "height", "size", "scale", "pad_x", "pad_y"),
    [
        (512, 512, 416, 416 / 512, 0, 0),
        (1920, 1080, 416, 416 / 1920, 0, (416 - 234) / 2),
        (100, 200, 64, 0.32, 16, 0),
    ],
)
def test_letterbox_geometry(width, height, size, scale, pad_x, pad_y):
    geom = letterbox_geometry(width, height, size)
    assert geom.scale == pytest.approx(scale)
    assert geom.pad_x == pytest.approx(pad_x)
    assert geom.pad_y == pytest.approx(pad_y)


def test_letterbox_geometry_refuses_empty_image():
    with pytest.raises(ConfigError, match="empty"):
        letterbox_geometry(0, 10, 416)


def test_letterbox_pads_grey_and_round_trips_boxes():
    image = np.zeros((108, 192, 3), dtype=np.uint8)
    image[50:60, 100:120] = 255  # a white patch at known pixels
    out, geom = letterbox(image, 96)
    assert out.shape == (96, 96, 3)
    assert out[0, 0, 0] == PAD_VALUE and out[-1, -1, 0] == PAD_VALUE
    net_box = np.array([[100, 50, 120, 60]]) * geom.scale + [geom.pad_x, geom.pad_y, geom.pad_x, geom.pad_y]
    back = geom.to_image(net_box)
    np.testing.assert_allclose(back, [[100, 50, 120, 60]], atol=1.0)
    # the patch lands where the geometry says it does
    x1, y1, x2, y2 = net_box[0].round().astype(int)
    assert out[y1 + 1 : y2 - 1, x1 + 1 : x2 - 1].mean() > 200


def test_to_image_clips_to_the_image():
    geom = letterbox_geometry(100, 50, 100)
    assert geom.to_image([[-10, -10, 200, 200]]).tolist() == [[0, 0, 100, 50]]


def test_nms_keeps_best_of_overlapping_and_separate_boxes():
    boxes = [[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]]
    assert nms(boxes, [0.9, 0.8, 0.7], 0.5).tolist() == [0, 2]
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.5).tolist() == []


def test_batched_nms_does_not_suppress_across_classes():
    boxes = [[0, 0, 10, 10], [1, 1, 10, 10]]
    assert sorted(batched_nms(boxes, [0.9, 0.8], [0, 1], 0.5).tolist()) == [0, 1]
    assert batched_nms(boxes, [0.9, 0.8], [2, 2], 0.5).tolist() == [0]


def _raw(boxes_cxcywh, class_scores, n_anchors=10):
    """A (4 + n_classes, n_anchors) output with the given anchors first, the rest zero."""
    out = np.zeros((4 + N_CLASSES, n_anchors), dtype=np.float32)
    for i, (box, scores) in enumerate(zip(boxes_cxcywh, class_scores, strict=True)):
        out[:4, i] = box
        out[4:, i] = scores
    return out


def test_decode_yolo_empty_output_first():
    xyxy, cls, conf = decode_yolo(_raw([], []), class_thresholds(0.25))
    assert xyxy.shape == (0, 4) and len(cls) == 0 and len(conf) == 0


def test_decode_yolo_boxes_classes_thresholds_and_nms():
    raw = _raw(
        [(50, 50, 20, 10), (51, 50, 20, 10), (10, 10, 4, 4), (80, 80, 10, 10)],
        [(0.9, 0, 0, 0, 0), (0.6, 0, 0, 0, 0), (0, 0, 0, 0.3, 0), (0, 0.2, 0, 0, 0)],
    )
    xyxy, cls, conf = decode_yolo(raw, class_thresholds(0.25), iou_threshold=0.5)
    # anchor 1 is suppressed by anchor 0, anchor 3 is under the threshold
    assert cls.tolist() == [0, 3]
    np.testing.assert_allclose(conf, [0.9, 0.3], rtol=1e-6)
    np.testing.assert_allclose(xyxy[0], [40, 45, 60, 55])
    # a per-class threshold drops the pothole
    _, cls, _ = decode_yolo(raw, class_thresholds(0.25, {"D40": 0.5}))
    assert cls.tolist() == [0]


def test_decode_yolo_takes_the_best_class_of_an_anchor():
    raw = _raw([(50, 50, 20, 10)], [(0.4, 0.7, 0, 0, 0)])
    _, cls, conf = decode_yolo(raw, class_thresholds(0.25))
    assert cls.tolist() == [1] and conf[0] == pytest.approx(0.7)


def test_decode_yolo_refuses_wrong_shapes():
    with pytest.raises(ModelError):
        decode_yolo(np.zeros((3, 10)), class_thresholds(0.25))
    with pytest.raises(ConfigError):
        decode_yolo(np.zeros((4 + N_CLASSES, 10)), np.array([0.25, 0.25]))


def test_class_thresholds_names_and_ranges():
    t = class_thresholds(0.3, {"Repair": 0.5})
    assert t.tolist() == pytest.approx([0.3, 0.3, 0.3, 0.3, 0.5])
    with pytest.raises(ConfigError, match="unknown damage class"):
        class_thresholds(0.3, {"D99": 0.1})
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        class_thresholds(1.5)


def test_decode_yolo_agnostic_nms_keeps_one_label_per_area():
    raw = _raw([(50, 50, 20, 10), (50, 50, 20, 10)], [(0.9, 0, 0, 0, 0), (0, 0.6, 0, 0, 0)])
    _, cls, _ = decode_yolo(raw, class_thresholds(0.25))
    assert cls.tolist() == [0, 1]
    _, cls, _ = decode_yolo(raw, class_thresholds(0.25), agnostic=True)
    assert cls.tolist() == [0]
