"""Video side of geotagging: the video's timing and the camera's speed over the road.

Decodes with PyAV at reduced resolution (grayscale, at most ``max_width_px`` wide), streaming:
memory does not grow with the video's length.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import av
import cv2
import numpy as np

from pavement.camera import CameraProfile
from pavement.errors import VideoUnreadable
from pavement.road_motion import RoadMotionMeter, TopViewConfig, top_view

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]  # (frames done, frames expected)


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


def measure_video_motion(
    path: Path,
    camera: CameraProfile,
    max_width_px: int = 480,
    on_progress: ProgressCallback | None = None,
    config: TopViewConfig | None = None,
) -> VideoMotion:
    """Decode every frame (grayscale, downscaled) and measure the road travelled since the previous
    one. Speed of frame i = shift(i-1 -> i) / (t_i - t_(i-1)); frame 0 takes frame 1's speed."""
    config = config or TopViewConfig()
    info = probe_video(path)
    scale = min(1.0, max_width_px / info.width_px)
    w = max(round(info.width_px * scale / 2) * 2, 16)
    h = max(round(info.height_px * scale / 2) * 2, 16)
    cam = (
        CameraProfile(camera.intrinsics.scaled(w, h), camera.mount, camera.name)
        if (camera.intrinsics.width_px, camera.intrinsics.height_px) != (w, h)
        else camera
    )
    if abs(camera.intrinsics.width_px / camera.intrinsics.height_px - info.width_px / info.height_px) > 0.02:
        logger.warning(
            "camera profile is %dx%d but the video is %dx%d: intrinsics rescaled anyway",
            camera.intrinsics.width_px,
            camera.intrinsics.height_px,
            info.width_px,
            info.height_px,
        )
    meter = RoadMotionMeter(top_view(cam, info.fps, config))
    times, shifts, responses, changes = [], [], [], []
    prev_low = None
    container = _open(path)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        first_pts = None
        for frame in container.decode(stream):
            if frame.pts is None:
                continue
            first_pts = frame.pts if first_pts is None else first_pts
            gray = frame.reformat(width=w, height=h, format="gray").to_ndarray()
            shift = meter.push(gray)
            # Image change: zero while standing, growing with speed even on asphalt too smooth to
            # track (what the road-plane flow needs); the clock can be aligned on it instead.
            low = cv2.blur(gray[h // 2 :], (3, 3)).astype(np.float32)
            changes.append(np.nan if prev_low is None else float(np.mean(np.abs(low - prev_low))))
            prev_low = low
            times.append((frame.pts - first_pts) * float(stream.time_base))
            shifts.append(np.nan if shift is None else shift.forward_m)
            responses.append(0.0 if shift is None else shift.response)
            if on_progress is not None:
                on_progress(len(times), info.n_frames_expected)
    except av.error.FFmpegError as exc:
        if not times:
            raise VideoUnreadable(f"{Path(path).name} cannot be decoded ({exc})") from exc
        logger.warning("%s: decoding stopped after %d frames (%s)", Path(path).name, len(times), exc)
    finally:
        container.close()
    if len(times) < 2:
        raise VideoUnreadable(f"{Path(path).name} has {len(times)} decodable frame(s); at least 2 are needed")
    t = np.array(times)
    order = np.argsort(t, kind="stable")  # B-frames: decode order may differ from presentation
    t, d, r = t[order], np.array(shifts)[order], np.array(responses)[order]
    change = np.array(changes)[order]
    change[0] = change[1]
    dt = np.diff(t, prepend=np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        speed = d / dt
    valid = np.isfinite(speed) & (r >= config.min_response) & (speed > -1.0)
    # a static scene has no peak: tiny shifts with low response still mean "standing"
    standing = np.isfinite(d) & (np.abs(d) < 0.02)
    valid |= standing
    speed = np.where(standing, 0.0, speed)
    speed[0], valid[0] = speed[1], valid[1]
    t = t - t[0]
    t_mid = t - np.concatenate([[0.0], np.diff(t) / 2])
    return VideoMotion(t, t_mid, np.where(valid, np.maximum(speed, 0.0), np.nan), valid, r, change)


def iter_frames(path: Path, indices: set[int] | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """(frame index, BGR image) for the frames of ``indices`` (all when None), in order, decoding
    the video once; a truncated file ends the iteration with ``VideoUnreadable``."""
    if indices is not None and not indices:
        return
    container = _open(path)
    try:
        last = max(indices) if indices is not None else None
        for i, frame in enumerate(container.decode(video=0)):
            if last is not None and i > last:
                break
            if indices is None or i in indices:
                yield i, frame.to_ndarray(format="bgr24")
    except av.error.FFmpegError as exc:
        raise VideoUnreadable(f"{Path(path).name} is truncated or corrupt ({exc})") from exc
    finally:
        container.close()
