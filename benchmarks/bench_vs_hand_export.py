"""ssdmobile's artifacts against a hand-made export of the same checkpoint (issue 23, item 6): each
runtime's documented recipe, written here with no ssdmobile code on the export path, timed
round-robin with ssdmobile's own artifacts in one run, and each file's raw-output SQNR against the
float eager core on real val2017 images.

    python benchmarks/bench_vs_hand_export.py --runs 100 --results docs/results/vs_hand_export.json
    python benchmarks/bench_vs_hand_export.py --models person --runs 3      # a smoke run

The hand recipes (network core only, batch 1, NCHW float input, as ssdmobile's core artifacts):
  ExecuTorch fp32  torch.export.export -> to_edge_transform_and_lower(XnnpackPartitioner) -> .pte
  ExecuTorch int8  torch.export.export(...).module() -> prepare_pt2e(XNNPACKQuantizer, symmetric
                   per-channel config) -> calibrate -> convert_pt2e -> torch.export -> lowered as
                   fp32 (ExecuTorch's "Quantization" and "XNNPACK backend" tutorials)
  ONNX fp32        torch.onnx.export (its defaults)
  ONNX int8        quant_pre_process -> quantize_static (QDQ, per_channel=True, its other
                   defaults: QInt8 activations and weights, MinMax calibration), as onnxruntime's
                   "Quantize ONNX models" page shows

Both sides calibrate on the same --calib-images train2017 images (preprocessed by the model's
own preprocessing, which is not part of either recipe's export). Every file, hand-made or not, is
timed by the same bare runtime call (executorch.runtime's Method.execute; an onnxruntime
InferenceSession with intra_op_num_threads set and its pool not spinning between runs), so the
file is the only difference. MB counts an ONNX file's external weights (torch.onnx.export's
default writes them beside the .onnx).

Models: the real person detector (its TF weights) and SSDlite320 MobileNetV3-Large with RANDOM
weights with realistic BatchNorm statistics (no trained ones exist here; latency does not depend
on the values, SQNR on random weights compares recipes, not a trained model's accuracy).
"""

import argparse
import os
import tempfile
from pathlib import Path

import torch

from bench_onnx_int8 import MODELS, load_model  # the same two models, made the same way
from ssdmobile.bench import machine_info, measure_interleaved
from ssdmobile.fileio import size_bytes
from ssdmobile.quant.onnx_int8 import DEFAULT_FORMAT, FORMATS
from ssdmobile.quant.ptq import Calibration, calibration_inputs, calibration_set
from ssdmobile.quant.sensitivity import sqnr_db
from ssdmobile.results import Table, write_results
from ssdmobile.table import print_table
from ssdmobile.targets.pipeline import export

from _shared import COCO128

# -- the hand-made exports: the runtimes' documented recipes, no ssdmobile code ------------------


def hand_executorch(core: torch.nn.Module, x: torch.Tensor, path: Path, calib=None) -> Path:
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    core = core.eval()
    if calib is not None:
        from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
            XNNPACKQuantizer,
            get_symmetric_quantization_config,
        )
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

        graph = torch.export.export(core, (x,)).module()
        quantizer = XNNPACKQuantizer().set_global(
            get_symmetric_quantization_config(is_per_channel=True)
        )
        prepared = prepare_pt2e(graph, quantizer)
        for c in calib:
            prepared(c)
        core = convert_pt2e(prepared)
    exported = torch.export.export(core, (x,))
    program = to_edge_transform_and_lower(exported, partitioner=[XnnpackPartitioner()])
    with open(path, "wb") as f:
        program.to_executorch().write_to_file(f)
    return path


def hand_onnx(core: torch.nn.Module, x: torch.Tensor, path: Path) -> Path:
    torch.onnx.export(core.eval(), (x,), str(path), input_names=["input"])
    return path


def hand_onnx_int8(fp32: Path, path: Path, calib) -> Path:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{"input": c.numpy()} for c in calib])

        def get_next(self):
            return next(self.it, None)

    pre = path.with_name(path.stem + "_pre.onnx")
    quant_pre_process(str(fp32), str(pre))
    quantize_static(str(pre), str(path), Reader(), quant_format=QuantFormat.QDQ, per_channel=True)
    return path


# -- one bare runtime call for every file ----------------------------------------------------------


def bare_runner(path: Path, threads: int):
    if path.suffix == ".pte":
        from executorch.extension.pybindings.portable_lib import _unsafe_reset_threadpool
        from executorch.runtime import Runtime

        _unsafe_reset_threadpool(threads)
        method = Runtime.get().load_program(path).load_method("forward")
        return lambda x: [torch.as_tensor(o) for o in method.execute((x,))]
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    # a spinning pool keeps its cores busy after each run and slows whatever runs next in the
    # round-robin (the eager core measured 4x slower with it on): off for every file alike
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: [torch.from_numpy(o) for o in session.run(None, {name: x.numpy()})]


def file_mb(path: Path) -> float:
    data = Path(f"{path}.data")  # torch.onnx.export's external weights
    return (size_bytes(path) + (size_bytes(data) if data.exists() else 0)) / 1e6


