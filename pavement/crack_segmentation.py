"""Crack pixel masks from road images, and the tolerant pixel metric they are judged by.

The segmenter is classical (no learned weights): cracks are thin, dark structures on a textured
surface. A morphological black-hat (closing minus image) enhances dark structures narrower than
its element; the response is thresholded with hysteresis (seeds above a high percentile grown
through pixels above a low one), and small components (asphalt grain) are dropped. The element
size must match the crack width in pixels, so it depends on the image scale: see
``eval/crack_segmentation.py`` for the settings per data set and their scores.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pavement.errors import ConfigError


@dataclass(frozen=True)
class CrackSegmenterConfig:
    """Parameters of the classical segmenter, in pixels of the image it is given."""

    blackhat_px: int = 17  # closing element: cracks up to about half this wide are enhanced
    blur_px: int = 3  # pre-smoothing against JPEG noise and asphalt grain
    high_percentile: float = 98.5  # seeds: response above this percentile of the image
    low_percentile: float = 95.0  # grown through connected response above this one
    min_component_px: int = 60  # smaller components are grain, not cracks


@dataclass(frozen=True)
class PixelScores:
    """Tolerant pixel counts; sum them over a data set before taking ratios."""

    true_pred_px: int  # predicted crack pixels within tolerance of a true one
    pred_px: int
    matched_truth_px: int  # true crack pixels within tolerance of a predicted one
    truth_px: int

    def __add__(self, other: PixelScores) -> PixelScores:
        return PixelScores(
            self.true_pred_px + other.true_pred_px,
            self.pred_px + other.pred_px,
            self.matched_truth_px + other.matched_truth_px,
            self.truth_px + other.truth_px,
        )

    @property
    def precision(self) -> float:
        return self.true_pred_px / self.pred_px if self.pred_px else 0.0

    @property
    def recall(self) -> float:
        return self.matched_truth_px / self.truth_px if self.truth_px else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def tolerant_pixel_scores(pred: np.ndarray, truth: np.ndarray, tolerance_px: float = 2.0) -> PixelScores:
    """Precision counts predicted pixels within ``tolerance_px`` of a true crack pixel; recall
    counts true pixels within ``tolerance_px`` of a predicted one. Masks: (H, W), nonzero = crack."""
    pred = np.asarray(pred) > 0
    truth = np.asarray(truth) > 0
    if pred.shape != truth.shape:
        raise ConfigError(f"mask shapes differ: prediction {pred.shape}, truth {truth.shape}")

    def distance_to(mask: np.ndarray) -> np.ndarray:
        if not mask.any():
            return np.full(mask.shape, np.inf, np.float32)
        return cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)

    return PixelScores(
        true_pred_px=int((distance_to(truth)[pred] <= tolerance_px).sum()),
        pred_px=int(pred.sum()),
        matched_truth_px=int((distance_to(pred)[truth] <= tolerance_px).sum()),
        truth_px=int(truth.sum()),
    )


def crack_response(gray: np.ndarray, config: CrackSegmenterConfig = CrackSegmenterConfig()) -> np.ndarray:
    """Dark-thin-structure response (float32, (H, W)), larger = more crack-like."""
    g = cv2.GaussianBlur(gray, (config.blur_px, config.blur_px), 0) if config.blur_px > 1 else gray
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (config.blackhat_px, config.blackhat_px))
    # closing - image is exact in the image's own type (uint8 morphology is several times faster)
    return cv2.morphologyEx(g, cv2.MORPH_BLACKHAT, kernel).astype(np.float32)


def segment_cracks(image: np.ndarray, config: CrackSegmenterConfig = CrackSegmenterConfig()) -> np.ndarray:
    """Crack mask (H, W) uint8, 0 = background, 255 = crack, from a BGR or gray uint8 image."""
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if image.ndim != 2 or image.size == 0:
        raise ConfigError(f"expected an (H, W) or (H, W, 3) image, got shape {image.shape}")
    response = crack_response(image, config)
    high = response >= np.percentile(response, config.high_percentile)
    low = response >= np.percentile(response, config.low_percentile)
    # Hysteresis: keep the low-threshold components that hold a seed and are not grain.
    n, labels, stats, _ = cv2.connectedComponentsWithStats(low.astype(np.uint8), connectivity=8)
    keep = np.zeros(n, bool)
    keep[np.unique(labels[high])] = True
    keep &= stats[:, cv2.CC_STAT_AREA] >= config.min_component_px
    keep[0] = False
    return np.where(keep[labels], 255, 0).astype(np.uint8)
