"""Train the crack segmenter (a small U-Net) on synthetic cracks over real asphalt, export ONNX.

Needs the training extra (torch). The training data are made on the fly by
``pipelines.crack_synthesis`` from the RDD2022 photos (CC BY-SA 4.0), away from their crack boxes;
DeepCrack and CrackForest are never trained on (their licence allows evaluation and tuning only).

The network sees one grey channel, standardised per image (``pipelines.crack_model.prepare``), and
gives a crack logit per pixel. Four levels of two 3x3 convolutions (batch norm, ReLU), max-pool
down, bilinear up with skip connections: 0.39 M weights, so that it trains on two CPU cores
and runs on a 2-core machine in 0.1-0.2 s for a 544 x 384 image.

The shipped model (``models/crack_unet.md``) was trained in two stages, narrow cracks first:

    pavement train-crack-segmenter ../shared/data/rdd2022_china_motorbike --out work/crack_seg_a \
        --synthesis narrow --steps 3000
    pavement train-crack-segmenter ../shared/data/rdd2022_china_motorbike --out work/crack_seg_b \
        --synthesis full --steps 2500 --lr 1e-3 --init work/crack_seg_a/last.pt

Each writes ``last.pt``, ``crack_unet.onnx`` and ``train_report.json`` (settings, loss log, the
validation scores on synthetic cracks over held-out photos, sha256) to its ``--out``.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from pavement.errors import ConfigError
from pipelines.crack_synthesis import CURRICULUM, CrackSampler, SynthesisConfig
from pipelines.detect import sha256_of
from pipelines.train_detector import INSTALL_HINT, file_number

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class SegTrainConfig:
    data: Path = REPO.parent / "shared" / "data" / "rdd2022_china_motorbike"
    steps: int = 3000
    batch: int = 12
    lr: float = 2e-3
    weight_decay: float = 1e-4
    channels: tuple[int, ...] = (16, 32, 64, 96)
    seed: int = 0
    threads: int = 2
    synthesis: str = "full"  # a stage of pipelines.crack_synthesis.CURRICULUM
    init: Path | None = None  # start from these weights (a state dict of the same architecture)


def split_backgrounds(data: Path, block: int = 25, every: int = 5) -> dict[str, list[Path]]:
    """RDD photos split by blocks of ``block`` consecutive file numbers (consecutive photos are
    from the same drive): every ``every``-th block is validation, the rest training."""
    images = sorted((data / "images").glob("*.jpg"))
    if not images:
        raise ConfigError(f"no RDD photos in {data / 'images'}")
    is_val = [(file_number(p.name) // block) % every == 0 for p in images]
    return {
        "train": [p for p, v in zip(images, is_val, strict=True) if not v],
        "validation": [p for p, v in zip(images, is_val, strict=True) if v],
    }


def build_model(channels: tuple[int, ...]):
    import torch
    from torch import nn

    def block(cin: int, cout: int) -> nn.Sequential:
        return nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )

    class UNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.down = nn.ModuleList()
            cin = 1
            for c in channels:
                self.down.append(block(cin, c))
                cin = c
            self.up = nn.ModuleList(
                block(channels[i + 1] + channels[i], channels[i]) for i in range(len(channels) - 1)
            )
            self.head = nn.Conv2d(channels[0], 1, 1)

        def forward(self, x):
            skips = []
            for i, b in enumerate(self.down):
                x = b(x if i == 0 else nn.functional.max_pool2d(x, 2))
                skips.append(x)
            for i in reversed(range(len(self.up))):
                x = nn.functional.interpolate(
                    x, size=skips[i].shape[-2:], mode="bilinear", align_corners=False
                )
                x = self.up[i](torch.cat([x, skips[i]], 1))
            return self.head(x)

    return UNet()


def batch_of(sampler: CrackSampler, rng: np.random.Generator, n: int):
    from pipelines.crack_model import prepare

    pairs = [sampler.sample(rng) for _ in range(n)]
    x = np.stack([prepare(img) for img, _ in pairs])
    y = np.stack([m[None].astype(np.float32) for _, m in pairs])
    return x, y


def train(config: SegTrainConfig, out: Path, progress: Callable[[int, int], None] | None = None) -> dict:
    """Train; ``out/last.pt`` is saved every 500 steps and at the end. Returns the report's
    training part (settings, split sizes, loss log, wall time)."""
    import torch

    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    split = split_backgrounds(config.data)
    sampler = CrackSampler(split["train"], config.data / "annotations" / "xmls", CURRICULUM[config.synthesis])
    rng = np.random.default_rng(config.seed)
    model = build_model(config.channels)
    if config.init is not None:
        model.load_state_dict(torch.load(config.init, map_location="cpu"))
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, config.lr, total_steps=config.steps, pct_start=0.1)
    out.mkdir(parents=True, exist_ok=True)
    started, log = time.perf_counter(), []
    for step in range(config.steps):
        x, y = batch_of(sampler, rng, config.batch)
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
        logits = model(xt)
        p = torch.sigmoid(logits)
        bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, yt)
        dice = 1 - (2 * (p * yt).sum() + 1) / (p.sum() + yt.sum() + 1)
        loss = bce + dice
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if progress is not None:
            progress(step + 1, config.steps)
        if step % 50 == 0 or step == config.steps - 1:
            elapsed = time.perf_counter() - started
            log.append({"step": step, "loss": round(float(loss.detach()), 4), "s": round(elapsed, 1)})
            left = elapsed / (step + 1) * (config.steps - step - 1)
            logger.info(
                "step %d/%d  loss %.4f  %.0f s, about %.0f s left",
                step + 1,
                config.steps,
                loss,
                elapsed,
                left,
            )
        if (step + 1) % 500 == 0:
            torch.save(model.state_dict(), out / "last.pt")
    torch.save(model.state_dict(), out / "last.pt")
    report = {
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()},
        "synthesis_config": asdict(CURRICULUM[config.synthesis]),
        "train_images": len(split["train"]),
        "validation_images": len(split["validation"]),
        "wall_s": round(time.perf_counter() - started, 1),
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        "log": log,
    }
    return report


def export_onnx(config: SegTrainConfig, weights: Path, onnx_path: Path) -> None:
    import torch

    model = build_model(config.channels)
    model.load_state_dict(torch.load(weights, map_location="cpu"))
    model.eval()
    dummy = torch.zeros(1, 1, 256, 256)
    torch.onnx.export(
        model,
        dummy,
        str(onnx_path),
        input_names=["image"],
        output_names=["logit"],
        dynamic_axes={"image": {0: "n", 2: "h", 3: "w"}, "logit": {0: "n", 2: "h", 3: "w"}},
        opset_version=17,
        dynamo=False,
    )


def validate(config: SegTrainConfig, onnx_path: Path, samples: int = 300, seed: int = 1000) -> dict:
    """Tolerant pixel scores (2 px) of the exported model on synthetic samples drawn over the
    validation photos (blocks never trained on), with the runtime's default settings."""
    from pavement.crack_segmentation import PixelScores, tolerant_pixel_scores
    from pipelines.crack_model import LearnedSegmenterConfig, OnnxCrackSegmenter

    images = split_backgrounds(config.data)["validation"]
    sampler = CrackSampler(images, config.data / "annotations" / "xmls", SynthesisConfig())
    segmenter = OnnxCrackSegmenter(onnx_path, LearnedSegmenterConfig(threads=config.threads))
    rng, total = np.random.default_rng(seed), PixelScores(0, 0, 0, 0)
    for _ in range(samples):
        image, truth = sampler.sample(rng)
        total = total + tolerant_pixel_scores(segmenter(image), truth, 2.0)
    return {
        "samples": samples,
        "seed": seed,
        "precision": round(total.precision, 4),
        "recall": round(total.recall, 4),
        "f1": round(total.f1, 4),
    }


def run_train_crack_segmenter(
    config: SegTrainConfig, out: Path, progress: Callable[[int, int], None] | None = None
) -> dict:
    """Train, export ``out/crack_unet.onnx``, validate it, and write ``out/train_report.json``.
    ``progress(done, total)`` is called after each training step."""
    if importlib.util.find_spec("torch") is None or importlib.util.find_spec("onnx") is None:
        raise ConfigError(f"training the crack segmenter needs torch and onnx: {INSTALL_HINT}")
    if config.synthesis not in CURRICULUM:
        raise ConfigError(f"unknown synthesis {config.synthesis!r}; choose one of {sorted(CURRICULUM)}")
    if config.init is not None and not Path(config.init).is_file():
        raise ConfigError(f"start weights {config.init} not found (the last.pt of an earlier run)")
    report = train(config, out, progress)
    onnx_path = out / "crack_unet.onnx"
    export_onnx(config, out / "last.pt", onnx_path)
    report["validation"] = validate(config, onnx_path)
    report["sha256"] = sha256_of(onnx_path)
    report["onnx"] = str(onnx_path)
    (out / "train_report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report
