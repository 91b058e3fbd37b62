"""`ssdmobile validate`: every target x precision, run in its own
runtime on real images, one table."""

import sys
from pathlib import Path

from ..quant import Calibration
from ._args import (
    add_classes,
    add_max_images,
    add_model,
    add_no_progress,
    add_observer,
    add_threads,
    add_weights,
    count,
    existing_dir,
    existing_path,
    int8_formats_help,
    number,
    output_dir,
    output_file,
)

NAME = "validate"
HELP = (
    "export every target and precision, run each artifact on real images, and report AP drift, "
    "raw-output difference and latency against the float eager model (report.md/.json/.png)"
)


def add_arguments(p):
    add_model(p, default="ssdlite_mobilenet_v2_person")
    add_weights(p)
    p.add_argument("--data", required=True, type=existing_dir, help="COCO-format dataset root")
    p.add_argument("--split", default="val2017")
    add_max_images(p)
    add_classes(p)
    p.add_argument(
        "--targets",
        nargs="*",
        help="default: all (torchscript onnx coreml executorch); given with "
        "no name: only --artifacts",
    )
    p.add_argument(
        "--artifacts",
        nargs="+",
        default=[],
        metavar="PATH",
        type=existing_path,
        help="already-exported artifacts of this model (a QAT .pte, a --float-fallback export) to "
        "measure in the same run and table",
    )
    p.add_argument(
        "--precisions",
        nargs="+",
        help="default: each target's own (fp32; fp16 for coreml); e.g. fp32 fp16 int8 for every "
        "combination (one a target lacks shows as 'not available')",
    )
    p.add_argument(
        "--nms",
        choices=["off", "on", "both"],
        default="both",
        help="NMS in the graph (default both)",
    )
    p.add_argument(
        "--max-drift",
        type=number(0.0),
        help=(
            "exit 1 when an artifact's |ΔAP| exceeds this (a CI gate); fp16 rows are gated at "
            "no less than 0.002 (fp16 rounding alone moves AP by about 0.001)"
        ),
    )
    add_threads(p)
    p.add_argument(
        "--runs", type=count(50), default=50, help="timed runs per artifact (at least 50)"
    )
    p.add_argument(
        "--out",
        default="runs/validate",
        type=output_dir,
        help="report directory (artifacts go to OUT/artifacts)",
    )
    p.add_argument(
        "--gallery",
        type=count(0),
        default=4,
        metavar="N",
        help="draw the first N images, float against each artifact, into OUT/gallery/ (default 4; "
        "0: none)",
    )
    p.add_argument(
        "--results",
        type=output_file,
        metavar="FILE",
        help="also write the table as a results file (numbers, machine, command) for the docs, "
        "e.g. docs/results/main_job.json (see `ssdmobile docs`)",
    )
    add_no_progress(p)
    q = p.add_argument_group("int8 calibration (images of --data, another split than --split)")
    q.add_argument("--calib-split", default="train2017")
    q.add_argument("--calib-images", type=count(1), default=128)
    add_observer(q)
    q.add_argument(
        "--int8-formats",
        nargs="+",
        default=[],
        metavar="FORMAT",
        help=f"int8 rows in each of these formats, for targets that offer several "
        f"({int8_formats_help()}); default: each target's default",
    )


def run(args):
    from ..data import open_dataset
    from ..models import create_model, get_entry
    from ..report import markdown, write_report
    from ..validate import ValidateOptions, check_options, validate

    get_entry(args.model)
    opts = ValidateOptions(
        targets=args.targets,
        precisions=args.precisions,
        nms_modes={"off": (False,), "on": (True,), "both": (False, True)}[args.nms],
        classes=args.classes,
        threads=args.threads,
        runs=args.runs,
        max_drift=args.max_drift,
        progress=not args.no_progress,
        calibration=Calibration(args.data, args.calib_split, args.calib_images, args.observer),
        artifacts=args.artifacts,
        int8_formats=args.int8_formats,
        gallery=args.gallery,
    )
    dataset = open_dataset(args.data, args.split, args.max_images)
    # targets, precisions, artifacts, calibration set: before work
    given = check_options(args.model, dataset, opts)
    detector = create_model(args.model, weights=args.weights or "default")
    result = validate(detector, dataset, args.out, opts, given)
    paths = write_report(result, args.out)
    print(markdown(result))
    print(
        f"wrote {paths['md']}, {paths['json']}, {paths['png']}"
        + (
            f" and the gallery {paths['gallery']}/ (linked from report.md)"
            if "gallery" in paths
            else ""
        )
    )
    if args.results:
        write_validate_results(args.results, result)
        print(f"wrote {args.results}")
    if result.failures:
        print(
            f"validate: {len(result.failures)} artifact(s) failed or drifted: "
            + "; ".join(f"{r.label}: {r.status}" for r in result.failures),
            file=sys.stderr,
        )
        return 1
    return 0


def write_validate_results(path: Path, result) -> Path:
    """validate's table as a results file: what docs/ renders the main job's table from."""
    from ..report import HEADERS, table_rows
    from ..results import Table, write_results

    meta = result.meta
    title = (
        f"{meta['model']}: AP over {', '.join(meta['classes'])}; latency batch 1, median and p90 "
        f"of {meta['runs']} runs after {meta['warmup']} warm-up, timed round-robin"
    )
    notes = [
        "Every artifact runs in its own runtime on the same preprocessed images as the float "
        "eager model; raw-output difference and detections match are against it (match: same "
        f"label, score within {meta['score_tol']}, box corners within {meta['box_tol_px']} px).",
        "Speed-up of a +nms row is against eager core + decode + NMS.",
    ]
    if any(r.target == "coreml" for r in result.rows):
        notes.append(
            "Core ML off macOS: AP, ΔAP, raw difference and detections measured by ssdmobile's ML "
            "Program reference evaluator (the saved .mlpackage evaluated op by op in the precision "
            "it declares, and Core ML's NMS model as its spec documents it), not the Core ML "
            "runtime; latency on a Mac or the device."
        )
    if any(r.target == "torchscript" and r.precision == "int8" for r in result.rows):
        notes.append(
            "TorchScript int8 runs QNNPACK, whose kernels are tuned for ARM: its x86 "
            "latency is not a phone's."
        )
    table = Table(title=title, headers=HEADERS, rows=table_rows(result))
    return write_results(path, [table], threads=meta["threads"], images=meta["images"], notes=notes)
