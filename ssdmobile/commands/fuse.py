"""`ssdmobile fuse`: fold BatchNorm into the convs, check it on real images, time it."""

from ..fileio import atomic_write_bytes
from ..table import print_table
from ._args import add_model, add_threads, add_weights, count, existing_dir, output_file

NAME = "fuse"
HELP = (
    "fold every Conv2d+BatchNorm2d into the conv; report max output change on real "
    "images and eager speed-up"
)


def add_arguments(p):
    add_model(p, required=True)
    add_weights(p)
    p.add_argument(
        "--data",
        type=existing_dir,
        help="COCO-format dataset root to check the fold on (images/<split>)",
    )
    p.add_argument("--split", default="val2017")
    p.add_argument("--num-images", type=count(1), default=8)
    add_threads(p)
    p.add_argument(
        "--runs", type=count(0), default=20, help="timed runs for the eager latency (0: skip)"
    )
    p.add_argument(
        "--out",
        type=output_file,
        help="write the fused state_dict here (.pth); load it with "
        "ssdmobile.fuse.load_fused(model_name, path)",
    )


def run(args):
    import torch

    from ..bench import measure_interleaved
    from ..data import open_dataset
    from ..fuse import fuse_detector
    from ..models import create_model

    torch.set_num_threads(args.threads)
    det = create_model(args.model, args.weights or "default")
    fused, report = fuse_detector(det)
    print(report)
    h, w = det.spec.preprocess.size
    if args.data:
        ds = open_dataset(args.data, args.split, args.num_images)
        x = det.preprocess([s.image for s in ds])
        what = f"{len(ds)} images of {args.data} {args.split}"
    else:
        x = torch.rand(2, 3, h, w, generator=torch.Generator().manual_seed(0)) * 2 - 1
        what = "2 random inputs (pass --data for real images)"
    with torch.no_grad():
        ref, got = det.core(x), fused.core(x)
    rows = [
        [name, f"{(a - b).abs().max().item():.2e}", f"{a.abs().max().item():.2f}"]
        for name, a, b in zip(("box_encodings", "class_logits"), ref, got)
    ]
    print(f"float32 outputs, fused vs unfused, on {what}:")
    print_table(["output", "max abs diff", "max abs value"], rows)
    if args.runs:
        x1 = x[:1]
        with torch.inference_mode():  # round-robin: machine noise hits both alike
            t = measure_interleaved(
                {"unfused": lambda: det.core(x1), "fused": lambda: fused.core(x1)},
                args.runs,
                3,
                args.threads,
            )
        t0, t1 = t["unfused"], t["fused"]
        print(f"eager core latency, 1 image, {args.threads} threads, median of {args.runs}:")
        print_table(
            ["model", "median ms", "p90 ms"],
            [
                ["unfused", f"{t0.median_ms:.1f}", f"{t0.p90_ms:.1f}"],
                ["fused", f"{t1.median_ms:.1f}", f"{t1.p90_ms:.1f}"],
            ],
        )
        print(f"speed-up {t0.median_ms / t1.median_ms:.2f}x")
    if args.out:
        out = args.out
        atomic_write_bytes(out, lambda buffer: torch.save(fused.core.state_dict(), buffer))
        print(f"wrote {out}")
