"""Damage detection on ONNX Runtime (base install, no torch; OpenVINO optional): the pipeline's Detector.

``load_detector`` checks the model file against the sha256 in its card (``models/<name>.md``)
before anything runs it; ``OnnxDetector`` letterboxes, runs batches, decodes, applies per-class
confidence thresholds and class-aware NMS, and maps boxes back to the input image's pixels;
``run_detect`` runs it over a folder of images and writes the JSON of issue 4.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from pavement.boxes import Letterbox, class_thresholds, decode_yolo, letterbox, to_detections
from pavement.detections import DAMAGE_CLASSES, Detections
from pavement.errors import ConfigError, ImageUnreadable, InputError, ModelError

logger = logging.getLogger(__name__)

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
DEFAULT_MODEL = MODELS_DIR / "damage_yolo.onnx"
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png"})
#: Confidence threshold chosen on the validation split (best overall F1; eval/results/detector_f1.json).
DEFAULT_CONF = 0.26

ENGINES = ("onnxruntime", "openvino")
#: Where ONNX Runtime runs the model. "auto": the CUDA provider when this ONNX Runtime has it
#: (onnxruntime-gpu on a machine with an NVIDIA GPU), else the CPU. TensorRT is only used when asked
#: for: it compiles an engine per input shape on first use (minutes) before the first result.
DEVICES = ("auto", "cpu", "cuda", "tensorrt")
CPU_PROVIDER = "CPUExecutionProvider"
CUDA_PROVIDER = "CUDAExecutionProvider"
TENSORRT_PROVIDER = "TensorrtExecutionProvider"

_SHA256 = re.compile(r"sha256[^0-9a-fA-F]*([0-9a-fA-F]{64})")


@dataclass(frozen=True)
class DetectorConfig:
    """Inference settings. Thresholds are scores in [0, 1]; ``class_conf`` overrides ``conf`` per class."""

    conf: float = DEFAULT_CONF
    class_conf: dict[str, float] = field(default_factory=dict)  # e.g. {"D40": 0.2}
    # NMS IoU between boxes of one class. Cracks give chains of overlapping boxes: at epoch 5, 0.4
    # beat 0.5 by 0.017 F1 and 0.7 by 0.074; on the shipped model 0.3-0.5 are within 0.003
    # (eval/results/detector_f1.md).
    iou: float = 0.4
    agnostic_nms: bool = False  # True: boxes of different classes suppress each other too
    batch_size: int = 4  # images per ONNX Runtime call
    max_det: int = 100  # boxes kept per image
    # "onnxruntime" (base install) or "openvino" (optional; bf16 on CPUs with AVX-512 BF16/AMX).
    engine: str = "onnxruntime"
    device: str = "auto"  # one of DEVICES (engine "onnxruntime"); OpenVINO runs on the CPU
    # Threads for one session; the machines have 2 cores. More threads than cores only thrash.
    threads: int = field(default_factory=lambda: max(1, min(2, os.cpu_count() or 1)))

    def __post_init__(self) -> None:
        if not 0 < self.iou <= 1:
            raise ConfigError(f"NMS iou {self.iou} must lie in (0, 1]")
        if self.batch_size < 1 or self.max_det < 1 or self.threads < 1:
            raise ConfigError(
                f"batch_size {self.batch_size}, max_det {self.max_det} and threads {self.threads} "
                "must be >= 1"
            )
        if self.engine not in ENGINES:
            raise ConfigError(f"engine {self.engine!r} is unknown; use one of {list(ENGINES)}")
        if self.device not in DEVICES:
            raise ConfigError(f"device {self.device!r} is unknown; use one of {list(DEVICES)}")
        class_thresholds(self.conf, self.class_conf)  # validates codes and ranges


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def card_sha256(card_path: Path) -> str:
    """The sha256 a model card declares (the first ``sha256 ... <64 hex>`` on one line)."""
    if not card_path.is_file():
        raise ModelError(f"model card {card_path} is missing; every model in models/ ships beside its card")
    for line in card_path.read_text(encoding="utf-8").splitlines():
        match = _SHA256.search(line)
        if match:
            return match.group(1).lower()
    raise ModelError(f"model card {card_path} declares no sha256; add a line 'sha256: <64 hex digits>'")


def verify_model(model_path: Path, card_path: Path | None = None) -> str:
    """Check ``model_path`` against its card's sha256; return the digest or raise ``ModelError``."""
    model_path = Path(model_path)
    if not model_path.is_file():
        raise ModelError(
            f"model file {model_path} is missing; pass --model or restore it from the repository"
        )
    card_path = Path(card_path) if card_path else model_path.with_suffix(".md")
    expected, actual = card_sha256(card_path), sha256_of(model_path)
    if actual != expected:
        raise ModelError(
            f"{model_path.name} has sha256 {actual}, but its card {card_path.name} declares {expected}: "
            "the file was altered or belongs to another card; restore the shipped model or update the card "
            "with the model's reproduction command"
        )
    return actual


