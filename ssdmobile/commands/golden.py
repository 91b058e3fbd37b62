from pathlib import Path

from ..errors import DatasetError, WeightsError
from ._args import add_model, add_weights, count, existing_dir, number, output_dir

NAME = "golden"
HELP = (
    "write golden files for the apps' post-processing tests: raw core outputs of real images and "
    "the reference detections (decode + per-class NMS) made of them"
)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}


def add_arguments(p):
    add_model(p, required=True)
    w = p.add_mutually_exclusive_group()
    add_weights(w, help="checkpoint path, or 'default' for the model's registered weights")
    w.add_argument(
        "--random-seed",
        type=int,
        default=None,
        help="no checkpoint: random weights and BN statistics from this seed (works offline)",
    )
    p.add_argument(
        "--data", required=True, type=existing_dir, help="dataset root with images/<split>/"
    )
    p.add_argument("--split", default="val2017")
    p.add_argument(
        "--num-images", type=count(1), default=4, help="the first N images, sorted by file name"
    )
    p.add_argument(
        "--override",
        action="append",
        default=[],
        metavar="GROUP.FIELD=VALUE",
        help="change the model spec before running, e.g. postprocess.score=sigmoid, "
        "box_coder.order=yxhw, postprocess.max_per_class=5 (JSON values; repeatable)",
    )
    p.add_argument(
        "--logit-scale",
        type=number(0.0, strict=True),
        default=1.0,
        help="multiply the class logits "
        "(keeps random-weight sigmoid scores off float32 saturation)",
    )
    p.add_argument(
        "--out",
        required=True,
        type=output_dir,
        help="output directory (generated files; do not commit them)",
    )


def run(args):
    import torch

    from ..golden import apply_overrides, write_golden
    from ..models import create_model, get_entry
    from ..models.weights import randomize_

    get_entry(args.model)
    images_dir = Path(args.data) / "images" / args.split
    if not images_dir.is_dir():
        raise DatasetError(f"no image directory {images_dir} (expected DIR/images/<split>/)")
    paths = sorted(p for p in images_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[
        : args.num_images
    ]
    if not paths:
        raise DatasetError(f"no images in {images_dir}")

    torch.set_num_threads(min(2, torch.get_num_threads()))
    if args.weights:
        detector = create_model(args.model, weights=args.weights)
        weights = detector.weights.path
    elif args.random_seed is not None:
        detector = randomize_(create_model(args.model, weights=None), args.random_seed).eval()
        weights = f"random(seed={args.random_seed})"
    else:
        raise WeightsError(
            "give --weights PATH|default, or --random-seed N for offline random weights"
        )
    if args.override:
        detector.spec = apply_overrides(detector.spec, args.override)
    manifest = write_golden(
        detector, paths, args.out, weights=weights, logit_scale=args.logit_scale
    )
    print(
        f"wrote golden files for {len(paths)} images of {images_dir} ({args.model}, "
        f"{weights}) to {manifest}"
    )
