"""Latency of the float eager model and of every fp32 artifact, each in its own runtime, in one run:
batch 1, real image, warm-up then median and p90 (threads and machine printed). Candidates are
timed round-robin (ssdmobile.bench.measure_interleaved), so load from other processes hits all
alike and the speed-ups stay comparable.

    python benchmarks/bench_export.py [--model ssdlite_mobilenet_v2_person] [--threads 2]
                                      [--runs 50]

Artifacts are exported into a temporary directory (or --out). Core ML is listed as not runnable
off macOS.
"""

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

import torch

from ssdmobile.bench import machine_info, measure_interleaved
from ssdmobile.data import load_image
from ssdmobile.models import create_model
from ssdmobile.table import print_table
from ssdmobile.targets import TARGETS
from ssdmobile.targets.artifacts import load_runner
from ssdmobile.targets.pipeline import export

from _shared import VAL_IMAGES


def _exported(out: Path, model: str, target: str, nms: bool) -> list[Path]:
    """fp32 artifacts of this model and target already in `out`, found by their sidecars."""
    found = []
    for sidecar in out.glob("*.json"):
        sc = json.loads(sidecar.read_text())
        if (
            sc.get("model"),
            sc.get("target"),
            sc.get("precision"),
            sc.get("nms", {}).get("in_graph"),
        ) == (model, target, "fp32", nms) and (out / sc["artifact"]).exists():
            found.append(out / sc["artifact"])
    return found


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="ssdlite_mobilenet_v2_person")
    ap.add_argument("--weights", default="default")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--image", default=str(sorted(VAL_IMAGES.glob("*.jpg"))[0]))
    ap.add_argument("--out", help="artifact directory (default: a temporary one)")
    ap.add_argument(
        "--reuse", action="store_true", help="run artifacts already in --out instead of exporting"
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    detector = create_model(args.model, weights=args.weights)
    img = load_image(args.image)
    x = detector.preprocess([img])
    size = [tuple(img.shape[-2:])]
    out = Path(args.out or tempfile.mkdtemp(prefix="bench_export_"))
    fns = {
        "eager float core": lambda: detector.forward_core(x),
        "eager float core + decode + NMS": lambda: detector.nms(
            *detector.decode(*detector.forward_core(x)), size
        ),
    }
    names = {}
    for nms in (False, True):
        for target in (t for t in TARGETS.values() if t.runs_here()):
            paths = _exported(out, detector.spec.name, target.name, nms) if args.reuse else []
            if not paths:
                print(
                    f"exporting {target.name}{' +nms' if nms else ''} ...",
                    file=sys.stderr,
                    flush=True,
                )
                paths = [a.path for a in export(detector, target.name, "fp32", out, nms=nms)]
            for path in sorted(paths):
                runner = load_runner(path, threads=args.threads)
                lite = {".ptl": "_lite", ".ort": "_ort"}.get(path.suffix, "")
                label = f"{target.name}{lite}{' +nms' if nms else ''} fp32"
                fns[label] = lambda r=runner: r.run(x)
                names[label] = (path.name, nms)
    print("timing ...", file=sys.stderr, flush=True)
    with torch.no_grad():
        t = measure_interleaved(fns, args.runs, args.warmup, args.threads)
    eager, eager_nms = t["eager float core"], t["eager float core + decode + NMS"]
    rows = [[k, "-", f"{t[k].median_ms:.2f}", f"{t[k].p90_ms:.2f}", "1.00x"] for k in list(fns)[:2]]
    for label, (name, nms) in names.items():
        ref = eager_nms if nms else eager
        rows.append(
            [
                label,
                name,
                f"{t[label].median_ms:.2f}",
                f"{t[label].p90_ms:.2f}",
                f"{ref.median_ms / t[label].median_ms:.2f}x",
            ]
        )
    for target in (t for t in TARGETS.values() if not t.runs_here()):
        rows.append(
            [
                f"{target.name} {target.default_precision}",
                "-",
                "-",
                "-",
                f"not run: {target.name} does not run on this machine",
            ]
        )
    m = machine_info()
    print(
        f"{args.model}, batch 1, {args.threads} threads, {args.runs} runs after {args.warmup} "
        f"warm-up; {m['cpu']} ({m['cores']} cores visible), load average {os.getloadavg()[0]:.1f}, "
        f"{platform.system()}, torch {m['torch']}"
    )
    print_table(
        ["artifact", "file", "median ms", "p90 ms", "speed-up vs eager"], rows, markdown=True
    )


if __name__ == "__main__":
    main()
