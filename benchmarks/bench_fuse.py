"""Eager float latency of each detector's core before and after BatchNorm folding (ssdmobile.fuse),
and the largest change it makes to the outputs on real val2017 images.

Runs are interleaved (unfused, fused, unfused, ...) so that load from other processes on a shared
machine hits both sides alike.

    python benchmarks/bench_fuse.py [--threads 2] [--runs 30]
"""

import argparse
import statistics
import time

import torch

from ssdmobile.bench import machine_info
from ssdmobile.data import CocoDataset
from ssdmobile.fuse import fuse_detector
from ssdmobile.models import create_model
from ssdmobile.table import print_table

from _shared import COCO128


def interleaved(fns, runs, warmup=3):
    for fn in fns:
        for _ in range(warmup):
            fn()
    times = [[] for _ in fns]
    for _ in range(runs):
        for t, fn in zip(times, fns):
            t0 = time.perf_counter()
            fn()
            t.append((time.perf_counter() - t0) * 1e3)
    return [(statistics.median(t), sorted(t)[int(round(0.9 * (len(t) - 1)))]) for t in times]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--images", type=int, default=8)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    images = [s.image for s in CocoDataset(COCO128, "val2017", max_images=args.images)]
    rows = []
    for name, weights in (
        ("ssdlite_mobilenet_v2_person", "default"),
        ("ssdlite320_mobilenet_v3_large", None),
    ):
        det = create_model(name, weights)
        fused, report = fuse_detector(det)
        x = det.preprocess(images)
        with torch.inference_mode():
            diff = max((a - b).abs().max().item() for a, b in zip(det.core(x), fused.core(x)))
            x1 = x[:1]
            # both lambdas run inside this iteration, on this iteration's models
            (u, up90), (f, fp90) = interleaved(
                [lambda: det.core(x1), lambda: fused.core(x1)],  # noqa: B023
                args.runs,
            )
        rows.append(
            [
                name + ("" if weights else " (random weights)"),
                len(report.fused),
                f"{diff:.1e}",
                f"{u:.1f} / {up90:.1f}",
                f"{f:.1f} / {fp90:.1f}",
                f"{u / f:.2f}x",
            ]
        )
    print(
        f"BatchNorm folding, float eager core, 1 image, {args.threads} threads, median / p90 "
        f"of {args.runs} "
        f"interleaved runs; max abs output change on {args.images} val2017 images; "
        f"{machine_info()['cpu']}"
    )
    print_table(
        ["model", "pairs folded", "max abs diff", "unfused ms", "fused ms", "speed-up"],
        rows,
        markdown=True,
    )


if __name__ == "__main__":
    main()
