"""Frames as the stages read them: the grey image straight from the luma plane."""

import io

import av
import cv2
import numpy as np
import pytest

from pipelines.video_motion import grey, iter_frames


def _encode(pix_fmt: str) -> io.BytesIO:
    """Three 64x48 frames of a colour gradient with texture, H.264 in ``pix_fmt``."""
    buf = io.BytesIO()
    out = av.open(buf, "w", format="mp4")
    stream = out.add_stream("libx264", rate=10)
    stream.width, stream.height, stream.pix_fmt = 64, 48, pix_fmt
    stream.options = {"crf": "10"}
    rng = np.random.default_rng(0)
    x = np.linspace(0, 255, 64)[None, :, None]
    for _ in range(3):
        rgb = np.clip(x + rng.normal(0, 20, (48, 64, 3)) + [0, 40, -40], 0, 255).astype(np.uint8)
        for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)
    out.close()
    buf.seek(0)
    return buf


@pytest.mark.parametrize("pix_fmt", ["yuv420p", "yuvj420p"])  # video range (phones) and full range
def test_grey_is_the_decoders_grey_and_near_the_colour_conversion(pix_fmt):
    with av.open(_encode(pix_fmt)) as container:
        for frame in container.decode(video=0):
            got = grey(frame)
            assert got.dtype == np.uint8 and np.array_equal(got, frame.to_ndarray(format="gray"))
            # through colour: chroma subsampling moves single pixels, not the picture
            want = cv2.cvtColor(frame.to_ndarray(format="bgr24"), cv2.COLOR_BGR2GRAY).astype(int)
            assert abs((got - want).mean()) < 2.0 and np.abs(got - want).mean() < 2.0


def test_iter_frames_gives_grey_or_colour(synth_run):
    video = synth_run / "video.mp4"
    ((i, colour),) = list(iter_frames(video, {5}))
    ((j, grey_image),) = list(iter_frames(video, {5}, grey_only=True))
    assert i == j == 5 and colour.ndim == 3 and grey_image.ndim == 2
    assert np.abs(cv2.cvtColor(colour, cv2.COLOR_BGR2GRAY).astype(int) - grey_image).mean() < 2.0


@pytest.mark.parametrize(
    ("size", "measured"),
    [
        ((1920, 1080), (960, 540)),
        ((1280, 720), (640, 360)),
        ((3840, 2160), (960, 540)),
        ((640, 360), (640, 360)),
    ],
)
def test_the_flow_shrinks_the_video_by_a_whole_factor(size, measured):
    """A whole factor averages whole blocks of pixels: fast, and no aliasing of the road texture
    the pitch is measured from."""
    from pavement.camera import CameraProfile
    from pipelines.video_motion import MotionRecorder, VideoInfo
    from tests.drives import CAMERA_DICT

    camera = CameraProfile.from_dict(
        {**CAMERA_DICT, "intrinsics": {"width_px": size[0], "height_px": size[1], "hfov_deg": 70.0}}
    )
    info = VideoInfo("video.mp4", size[0], size[1], 30.0, 300, 10.0, None)
    recorder = MotionRecorder(camera, info)
    assert (recorder.w, recorder.h) == measured
