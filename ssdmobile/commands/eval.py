import dataclasses
import time
from pathlib import Path

from ..fileio import write_json_atomic
from ..table import print_table
from ._args import (
    add_classes,
    add_max_images,
    add_model,
    add_no_progress,
    add_weights,
    count,
    existing_dir,
    existing_path,
    output_file,
)

NAME = "eval"
HELP = (
    "COCO AP (pycocotools) of a model or an exported artifact on a COCO-format or VOC dataset; "
    "images that cannot be decoded are refused up front, each named"
)


def add_arguments(p):
    src = p.add_mutually_exclusive_group(required=True)
    add_model(src)
    src.add_argument(
        "--artifact", type=existing_path, help="an exported artifact, run in its own runtime"
    )
    add_weights(p)
    p.add_argument(
        "--data",
        required=True,
        type=existing_dir,
        help="dataset root (COCO: images/<split>, annotations/instances_<split>.json)",
    )
    p.add_argument("--split", default="val2017")
    add_classes(p)
    p.add_argument(
        "--resize",
        choices=["bilinear", "tf1_bilinear"],
        help="override the model's resize (e.g. half-pixel bilinear for a TF model, to measure its "
        "cost)",
    )
    add_max_images(p)
    p.add_argument("--batch-size", type=count(1), default=8)
    p.add_argument(
        "--out", type=output_file, help="result JSON (default: runs/eval/<model>_<split>.json)"
    )
    add_no_progress(p)


def run(args):
    from ..data import open_dataset, refuse_undecodable
    from ..evaluate import evaluate_model
    from ..models import create_model, get_entry
    from ..targets.artifacts import evaluate_artifact

    if args.model:
        get_entry(args.model)  # an unknown name fails before any work
    dataset = open_dataset(args.data, args.split, args.max_images)
    # AP is over every image of the split: an undecodable one is refused up front, all named
    refuse_undecodable(map(dataset.path, dataset.image_ids), "AP is over every image of the split")
    t0 = time.perf_counter()
    if args.artifact:
        result = evaluate_artifact(
            args.artifact, dataset, args.classes, progress=not args.no_progress
        )
        name, source = Path(args.artifact).stem, str(args.artifact)
    else:
        detector = create_model(args.model, weights=args.weights or "default")
        if args.resize:
            detector.spec = detector.spec.replace(
                preprocess=dataclasses.replace(detector.spec.preprocess, resize=args.resize)
            )
        result = evaluate_model(
            detector, dataset, args.classes, args.batch_size, not args.no_progress
        )
        name, source = args.model, detector.weights.path
    print(result.summary)
    print_table(["class", "AP"], [[c, f"{ap:.4f}"] for c, ap in result.per_class.items()])
    print(
        f"{name}: AP {result.ap:.4f}  AP50 {result.ap50:.4f}  on {result.num_images} images of "
        f"{args.data} {args.split} ({time.perf_counter() - t0:.1f} s)"
    )
    out = args.out or output_file(str(Path("runs/eval") / f"{name}_{args.split}.json"))
    write_json_atomic(
        out,
        {
            "model": name,
            "weights": source,
            "data": str(args.data),
            "split": args.split,
            **result.to_dict(),
        },
    )
    print(f"wrote {out}")
