"""Write a randomized checkpoint with realistic BatchNorm statistics and data-aligned filters
(random_checkpoints.realistic_random_) for a model with no trained weights here, e.g. to
pass as --weights to `ssdmobile sensitivity`, `quantize`, `export` or `validate`:

    python benchmarks/make_random_checkpoint.py --model ssdlite320_mobilenet_v3_large \
        --out runs/ssdlite320_mobilenet_v3_large_random.pth

Its outputs detect nothing: measure agreement with float on it (SQNR, matching raw outputs), not AP.
--trained-like (SSDlite320 MobileNetV3 only) then sets its last classification convs so background
dominates as in a trained detector (bench_nms.trained_like_, fitted on the same images to the real
person detector's share of anchors above each score threshold): the number of candidates NMS sees is
then a trained model's, not the worst case of a random one (every score above the threshold).
"""

import argparse
from pathlib import Path

import torch

from ssdmobile.models import create_model
from ssdmobile.quant.ptq import calibration_inputs

from _shared import COCO128
from bench_nms import trained_like_
from random_checkpoints import realistic_random_


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--data", default=str(COCO128), help="COCO-format dataset root (its train2017 images)"
    )
    ap.add_argument(
        "--images", type=int, default=8, help="train2017 images for the statistics (default 8)"
    )
    ap.add_argument(
        "--trained-like",
        action="store_true",
        help="background-dominated scores like a trained detector's (SSDlite320 MobileNetV3)",
    )
    args = ap.parse_args()
    torch.set_num_threads(2)
    det = create_model(args.model, None)
    inputs = calibration_inputs(det, args.data, "train2017", args.images)
    realistic_random_(det, inputs, seed=args.seed)
    if args.trained_like:
        trained_like_(det.eval(), images=inputs)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # checkpoints hold the core's state_dict (models.load_into)
    torch.save(det.core.state_dict(), out)
    print(
        f"wrote {out} ({args.model}, seed {args.seed}, statistics from the first "
        f"{args.images} train2017 images "
        f"of {args.data}{'; trained-like scores' if args.trained_like else ''}; random "
        "weights: agreement only, no AP)"
    )


if __name__ == "__main__":
    main()
