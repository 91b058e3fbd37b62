"""`ssdmobile export`: one target, one artifact plus its sidecar JSON."""

from ..models import create_model, get_entry

NAME = "export"
HELP = "export a detector to torchscript, onnx, coreml or executorch (artifact + sidecar JSON)"
DEFAULT_MODEL = "ssdlite_mobilenet_v2_person"


def add_arguments(p):
    # choices are not listed in argparse: an unknown target is the library's typed error, one line
    p.add_argument("--target", required=True, help="torchscript, onnx, coreml or executorch")
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"registered model name (default {DEFAULT_MODEL})")
    p.add_argument("--weights", help="checkpoint path (default: the model's registered weights)")
    p.add_argument("--precision", help="fp32, fp16 or int8 (default: fp32; fp16 for coreml)")
    p.add_argument("--nms", action="store_true", default=False, help="NMS in the graph (fixed-size detections out)")
    p.add_argument("--no-nms", dest="nms", action="store_false", help="raw box encodings and class logits out (default)")
    p.add_argument("--out", default="artifacts", help="output directory (default ./artifacts)")
    q = p.add_argument_group("int8 calibration (--precision int8)")
    q.add_argument("--calib-data", help="COCO-format dataset root whose images calibrate int8 activations")
    q.add_argument("--calib-split", default="train2017", help="never the split you evaluate on (default train2017)")
    q.add_argument("--num-images", type=int, default=128, help="calibration images (default 128)")
    q.add_argument("--observer", choices=["histogram", "minmax"], default="histogram")


def run(args):
    from ..export import export, get_target
    from ..export._common import check_precision, prepare_out_dir

    mod = get_target(args.target)  # bad target / precision / directory fail before the model loads
    precision = args.precision or mod.DEFAULT_PRECISION
    check_precision(args.target, precision, mod.PRECISIONS)
    prepare_out_dir(args.out)
    get_entry(args.model)
    detector = create_model(args.model, weights=args.weights or "default")
    print(f"exporting {args.model} to {args.target} {precision}{' with NMS in the graph' if args.nms else ''} ...")
    calibration = {"calib_data": args.calib_data, "split": args.calib_split, "num_images": args.num_images,
                   "observer": args.observer}
    path = export(detector, args.target, precision, args.out, nms=args.nms, calibration=calibration)
    size = path.stat().st_size if path.is_file() else sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    print(f"wrote {path} ({size / 1e6:.1f} MB) and {path.with_suffix('.json')}")
    if args.target == "torchscript":
        lite = path.with_name(path.stem + "_lite.ptl")
        print(f"wrote {lite} (lite interpreter) and {lite.with_suffix('.json')}")
    if args.target == "coreml":
        from ..export.coreml import check_spec

        s = check_spec(path)
        print(f"spec checked: {s['type']}, inputs {s['inputs']}, outputs {s['outputs']}, {s['precision']}"
              + (f", NMS iou {s['nms']['iou']} confidence {s['nms']['confidence']} "
                 f"({s['nms']['labels']} labels)" if s["nms"] else ""))
        print("not run: Core ML predicts on macOS only; measure its drift with `ssdmobile validate` on a Mac")
    return 0
