"""Speed of the camera over the road from consecutive video frames (road-plane optical flow).

Each frame is warped through the camera's ground homography into a top view of a patch of road
ahead (x forward, y left, fixed metres per pixel); between consecutive top views the road moves
toward the camera by the distance travelled, which phase correlation measures in pixels. Working
in the road plane makes the shift the same over the whole patch (in the image it grows toward the
bottom), and the scale comes from the camera's mounting height. A wrong nominal height scales the
result; clock alignment fits that scale against GPS speed.

A wrong pitch does more: it stretches the top view more the farther ahead, so the shift measured
at distance X is the true one times ``pitch_gain(X, delta)``. The body pitches with every brake and
throttle (about a degree), so the speed's error follows the acceleration, which looks like a time
shift of a few tenths of a second to the clock alignment. Each shift is therefore also measured in
``bands`` strips across the patch, from far to near; how the strips' shifts change with distance
gives the pitch error ``delta`` (``solve_pitch``), and the strips divided by their gains give the
true shift (``correct_for_pitch``).
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass

import cv2
import numpy as np

from pavement.camera import CameraProfile
from pavement.errors import CalibrationError


@dataclass(frozen=True)
class TopViewConfig:
    width_m: float = 3.0  # lateral extent of the patch, centred on the camera
    max_speed_mps: float = 35.0  # the patch is long enough for this speed at the video's frame rate
    min_length_m: float = 6.0
    max_length_m: float = 16.0
    pixels_along: int = 192  # top-view resolution along the road
    min_response: float = 0.08  # phase-correlation peak below this = no reliable measurement
    bands: int = 4  # strips across the patch, far to near, for the pitch (0: none)
    min_band_response: float = 0.3  # a strip's peak below this: too little texture that far ahead
    min_band_shift_m: float = 0.15  # a shorter step tells the strips apart too coarsely for the pitch
    min_pitch_share: float = 0.5  # fewer moving frames than this with a pitch: the run keeps camera.json's
    max_pitch_error_deg: float = 5.0  # a pitch error fitted beyond this is a failed fit
    pitch_window_s: float = 1.0  # centred running median of the pitch error (the body pitches over ~1 s)


@dataclass(frozen=True)
class TopView:
    """Mapping from top-view pixels to image pixels (``WARP_INVERSE_MAP`` matrix) and its scale."""

    matrix: np.ndarray  # 3x3: top-view (col, row, 1) -> image pixel
    size_px: tuple[int, int]  # (width, height) for cv2
    metres_per_px: float
    near_m: float
    far_m: float


def top_view(camera: CameraProfile, fps: float, config: TopViewConfig = TopViewConfig()) -> TopView:
    """The road patch to watch: it starts just beyond the bottom edge of the image and is long
    enough to overlap itself between frames at ``max_speed_mps``."""
    k = camera.intrinsics
    # nearest visible ground: ray through the bottom-centre pixel
    ray = camera.pixel_rays_vehicle(np.array([k.cx_px]), np.array([k.height_px - 1.0]))[0]
    if ray[2] >= -1e-6:
        raise CalibrationError(
            f"the camera (pitch {camera.mount.pitch_deg} deg) does not see the road at the bottom "
            "of the image; "
            "check the mount pitch in camera.json (down is positive)"
        )
    near = camera.mount.height_m * ray[0] / -ray[2] + 0.5
    step = config.max_speed_mps / max(fps, 1e-3)
    length = float(np.clip(3.0 * step, config.min_length_m, config.max_length_m))
    # do not reach beyond ~35 % of the distance to the horizon: resolution falls off fast
    horizon_ray = camera.pixel_rays_vehicle(np.array([k.cx_px]), np.array([0.0]))[0]
    if horizon_ray[2] < 0:
        length = min(length, max(camera.mount.height_m * horizon_ray[0] / -horizon_ray[2] - near, 2.0))
    far = near + length
    res = length / config.pixels_along
    width_px = max(round(config.width_m / res), 16)
    a = np.array([[0.0, -res, far], [-res, 0.0, config.width_m / 2], [0.0, 0.0, 1.0]])  # top view -> ground
    y_left = camera.mount.lateral_m  # centre the patch straight ahead of the lens
    a[1, 2] += y_left
    m = camera.ground_homography() @ a
    return TopView(m / m[2, 2], (width_px, config.pixels_along), res, near, far)


def warp_top_view(gray: np.ndarray, view: TopView) -> np.ndarray:
    """Top view (float32) of a grayscale frame; pixels outside the image are 0."""
    return cv2.warpPerspective(
        gray, view.matrix, view.size_px, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    ).astype(np.float32)


@dataclass(frozen=True)
class RoadShift:
    forward_m: float  # road travelled between the two frames (camera moving forward > 0)
    lateral_m: float
    response: float  # phase-correlation peak (0..1)
    band_x_m: tuple[float, ...] = ()  # each strip's nominal distance ahead of the camera, far to near
    band_forward_m: tuple[float, ...] = ()  # each strip's forward shift (nominal metres)
    band_response: tuple[float, ...] = ()


def pitch_gain(x_m: np.ndarray, delta_rad: float | np.ndarray, height_m: float) -> np.ndarray:
    """Nominal over true road shift at nominal distance ``x_m`` ahead when the nominal pitch is
    ``delta_rad`` more (down) than the true one: sin^2(theta - delta) / sin^2(theta), theta the
    nominal ray's depression. 1 at delta = 0; below 1, and falling with distance, for delta > 0."""
    theta = np.arctan2(height_m, np.asarray(x_m, dtype=float))
    return np.sin(theta - delta_rad) ** 2 / np.sin(theta) ** 2


