"""`ssdmobile export`: one target, its artifacts plus their sidecar JSON."""

import json

from ..bundle import REPO_ROOT
from ..errors import QuantizationError
from ..fileio import size_bytes
from ..quant import Calibration
from ..targets import check_export, check_input_dtype
from ._args import (
    add_int8_format,
    add_model,
    add_observer,
    add_weights,
    count,
    existing_dir,
    output_dir,
)

NAME = "export"
HELP = "export a detector to torchscript, onnx, coreml or executorch (artifact + sidecar JSON)"
DEFAULT_MODEL = "ssdlite_mobilenet_v2_person"
# a source checkout's shared data
DEFAULT_GOLDEN_DATA = REPO_ROOT.parent / "shared" / "data" / "coco128"


def add_arguments(p):
    # choices are not listed in argparse: an unknown target is the library's typed error, one line
    p.add_argument("--target", required=True, help="torchscript, onnx, coreml or executorch")
    add_model(p, default=DEFAULT_MODEL, help=f"registered model name (default {DEFAULT_MODEL})")
    add_weights(p)
    p.add_argument(
        "--precision", help="fp32, fp16 or int8 (default: the target's own; fp16 for coreml)"
    )
    p.add_argument(
        "--nms",
        action="store_true",
        default=False,
        help="NMS in the graph (fixed-size detections out)",
    )
    p.add_argument(
        "--no-nms",
        dest="nms",
        action="store_false",
        help="raw box encodings and class logits out (default)",
    )
    p.add_argument(
        "--input",
        dest="input_dtype",
        default="float32",
        metavar="{float32,uint8}",
        help="uint8: the program takes camera bytes, uint8 RGB [1, H, W, 3] at the model's size, "
        "normalization folded into its first convolution (executorch only; default float32: "
        "the normalized [1, 3, H, W] tensor)",
    )
    p.add_argument(
        "--out", default="artifacts", type=output_dir, help="output directory (default ./artifacts)"
    )
    q = p.add_argument_group("int8 calibration (--precision int8)")
    q.add_argument(
        "--calib-data",
        type=existing_dir,
        help="COCO-format dataset root whose images calibrate int8 activations (an image that "
        "cannot be decoded is refused up front, each named)",
    )
    q.add_argument(
        "--calib-split",
        default="train2017",
        help="never the split you evaluate on (default train2017)",
    )
    q.add_argument(
        "--num-images", type=count(1), default=128, help="calibration images (default 128)"
    )
    add_observer(q)
    # not argparse choices: an unknown format is the library's typed error,
    # one line naming the valid ones
    add_int8_format(q)
    g = p.add_argument_group("golden data for the apps' on-device drift check")
    g.add_argument(
        "--golden",
        type=count(1),
        metavar="N",
        help="attach N real images, preprocessed as the app does, with the float model's raw "
        "outputs and "
        "detections, beside the artifact (<stem>.golden/; for ExecuTorch also <stem>.bpte)",
    )
    g.add_argument(
        "--golden-data",
        type=existing_dir,
        help=f"a dataset root (images/<split>/) or a folder of images "
        f"(default {DEFAULT_GOLDEN_DATA} when it exists)",
    )
    g.add_argument(
        "--golden-split", default="val2017", help="split of --golden-data (default val2017)"
    )


def run(args):
    calibration = (
        Calibration(args.calib_data, args.calib_split, args.num_images, args.observer)
        if args.calib_data
        else None
    )
    # a bad target, precision or missing calibration fails before the model loads
    target, precision = check_export(
        args.target, args.precision, calibration, int8_format=args.int8_format
    )
    if calibration is not None and not (
        precision == "int8" and target.int8.calibrated_for(args.int8_format)
    ):
        raise QuantizationError(
            f"--calib-data is for int8 exports that calibrate, not {args.target} {precision}"
        )
    check_input_dtype(args.target, args.input_dtype)
    golden = _golden_images(args)  # before any model loads
    from ..drift import attach_golden
    from ..models import create_model, get_entry
    from ..targets.pipeline import export

    get_entry(args.model)
    detector = create_model(args.model, weights=args.weights or "default")
    print(
        f"exporting {args.model} to {args.target} "
        f"{precision}{' with NMS in the graph' if args.nms else ''} ..."
    )
    for artifact in export(
        detector,
        args.target,
        precision,
        args.out,
        nms=args.nms,
        calibration=calibration,
        int8_format=args.int8_format,
        input_dtype=args.input_dtype,
    ):
        print(
            f"wrote {artifact.path} ({size_bytes(artifact.path) / 1e6:.1f} MB, {artifact.runtime}) "
            f"and {artifact.sidecar}"
        )
        if not target.runs_here():
            s = target.verify(artifact.path)
            print(
                f"verified: {s['type']}, inputs {s['inputs']}, outputs {s['outputs']}, "
                f"{s['precision']}"
                + (
                    f", NMS iou {s['nms']['iou']} confidence {s['nms']['confidence']} "
                    f"({s['nms']['labels']} labels)"
                    if s["nms"]
                    else ""
                )
            )
            print(
                f"not run: {args.target} does not run on this machine; `ssdmobile validate` or "
                "`eval --artifact` measures its drift here through the ML Program reference "
                "evaluator, latency on a Mac or the device"
            )
        if golden:
            manifest = attach_golden(detector, artifact.path, golden)
            print(
                f"wrote golden data for {len(golden)} images: {manifest.parent}"
                + _host_check(manifest)
            )
    return 0


def _golden_images(args):
    from ..drift import GoldenError, golden_image_paths

    if args.golden is None:
        if args.golden_data:
            raise GoldenError("--golden-data is for --golden N")
        return []
    data = args.golden_data or (DEFAULT_GOLDEN_DATA if DEFAULT_GOLDEN_DATA.is_dir() else None)
    if data is None:
        raise GoldenError(
            "--golden needs images: pass --golden-data DIR (a dataset root or a folder of images)"
        )
    return golden_image_paths(data, args.golden_split, args.golden)


def _host_check(manifest_path) -> str:
    manifest = json.loads(manifest_path.read_text())
    host, bpte = manifest["host"], manifest["bundled_program"]
    text = (
        ""
        if host is None
        else (
            f"; on this machine: {'PASS' if host['passed'] else 'FAIL'}, detections match on "
            f"{host['detections_matched']}/"
            f"{host['images']} images"
            + (
                ""
                if host["max_abs_diff_raw"] is None
                else f", max raw difference {host['max_abs_diff_raw']:.2e}"
            )
        )
    )
    return text + (f"; BundledProgram {bpte['file']}" if bpte else "")
