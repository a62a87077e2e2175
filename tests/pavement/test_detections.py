import numpy as np
import pytest

from pavement.detections import DAMAGE_CLASSES, DamageClass, Detections
from pavement.errors import ConfigError


def _dets() -> Detections:
    return Detections(
        xyxy=[[0, 0, 10, 10], [5, 5, 25, 15], [0, 0, 1, 1]],
        class_id=[0, 3, 4],
        confidence=[0.9, 0.2, 0.5],
    )


def test_empty():
    e = Detections.empty()
    assert len(e) == 0 and e.xyxy.shape == (0, 4)


def test_mask_filtering_like_supervision():
    d = _dets()
    kept = d[d.confidence > 0.25]
    assert len(kept) == 2
    assert kept.classes == [DamageClass.D00, DamageClass.REPAIR]
    assert d[1].classes == [DamageClass.D40]


def test_area():
    assert _dets().area_px == pytest.approx([100, 200, 1])


def test_class_order_is_the_model_order():
    assert [str(c) for c in DAMAGE_CLASSES] == ["D00", "D10", "D20", "D40", "Repair"]


@pytest.mark.parametrize(
    ("xyxy", "cls", "conf"),
    [([[0, 0, 1, 1]], [0, 1], [0.5]), ([[0, 0, 1, 1]], [7], [0.5])],
)
def test_inconsistent_arrays_are_refused(xyxy, cls, conf):
    with pytest.raises(ConfigError):
        Detections(np.array(xyxy), np.array(cls), np.array(conf))
