"""Small real runs of eval/privacy.py and eval/privacy_set.py (the full evaluation takes minutes)."""

from pathlib import Path

import numpy as np
import pytest

from pavement.privacy import PrivacyBoxes, PrivacyClass, merge_boxes
from pipelines.privacy import PrivacyConfig
from tests.eval import load_script

REPO = Path(__file__).resolve().parents[2]


def test_privacy_scoring_counts_coverage_and_stray_masks():
    ev = load_script("eval/privacy.py")
    faces = np.array([[10, 10, 20, 22], [100, 100, 110, 112]], float)
    plates = np.array([[50, 50, 80, 65]], float)
    found = merge_boxes(
        PrivacyBoxes.of(PrivacyClass.FACE, [[11, 11, 19, 21]]),
        PrivacyBoxes.of(PrivacyClass.PLATE, [[52, 51, 78, 64], [150, 10, 170, 20]]),
    )
    row = ev.score_image(faces, plates, found, (120, 200), PrivacyConfig().mask)
    assert row["face_coverage"][0] >= 0.5 and row["face_coverage"][1] == 0.0
    assert row["plate_coverage"] == [1.0]
    assert row["false_positive_boxes"] == 1 and 0 < row["false_positive_area_pct"] < 2
    summary = ev.summarise(
        [row, ev.score_image([], [], PrivacyBoxes.empty(), (120, 200), PrivacyConfig().mask)]
    )
    assert summary["faces"]["recall"] == 0.5 and summary["plates"]["recall"] == 1.0
    assert summary["faces"]["by_size_px"]["12-24"] == {"n": 2, "found": 1, "recall": 0.5}
    assert summary["false_positive_area_pct"]["negatives_max"] == 0.0


def test_privacy_set_draws_a_labelled_plate_on_a_car():
    ps = load_script("eval/privacy_set.py")
    rng = np.random.default_rng(0)
    plate = ps.render_plate(rng)
    assert plate.shape == (330, 660, 3)
    cam = ps.Camera(914.0, 640.0, 360.0, 1.35, 10.0)
    canvas = np.full((720, 1280, 3), 110, np.uint8)
    box, face, car = ps.draw_vehicle(canvas, rng, cam, 8.0, 0.0, "rear")
    width = box[2] - box[0]
    assert face is None and 30 < width < 45  # 0.33 m at 8 m with f = 914 px: 37.7 px
    assert car[0] < box[0] < box[2] < car[2]
    x1, y1, x2, y2 = (round(v) for v in box)
    assert canvas[y1:y2, x1:x2].std() > 20  # something was drawn there


@pytest.mark.parametrize("shape", [(100, 200, 3)])
def test_privacy_set_clips_labels_to_the_image(shape):
    ps = load_script("eval/privacy_set.py")
    kept = ps._visible([[-5, 10, 15, 20], [190, 0, 260, 10], [10, 10, 20, 20]], shape)
    assert kept == [[0.0, 10, 15, 20], [10, 10, 20, 20]]