class BatchDetector(Protocol):
    """What ``pavement process`` needs of a damage detector: ``OnnxDetector``, or a stand-in that
    sends the images elsewhere (``pipelines.inference.RemoteDetector``, a Ray actor's model)."""

    name: str  # the model file's name, for the reports
    provider: str  # the execution provider that runs the model

    def detect_batch(self, images: Sequence[np.ndarray]) -> list[Detections]: ...


class OnnxDetector:
    """The project's ``Detector`` on ONNX Runtime: ``detector(image_bgr) -> Detections``.

    ``detect_batch`` takes several images of any sizes; each is letterboxed to ``input_size``.
    """

    def __init__(
        self, session, input_size: int, config: DetectorConfig = DetectorConfig(), name: str = ""
    ) -> None:
        self.session = session
        self.input_size = input_size
        self.config = config
        self.name = name
        # The provider that really runs the model: ONNX Runtime falls back to the CPU when a GPU
        # provider cannot start (no driver, no CUDA libraries).
        providers = session.get_providers() if hasattr(session, "get_providers") else []
        self.provider = providers[0] if providers else CPU_PROVIDER
        self.thresholds = class_thresholds(config.conf, config.class_conf)
        self._input = session.get_inputs()[0].name
        outputs = session.get_outputs()
        if len(outputs) != 1:
            raise ModelError(f"model {name!r} has {len(outputs)} outputs; a YOLO detection export has 1")

    def __call__(self, image: np.ndarray) -> Detections:
        return self.detect_batch([image])[0]

    def detect_batch(self, images: Sequence[np.ndarray]) -> list[Detections]:
        """Detections for each (H, W, 3) uint8 BGR image, in that image's pixels."""
        return self.detect_letterboxed(letterbox_images(images, self.input_size))

    def detect_letterboxed(self, boxed: Sequence[tuple[np.ndarray, Letterbox]]) -> list[Detections]:
        """``detect_batch`` on images ``letterbox_images`` has already fitted to ``input_size``
        (the same results): the small (input_size, input_size, 3) squares are what a remote
        detector is sent instead of whole frames. Boxes are in pixels of the original images."""
        results: list[Detections] = []
        step = self.config.batch_size
        for start in range(0, len(boxed), step):
            chunk = boxed[start : start + step]
            if any(b[0].shape != (self.input_size, self.input_size, 3) for b in chunk):
                raise ConfigError(
                    f"letterboxed images of shapes {[b[0].shape for b in chunk]}; this model takes squares "
                    f"of {self.input_size} px from letterbox_images(images, {self.input_size})"
                )
            # BGR -> RGB, HWC -> CHW, [0, 1]: the ultralytics training convention.
            batch = np.stack([b[0][..., ::-1].transpose(2, 0, 1) for b in chunk]).astype(np.float32) / 255.0
            (raw,) = self.session.run(None, {self._input: batch})
            if raw.ndim != 3 or raw.shape[1] != 4 + len(DAMAGE_CLASSES):
                raise ModelError(
                    f"model output of shape {raw.shape}; "
                    f"expected (batch, {4 + len(DAMAGE_CLASSES)}, anchors) "
                    f"for classes {[c.value for c in DAMAGE_CLASSES]}"
                )
            for out, (_, geom) in zip(raw, chunk, strict=True):
                xyxy, cls, conf = decode_yolo(
                    out, self.thresholds, self.config.iou, self.config.max_det, self.config.agnostic_nms
                )
                results.append(to_detections(geom, xyxy, cls, conf))
        return results


def letterbox_images(images: Sequence[np.ndarray], input_size: int) -> list[tuple[np.ndarray, Letterbox]]:
    """Each (H, W, 3) uint8 BGR image (grey and BGRA accepted) fitted into an ``input_size``
    square as the detector sees it, with the geometry that maps its boxes back."""
    return [letterbox(_as_bgr(image), input_size) for image in images]


