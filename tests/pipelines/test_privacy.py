import shutil

import cv2
import numpy as np
import pytest

from pavement.boxes import box_iou
from pavement.errors import ConfigError, ModelError
from pavement.privacy import PrivacyClass
from pipelines.privacy import DEFAULT_FACE_MODEL, PrivacyConfig, decode_centerface, load_privacy_masker
from tests.privacy_scenes import car_with_plate, hopper, paste_face, road_frame


@pytest.fixture(scope="module")
def masker():
    return load_privacy_masker()


def _hf_energy(image: np.ndarray) -> float:
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float64)
    return float((cv2.Laplacian(gray, cv2.CV_64F) ** 2).mean())


def test_nothing_to_mask_on_an_empty_road(masker):
    image = road_frame(1280, 720)
    assert len(masker.find(image)) == 0
    out = masker.mask(image)
    assert np.array_equal(out, image) and out is not image


def test_a_plate_and_a_face_are_found_and_masked(masker):
    photo = hopper()
    if photo is None:
        pytest.skip("matplotlib (its sample photo) is not installed")
    image = road_frame(1280, 720)
    plate = car_with_plate(image, 420, 380, 48)
    face = paste_face(image, photo, 900, 250, 30)
    boxes = masker.find(image)
    faces, plates = boxes.of_class(PrivacyClass.FACE), boxes.of_class(PrivacyClass.PLATE)
    assert box_iou(np.asarray([face]), faces.xyxy).max() > 0.3
    assert box_iou(np.asarray([plate], float), plates.xyxy).max() > 0.5
    out = masker.mask(image)
    assert out.shape == image.shape and out.dtype == np.uint8
    for x1, y1, x2, y2 in (np.asarray(face).round().astype(int), plate):
        assert _hf_energy(out[y1:y2, x1:x2]) < 0.1 * _hf_energy(image[y1:y2, x1:x2])
    assert np.array_equal(out[650:, :], image[650:, :])  # the road below them is untouched


def test_decode_centerface_puts_a_box_at_the_peak():
    heat = np.zeros((8, 10), np.float32)
    heat[3, 5] = 0.9
    log_scale = np.zeros((2, 8, 10), np.float32)
    log_scale[:, 3, 5] = np.log([6.0, 4.0])  # 6 x 4 cells = 24 x 16 px
    offset = np.zeros((2, 8, 10), np.float32)
    xyxy, score = decode_centerface(heat, log_scale, offset, 0.5)
    np.testing.assert_allclose(xyxy, [[22 - 8, 14 - 12, 22 + 8, 14 + 12]], atol=1e-4)
    np.testing.assert_allclose(score, [0.9])


def test_a_model_that_does_not_match_its_card_is_refused(tmp_path):
    model = tmp_path / "centerface.onnx"
    shutil.copy(DEFAULT_FACE_MODEL, model)
    (tmp_path / "centerface.md").write_text("sha256: " + "0" * 64 + "\n")
    with pytest.raises(ModelError, match="sha256"):
        load_privacy_masker(model)


@pytest.mark.parametrize("image", [np.zeros((10, 10), np.uint8), np.zeros((10, 10, 3), np.float32)])
def test_refuses_what_is_not_a_bgr_image(masker, image):
    with pytest.raises(ConfigError, match="BGR"):
        masker.mask(image)


@pytest.mark.parametrize(
    "kwargs", [{"face_threshold": 0}, {"face_band_rows": (0.7, 0.2)}, {"face_full_width_px": 8}]
)
def test_config_refuses_invalid_values(kwargs):
    with pytest.raises(ConfigError):
        PrivacyConfig(**kwargs)
