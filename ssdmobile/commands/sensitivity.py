"""`ssdmobile sensitivity`: rank layers by how much quantizing each alone hurts; optionally keep the
K most sensitive in float and measure what that buys."""

import time
from pathlib import Path

from ..fileio import write_json_atomic
from ..quant import Calibration
from ..table import print_table
from ..targets import TARGETS
from ._args import (
    add_classes,
    add_model,
    add_no_progress,
    add_observer,
    add_weights,
    count,
    existing_dir,
    output_dir,
)

NAME = "sensitivity"
FALLBACK_TARGETS = [t.name for t in TARGETS.values() if t.int8 and t.int8.float_fallback]
HELP = (
    "rank layers by output SQNR when each alone is quantized to int8; --float-fallback K exports "
    f"an int8 model ({', '.join(FALLBACK_TARGETS)}) with the K most sensitive layers kept in float"
)


def add_arguments(p):
    add_model(p, required=True)
    add_weights(p)
    p.add_argument(
        "--calib-data",
        required=True,
        type=existing_dir,
        help="COCO-format dataset root (calibration split)",
    )
    p.add_argument("--split", default="train2017")
    p.add_argument("--num-images", type=count(1), default=8, help="images to rank on (default 8)")
    p.add_argument("--top", type=count(1), default=15, help="rows of the ranked table to print")
    p.add_argument(
        "--float-fallback",
        type=count(0),
        default=0,
        metavar="K",
        help="export --target int8 with the K most sensitive layers in float (and all-int8 to "
        "compare)",
    )
    p.add_argument(
        "--target",
        default="executorch",
        choices=FALLBACK_TARGETS,
        help="the int8 target of the --float-fallback export (default executorch)",
    )
    p.add_argument(
        "--calib-images",
        type=count(1),
        default=128,
        help="calibration images for the --float-fallback export",
    )
    add_observer(p)
    p.add_argument("--out", default="artifacts", type=output_dir)
    p.add_argument(
        "--eval-data",
        type=existing_dir,
        help="evaluate the fallback artifacts on this dataset (AP, latency)",
    )
    p.add_argument("--eval-split", default="val2017")
    add_classes(p)
    add_no_progress(p)


def run(args):
    import torch

    from ..data import open_dataset, refuse_shared_images
    from ..models import create_model
    from ..quant.ptq import calibration_inputs
    from ..quant.sensitivity import rank_layers
    from ..targets.pipeline import export

    if args.eval_data:  # scoring the calibration images would hide the int8 loss
        refuse_shared_images(
            open_dataset(args.calib_data, args.split, max(args.num_images, args.calib_images)),
            open_dataset(args.eval_data, args.eval_split),
        )
    torch.set_num_threads(2)
    progress = not args.no_progress
    out = args.out
    det = create_model(args.model, args.weights or "default")
    inputs = calibration_inputs(det, args.calib_data, args.split, args.num_images)
    t = time.perf_counter()
    ranked = rank_layers(det, inputs, progress=progress)
    print(
        f"{len(ranked)} layers, each quantized alone (int8), output SQNR on {len(inputs)} images "
        f"of {args.calib_data} {args.split} ({time.perf_counter() - t:.0f} "
        "s); most sensitive first:"
    )
    print_table(
        ["rank", "layer", "op", "SQNR dB"],
        [[i + 1, u.name, u.kind, f"{u.sqnr_db:.1f}"] for i, u in enumerate(ranked[: args.top])],
    )
    ranking_path = out / f"{det.spec.name}_sensitivity.json"
    write_json_atomic(
        ranking_path,
        {
            "model": det.spec.name,
            "images": len(inputs),
            "split": args.split,
            "metric": "output SQNR dB, layer quantized alone",
            "ranking": [u.__dict__ for u in ranked],
        },
    )
    print(f"wrote {ranking_path}")
    if not args.float_fallback:
        return
    calibration = Calibration(args.calib_data, args.split, args.calib_images, args.observer)
    k = args.float_fallback
    keep = [u.name for u in ranked[:k]]
    print(f"float fallback: {', '.join(keep)}")
    # [-1]: the artifact a phone runs (TorchScript writes .pt, then the lite interpreter's .ptl)
    paths = {
        "int8 (all layers)": export(
            det, args.target, "int8", out, calibration=calibration, progress=progress
        )[-1].path,
        f"int8, {k} layers float": export(
            det,
            args.target,
            "int8",
            out,
            calibration=calibration,
            float_modules=keep,
            tag=f"_fallback{k}",
            progress=progress,
        )[-1].path,
    }
    for label, path in paths.items():
        print(f"{label}: {path}")
    if args.eval_data:
        _compare(det, paths, args)


def _compare(det, paths: dict[str, Path], args):
    from ..bench import measure
    from ..data import open_dataset
    from ..evaluate import evaluate_model
    from ..targets.artifacts import evaluate_artifact, load_runner

    ds = open_dataset(args.eval_data, args.eval_split)
    progress = not args.no_progress
    ref = evaluate_model(det, ds, args.classes, progress=progress)
    x = det.preprocess([ds[0].image])
    rows = []
    for label, path in paths.items():
        r = evaluate_artifact(path, ds, args.classes, threads=2, progress=progress)
        runner = load_runner(path, threads=2)
        t = measure(lambda: runner.run(x), runs=50, warmup=5)  # noqa: B023 (runs right here)
        rows.append(
            [
                label,
                f"{r.ap:.4f}",
                f"{r.ap - ref.ap:+.4f}",
                f"{t.median_ms:.1f}",
                f"{t.p90_ms:.1f}",
                f"{path.stat().st_size / 1e6:.2f}",
            ]
        )
    print(
        f"{args.target} int8 on {len(ds)} images of {args.eval_data} {args.eval_split}; float "
        f"eager AP {ref.ap:.4f}; "
        "latency of the core, 1 image, 2 threads:"
    )
    print_table(["artifact", "AP", "dAP", "median ms", "p90 ms", "MB"], rows)
