"""F1 of the damage detector on the validation split (CRDDC 2022 definition), with P/R and AP50.

A prediction is a true positive when it has the ground truth's class and IoU >= 0.5 with a
ground-truth box not matched yet; predictions are matched greedily in descending score order
(per image and class). Overall F1 is the micro F1 over D00, D10, D20 and D40 (TP, FP, FN summed,
as in CRDDC 2022); Repair is reported on its own. The confidence threshold is the one with the
best overall F1 on the validation split; since that flatters the figure, the script also reports a
two-fold check: threshold picked on one half of the validation blocks, F1 measured on the other.

    python eval/detector_f1.py --model models/damage_yolo.onnx --report work/detector/train_report.json

writes ``eval/results/detector_f1.json`` and ``eval/results/detector_f1.md``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from pavement.boxes import box_iou
from pavement.detections import DAMAGE_CLASSES, DamageClass
from pipelines.detect import DetectorConfig, load_detector, read_image
from pipelines.train_detector import file_number, split_blocks, voc_to_yolo_lines

CRDDC_CLASSES = (DamageClass.D00, DamageClass.D10, DamageClass.D20, DamageClass.D40)
IOU_MIN = 0.5
THRESHOLDS = np.round(np.arange(0.05, 0.96, 0.01), 2)


def ground_truth(xml_path: Path, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, 4) xyxy pixels and (n,) class ids of one VOC file (same filtering as training)."""
    lines, _ = voc_to_yolo_lines(xml_path)
    if not lines:
        return np.zeros((0, 4)), np.zeros(0, dtype=np.int64)
    rows = np.array([[float(v) for v in line.split()] for line in lines])
    cx, cy, w, h = rows[:, 1] * width, rows[:, 2] * height, rows[:, 3] * width, rows[:, 4] * height
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1), rows[:, 0].astype(np.int64)


def match_image(pred_xyxy, pred_cls, pred_conf, gt_xyxy, gt_cls) -> np.ndarray:
    """Boolean (n_pred,): true positive or not, greedy by descending score, same class, IoU >= 0.5."""
    tp = np.zeros(len(pred_cls), dtype=bool)
    for c in np.unique(pred_cls):
        p_idx = np.flatnonzero(pred_cls == c)
        g_idx = np.flatnonzero(gt_cls == c)
        if not len(g_idx):
            continue
        iou = box_iou(pred_xyxy[p_idx], gt_xyxy[g_idx])
        taken = np.zeros(len(g_idx), dtype=bool)
        for row in np.argsort(-pred_conf[p_idx], kind="stable"):
            candidates = np.where(taken, -1.0, iou[row])
            best = int(candidates.argmax())
            if candidates[best] >= IOU_MIN:
                taken[best] = True
                tp[p_idx[row]] = True
    return tp


def counts_at(images: list[dict], threshold: float | np.ndarray) -> dict[int, tuple[int, int, int]]:
    """Per class id: (TP, FP, FN) keeping predictions with score >= threshold (one, or one per class)."""
    out = {c: [0, 0, 0] for c in range(len(DAMAGE_CLASSES))}
    per_class = np.broadcast_to(np.asarray(threshold, dtype=float), (len(DAMAGE_CLASSES),))
    for im in images:
        keep = im["conf"] >= per_class[im["cls"]]
        tp = match_image(im["xyxy"][keep], im["cls"][keep], im["conf"][keep], im["gt_xyxy"], im["gt_cls"])
        for c in out:
            n_tp = int((tp & (im["cls"][keep] == c)).sum())
            out[c][0] += n_tp
            out[c][1] += int((im["cls"][keep] == c).sum()) - n_tp
            out[c][2] += int((im["gt_cls"] == c).sum()) - n_tp
    return {c: tuple(v) for c, v in out.items()}


