"""Every target x precision x NMS mode for the person detector (1 class, 100 detections, real
weights) and SSDlite320 MobileNetV3-Large (90 classes, 3234 anchors, 300 detections), in one run:
core latency, the in-graph NMS's cost over its own core (same target, same precision), end-to-end
latency, file size and raw-output SQNR against the float eager core on real val2017 images.

    python benchmarks/bench_coco_scale.py [--mbv3-weights CKPT] [--runs 30] [--images 8]

Timed on one image: of the --images val2017 images, the one with the median number of candidates
above the score threshold (a typical image for NMS, printed), batch 1.

No trained MobileNetV3 weights are reachable offline: without --mbv3-weights its checkpoint is
randomized with realistic BatchNorm statistics (random_checkpoints.realistic_random_ on train2017
images), then its last classification convs set so background dominates as in a trained model
(bench_nms.trained_like_ fitted on the same train2017 images to the real person detector's share
of anchors above each score threshold; the share on the val2017 images is printed), so its rows
measure latency and agreement with float, never accuracy.

Timing: batch 1, --threads threads, every artifact of one model timed round-robin in one loop
(measure_interleaved) so a burst of load on a shared machine hits all alike; quote the ratios.
"end-to-end" of a core-only artifact is its core plus the host's eager decode + NMS on that model's
real outputs (median, timed in the same loop); of a +nms artifact, the artifact alone.
QNNPACK on x86 (TorchScript int8) is not its speed on a phone's ARM cores.
"""

import argparse
import os
import tempfile
from pathlib import Path

import torch

from ssdmobile.bench import machine_info, measure_interleaved
from ssdmobile.data import open_dataset
from ssdmobile.fileio import size_bytes
from ssdmobile.models import create_model
from ssdmobile.quant.ptq import Calibration
from ssdmobile.quant.sensitivity import sqnr_db
from ssdmobile.table import print_table
from ssdmobile.targets.artifacts import load_runner
from ssdmobile.targets.pipeline import export

from _shared import COCO128, PERSON_GRAPH
from bench_nms import trained_like_
from random_checkpoints import realistic_random_

TARGETS = ("executorch", "onnx", "torchscript")


def build(name: str, weights, seed_images) -> tuple:
    if name == "ssdlite_mobilenet_v2_person":
        return create_model(name, weights=str(PERSON_GRAPH)).eval(), "trained (TF person detector)"
    if weights:
        return create_model(name, weights=weights).eval(), f"checkpoint {Path(weights).name}"
    det = create_model(name, weights=None).eval()
    seeds = [det.preprocess([img]) for img in seed_images]
    realistic_random_(det, seeds, seed=0)
    trained_like_(det.eval(), images=seeds)
    return (
        det.eval(),
        "randomized, realistic BatchNorm statistics, trained-like scores (no trained weights here)",
    )


