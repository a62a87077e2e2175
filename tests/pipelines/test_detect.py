"""ONNX Runtime detector: the JSON of issue 4, bad images, the sha256 check, and real detections."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from pavement.detections import Detections
from pavement.errors import ConfigError, InputError, ModelError
from pipelines.detect import (
    DEFAULT_MODEL,
    DetectorConfig,
    card_sha256,
    letterbox_images,
    load_detector,
    run_detect,
    verify_model,
)

RDD = Path(__file__).resolve().parents[3] / "shared" / "data" / "rdd2022_china_motorbike"
needs_model = pytest.mark.skipif(not DEFAULT_MODEL.is_file(), reason="models/damage_yolo.onnx not present")


@pytest.fixture(scope="module")
def detector():
    return load_detector(DEFAULT_MODEL)


def _road_like(height: int, width: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    grey = rng.normal(110, 12, size=(height, width)).clip(0, 255).astype(np.uint8)
    image = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
    cv2.line(image, (width // 2, 0), (width // 2 + 7, height - 1), (35, 35, 35), 3)  # a dark crack
    return image


@needs_model
def test_shipped_model_matches_its_card():
    assert verify_model(DEFAULT_MODEL) == card_sha256(DEFAULT_MODEL.with_suffix(".md"))


@needs_model
def test_detector_protocol_on_images_of_any_size(detector):
    for shape in [(64, 48), (360, 640), (1080, 1920)]:
        dets = detector(_road_like(*shape, seed=1))
        assert isinstance(dets, Detections)
        if len(dets):
            assert (dets.xyxy[:, [0, 2]] <= shape[1]).all() and (dets.xyxy[:, [1, 3]] <= shape[0]).all()
            assert (dets.xyxy >= 0).all() and (dets.confidence >= detector.config.conf).all()


@needs_model
def test_batches_give_the_same_boxes_as_single_images(detector):
    images = [_road_like(300, 400, seed=s) for s in range(3)]
    batched = detector.detect_batch(images)
    for image, dets in zip(images, batched, strict=True):
        single = detector(image)
        assert len(single) == len(dets)
        np.testing.assert_allclose(single.xyxy, dets.xyxy, atol=0.5)


@needs_model
def test_letterboxed_images_give_exactly_the_boxes_of_whole_images(detector):
    """What a detector actor is sent (pipelines.inference): the squares, not the frames."""
    images = [_road_like(*shape, seed=s) for s, shape in enumerate([(720, 1280), (300, 400), (64, 48)])]
    boxed = letterbox_images(images, detector.input_size)
    assert all(b.shape == (detector.input_size, detector.input_size, 3) for b, _ in boxed)
    for whole, squares in zip(detector.detect_batch(images), detector.detect_letterboxed(boxed), strict=True):
        assert np.array_equal(whole.xyxy, squares.xyxy) and np.array_equal(whole.class_id, squares.class_id)
        assert np.array_equal(whole.confidence, squares.confidence)
    with pytest.raises(ConfigError, match="letterbox_images"):
        detector.detect_letterboxed([(images[1], boxed[1][1])])


@needs_model
def test_run_detect_writes_the_issue_format_and_skips_unreadable(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), _road_like(200, 300, seed=2))
    cv2.imwrite(str(folder / "b.jpg"), _road_like(720, 1280, seed=3))
    (folder / "broken.jpg").write_bytes(b"not a jpeg at all")
    (folder / "notes.txt").write_text("ignored: not an image suffix")
    out = tmp_path / "preds.json"
    seen = []

    result = run_detect(folder, out, conf=0.05, progress=lambda done, total: seen.append((done, total)))

    payload = json.loads(out.read_text())
    assert set(payload) == {"model", "classes", "images"}
    assert payload["model"] == DEFAULT_MODEL.name
    assert payload["classes"] == ["D00", "D10", "D20", "D40", "Repair"]
    assert [im["file"] for im in payload["images"]] == ["a.png", "b.jpg"]
    assert [(im["width"], im["height"]) for im in payload["images"]] == [(300, 200), (1280, 720)]
    for im in payload["images"]:
        for det in im["detections"]:
            assert set(det) == {"class", "score", "xyxy"}
            assert det["class"] in payload["classes"] and 0.05 <= det["score"] <= 1
            x1, y1, x2, y2 = det["xyxy"]
            assert 0 <= x1 <= x2 <= im["width"] and 0 <= y1 <= y2 <= im["height"]
    assert result.unreadable == ("broken.jpg",) and result.n_images == 2
    report = json.loads(result.report_json.read_text())
    assert report["n_unreadable"] == 1 and report["unreadable"] == ["broken.jpg"]
    assert seen[-1] == (3, 3)


@needs_model
def test_sha256_mismatch_is_refused(tmp_path):
    model = tmp_path / "damage_yolo.onnx"
    shutil.copyfile(DEFAULT_MODEL, model)
    model.with_suffix(".md").write_text("# card\n\n- sha256: `" + "0" * 64 + "`\n")
    with pytest.raises(ModelError, match=r"sha256 .* declares 0{64}"):
        load_detector(model)


def test_missing_model_and_missing_card_are_model_errors(tmp_path):
    with pytest.raises(ModelError, match="missing"):
        load_detector(tmp_path / "none.onnx")
    model = tmp_path / "m.onnx"
    model.write_bytes(b"x")
    with pytest.raises(ModelError, match="card"):
        load_detector(model)


def test_bad_config_is_refused():
    with pytest.raises(ConfigError, match="D99"):
        DetectorConfig(class_conf={"D99": 0.3})
    with pytest.raises(ConfigError, match="iou"):
        DetectorConfig(iou=0)


@needs_model
def test_missing_image_folder_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        run_detect(tmp_path / "nowhere", tmp_path / "preds.json")


@needs_model
@pytest.mark.skipif(not RDD.is_dir(), reason="../shared/data/rdd2022_china_motorbike not present")
def test_finds_labelled_damage_on_real_validation_images(detector):
    """Loose band on 20 validation images (blocks of the shipped split): most labelled boxes found."""
    from eval.detector_f1 import counts_at, ground_truth, overall

    names = [f"China_MotorBike_{n:06d}" for n in range(50, 75)]  # block 2: validation (seed 0)
    images = []
    for name in names:
        path = RDD / "images" / f"{name}.jpg"
        if not path.is_file():
            continue
        image = cv2.imread(str(path))
        dets = detector(image)
        gt_xyxy, gt_cls = ground_truth(RDD / "annotations" / "xmls" / f"{name}.xml", 512, 512)
        images.append(
            {
                "xyxy": dets.xyxy,
                "cls": dets.class_id,
                "conf": dets.confidence,
                "gt_xyxy": gt_xyxy,
                "gt_cls": gt_cls,
            }
        )
    assert len(images) >= 10
    assert overall(counts_at(images, detector.config.conf))["f1"] > 0.3


def test_unknown_engine_is_refused():
    with pytest.raises(ConfigError, match="engine"):
        DetectorConfig(engine="tensorrt")


@needs_model
@pytest.mark.skipif(importlib.util.find_spec("openvino") is None, reason="OpenVINO is optional")
def test_openvino_engine_finds_the_same_boxes(detector):
    """OpenVINO runs bf16 on CPUs that have it: same boxes within a loose band, not bit-exact."""
    ov = load_detector(DEFAULT_MODEL, DetectorConfig(engine="openvino"))
    image = _road_like(512, 512, seed=4)
    a, b = detector(image), ov(image)
    assert ov.input_size == detector.input_size
    assert abs(len(a) - len(b)) <= max(2, len(a) // 5)
