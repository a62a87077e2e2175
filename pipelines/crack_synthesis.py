"""Training samples for the crack segmenter: synthetic cracks drawn onto real asphalt.

Backgrounds are crops of the RDD2022 China_MotorBike photos (CC BY-SA 4.0; a motorbike looking
steeply down at the lane, close to a top view) taken away from every box the annotators drew a
crack in, so that a background holds no unlabelled crack. The cracks are random walks with a
slowly drifting heading, jagged at the pixel scale, branching now and then, of a width that varies
along them (1-28 px: a close-up photo's crack is wide, a top view's thin) and a darkness that
varies too; alligator cracking is a loose network of such walks. They darken the photo
multiplicatively, with a soft edge. Distractors that are not cracks: pits, oil stains, shadows with hard
edges, and the photos' own paint, grain and patches.

The mask is the crack's footprint widened to at least ``min_mask_px``: annotators of crack data
sets draw the whole visible crack, and a thin crack's mark is a few pixels wide.

``sample(rng)`` returns one (grey image, mask) pair; ``CrackSampler`` holds the background pool.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from pavement.errors import InputError

#: RDD classes that are cracks: a background crop must not touch their boxes.
CRACK_CLASSES = ("D00", "D10", "D20")


@dataclass(frozen=True)
class SynthesisConfig:
    patch_px: int = 128  # side of a training sample
    crop_min_px: int = 64  # background crops of this ... (resized to patch_px: scale augmentation)
    crop_max_px: int = 192  # ... to this side, in source pixels
    no_crack_share: float = 0.2  # samples without a crack (the model must learn to say nothing)
    max_cracks: int = 3
    alligator_share: float = 0.15  # cracks drawn as a network instead of a single walk
    width_px: tuple[float, float] = (1.0, 28.0)  # crack width range (log-uniform)
    darkness: tuple[float, float] = (0.25, 0.8)  # share of the brightness a crack takes away
    min_mask_px: float = 3.0  # narrowest mask mark
    distractor_share: float = 0.6  # samples with pits, a stain or a shadow
    blur_share: float = 0.35  # samples blurred (focus, motion) ...
    blur_max_px: float = 2.5  # ... by a Gaussian of sigma 0.5 px to this
    deep_wide_cracks: bool = True  # wide cracks darker, and darkest in their middle
    network_width_share: float = 1 / 3  # alligator cracks up to this share of the widest crack


#: The shipped model's two training stages (``models/crack_unet.md``): hairline to medium cracks
#: first, then the full range with close-up, wide and blurred ones.
CURRICULUM = {
    "narrow": SynthesisConfig(
        width_px=(1.0, 12.0),
        blur_share=0.3,
        blur_max_px=1.5,
        deep_wide_cracks=False,
        network_width_share=0.5,
    ),
    "full": SynthesisConfig(),
}


def crack_free_crop(xml_path: Path, size: int, crop: int, rng: np.random.Generator, tries: int = 20):
    """Up to one crop window (x, y) of side ``crop`` in an image of side ``size`` that touches no
    crack box of the VOC file; None when none is found in ``tries`` draws."""
    boxes = []
    for obj in ET.parse(xml_path).getroot().iter("object"):
        if obj.findtext("name") in CRACK_CLASSES:
            b = obj.find("bndbox")
            boxes.append([float(b.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")])
    for _ in range(tries):
        x, y = rng.integers(0, size - crop + 1, 2)
        if all(x + crop <= b[0] or b[2] <= x or y + crop <= b[1] or b[3] <= y for b in boxes):
            return int(x), int(y)
    return None


class CrackSampler:
    """Background pool (grey RDD photos of the given files) and the sample generator."""

    def __init__(self, images: list[Path], annotations: Path, config: SynthesisConfig = SynthesisConfig()):
        if not images:
            raise InputError("no background photos for crack synthesis")
        self.config = config
        self.images = images
        self.annotations = annotations
        self._cache: dict[int, np.ndarray] = {}

    def background(self, rng: np.random.Generator) -> np.ndarray:
        c = self.config
        for _ in range(200):
            i = int(rng.integers(len(self.images)))
            grey = self._cache.get(i)
            if grey is None:
                grey = cv2.imread(str(self.images[i]), cv2.IMREAD_GRAYSCALE)
                if grey is None:
                    raise InputError(f"cannot read {self.images[i]}")
                self._cache[i] = grey
            crop = int(rng.integers(c.crop_min_px, min(c.crop_max_px, min(grey.shape)) + 1))
            xml = self.annotations / f"{self.images[i].stem}.xml"
            at = crack_free_crop(xml, min(grey.shape), crop, rng)
            if at is not None:
                x, y = at
                patch = grey[y : y + crop, x : x + crop]
                patch = cv2.resize(patch, (c.patch_px, c.patch_px), interpolation=cv2.INTER_AREA)
                return np.rot90(patch, int(rng.integers(4))).copy()
        raise InputError("no crack-free background crop found in 200 tries")

    def sample(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(grey uint8 (P, P), mask bool (P, P))."""
        c = self.config
        image = self.background(rng).astype(np.float32)
        if rng.random() < c.distractor_share:
            image = add_distractor(image, rng)
        depth = np.zeros(image.shape, np.float32)  # crack darkness, 0..1
        mask = np.zeros(image.shape, np.uint8)
        if rng.random() >= c.no_crack_share:
            for _ in range(int(rng.integers(1, c.max_cracks + 1))):
                if rng.random() < c.alligator_share:
                    draw_network(depth, mask, rng, c)
                else:
                    draw_walk(depth, mask, rng, c, start=None, heading=None, length=None)
        soft = cv2.GaussianBlur(depth, (0, 0), float(rng.uniform(0.4, 1.2)))
        grain = rng.normal(1.0, 0.15, image.shape).astype(np.float32)
        image = image * (1.0 - np.clip(soft * grain, 0.0, 0.95))
        image = photometric(image, rng, c)
        return image, mask > 0


