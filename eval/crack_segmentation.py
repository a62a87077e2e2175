"""Crack segmentation on DeepCrack and CrackForest (non-commercial research data: evaluation and
tuning only, never training of shipped weights).

Scores the learned segmenter (``models/crack_unet.onnx``, trained on synthetic cracks over RDD
asphalt; one setting for both data sets) and the classical one (black-hat; its default and a
setting per data set). For the learned one it also sweeps the probability threshold, to show how
flat the choice is.

Metric: precision, recall and F1 where a predicted crack pixel counts as correct within 2 px of a
true one (and a true pixel as found within 2 px of a predicted one), summed over all pixels of the
set. Usage:

    python eval/crack_segmentation.py [--data ../shared/data] [--model models/crack_unet.onnx]
        [--out eval/results/crack_segmentation.json]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import cv2
import numpy as np
import scipy.io

from pavement.crack_segmentation import (
    CrackSegmenterConfig,
    PixelScores,
    segment_cracks,
    tolerant_pixel_scores,
)
from pipelines.crack_model import DEFAULT_MODEL, LearnedSegmenterConfig, OnnxCrackSegmenter
from pipelines.detect import sha256_of

REPO = Path(__file__).resolve().parents[1]


def deepcrack(root: Path) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    for img_path in sorted((root / "deepcrack" / "images").glob("*.jpg")):
        mask = cv2.imread(str(root / "deepcrack" / "masks" / f"{img_path.stem}.png"), cv2.IMREAD_GRAYSCALE)
        yield img_path.name, cv2.imread(str(img_path)), mask > 0


def crackforest(root: Path) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    for gt_path in sorted((root / "crackforest" / "groundTruth").glob("*.mat")):
        seg = scipy.io.loadmat(gt_path)["groundTruth"][0, 0]["Segmentation"]
        image = cv2.imread(str(root / "crackforest" / "images" / f"{gt_path.stem}.jpg"))
        yield gt_path.name, image, seg == 2  # 1 = background, 2 = crack (3/4: enclosed areas)


DATASETS = {"deepcrack": deepcrack, "crackforest": crackforest}

#: The element size follows the crack width in pixels: DeepCrack is close-up (wide cracks),
#: CrackForest is farther away (thin cracks). Tuned on the data sets themselves (their licence
#: allows tuning), so these scores are optimistic for other images.
CONFIGS = {
    "default": CrackSegmenterConfig(),
    "deepcrack": CrackSegmenterConfig(
        blackhat_px=25, high_percentile=99.0, low_percentile=96.0, min_component_px=150
    ),
    "crackforest": CrackSegmenterConfig(),
}


SWEEP = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8)


def evaluate(root: Path, model: Path) -> dict[str, dict[str, dict[str, float]]]:
    learned = OnnxCrackSegmenter(model, LearnedSegmenterConfig())
    results: dict[str, dict[str, dict[str, float]]] = {}
    for name, reader in DATASETS.items():
        results[name] = {"learned": score(reader(root), learned)}
        for setting in dict.fromkeys(("default", name)):
            results[name][f"classical {setting}"] = score(
                reader(root), partial(segment_cracks, config=CONFIGS[setting])
            )
        results[name]["learned threshold sweep"] = sweep(reader(root), learned)
    return results


def score(samples: Iterator[tuple[str, np.ndarray, np.ndarray]], segmenter: Callable) -> dict[str, float]:
    total, n, started = PixelScores(0, 0, 0, 0), 0, time.perf_counter()
    for _, image, truth in samples:
        total = total + tolerant_pixel_scores(segmenter(image), truth, 2.0)
        n += 1
    seconds = time.perf_counter() - started
    return {**ratios(total), "images": n, "images_per_s": round(n / seconds, 1)}


def sweep(samples: Iterator[tuple[str, np.ndarray, np.ndarray]], learned: OnnxCrackSegmenter) -> dict:
    """Scores at each threshold of ``SWEEP`` (no component filter): the probability is computed once."""
    totals = {t: PixelScores(0, 0, 0, 0) for t in SWEEP}
    for _, image, truth in samples:
        p = learned.probability(image)
        for t in SWEEP:
            totals[t] = totals[t] + tolerant_pixel_scores(p >= t, truth, 2.0)
    return {str(t): ratios(s) for t, s in totals.items()}


def ratios(total: PixelScores) -> dict[str, float]:
    return {
        "precision": round(total.precision, 4),
        "recall": round(total.recall, 4),
        "f1": round(total.f1, 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--out", type=Path, default=REPO / "eval" / "results" / "crack_segmentation.json")
    args = parser.parse_args()
    cv2.setNumThreads(2)
    report = {
        "learned": {
            "model": args.model.name,
            "sha256": sha256_of(args.model),
            **vars(LearnedSegmenterConfig()),
        },
        "classical": {k: vars(c) for k, c in CONFIGS.items()},
        "tolerance_px": 2.0,
        "results": evaluate(args.data, args.model),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=list) + "\n")
    print(json.dumps(report["results"], indent=2))


if __name__ == "__main__":
    main()
