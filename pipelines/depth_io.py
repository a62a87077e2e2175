"""Reading a folder of depth maps from a phone's depth sensor (LiDAR / ToF): ``RUN/depth/``.

Layout (docs/run_folder.md):

- ``depth.csv``: header ``file,video_time_s``, one row per map: its file name (relative to the
  folder) and its time in seconds from the video's start (the video's own clock, as the frames'
  presentation times), strictly increasing;
- ``intrinsics.json``: the depth sensor's pinhole ``width_px``, ``height_px``, ``fx_px``, ``fy_px``,
  ``cx_px``, ``cy_px`` (an all-zero ``distortion`` may be given);
- the maps: z-depth along the optical axis, 0 = no return, either 16-bit single-channel PNG in
  millimetres or 32-bit float single-channel OpenEXR in metres. OpenEXR needs an OpenCV built with
  it (OpenCV 4 also wants ``OPENCV_IO_ENABLE_OPENEXR=1``); without it EXR maps are refused and
  the message says how to convert them.

Everything but the pixels is checked when the folder is read (PNG headers included), so a bad
folder fails at once; ``DepthSeries.load`` decodes one map when it is needed.
"""

from __future__ import annotations

import csv
import json
import struct
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from pavement.camera import CameraIntrinsics
from pavement.errors import CalibrationError, DepthMapError

INDEX_NAME = "depth.csv"
INTRINSICS_NAME = "intrinsics.json"
COLUMNS = ("file", "video_time_s")
_INTRINSICS_KEYS = ("width_px", "height_px", "fx_px", "fy_px", "cx_px", "cy_px")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_COLOUR = {0: "grey", 2: "RGB", 3: "palette", 4: "grey + alpha", 6: "RGBA"}
_FORMAT_HINT = (
    "depth maps must be 16-bit single-channel PNG in millimetres (0 = no return) or 32-bit float "
    "single-channel EXR in metres"
)


@dataclass(frozen=True, eq=False)
class DepthSeries:
    """The depth maps of one run: ``files`` (n,) and their ``video_time_s`` (n,), increasing, and
    the sensor's ``intrinsics``. Maps are decoded one at a time by ``load``."""

    folder: Path
    files: tuple[Path, ...]
    video_time_s: np.ndarray
    intrinsics: CameraIntrinsics

    def __len__(self) -> int:
        return len(self.files)

    def load(self, i: int) -> np.ndarray:
        """Map ``i`` as float32 metres (height_px, width_px), NaN where there is no return."""
        path = self.files[i]
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if image is None:
            raise DepthMapError(f"cannot decode the depth map {path}; {_FORMAT_HINT}")
        if image.ndim != 2:
            raise DepthMapError(f"{path.name} has {image.shape[2]} channels; {_FORMAT_HINT}")
        k = self.intrinsics
        if image.shape != (k.height_px, k.width_px):
            raise DepthMapError(_size_message(path, image.shape[1], image.shape[0], k))
        if image.dtype == np.uint16:
            depth = image.astype(np.float32) / 1000.0
        elif image.dtype == np.float32 and path.suffix.lower() == ".exr":
            depth = image.copy()
        else:
            raise DepthMapError(f"{path.name} holds {image.dtype} pixels; {_FORMAT_HINT}")
        depth[~np.isfinite(depth) | (depth <= 0)] = np.nan
        return depth


def _size_message(path: Path, width: int, height: int, k: CameraIntrinsics) -> str:
    return (
        f"{path.name} is {width}x{height} px but {INTRINSICS_NAME} says {k.width_px}x{k.height_px}; "
        "give the depth sensor's own intrinsics (the colour camera's scaled to the map's size)"
    )


def _depth_folder(path: Path) -> Path:
    """The folder holding depth.csv: ``path`` itself or its ``depth/`` (a run folder)."""
    path = Path(path)
    if not (path / INDEX_NAME).is_file() and (path / "depth").is_dir():
        return path / "depth"
    return path


def _read_intrinsics(path: Path) -> CameraIntrinsics:
    if not path.is_file():
        raise DepthMapError(
            f"no {INTRINSICS_NAME} in {path.parent}; give the depth sensor's pinhole as "
            '{"width_px", "height_px", "fx_px", "fy_px", "cx_px", "cy_px"} (docs/run_folder.md)'
        )
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DepthMapError(f"cannot read {path}: {exc}") from exc
    if not isinstance(d, dict):
        raise DepthMapError(f"{path} must hold one JSON object with {', '.join(_INTRINSICS_KEYS)}")
    missing = [key for key in _INTRINSICS_KEYS if key not in d]
    unknown = sorted(set(d) - {*_INTRINSICS_KEYS, "distortion"})
    if missing or unknown:
        raise DepthMapError(
            f"{path}: missing {missing or 'nothing'}, unknown {unknown or 'nothing'}; expected exactly "
            f"{', '.join(_INTRINSICS_KEYS)} (and optionally an all-zero distortion)"
        )
    if any(float(v) != 0 for v in d.get("distortion", [])):
        raise DepthMapError(f"{path}: depth maps must be undistorted; undistort them and drop the distortion")
    try:
        width, height = int(d["width_px"]), int(d["height_px"])
        fx, fy, cx, cy = (float(d[key]) for key in ("fx_px", "fy_px", "cx_px", "cy_px"))
        return CameraIntrinsics(width, height, fx, fy, cx, cy)
    except (TypeError, ValueError, CalibrationError) as exc:
        raise DepthMapError(f"{path}: {exc}") from exc


