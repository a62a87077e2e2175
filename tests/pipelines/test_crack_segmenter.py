"""The learned crack segmenter: synthetic training samples, the shipped ONNX model, a training smoke run."""

from __future__ import annotations

import importlib.util
import json
import shutil

import cv2
import numpy as np
import pytest

from pavement.crack_segmentation import tolerant_pixel_scores
from pavement.errors import ConfigError, ModelError
from pipelines.crack_model import (
    DEFAULT_MODEL,
    LearnedSegmenterConfig,
    OnnxCrackSegmenter,
    load_crack_segmenter,
    prepare,
)
from pipelines.crack_synthesis import CrackSampler, SynthesisConfig, crack_free_crop
from pipelines.detect import sha256_of
from tests.pipelines.test_train_detector import make_voc_dataset

HAS_TORCH = all(importlib.util.find_spec(m) for m in ("torch", "onnx"))


@pytest.fixture(scope="module")
def segmenter():
    return OnnxCrackSegmenter(DEFAULT_MODEL)


@pytest.fixture(scope="module")
def backgrounds(tmp_path_factory):
    """Eight 256 px asphalt-like photos in five blocks of 25, each with a crack box (D00) down a column."""
    return make_voc_dataset(tmp_path_factory.mktemp("rdd"), [0, 1, 30, 31, 60, 61, 90, 130], size=256)


def asphalt(shape: tuple[int, int], seed: int) -> np.ndarray:
    """Grey grain: blurred noise around 120, like a top view of asphalt."""
    rng = np.random.default_rng(seed)
    noise = cv2.GaussianBlur(rng.normal(0, 1, shape).astype(np.float32), (0, 0), 1.2)
    return np.clip(120 + 12 * noise / noise.std(), 0, 255).astype(np.uint8)


def test_crack_free_crop_avoids_every_crack_box(tmp_path):
    xml = tmp_path / "a.xml"
    xml.write_text(
        "<annotation><object><name>D00</name><bndbox><xmin>100</xmin><ymin>0</ymin><xmax>120</xmax>"
        "<ymax>255</ymax></bndbox></object><object><name>D40</name><bndbox><xmin>0</xmin><ymin>0</ymin>"
        "<xmax>60</xmax><ymax>60</ymax></bndbox></object></annotation>"
    )
    rng = np.random.default_rng(0)
    crops = [crack_free_crop(xml, 256, 80, rng) for _ in range(50)]
    assert all(c is not None for c in crops)
    assert all(x + 80 <= 100 or x >= 120 for x, _ in crops)  # the pothole (D40) box may be cropped
    assert crack_free_crop(xml, 256, 200, rng) is None  # no 200 px window misses the crack


def test_samples_are_darkened_where_the_mask_is(backgrounds):
    sampler = CrackSampler(
        sorted((backgrounds / "images").glob("*.jpg")),
        backgrounds / "annotations" / "xmls",
        SynthesisConfig(no_crack_share=0.0, distractor_share=0.0),
    )
    rng = np.random.default_rng(3)
    darker = []
    for _ in range(20):
        image, mask = sampler.sample(rng)
        assert image.shape == mask.shape == (128, 128) and image.dtype == np.uint8 and mask.dtype == bool
        if mask.sum() > 30 and (~mask).sum() > 30:
            darker.append(image[mask].mean() < image[~mask].mean() - 5)
    assert len(darker) >= 10 and np.mean(darker) >= 0.9


def test_samples_are_reproducible_and_some_have_no_crack(backgrounds):
    images = sorted((backgrounds / "images").glob("*.jpg"))
    sampler = CrackSampler(images, backgrounds / "annotations" / "xmls", SynthesisConfig(no_crack_share=0.5))
    a = sampler.sample(np.random.default_rng(9))
    b = sampler.sample(np.random.default_rng(9))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    rng = np.random.default_rng(1)
    empty = [not sampler.sample(rng)[1].any() for _ in range(40)]
    assert 0.25 < np.mean(empty) < 0.75


def test_prepare_standardises_and_takes_colour():
    grey = asphalt((40, 50), 0)
    x = prepare(cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR))
    assert x.shape == (1, 40, 50) and abs(float(x.mean())) < 1e-4 and abs(float(x.std()) - 1) < 0.01
    assert np.allclose(x, prepare(grey), atol=1e-5)


