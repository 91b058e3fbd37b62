"""ONNX Runtime int8 formats against fp32 on this CPU: the network core (no decode, no NMS), 1
image, --threads intra-op threads, every format of ssdmobile.quant.onnx_int8.FORMATS and the fp32
file timed round-robin in one process (ssdmobile.bench.measure_interleaved: a burst of load from
other users hits all of them alike, so the ratios hold where absolute times do not). Also each int8
file's raw-output SQNR against fp32 (box encodings and class logits over --eval-images val2017
images; higher is closer) and file size.

    python benchmarks/bench_onnx_int8.py --runs 100                  # both models, all formats
    python benchmarks/bench_onnx_int8.py --models person --runs 3    # a smoke run
    python benchmarks/bench_onnx_int8.py --runs 100 --results docs/results/onnx_int8.json

Models: the real person detector (ssdlite_mobilenet_v2_person, its TF weights) and
ssdlite320_mobilenet_v3_large with RANDOM weights (none trained exist here): --v3-weights takes a
checkpoint (benchmarks/make_random_checkpoint.py writes one with realistic BatchNorm statistics);
without it the checkpoint is made here (random_checkpoints.realistic_random_, whose activations
and int8 behaviour look like a trained network's). Latency
does not depend on the weights' values; SQNR on random weights says how formats compare, not how a
trained model would fare.

Calibration: --calib-images train2017 images of ../shared/data/coco128, the project's default
observer (histogram: onnxruntime's Percentile 99.999), exactly as `ssdmobile
export --precision int8`.
"""

import argparse
import contextlib
import io
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from ssdmobile.bench import machine_info, measure_interleaved
from ssdmobile.fileio import size_bytes
from ssdmobile.models import create_model
from ssdmobile.quant.onnx_int8 import DEFAULT_FORMAT, FORMATS, quantize_onnx_file
from ssdmobile.quant.ptq import Calibration, calibration_inputs, calibration_set
from ssdmobile.results import Table, write_results
from ssdmobile.runtime import onnx as onnx_runtime
from ssdmobile.sidecar import load_sidecar
from ssdmobile.table import print_table
from ssdmobile.targets.pipeline import export

from _shared import COCO128, PERSON_GRAPH
from random_checkpoints import realistic_random_

MODELS = {"person": "ssdlite_mobilenet_v2_person", "v3": "ssdlite320_mobilenet_v3_large"}


def load_model(key: str, v3_weights: str | None):
    if key == "person":
        return create_model(MODELS[key], weights=PERSON_GRAPH), "real (TF person detector)"
    if v3_weights:
        return create_model(MODELS[key], weights=v3_weights), f"RANDOM ({v3_weights})"
    det = create_model(MODELS[key], None)
    realistic_random_(det, calibration_inputs(det, str(COCO128), "train2017", 8), seed=0)
    return det, "RANDOM (realistic_random_, seed 0)"


def sqnr_db(ref: list[np.ndarray], got: list[np.ndarray]) -> float:
    ref, got = np.concatenate([r.ravel() for r in ref]), np.concatenate([g.ravel() for g in got])
    noise = float(((ref - got) ** 2).sum())
    return float("inf") if noise == 0 else 10 * np.log10(float((ref**2).sum()) / noise)


