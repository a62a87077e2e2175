"""Privacy masking of faces and licence plates: boxes from several detectors -> one irreversible mask.

Pure numpy / array-level OpenCV. Boxes are ``xyxy`` float arrays (n, 4) in pixels of the image.
Every image the project stores or exports (album frames, detection evidence) passes through
``mask_regions`` first: each box is enlarged a little (detectors cut faces at the chin and plates
at the characters), then its pixels are replaced by a coarse mosaic of at most
``MaskConfig.cells`` cells along its longer side, smoothed. A mosaic of a few cells keeps no
character or facial detail to recover; a plain Gaussian blur of a known kernel can be partly
inverted by deconvolution, a mosaic cannot (the averaging throws the detail away).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import cv2
import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from pavement.boxes import box_iou
from pavement.errors import ConfigError


class PrivacyClass(StrEnum):
    FACE = "face"
    PLATE = "plate"  # licence plate (ナンバープレート)


#: Index -> class, as stored in ``PrivacyBoxes.class_id``.
PRIVACY_CLASSES: tuple[PrivacyClass, ...] = tuple(PrivacyClass)


@dataclass(frozen=True)
class PrivacyBoxes:
    """Regions to mask in one image, in its pixels.

    xyxy: (n, 4) float32 x1 y1 x2 y2; class_id: (n,) int64 index into ``PRIVACY_CLASSES``;
    confidence: (n,) float32 in [0, 1]. Index like ``Detections``: ``boxes[boxes.confidence > 0.5]``.
    """

    xyxy: np.ndarray
    class_id: np.ndarray
    confidence: np.ndarray

    def __post_init__(self) -> None:
        xyxy = np.asarray(self.xyxy, dtype=np.float32).reshape(-1, 4)
        class_id = np.asarray(self.class_id, dtype=np.int64).reshape(-1)
        confidence = np.asarray(self.confidence, dtype=np.float32).reshape(-1)
        if not (len(xyxy) == len(class_id) == len(confidence)):
            raise ConfigError(
                f"PrivacyBoxes arrays differ in length: xyxy {len(xyxy)}, class_id {len(class_id)}, "
                f"confidence {len(confidence)}; give one row per box"
            )
        if len(class_id) and (class_id.min() < 0 or class_id.max() >= len(PRIVACY_CLASSES)):
            raise ConfigError(f"class_id outside 0..{len(PRIVACY_CLASSES) - 1}: {sorted(set(class_id))}")
        object.__setattr__(self, "xyxy", xyxy)
        object.__setattr__(self, "class_id", class_id)
        object.__setattr__(self, "confidence", confidence)

    @classmethod
    def empty(cls) -> PrivacyBoxes:
        return cls(np.zeros((0, 4)), np.zeros(0), np.zeros(0))

    @classmethod
    def of(cls, kind: PrivacyClass, xyxy: np.ndarray, confidence: np.ndarray | None = None) -> PrivacyBoxes:
        """Boxes of one class; confidence 1 where not given."""
        xyxy = np.asarray(xyxy, dtype=np.float32).reshape(-1, 4)
        conf = np.ones(len(xyxy)) if confidence is None else confidence
        return cls(xyxy, np.full(len(xyxy), PRIVACY_CLASSES.index(kind)), conf)

    def __len__(self) -> int:
        return len(self.class_id)

    def __getitem__(self, index: np.ndarray | slice | int) -> PrivacyBoxes:
        if isinstance(index, int):
            index = slice(index, index + 1)
        return PrivacyBoxes(self.xyxy[index], self.class_id[index], self.confidence[index])

    @property
    def classes(self) -> list[PrivacyClass]:
        return [PRIVACY_CLASSES[i] for i in self.class_id]

    def of_class(self, kind: PrivacyClass) -> PrivacyBoxes:
        return self[self.class_id == PRIVACY_CLASSES.index(kind)]


@dataclass(frozen=True)
class MaskConfig:
    """How boxes become masked pixels."""

    # Each side grows by this share of the box's size, and by at least ``min_margin_px``: face
    # detectors stop at the chin and the hairline, plate boxes can miss the outer characters by a pixel.
    margin_frac: float = 0.15
    min_margin_px: float = 2.0
    # Mosaic cells along the box's longer side. 4 leaves a 2:1 plate 4 x 2 averages: no digit survives.
    cells: int = 4
    # Overlap above which two boxes of a class are merged into their union (before masking).
    merge_iou: float = 0.3

    def __post_init__(self) -> None:
        if self.margin_frac < 0 or self.min_margin_px < 0:
            raise ConfigError(
                f"margin_frac {self.margin_frac} and min_margin_px {self.min_margin_px} must be >= 0"
            )
        if not 1 <= self.cells <= 16:
            raise ConfigError(f"cells {self.cells} must lie in 1..16; more cells keep readable detail")
        if not 0 < self.merge_iou <= 1:
            raise ConfigError(f"merge_iou {self.merge_iou} must lie in (0, 1]")


def enlarge_boxes(
    xyxy: np.ndarray, width: int, height: int, margin_frac: float, min_margin_px: float = 0.0
) -> np.ndarray:
    """(n, 4) boxes grown on each side by ``max(margin_frac * side, min_margin_px)``, clipped to the image."""
    xyxy = np.asarray(xyxy, dtype=np.float32).reshape(-1, 4).copy()
    wh = xyxy[:, 2:] - xyxy[:, :2]
    grow = np.maximum(wh * margin_frac, min_margin_px)
    xyxy[:, :2] -= grow
    xyxy[:, 2:] += grow
    xyxy[:, [0, 2]] = xyxy[:, [0, 2]].clip(0, width)
    xyxy[:, [1, 3]] = xyxy[:, [1, 3]].clip(0, height)
    return xyxy


def _overlap_of_smaller(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, m) intersection over the smaller box's area: 1 where one box lies inside the other."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    smaller = np.minimum(area_a[:, None], area_b[None, :])
    return np.divide(inter, smaller, out=np.zeros_like(inter), where=smaller > 0)


def merge_boxes(*groups: PrivacyBoxes, iou: float = 0.3) -> PrivacyBoxes:
    """Boxes from several detectors as one set: overlapping boxes of a class become their union.

    Two boxes of the same class are joined when their IoU exceeds ``iou`` or one lies mostly (> 70 %)
    inside the other, transitively (a chain of overlaps becomes one box); the merged box keeps the
    highest confidence. Boxes of different classes are never merged. Empty boxes are dropped.
    Returns boxes sorted by class, then confidence (highest first).
    """
    if not 0 < iou <= 1:
        raise ConfigError(f"merge iou {iou} must lie in (0, 1]")
    groups = tuple(g for g in groups if len(g))
    if not groups:
        return PrivacyBoxes.empty()
    xyxy = np.concatenate([g.xyxy for g in groups]).astype(np.float64)
    class_id = np.concatenate([g.class_id for g in groups])
    confidence = np.concatenate([g.confidence for g in groups])
    valid = (xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1])
    xyxy, class_id, confidence = xyxy[valid], class_id[valid], confidence[valid]
    out_xyxy, out_cls, out_conf = [], [], []
    for cls in np.unique(class_id):
        boxes, conf = xyxy[class_id == cls], confidence[class_id == cls]
        linked = (box_iou(boxes, boxes) > iou) | (_overlap_of_smaller(boxes, boxes) > 0.7)
        _, labels = connected_components(csr_matrix(linked), directed=False)
        for label in np.unique(labels):
            members = labels == label
            out_xyxy.append([*boxes[members, :2].min(axis=0), *boxes[members, 2:].max(axis=0)])
            out_cls.append(cls)
            out_conf.append(conf[members].max())
    merged = PrivacyBoxes(np.asarray(out_xyxy), np.asarray(out_cls), np.asarray(out_conf))
    order = np.lexsort((-merged.confidence, merged.class_id))
    return merged[order]


def mask_regions(image: np.ndarray, boxes: PrivacyBoxes, config: MaskConfig = MaskConfig()) -> np.ndarray:
    """A new image with every box (enlarged by the config's margin) replaced by a smoothed mosaic.

    image: (H, W, 3) or (H, W) uint8. Pixels outside the enlarged boxes are unchanged; the input is
    not modified.
    """
    image = np.asarray(image)
    if image.ndim not in (2, 3) or image.dtype != np.uint8:
        raise ConfigError(f"image of shape {image.shape} {image.dtype}; give (H, W[, C]) uint8")
    out = image.copy()
    height, width = image.shape[:2]
    merged = merge_boxes(boxes, iou=config.merge_iou)
    grown = enlarge_boxes(merged.xyxy, width, height, config.margin_frac, config.min_margin_px)
    for x1, y1, x2, y2 in grown:
        x1, y1 = int(np.floor(x1)), int(np.floor(y1))
        x2, y2 = int(np.ceil(x2)), int(np.ceil(y2))
        if x2 <= x1 or y2 <= y1:
            continue
        out[y1:y2, x1:x2] = _mosaic(out[y1:y2, x1:x2], config.cells)
    return out


def _mosaic(region: np.ndarray, cells: int) -> np.ndarray:
    """``region`` averaged down to at most ``cells`` cells along its longer side, then smoothed back up."""
    h, w = region.shape[:2]
    cell = max(h, w) / cells
    small_w, small_h = max(1, round(w / cell)), max(1, round(h / cell))
    small = cv2.resize(region, (small_w, small_h), interpolation=cv2.INTER_AREA)
    # Bilinear up-sampling of the few cell means: no block edges to draw the eye, no detail either.
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR).reshape(region.shape)


def box_mask(xyxy: np.ndarray, height: int, width: int) -> np.ndarray:
    """(H, W) bool mask of the union of (n, 4) boxes (pixel centres inside a box)."""
    mask = np.zeros((height, width), dtype=bool)
    for x1, y1, x2, y2 in np.asarray(xyxy, dtype=np.float64).reshape(-1, 4):
        c1, r1 = max(0, int(np.ceil(x1 - 0.5))), max(0, int(np.ceil(y1 - 0.5)))
        c2, r2 = min(width, int(np.ceil(x2 - 0.5))), min(height, int(np.ceil(y2 - 0.5)))
        if c2 > c1 and r2 > r1:
            mask[r1:r2, c1:c2] = True
    return mask


def masked_area(
    boxes: PrivacyBoxes, height: int, width: int, config: MaskConfig = MaskConfig()
) -> np.ndarray:
    """(H, W) bool mask of the pixels ``mask_regions`` replaces for these boxes."""
    merged = merge_boxes(boxes, iou=config.merge_iou)
    grown = enlarge_boxes(merged.xyxy, width, height, config.margin_frac, config.min_margin_px)
    # mask_regions masks whole pixels from floor(x1) to ceil(x2).
    return box_mask(np.concatenate([np.floor(grown[:, :2]), np.ceil(grown[:, 2:])], axis=1), height, width)


def box_coverage(xyxy: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(n,) share in [0, 1] of each box's pixels that ``mask`` (H, W) covers; 0 for a box with no pixels."""
    height, width = mask.shape
    cover = np.zeros(len(np.asarray(xyxy).reshape(-1, 4)))
    for i, box in enumerate(np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)):
        inside = box_mask(box[None], height, width)
        n = inside.sum()
        cover[i] = mask[inside].sum() / n if n else 0.0
    return cover
