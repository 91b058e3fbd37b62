"""Latency of the float eager model and of every fp32 artifact, each in its own runtime, in one run:
batch 1, real image, warm-up then median and p90 (threads and machine printed). Candidates are
timed round-robin (ssdmobile.bench.measure_interleaved), so load from other processes hits all
alike and the speed-ups stay comparable.

    python benchmarks/bench_export.py [--model ssdlite_mobilenet_v2_person] [--threads 2] [--runs 50]

Artifacts are exported into a temporary directory (or --out). Core ML is listed as not runnable
off macOS.
"""
import argparse
import os
import platform
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conftest import VAL_IMAGES  # noqa: E402

from ssdmobile.bench import machine_info, measure_interleaved  # noqa: E402
from ssdmobile.data import load_image  # noqa: E402
from ssdmobile.export import TARGETS, export  # noqa: E402
from ssdmobile.export._common import artifact_stem  # noqa: E402
from ssdmobile.models import create_model  # noqa: E402
from ssdmobile.runtime import load_runner  # noqa: E402
from ssdmobile.table import print_table  # noqa: E402

ARTIFACTS = [("torchscript", False), ("torchscript_lite", False), ("onnx", False), ("executorch", False),
             ("torchscript", True), ("onnx", True), ("executorch", True)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="ssdlite_mobilenet_v2_person")
    ap.add_argument("--weights", default="default")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--image", default=str(sorted(VAL_IMAGES.glob("*.jpg"))[0]))
    ap.add_argument("--out", help="artifact directory (default: a temporary one)")
    ap.add_argument("--reuse", action="store_true", help="run artifacts already in --out instead of exporting")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    detector = create_model(args.model, weights=args.weights)
    img = load_image(args.image)
    x = detector.preprocess([img])
    size = [tuple(img.shape[-2:])]
    out = Path(args.out or tempfile.mkdtemp(prefix="bench_export_"))
    fns = {"eager float core": lambda: detector.forward_core(x),
           "eager float core + decode + NMS": lambda: detector.nms(*detector.decode(*detector.forward_core(x)), size)}
    exported, names = {}, {}
    for target, nms in ARTIFACTS:
        base = "torchscript" if target == "torchscript_lite" else target
        existing = out / f"{artifact_stem(detector.spec.name, base, 'fp32', nms)}{TARGETS[base].SUFFIX}"
        if args.reuse and existing.exists():
            exported[(base, nms)] = existing
        if (base, nms) not in exported:
            print(f"exporting {base}{' +nms' if nms else ''} ...", file=sys.stderr, flush=True)
            exported[(base, nms)] = export(detector, base, "fp32", out, nms=nms)
        path = exported[(base, nms)]
        if target == "torchscript_lite":
            path = path.with_name(path.stem + "_lite.ptl")
        runner = load_runner(path, threads=args.threads)
        label = f"{target}{' +nms' if nms else ''} fp32"
        fns[label] = lambda r=runner: r.run(x)
        names[label] = (path.name, nms)
    print("timing ...", file=sys.stderr, flush=True)
    with torch.no_grad():
        t = measure_interleaved(fns, args.runs, args.warmup, args.threads)
    eager, eager_nms = t["eager float core"], t["eager float core + decode + NMS"]
    rows = [[k, "-", f"{t[k].median_ms:.2f}", f"{t[k].p90_ms:.2f}", "1.00x"] for k in list(fns)[:2]]
    for label, (name, nms) in names.items():
        ref = eager_nms if nms else eager
        rows.append([label, name, f"{t[label].median_ms:.2f}", f"{t[label].p90_ms:.2f}",
                     f"{ref.median_ms / t[label].median_ms:.2f}x"])
    rows.append(["coreml fp16", "-", "-", "-", "not run: Core ML predicts on macOS only"])
    m = machine_info()
    print(f"{args.model}, batch 1, {args.threads} threads, {args.runs} runs after {args.warmup} warm-up; "
          f"{m['cpu']} ({m['cores']} cores visible), load average {os.getloadavg()[0]:.1f}, "
          f"{platform.system()}, torch {m['torch']}")
    print_table(["artifact", "file", "median ms", "p90 ms", "speed-up vs eager"], rows, markdown=True)


if __name__ == "__main__":
    main()
