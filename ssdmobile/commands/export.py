"""`ssdmobile export`: one target, its artifacts plus their sidecar JSON."""
from ..fileio import size_bytes
from ..models import create_model, get_entry
from ..quant.ptq import Calibration, QuantizationError
from ..targets import check_export, export
from ._args import count, existing_dir, output_dir

NAME = "export"
HELP = "export a detector to torchscript, onnx, coreml or executorch (artifact + sidecar JSON)"
DEFAULT_MODEL = "ssdlite_mobilenet_v2_person"


def add_arguments(p):
    # choices are not listed in argparse: an unknown target is the library's typed error, one line
    p.add_argument("--target", required=True, help="torchscript, onnx, coreml or executorch")
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"registered model name (default {DEFAULT_MODEL})")
    p.add_argument("--weights", help="checkpoint path (default: the model's registered weights)")
    p.add_argument("--precision", help="fp32, fp16 or int8 (default: the target's own; fp16 for coreml)")
    p.add_argument("--nms", action="store_true", default=False, help="NMS in the graph (fixed-size detections out)")
    p.add_argument("--no-nms", dest="nms", action="store_false", help="raw box encodings and class logits out (default)")
    p.add_argument("--out", default="artifacts", type=output_dir, help="output directory (default ./artifacts)")
    q = p.add_argument_group("int8 calibration (--precision int8)")
    q.add_argument("--calib-data", type=existing_dir, help="COCO-format dataset root whose images calibrate int8 activations")
    q.add_argument("--calib-split", default="train2017", help="never the split you evaluate on (default train2017)")
    q.add_argument("--num-images", type=count(1), default=128, help="calibration images (default 128)")
    q.add_argument("--observer", choices=["histogram", "minmax"], default="histogram")


def run(args):
    calibration = Calibration(args.calib_data, args.calib_split, args.num_images, args.observer) \
        if args.calib_data else None
    # a bad target, precision or missing calibration fails before the model loads
    target, precision = check_export(args.target, args.precision, calibration)
    if calibration is not None and not (precision == "int8" and target.int8.calibrated):
        raise QuantizationError(f"--calib-data is for int8 exports that calibrate, not {args.target} {precision}")
    get_entry(args.model)
    detector = create_model(args.model, weights=args.weights or "default")
    print(f"exporting {args.model} to {args.target} {precision}{' with NMS in the graph' if args.nms else ''} ...")
    for artifact in export(detector, args.target, precision, args.out, nms=args.nms, calibration=calibration):
        print(f"wrote {artifact.path} ({size_bytes(artifact.path) / 1e6:.1f} MB, {artifact.runtime}) "
              f"and {artifact.sidecar}")
        if not target.runs_here():
            s = target.verify(artifact.path)
            print(f"verified: {s['type']}, inputs {s['inputs']}, outputs {s['outputs']}, {s['precision']}"
                  + (f", NMS iou {s['nms']['iou']} confidence {s['nms']['confidence']} "
                     f"({s['nms']['labels']} labels)" if s["nms"] else ""))
            print(f"not run: {args.target} does not run on this machine; measure its drift with "
                  "`ssdmobile validate` where it runs")
    return 0
