"""Crack masks on the rectified top view (``pavement.road_view``), with the classical black-hat.

The black-hat response (``pavement.crack_segmentation.crack_response``) with an element sized for
the top view's scale (11 px = 55 mm at 5 mm/px: cracks up to ~25 mm wide) is divided by the local
brightness, so that it reads as the relative darkening of a crack against its surroundings.

The thresholds are not percentiles of the image (a sound road would then always show its top 1.5 %
as cracks) but multiples of the road texture's noise, measured locally: the top view is sharp
near the camera and blurred far from it (a frame pixel covers d^2 / (f h) of road along it), and
shade, a patch or an occluder change the texture's contrast across a row as much as along the
view. The noise unit at a pixel is the mean absolute high-passed texture (relative to the local
brightness) over a window of ``noise_window_px`` around it, each value clipped at ``noise_clip``
times the view's robust spread (1.4826 x median absolute deviation) so that the cracks inside
the window (up to ~10 % of a dense mesh's pixels) raise it little; x 1.2533 turns a mean absolute
deviation into a standard deviation. Seeds above ``seed_noise`` x noise are grown through
pixels above ``grow_noise`` x noise (hysteresis), and small or short components are dropped: a
crack is a line, road grain is a blob. A component must hold ``min_component_px`` pixels and reach
``min_length_px`` across its bounding box (30 px = 15 cm). On synthetic runs (seeds 511-513,
0.5 m cells against the scene's truth) most cells marked on sound road came from compact grains of
60-100 px that passed the seed threshold; the length test removes them, which in turn lets the
thresholds come down so that faint cracks grow into long components instead of breaking up.

Painted markings (lane lines, arrows) are bright: pixels well above the road's median grey, and a
margin around them, are never cracks (the dark asphalt gap beside a line would otherwise be one).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pavement.crack_segmentation import CrackSegmenterConfig, crack_response
from pavement.errors import ConfigError
from pavement.frame_quality import grey_histogram, histogram_median


@dataclass(frozen=True)
class TopViewSegmenterConfig:
    """Parameters in pixels of a 5 mm/px top view (scale them with the view's resolution)."""

    blackhat_px: int = 11  # element of the black-hat: cracks up to about half as wide are enhanced
    blur_px: int = 3  # pre-smoothing (compression noise)
    background_sigma_px: float = 12.0  # local brightness the response is divided by
    noise_window_px: int = 101  # square window in which the local texture noise is measured (0.5 m)
    noise_clip: float = 3.0  # texture values are clipped at this many view-wide noise units first
    highpass_sigma_px: float = 4.0  # texture = top view minus this blur
    # Tuned on synthetic 720p runs (tuning seeds 511-516, crack ratio per 100 m against truth.json,
    # cells 2-4 m ahead, frames every 2 m; figures in eval/crack_ratio.py's notes).
    seed_noise: float = 4.0  # seeds: relative response above this many noise units
    grow_noise: float = 2.5  # grown through connected pixels above this many
    min_noise: float = 0.0025  # floor of the noise unit (a flat, featureless band)
    min_component_px: int = 60  # smaller components are grain
    min_length_px: float = 30.0  # components whose bounding box has a shorter diagonal are grain
    paint_over_median: float = 1.3  # brighter than this x the road's median grey: paint ...
    paint_margin_px: int = 10  # ... and this margin around it

    def __post_init__(self) -> None:
        if not 0 < self.grow_noise <= self.seed_noise:
            raise ConfigError(f"need 0 < grow_noise <= seed_noise, got {self.grow_noise}, {self.seed_noise}")
        if self.blackhat_px < 3 or self.noise_window_px < 9 or self.noise_clip <= 1:
            raise ConfigError("blackhat_px must be >= 3, noise_window_px >= 9 and noise_clip > 1")


def smooth(image: np.ndarray, sigma_px: float) -> np.ndarray:
    """Gaussian blur (float32) of a wide ``sigma_px``, computed at a quarter of the size and scaled
    back: the same smooth brightness, an eighth of the time of a 12 px blur at full size."""
    if sigma_px < 8:
        return cv2.GaussianBlur(image, (0, 0), sigma_px)
    h, w = image.shape
    small = cv2.resize(image, (max(1, w // 4), max(1, h // 4)), interpolation=cv2.INTER_AREA)
    return cv2.resize(cv2.GaussianBlur(small, (0, 0), sigma_px / 4), (w, h), interpolation=cv2.INTER_LINEAR)


def local_noise(texture: np.ndarray, usable: np.ndarray, config: TopViewSegmenterConfig) -> np.ndarray:
    """Noise unit (H, W) float32 of the high-passed ``texture`` around each pixel, from its
    ``usable`` pixels only (see the module docstring); the view-wide spread where a window holds
    too few of them. The window's means are taken on a 4x coarser grid (the noise varies over
    decimetres, not pixels) and interpolated back."""
    sample = np.abs(texture[::3, ::3][usable[::3, ::3]])
    spread = max(1.4826 * float(np.median(sample)), config.min_noise) if sample.size else config.min_noise
    u = usable.astype(np.float32)
    clipped = np.minimum(np.abs(texture), config.noise_clip * spread) * u
    h, w = texture.shape
    small = (max(1, w // 4), max(1, h // 4))
    size = (max(3, config.noise_window_px // 4) | 1,) * 2
    total = cv2.boxFilter(cv2.resize(clipped, small, interpolation=cv2.INTER_AREA), -1, size)
    share = cv2.boxFilter(cv2.resize(u, small, interpolation=cv2.INTER_AREA), -1, size)
    noise = np.where(share > 0.2, 1.2533 * total / np.maximum(share, 1e-6), spread).astype(np.float32)
    noise = cv2.resize(noise, (w, h), interpolation=cv2.INTER_LINEAR)
    return np.maximum(noise, config.min_noise)


def segment_top_view(
    top: np.ndarray, road: np.ndarray | None = None, config: TopViewSegmenterConfig = TopViewSegmenterConfig()
) -> np.ndarray:
    """Crack mask (H, W) uint8, 0 / 255, of a top view (H, W[, 3]) uint8. ``road`` (H, W) bool marks
    the pixels inside the frame (default: all); the rest is never a crack."""
    grey = cv2.cvtColor(top, cv2.COLOR_BGR2GRAY) if top.ndim == 3 else top
    if grey.ndim != 2 or grey.size == 0:
        raise ConfigError(f"expected an (H, W) or (H, W, 3) top view, got shape {top.shape}")
    road = np.ones(grey.shape, bool) if road is None else np.asarray(road, bool)
    if road.shape != grey.shape:
        raise ConfigError(f"road mask {road.shape} does not match the top view {grey.shape}")
    if not road.any():
        return np.zeros(grey.shape, np.uint8)
    median = histogram_median(grey_histogram(grey, road))
    filled = np.where(road, grey, np.uint8(round(median)))
    f = filled.astype(np.float32)
    background = np.maximum(smooth(f, config.background_sigma_px), 1.0)
    response = crack_response(
        filled, CrackSegmenterConfig(blackhat_px=config.blackhat_px, blur_px=config.blur_px)
    )
    relative = response / background
    k = 2 * config.paint_margin_px + 1
    paint = cv2.dilate(
        (filled > config.paint_over_median * median).astype(np.uint8), np.ones((k, k), np.uint8)
    )
    usable = road & (paint == 0)
    texture = (f - cv2.GaussianBlur(f, (0, 0), config.highpass_sigma_px)) / background
    noise = local_noise(texture, usable, config)
    relative[~usable] = 0.0
    high = relative >= config.seed_noise * noise
    low = (relative >= config.grow_noise * noise).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(low, connectivity=8)
    keep = np.bincount(labels[high], minlength=n) > 0  # components holding a seed
    keep &= stats[:, cv2.CC_STAT_AREA] >= config.min_component_px
    keep &= np.hypot(stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]) >= config.min_length_px
    keep[0] = False
    return np.where(keep, 255, 0).astype(np.uint8)[labels]
