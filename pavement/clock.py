"""Clock alignment between the video and the GPS log.

The true UTC time of a video frame is ``creation_time + t_video_s + offset_s``; phone clocks and
the video container's ``creation_time`` disagree with GPS time by a few seconds. The offset is
found by matching the speed of the camera over the road, measured in the video (road-plane
optical flow), with the GPS speed: for each candidate offset the GPS speeds at their fix times are
compared with the video speed at the matching video times (least squares with a free scale, since
the video speed's scale depends on the nominal camera height). Speed changes carry the timing
information: starts, stops and braking pin the offset; a run at constant speed cannot, and says so.

Uncertainty: the larger of the Gauss-Newton standard error (residual scatter over the slope of the
speed profile) and a block jackknife over ten stretches of the run, which also catches correlated
residuals and model error.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from scipy.ndimage import median_filter

from pavement.errors import ConfigError


class ClockSource(StrEnum):
    ESTIMATED = "estimated"  # cross-correlation of video and GPS speed
    USER = "user"  # given by the user; overrides the estimate
    NOMINAL = "nominal"  # creation_time taken as it is (no video speed to correlate)


@dataclass(frozen=True)
class ClockConfig:
    max_offset_s: float = 30.0  # search offsets in [-max, +max]
    coarse_step_s: float = 0.1
    fine_step_s: float = 0.005
    min_correlation: float = 0.6  # below this the estimate is not trusted
    min_moving_samples: int = 20
    video_speed_smooth_s: float = 1.0  # centred running median of the video speed before matching

    def __post_init__(self) -> None:
        if self.max_offset_s <= 0 or self.coarse_step_s <= 0 or self.fine_step_s <= 0:
            raise ConfigError("clock search range and steps must be positive")


@dataclass(frozen=True)
class ClockEstimate:
    """``offset_s`` to add to ``creation_time + t_video_s`` to get GPS (UTC) time."""

    offset_s: float
    uncertainty_s: float | None
    source: ClockSource
    speed_scale: float = 1.0  # GPS speed / video speed (corrects the nominal camera height)
    correlation: float | None = None
    n_samples: int = 0
    reliable: bool = True
    note: str = ""


def _smoothed(t: np.ndarray, v: np.ndarray, window_s: float) -> np.ndarray:
    """Centred running median of v over about ``window_s`` of samples (odd count, at least 1):
    the median of a steady ramp is its middle, so the ramp stays where it is in time."""
    if len(t) < 2:
        return v
    size = max(1, round(window_s / max(float(np.median(np.diff(t))), 1e-3)) | 1)
    return median_filter(v, size=size, mode="nearest")


def _cost(
    offset_s: float,
    t_ref: np.ndarray,
    v_ref: np.ndarray,
    t_vid: np.ndarray,
    v_vid: np.ndarray,
    video_start_unix_s: float,
) -> tuple[float, float, float, int]:
    """(mean squared residual, scale, correlation, n) of ``v_ref ~ scale * v_vid(t_ref - start - offset)``."""
    tv = t_ref - video_start_unix_s - offset_s
    inside = (tv >= t_vid[0]) & (tv <= t_vid[-1])
    n = int(inside.sum())
    if n < 3:
        return np.inf, 1.0, 0.0, n
    g = v_ref[inside]
    v = np.interp(tv[inside], t_vid, v_vid)
    vv = float(v @ v)
    if vv <= 0:
        return np.inf, 1.0, 0.0, n
    scale = float(g @ v) / vv
    res = g - scale * v
    sd_g, sd_v = g.std(), v.std()
    corr = float(np.mean((g - g.mean()) * (v - v.mean())) / (sd_g * sd_v)) if sd_g > 0 and sd_v > 0 else 0.0
    return float(res @ res) / n, scale, corr, n


def _search(
    t_ref: np.ndarray,
    v_ref: np.ndarray,
    t_vid: np.ndarray,
    v_vid: np.ndarray,
    start: float,
    centre: float,
    half_width: float,
    step: float,
) -> float:
    offsets = np.arange(centre - half_width, centre + half_width + step / 2, step)
    evaluated = [_cost(o, t_ref, v_ref, t_vid, v_vid, start) for o in offsets]
    return _grid_minimum(offsets, evaluated, step)


def _grid_minimum(offsets: np.ndarray, evaluated: list[tuple], step: float) -> float:
    """The offset of least cost on a grid, refined by a parabola through its neighbours.

    ``evaluated`` holds (cost, ..., ..., overlap count) per offset. An offset that overlaps only
    part of the video may fit that part well by chance (a run with two similar stops): only
    offsets with nearly the best overlap compete."""
    costs = np.array([c[0] for c in evaluated])
    counts = np.array([c[3] for c in evaluated])
    costs[counts < 0.8 * counts.max()] = np.inf
    i = int(np.argmin(costs))
    if 0 < i < len(offsets) - 1 and np.all(np.isfinite(costs[i - 1 : i + 2])):
        c0, c1, c2 = costs[i - 1 : i + 2]
        denom = c0 - 2 * c1 + c2
        if denom > 0:
            return float(offsets[i] + 0.5 * step * (c0 - c2) / denom)
    return float(offsets[i])


def estimate_clock_offset(
    t_video_s: np.ndarray,
    video_speed_mps: np.ndarray,
    video_valid: np.ndarray,
    t_gps_unix_s: np.ndarray,
    gps_speed_mps: np.ndarray,
    video_start_unix_s: float,
    config: ClockConfig = ClockConfig(),
) -> ClockEstimate:
    """Offset (s) that best aligns the video speed (per frame, video seconds) with the GPS speed
    (per fix, UTC seconds), given the video's nominal start ``video_start_unix_s``."""
    tv = np.asarray(t_video_s, dtype=float)
    ok = np.asarray(video_valid, dtype=bool) & np.isfinite(video_speed_mps)
    if ok.sum() < config.min_moving_samples:
        return ClockEstimate(
            0.0,
            None,
            ClockSource.NOMINAL,
            reliable=False,
            note=f"only {int(ok.sum())} video frames gave a speed; creation_time taken as it is",
        )
    # fill frames without a measurement by interpolation (short dropouts only matter little).
    # Smoothing takes out the per-frame noise (a few per cent, and the odd frame of no texture),
    # which the 1 Hz GPS speed otherwise samples at random: 6 % white noise alone moved the
    # offset by up to 0.3 s (tests/pavement/test_clock.py). A centred median leaves a ramp in place.
    t_vid = tv[ok]
    v_vid = _smoothed(t_vid, np.asarray(video_speed_mps, dtype=float)[ok], config.video_speed_smooth_s)
    t_ref = np.asarray(t_gps_unix_s, dtype=float)
    v_ref = np.asarray(gps_speed_mps, dtype=float)
    keep = np.isfinite(v_ref)
    t_ref, v_ref = t_ref[keep], v_ref[keep]
    coarse = _search(
        t_ref, v_ref, t_vid, v_vid, video_start_unix_s, 0.0, config.max_offset_s, config.coarse_step_s
    )
    best = _search(
        t_ref, v_ref, t_vid, v_vid, video_start_unix_s, coarse, 3 * config.coarse_step_s, config.fine_step_s
    )
    mse, scale, corr, n = _cost(best, t_ref, v_ref, t_vid, v_vid, video_start_unix_s)
    if n < config.min_moving_samples or not np.isfinite(mse):
        return ClockEstimate(
            0.0,
            None,
            ClockSource.NOMINAL,
            reliable=False,
            n_samples=n,
            note="the GPS log and the video hardly overlap; creation_time taken as it is",
        )
    # Gauss-Newton standard error: residual variance over the squared slope of the model
    tvq = t_ref - video_start_unix_s - best
    inside = (tvq >= t_vid[0]) & (tvq <= t_vid[-1])
    dv = np.gradient(v_vid, t_vid) if len(t_vid) > 2 else np.zeros_like(v_vid)
    slope = scale * np.interp(tvq[inside], t_vid, dv)
    sse_slope = float(slope @ slope)
    se_gn = float(np.sqrt(mse / sse_slope)) if sse_slope > 0 else np.inf
    # block jackknife over 10 stretches of the fixes used
    idx = np.flatnonzero(inside)
    blocks = np.array_split(idx, 10)
    estimates = []
    for b in blocks:
        if len(b) == 0:
            continue
        mask = np.ones(len(t_ref), dtype=bool)
        mask[b] = False
        estimates.append(
            _search(
                t_ref[mask],
                v_ref[mask],
                t_vid,
                v_vid,
                video_start_unix_s,
                best,
                3 * config.coarse_step_s,
                config.fine_step_s,
            )
        )
    k = len(estimates)
    se_jk = (
        float(np.sqrt((k - 1) / k * np.sum((np.array(estimates) - np.mean(estimates)) ** 2)))
        if k > 1
        else 0.0
    )
    # floor: half the interval between video frames, the timing resolution of the video speed
    frame_interval = float(np.median(np.diff(t_vid))) if len(t_vid) > 1 else 0.0
    uncertainty = max(se_gn, se_jk, frame_interval / 2)
    reliable = corr >= config.min_correlation and np.isfinite(uncertainty) and uncertainty < 1.0
    note = (
        ""
        if reliable
        else (
            f"weak match between video and GPS speed (correlation {corr:.2f}, +-{uncertainty:.2f} s): "
            "speed hardly "
            "changes in this run; give --clock-offset if the frames look misplaced"
        )
    )
    return ClockEstimate(best, uncertainty, ClockSource.ESTIMATED, scale, corr, n, reliable, note)


