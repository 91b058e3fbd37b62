"""`ssdmobile quantize`: post-training int8 for one or more targets, calibrated on a training split."""
import time

NAME = "quantize"
HELP = ("post-training int8 quantization (per-channel symmetric weights, asymmetric activations) for "
        "executorch (PT2E + XNNPACK), onnx (onnxruntime QDQ), torchscript (eager qnnpack), coreml (int8 weights)")
TARGETS = ("executorch", "onnx", "torchscript", "coreml")


def add_arguments(p):
    p.add_argument("--model", required=True, help="registered model name (see `ssdmobile models`)")
    p.add_argument("--weights", help="checkpoint path (default: the model's registered weights)")
    p.add_argument("--calib-data", required=True, help="COCO-format dataset root for calibration")
    p.add_argument("--split", default="train2017", help="calibration split (never the one you report AP on)")
    p.add_argument("--num-images", type=int, default=128, help="calibration images (default 128)")
    p.add_argument("--target", nargs="+", default=["executorch"], choices=TARGETS)
    p.add_argument("--observer", default="histogram", choices=("histogram", "minmax"),
                   help="activation range: histogram (L2-optimal clipping; onnx: percentile 99.999) or minmax")
    p.add_argument("--float-modules", nargs="*", default=[],
                   help="executorch: module names kept in float (e.g. from `ssdmobile sensitivity`)")
    p.add_argument("--nms", action="store_true", help="NMS in the graph (executorch, onnx, torchscript)")
    p.add_argument("--out", default="artifacts", help="output directory")
    p.add_argument("--eval-data", help="after quantizing, evaluate each runnable artifact (and the float model) "
                                       "on this COCO-format dataset")
    p.add_argument("--eval-split", default="val2017")
    p.add_argument("--classes", nargs="+", help="classes to evaluate (default: all the model predicts)")
    p.add_argument("--no-progress", action="store_true")


def run(args):
    from ..models import create_model
    from ..quant.ptq import QuantizationError, calibration_inputs, calibration_record, export_executorch_int8

    if args.eval_data and args.eval_split == args.split and args.eval_data == args.calib_data:
        raise QuantizationError("the evaluation split is the calibration split; evaluate on held-out images")
    det = create_model(args.model, args.weights or "default")
    t0 = time.perf_counter()
    inputs = calibration_inputs(det, args.calib_data, args.split, args.num_images)
    record = calibration_record(args.calib_data, args.split, inputs, args.observer)
    print(f"calibrating on {len(inputs)} images of {args.calib_data} {args.split} ({args.observer} observer)")
    progress = not args.no_progress
    paths = []
    for target in args.target:
        t = time.perf_counter()
        if target == "executorch":
            path = export_executorch_int8(det, inputs, args.out, observer=args.observer, nms=args.nms,
                                          float_modules=args.float_modules, record=record, progress=progress)
        elif target == "onnx":
            from ..quant.onnx_int8 import export_onnx_int8

            path = export_onnx_int8(det, inputs, args.out, observer=args.observer, nms=args.nms, record=record)
        elif target == "torchscript":
            from ..quant.eager import export_torchscript_int8

            path = export_torchscript_int8(det, inputs, args.out, observer=args.observer, nms=args.nms,
                                           record=record, progress=progress)
        else:
            from ..quant.coreml_int8 import export_coreml_int8

            if args.nms:
                print("coreml int8: the NMS pipeline is not quantized; writing raw outputs")
            path = export_coreml_int8(det, args.out, record=record)
        print(f"{target}: wrote {path} ({time.perf_counter() - t:.0f} s)")
        paths.append((target, path))
    if args.eval_data:
        _evaluate(det, paths, args)
    print(f"done in {time.perf_counter() - t0:.0f} s")


def _evaluate(det, paths, args):
    from ..data import open_dataset
    from ..evaluate import evaluate_model
    from ..runtime import RuntimeUnavailable, evaluate_artifact
    from ..table import print_table

    ds = open_dataset(args.eval_data, args.eval_split)
    progress = not args.no_progress
    ref = evaluate_model(det, ds, args.classes, progress=progress)
    rows = [["float eager", "fp32", f"{ref.ap:.4f}", "-", f"{ref.ap50:.4f}"]]
    for target, path in paths:
        try:
            r = evaluate_artifact(path, ds, args.classes, threads=2, progress=progress)
            rows.append([target, "int8", f"{r.ap:.4f}", f"{r.ap - ref.ap:+.4f}", f"{r.ap50:.4f}"])
        except RuntimeUnavailable as e:
            rows.append([target, "int8", "not run", str(e)[:40], "-"])
    print(f"AP on {len(ds)} images of {args.eval_data} {args.eval_split}:")
    print_table(["artifact", "precision", "AP", "dAP", "AP50"], rows)
