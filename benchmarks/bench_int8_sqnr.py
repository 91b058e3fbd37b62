"""qnnpack int8 (TorchScript, lite interpreter) against ExecuTorch int8 (XNNPACK) on SSDlite320
MobileNetV3: raw-output SQNR against the float model, both artifacts made from the same checkpoint,
calibrated on the same train2017 images and run in their own runtimes on the same val2017 images.

    python benchmarks/bench_int8_sqnr.py [--calib-images 16] [--val-images 8] [--latency]

No trained MobileNetV3 weights exist here: every checkpoint is random with realistic BatchNorm
statistics and data-aligned filters (ssdmobile.models.weights.realistic_random_, seed 0, 8
train2017 images, disjoint from the calibration images), so only agreement with float is
measured, never AP. --latency adds the lite interpreter fp32 vs int8 and ExecuTorch int8 core
latency, timed round-robin in one process (QNNPACK on x86 is not phone speed).
"""
import argparse
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conftest import COCO128  # noqa: E402

from ssdmobile.data import CocoDataset  # noqa: E402
from ssdmobile.models import create_model  # noqa: E402
from ssdmobile.models.weights import realistic_random_  # noqa: E402
from ssdmobile.quant.ptq import calibration_inputs, export_executorch_int8  # noqa: E402
from ssdmobile.quant.sensitivity import sqnr_db  # noqa: E402
from ssdmobile.runtime import load_runner  # noqa: E402
from ssdmobile.table import print_table  # noqa: E402

CONFIGS = {
    "large": ("ssdlite320_mobilenet_v3_large", {}),
    "small": ("ssdlite320_mobilenet_v3_small", {}),
    "large_w0.75": ("ssdlite320_mobilenet_v3_large", {"width_mult": 0.75}),
    "large_full_tail": ("ssdlite320_mobilenet_v3_large", {"reduced_tail": False}),
    "small_w0.75": ("ssdlite320_mobilenet_v3_small", {"width_mult": 0.75}),
}
BN_IMAGES = 8


def lite_path(pt: Path) -> Path:
    return pt.with_name(pt.stem + "_lite.ptl")


def measure_config(label, name, kwargs, args, out: Path):
    from ssdmobile.quant.eager import export_torchscript_int8

    det = create_model(name, None, **kwargs)
    train = calibration_inputs(det, str(COCO128), "train2017", BN_IMAGES + args.calib_images)
    realistic_random_(det, train[:BN_IMAGES], seed=0)
    calib = train[BN_IMAGES:]
    val = [det.preprocess([s.image]) for s in CocoDataset(COCO128, "val2017", max_images=args.val_images)]
    with torch.no_grad():
        ref = [det.core(x) for x in val]
    torch.backends.quantized.engine = "qnnpack"
    ts = lite_path(export_torchscript_int8(det, calib, out / label, progress=False))
    et = export_executorch_int8(det, calib, out / label, progress=False)
    row, runners = [label], {}
    for path in (ts, et):
        runner = runners[path] = load_runner(path, threads=2)
        got = [runner.run(x) for x in val]
        flat = lambda outs, i: [o[i] for o in outs]  # noqa: E731
        per_image = sorted(sqnr_db(r, g) for r, g in zip(ref, got))
        row += [f"{sqnr_db([t for r in ref for t in r], [t for g in got for t in g]):.1f}",
                f"{sqnr_db(flat(ref, 0), flat(got, 0)):.1f} / {sqnr_db(flat(ref, 1), flat(got, 1)):.1f}",
                f"{per_image[len(per_image) // 2]:.1f} ({per_image[0]:.1f})"]
    timing = None
    if args.latency:
        from ssdmobile.bench import measure_interleaved
        from ssdmobile.export import export

        fp32 = load_runner(lite_path(export(det, "torchscript", "fp32", out / label / "fp32")), threads=2)
        x = val[0]
        timing = measure_interleaved({"lite fp32": lambda: fp32.run(x), "lite int8 (qnnpack)": lambda: runners[ts].run(x),
                                      "ExecuTorch int8": lambda: runners[et].run(x)}, runs=args.runs, warmup=5, threads=2)
    return row, timing


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--configs", nargs="+", default=list(CONFIGS)[:4], choices=list(CONFIGS))
    ap.add_argument("--calib-images", type=int, default=16)
    ap.add_argument("--val-images", type=int, default=8)
    ap.add_argument("--latency", action="store_true")
    ap.add_argument("--runs", type=int, default=30)
    args = ap.parse_args()
    torch.set_num_threads(2)
    rows, timings = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for label in args.configs:
            name, kwargs = CONFIGS[label]
            row, timing = measure_config(label, name, kwargs, args, Path(tmp))
            rows.append(row)
            print(" | ".join(row), flush=True)
            if timing:
                timings[label] = timing
    print(f"\nraw-output SQNR (dB) against float, {args.val_images} val2017 images; calibration: "
          f"{args.calib_images} train2017 images (histogram observers); randomized checkpoints "
          f"(realistic_random_, seed 0): agreement only, no AP")
    print("(all images pooled; box / class outputs pooled; per image: median (worst))")
    print_table(["model", "qnnpack lite int8", "box / class", "per image", "ExecuTorch int8", "box / class",
                 "per image"], rows)
    if timings:
        print("\ncore latency, 1 image, 2 threads, median / p90 ms, round-robin in one process "
              "(shared machine; QNNPACK on x86 is not phone speed):")
        print_table(["model"] + list(next(iter(timings.values()))),
                    [[k] + [f"{t.median_ms:.1f} / {t.p90_ms:.1f}" for t in v.values()] for k, v in timings.items()])


if __name__ == "__main__":
    main()
