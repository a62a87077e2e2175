"""Damage detections as one struct of arrays, and the detector Protocol.

Class codes follow RDD2022 (Arya et al.): D00 longitudinal crack, D10 transverse crack,
D20 alligator crack, D40 pothole, plus ``Repair`` (patching, 補修跡).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

import numpy as np

from pavement.errors import ConfigError


class DamageClass(StrEnum):
    D00 = "D00"  # longitudinal crack (縦ひび割れ)
    D10 = "D10"  # transverse crack (横ひび割れ)
    D20 = "D20"  # alligator crack (亀甲状ひび割れ)
    D40 = "D40"  # pothole (ポットホール)
    REPAIR = "Repair"  # patching (パッチング)


#: Model output index -> class, the order every model of the project is trained with.
DAMAGE_CLASSES: tuple[DamageClass, ...] = tuple(DamageClass)
CRACK_CLASSES = frozenset({DamageClass.D00, DamageClass.D10, DamageClass.D20})


@dataclass(frozen=True)
class Detections:
    """Boxes of one image, in pixels of that image.

    xyxy: (n, 4) float32, x1 y1 x2 y2; class_id: (n,) int64, index into ``DAMAGE_CLASSES``;
    confidence: (n,) float32 in [0, 1]. Index with a boolean mask or an index array:
    ``dets[dets.confidence > 0.25]``.
    """

    xyxy: np.ndarray
    class_id: np.ndarray
    confidence: np.ndarray

    def __post_init__(self) -> None:
        xyxy = np.asarray(self.xyxy, dtype=np.float32).reshape(-1, 4)
        class_id = np.asarray(self.class_id, dtype=np.int64).reshape(-1)
        confidence = np.asarray(self.confidence, dtype=np.float32).reshape(-1)
        if not (len(xyxy) == len(class_id) == len(confidence)):
            raise ConfigError(
                f"Detections arrays differ in length: xyxy {len(xyxy)}, class_id {len(class_id)}, "
                f"confidence {len(confidence)}; give one row per box"
            )
        if len(class_id) and (class_id.min() < 0 or class_id.max() >= len(DAMAGE_CLASSES)):
            raise ConfigError(f"class_id outside 0..{len(DAMAGE_CLASSES) - 1}: {sorted(set(class_id))}")
        object.__setattr__(self, "xyxy", xyxy)
        object.__setattr__(self, "class_id", class_id)
        object.__setattr__(self, "confidence", confidence)

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4)), np.zeros(0), np.zeros(0))

    def __len__(self) -> int:
        return len(self.class_id)

    def __getitem__(self, index: np.ndarray | slice | int) -> Detections:
        if isinstance(index, int):
            index = slice(index, index + 1)
        return Detections(self.xyxy[index], self.class_id[index], self.confidence[index])

    @property
    def classes(self) -> list[DamageClass]:
        return [DAMAGE_CLASSES[i] for i in self.class_id]

    @property
    def area_px(self) -> np.ndarray:
        wh = np.clip(self.xyxy[:, 2:] - self.xyxy[:, :2], 0, None)
        return wh[:, 0] * wh[:, 1]


class Detector(Protocol):
    """Anything that turns one BGR image (H, W, 3) uint8 into detections in its pixels."""

    def __call__(self, image: np.ndarray) -> Detections: ...
