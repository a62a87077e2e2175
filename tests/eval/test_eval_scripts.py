"""Small real runs of the evaluation and benchmark scripts, so they cannot rot: each full run is
slow and kept out of the test suite, but its functions run here on tiny inputs."""

import shutil
from functools import partial
from pathlib import Path

import cv2
import numpy as np
import pytest

from pavement.crack_segmentation import segment_cracks
from pipelines.detect import DEFAULT_MODEL, DetectorConfig, load_detector
from tests.eval import load_script

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def detector():
    return load_detector(DEFAULT_MODEL, DetectorConfig())


def test_detector_f1_matching_is_greedy_by_score_and_class_aware():
    f1 = load_script("eval/detector_f1.py")
    gt_xyxy, gt_cls = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], float), np.array([0, 3])
    pred = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]], float)
    tp = f1.match_image(pred, np.array([0, 0, 1]), np.array([0.9, 0.8, 0.7]), gt_xyxy, gt_cls)
    assert tp.tolist() == [True, False, False]  # the second box is a duplicate, the third the wrong class
    assert f1.prf(1, 2, 1)["f1"] == pytest.approx(2 * (1 / 3) * 0.5 / (1 / 3 + 0.5), abs=1e-4)


def test_detector_speed_bench_runs(detector):
    bench = load_script("bench/detector_speed.py")
    images = [np.full((360, 640, 3), 120, np.uint8)] * 2
    rates = bench.images_per_s(detector, images, rounds=1)
    assert len(rates) == 1 and rates[0] > 0


def test_crack_segmentation_score_on_a_drawn_crack():
    cs = load_script("eval/crack_segmentation.py")
    rng = np.random.default_rng(0)
    image = np.clip(rng.normal(120, 10, (120, 160)), 0, 255).astype(np.uint8)
    truth = np.zeros_like(image, bool)
    cv2.line(image, (10, 10), (150, 100), 40, 3)
    truth[cv2.line(np.zeros_like(image), (10, 10), (150, 100), 1, 3) > 0] = True
    sample = ("a", cv2.cvtColor(image, cv2.COLOR_GRAY2BGR), truth)
    classical = cs.score(iter([sample]), partial(segment_cracks, config=cs.CONFIGS["default"]))
    assert classical["images"] == 1 and classical["f1"] > 0.7
    learned = cs.OnnxCrackSegmenter(cs.DEFAULT_MODEL)
    assert cs.score(iter([sample]), learned)["f1"] > 0.8
    sweep = cs.sweep(iter([sample]), learned)
    assert set(sweep) == {str(t) for t in cs.SWEEP} and all(s["f1"] > 0.7 for s in sweep.values())


def test_false_alarm_count_on_a_run(synth_run, tmp_path, detector):
    fa = load_script("eval/detector_false_alarms.py")
    row = fa.count_run(synth_run, tmp_path / "geotag", detector)
    assert row["km"] > 0.15 and row["frames"] > 0 and row["all_per_km"] >= 0


def test_iri_evaluation_rows(synth_run, tmp_path):
    iri = load_script("eval/iri.py")
    shutil.copytree(synth_run, tmp_path / "seed7")
    rows = iri.estimates(7, 200.0, tmp_path)
    assert rows and all(r["true_iri"] > 0 and r["estimate_gain1"] > 0 for r in rows)


def test_rut_depth_sensor_evaluation_rows(synth_depth_run, tmp_path):
    ev = load_script("eval/rut_depth_sensor.py")
    from pipelines.geotag import run_geotag

    by_truth = ev.score_run(synth_depth_run, ev.truth_chainage(synth_depth_run))
    assert by_truth["depth_maps"] >= 8 and by_truth["profiles"] == by_truth["depth_maps"]
    summary = ev.summarise(by_truth["sections"])
    assert summary["n"] >= 1 and summary["blank"] == 0 and summary["mae_mm"] < 3.0
    geo = run_geotag(synth_depth_run, tmp_path / "geotag")
    by_gps = ev.score_run(synth_depth_run, ev.geotag_chainage(synth_depth_run, geo.frames))
    assert [s["section"] for s in by_gps["sections"]] == [s["section"] for s in by_truth["sections"]]
    assert any(s["n_profiles"] > 0 for s in by_gps["sections"])