def _as_bgr(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim != 3 or image.shape[2] not in (3, 4) or image.dtype != np.uint8:
        raise ConfigError(f"image of shape {image.shape} {image.dtype}; give (H, W, 3) uint8 BGR")
    return image[..., :3] if image.shape[2] == 4 else image


def _input_size(session, model_path: Path) -> int:
    shape = session.get_inputs()[0].shape
    if isinstance(shape[-1], int) and shape[-1] > 0:
        return int(shape[-1])
    meta = session.get_modelmeta().custom_metadata_map  # ultralytics writes imgsz: "[416, 416]"
    sizes = [int(v) for v in re.findall(r"\d+", meta.get("imgsz", ""))]
    if not sizes:
        raise ModelError(f"{model_path.name} has a dynamic input and no 'imgsz' metadata; re-export it")
    return sizes[0]


class _OpenVinoSession:
    """The slice of ``onnxruntime.InferenceSession`` that ``OnnxDetector`` uses, on OpenVINO."""

    def __init__(self, model_path: Path, threads: int) -> None:
        try:
            import openvino as ov
        except ImportError as exc:
            raise ImportError("the openvino engine needs OpenVINO: pip install openvino") from exc
        core = ov.Core()
        model = core.read_model(str(model_path))
        meta = model.get_rt_info()["framework"]  # the ONNX metadata ultralytics wrote
        self._imgsz = str(meta["imgsz"].astype(str)) if "imgsz" in meta else ""
        self._compiled = core.compile_model(
            model, "CPU", {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"}
        )
        self._request = self._compiled.create_infer_request()
        self._inputs = [_Port(model.inputs[0].get_any_name(), list(model.inputs[0].partial_shape))]

    def get_inputs(self) -> list[_Port]:
        return self._inputs

    def get_outputs(self) -> list[_Port]:
        return [_Port(o.get_any_name(), []) for o in self._compiled.outputs]

    def get_providers(self) -> list[str]:
        return ["OpenVINO CPU"]

    def get_modelmeta(self) -> _Port:
        return _Port("", [], {"imgsz": self._imgsz})

    def run(self, _names: None, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        result = self._request.infer({0: next(iter(feeds.values()))})
        return [np.asarray(result[0]).copy()]


@dataclass(frozen=True)
class _Port:
    name: str
    shape: list
    custom_metadata_map: dict[str, str] = field(default_factory=dict)


def onnx_providers(device: str = "auto", available: Sequence[str] | None = None) -> list[str]:
    """ONNX Runtime execution providers for ``device`` (see ``DEVICES``), preferred first, always
    ending with the CPU. ``available`` defaults to ``onnxruntime.get_available_providers()``."""
    if device not in DEVICES:
        raise ConfigError(f"device {device!r} is unknown; use one of {list(DEVICES)}")
    if available is None:
        import onnxruntime as ort

        available = ort.get_available_providers()
    if device == "cpu":
        return [CPU_PROVIDER]
    if device == "auto":
        return [CUDA_PROVIDER, CPU_PROVIDER] if CUDA_PROVIDER in available else [CPU_PROVIDER]
    wanted = [TENSORRT_PROVIDER, CUDA_PROVIDER] if device == "tensorrt" else [CUDA_PROVIDER]
    if wanted[0] not in available:
        raise ConfigError(
            f"device {device!r} needs ONNX Runtime's {wanted[0]}, which this installation lacks "
            f"(it has {list(available)}); install onnxruntime-gpu on a machine with an NVIDIA GPU, "
            "or use device 'auto' or 'cpu'"
        )
    return [p for p in wanted if p in available] + [CPU_PROVIDER]


def load_detector(
    model_path: Path = DEFAULT_MODEL, config: DetectorConfig = DetectorConfig(), card_path: Path | None = None
) -> OnnxDetector:
    """Verify ``model_path`` against its card's sha256, then open it with ``config.engine``: OpenVINO
    on the CPU, or ONNX Runtime on ``config.device`` (the GPU when there is one; ``onnx_providers``).
    ``detector.provider`` names the execution provider that runs it."""
    verify_model(model_path, card_path)
    if config.engine == "openvino":
        try:
            session = _OpenVinoSession(Path(model_path), config.threads)
        except ImportError:
            raise
        except Exception as exc:
            raise ModelError(f"OpenVINO cannot open {model_path}: {exc}") from exc
        return OnnxDetector(session, _input_size(session, Path(model_path)), config, Path(model_path).name)

    import onnxruntime as ort

    providers = onnx_providers(config.device, ort.get_available_providers())

    options = ort.SessionOptions()
    options.intra_op_num_threads = config.threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # No busy-waiting between calls: in ``pavement process`` the video decoder needs the same cores.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        session = ort.InferenceSession(str(model_path), options, providers=providers)
    except Exception as exc:  # ORT raises its own untyped errors for corrupt files
        raise ModelError(f"ONNX Runtime cannot open {model_path}: {exc}") from exc
    detector = OnnxDetector(session, _input_size(session, Path(model_path)), config, Path(model_path).name)
    if detector.provider != providers[0]:
        logger.warning("%s: %s did not start; running on %s", detector.name, providers[0], detector.provider)
    logger.info("detector %s on %s", detector.name, detector.provider)
    return detector


# --------------------------------------------------------------------------------------------
# The stage: a folder of images -> one JSON
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DetectResult:
    """What ``run_detect`` wrote and what it skipped."""

    out_json: Path
    report_json: Path
    n_images: int
    n_detections: int
    unreadable: tuple[str, ...]
    wall_s: float


def list_images(image_dir: Path) -> list[Path]:
    """JPEG and PNG files directly in ``image_dir``, sorted by name."""
    image_dir = Path(image_dir)
    if not image_dir.is_dir():
        raise InputError(f"image folder {image_dir} does not exist; give a folder of JPEG/PNG files")
    return sorted(p for p in image_dir.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def read_image(path: Path) -> np.ndarray:
    """BGR uint8 image; ``ImageUnreadable`` when the file cannot be decoded."""
    data = np.fromfile(path, dtype=np.uint8)  # also handles non-ASCII paths, unlike cv2.imread
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None or image.size == 0:
        raise ImageUnreadable(f"{path} cannot be decoded as an image; re-export it as JPEG or PNG")
    return image


def detections_to_json(dets: Detections) -> list[dict]:
    return [
        {
            "class": DAMAGE_CLASSES[int(c)].value,
            "score": round(float(s), 4),
            "xyxy": [round(float(v), 1) for v in box],
        }
        for box, c, s in zip(dets.xyxy, dets.class_id, dets.confidence, strict=True)
    ]


def run_detect(
    image_dir: Path,
    out_json: Path,
    conf: float | None = None,
    model_path: Path = DEFAULT_MODEL,
    config: DetectorConfig | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> DetectResult:
    """Detect damage in every JPEG/PNG of ``image_dir``; write issue 4's JSON to ``out_json``.

    Boxes are in pixels of each input image. Unreadable files are logged, listed in the report
    (``<out_json stem>.report.json``) and skipped. ``progress(done, total)`` is called per batch.
    ``conf``, when given, replaces ``config.conf`` (the minimum score of every class).
    """
    started = time.time()
    config = config or DetectorConfig()
    if conf is not None:
        config = dataclasses.replace(config, conf=conf)
    detector = load_detector(Path(model_path), config)
    files = list_images(image_dir)
    entries: list[dict] = []
    unreadable: list[str] = []
    n_detections = 0
    for start in range(0, len(files), config.batch_size):
        chunk, images = files[start : start + config.batch_size], []
        for path in chunk:
            try:
                images.append((path, read_image(path)))
            except ImageUnreadable as exc:
                logger.warning("skipped: %s", exc)
                unreadable.append(path.name)
        for (path, image), dets in zip(images, detector.detect_batch([im for _, im in images]), strict=True):
            entries.append(
                {
                    "file": path.name,
                    "width": int(image.shape[1]),
                    "height": int(image.shape[0]),
                    "detections": detections_to_json(dets),
                }
            )
            n_detections += len(dets)
        if progress is not None:
            progress(min(start + len(chunk), len(files)), len(files))

    out_json = Path(out_json)
    out_json.parent.mkdir(parents=True, exist_ok=True)
    payload = {"model": detector.name, "classes": [c.value for c in DAMAGE_CLASSES], "images": entries}
    out_json.write_text(json.dumps(payload, ensure_ascii=False))
    wall_s = time.time() - started
    report_json = out_json.with_name(f"{out_json.stem}.report.json")
    report_json.write_text(
        json.dumps(
            {
                "stage": "detect",
                "image_dir": str(image_dir),
                "model": detector.name,
                "model_sha256": sha256_of(Path(model_path)),
                "provider": detector.provider,
                "input_size_px": detector.input_size,
                "conf": config.conf,
                "class_conf": config.class_conf,
                "iou": config.iou,
                "n_files": len(files),
                "n_images": len(entries),
                "n_unreadable": len(unreadable),
                "unreadable": unreadable,
                "n_detections": n_detections,
                "wall_s": round(wall_s, 2),
            },
            indent=2,
        )
    )
    if unreadable:
        logger.warning(
            "%d of %d files unreadable and skipped; listed in %s", len(unreadable), len(files), report_json
        )
    return DetectResult(out_json, report_json, len(entries), n_detections, tuple(unreadable), wall_s)
