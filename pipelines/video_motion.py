"""Video side of geotagging: the video's timing and the camera's speed over the road.

Decodes with PyAV at reduced resolution (grayscale, the width divided by the smallest whole factor
that brings it to at most ``max_width_px``), streaming:
memory does not grow with the video's length.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import av
import cv2
import numpy as np

from pavement.camera import CameraProfile
from pavement.errors import VideoUnreadable
from pavement.road_motion import RoadMotionMeter, ShiftLog, TopViewConfig, correct_for_pitch, top_view

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]  # (frames done, frames expected)

STANDING_SHIFT_M = 0.02  # less road shift than this between two frames: the car stands
PLANAR_YUV = frozenset({"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "nv12"})
TRUNCATED_SHARE = 0.98  # fewer decodable frames than this share of the header's count: truncated


@dataclass(frozen=True)
class VideoInfo:
    path: str
    width_px: int
    height_px: int
    fps: float
    n_frames_expected: int
    duration_s: float
    creation_time_unix_s: float | None  # the container's creation_time (nominal UTC start)


@dataclass(frozen=True)
class VideoMotion:
    """Per decoded frame (presentation order): time from the first frame, speed over the road.

    The speed of frame i is measured between frames i-1 and i, so it belongs to the middle of
    that interval, ``t_speed_s`` (half a frame earlier); using the frame time instead would bias
    the clock offset by half a frame interval."""

    t_video_s: np.ndarray
    t_speed_s: np.ndarray
    speed_mps: np.ndarray  # NaN where not measured
    valid: np.ndarray  # bool
    response: np.ndarray
    change: np.ndarray  # mean absolute grey-level change since the previous frame, road half of the image
    pitch_error_deg: np.ndarray | None = None  # camera.json's pitch minus the body's, from the road flow
    pitch_measured_share: float = 0.0  # share of the moving frames whose strips measured the pitch


def _open(path: Path) -> av.container.InputContainer:
    if not Path(path).is_file():
        raise VideoUnreadable(f"video {path} does not exist; put video.mp4 in the run folder")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as exc:
        raise VideoUnreadable(
            f"cannot open video {Path(path).name}: {exc}; is it a complete MP4/MOV file?"
        ) from exc
    if not container.streams.video:
        container.close()
        raise VideoUnreadable(f"{Path(path).name} holds no video stream")
    return container


def _creation_time(container: av.container.InputContainer) -> float | None:
    for meta in (container.metadata, container.streams.video[0].metadata):
        text = meta.get("creation_time")
        if text:
            try:
                return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
            except ValueError:
                logger.warning("unreadable creation_time %r", text)
    return None


def probe_video(path: Path) -> VideoInfo:
    """Size, frame rate, length and creation_time of a video, without decoding it."""
    container = _open(path)
    try:
        stream = container.streams.video[0]
        fps = float(stream.average_rate or stream.guessed_rate or 0) or 30.0
        duration = (
            float(stream.duration * stream.time_base)
            if stream.duration
            else (container.duration / 1e6 if container.duration else 0.0)
        )
        n = stream.frames or round(duration * fps)
        return VideoInfo(
            str(path),
            stream.codec_context.width,
            stream.codec_context.height,
            fps,
            n,
            duration,
            _creation_time(container),
        )
    finally:
        container.close()


def frame_times(path: Path) -> np.ndarray:
    """Presentation times (s from the first frame) of every frame, from the packets (no decoding)."""
    container = _open(path)
    try:
        stream = container.streams.video[0]
        pts = [p.pts for p in container.demux(stream) if p.pts is not None and p.size > 0]
    except av.error.FFmpegError as exc:
        raise VideoUnreadable(f"{Path(path).name} is truncated or corrupt ({exc})") from exc
    finally:
        container.close()
    if not pts:
        raise VideoUnreadable(f"{Path(path).name} holds no video frames")
    t = np.sort(np.array(pts, dtype=float)) * float(stream.time_base)
    return t - t[0]


def decode_frames(path: Path) -> Iterator[tuple[int, float, av.VideoFrame]]:
    """(frame index, seconds from the first frame, decoded frame) for every frame, in presentation
    order, decoding once with the codec's own threads. Stops with ``VideoUnreadable`` when the file
    is corrupt or ends before the length its header announces (a truncated recording)."""
    info = probe_video(path)
    container = _open(path)
    n = 0
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        first_pts = None
        for frame in container.decode(stream):
            if frame.pts is None:
                continue
            first_pts = frame.pts if first_pts is None else first_pts
            yield n, (frame.pts - first_pts) * float(stream.time_base), frame
            n += 1
    except av.error.FFmpegError as exc:
        raise VideoUnreadable(
            f"{Path(path).name} is truncated or corrupt: decoding failed after {n} frame(s) ({exc}); "
            "copy the complete file from the phone again"
        ) from exc
    finally:
        container.close()
    if n == 0:
        raise VideoUnreadable(f"{Path(path).name} holds no decodable video frames")
    if info.n_frames_expected and n < TRUNCATED_SHARE * info.n_frames_expected:
        raise VideoUnreadable(
            f"{Path(path).name} is truncated: only {n} of the {info.n_frames_expected} frames its header "
            f"announces could be decoded ({n / info.fps:.0f} of {info.duration_s:.0f} s); "
            "copy the complete file from the phone again"
        )


def luma_view(frame: av.VideoFrame) -> np.ndarray:
    """The luma of a planar YUV frame (what phones record), as a view of its first plane: several
    times cheaper than a colour conversion (valid while the frame lives)."""
    plane = frame.planes[0]
    return np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)[:, : plane.width]


#: Video (limited-range) luma 16-235 -> grey 0-255, as a colour conversion would give it.
_LIMITED_TO_FULL = np.clip(np.round((np.arange(256) - 16) * 255 / 219), 0, 255).astype(np.uint8)


def grey(frame: av.VideoFrame) -> np.ndarray:
    """The frame's grey image at full size (its own array): its luma plane, stretched from video
    range to 0-255 unless the video is full range (``yuvj*``, colour range JPEG). The same as
    ``to_ndarray(format="gray")`` (within rounding), ~30 times faster at 1080p."""
    if frame.format.name not in PLANAR_YUV:
        return frame.to_ndarray(format="gray")
    if frame.format.name.startswith("yuvj") or frame.color_range == 2:
        return luma_view(frame).copy()
    return cv2.LUT(luma_view(frame), _LIMITED_TO_FULL)


class MotionRecorder:
    """Streaming road-speed measurement: push every decoded frame in order, then ``finish()``.

    Frames are measured in greyscale, shrunk by the smallest whole factor that makes them at most
    ``max_width_px`` wide (1920 -> 960, 1280 -> 640: a whole factor averages whole blocks of
    pixels, fast and without aliasing). Speed of frame i =
    shift(i-1 -> i) / (t_i - t_(i-1)), with the body's pitch taken out at the end
    (``road_motion.correct_for_pitch``); frame 0 takes frame 1's speed."""

    def __init__(
        self,
        camera: CameraProfile,
        info: VideoInfo,
        max_width_px: int = 960,
        config: TopViewConfig | None = None,
    ) -> None:
        self.config = config or TopViewConfig()
        factor = max(1, math.ceil(info.width_px / max_width_px))
        self.w = max(info.width_px // factor // 2 * 2, 16)
        self.h = max(info.height_px // factor // 2 * 2, 16)
        cam = (
            CameraProfile(camera.intrinsics.scaled(self.w, self.h), camera.mount, camera.name)
            if (camera.intrinsics.width_px, camera.intrinsics.height_px) != (self.w, self.h)
            else camera
        )
        if (
            abs(camera.intrinsics.width_px / camera.intrinsics.height_px - info.width_px / info.height_px)
            > 0.02
        ):
            logger.warning(
                "camera profile is %dx%d but the video is %dx%d: intrinsics rescaled anyway",
                camera.intrinsics.width_px,
                camera.intrinsics.height_px,
                info.width_px,
                info.height_px,
            )
        self._meter = RoadMotionMeter(top_view(cam, info.fps, self.config), self.config)
        self._height_m = cam.mount.height_m
        self._times: list[float] = []
        self._shifts = ShiftLog(self.config.bands)
        self._changes: list[float] = []
        self._prev_low: np.ndarray | None = None

    def push(self, frame: av.VideoFrame, t_s: float) -> float | None:
        """Measure one frame; returns the road travelled since the previous frame (m, at the
        nominal pitch), or None where the flow found no reliable match."""
        gray = self._gray(frame)
        shift = self._meter.push(gray)
        # Image change: zero while standing, growing with speed even on asphalt too smooth to
        # track (what the road-plane flow needs); the clock can be aligned on it instead.
        low = cv2.blur(gray[self.h // 2 :], (3, 3)).astype(np.float32)
        prev, self._prev_low = self._prev_low, low
        self._changes.append(np.nan if prev is None else float(np.mean(np.abs(low - prev))))
        self._times.append(t_s)
        self._shifts.append(shift)
        if shift is None:
            return None
        if abs(shift.forward_m) < STANDING_SHIFT_M:
            return 0.0
        return shift.forward_m if shift.response >= self.config.min_response else None

    def _gray(self, frame: av.VideoFrame) -> np.ndarray:
        """The frame's luma at the measuring size."""
        if frame.format.name in PLANAR_YUV:
            return cv2.resize(luma_view(frame), (self.w, self.h), interpolation=cv2.INTER_AREA)
        return frame.reformat(width=self.w, height=self.h, format="gray").to_ndarray()

    def finish(self) -> VideoMotion:
        if len(self._times) < 2:
            raise VideoUnreadable(f"{len(self._times)} decodable frame(s); at least 2 are needed")
        t = np.array(self._times)
        order = np.argsort(t, kind="stable")
        t = t[order]
        nominal, r, strips = (a[order] for a in self._shifts.arrays())
        corrected = correct_for_pitch(nominal, r, strips, t, self._meter.view, self._height_m, self.config)
        change = np.array(self._changes)[order]
        change[0] = change[1]
        dt = np.diff(t, prepend=np.nan)
        with np.errstate(invalid="ignore", divide="ignore"):
            speed = corrected.forward_m / dt
        valid = np.isfinite(speed) & (r >= self.config.min_response) & (speed > -1.0)
        # a static scene has no peak: tiny shifts with low response still mean "standing"
        standing = np.isfinite(nominal) & (np.abs(nominal) < STANDING_SHIFT_M)
        valid |= standing
        speed = np.where(standing, 0.0, speed)
        speed[0], valid[0] = speed[1], valid[1]
        t = t - t[0]
        t_mid = t - np.concatenate([[0.0], np.diff(t) / 2])
        return VideoMotion(
            t,
            t_mid,
            np.where(valid, np.maximum(speed, 0.0), np.nan),
            valid,
            r,
            change,
            corrected.pitch_error_deg,
            corrected.measured_share,
        )


def measure_video_motion(
    path: Path,
    camera: CameraProfile,
    max_width_px: int = 960,
    on_progress: ProgressCallback | None = None,
    config: TopViewConfig | None = None,
) -> VideoMotion:
    """Decode every frame once and measure the road travelled since the previous one."""
    info = probe_video(path)
    recorder = MotionRecorder(camera, info, max_width_px, config)
    for i, t, frame in decode_frames(path):
        recorder.push(frame, t)
        if on_progress is not None:
            on_progress(i + 1, info.n_frames_expected)
    return recorder.finish()


def iter_frames(
    path: Path, indices: set[int] | None = None, grey_only: bool = False
) -> Iterator[tuple[int, np.ndarray]]:
    """(frame index, BGR image, or grey with ``grey_only``: ``grey``) for the frames of ``indices``
    (all when None), in order, decoding the video once; a truncated file ends the iteration with
    ``VideoUnreadable``."""
    if indices is not None and not indices:
        return
    container = _open(path)
    try:
        last = max(indices) if indices is not None else None
        for i, frame in enumerate(container.decode(video=0)):
            if last is not None and i > last:
                break
            if indices is None or i in indices:
                yield i, grey(frame) if grey_only else frame.to_ndarray(format="bgr24")
    except av.error.FFmpegError as exc:
        raise VideoUnreadable(f"{Path(path).name} is truncated or corrupt ({exc})") from exc
    finally:
        container.close()