def _distance_cost(
    offset_s: float,
    t_fix: np.ndarray,
    s_fix: np.ndarray,
    t_vid: np.ndarray,
    d_vid: np.ndarray,
    start: float,
    window_s: float,
) -> tuple[float, float, float, int]:
    """(mean squared residual, scale, 0, n) of ``s_fix ~ a_w * d_vid(t_fix - start - offset) + b_w``
    with a scale and a start per window of ``window_s`` (the video distance drifts slowly)."""
    tv = t_fix - start - offset_s
    inside = (tv >= t_vid[0]) & (tv <= t_vid[-1])
    n = int(inside.sum())
    if n < 3:
        return np.inf, 1.0, 0.0, n
    d = np.interp(tv[inside], t_vid, d_vid)
    s = s_fix[inside]
    window = np.floor((tv[inside] - tv[inside][0]) / window_s).astype(int)
    sse, scales = 0.0, []
    for w in np.unique(window):
        m = window == w
        if m.sum() < 3 or np.ptp(d[m]) < 1.0:
            sse += float(np.sum((s[m] - s[m].mean()) ** 2))
            continue
        a, b = np.polyfit(d[m], s[m], 1)
        sse += float(np.sum((s[m] - (a * d[m] + b)) ** 2))
        scales.append(a)
    return sse / n, float(np.median(scales)) if scales else 1.0, 0.0, n


