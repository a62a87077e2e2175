"""Box geometry for the damage detector: letterbox, YOLO output decoding, NMS, IoU.

Pure numpy. Boxes are ``xyxy`` float arrays of shape (n, 4) in pixels (x1, y1, x2, y2).
The letterbox and decoding follow the ultralytics export convention: the network sees the image
resized to fit ``size x size`` with its aspect ratio kept, padded symmetrically with grey (114),
and its ONNX output is (batch, 4 + n_classes, n_anchors) with boxes as centre x, centre y,
width, height in network pixels and per-class sigmoid scores (no objectness).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pavement.detections import DAMAGE_CLASSES, Detections
from pavement.errors import ConfigError, ModelError

#: Grey the letterbox pads with, as ultralytics trains with it.
PAD_VALUE = 114


@dataclass(frozen=True)
class Letterbox:
    """How one image was fitted into the network input: ``net = image * scale + (pad_x, pad_y)``."""

    scale: float
    pad_x: float
    pad_y: float
    width: int  # original image width in pixels
    height: int  # original image height in pixels

    def to_image(self, xyxy_net: np.ndarray) -> np.ndarray:
        """Map (n, 4) boxes from network pixels back to image pixels, clipped to the image."""
        xyxy = np.asarray(xyxy_net, dtype=np.float32).reshape(-1, 4).copy()
        xyxy[:, [0, 2]] = (xyxy[:, [0, 2]] - self.pad_x) / self.scale
        xyxy[:, [1, 3]] = (xyxy[:, [1, 3]] - self.pad_y) / self.scale
        xyxy[:, [0, 2]] = xyxy[:, [0, 2]].clip(0, self.width)
        xyxy[:, [1, 3]] = xyxy[:, [1, 3]].clip(0, self.height)
        return xyxy


def letterbox_geometry(width: int, height: int, size: int) -> Letterbox:
    """Scale and padding that fit a ``width x height`` image into a ``size x size`` square."""
    if width <= 0 or height <= 0:
        raise ConfigError(f"image size {width}x{height} px is empty; give an image with pixels")
    if size <= 0:
        raise ConfigError(f"network input size {size} px must be positive")
    scale = min(size / width, size / height)
    new_w, new_h = round(width * scale), round(height * scale)
    return Letterbox(scale, (size - new_w) / 2, (size - new_h) / 2, width, height)


def letterbox(image: np.ndarray, size: int) -> tuple[np.ndarray, Letterbox]:
    """Resize a (H, W, C) uint8 image into a padded ``size x size`` square; return it and its geometry."""
    height, width = image.shape[:2]
    geom = letterbox_geometry(width, height, size)
    new_w, new_h = round(width * geom.scale), round(height * geom.scale)
    if (new_w, new_h) != (width, height):
        interp = cv2.INTER_AREA if geom.scale < 1 else cv2.INTER_LINEAR
        image = cv2.resize(image, (new_w, new_h), interpolation=interp)
    # Same rounding as ultralytics' LetterBox so training and inference see identical pixels.
    top, left = round(geom.pad_y - 0.1), round(geom.pad_x - 0.1)
    out = np.full((size, size, image.shape[2]), PAD_VALUE, dtype=np.uint8)
    out[top : top + new_h, left : left + new_w] = image
    return out, Letterbox(geom.scale, float(left), float(top), width, height)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix (n, m) between (n, 4) and (m, 4) xyxy boxes; 0 where a box has no area."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def nms(xyxy: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression; indices of the kept boxes, highest score first."""
    xyxy = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    keep: list[int] = []
    while order.size:
        best = int(order[0])
        keep.append(best)
        if order.size == 1:
            break
        iou = box_iou(xyxy[best : best + 1], xyxy[order[1:]])[0]
        order = order[1:][iou <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def batched_nms(
    xyxy: np.ndarray, scores: np.ndarray, class_id: np.ndarray, iou_threshold: float
) -> np.ndarray:
    """Class-aware NMS: boxes of different classes never suppress each other.

    Shifts each class into its own region of the plane (the torchvision trick) and runs one NMS.
    """
    xyxy = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    if not len(xyxy):
        return np.zeros(0, dtype=np.int64)
    offset = (xyxy.max() + 1.0) * np.asarray(class_id, dtype=np.float64)[:, None]
    return nms(xyxy + offset, scores, iou_threshold)


def decode_yolo(
    output: np.ndarray,
    conf_thresholds: np.ndarray,
    iou_threshold: float = 0.5,
    max_det: int = 300,
    agnostic: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Turn one image's raw YOLO output into boxes in network pixels.

    output: (4 + n_classes, n_anchors), rows cx, cy, w, h then class scores in [0, 1].
    conf_thresholds: (n_classes,) minimum score per class. Each anchor gives at most its best
    class (as the CRDDC evaluation expects one label per box). Returns xyxy (k, 4) float32,
    class_id (k,) int64, confidence (k,) float32, sorted by confidence, after class-aware NMS
    (with ``agnostic``, NMS across classes: one label per damaged area).
    """
    output = np.asarray(output, dtype=np.float32)
    n_classes = output.shape[0] - 4
    thresholds = np.asarray(conf_thresholds, dtype=np.float32).reshape(-1)
    if output.ndim != 2 or n_classes < 1:
        raise ModelError(f"YOLO output of shape {output.shape}; expected (4 + n_classes, n_anchors)")
    if thresholds.size != n_classes:
        raise ConfigError(
            f"{thresholds.size} confidence thresholds for {n_classes} classes; give one per class"
        )
    scores = output[4:]
    class_id = scores.argmax(axis=0)
    confidence = scores[class_id, np.arange(scores.shape[1])]
    keep = confidence >= thresholds[class_id]
    cxcywh, class_id, confidence = output[:4, keep].T, class_id[keep], confidence[keep]
    xyxy = np.concatenate([cxcywh[:, :2] - cxcywh[:, 2:] / 2, cxcywh[:, :2] + cxcywh[:, 2:] / 2], axis=1)
    if agnostic:
        kept = nms(xyxy, confidence, iou_threshold)[:max_det]
    else:
        kept = batched_nms(xyxy, confidence, class_id, iou_threshold)[:max_det]
    return xyxy[kept].astype(np.float32), class_id[kept].astype(np.int64), confidence[kept].astype(np.float32)


def class_thresholds(default: float, per_class: dict[str, float] | None = None) -> np.ndarray:
    """(n_classes,) thresholds in ``DAMAGE_CLASSES`` order: ``default`` unless a class is named.

    ``per_class`` maps class codes ("D00", "D40", "Repair") to a threshold in [0, 1].
    """
    thresholds = np.full(len(DAMAGE_CLASSES), default, dtype=np.float32)
    codes = [c.value for c in DAMAGE_CLASSES]
    for code, value in (per_class or {}).items():
        if code not in codes:
            raise ConfigError(f"unknown damage class {code!r} in thresholds; use one of {codes}")
        thresholds[codes.index(code)] = value
    if ((thresholds < 0) | (thresholds > 1)).any():
        raise ConfigError(f"confidence thresholds {thresholds.tolist()} must lie in [0, 1]")
    return thresholds


def to_detections(
    letterbox_geom: Letterbox, xyxy_net: np.ndarray, class_id: np.ndarray, confidence: np.ndarray
) -> Detections:
    """Detections in the original image's pixels from boxes in network pixels."""
    return Detections(letterbox_geom.to_image(xyxy_net), class_id, confidence)
