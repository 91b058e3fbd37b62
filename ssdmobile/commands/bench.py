"""`ssdmobile bench`: latency of an artifact in its own runtime (or of the eager model)."""

from ..fileio import write_json_atomic
from ..table import print_table
from ._args import (
    add_model,
    add_threads,
    add_weights,
    count,
    existing_file,
    existing_path,
    output_file,
)

NAME = "bench"
HELP = "latency of an exported artifact in its runtime, or of the eager model: median and p90"


def add_arguments(p):
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--artifact", type=existing_path, help="an exported artifact (its sidecar JSON beside it)"
    )
    add_model(src, help="registered model name: the float eager core")
    add_weights(
        p, help="checkpoint for --model (default: random init; latency does not depend on it)"
    )
    p.add_argument(
        "--image", type=existing_file, help="an image to feed (default: a fixed synthetic input)"
    )
    add_threads(p)
    p.add_argument("--runs", type=count(50), default=50, help="timed runs (at least 50)")
    p.add_argument("--warmup", type=count(0), default=10)
    p.add_argument("--json", type=output_file, help="also write the result here")


def _input(spec, image):
    import torch

    from ..data import load_image
    from ..detector import Detector

    if image:
        return Detector(torch.nn.Identity(), torch.zeros(1, 4), spec).preprocess(
            [load_image(image)]
        )
    g = torch.Generator().manual_seed(0)
    return torch.rand(1, 3, *spec.preprocess.size, generator=g) * 2 - 1


def run(args):
    import torch

    from ..bench import machine_info, measure
    from ..errors import RuntimeUnavailable
    from ..models import create_model
    from ..targets.artifacts import load_runner

    torch.set_num_threads(args.threads)
    if args.artifact:
        runner = load_runner(args.artifact, threads=args.threads)
        if getattr(runner, "reference", False):  # Core ML off macOS: a reference evaluator
            raise RuntimeUnavailable(
                f"{args.artifact}: Core ML runs only on macOS/iOS; here its ML Program is "
                "evaluated by a reference evaluator, whose time says nothing: bench it on a Mac "
                "or the device (ssdmobile device-report)"
            )
        x = _input(runner.sidecar.model_spec(), args.image)
        fn, name = (lambda: runner.run(x)), str(args.artifact)
    else:
        detector = create_model(args.model, weights=args.weights)
        x = _input(detector.spec, args.image)
        fn, name = (lambda: detector.forward_core(x)), f"{args.model} (eager float core)"
    with torch.no_grad():
        t = measure(fn, args.runs, args.warmup, args.threads)
    m = machine_info()
    print_table(
        ["artifact", "median", "p90", "runs", "threads", "machine"],
        [
            [
                name,
                f"{t.median_ms:.2f} ms",
                f"{t.p90_ms:.2f} ms",
                t.runs,
                t.threads,
                f"{m['cpu']} ({m['cores']} cores visible)",
            ]
        ],
    )
    if args.json:
        write_json_atomic(
            args.json, {"artifact": name, **t.to_dict(), "warmup": args.warmup, "machine": m}
        )
    return 0