@torch.inference_mode()
def bench_model(key: str, args, out: Path) -> list[list[str]]:
    det, provenance = load_model(key, args.v3_weights)
    det.eval()
    print(f"{MODELS[key]}: weights {provenance}", flush=True)
    calibration = Calibration(str(COCO128), "train2017", args.calib_images, "histogram")
    calib, _ = calibration_set(det, calibration)
    evals = calibration_inputs(det, str(COCO128), "val2017", args.eval_images)
    x = evals[0]
    d = out / key
    d.mkdir(parents=True)
    files = {}  # (target, precision, maker) -> path
    for target in ("executorch", "onnx"):
        for precision in ("fp32", "int8"):
            arts = export(
                det,
                target,
                precision,
                d / "ssdmobile",
                calibration=calibration if precision == "int8" else None,
                progress=False,
            )
            files[(target, precision, "ssdmobile")] = arts[0].path
    for fmt in args.onnx_formats:
        arts = export(
            det, "onnx", "int8", d / "ssdmobile", calibration=calibration, int8_format=fmt
        )
        files[("onnx", "int8", f"ssdmobile {fmt}")] = arts[0].path
    core = det.core
    files[("executorch", "fp32", "hand")] = hand_executorch(core, x, d / "hand_fp32.pte")
    files[("executorch", "int8", "hand")] = hand_executorch(core, x, d / "hand_int8.pte", calib)
    files[("onnx", "fp32", "hand")] = hand_onnx(core, x, d / "hand_fp32.onnx")
    files[("onnx", "int8", "hand")] = hand_onnx_int8(
        files[("onnx", "fp32", "hand")], d / "hand_int8.onnx", calib
    )

    runners = {k: bare_runner(p, args.threads) for k, p in files.items()}
    ref = [list(core(e)) for e in evals]
    sqnr = {}
    for k, run in runners.items():
        got = [run(e) for e in evals]
        sqnr[k] = [
            sqnr_db([r[i] for r in ref], [g[i] for g in got]) for i in (0, 1)
        ]  # box encodings, class logits
    fns = {"eager core": lambda: core(x)}
    fns.update({k: (lambda r=r: r(x)) for k, r in runners.items()})
    t = measure_interleaved(fns, args.runs, args.warmup, args.threads)
    rows = []
    for target in ("executorch", "onnx"):
        for precision in ("fp32", "int8"):
            hand = t[(target, precision, "hand")].median_ms
            for (tg, pr, maker), path in files.items():
                if (tg, pr) != (target, precision):
                    continue
                med = t[(tg, pr, maker)].median_ms
                rows.append(
                    [
                        MODELS[key],
                        target,
                        precision,
                        maker,
                        f"{file_mb(path):.2f}",
                        f"{med:.2f}",
                        f"{t[(tg, pr, maker)].p90_ms:.2f}",
                        f"{hand / med:.2f}x",
                        f"{sqnr[(tg, pr, maker)][0]:.1f}",
                        f"{sqnr[(tg, pr, maker)][1]:.1f}",
                    ]
                )
    eager = t["eager core"]
    rows.append(
        [
            MODELS[key],
            "eager",
            "fp32",
            "-",
            "-",
            f"{eager.median_ms:.2f}",
            f"{eager.p90_ms:.2f}",
            "-",
            "inf",
            "inf",
        ]
    )
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    ap.add_argument("--v3-weights", help="MobileNetV3 checkpoint (default: randomized here)")
    ap.add_argument(
        "--onnx-formats",
        nargs="*",
        choices=[f for f in FORMATS if f != DEFAULT_FORMAT],
        default=["qdq-u8s8"],
        help="ssdmobile's ONNX int8 formats timed besides the default (default: qdq-u8s8)",
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--calib-images", type=int, default=32)
    ap.add_argument("--eval-images", type=int, default=8)
    ap.add_argument("--results", help="also write the table as a results file for the docs")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_vs_hand_") as tmp:
        for key in args.models:
            rows += bench_model(key, args, Path(tmp))
    info = machine_info()
    title = (
        f"ssdmobile's artifacts against hand-made exports of the same checkpoint: network core, "
        f"batch 1, {args.threads} threads, median / p90 of {args.runs} runs timed round-robin per "
        f"model, every file by the same bare runtime call; int8 calibrated on "
        f"{args.calib_images} train2017 images; SQNR against the float eager core on "
        f"{args.eval_images} val2017 images"
    )
    print(f"{title}; {info['cpu']}, load average {os.getloadavg()[0]:.1f}")
    headers = [
        "model",
        "target",
        "precision",
        "made by",
        "MB",
        "median ms",
        "p90 ms",
        "speed vs hand",
        "SQNR boxes dB",
        "SQNR logits dB",
    ]
    print_table(headers, rows, markdown=True)
    if args.results:
        notes = [
            "Hand-made: each runtime's documented recipe with no ssdmobile code (the script's "
            "docstring lists them). ssdmobile: `export()` as `ssdmobile export` calls it, with its "
            "default int8 format per target (and qdq-u8s8 for ONNX).",
            "ssdlite_mobilenet_v2_person: the real TF person detector's weights. "
            "ssdlite320_mobilenet_v3_large: RANDOM weights with realistic BatchNorm statistics: "
            "its latency is a trained model's, its SQNR compares recipes only.",
            "Speed vs hand is the hand-made file's median over this file's, within this run "
            "(above 1.00x: ssdmobile's is faster).",
        ]
        write_results(
            args.results,
            [Table(title=title, headers=headers, rows=[[str(c) for c in r] for r in rows])],
            threads=args.threads,
            images=args.eval_images,
            notes=notes,
        )


if __name__ == "__main__":
    main()