def estimate_clock_offset_from_distance(
    t_video_s: np.ndarray,
    video_speed_mps: np.ndarray,
    video_valid: np.ndarray,
    t_fix_unix_s: np.ndarray,
    s_fix_m: np.ndarray,
    video_start_unix_s: float,
    config: ClockConfig = ClockConfig(),
    window_s: float = 120.0,
) -> ClockEstimate:
    """For logs without the phone's speed (most GPX): match the distance travelled in the video
    (integrated road speed) with each fix's distance along the smoothed GPS path. Each fix is an
    independent position measurement, so this avoids the speed a smoother derives from positions
    (biased upward near stops, and smeared in time)."""
    tv = np.asarray(t_video_s, dtype=float)
    v = np.asarray(video_speed_mps, dtype=float)
    ok = np.asarray(video_valid, dtype=bool) & np.isfinite(v)
    if ok.sum() < config.min_moving_samples:
        return ClockEstimate(
            0.0, None, ClockSource.NOMINAL, reliable=False, note="too few video frames gave a speed"
        )
    v_filled = np.interp(tv, tv[ok], v[ok])
    d_vid = np.concatenate([[0.0], np.cumsum((v_filled[1:] + v_filled[:-1]) / 2 * np.diff(tv))])
    t_fix = np.asarray(t_fix_unix_s, dtype=float)
    s_fix = np.asarray(s_fix_m, dtype=float)

    def search(mask: np.ndarray, centre: float, half: float, step: float) -> float:
        offsets = np.arange(centre - half, centre + half + step / 2, step)
        ev = [
            _distance_cost(o, t_fix[mask], s_fix[mask], tv, d_vid, video_start_unix_s, window_s)
            for o in offsets
        ]
        return _grid_minimum(offsets, ev, step)

    everything = np.ones(len(t_fix), dtype=bool)
    coarse = search(everything, 0.0, config.max_offset_s, config.coarse_step_s)
    best = search(everything, coarse, 3 * config.coarse_step_s, config.fine_step_s)
    mse, scale, _, n = _distance_cost(best, t_fix, s_fix, tv, d_vid, video_start_unix_s, window_s)
    if n < config.min_moving_samples or not np.isfinite(mse):
        return ClockEstimate(
            0.0,
            None,
            ClockSource.NOMINAL,
            reliable=False,
            n_samples=n,
            note="the GPS log and the video hardly overlap; creation_time taken as it is",
        )
    inside = np.flatnonzero(
        (t_fix - video_start_unix_s - best >= tv[0]) & (t_fix - video_start_unix_s - best <= tv[-1])
    )
    estimates = []
    for block in np.array_split(inside, 10):
        if len(block):
            mask = everything.copy()
            mask[block] = False
            estimates.append(search(mask, best, 3 * config.coarse_step_s, config.fine_step_s))
    k = len(estimates)
    se_jk = (
        float(np.sqrt((k - 1) / k * np.sum((np.array(estimates) - np.mean(estimates)) ** 2)))
        if k > 1
        else 0.0
    )
    # Gauss-Newton: position residual over the speed at the fixes (the slope of distance in time)
    speed_at = scale * np.interp(t_fix[inside] - video_start_unix_s - best, tv, v_filled)
    sse_slope = float(speed_at @ speed_at)
    se_gn = float(np.sqrt(mse / sse_slope)) if sse_slope > 0 else np.inf
    frame_interval = float(np.median(np.diff(tv))) if len(tv) > 1 else 0.0
    uncertainty = max(se_gn, se_jk, frame_interval / 2)
    reliable = np.isfinite(uncertainty) and uncertainty < 1.0
    note = (
        ""
        if reliable
        else (
            f"weak match between video distance and GPS positions (+-{uncertainty:.2f} s); "
            "give --clock-offset if the frames look misplaced"
        )
    )
    return ClockEstimate(best, uncertainty, ClockSource.ESTIMATED, scale, None, n, reliable, note)