def test_shipped_model_finds_a_crack_on_asphalt(segmenter):
    image = asphalt((200, 300), 1)
    truth = np.zeros(image.shape, np.uint8)
    pts = np.array([[20, 40], [90, 70], [160, 60], [280, 150]], np.int32)
    cv2.polylines(image, [pts], False, 60, 3)
    cv2.polylines(truth, [pts], False, 1, 5)
    scores = tolerant_pixel_scores(segmenter(image), truth, 2.0)
    assert scores.f1 > 0.8, scores


def test_shipped_model_leaves_sound_asphalt_clear(segmenter):
    mask = segmenter(asphalt((200, 300), 2))
    assert (mask > 0).mean() < 0.005


@pytest.mark.parametrize("shape", [(77, 101), (9, 9), (1, 1), (2, 3), (480, 640, 3)])
def test_mask_has_the_image_size_whatever_it_is(segmenter, shape):
    image = np.full(shape, 120, np.uint8)
    mask = segmenter(image)
    assert mask.shape == shape[:2] and mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 255}


def test_tiles_give_the_whole_image_result():
    image = asphalt((300, 420), 6)
    cv2.polylines(image, [np.array([[0, 20], [200, 160], [419, 290]], np.int32)], False, 60, 3)
    cv2.line(image, (150, 0), (170, 299), 70, 2)
    whole = OnnxCrackSegmenter(DEFAULT_MODEL).probability(image)
    tiled = OnnxCrackSegmenter(DEFAULT_MODEL, LearnedSegmenterConfig(tile_px=128)).probability(image)
    assert tiled.shape == whole.shape == (300, 420)
    assert np.abs(tiled - whole).max() < 0.05  # seams: the margin covers the receptive field
    assert ((tiled >= 0.5) != (whole >= 0.5)).mean() < 1e-3


def test_missing_or_broken_model_is_a_clear_error(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        OnnxCrackSegmenter(tmp_path / "none.onnx")
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="cannot load"):
        OnnxCrackSegmenter(broken)


def test_shipped_model_matches_its_card_and_an_altered_copy_is_refused(tmp_path):
    load_crack_segmenter()  # models/crack_unet.onnx against models/crack_unet.md
    altered = tmp_path / "crack_unet.onnx"
    altered.write_bytes(DEFAULT_MODEL.read_bytes() + b"\0")
    shutil.copy(DEFAULT_MODEL.with_suffix(".md"), tmp_path / "crack_unet.md")
    with pytest.raises(ModelError, match="sha256"):
        load_crack_segmenter(altered)


def test_small_components_are_dropped(segmenter):
    image = asphalt((200, 300), 4)
    cv2.line(image, (20, 100), (280, 110), 60, 3)
    cv2.circle(image, (150, 30), 3, 50, -1)  # a pit, not a crack
    full = segmenter(image)
    filtered = OnnxCrackSegmenter(DEFAULT_MODEL, LearnedSegmenterConfig(min_component_px=100))(image)
    assert filtered[95:115].any() and not (filtered & ~full).any()


@pytest.mark.skipif(not HAS_TORCH, reason="needs the training extra (torch, onnx)")
def test_training_smoke_run_exports_a_working_model(backgrounds, tmp_path):
    from pipelines.train_crack_segmenter import SegTrainConfig, run_train_crack_segmenter

    config = SegTrainConfig(data=backgrounds, steps=3, batch=2, channels=(4, 8, 8, 8))
    seen = []
    report = run_train_crack_segmenter(config, tmp_path, progress=lambda done, total: seen.append(done))
    assert seen == [1, 2, 3] and report["validation_images"] >= 1 and 0 <= report["validation"]["f1"] <= 1
    assert json.loads((tmp_path / "train_report.json").read_text())["sha256"] == sha256_of(
        tmp_path / "crack_unet.onnx"
    )
    mask = OnnxCrackSegmenter(tmp_path / "crack_unet.onnx")(asphalt((60, 90), 5))
    assert mask.shape == (60, 90)


def test_training_refuses_missing_start_weights_and_unknown_stage(backgrounds, tmp_path):
    from pipelines.train_crack_segmenter import SegTrainConfig, run_train_crack_segmenter

    with pytest.raises(ConfigError, match="start weights"):
        run_train_crack_segmenter(SegTrainConfig(data=backgrounds, init=tmp_path / "none.pt"), tmp_path)
    with pytest.raises(ConfigError, match="unknown synthesis"):
        run_train_crack_segmenter(SegTrainConfig(data=backgrounds, synthesis="wide"), tmp_path)