def _check_png(path: Path, k: CameraIntrinsics) -> None:
    """Bit depth, channels and size from the PNG header (no decoding)."""
    try:
        with path.open("rb") as f:
            head = f.read(26)
    except OSError as exc:
        raise DepthMapError(f"cannot read the depth map {path}: {exc}") from exc
    if len(head) < 26 or head[:8] != _PNG_SIGNATURE or head[12:16] != b"IHDR":
        raise DepthMapError(f"{path.name} is not a PNG file; {_FORMAT_HINT}")
    width, height, bits, colour = struct.unpack(">IIBB", head[16:26])
    if bits != 16 or colour != 0:
        raise DepthMapError(
            f"{path.name} holds {bits}-bit {_PNG_COLOUR.get(colour, f'colour type {colour}')} pixels; "
            f"{_FORMAT_HINT}"
        )
    if (width, height) != (k.width_px, k.height_px):
        raise DepthMapError(_size_message(path, width, height, k))


def _check_exr(path: Path) -> None:
    if not cv2.haveImageReader(str(path)):
        raise DepthMapError(
            f"{path.name}: this OpenCV ({cv2.__version__}) cannot read OpenEXR; convert the maps to "
            "16-bit single-channel PNG in millimetres (round(depth_m * 1000), 0 = no return) and list "
            "the PNG files in depth.csv"
        )


def read_depth_folder(path: Path) -> DepthSeries:
    """The depth maps listed in ``depth.csv`` of ``path`` (a depth folder, or a run folder with
    ``depth/``), checked against ``intrinsics.json``; errors say what is wrong and how to fix it."""
    folder = _depth_folder(Path(path))
    index = folder / INDEX_NAME
    if not index.is_file():
        raise DepthMapError(
            f"no {INDEX_NAME} in {folder}; a depth-map folder holds {INDEX_NAME} (columns "
            f"{','.join(COLUMNS)}: each map's file and its seconds from the video's start), "
            f"{INTRINSICS_NAME} and the maps (docs/run_folder.md)"
        )
    intrinsics = _read_intrinsics(folder / INTRINSICS_NAME)
    try:
        with index.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header = [h.strip() for h in next(reader, [])]
            rows = [(n, r) for n, r in enumerate(reader, start=2) if any(c.strip() for c in r)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DepthMapError(f"cannot read {index}: {exc}") from exc
    unknown = [h for h in header if h not in COLUMNS]
    if unknown or sorted(header) != sorted(COLUMNS):
        raise DepthMapError(
            f"{index} has the columns {header}"
            + (f" (unknown: {unknown})" if unknown else "")
            + f"; expected exactly {','.join(COLUMNS)}"
        )
    if not rows:
        raise DepthMapError(f"{index} lists no depth maps; add one row per map: {','.join(COLUMNS)}")
    col_file, col_time = header.index("file"), header.index("video_time_s")
    files, times = [], []
    for line_no, row in rows:
        if len(row) != len(header):
            raise DepthMapError(f"{index} line {line_no} has {len(row)} fields, expected {len(header)}")
        name = row[col_file].strip()
        try:
            t = float(row[col_time])
        except ValueError:
            raise DepthMapError(
                f"{index} line {line_no}: video_time_s {row[col_time]!r} is not a number of seconds"
            ) from None
        if not np.isfinite(t):
            raise DepthMapError(f"{index} line {line_no}: video_time_s must be finite, got {t}")
        if times and t <= times[-1]:
            raise DepthMapError(
                f"{index} line {line_no}: video_time_s {t:g} is not after the previous row's {times[-1]:g}; "
                "list the maps in time order, one time per map (seconds from the video's start)"
            )
        file = folder / name
        if not file.is_file():
            raise DepthMapError(f"{index} line {line_no}: {name} is not in {folder}")
        suffix = file.suffix.lower()
        if suffix == ".png":
            _check_png(file, intrinsics)
        elif suffix == ".exr":
            _check_exr(file)
        else:
            raise DepthMapError(f"{index} line {line_no}: {name} is neither .png nor .exr; {_FORMAT_HINT}")
        files.append(file)
        times.append(t)
    return DepthSeries(folder, tuple(files), np.array(times), intrinsics)