@dataclass(frozen=True)
class StopConfig:
    """Timing stops in the video (image change ~ 0) against the GPS speed ramps around them."""

    min_stop_s: float = 1.0  # a stop shorter than this is not used
    standing_fraction: float = 0.1  # standing: image change below this share of the moving median
    gps_standing_mps: float = 0.3
    ramp_max_mps: float = 5.0  # GPS speeds on the ramp into / out of a stop used for the fit
    ramp_window_s: float = 6.0


def _standing_intervals(t: np.ndarray, change: np.ndarray, config: StopConfig) -> list[tuple[float, float]]:
    """[start, end] video times of runs of frames whose image change is near zero."""
    ok = np.isfinite(change)
    if ok.sum() < 10:
        return []
    floor = float(np.percentile(change[ok], 2))
    moving_level = float(np.median(change[ok]))
    threshold = floor + config.standing_fraction * max(moving_level - floor, 1e-6)
    standing = ok & (change <= threshold)
    half = float(np.median(np.diff(t))) / 2 if len(t) > 1 else 0.0
    out, i = [], 0
    while i < len(t):
        if not standing[i]:
            i += 1
            continue
        j = i
        while j + 1 < len(t) and standing[j + 1]:
            j += 1
        # the image change of frame i is measured between frames i-1 and i: the car stood from
        # half a frame before frame i's change time to half a frame after frame j's
        a, b = t[i] - half, t[j] + half
        if b - a >= config.min_stop_s and i > 0 and j < len(t) - 1:
            out.append((float(a), float(b)))
        i = j + 1
    return out


def _ramp_root(t: np.ndarray, v: np.ndarray) -> tuple[float, float] | None:
    """Time where a straight-line fit of speed against time reaches 0, and its standard error."""
    if len(t) < 2 or np.ptp(t) <= 0:
        return None
    a, b = np.polyfit(t, v, 1)
    if abs(a) < 0.2:  # not a ramp
        return None
    root = -b / a
    res = v - (a * t + b)
    sigma_v = float(np.sqrt(np.sum(res**2) / (len(t) - 2))) if len(t) > 2 else 0.15
    return float(root), max(sigma_v, 0.15) / abs(a) / np.sqrt(len(t))


def _coarse_by_stops(
    tv: np.ndarray,
    change: np.ndarray,
    t_ref: np.ndarray,
    v_ref: np.ndarray,
    start: float,
    config: ClockConfig,
    stops: StopConfig = StopConfig(),
) -> float | None:
    """Offset at which the video's standing frames and the GPS fixes at standstill agree best
    (None when the video shows no stop): robust to a noisy image-change signal."""
    intervals = _standing_intervals(tv, change, stops)
    if not intervals:
        return None
    standing_gps = v_ref < stops.gps_standing_mps
    if not standing_gps.any():
        return None
    offsets = np.arange(-config.max_offset_s, config.max_offset_s + 1e-9, config.coarse_step_s)
    scores = np.full(len(offsets), np.inf)
    counts = np.zeros(len(offsets))
    for k, o in enumerate(offsets):
        tq = t_ref - start - o
        inside = (tq >= tv[0]) & (tq <= tv[-1])
        counts[k] = inside.sum()
        if counts[k] < 3:
            continue
        video_standing = np.zeros(int(counts[k]), dtype=bool)
        near = np.zeros(int(counts[k]), dtype=bool)  # only fixes around the stops decide
        for a, b in intervals:
            video_standing |= (tq[inside] >= a) & (tq[inside] <= b)
            near |= (tq[inside] >= a - 8.0) & (tq[inside] <= b + 8.0)
        scores[k] = float(np.sum((video_standing != standing_gps[inside]) & near))
    scores[counts < 0.8 * counts.max()] = np.inf
    best = offsets[scores <= scores.min() + 1e-9]
    return float(np.median(best))


