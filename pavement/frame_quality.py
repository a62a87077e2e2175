"""Frame quality gate for the crack survey: is a frame's view of the road good enough to map cracks?

Measured on the rectified top view (``pavement.road_view``), on the road pixels only, so the sky,
the verge and the bonnet do not count:

- **blur**: variance of the Laplacian over the nearest part of the view (where the frame resolves
  the road best), divided by the squared median grey so that a darker exposure of the same sharp
  road scores the same; motion blur, a smeared windscreen and an object in front of the lens lower it.
  It is measured at the frame's own sampling: where the top view is finer than the frame (a
  low-resolution video: at 320x180 a 5 mm top-view pixel is a fifth of a frame pixel along the
  road), the interpolated view is smooth however sharp the frame, so the band is first shrunk
  back to one pixel per frame pixel. Blur is then in frame pixels, the unit motion blur and
  defocus come in, and one threshold serves every resolution;
- **dark**: the median grey of the road (night, tunnels, deep shade);
- **over-exposed**: the share of road pixels at or near saturation (low sun, glare).

A rejected frame contributes no cells (they stay "not surveyed"); the reason is recorded. A
passed frame gets a weight in (0, 1] for the survey's confidence (1 = comfortably sharp).
Per cell (``occluded_cells``): a 0.5 m cell whose road shows too little texture, or is too dark,
is left unseen even in an accepted frame: something stands between the camera and the road there.

Wet road and rain are not detected yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import cv2
import numpy as np

from pavement.errors import ConfigError


class RejectReason(StrEnum):
    BLUR = "blur"
    DARK = "dark"
    OVER_EXPOSED = "over_exposed"
    NO_ROAD = "no_road"  # the view holds too few road pixels (camera pointing elsewhere)


@dataclass(frozen=True)
class FrameQualityConfig:
    """Thresholds of the gate (grey levels are 0-255 of the top view)."""

    # Synthetic 720p frames, 2-5 m view: sharp 0.0035-0.026; Gaussian blur of 1 px 0.002-0.010,
    # of 2 px 0.001-0.0036; a 15 px motion smear 0.0012-0.008; an object filling the view < 0.001.
    # 320x180 frames, measured at their own sampling: sharp 0.006-0.017, blur of 1 px 0.002-0.006,
    # of 2 px 0.001-0.0025 (on the upsampled top view they scored 0.001: all "blurred").
    min_sharpness: float = 0.0025  # var(Laplacian) / median^2 below this: blurred (or occluded)
    sharp_sharpness: float = 0.006  # at or above this the frame's weight is 1
    near_share: float = 0.4  # blur is measured on this nearest share of the view's rows
    min_median_grey: float = 30.0  # darker road: too dark
    saturated_grey: int = 250  # a pixel at or above this is saturated ...
    max_saturated_share: float = 0.05  # ... and a view with more than this share of them is over-exposed
    min_road_share: float = 0.3  # share of the view that must be inside the frame
    # Per 0.5 m cell: an occluder in front of the road (a passing vehicle, a roadside tree, the
    # wiper) is flat and not the road's grey: less fine texture (median |grey - 2 px blur| / local
    # grey) than this share of the well-textured cells at the same distance (the 75th percentile of
    # the cell's row: the view blurs with distance, the texture falls ~4x from 2.5 to 5 m), or than
    # the floor share of the frame's (a whole row hidden), and a mean grey off the road's median
    # by more than max_cell_grey_change. Shares, not levels: the top view's texture also falls
    # with the frame's resolution and compression (720p road 0.005-0.05, 320x180 0.001-0.006, an
    # occluder ~0), and smooth road (fresh asphalt, a compressed low-resolution video) keeps the
    # road's grey.
    min_cell_texture_share: float = 0.35
    min_cell_texture_frame_share: float = 0.1
    max_cell_grey_change: float = 0.2

    def __post_init__(self) -> None:
        if not 0 < self.min_sharpness < self.sharp_sharpness:
            raise ConfigError(
                f"need 0 < min_sharpness < sharp_sharpness, got {self.min_sharpness}, {self.sharp_sharpness}"
            )
        if not 0 < self.near_share <= 1 or not 0 <= self.max_saturated_share <= 1:
            raise ConfigError("near_share must lie in (0, 1] and max_saturated_share in [0, 1]")


@dataclass(frozen=True)
class FrameQuality:
    """The gate's verdict on one frame, with the figures it was based on."""

    sharpness: float  # var(Laplacian) / median^2 over the near rows
    median_grey: float
    saturated_share: float
    road_share: float
    reason: RejectReason | None  # None = accepted
    weight: float  # 0 when rejected, else (0, 1]

    @property
    def accepted(self) -> bool:
        return self.reason is None