@torch.inference_mode()
def bench_model(name: str, args, out: Path) -> list[list[str]]:
    val = open_dataset(COCO128, "val2017", args.images)
    # int8 calibration opens its own (Calibration below)
    seeds = open_dataset(COCO128, "train2017", 8)
    det, where = build(
        name,
        args.mbv3_weights if name != "ssdlite_mobilenet_v2_person" else None,
        [s.image for s in seeds],
    )
    print(f"{name}: weights {where}", flush=True)
    inputs = [det.preprocess([s.image]) for s in val]
    sizes = [tuple(s.image.shape[-2:]) for s in val]
    float_raw = [det.core(x) for x in inputs]
    thresh = det.spec.postprocess.score_thresh
    # [anchors, classes] scores, background dropped
    fg = [det.decode(*raw)[1][0, :, 1:] for raw in float_raw]
    share = sum(float((f.amax(1) > thresh).float().mean()) for f in fg) / len(inputs)
    cands = [int((f > thresh).sum()) for f in fg]
    # a typical image, not the first
    timed = sorted(range(len(inputs)), key=lambda i: cands[i])[len(inputs) // 2]
    print(
        f"{name}: {share:.1%} of anchors have a class score above {thresh} (mean of "
        f"{len(inputs)} val2017 images); "
        f"candidates (anchor, class) above it per image: {cands}; timed: image {timed} "
        f"({cands[timed]} candidates)",
        flush=True,
    )
    calib = Calibration(str(COCO128), "train2017", args.calib_images, "histogram")

    runners = {}
    for target in TARGETS:
        for precision in ("fp32", "int8"):
            for nms in (False, True):
                arts = export(
                    det,
                    target,
                    precision,
                    out / name,
                    nms=nms,
                    calibration=calib if precision == "int8" else None,
                )
                # the lite interpreter file: what a phone runs
                a = arts[-1] if target == "torchscript" else arts[0]
                runners[(target, precision, nms)] = (
                    a.path,
                    load_runner(a.path, threads=args.threads),
                )

    x0, raw0 = inputs[timed], float_raw[timed]

    def host_post():
        boxes, scores = det.decode(*raw0)
        return det.nms(boxes, scores, sizes[timed : timed + 1])

    fns = {"eager core": lambda: det.core(x0), "host decode+NMS": host_post}
    fns.update({key: (lambda r=r: r.run(x0)) for key, (_, r) in runners.items()})
    t = measure_interleaved(fns, args.runs, 3, args.threads)
    host = t["host decode+NMS"].median_ms

    rows = [
        [
            name,
            "eager",
            "fp32",
            "-",
            f"{t['eager core'].median_ms:.1f}",
            "-",
            "-",
            f"{t['eager core'].median_ms + host:.1f}",
            "-",
            "inf",
        ]
    ]
    for (target, precision, nms), (path, runner) in runners.items():
        med = t[(target, precision, nms)].median_ms
        core = t[(target, precision, False)].median_ms
        if nms:
            sq, cost = "-", f"{med - core:+.1f} ({(med - core) / core:+.0%})"
            e2e = med
        else:
            got = [runner.run(x) for x in inputs]
            db = sqnr_db([r for raw in float_raw for r in raw], [g for o in got for g in o[:2]])
            sq = f"{db:.1f}"
            cost, e2e = "-", med + host
        rows.append(
            [
                name,
                target,
                precision,
                "in graph" if nms else "host",
                f"{core:.1f}",
                f"{med:.1f}" if nms else "-",
                cost,
                f"{e2e:.1f}",
                f"{size_bytes(path) / 1e6:.2f}",
                sq,
            ]
        )
    rows.append([name, "host", "fp32", "eager decode+NMS", "-", "-", f"{host:.1f}", "-", "-", "-"])
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--mbv3-weights", help="an SSDlite320 MobileNetV3-Large checkpoint (default: randomized)"
    )
    ap.add_argument(
        "--models",
        nargs="+",
        default=["ssdlite_mobilenet_v2_person", "ssdlite320_mobilenet_v3_large"],
    )
    ap.add_argument(
        "--images",
        type=int,
        default=8,
        help="val2017 images for SQNR (the median one by candidates is timed)",
    )
    ap.add_argument(
        "--calib-images", type=int, default=16, help="train2017 images calibrating int8"
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--out", type=Path, help="where the artifacts go (default: a temporary folder)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = args.out or Path(tempfile.mkdtemp(prefix="bench_coco_scale_"))
    rows = []
    for name in args.models:
        rows += bench_model(name, args, out)
    print(
        f"\nbatch 1, {args.threads} threads, median of {args.runs} runs timed round-robin per "
        f"model; SQNR of the raw outputs against the float eager core on {args.images} val2017 "
        f"images; int8 calibrated on {args.calib_images} train2017 images; "
        f"{machine_info()['cpu']}, load average {os.getloadavg()[0]:.1f}"
    )
    print_table(
        [
            "model",
            "target",
            "precision",
            "NMS",
            "core ms",
            "+nms ms",
            "NMS cost",
            "end-to-end ms",
            "MB",
            "SQNR dB",
        ],
        rows,
        markdown=True,
    )
    print(f"artifacts in {out}")


if __name__ == "__main__":
    main()