def estimate_clock_offset_from_stops(
    t_video_s: np.ndarray,
    image_change: np.ndarray,
    t_gps_unix_s: np.ndarray,
    gps_speed_mps: np.ndarray,
    video_start_unix_s: float,
    config: ClockConfig = ClockConfig(),
    stops: StopConfig = StopConfig(),
) -> ClockEstimate:
    """When the road is too smooth for optical flow: time the stops. In the video a stop is a run
    of frames that do not change; in the GPS log its start and end are where straight lines
    fitted to the speed ramps into and out of it reach zero. Each edge gives an offset; their mean
    is the estimate and their spread (with the ramp fits' errors) its uncertainty."""
    tv = np.asarray(t_video_s, dtype=float)
    ch = np.asarray(image_change, dtype=float)
    t_ref = np.asarray(t_gps_unix_s, dtype=float)
    v_ref = np.asarray(gps_speed_mps, dtype=float)
    keep = np.isfinite(v_ref)
    t_ref, v_ref = t_ref[keep], v_ref[keep]
    ok = np.isfinite(ch)
    tv, ch = tv[ok], median_filter(ch[ok], size=5, mode="nearest")  # spikes: key frames, exposure steps
    intervals = _standing_intervals(tv, ch, stops)
    frame_interval = float(np.median(np.diff(tv))) if len(tv) > 1 else 0.0
    if not intervals:
        return ClockEstimate(
            0.0,
            None,
            ClockSource.NOMINAL,
            reliable=False,
            note="the video shows no stop to time and its road speed could not be measured",
        )
    coarse = _coarse_by_stops(tv, ch, t_ref, v_ref, video_start_unix_s, config, stops)
    if coarse is None:
        return ClockEstimate(
            0.0,
            None,
            ClockSource.NOMINAL,
            reliable=False,
            note="the GPS log shows no stop matching the video's",
        )
    # Departure: the image starts changing the moment the car moves, and the GPS speed ramp out
    # of the stop, extrapolated to zero, times it. (The arrival is not used: after braking the
    # body pitches back, so the image keeps changing for a few tenths of a second after the car
    # stands.) The standing/moving agreement of all fixes (the coarse offset) is the other estimate.
    values, errors = [coarse], [0.5 * config.coarse_step_s + 0.1]
    for _a, b in intervals:
        t_edge = video_start_unix_s + coarse + b
        sel = (
            (t_ref >= t_edge - 1.0)
            & (t_ref <= t_edge + stops.ramp_window_s)
            & (v_ref > stops.gps_standing_mps)
            & (v_ref < stops.ramp_max_mps)
        )
        fit = _ramp_root(t_ref[sel], v_ref[sel])
        if fit is not None and abs(fit[0] - t_edge) < 3.0:
            values.append(fit[0] - video_start_unix_s - b)
            errors.append(fit[1])
    values_a = np.array(values)
    best = float(np.mean(values_a))
    spread = float(np.std(values_a, ddof=1) / np.sqrt(len(values_a))) if len(values_a) > 1 else 0.5
    uncertainty = max(spread, float(np.sqrt(np.sum(np.square(errors))) / len(errors)), frame_interval / 2)
    reliable = len(values) > 1 and uncertainty < 0.5
    note = (
        ""
        if reliable
        else f"stops timed to +-{uncertainty:.2f} s only; give --clock-offset if frames look misplaced"
    )
    edges = values
    return ClockEstimate(best, uncertainty, ClockSource.ESTIMATED, 1.0, None, len(edges), reliable, note)


def user_clock_offset(offset_s: float) -> ClockEstimate:
    """A user-given offset: it overrides the estimate."""
    return ClockEstimate(float(offset_s), 0.0, ClockSource.USER, note="clock offset given by the user")
