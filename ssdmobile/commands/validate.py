"""`ssdmobile validate`: every target x precision, run in its own runtime on real images, one table."""
import sys

NAME = "validate"
HELP = ("export every target and precision, run each artifact on real images, and report AP drift, "
        "raw-output difference and latency against the float eager model (report.md/.json/.png)")


def add_arguments(p):
    p.add_argument("--model", default="ssdlite_mobilenet_v2_person")
    p.add_argument("--weights", help="checkpoint path (default: the model's registered weights)")
    p.add_argument("--data", required=True, help="COCO-format dataset root")
    p.add_argument("--split", default="val2017")
    p.add_argument("--max-images", type=int, help="only the first N images")
    p.add_argument("--classes", nargs="+", help="class names for AP (default: all the model predicts)")
    p.add_argument("--targets", nargs="*", help="default: all (torchscript onnx coreml executorch); none: only --artifacts")
    p.add_argument("--artifacts", nargs="+", default=[], metavar="PATH",
                   help="already-exported artifacts of this model (a QAT .pte, a --float-fallback export) to "
                        "measure in the same run and table")
    p.add_argument("--precisions", nargs="+",
                   help="default: each target's own (fp32; fp16 for coreml); e.g. fp32 fp16 int8 for every "
                        "combination (one a target lacks shows as 'not available')")
    p.add_argument("--nms", choices=["off", "on", "both"], default="both", help="NMS in the graph (default both)")
    p.add_argument("--max-drift", type=float, help="exit 1 when an artifact's |ΔAP| exceeds this (a CI gate)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=50, help="timed runs per artifact (at least 50)")
    p.add_argument("--out", default="runs/validate", help="report directory (artifacts go to OUT/artifacts)")
    p.add_argument("--no-progress", action="store_true")
    q = p.add_argument_group("int8 calibration (images of --data, another split than --split)")
    q.add_argument("--calib-split", default="train2017")
    q.add_argument("--calib-images", type=int, default=128)
    q.add_argument("--observer", choices=["histogram", "minmax"], default="histogram")


def run(args):
    from ..data import open_dataset
    from ..errors import SSDMobileError
    from ..export import get_target
    from ..export._common import prepare_out_dir
    from ..models import create_model, get_entry
    from ..report import markdown, write_report
    from ..validate import validate

    if args.runs < 50:
        raise SSDMobileError("--runs must be at least 50")
    for t in args.targets or []:
        get_target(t)
    get_entry(args.model)
    prepare_out_dir(args.out)
    dataset = open_dataset(args.data, args.split, args.max_images)
    detector = create_model(args.model, weights=args.weights or "default")
    modes = {"off": (False,), "on": (True,), "both": (False, True)}[args.nms]
    result = validate(detector, dataset, args.out, targets=args.targets, precisions=args.precisions,
                      nms_modes=modes, classes=args.classes, threads=args.threads, runs=args.runs,
                      max_drift=args.max_drift, progress=not args.no_progress,
                      log=lambda s: print(s, file=sys.stderr, flush=True),
                      calibration={"calib_data": args.data, "split": args.calib_split,
                                   "num_images": args.calib_images, "observer": args.observer},
                      artifacts=args.artifacts)
    paths = write_report(result, args.out)
    print(markdown(result))
    print(f"wrote {paths['md']}, {paths['json']}, {paths['png']}")
    bad = [r for r in result["rows"] if r.status.startswith(("failed", "DRIFT"))]
    if bad:
        print(f"validate: {len(bad)} artifact(s) failed or drifted: "
              + "; ".join(f"{r.label}: {r.status}" for r in bad), file=sys.stderr)
        return 1
    return 0
