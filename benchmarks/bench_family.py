"""The SSD family in one table, from one run: for every registered model, parameters, MACs of one
300x300 / 320x320 forward, and latency of the eager float core, of the best fp32 artifact
(TorchScript, TorchScript lite, ONNX Runtime, ExecuTorch: the fastest of them, named) and of the
ExecuTorch int8 program, all timed round-robin in one process (ssdmobile.bench.measure_interleaved)
on one real val2017 image, batch 1. Then the SSD300-VGG16 / SSDlite320 ratio the seed quotes from
torchvision's docs (9.1x slower on CPU), measured here.

Weights: the real person detector for ssdlite_mobilenet_v2_person; every other model randomized
with BatchNorm statistics re-estimated on coco128 train2017 images (random_checkpoints.py; no
trained checkpoint is reachable offline). Latency and MACs do not depend on the weights (int8
calibration on 8 train2017 images, minmax).

    python benchmarks/bench_family.py [--runs 20] [--models ...] [--out runs/bench_family]
                                      [--markdown]
    # a try:
    python benchmarks/bench_family.py --runs 2 --warmup 1 --models ssdlite320_mobilenet_v3_small
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from ssdmobile.bench import machine_info, measure_interleaved
from ssdmobile.data import load_image
from ssdmobile.fuse import count_batchnorms
from ssdmobile.models import create_model, get_entry, list_models
from ssdmobile.quant.ptq import Calibration
from ssdmobile.table import print_table
from ssdmobile.targets.artifacts import load_runner
from ssdmobile.targets.pipeline import export

from _shared import COCO128, PERSON_GRAPH, first_val_image
from random_checkpoints import random_bn_detector

FP32_TARGETS = ("torchscript", "onnx", "executorch")
VGG, LITE = "ssd300_vgg16", "ssdlite320_mobilenet_v3_large"


def build(name: str, bn_images: int):
    if name == "ssdlite_mobilenet_v2_person":
        return create_model(name, weights=PERSON_GRAPH), "real (TF person detector)"
    det = random_bn_detector(name, bn_images)
    bn = (
        f"BatchNorm statistics from {bn_images} train2017 images"
        if count_batchnorms(det.core)
        else "no BatchNorm"
    )
    return det, f"randomized ({bn})"


def macs(det, x) -> int:
    """Multiply-accumulates of one core forward: torch's FlopCounterMode counts 2 FLOPs per MAC of
    every convolution and matrix product (element-wise ops are not counted)."""
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        det.forward_core(x)
    return counter.get_total_flops() // 2


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=[e.name for e in list_models()])
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--bn-images", type=int, default=16)
    p.add_argument("--calib-images", type=int, default=8)
    p.add_argument("--out", default="runs/bench_family")
    p.add_argument(
        "--markdown", action="store_true", help="print the table as Markdown (for the README)"
    )
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    image = load_image(first_val_image())
    calib = Calibration(str(COCO128), "train2017", args.calib_images, "minmax")

    rows, fns = {}, {}
    for name in args.models:
        det, weights = build(name, args.bn_images)
        x = det.preprocess([image])
        rows[name] = {
            "input": "x".join(map(str, get_entry(name).input_size)),
            "weights": weights,
            "params": sum(p.numel() for p in det.core.parameters()),
            "macs": macs(det, x),
            "artifacts": {},
        }
        fns[(name, "eager")] = lambda d=det, x=x: d.forward_core(x)
        for target in FP32_TARGETS:
            for art in export(det, target, "fp32", out / name, progress=False):
                label = f"{art.target}{'_lite' if art.path.suffix == '.ptl' else ''} fp32"
                runner = load_runner(art.path, threads=args.threads)
                fns[(name, label)] = lambda r=runner, x=x: r.run(x)
                rows[name]["artifacts"][label] = art.path.name
        (art,) = export(det, "executorch", "int8", out / name, calibration=calib, progress=False)
        runner = load_runner(art.path, threads=args.threads)
        fns[(name, "executorch int8")] = lambda r=runner, x=x: r.run(x)
        print(f"{name}: exported, {len(rows[name]['artifacts']) + 1} artifacts", flush=True)

    with torch.no_grad():
        timings = measure_interleaved(
            {f"{n} | {k}": fn for (n, k), fn in fns.items()}, args.runs, args.warmup, args.threads
        )
    table = []
    for name, row in rows.items():
        t = {k.split(" | ", 1)[1]: v for k, v in timings.items() if k.startswith(f"{name} | ")}
        row["latency_ms"] = {k: {"median": v.median_ms, "p90": v.p90_ms} for k, v in t.items()}
        best = min((k for k in t if k.endswith("fp32")), key=lambda k: t[k].median_ms)
        row["best_fp32"] = best
        table.append(
            [
                name,
                row["input"],
                f"{row['params'] / 1e6:.2f}M",
                f"{row['macs'] / 1e9:.2f}",
                f"{t['eager'].median_ms:.1f}",
                f"{best}: {t[best].median_ms:.1f}",
                f"{t['executorch int8'].median_ms:.1f}",
                f"{t['eager'].median_ms / t['executorch int8'].median_ms:.2f}x",
            ]
        )
    print_table(
        [
            "model",
            "input",
            "params",
            "GMACs",
            "eager fp32 ms",
            "best fp32 artifact ms",
            "ExecuTorch int8 ms",
            "int8 vs eager",
        ],
        table,
        markdown=args.markdown,
    )
    summary = {
        "models": rows,
        "runs": args.runs,
        "warmup": args.warmup,
        "threads": args.threads,
        "machine": machine_info(),
        "load_average": [round(v, 2) for v in os.getloadavg()],
    }
    if VGG in rows and LITE in rows:
        lat = lambda n, k: rows[n]["latency_ms"][k]["median"]  # noqa: E731
        ratios = {
            "macs": rows[VGG]["macs"] / rows[LITE]["macs"],
            "eager": lat(VGG, "eager") / lat(LITE, "eager"),
            "best fp32": lat(VGG, rows[VGG]["best_fp32"]) / lat(LITE, rows[LITE]["best_fp32"]),
            "executorch int8": lat(VGG, "executorch int8") / lat(LITE, "executorch int8"),
        }
        summary["vgg16_vs_ssdlite320"] = ratios
        print(
            f"\n{VGG} vs {LITE} (seed, from torchvision's docs: 9.1x slower on CPU): "
            + ", ".join(f"{k} {v:.1f}x" for k, v in ratios.items())
        )
    print(
        f"\n{args.runs} runs after {args.warmup} warm-up, {args.threads} threads, round-robin "
        "in one process; "
        f"load average {summary['load_average']}; {summary['machine']['cpu']}"
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_family.json").write_text(json.dumps(summary, indent=2))
    print(f"wrote {out / 'bench_family.json'}")


if __name__ == "__main__":
    main()