def grey_histogram(grey: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Counts (256,) int64 of the uint8 grey values of ``grey`` (H, W), where ``mask`` (H, W) bool is
    set (default: all); one pass, no copy of the selected pixels."""
    m = None if mask is None else np.ascontiguousarray(mask, dtype=bool).view(np.uint8)
    counts = cv2.calcHist([np.ascontiguousarray(grey, np.uint8)], [0], m, [256], [0, 256])
    return counts.ravel().astype(np.int64)


def histogram_median(counts: np.ndarray) -> float:
    """Median grey of a histogram (256,): exact for an odd count, the lower middle value for an even one."""
    total = int(counts.sum())
    if total == 0:
        raise ConfigError("the median of no grey values is undefined")
    return float(np.searchsorted(np.cumsum(counts), (total + 1) // 2))


def grey_median(values: np.ndarray) -> float:
    """Median of uint8 grey values (any shape), from their histogram (``histogram_median``): several
    times faster than ``np.median`` on a view."""
    return histogram_median(np.bincount(np.asarray(values, np.uint8).ravel(), minlength=256))


def near_rows(height_px: int, config: FrameQualityConfig = FrameQualityConfig()) -> int:
    """How many of a top view's nearest rows the blur is measured on."""
    return max(3, round(height_px * config.near_share))


def assess_frame(
    top_grey: np.ndarray,
    road: np.ndarray,
    config: FrameQualityConfig = FrameQualityConfig(),
    frame_px_per_view_px: tuple[float, float] = (1.0, 1.0),
) -> FrameQuality:
    """Quality of one top view: ``top_grey`` (H, W) uint8, ``road`` (H, W) bool = inside the frame.

    Rows run from far (row 0) to near, as ``pavement.road_view`` makes them.
    ``frame_px_per_view_px`` (across, along): frame pixels per top-view pixel in the middle of the
    near band (``RoadView.frame_px_per_view_px`` at row H - ``near_rows(H)`` / 2); below 1 the band
    is shrunk by that factor before the Laplacian (see the module docstring)."""
    if top_grey.shape != road.shape or top_grey.ndim != 2:
        raise ConfigError(f"top view {top_grey.shape} and road mask {road.shape} must be one (H, W) shape")
    road_share = float(road.mean()) if road.size else 0.0
    if road_share < config.min_road_share:
        return FrameQuality(0.0, 0.0, 0.0, road_share, RejectReason.NO_ROAD, 0.0)
    counts = grey_histogram(top_grey, road)
    median = histogram_median(counts)
    saturated = float(counts[config.saturated_grey :].sum()) / float(counts.sum())
    # Laplacian of the near rows; pixels next to the edge of the frame's footprint left out
    n_rows = near_rows(top_grey.shape[0], config)
    near = top_grey[-n_rows:].astype(np.float32)
    near_road = road[-n_rows:].astype(np.uint8)
    fx, fy = (min(1.0, max(f, 0.05)) for f in frame_px_per_view_px)
    if fx < 1.0 or fy < 1.0:
        size = (max(8, round(near.shape[1] * fx)), max(8, round(near.shape[0] * fy)))
        near = cv2.resize(near, size, interpolation=cv2.INTER_AREA)
        near_road = cv2.resize(near_road, size, interpolation=cv2.INTER_NEAREST)
    inner = cv2.erode(near_road, np.ones((5, 5), np.uint8)) > 0
    lap = cv2.Laplacian(near, cv2.CV_32F, ksize=3)
    sharpness = float(lap[inner].var() / max(median, 1.0) ** 2) if inner.any() else 0.0
    reason = None
    if median < config.min_median_grey:
        reason = RejectReason.DARK
    elif saturated > config.max_saturated_share:
        reason = RejectReason.OVER_EXPOSED
    elif sharpness < config.min_sharpness:
        reason = RejectReason.BLUR
    weight = 0.0
    if reason is None:
        span = config.sharp_sharpness - config.min_sharpness
        weight = float(np.clip(0.5 + 0.5 * (sharpness - config.min_sharpness) / span, 0.5, 1.0))
    return FrameQuality(sharpness, median, saturated, road_share, reason, weight)


def occluded_cells(
    top_grey: np.ndarray,
    road: np.ndarray,
    row_edges: np.ndarray,
    col_edges: np.ndarray,
    config: FrameQualityConfig = FrameQualityConfig(),
) -> np.ndarray:
    """(n, m) bool: the cells between ``row_edges`` (n + 1,) and ``col_edges`` (m + 1,) of a top view
    whose road cannot be seen: flat (median fine texture, |grey - 2 px blur| / local grey, below
    ``min_cell_texture_share`` x the 75th percentile of its row of cells or below
    ``min_cell_texture_frame_share`` x that of all cells) and off the road's grey (mean grey off
    the cells' median by more than ``max_cell_grey_change``), or darker than ``min_median_grey``.
    Cells without road pixels are not flagged (the caller knows them)."""
    f = top_grey.astype(np.float32)
    local = np.maximum(cv2.blur(f, (25, 25)), 1.0)
    texture = np.abs(f - cv2.GaussianBlur(f, (0, 0), 2.0)) / local
    n, m = len(row_edges) - 1, len(col_edges) - 1
    # medians, not means: the edge of an occluder is a strong line of texture in the cell beside it
    cell_texture = np.full((n, m), np.nan)
    cell_grey = np.full((n, m), np.inf)
    for i in range(n):
        r = slice(row_edges[i], row_edges[i + 1], 3)  # every third pixel: the median is as good
        for j in range(m):
            c = slice(col_edges[j], col_edges[j + 1], 3)
            inside = road[r, c]
            if inside.any():
                cell_texture[i, j] = np.median(texture[r, c][inside])
                cell_grey[i, j] = f[r, c][inside].mean()
    has_road = np.isfinite(cell_texture)
    if not has_road.any():
        return has_road
    reference = np.zeros(n)
    for i, row in enumerate(cell_texture):
        if np.isfinite(row).any():
            reference[i] = np.nanpercentile(row, 75)
    floor = config.min_cell_texture_frame_share * float(np.percentile(cell_texture[has_road], 75))
    with np.errstate(invalid="ignore"):
        flat = (cell_texture < config.min_cell_texture_share * reference[:, None]) | (cell_texture < floor)
    road_grey = float(np.median(cell_grey[has_road]))
    off_grey = np.abs(cell_grey / max(road_grey, 1.0) - 1.0) > config.max_cell_grey_change
    dark = cell_grey < config.min_median_grey
    return has_road & ((flat & off_grey) | dark)