def solve_pitch(x_m: np.ndarray, shift_m: np.ndarray, weight: np.ndarray, height_m: float) -> float:
    """The pitch error (rad) that best explains strips' shifts ``shift_m`` (> 0) at distances
    ``x_m``: sqrt(shift) = sqrt(s) (cos delta - cot(theta) sin delta) is linear in
    (sqrt(s) cos delta, sqrt(s) sin delta), so a weighted straight-line fit of sqrt(shift) against
    cot(theta) = x / height solves it exactly (NaN with fewer than 3 strips)."""
    x, s, w = (np.asarray(a, dtype=float) for a in (x_m, shift_m, weight))
    if len(x) < 3 or np.any(s <= 0) or np.any(w <= 0):
        return float("nan")
    a = np.column_stack([np.ones_like(x), -x / height_m]) * np.sqrt(w)[:, None]
    (alpha, beta), *_ = np.linalg.lstsq(a, np.sqrt(s) * np.sqrt(w), rcond=None)
    return float(np.arctan2(beta, alpha)) if alpha > 0 else float("nan")


def _even_dft_size(n: int) -> int:
    """The largest even m <= n that the FFT takes as it is (cv2.getOptimalDFTSize(m) == m)."""
    m = n - n % 2
    while m > 0 and cv2.getOptimalDFTSize(m) != m:
        m -= 2
    return m