def prf(tp: int, fp: int, fn: int) -> dict[str, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return {"f1": round(f1, 4), "precision": round(p, 4), "recall": round(r, 4), "tp": tp, "fp": fp, "fn": fn}


def overall(counts: dict[int, tuple[int, int, int]]) -> dict[str, float]:
    ids = [DAMAGE_CLASSES.index(c) for c in CRDDC_CLASSES]
    return prf(*(sum(counts[i][k] for i in ids) for k in range(3)))


def average_precision(images: list[dict], class_id: int) -> float:
    """AP at IoU 0.5 (all-point interpolation, VOC 2010+), from every prediction of the class."""
    scores, tps, n_gt = [], [], 0
    for im in images:
        n_gt += int((im["gt_cls"] == class_id).sum())
        sel = im["cls"] == class_id
        tp = match_image(im["xyxy"][sel], im["cls"][sel], im["conf"][sel], im["gt_xyxy"], im["gt_cls"])
        scores.extend(im["conf"][sel].tolist())
        tps.extend(tp.tolist())
    if not n_gt:
        return float("nan")
    order = np.argsort(-np.asarray(scores), kind="stable")
    tp = np.asarray(tps, dtype=float)[order]
    recall = np.concatenate([[0.0], np.cumsum(tp) / n_gt, [1.0]])
    precision = np.concatenate([[1.0], np.cumsum(tp) / np.arange(1, len(tp) + 1), [0.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    return float(np.sum((recall[1:] - recall[:-1]) * precision[1:]))


def best_threshold(images: list[dict]) -> float:
    """The one threshold with the best overall (D00-D40) F1."""
    f1s = [overall(counts_at(images, t))["f1"] for t in THRESHOLDS]
    return float(THRESHOLDS[int(np.argmax(f1s))])


def best_class_thresholds(images: list[dict]) -> np.ndarray:
    """One threshold per class, each the best for that class's own F1."""
    table = [counts_at(images, t) for t in THRESHOLDS]
    return np.array(
        [
            THRESHOLDS[int(np.argmax([prf(*row[c])["f1"] for row in table]))]
            for c in range(len(DAMAGE_CLASSES))
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=Path("models/damage_yolo.onnx"))
    parser.add_argument("--data", type=Path, default=Path("../shared/data/rdd2022_china_motorbike"))
    parser.add_argument("--report", type=Path, required=True, help="train_report.json of the run (split)")
    parser.add_argument("--out", type=Path, default=Path("eval/results/detector_f1.json"))
    parser.add_argument("--iou", type=float, default=DetectorConfig().iou, help="NMS IoU of the detector")
    parser.add_argument("--engine", default="onnxruntime", choices=["onnxruntime", "openvino"])
    parser.add_argument("--agnostic", action="store_true", help="NMS across classes")
    args = parser.parse_args()

    report = json.loads(args.report.read_text())
    cfg = report["config"]
    image_dir, xml_dir = args.data / "images", args.data / "annotations" / "xmls"
    names = sorted(p.name for p in image_dir.iterdir() if (xml_dir / f"{p.stem}.xml").exists())
    if cfg.get("max_images"):
        names = names[: cfg["max_images"]]
    val_blocks, _ = split_blocks(names, cfg["block_size"], cfg["val_fraction"], cfg["seed"])
    if sorted(val_blocks) != report["split"]["val_blocks"]:
        raise SystemExit("validation blocks differ from the training report; check --data and --report")
    val_names = [n for n in names if file_number(n) // cfg["block_size"] in val_blocks]

    detector = load_detector(
        args.model,
        DetectorConfig(conf=0.01, iou=args.iou, max_det=100, engine=args.engine, agnostic_nms=args.agnostic),
    )
    images, started = [], time.time()
    for name in val_names:
        image = read_image(image_dir / name)
        dets = detector(image)
        gt_xyxy, gt_cls = ground_truth(xml_dir / f"{Path(name).stem}.xml", image.shape[1], image.shape[0])
        images.append(
            {
                "name": name,
                "block": file_number(name) // cfg["block_size"],
                "xyxy": dets.xyxy,
                "cls": dets.class_id,
                "conf": dets.confidence,
                "gt_xyxy": gt_xyxy,
                "gt_cls": gt_cls,
            }
        )
    infer_s = time.time() - started

    threshold = best_threshold(images)
    counts = counts_at(images, threshold)
    per_class = {DAMAGE_CLASSES[c].value: prf(*counts[c]) for c in counts}
    ap50 = {
        DAMAGE_CLASSES[c].value: round(average_precision(images, c), 4) for c in range(len(DAMAGE_CLASSES))
    }
    crddc_ids = [DAMAGE_CLASSES.index(c) for c in CRDDC_CLASSES]
    codes = [c.value for c in DAMAGE_CLASSES]

    # Two-fold check of the threshold choice: blocks split into halves by rank.
    blocks = sorted({im["block"] for im in images})
    halves = [{b for i, b in enumerate(blocks) if i % 2 == k} for k in (0, 1)]
    folds = []
    for k in (0, 1):
        pick = [im for im in images if im["block"] in halves[k]]
        test = [im for im in images if im["block"] in halves[1 - k]]
        t, tc = best_threshold(pick), best_class_thresholds(pick)
        folds.append(
            {
                "picked_on_half": k,
                "threshold": t,
                "f1_other_half": overall(counts_at(test, t)),
                "class_thresholds": dict(zip(codes, tc.tolist(), strict=True)),
                "f1_other_half_class_thresholds": overall(counts_at(test, tc)),
            }
        )
    class_t = best_class_thresholds(images)

    result = {
        "definition": "F1 at IoU >= 0.5, same class, greedy by score (CRDDC 2022); overall = micro over "
        "D00/D10/D20/D40; Repair separate",
        "model": args.model.name,
        "model_sha256": report.get("onnx", {}).get("sha256"),
        "split": {
            "val_images": len(images),
            "val_blocks": sorted(val_blocks),
            "gt_boxes": {
                DAMAGE_CLASSES[c].value: sum(int((im["gt_cls"] == c).sum()) for im in images)
                for c in range(len(DAMAGE_CLASSES))
            },
        },
        "conf_threshold": threshold,
        "overall_D00_D40": overall(counts),
        "per_class": per_class,
        "ap50": ap50,
        "map50_D00_D40": round(float(np.nanmean([ap50[DAMAGE_CLASSES[i].value] for i in crddc_ids])), 4),
        "map50_all5": round(float(np.nanmean(list(ap50.values()))), 4),
        "f1_by_threshold": {f"{t:.2f}": overall(counts_at(images, t))["f1"] for t in THRESHOLDS[::5]},
        "class_thresholds": dict(zip(codes, class_t.tolist(), strict=True)),
        "overall_D00_D40_class_thresholds": overall(counts_at(images, class_t)),
        "twofold_threshold_check": folds,
        "inference": {
            "input_size_px": detector.input_size,
            "nms_iou": args.iou,
            "agnostic_nms": args.agnostic,
            "engine": args.engine,
            "threads": detector.config.threads,
            "images_per_s_incl_decode": round(len(images) / infer_s, 2),
        },
        "command": f"python eval/detector_f1.py --model {args.model} --report {args.report} "
        f"--data {args.data} --iou {args.iou} --engine {args.engine} --out {args.out}"
        + (" --agnostic" if args.agnostic else ""),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    rows = "\n".join(
        f"| {c} | {v['f1']:.3f} | {v['precision']:.3f} | {v['recall']:.3f} "
        f"| {v['tp']} | {v['fp']} | {v['fn']} "
        f"| {ap50[c]:.3f} |"
        for c, v in per_class.items()
    )
    o = result["overall_D00_D40"]
    md = (
        f"# Damage detector on the validation split\n\n{result['definition']}.\n\n"
        f"Model `{args.model.name}`, {len(images)} validation images ({len(val_blocks)} blocks of "
        f"{cfg['block_size']}), confidence threshold **{threshold:.2f}** (best overall F1 on this split).\n\n"
        f"| class | F1 | P | R | TP | FP | FN | AP50 |\n|---|---|---|---|---|---|---|---|\n{rows}\n"
        f"| **D00-D40** | **{o['f1']:.3f}** | {o['precision']:.3f} | {o['recall']:.3f} "
        f"| {o['tp']} | {o['fp']} "
        f"| {o['fn']} | {result['map50_D00_D40']:.3f} (mAP) |\n\n"
        "Two-fold threshold check (pick on one half of the blocks, measure on the other): "
        + ", ".join(f"t={f['threshold']:.2f} -> F1 {f['f1_other_half']['f1']:.3f}" for f in folds)
        + "; with per-class thresholds picked the same way: "
        + ", ".join(f"F1 {f['f1_other_half_class_thresholds']['f1']:.3f}" for f in folds)
        + ".\n\nPer-class thresholds (each class's best F1 on the whole split): "
        + f"{result['class_thresholds']} "
        f"-> overall F1 {result['overall_D00_D40_class_thresholds']['f1']:.3f}.\n\n"
        f"Reproduce: `{result['command']}`\n"
    )
    args.out.with_suffix(".md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