def bench_model(key: str, args, out: Path) -> list[list[str]]:
    det, provenance = load_model(key, args.v3_weights)
    det.eval()
    fp32, _ort = (a.path for a in export(det, "onnx", "fp32", out / key))
    sidecar = load_sidecar(fp32).to_dict()
    inputs, _ = calibration_set(
        det, Calibration(str(COCO128), "train2017", args.calib_images, args.observer)
    )
    paths = {"fp32": fp32}
    for fmt in args.formats:
        paths[fmt] = out / key / f"{fmt}.onnx"
        with contextlib.redirect_stdout(
            io.StringIO()
        ):  # onnxruntime's calibrator prints its progress
            quantize_onnx_file(fp32, paths[fmt], inputs, args.observer, fmt=fmt)
    runners = {name: onnx_runtime.load(p, sidecar, args.threads) for name, p in paths.items()}
    evals = calibration_inputs(det, str(COCO128), "val2017", args.eval_images)
    outputs = {name: [[o.numpy() for o in r.run(x)] for x in evals] for name, r in runners.items()}
    x = evals[0]
    timings = measure_interleaved(
        {name: (lambda r=r: r.run(x)) for name, r in runners.items()},
        args.runs,
        args.warmup,
        args.threads,
    )
    base = timings["fp32"].median_ms
    rows = []
    for name, t in timings.items():
        sq = (
            ["-", "-"]
            if name == "fp32"
            else [
                f"{sqnr_db([o[i] for o in outputs['fp32']], [o[i] for o in outputs[name]]):.1f}"
                for i in (0, 1)
            ]
        )
        form = FORMATS.get(name)
        rows.append(
            [
                MODELS[key],
                name + (" (default)" if name == DEFAULT_FORMAT else ""),
                f"{form.quant_format} "
                f"{form.activations}/{form.weights}{' rr' if form.reduce_range else ''}"
                if form
                else "fp32",
                f"{size_bytes(paths[name]) / 1e6:.2f}",
                f"{t.median_ms:.1f}",
                f"{t.p90_ms:.1f}",
                f"{base / t.median_ms:.2f}x",
                *sq,
            ]
        )
    print(f"{MODELS[key]}: weights {provenance}")
    return rows


def cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            flags = next(line for line in f if line.startswith("flags")).split()
    except (OSError, StopIteration):
        return "unknown"
    return " ".join(f for f in flags if f.startswith(("avx", "amx")) or "vnni" in f) or "no AVX"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    ap.add_argument("--formats", nargs="+", choices=list(FORMATS), default=list(FORMATS))
    ap.add_argument("--v3-weights", help="MobileNetV3 checkpoint (default: randomized here)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--calib-images", type=int, default=32)
    ap.add_argument(
        "--eval-images", type=int, default=8, help="val2017 images for the SQNR (default 8)"
    )
    ap.add_argument("--observer", choices=["histogram", "minmax"], default="histogram")
    ap.add_argument("--results", help="also write the table as a results file for the docs")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_onnx_int8_") as tmp, torch.inference_mode():
        for key in args.models:
            rows += bench_model(key, args, Path(tmp))
    info = machine_info()
    print(
        f"ONNX Runtime CPU EP, network core only, batch 1, {args.threads} threads, median / "
        f"p90 of {args.runs} "
        f"runs timed round-robin; calibration {args.calib_images} train2017 images "
        f"({args.observer}); SQNR vs "
        f"fp32 on {args.eval_images} val2017 images; {info['cpu']} ({info['cores']} cores; "
        f"{cpu_flags()}), "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    headers = [
        "model",
        "format",
        "onnxruntime",
        "MB",
        "median ms",
        "p90 ms",
        "speed vs fp32",
        "SQNR boxes dB",
        "SQNR logits dB",
    ]
    print_table(headers, rows, markdown=True)
    if args.results:
        title = (
            f"ONNX Runtime CPU EP, network core only, batch 1, median / p90 of {args.runs} runs "
            f"timed round-robin; calibration {args.calib_images} train2017 images "
            f"({args.observer}); SQNR against fp32"
        )
        notes = [
            "ssdlite_mobilenet_v2_person: the real TF person detector's weights. "
            "ssdlite320_mobilenet_v3_large: RANDOM weights with realistic BatchNorm statistics "
            "(random_checkpoints.realistic_random_): its latency is a trained model's, its SQNR "
            "says how formats compare, not how a trained model fares.",
            "Speed vs fp32 is a ratio within this run; absolute times depend on the CPU.",
        ]
        cells = [[str(c) for c in r] for r in rows]
        write_results(
            args.results,
            [Table(title=title, headers=headers, rows=cells)],
            threads=args.threads,
            images=args.eval_images,
            notes=notes,
        )


if __name__ == "__main__":
    main()