class RoadMotionMeter:
    """Feeds consecutive grayscale frames; returns the road shift since the previous frame."""

    def __init__(self, view: TopView, config: TopViewConfig = TopViewConfig()):
        self.view = view
        self.config = config
        self._window = cv2.createHanningWindow(view.size_px, cv2.CV_32F)
        self._band_windows: dict[tuple[int, int], np.ndarray] = {}
        self._prev: np.ndarray | None = None

    def reset(self) -> None:
        self._prev = None

    def push(self, gray: np.ndarray) -> RoadShift | None:
        top = warp_top_view(gray, self.view)
        # remove the mean and slow shading so that lighting changes do not correlate
        top = top - cv2.GaussianBlur(top, (0, 0), 8)
        prev, self._prev = self._prev, top
        if prev is None:
            return None
        (dx, dy), response = cv2.phaseCorrelate(prev, top, self._window)
        # road features move down the top view (toward the camera) as the car moves forward
        res = self.view.metres_per_px
        if not (math.isfinite(dx) and math.isfinite(dy)):
            return RoadShift(float("nan"), float("nan"), 0.0)
        bands = self._bands(prev, top, dy) if response >= self.config.min_response else ((), (), ())
        return RoadShift(float(dy) * res, float(-dx) * res, float(response), *bands)

    def _bands(self, prev: np.ndarray, top: np.ndarray, dy: float) -> tuple[tuple[float, ...], ...]:
        """(distance, forward shift, response) of each strip: the part of the previous top view
        still in view, cut in ``bands`` strips, each matched against the current top view moved
        by the whole patch's shift (so that a strip only has to find the small rest; a strip as
        short as a step could not). Each strip's mean along the road is removed first: lane lines
        and cracks along it look the same in both frames and would pull the shift to zero.
        Strips are an even, FFT-friendly number of rows high: OpenCV's peak of an odd-sized
        phase correlation is half a pixel off."""
        k = self.config.bands
        d = round(dy)
        rows = prev.shape[0] - abs(d)
        height = _even_dft_size(rows // k) if k >= 3 else 0
        if height < 16:
            return (), (), ()
        res = self.view.metres_per_px
        p0, c0 = max(-d, 0), max(d, 0)  # first overlapping row in the previous and the current view
        x, shift, resp = [], [], []
        for r0 in np.linspace(0, rows - height, k).round().astype(int):
            a = prev[p0 + r0 : p0 + r0 + height]
            b = top[c0 + r0 : c0 + r0 + height]
            a = a - a.mean(axis=0)
            b = b - b.mean(axis=0)
            window = self._band_windows.get(a.shape)
            if window is None:
                window = self._band_windows[a.shape] = cv2.createHanningWindow(a.shape[::-1], cv2.CV_32F)
            (_bx, by), r = cv2.phaseCorrelate(a, b, window)
            centre_row = r0 + height / 2 + abs(d) / 2  # midway between the two frames' strips
            x.append(self.view.far_m - res * centre_row)
            shift.append((d + by) * res)
            resp.append(r)
        return tuple(x), tuple(shift), tuple(float(r) for r in resp)


@dataclass(frozen=True)
class PitchCorrection:
    """The run's road shifts with the pitch error taken out (``correct_for_pitch``)."""

    forward_m: np.ndarray  # per shift: true forward shift (NaN where none was measured)
    pitch_error_deg: np.ndarray  # nominal minus true pitch, smoothed; NaN where not known
    measured_share: float  # share of the moving shifts whose strips gave a pitch error


class ShiftLog:
    """A run's road shifts, compact (15 doubles a frame with 4 strips, where a list of RoadShift
    took 450 bytes: 45 MB an hour of 30 fps video): append in order, read as arrays."""

    def __init__(self, bands: int) -> None:
        self.bands = bands
        self._whole = array("d")  # forward_m, response per shift
        self._strips = array("d")  # (distance, forward, response) per strip, NaN without strips

    def __len__(self) -> int:
        return len(self._whole) // 2

    def append(self, shift: RoadShift | None) -> None:
        self._whole.extend((math.nan, 0.0) if shift is None else (shift.forward_m, shift.response))
        strips = [math.nan] * (3 * self.bands)
        if shift is not None and len(shift.band_x_m) == self.bands:
            strips[0::3], strips[1::3], strips[2::3] = (
                shift.band_x_m,
                shift.band_forward_m,
                shift.band_response,
            )
        self._strips.extend(strips)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(forward_m (n,), response (n,), strips (n, bands, 3): distance, forward, response)."""
        whole = np.frombuffer(self._whole, dtype=float).reshape(-1, 2)
        strips = np.frombuffer(self._strips, dtype=float).reshape(len(self), self.bands, 3)
        return whole[:, 0].copy(), whole[:, 1].copy(), strips.copy()


def _agreeing_strips(
    response: float, strips: np.ndarray, config: TopViewConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(distance, shift, response) of the strips (rows of ``strips``) with a clear peak and within
    a factor of 1.6 of the strips' median shift (far ahead, a low bitrate or a small video leaves
    too little texture, and a strip locks on to the compression's static pattern); None without
    strips or when the step is too short to tell them apart."""
    if not len(strips) or response < config.min_response or not np.isfinite(strips).all():
        return None
    x, f, r = strips.T
    median = float(np.median(f))
    if median < config.min_band_shift_m:
        return None
    ok = (r >= config.min_band_response) & (f > median / 1.6) & (f < median * 1.6)
    return x[ok], f[ok], r[ok]


def correct_for_pitch(
    forward_m: np.ndarray,
    response: np.ndarray,
    strips: np.ndarray,
    t_s: np.ndarray,
    view: TopView,
    height_m: float,
    config: TopViewConfig = TopViewConfig(),
) -> PitchCorrection:
    """Per shift, the pitch error from its agreeing strips (``solve_pitch``, at least 3), smoothed
    by a centred running median over ``pitch_window_s`` and filled in between; then the forward
    shift as the strips' response-weighted mean of shift over gain, or, for steps too short for
    the strips, the whole patch's shift over the gain at the patch's centre. A run where fewer than
    ``min_pitch_share`` of the moving shifts give a pitch error keeps camera.json's pitch.
    Inputs as ``ShiftLog.arrays`` gives them, in time order ``t_s`` (n,)."""
    whole = np.asarray(forward_m, dtype=float)
    n = len(whole)
    t = np.asarray(t_s, dtype=float)
    bands = [_agreeing_strips(response[i], strips[i], config) for i in range(n)]
    raw = np.full(n, np.nan)
    for i, b in enumerate(bands):
        if b is not None and len(b[0]) >= 3:
            raw[i] = solve_pitch(*b, height_m)
    raw[np.abs(raw) > np.radians(config.max_pitch_error_deg)] = np.nan
    known = np.isfinite(raw)
    moving = sum(b is not None for b in bands)
    share = float(known.sum() / moving) if moving else 0.0
    delta = np.zeros(n)
    if share >= config.min_pitch_share:
        tk, rk = t[known], raw[known]
        lo = np.searchsorted(tk, t - config.pitch_window_s / 2)
        hi = np.searchsorted(tk, t + config.pitch_window_s / 2, side="right")
        # a median of a few frames (a stretch's end, slowing for a stop) is noise: at least a third
        # of the window's frames must have measured
        step = max(float(np.median(np.diff(t))), 1e-3) if n > 1 else 1.0
        need = max(3, round(config.pitch_window_s / step / 3))
        smooth = np.full(n, np.nan)
        for i in np.flatnonzero(hi - lo >= need):
            smooth[i] = np.median(rk[lo[i] : hi[i]])
        filled = np.isfinite(smooth)
        delta = np.interp(t, t[filled], smooth[filled]) if filled.any() else np.full(n, np.median(rk))
    centre = (view.near_m + view.far_m) / 2
    forward = np.full(n, np.nan)
    for i, b in enumerate(bands):
        if b is not None and len(b[0]):
            x, f, r = b
            forward[i] = float(np.sum(r * f / pitch_gain(x, delta[i], height_m)) / np.sum(r))
        elif np.isfinite(whole[i]):
            forward[i] = whole[i] / float(pitch_gain(centre, delta[i], height_m))
    pitch = np.degrees(delta) if share >= config.min_pitch_share else np.full(n, np.nan)
    return PitchCorrection(forward, pitch, share)
