"""Build the small labelled set for the privacy masker (faces and licence plates), deterministically.

Nothing here is a real patrol-car scene with real people and real plates: no such labelled data is on
this machine. The set is made from what is:

- **road frames**: the bundled synthetic run (``sample_data/run_500m/video.mp4``, 1280x720, rendered by
  ``pavement synth``), some upscaled to 1920x1080 before anything is drawn on them;
- **vehicles**: flat drawings of car rears (ahead, parked) and fronts (oncoming), placed on the road
  with the run's true camera (height, pitch, focal length), 4-22 m ahead;
- **licence plates**: rendered with the layout of a Japanese medium plate (330 x 165 mm: region name
  and 3-digit class number on top, one hiragana and the 4-digit number below, frame line, bolts) in
  the four colour schemes (white/green private, yellow/black kei, green/white and black/yellow
  commercial). No Japanese font is installed here (``fc-list``: DejaVu only), so the region name
  and the hiragana are stroke glyphs standing in for kanji and kana; the digits are OpenCV's
  Hershey font, condensed to the plate's proportions;
- **faces**: the five real faces in photos that installed packages ship (ultralytics'
  ``assets/bus.jpg`` and ``assets/zidane.jpg``, matplotlib's ``sample_data/grace_hopper.jpg``),
  boxed by hand, pasted as whole pedestrians (the two men of ``bus.jpg``) on the shoulders or as
  drivers behind the windscreens of oncoming cars, at realistic sizes (about 8-45 px tall);
  the three photos themselves, downscaled, are also in the set (real scenes, not road views);
- **negatives**: synthetic frames with nothing to mask and RDD2022 motorbike photos of real roads
  (markings, crossings, manholes) from ``../shared/data`` when present, for the false-positive area.

Labels are exact for what is drawn: a plate's box is the bounding box of its warped quadrilateral,
a face's box is its hand box scaled and moved with the paste.

    python eval/privacy_set.py [--out work/privacy_set]

writes ``<out>/*.jpg`` and ``<out>/labels.json``. ``eval/privacy.py`` builds the same set in memory.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
RUN = REPO / "sample_data" / "run_500m"
RDD_IMAGES = REPO.parent / "shared" / "data" / "rdd2022_china_motorbike" / "images"

#: Hand boxes (x1, y1, x2, y2, brow to chin, ear to ear) of the faces in photos shipped by packages.
FACE_PHOTOS: dict[str, tuple[str, str, list[tuple[int, int, int, int]]]] = {
    "bus": ("ultralytics", "assets/bus.jpg", [(113, 420, 156, 474), (270, 426, 308, 476)]),
    "zidane": ("ultralytics", "assets/zidane.jpg", [(545, 262, 665, 450), (905, 100, 1055, 290)]),
    "hopper": ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg", [(172, 125, 362, 340)]),
}
#: Whole pedestrians in bus.jpg: (crop box, index of their face in FACE_PHOTOS["bus"]).
PEDESTRIANS = [((48, 392, 248, 905), 0), ((222, 400, 348, 862), 1)]

PLATE_MM = (330.0, 165.0)  # Japanese medium plate, width x height
PX_PER_MM = 2  # the plate is drawn at 660 x 330 px, then warped down
# (background, characters) in BGR: private white/green, kei yellow/black, commercial green/white,
# kei commercial black/yellow; drawn with these shares.
PLATE_SCHEMES = [
    ((236, 238, 240), (48, 96, 22)),
    ((40, 198, 238), (24, 24, 24)),
    ((52, 104, 22), (236, 238, 240)),
    ((28, 28, 28), (40, 198, 238)),
]
PLATE_SCHEME_P = [0.62, 0.26, 0.07, 0.05]
CAR_COLOURS = [(235, 235, 235), (190, 192, 196), (40, 40, 42), (140, 60, 30), (40, 40, 160), (90, 110, 120)]


@dataclass
class Item:
    """One labelled image: boxes are (x1, y1, x2, y2) in its pixels."""

    name: str
    image: np.ndarray
    source: str
    faces: list[list[float]] = field(default_factory=list)
    plates: list[list[float]] = field(default_factory=list)


def _site_file(package: str, relative: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package {package} is not installed; `make test` installs it")
    return Path(next(iter(spec.submodule_search_locations))) / relative


def load_face_photos() -> dict[str, tuple[np.ndarray, list[tuple[int, int, int, int]]]]:
    """The photos with real faces, as BGR arrays, with their hand boxes."""
    photos = {}
    for key, (package, relative, boxes) in FACE_PHOTOS.items():
        image = cv2.imread(str(_site_file(package, relative)))
        if image is None:
            raise FileNotFoundError(f"{package}/{relative} cannot be read")
        photos[key] = (image, boxes)
    return photos


# --- plates -----------------------------------------------------------------------------------------


def _glyph(canvas: np.ndarray, rng: np.random.Generator, box_mm, colour, stroke_mm: float) -> None:
    """A kanji/kana stand-in: 3-6 straight strokes inside ``box_mm`` (x, y, w, h in mm)."""
    x, y, w, h = (v * PX_PER_MM for v in box_mm)
    t = max(1, round(stroke_mm * PX_PER_MM))
    for _ in range(rng.integers(3, 7)):
        kind = rng.integers(0, 3)
        if kind == 0:  # horizontal
            yy = y + rng.uniform(0.1, 0.9) * h
            p, q = (x + rng.uniform(0, 0.3) * w, yy), (x + rng.uniform(0.7, 1) * w, yy)
        elif kind == 1:  # vertical
            xx = x + rng.uniform(0.15, 0.85) * w
            p, q = (xx, y + rng.uniform(0, 0.3) * h), (xx, y + rng.uniform(0.7, 1) * h)
        else:  # diagonal
            p = (x + rng.uniform(0, 0.5) * w, y + rng.uniform(0, 0.4) * h)
            q = (x + rng.uniform(0.5, 1) * w, y + rng.uniform(0.6, 1) * h)
        cv2.line(canvas, tuple(map(round, p)), tuple(map(round, q)), colour, t, cv2.LINE_AA)


def _char(canvas: np.ndarray, ch: str, box_mm, colour) -> None:
    """One Hershey character stretched into ``box_mm`` (x, y, w, h in mm), like the plate's tall font."""
    x, y, w, h = (round(v * PX_PER_MM) for v in box_mm)
    tile = np.zeros((120, 100), np.uint8)
    cv2.putText(tile, ch, (8, 104), cv2.FONT_HERSHEY_SIMPLEX, 3.6, 255, 13, cv2.LINE_AA)
    ys, xs = np.nonzero(tile > 0)
    tile = tile[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    alpha = cv2.resize(tile, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32)[..., None] / 255
    region = canvas[y : y + h, x : x + w]
    region[:] = (region * (1 - alpha) + np.asarray(colour, np.float32) * alpha).astype(np.uint8)


def render_plate(rng: np.random.Generator) -> np.ndarray:
    """A Japanese medium plate, BGR, 660 x 330 px (2 px per mm), random scheme and number."""
    scheme = int(rng.choice(len(PLATE_SCHEMES), p=PLATE_SCHEME_P))
    bg, fg = PLATE_SCHEMES[scheme]
    w, h = (round(v * PX_PER_MM) for v in PLATE_MM)
    plate = np.full((h, w, 3), bg, np.uint8)
    cv2.rectangle(plate, (6, 6), (w - 7, h - 7), fg, 4 * PX_PER_MM // 2, cv2.LINE_AA)  # frame line
    for bx in (70, 260):  # bolts
        cv2.circle(plate, (bx * PX_PER_MM, 22 * PX_PER_MM), 6 * PX_PER_MM, (150, 150, 150), -1, cv2.LINE_AA)
    # Top row: region name (2 glyphs) and class number (2-3 digits).
    for i in range(2):
        _glyph(plate, rng, (86 + 33 * i, 12, 28, 34), fg, 3.5)
    class_no = str(rng.choice(["300", "330", "500", "580", "33", "50", "400"]))
    for i, ch in enumerate(class_no):
        _char(plate, ch, (165 + 24 * i, 13, 19, 33), fg)
    # Bottom row: hiragana and the number, "12-34" or "・・12"-style with dots for blanks.
    _glyph(plate, rng, (16, 92, 34, 36), fg, 4.0)
    digits = [str(d) for d in rng.integers(0, 10, 4)]
    n_blank = int(rng.choice([0, 0, 0, 1, 2]))
    digits[0] = str(rng.integers(1, 10)) if n_blank == 0 else digits[0]
    xs = (62, 106, 190, 234)
    for i, (xx, ch) in enumerate(zip(xs, digits, strict=True)):
        if i < n_blank:
            cv2.circle(plate, ((xx + 20) * PX_PER_MM, 108 * PX_PER_MM), 5 * PX_PER_MM, fg, -1, cv2.LINE_AA)
        else:
            _char(plate, ch, (xx, 62, 38, 88), fg)
    if n_blank == 0:
        cv2.rectangle(plate, (152 * PX_PER_MM, 104 * PX_PER_MM), (178 * PX_PER_MM, 111 * PX_PER_MM), fg, -1)
    return plate


def warp_onto(canvas: np.ndarray, patch: np.ndarray, quad: np.ndarray, alpha_gain: float = 1.0) -> None:
    """Draw ``patch`` into ``canvas`` on the quadrilateral ``quad`` (4, 2) (tl, tr, br, bl), in place."""
    quad = np.asarray(quad, np.float32)
    width = float(np.linalg.norm(quad[1] - quad[0]))
    # Shrink first (area averaging), then warp: a direct warp of a large patch aliases.
    target_w = max(8, round(2 * width))
    if patch.shape[1] > target_w:
        scale = target_w / patch.shape[1]
        patch = cv2.resize(
            patch, (target_w, max(4, round(patch.shape[0] * scale))), interpolation=cv2.INTER_AREA
        )
    ph, pw = patch.shape[:2]
    src = np.float32([[0, 0], [pw, 0], [pw, ph], [0, ph]])
    m = cv2.getPerspectiveTransform(src, quad)
    size = (canvas.shape[1], canvas.shape[0])
    warped = cv2.warpPerspective(patch, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    alpha = cv2.warpPerspective(np.ones((ph, pw), np.float32), m, size, flags=cv2.INTER_LINEAR)
    alpha = (alpha * alpha_gain)[..., None]
    canvas[:] = (canvas * (1 - alpha) + warped * alpha).astype(np.uint8)


# --- scene geometry ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Camera:
    """Pinhole camera at ``height_m`` above the road, pitched down by ``pitch_deg``."""

    f_px: float
    cx: float
    cy: float
    height_m: float
    pitch_deg: float

    def project(self, x_m: np.ndarray, z_m: np.ndarray, d_m: float) -> np.ndarray:
        """Image points (n, 2) of points ``x_m`` right, ``z_m`` above the road, ``d_m`` ahead."""
        p = math.radians(self.pitch_deg)
        y = self.height_m - np.asarray(z_m, float)  # down from the camera
        depth = d_m * math.cos(p) + y * math.sin(p)
        u = self.cx + self.f_px * np.asarray(x_m, float) / depth
        v = self.cy + self.f_px * (y * math.cos(p) - d_m * math.sin(p)) / depth
        return np.stack([u, v], axis=-1)

    def scaled(self, factor: float) -> Camera:
        return Camera(self.f_px * factor, self.cx * factor, self.cy * factor, self.height_m, self.pitch_deg)


def run_camera() -> Camera:
    truth = json.loads((RUN / "truth.json").read_text())["camera"]
    k, mount = truth["intrinsics"], truth["mount"]
    return Camera(k["fx_px"], k["cx_px"], k["cy_px"], mount["height_m"], mount["pitch_deg"])


def _rect(cam: Camera, d: float, x0: float, x1: float, z0: float, z1: float) -> np.ndarray:
    return cam.project(np.array([x0, x1, x1, x0]), np.array([z1, z1, z0, z0]), d).astype(np.int32)


def draw_vehicle(
    canvas: np.ndarray,
    rng: np.random.Generator,
    cam: Camera,
    d: float,
    lateral_m: float,
    facing: str,
    face: np.ndarray | None = None,
) -> tuple[list[float], list[float] | None, np.ndarray]:
    """Draw a car's rear (``facing="rear"``) or front at ``d`` m ahead, ``lateral_m`` right of the camera.

    ``face``: a head-and-shoulders BGR crop put behind the windscreen of a front view (the driver).
    Returns the plate's box, the driver's face box (or None) and the car's outline box (x1, y1, x2, y2)
    as an int array for overlap tests.
    """
    half = rng.uniform(0.8, 0.87)
    roof = rng.uniform(1.4, 1.9)
    body = np.asarray(CAR_COLOURS[rng.integers(len(CAR_COLOURS))], float) * rng.uniform(0.8, 1.05)
    body_c = tuple(int(c) for c in np.clip(body, 0, 255))
    dark = (32, 32, 34)
    x = lateral_m
    # Shadow on the road, tyres, lower body, cabin.
    cv2.fillPoly(canvas, [_rect(cam, d, x - half - 0.05, x + half + 0.05, -0.02, 0.08)], (50, 52, 55))
    for s in (-1, 1):
        cv2.fillPoly(
            canvas,
            [
                _rect(
                    cam,
                    d,
                    x + s * half - (0.22 if s > 0 else 0),
                    x + s * half + (0.22 if s < 0 else 0),
                    0,
                    0.36,
                )
            ],
            dark,
        )
    cv2.fillPoly(canvas, [_rect(cam, d, x - half, x + half, 0.2, roof * 0.58)], body_c)
    cabin = cam.project(
        np.array([x - half * 0.82, x + half * 0.82, x + half, x - half]),
        np.array([roof, roof, roof * 0.58, roof * 0.58]),
        d,
    ).astype(np.int32)
    cv2.fillPoly(canvas, [cabin], body_c)
    glass = cam.project(
        np.array([x - half * 0.72, x + half * 0.72, x + half * 0.86, x - half * 0.86]),
        np.array([roof * 0.95, roof * 0.95, roof * 0.64, roof * 0.64]),
        d,
    ).astype(np.int32)
    cv2.fillPoly(canvas, [glass], (48, 44, 40) if facing == "rear" else (70, 66, 60))
    face_box = None
    if facing == "front" and face is not None:
        # The driver sits on the right (Japan): to the viewer's left of the oncoming car's centre.
        # The crop is the face box enlarged 2.0x wide and 1.8x tall (_head_crop); a face is ~0.16 m wide.
        crop_w = 0.32
        crop_h = crop_w * face.shape[0] / face.shape[1]
        hx, hz = x - half * 0.45, roof * 0.8
        quad = cam.project(
            np.array([hx - crop_w / 2, hx + crop_w / 2, hx + crop_w / 2, hx - crop_w / 2]),
            np.array([hz + crop_h / 2, hz + crop_h / 2, hz - crop_h / 2, hz - crop_h / 2]),
            d,
        )
        warp_onto(canvas, (face * rng.uniform(0.55, 0.8)).astype(np.uint8), quad, alpha_gain=0.92)
        (x0, y0), (x1, y1) = quad[0], quad[2]
        fy = (1.8 - 1.0) / 2 / 1.8
        face_box = [x0 + 0.25 * (x1 - x0), y0 + fy * (y1 - y0), x0 + 0.75 * (x1 - x0), y1 - fy * (y1 - y0)]
    # Lights and bumper.
    lamp = (30, 30, 200) if facing == "rear" else (225, 235, 240)
    zl = (0.72, 0.86) if facing == "rear" else (0.62, 0.74)
    for s in (-1, 1):
        x0, x1 = sorted((x + s * half * 0.98, x + s * half * 0.68))
        cv2.fillPoly(canvas, [_rect(cam, d, x0, x1, *zl)], lamp)
    cv2.fillPoly(canvas, [_rect(cam, d, x - half, x + half, 0.22, 0.4)], tuple(int(c * 0.55) for c in body_c))
    if facing == "front":
        cv2.fillPoly(canvas, [_rect(cam, d, x - 0.45, x + 0.45, 0.55, 0.72)], dark)  # grille
    # Plate: rear on the bumper or the boot lid, front on the bumper.
    pz = rng.uniform(0.42, 0.78) if facing == "rear" else rng.uniform(0.38, 0.5)
    px = x + rng.uniform(-0.08, 0.08)
    pw, ph = PLATE_MM[0] / 1000, PLATE_MM[1] / 1000
    yaw = rng.uniform(-0.04, 0.04)  # metres of depth difference across the plate: a slight turn
    left = cam.project(np.array([px - pw / 2] * 2), np.array([pz + ph / 2, pz - ph / 2]), d - yaw)
    right = cam.project(np.array([px + pw / 2] * 2), np.array([pz + ph / 2, pz - ph / 2]), d + yaw)
    quad = np.array([left[0], right[0], right[1], left[1]])
    plate = render_plate(rng)
    plate = np.clip(plate * rng.uniform(0.55, 1.05), 0, 255).astype(np.uint8)  # shade
    warp_onto(canvas, plate, quad)
    plate_box = [
        float(quad[:, 0].min()),
        float(quad[:, 1].min()),
        float(quad[:, 0].max()),
        float(quad[:, 1].max()),
    ]
    outline = np.concatenate([cabin, _rect(cam, d, x - half - 0.05, x + half + 0.05, -0.02, 0.36)])
    car_box = np.array([outline[:, 0].min(), outline[:, 1].min(), outline[:, 0].max(), outline[:, 1].max()])
    return plate_box, face_box, car_box


def _head_crop(image: np.ndarray, box) -> np.ndarray:
    """The face box enlarged to 2.0x its width and 1.8x its height, centred (clipped to the image)."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    X1, X2 = round(cx - w), round(cx + w)
    Y1, Y2 = round(cy - 0.9 * h), round(cy + 0.9 * h)
    H, W = image.shape[:2]
    pad = cv2.copyMakeBorder(image, H, H, W, W, cv2.BORDER_REPLICATE)
    return pad[Y1 + H : Y2 + H, X1 + W : X2 + W]


def paste_pedestrian(
    canvas: np.ndarray,
    rng: np.random.Generator,
    cam: Camera,
    photo: np.ndarray,
    crop,
    face_box,
    d: float,
    lat: float,
) -> tuple[list[float], np.ndarray]:
    """Paste a whole person (``crop`` of ``photo``) standing ``d`` m ahead, ``lat`` m right; return the
    face box in the canvas and the person's box."""
    x1, y1, x2, y2 = crop
    person = photo[y1:y2, x1:x2]
    if rng.random() < 0.5:
        person = person[:, ::-1]
        fx1, fx2 = x2 - face_box[2], x2 - face_box[0]
    else:
        fx1, fx2 = face_box[0] - x1, face_box[2] - x1
    fy1, fy2 = face_box[1] - y1, face_box[3] - y1
    height_m = rng.uniform(1.6, 1.8)
    (foot_u, foot_v), (_, head_v) = cam.project(np.array([lat, lat]), np.array([0.0, height_m]), d)
    scale = (foot_v - head_v) / person.shape[0]
    pw, ph = max(2, round(person.shape[1] * scale)), max(2, round(person.shape[0] * scale))
    small = cv2.resize(person, (pw, ph), interpolation=cv2.INTER_AREA)
    small = np.clip(small * rng.uniform(0.7, 1.15), 0, 255).astype(np.uint8)
    left, top = round(foot_u - pw / 2), round(foot_v - ph)
    # Feathered alpha: the crop's own background fades out at its edges.
    alpha = np.zeros((ph, pw), np.float32)
    m = max(1, pw // 8)
    alpha[m : -m or None, m : -m or None] = 1
    alpha = cv2.GaussianBlur(alpha, (0, 0), max(0.5, m / 2))[..., None]
    H, W = canvas.shape[:2]
    cx1, cy1, cx2, cy2 = max(0, left), max(0, top), min(W, left + pw), min(H, top + ph)
    if cx2 <= cx1 or cy2 <= cy1:
        return [], np.array([0, 0, 0, 0])
    sub = (slice(cy1 - top, cy2 - top), slice(cx1 - left, cx2 - left))
    region = canvas[cy1:cy2, cx1:cx2]
    region[:] = (region * (1 - alpha[sub]) + small[sub] * alpha[sub]).astype(np.uint8)
    face = [left + fx1 * scale, top + fy1 * scale, left + fx2 * scale, top + fy2 * scale]
    return face, np.array([left, top, left + pw, top + ph])


def _visible(boxes: list[list[float]], shape) -> list[list[float]]:
    """Boxes clipped to the image; those with less than half their area inside it are dropped."""
    height, width = shape[:2]
    kept = []
    for x1, y1, x2, y2 in boxes:
        c = [max(0.0, x1), max(0.0, y1), min(float(width), x2), min(float(height), y2)]
        inside = max(0.0, c[2] - c[0]) * max(0.0, c[3] - c[1])
        if inside >= 0.5 * (x2 - x1) * (y2 - y1):
            kept.append(c)
    return kept


def _overlaps(box: np.ndarray, taken: list[np.ndarray]) -> bool:
    return any(min(box[2], t[2]) > max(box[0], t[0]) and min(box[3], t[3]) > max(box[1], t[1]) for t in taken)


def _finish(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Camera look: slight blur and sensor noise over the whole composite."""
    image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.4, 0.8))
    noise = rng.normal(0, 2.0, image.shape)
    return np.clip(image + noise, 0, 255).astype(np.uint8)


def road_frames(indices: list[int]) -> dict[int, np.ndarray]:
    from pipelines.video_motion import iter_frames

    return dict(iter_frames(RUN / "video.mp4", set(indices)))


def build_set(seed: int = 0, n_scenes: int = 30, n_empty: int = 6, n_rdd: int = 6) -> list[Item]:
    """The whole set, deterministic for a seed: scenes with vehicles and people, real photos, negatives."""
    rng = np.random.default_rng(seed)
    cam0 = run_camera()
    photos = load_face_photos()
    heads = [_head_crop(img, b) for img, boxes in photos.values() for b in boxes]
    n_frames = 1700
    # Other seeds take other frames of the run (and other vehicles, plates and people).
    scene_idx = [int(i) for i in np.linspace(30 + 11 * (seed % 4), n_frames, n_scenes + n_empty).round()]
    frames = road_frames(scene_idx)
    items: list[Item] = []
    for k, fi in enumerate(scene_idx[:n_scenes]):
        big = k % 4 == 3  # every fourth scene at 1920x1080
        image = frames[fi].copy()
        cam = cam0
        if big:
            image = cv2.resize(image, (1920, 1080), interpolation=cv2.INTER_CUBIC)
            cam = cam0.scaled(1.5)
        item = Item(
            f"scene_{k:02d}", image, f"synthetic road frame {fi} + drawn vehicles/plates + pasted real faces"
        )
        taken: list[np.ndarray] = []
        placements = []
        for _ in range(int(rng.integers(1, 4))):
            kind = rng.choice(["ahead", "oncoming", "parked"], p=[0.45, 0.35, 0.2])
            lat = {
                "ahead": rng.uniform(-0.3, 0.3),
                "oncoming": rng.uniform(3.2, 3.8),
                "parked": rng.uniform(-3.0, -2.5),
            }[kind]
            placements.append(("car", kind, float(4.5 + 17.5 * rng.random() ** 1.3), lat))
        for _ in range(int(rng.integers(0, 3))):
            placements.append(
                ("person", "", float(rng.uniform(4.0, 22.0)), float(rng.choice([-4.2, -3.6, 5.6, 6.4])))
            )
        # Far to near, so a nearer object is drawn over a farther one; overlapping ones are skipped.
        for what, kind, d, lat in sorted(placements, key=lambda p: -p[2]):
            if what == "car":
                trial = image.copy()
                facing = "front" if kind == "oncoming" else "rear"
                head = heads[rng.integers(len(heads))] if facing == "front" and rng.random() < 0.8 else None
                plate, face, car_box = draw_vehicle(trial, rng, cam, d, lat, facing, head)
                if _overlaps(car_box, taken):
                    continue
                image[:] = trial
                taken.append(car_box)
                item.plates.append(plate)
                if face is not None:
                    item.faces.append(face)
            else:
                crop, face_i = PEDESTRIANS[rng.integers(len(PEDESTRIANS))]
                bus, bus_faces = photos["bus"]
                trial = image.copy()
                face, box = paste_pedestrian(trial, rng, cam, bus, crop, bus_faces[face_i], d, lat)
                if not face or _overlaps(box, taken):
                    continue
                image[:] = trial
                taken.append(box)
                item.faces.append(face)
        item.image = _finish(image, rng)
        item.faces, item.plates = _visible(item.faces, image.shape), _visible(item.plates, image.shape)
        items.append(item)
    # The photos themselves, downscaled so that the faces are 20-40 px tall.
    for key, (photo, boxes) in photos.items():
        scale = 28.0 / np.mean([b[3] - b[1] for b in boxes])
        small = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        faces = [[v * scale for v in b] for b in boxes]
        items.append(Item(f"photo_{key}", small, f"real photo {FACE_PHOTOS[key][1]} at {scale:.3f}x", faces))
    for k, fi in enumerate(scene_idx[n_scenes:]):
        items.append(Item(f"empty_{k:02d}", _finish(frames[fi].copy(), rng), f"synthetic road frame {fi}"))
    rdd = sorted(RDD_IMAGES.glob("*.jpg")) if RDD_IMAGES.is_dir() else []
    for k, path in enumerate(rdd[seed :: max(1, len(rdd) // n_rdd)][:n_rdd] if rdd else []):
        items.append(Item(f"rdd_{k:02d}", cv2.imread(str(path)), f"real road photo {path.name} (RDD2022)"))
    return items


def write_set(items: list[Item], out: Path, quality: int = 88) -> Path:
    """Write ``<out>/<name>.jpg`` and ``<out>/labels.json``; return the labels path."""
    out.mkdir(parents=True, exist_ok=True)
    labels = []
    for item in items:
        cv2.imwrite(str(out / f"{item.name}.jpg"), item.image, [cv2.IMWRITE_JPEG_QUALITY, quality])
        labels.append(
            {
                "image": f"{item.name}.jpg",
                "source": item.source,
                "faces": [[round(v, 1) for v in b] for b in item.faces],
                "plates": [[round(v, 1) for v in b] for b in item.plates],
            }
        )
    path = out / "labels.json"
    path.write_text(json.dumps(labels, indent=1))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=REPO / "work" / "privacy_set")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    items = build_set(args.seed)
    path = write_set(items, args.out)
    n_faces = sum(len(i.faces) for i in items)
    n_plates = sum(len(i.plates) for i in items)
    print(f"{len(items)} images, {n_faces} faces, {n_plates} plates -> {path}")


if __name__ == "__main__":
    main()
