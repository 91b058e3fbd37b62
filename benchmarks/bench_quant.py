"""int8 vs float for the person detector: latency of the core (1 image, 2 threads, median / p90,
one artifact at a time: interleaving them in one process lets onnxruntime's spinning worker threads
starve the next runtime's), float eager measured first and last (the better median is shown), file
size, and optionally AP on val2017 (--eval), every artifact in its own runtime.

    python benchmarks/bench_quant.py --int8 artifacts/*_int8*.pte artifacts/*_int8*.onnx
                                            artifacts/*_int8.pt [--eval]

Artifacts of one runtime compare best timed round-robin in one run (a burst of load then hits all
alike): `--fp32 executorch --interleaved` with only .pte files (never with ONNX Runtime, whose
spinning threads slow whatever runs next).

int8 artifacts come from `ssdmobile quantize` / `ssdmobile train` (slow to make, so given here);
the fp32 ExecuTorch, ONNX and TorchScript artifacts are exported fresh into a temporary directory.
"""

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from ssdmobile.bench import machine_info, measure_interleaved
from ssdmobile.data import CocoDataset
from ssdmobile.evaluate import evaluate_model
from ssdmobile.fileio import size_bytes
from ssdmobile.models import create_model
from ssdmobile.table import print_table
from ssdmobile.targets.artifacts import evaluate_artifact, load_runner
from ssdmobile.targets.pipeline import export

from _shared import COCO128


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--int8", nargs="*", default=[], help="int8 artifacts to measure")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--eval", action="store_true", help="also AP on all val2017 images (slow)")
    ap.add_argument(
        "--fp32",
        nargs="*",
        default=["executorch", "onnx", "torchscript"],
        help="targets exported fresh in fp32 to compare with",
    )
    ap.add_argument(
        "--interleaved",
        action="store_true",
        help="time everything round-robin in one loop (same runtime only; see above)",
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    det = create_model("ssdlite_mobilenet_v2_person", weights="default")
    ds = CocoDataset(COCO128, "val2017")
    x = det.preprocess([ds[0].image])
    tmp = Path(tempfile.mkdtemp(prefix="bench_quant_"))
    fp32 = [export(det, t, "fp32", tmp)[0].path for t in args.fp32]
    paths = fp32 + [Path(p) for p in args.int8]
    runners = {p: load_runner(p, threads=args.threads) for p in paths}
    fns = {"float eager": lambda: det.core(x)}
    fns.update({p.name: (lambda r=r: r.run(x)) for p, r in runners.items()})
    times = {}

    def block(fn):
        torch.set_num_threads(args.threads)
        for _ in range(5):
            fn()
        t = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            fn()
            t.append((time.perf_counter() - t0) * 1e3)
        return t

    with torch.inference_mode():
        if args.interleaved:
            stats = {
                k: (v.median_ms, v.p90_ms)
                for k, v in measure_interleaved(fns, args.runs, 5, args.threads).items()
            }
        else:
            for k, fn in fns.items():
                time.sleep(1.0)  # let the previous runtime's worker threads go idle
                times[k] = block(fn)
            time.sleep(1.0)
            again = block(fns["float eager"])
            if statistics.median(again) < statistics.median(times["float eager"]):
                times["float eager"] = again
            stats = {
                k: (statistics.median(t), sorted(t)[int(round(0.9 * (len(t) - 1)))])
                for k, t in times.items()
            }
    aps = {}
    if args.eval:
        aps["float eager"] = evaluate_model(det, ds, ["person"], progress=False).ap
        for p in paths:
            aps[p.name] = evaluate_artifact(
                p, ds, ["person"], threads=args.threads, progress=False
            ).ap
    base = stats["float eager"][0]
    sizes = {p.name: size_bytes(p) / 1e6 for p in paths}
    rows = []
    for k, (med, p90) in stats.items():
        ap_s = f"{aps[k]:.4f}" if k in aps else "-"
        dap = f"{aps[k] - aps['float eager']:+.4f}" if k in aps and k != "float eager" else "-"
        rows.append(
            [
                k,
                f"{sizes[k]:.2f}" if k in sizes else "-",
                ap_s,
                dap,
                f"{med:.1f}",
                f"{p90:.1f}",
                f"{base / med:.2f}x",
            ]
        )
    print(
        f"ssdlite_mobilenet_v2_person core, 1 image, {args.threads} threads, median / p90 of "
        f"{args.runs} runs{' timed round-robin' if args.interleaved else ''}; AP on {len(ds)} "
        f"val2017 images (person) where measured; {machine_info()['cpu']}, load "
        f"average {os.getloadavg()[0]:.1f}"
    )
    print_table(
        ["artifact", "MB", "AP", "dAP", "median ms", "p90 ms", "vs float eager"],
        rows,
        markdown=True,
    )


if __name__ == "__main__":
    main()
