"""Randomized checkpoints with realistic BatchNorm statistics, one per registered model (default:
all of them), for `ssdmobile validate --weights` and the benchmarks where no trained weights are
reachable offline (torchvision's and NVIDIA's COCO files need a download; DSSD and the VOC models
have none at all). randomize_(seed), then BatchNorm running statistics re-estimated on real
coco128 train2017 images (train mode, momentum=None:
ssdmobile.models.weights.reestimate_batchnorm_); models without BatchNorm (the
VGG16 ones) are randomized only.

16 images by default, not 2: the deepest SSD maps are 1x1 (3x3 at 320), so each channel's variance
there is estimated from one value per image, and with 2 images a different image comes out of
DSSD's heads at ~1e4 instead of ~3.

Writes <out>/<model>_random_bn.pth (the core's state_dict). Numbers measured on these checkpoints
are agreement (raw-output drift, matching detections), size and latency: their AP means nothing.

    python benchmarks/random_checkpoints.py [--out runs/family/checkpoints] [--models ...]
                                            [--images 16]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from ssdmobile.data import open_dataset
from ssdmobile.fuse import count_batchnorms
from ssdmobile.models import create_model, list_models
from ssdmobile.models.weights import randomize_, reestimate_batchnorm_

from _shared import COCO128


def random_bn_detector(name: str, images: int = 16, seed: int = 0):
    """The model, randomized, BatchNorm statistics from `images` train2017 images (never val2017,
    which validate scores)."""
    det = randomize_(create_model(name), seed)
    if count_batchnorms(det.core):
        ds = open_dataset(COCO128, "train2017", images)
        reestimate_batchnorm_(det.core, [det.preprocess([s.image]) for s in ds])
    return det.eval()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/family/checkpoints")
    p.add_argument("--models", nargs="+", default=[e.name for e in list_models()])
    p.add_argument(
        "--images", type=int, default=16, help="train2017 images for the BatchNorm statistics"
    )
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.set_num_threads(2)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in args.models:
        det = random_bn_detector(name, args.images, args.seed)
        path = out / f"{name}_random_bn.pth"
        torch.save(det.core.state_dict(), path)
        bn = (
            f"BatchNorm statistics from {args.images} train2017 images"
            if count_batchnorms(det.core)
            else "no BatchNorm"
        )
        print(f"{name}: {path} (randomized, seed {args.seed}; {bn})", flush=True)


if __name__ == "__main__":
    main()