def draw_walk(depth, mask, rng, c: SynthesisConfig, start, heading, length, width=None, level=0) -> None:
    """One crack: a random walk with drifting heading, drawn into ``depth`` and ``mask``."""
    p = c.patch_px
    if start is None:  # a free crack: from a point inside, both ways
        start = rng.uniform(0.1 * p, 0.9 * p, 2)
        heading = rng.uniform(0, 2 * np.pi)
        length = rng.uniform(0.3, 1.2) * p
        width = float(np.exp(rng.uniform(np.log(c.width_px[0]), np.log(c.width_px[1]))))
        draw_walk(depth, mask, rng, c, start, heading + np.pi, length * rng.uniform(0, 0.6), width, level)
    if width is None:
        width = float(np.exp(rng.uniform(np.log(c.width_px[0]), np.log(c.width_px[1]))))
    # a wide crack is a deep, shadowed gap: darker than a hairline one can be
    deep = min(width / 12.0, 0.6) if c.deep_wide_cracks else 0.0
    dark = rng.uniform(c.darkness[0] + (c.darkness[1] - c.darkness[0]) * deep, c.darkness[1])
    step = 2.0
    n = max(2, int(length / step))
    drift = np.cumsum(rng.normal(0, 0.06, n))  # slow bend
    jag = rng.normal(0, rng.uniform(0.15, 0.6), n)  # pixel-scale zigzag
    angles = heading + drift + jag
    pts = start + np.cumsum(step * np.stack([np.cos(angles), np.sin(angles)], 1), 0)
    # width varies along the crack and tapers at its ends
    along = np.linspace(0, 1, n)
    knots = max(2, n // 8)
    wobble = np.exp(np.interp(along, np.linspace(0, 1, knots), rng.normal(0, 0.3, knots)))
    taper = np.clip(np.minimum(along, 1 - along) * length / (4 * width + 8), 0.25, 1.0)
    widths = np.clip(width * wobble * taper, 0.7, None)
    if c.deep_wide_cracks:  # darkest in its middle (the walls catch some light)
        draw_polyline(depth, pts, widths, dark * rng.uniform(0.5, 1.0))
        draw_polyline(depth, pts, widths * 0.5, dark)
    else:
        draw_polyline(depth, pts, widths, dark)
    draw_polyline(mask, pts, np.maximum(widths + 1.0, c.min_mask_px), 255)
    if level < 2 and rng.random() < 0.35:
        k = int(rng.integers(n // 4, max(n // 4 + 1, 3 * n // 4)))
        draw_walk(
            depth,
            mask,
            rng,
            c,
            start=pts[k],
            heading=angles[k] + rng.choice([-1, 1]) * rng.uniform(0.5, 1.4),
            length=length * rng.uniform(0.2, 0.6),
            width=width * rng.uniform(0.4, 0.9),
            level=level + 1,
        )


def draw_polyline(canvas: np.ndarray, pts: np.ndarray, widths: np.ndarray, value: float) -> None:
    """Thick polyline of varying width (pixels) drawn with ``value`` (max-combined)."""
    layer = np.zeros(canvas.shape, np.float32)
    for a, b, w in zip(pts[:-1], pts[1:], widths[:-1], strict=True):
        t = max(1, round(w))
        cv2.line(
            layer, tuple(int(v) for v in np.round(a)), tuple(int(v) for v in np.round(b)), 1.0, t, cv2.LINE_AA
        )
    np.maximum(canvas, (layer * value).astype(canvas.dtype), out=canvas)


def draw_network(depth, mask, rng, c: SynthesisConfig) -> None:
    """Alligator cracking: walks between jittered grid points over part of the patch."""
    p = c.patch_px
    cell = rng.uniform(0.1, 0.3) * p
    x0, y0 = rng.uniform(-0.2 * p, 0.6 * p, 2)
    extent = rng.uniform(0.4, 1.0) * p
    width = float(np.exp(rng.uniform(np.log(c.width_px[0]), np.log(c.width_px[1] * c.network_width_share))))
    k = max(2, int(extent / cell))
    grid = np.stack(np.meshgrid(np.arange(k + 1), np.arange(k + 1), indexing="ij"), -1) * cell
    grid = grid + np.array([x0, y0]) + rng.normal(0, 0.2 * cell, grid.shape)
    for i in range(k + 1):
        for j in range(k + 1):
            for di, dj in ((1, 0), (0, 1)):
                if i + di <= k and j + dj <= k and rng.random() < 0.75:
                    a, b = grid[i, j], grid[i + di, j + dj]
                    d = b - a
                    draw_walk(
                        depth,
                        mask,
                        rng,
                        c,
                        start=a,
                        heading=float(np.arctan2(d[1], d[0])),
                        length=float(np.hypot(*d)),
                        width=width * rng.uniform(0.6, 1.3),
                        level=2,
                    )


def add_distractor(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Pits and pores (small dark spots, as on worn concrete), an oil stain (dark soft blob) or a
    hard-edged shadow."""
    p = image.shape[0]
    kind = rng.random()
    if kind < 0.4:
        pits = np.zeros(image.shape, np.float32)
        for _ in range(int(rng.integers(5, 60))):
            centre = tuple(int(v) for v in rng.uniform(0, p, 2))
            axes = tuple(int(v) for v in rng.uniform(1, 5, 2))
            cv2.ellipse(
                pits, centre, axes, float(rng.uniform(0, 180)), 0, 360, float(rng.uniform(0.3, 1)), -1
            )
        pits = cv2.GaussianBlur(pits, (0, 0), 0.8)
        return image * (1 - rng.uniform(0.2, 0.6) * pits)
    if kind < 0.7:
        blob = np.zeros(image.shape, np.float32)
        centre = tuple(int(v) for v in rng.uniform(0, p, 2))
        axes = tuple(int(v) for v in rng.uniform(5, 0.25 * p, 2))
        cv2.ellipse(blob, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1.0, -1)
        blob = cv2.GaussianBlur(blob, (0, 0), float(rng.uniform(2, 8)))
        return image * (1 - rng.uniform(0.15, 0.5) * blob)
    poly = rng.uniform(-0.5 * p, 1.5 * p, (int(rng.integers(3, 7)), 2)).astype(np.int32)
    shade = np.zeros(image.shape, np.float32)
    cv2.fillPoly(shade, [poly], 1.0)
    shade = cv2.GaussianBlur(shade, (0, 0), float(rng.uniform(0.5, 3)))
    return image * (1 - rng.uniform(0.2, 0.6) * shade)


def photometric(image: np.ndarray, rng: np.random.Generator, c: SynthesisConfig) -> np.ndarray:
    """Brightness, contrast, gamma, blur, sensor noise and JPEG: uint8 out."""
    image = image * rng.uniform(0.6, 1.4) + rng.uniform(-30, 30)
    mean = image.mean()
    image = (image - mean) * rng.uniform(0.6, 1.5) + mean
    image = 255.0 * (np.clip(image, 0, 255) / 255.0) ** rng.uniform(0.7, 1.4)
    if rng.random() < c.blur_share:  # focus and motion blur; close-ups are often soft
        image = cv2.GaussianBlur(image, (0, 0), float(rng.uniform(0.5, c.blur_max_px)))
    image = image + rng.normal(0, rng.uniform(0, 6), image.shape)
    out = np.clip(image, 0, 255).astype(np.uint8)
    _, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(40, 96))])
    return cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)
