"""Damage detector speed on this machine: images/s at the shipped input size.

Times the whole ``Detector`` call (letterbox, inference, decoding, NMS) with ONNX Runtime and,
when it is installed, OpenVINO, on real 512 x 512 RDD images and on 1920 x 1080 frames (the
phone's video size, letterboxed to the same input), after warm-up, for batch sizes 1 and 4, with
the session's threads (2 on the 2-core machines). Image decoding is excluded (the video pipeline
decodes frames itself). Shared machines are noisy: the script reports the median of several
rounds and the load average when it started.

    python bench/detector_speed.py  # writes bench/results/detector_speed.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import time
from importlib.metadata import version
from pathlib import Path

import cv2
import numpy as np

from pipelines.detect import DEFAULT_MODEL, DetectorConfig, load_detector


def images_per_s(detector, images: list[np.ndarray], rounds: int) -> list[float]:
    detector.detect_batch(images[: detector.config.batch_size])  # warm-up
    rates = []
    for _ in range(rounds):
        started = time.perf_counter()
        detector.detect_batch(images)
        rates.append(len(images) / (time.perf_counter() - started))
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/rdd2022_china_motorbike/images"))
    parser.add_argument("--n-images", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("bench/results/detector_speed.json"))
    args = parser.parse_args()

    load_at_start = os.getloadavg()[0]
    files = sorted(args.data.glob("*.jpg"))[: args.n_images]
    rdd = [cv2.imread(str(f)) for f in files]
    frames = [cv2.resize(im, (1920, 1080)) for im in rdd]
    engines = ["onnxruntime"] + (["openvino"] if importlib.util.find_spec("openvino") else [])
    results = []
    for engine in engines:
        for batch in (1, 4):
            detector = load_detector(args.model, DetectorConfig(batch_size=batch, engine=engine))
            for label, images in (("rdd_512x512", rdd), ("frame_1920x1080", frames)):
                rates = images_per_s(detector, images, args.rounds)
                results.append(
                    {
                        "engine": engine,
                        "images": label,
                        "batch": batch,
                        "threads": detector.config.threads,
                        "input_size_px": detector.input_size,
                        "images_per_s_median": round(statistics.median(rates), 1),
                        "images_per_s_rounds": [round(r, 1) for r in rates],
                    }
                )
                print(results[-1])
    out = {
        "engines": {e: version(e) for e in engines},
        "openvino_precision": "its CPU default: bf16 where the CPU has AVX-512 BF16/AMX (this one), else f32",
        "model": args.model.name,
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_1min_at_start": round(load_at_start, 2),
        "note": "the machine is shared with other jobs; the load average says how busy it was",
        "results": results,
        "command": f"python bench/detector_speed.py --model {args.model} --out {args.out}",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
