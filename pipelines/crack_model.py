"""The learned crack segmenter at run time (ONNX Runtime): image in, crack mask out.

``load_crack_segmenter`` checks the model against the sha256 in its card (``models/crack_unet.md``)
and opens it; the model and how it was trained are described there.

``prepare`` is shared with training: grey, standardised per image. The network is fully
convolutional; the image is padded to a multiple of 8 (three pooling levels) by reflection, and
a large image is segmented in overlapping tiles.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from pavement.errors import ConfigError, ModelError
from pipelines.detect import verify_model

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = REPO / "models" / "crack_unet.onnx"
MULTIPLE = 8  # three pooling levels
#: Context each tile takes from its neighbours: more than the network's receptive field (~90 px).
TILE_MARGIN_PX = 64


def prepare(image: np.ndarray) -> np.ndarray:
    """(1, H, W) float32 of a grey or BGR uint8 image, zero mean and unit spread."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    if grey.ndim != 2 or grey.size == 0:
        raise ConfigError(f"expected an (H, W) or (H, W, 3) image, got shape {image.shape}")
    g = grey.astype(np.float32)
    return ((g - g.mean()) / max(float(g.std()), 4.0))[None]


@dataclass(frozen=True)
class LearnedSegmenterConfig:
    threshold: float = 0.5  # crack probability a pixel needs
    min_component_px: int = 0  # smaller connected components are dropped (grain, pits)
    threads: int = 2
    tile_px: int = 1024  # larger images go through in tiles of this side (memory: ~0.3 GB a tile)


class OnnxCrackSegmenter:
    """Crack probability and mask of an image with the ONNX U-Net."""

    def __init__(self, path: Path = DEFAULT_MODEL, config: LearnedSegmenterConfig = LearnedSegmenterConfig()):
        import onnxruntime as ort

        if not path.is_file():
            raise ModelError(f"crack model {path} not found: it ships in models/ (see models/crack_unet.md)")
        options = ort.SessionOptions()
        options.intra_op_num_threads = config.threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        options.enable_cpu_mem_arena = False  # a tile's activations are not kept after the call
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own Fail/InvalidGraph types
            raise ModelError(f"cannot load crack model {path}: {e}") from e
        self.config = config

    def probability(self, image: np.ndarray) -> np.ndarray:
        """Crack probability (H, W) float32. Images over ``config.tile_px`` a side go through in
        overlapping tiles (standardised as a whole first), so memory stays bounded for any size."""
        x = prepare(image)[0]
        h, w = x.shape
        tile, margin = self.config.tile_px, TILE_MARGIN_PX
        if h <= tile and w <= tile:
            return self._probability(x)
        out = np.empty((h, w), np.float32)
        for y0 in range(0, h, tile):
            for x0 in range(0, w, tile):
                y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
                ya, xa = max(0, y0 - margin), max(0, x0 - margin)
                p = self._probability(x[ya : min(h, y1 + margin), xa : min(w, x1 + margin)])
                out[y0:y1, x0:x1] = p[y0 - ya : y1 - ya, x0 - xa : x1 - xa]
        return out

    def _probability(self, x: np.ndarray) -> np.ndarray:
        h, w = x.shape
        ph, pw = -h % MULTIPLE, -w % MULTIPLE
        x = np.pad(x, ((0, ph), (0, pw)), mode="reflect")
        logit = self.session.run(None, {"image": x[None, None]})[0][0, 0, :h, :w]
        return (1.0 / (1.0 + np.exp(-logit))).astype(np.float32)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """Mask (H, W) uint8, 0 / 255: probability above the threshold, small components dropped."""
        mask = (self.probability(image) >= self.config.threshold).astype(np.uint8)
        _, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        keep = stats[:, cv2.CC_STAT_AREA] >= self.config.min_component_px
        keep[0] = False
        return np.where(keep[labels], 255, 0).astype(np.uint8)


def load_crack_segmenter(
    path: Path = DEFAULT_MODEL, config: LearnedSegmenterConfig = LearnedSegmenterConfig()
) -> OnnxCrackSegmenter:
    """The segmenter with its model checked against the sha256 in its card (``<model>.md``)."""
    verify_model(path)
    return OnnxCrackSegmenter(path, config)
