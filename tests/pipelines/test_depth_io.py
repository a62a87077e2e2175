"""Reading a depth-map folder (depth.csv, intrinsics.json, 16-bit PNG maps): good and bad input."""

import json

import cv2
import numpy as np
import pytest

from pavement.errors import DepthMapError
from pipelines.depth_io import read_depth_folder

W, H = 32, 18
INTRINSICS = {"width_px": W, "height_px": H, "fx_px": 22.8, "fy_px": 22.8, "cx_px": 16.0, "cy_px": 9.0}


def make_folder(root, n=3, times=None, header="file,video_time_s", intrinsics=INTRINSICS):
    """A depth folder of ``n`` maps of a ramp (mm), 0 (no return) in the top rows."""
    folder = root / "depth"
    folder.mkdir(parents=True)
    rows = [header]
    for i in range(n):
        mm = np.tile(np.arange(1000, 1000 + W * 10, 10, dtype=np.uint16), (H, 1))
        mm[:4] = 0
        cv2.imwrite(str(folder / f"depth_{i:06d}.png"), mm)
        rows.append(f"depth_{i:06d}.png,{(times or [0.5 * i for i in range(n)])[i]}")
    (folder / "depth.csv").write_text("\n".join(rows) + "\n")
    (folder / "intrinsics.json").write_text(json.dumps(intrinsics))
    return folder


def test_reads_a_run_folder_and_loads_metres(tmp_path):
    make_folder(tmp_path, n=3)
    series = read_depth_folder(tmp_path)  # the run folder: its depth/ is found
    assert len(series) == 3 and series.video_time_s.tolist() == [0.0, 0.5, 1.0]
    assert (series.intrinsics.width_px, series.intrinsics.height_px) == (W, H)
    depth = series.load(1)
    assert depth.dtype == np.float32 and depth.shape == (H, W)
    assert np.isnan(depth[:4]).all()  # 0 = no return
    assert depth[10, 0] == pytest.approx(1.0) and depth[10, -1] == pytest.approx(1.31)
    assert read_depth_folder(tmp_path / "depth").files == series.files


def _rewrite_map(folder, image):
    cv2.imwrite(str(folder / "depth_000001.png"), image)


@pytest.mark.parametrize(
    ("spoil", "message"),
    [
        (lambda f: (f / "depth.csv").unlink(), "no depth.csv"),
        (lambda f: (f / "intrinsics.json").unlink(), "no intrinsics.json"),
        (lambda f: (f / "intrinsics.json").write_text("{"), "cannot read"),
        (
            lambda f: (f / "intrinsics.json").write_text(json.dumps({**INTRINSICS, "k1": 0.1})),
            r"unknown \['k1'\]",
        ),
        (
            lambda f: (f / "intrinsics.json").write_text(json.dumps({**INTRINSICS, "fx_px": -3})),
            "focal lengths must be positive",
        ),
        (lambda f: _rewrite_map(f, np.full((H, W), 100, np.uint8)), "holds 8-bit grey pixels"),
        (lambda f: _rewrite_map(f, np.full((H, W, 3), 1000, np.uint16)), "holds 16-bit RGB pixels"),
        (
            lambda f: _rewrite_map(f, np.full((H, W + 8), 1000, np.uint16)),
            "is 40x18 px but intrinsics.json says 32x18",
        ),
        (lambda f: (f / "depth_000001.png").write_bytes(b"not an image"), "not a PNG"),
        (lambda f: (f / "depth_000002.png").unlink(), "depth_000002.png is not in"),
        (
            lambda f: (f / "depth.csv").write_text("file,video_time_s,confidence\ndepth_000000.png,0,1\n"),
            r"unknown: \['confidence'\]",
        ),
        (
            lambda f: (f / "depth.csv").write_text("file\ndepth_000000.png\n"),
            "expected exactly file,video_time_s",
        ),
        (lambda f: (f / "depth.csv").write_text("file,video_time_s\n"), "lists no depth maps"),
        (
            lambda f: (f / "depth.csv").write_text(
                "file,video_time_s\ndepth_000000.png,1.0\ndepth_000001.png,0.5\n"
            ),
            "line 3: video_time_s 0.5 is not after the previous row's 1",
        ),
        (
            lambda f: (f / "depth.csv").write_text(
                "file,video_time_s\ndepth_000000.png,1.0\ndepth_000001.png,1.0\n"
            ),
            "is not after",
        ),
        (
            lambda f: (f / "depth.csv").write_text("file,video_time_s\ndepth_000000.png,soon\n"),
            "not a number",
        ),
        (
            lambda f: (f / "depth.csv").write_text("file,video_time_s\nintrinsics.json,0\n"),
            "neither .png nor .exr",
        ),
    ],
)
def test_bad_folders_say_what_is_wrong(tmp_path, spoil, message):
    folder = make_folder(tmp_path)
    spoil(folder)
    with pytest.raises(DepthMapError, match=message):
        read_depth_folder(folder)


def test_exr_is_read_or_refused_with_the_fix(tmp_path):
    folder = make_folder(tmp_path, n=1)
    depth = np.full((H, W), 2.5, np.float32)
    path = folder / "depth_000000.exr"
    try:
        written = cv2.imwrite(str(path), depth)
    except cv2.error:
        written = False
    if not written:  # an OpenCV without OpenEXR (as pip's opencv-python-headless 5.0)
        path.write_bytes(b"\x76\x2f\x31\x01" + bytes(60))  # an EXR file's magic number
    (folder / "depth.csv").write_text("file,video_time_s\ndepth_000000.exr,0\n")
    if cv2.haveImageReader(str(path)):
        assert read_depth_folder(folder).load(0) == pytest.approx(depth)
    else:
        with pytest.raises(DepthMapError, match="cannot read OpenEXR; convert the maps to 16-bit"):
            read_depth_folder(folder)
