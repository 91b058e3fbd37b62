"""`ssdmobile quantize`: post-training int8 for one or more targets,
calibrated on a training split."""

import time

from ..quant import Calibration
from ..table import print_table
from ..targets import TARGETS, check_export, int8_formats_for
from ._args import (
    add_classes,
    add_int8_format,
    add_model,
    add_no_progress,
    add_observer,
    add_weights,
    count,
    existing_dir,
    output_dir,
)

NAME = "quantize"
HELP = (
    "post-training int8 quantization (per-channel symmetric weights, asymmetric activations): "
    + "; ".join(f"{t.name} ({t.int8.description})" for t in TARGETS.values() if t.int8)
)
INT8_TARGETS = [t.name for t in TARGETS.values() if t.int8]


def add_arguments(p):
    add_model(p, required=True)
    add_weights(p)
    p.add_argument(
        "--calib-data",
        required=True,
        type=existing_dir,
        help="COCO-format dataset root for calibration (an image that cannot be decoded is "
        "refused up front, each named)",
    )
    p.add_argument(
        "--split", default="train2017", help="calibration split (never the one you report AP on)"
    )
    p.add_argument(
        "--num-images", type=count(1), default=128, help="calibration images (default 128)"
    )
    p.add_argument("--target", nargs="+", default=["executorch"], choices=INT8_TARGETS)
    add_observer(p)
    p.add_argument(
        "--float-modules",
        nargs="*",
        default=[],
        help="module names kept in float (e.g. from `ssdmobile sensitivity`)",
    )
    add_int8_format(p)
    p.add_argument("--nms", action="store_true", help="NMS in the graph")
    p.add_argument("--out", default="artifacts", type=output_dir, help="output directory")
    p.add_argument(
        "--eval-data",
        type=existing_dir,
        help="after quantizing, evaluate each runnable artifact (and the float model) "
        "on this COCO-format dataset",
    )
    p.add_argument("--eval-split", default="val2017")
    add_classes(p)
    add_no_progress(p)


def run(args):
    from ..data import open_dataset, refuse_shared_images
    from ..models import create_model
    from ..targets.pipeline import export

    if args.eval_data:  # scoring the calibration images would hide the int8 loss
        refuse_shared_images(
            open_dataset(args.calib_data, args.split, args.num_images),
            open_dataset(args.eval_data, args.eval_split),
        )
    check_export(args.target[0], "int8", Calibration(args.calib_data), args.float_modules)
    formats = int8_formats_for(args.target, [args.int8_format] if args.int8_format else [])
    det = create_model(args.model, args.weights or "default")
    t0 = time.perf_counter()
    calibration = Calibration(args.calib_data, args.split, args.num_images, args.observer)
    print(
        f"calibrating on {args.num_images} images of {args.calib_data} {args.split} "
        f"({args.observer} observer)"
    )
    written = []
    for target in args.target:
        t = time.perf_counter()
        artifacts = export(
            det,
            target,
            "int8",
            args.out,
            nms=args.nms,
            calibration=calibration,
            float_modules=args.float_modules,
            progress=not args.no_progress,
            int8_format=formats[target][0],
        )
        for a in artifacts:
            print(f"{target}: wrote {a.path} ({time.perf_counter() - t:.0f} s)")
        written += artifacts
    if args.eval_data:
        _evaluate(det, written, args)
    print(f"done in {time.perf_counter() - t0:.0f} s")


def _evaluate(det, artifacts, args):
    from ..data import open_dataset
    from ..evaluate import evaluate_model
    from ..targets.artifacts import evaluate_artifact

    ds = open_dataset(args.eval_data, args.eval_split)
    progress = not args.no_progress
    ref = evaluate_model(det, ds, args.classes, progress=progress)
    rows = [["float eager", "fp32", f"{ref.ap:.4f}", "-", f"{ref.ap50:.4f}"]]
    for a in artifacts:
        if not TARGETS[a.target].runs_here():
            rows.append([a.path.name, "int8", "not run", f"{a.target} does not run here", "-"])
            continue
        r = evaluate_artifact(a.path, ds, args.classes, threads=2, progress=progress)
        rows.append([a.path.name, "int8", f"{r.ap:.4f}", f"{r.ap - ref.ap:+.4f}", f"{r.ap50:.4f}"])
    print(f"AP on {len(ds)} images of {args.eval_data} {args.eval_split}:")
    print_table(["artifact", "precision", "AP", "dAP", "AP50"], rows)
