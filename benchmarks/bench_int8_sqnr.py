"""qnnpack int8 (TorchScript, lite interpreter) against ExecuTorch int8 (XNNPACK) on SSDlite320
MobileNetV3: raw-output SQNR against the float model, and how many of float's detections each
int8 artifact finds again. Both artifacts are made from the same checkpoint, calibrated on the same
train2017 images, written by the target table's exporters and run in their own runtimes on the same
val2017 images.

    python benchmarks/bench_int8_sqnr.py [--configs large small] [--calib-images 16]
                                         [--val-images 8] [--latency]

No trained MobileNetV3 weights exist here: every MobileNetV3 checkpoint is random with realistic
BatchNorm statistics and data-aligned filters (random_checkpoints.realistic_random_, seed 0,
the first 8 train2017 images, disjoint from the calibration images that follow them), so only
agreement with float is measured, never AP. "person" is the real trained TF person detector, as a
reference for what trained weights give. --latency adds the lite interpreter fp32 vs int8 and
ExecuTorch int8 core latency, timed round-robin in one process (QNNPACK on x86 is not phone speed).
"""

import argparse
import sys
import tempfile
from pathlib import Path

import torch
from torchvision.ops import box_iou

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from ssdmobile.data import open_dataset
from ssdmobile.models import create_model
from ssdmobile.quant.eager import quantize_detector_eager
from ssdmobile.quant.ptq import calibration_inputs, quantize_detector_pt2e
from ssdmobile.quant.sensitivity import sqnr_db
from ssdmobile.table import print_table
from ssdmobile.targets.artifacts import load_predictor, load_runner
from ssdmobile.targets.pipeline import export, export_quantized

from conftest import COCO128, PERSON_GRAPH
from random_checkpoints import realistic_random_

CONFIGS = {
    "large": ("ssdlite320_mobilenet_v3_large", {}),
    "small": ("ssdlite320_mobilenet_v3_small", {}),
    "large_w0.75": ("ssdlite320_mobilenet_v3_large", {"width_mult": 0.75}),
    "large_full_tail": ("ssdlite320_mobilenet_v3_large", {"reduced_tail": False}),
    "small_w0.75": ("ssdlite320_mobilenet_v3_small", {"width_mult": 0.75}),
    "person": ("ssdlite_mobilenet_v2_person", {}),  # real trained weights
}
BN_IMAGES = 8


def model(label: str, calib_images: int):
    """(detector, calibration inputs): MobileNetV3 randomized on the first BN_IMAGES train2017
    images and calibrated on the next ones; the person detector with its real weights."""
    name, kwargs = CONFIGS[label]
    if label == "person":
        det = create_model(name, PERSON_GRAPH)
        return det, calibration_inputs(det, str(COCO128), "train2017", calib_images)
    det = create_model(name, None, **kwargs)
    train = calibration_inputs(det, str(COCO128), "train2017", BN_IMAGES + calib_images)
    realistic_random_(det, train[:BN_IMAGES], seed=0)
    return det, train[BN_IMAGES:]


def matched(float_dets, int8_dets, top: int = 10) -> float:
    """Share of float's `top` best detections per image that int8 finds again among its 100 best
    (same label, IoU > 0.5)."""
    hits = total = 0
    for f, q in zip(float_dets, int8_dets):
        if len(f["boxes"]) == 0:
            continue
        if len(q["boxes"]) == 0:
            total += min(top, len(f["boxes"]))
            continue
        iou = box_iou(f["boxes"][:top], q["boxes"][:100]) * (
            f["labels"][:top, None] == q["labels"][None, :100]
        )
        hits += int((iou.max(1).values > 0.5).sum())
        total += iou.shape[0]
    return hits / max(total, 1)


def measure_config(label: str, args, out: Path):
    det, calib = model(label, args.calib_images)
    images = [s.image for s in open_dataset(COCO128, "val2017", args.val_images)]
    val = [det.preprocess([im]) for im in images]
    with torch.no_grad():
        ref = [det.core(x) for x in val]
        ref_dets = det(images)
    qdet, record = quantize_detector_eager(det, calib, args.observer, progress=False)
    # the lite interpreter's .ptl
    ts = export_quantized(qdet, "torchscript", out / label, record)[-1].path
    qdet, record = quantize_detector_pt2e(det, calib, args.observer, progress=False)
    et = export_quantized(qdet, "executorch", out / label, record)[0].path
    row, runners = [label], {}
    for path in (ts, et):
        runner = runners[path] = load_runner(path, threads=2)
        got = [runner.run(x) for x in val]
        per_image = sorted(sqnr_db(r, g) for r, g in zip(ref, got))
        row += [
            f"{sqnr_db([t for r in ref for t in r], [t for g in got for t in g]):.1f}",
            "{:.1f} / {:.1f}".format(
                *(sqnr_db([r[i] for r in ref], [g[i] for g in got]) for i in (0, 1))
            ),
            f"{per_image[len(per_image) // 2]:.1f} ({per_image[0]:.1f})",
            f"{matched(ref_dets, load_predictor(path, threads=2)(images)):.2f}",
        ]
    timing = None
    if args.latency:
        from ssdmobile.bench import measure_interleaved

        fp32 = load_runner(
            export(det, "torchscript", "fp32", out / label / "fp32")[-1].path, threads=2
        )
        x = val[0]
        timing = measure_interleaved(
            {
                "lite fp32": lambda: fp32.run(x),
                "lite int8 (qnnpack)": lambda: runners[ts].run(x),
                "ExecuTorch int8": lambda: runners[et].run(x),
            },
            runs=args.runs,
            warmup=5,
            threads=2,
        )
    return row, timing


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--configs", nargs="+", default=["large", "small"], choices=list(CONFIGS))
    ap.add_argument("--calib-images", type=int, default=16)
    ap.add_argument("--val-images", type=int, default=8)
    ap.add_argument("--observer", default="histogram", choices=("histogram", "minmax"))
    ap.add_argument("--latency", action="store_true")
    ap.add_argument("--runs", type=int, default=30)
    args = ap.parse_args()
    torch.set_num_threads(2)
    rows, timings = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for label in args.configs:
            row, timing = measure_config(label, args, Path(tmp))
            rows.append(row)
            print(" | ".join(row), flush=True)
            if timing:
                timings[label] = timing
    print(
        f"\nraw-output SQNR (dB) against float, {args.val_images} val2017 images; calibration: "
        f"{args.calib_images} train2017 images ({args.observer} observers). MobileNetV3: "
        "randomized checkpoints "
        f"(realistic_random_, seed 0): agreement only, no AP; person: real trained weights"
    )
    print(
        "(all images pooled; box / class outputs pooled; per image: median (worst); matched: "
        "share of float's "
        "10 best detections per image found by int8, same label, IoU > 0.5)"
    )
    print_table(
        [
            "model",
            "qnnpack lite int8",
            "box / class",
            "per image",
            "matched",
            "ExecuTorch int8",
            "box / class",
            "per image",
            "matched",
        ],
        rows,
    )
    if timings:
        print(
            "\ncore latency, 1 image, 2 threads, median / p90 ms, round-robin in one process "
            "(shared machine; QNNPACK on x86 is not phone speed):"
        )
        print_table(
            ["model", *next(iter(timings.values()))],
            [
                [k] + [f"{t.median_ms:.1f} / {t.p90_ms:.1f}" for t in v.values()]
                for k, v in timings.items()
            ],
        )


if __name__ == "__main__":
    main()
