"""Randomized checkpoints with realistic BatchNorm statistics, one per registered model (default:
all of them), for `ssdmobile validate --weights` and the benchmarks where no trained weights are
reachable offline (torchvision's and NVIDIA's COCO files need a download; DSSD and the VOC models
have none at all). randomize_(seed), then BatchNorm running statistics re-estimated on real
coco128 train2017 images (train mode, momentum=None: reestimate_batchnorm_ below); models without
BatchNorm (the VGG16 ones) are randomized only.

This module also holds the random checkpoints that behave like trained ones under int8
(realistic_random_). The benchmarks and the tests use them (pytest puts benchmarks/ on sys.path:
pyproject.toml's pythonpath); the ssdmobile package does not, so they are not in it.

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
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.optim.swa_utils import update_bn

from ssdmobile.data import open_dataset
from ssdmobile.fuse import count_batchnorms
from ssdmobile.models import create_model, list_models
from ssdmobile.models.weights import randomize_

from _shared import COCO128

# exponent of the input covariance that random filters are drawn from: 0 is white (plain
# randomize_), 1 matches the data fully; 0.4 puts the randomized person detector's int8 output SQNR
# where its real trained weights put it (see realistic_random_)
ALIGNMENT = 0.4


def _data_aligned_weight(
    conv: torch.nn.Conv2d, x: torch.Tensor, g: torch.Generator
) -> torch.Tensor:
    """Random filters w = z @ cov^(ALIGNMENT/2), cov the covariance of the conv's input patches (per
    group: a depthwise filter sees its own channel), scaled to unit output standard deviation."""
    # [N, C*kh*kw, L]
    patches = F.unfold(x, conv.kernel_size, conv.dilation, conv.padding, conv.stride)
    groups, dim = conv.groups, patches.shape[1] // conv.groups
    patches = (
        patches.view(x.shape[0], groups, dim, -1)
        .permute(1, 0, 3, 2)
        .reshape(groups, -1, dim)
        .double()
    )
    patches = patches - patches.mean(1, keepdim=True)
    samples = patches.shape[1]
    cov = patches.transpose(1, 2) @ patches / samples
    # shrink towards isotropic where there are few samples for the
    # dimension (1x1 maps, squeeze-excite)
    shrink = dim / (dim + samples)
    eye = torch.eye(dim, dtype=cov.dtype)
    cov = (1 - shrink) * cov + shrink * cov.diagonal(dim1=1, dim2=2).mean(1)[:, None, None] * eye
    evals, evecs = torch.linalg.eigh(cov)
    root = evecs @ torch.diag_embed(evals.clamp(min=0) ** (ALIGNMENT / 2)) @ evecs.transpose(1, 2)
    w = (
        torch.randn(groups, conv.out_channels // groups, dim, generator=g, dtype=torch.float64)
        @ root
    )
    out_var = torch.einsum("god,gde,goe->go", w, cov, w).clamp(min=1e-12)
    return (w / out_var.sqrt()[..., None]).reshape(conv.weight.shape).to(conv.weight.dtype)


@torch.no_grad()
def realistic_random_(detector, images, seed: int = 0):
    """A random checkpoint whose activations and quantization behaviour look like a trained
    network's, for models with no trained weights here (MobileNetV3). `images`: preprocessed
    [1, 3, H, W] tensors of a training split (e.g. 8 coco128 train2017 images), used as one batch
    (SSDlite's last feature map is 1x1: train-mode BatchNorm needs more than one value per channel).

    1. randomize_(detector, seed), then BatchNorm scales drawn in [0.5, 1.5];
    2. one train-mode pass over `images` in which each conv, just before it runs, redraws its
       filters from the covariance of the input it actually receives (w = z @ cov^0.2, z Gaussian)
       and every BatchNorm re-estimates its running statistics (momentum=None: the cumulative
       average); then a second such pass (torch.optim.swa_utils.update_bn) with the final weights.
       No gradient, no weight update from a loss.

    Why not only re-estimate BatchNorm statistics: randomize_ draws running means and variances
    unrelated to the activations that reach each BatchNorm, so activation ranges look like no
    trained network's; re-estimating them from real images fixes the ranges, but white random
    filters on real (smooth, correlated) feature maps cancel most of the signal and pass the
    noise, and the BatchNorm after them scales both back up, layer after layer. Measured (4 val2017
    images, 16 train2017 calibration images): with statistics re-estimated alone, the person
    detector's int8 output SQNR is ~0 dB for both qnnpack and XNNPACK (its real weights: 24.9 and
    19.6 dB) and 40 dB of input noise comes out at ~3 dB: quantization comparisons on such a
    checkpoint say nothing. Trained filters respond to the directions their input varies in;
    drawing them from the input covariance (exponent ALIGNMENT, chosen so the randomized person
    detector's qnnpack int8 SQNR, 25.5 dB, lands on its real weights') does the same.
    The weights are still random: outputs detect nothing, so report agreement (SQNR, matching
    raw outputs) on such checkpoints, never AP."""
    randomize_(detector, seed)
    core, batch = detector.core, [torch.cat(list(images))]
    g = torch.Generator().manual_seed(seed + 1)
    for m in core.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.weight is not None:
            m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)

    def redraw(conv, args):
        conv.weight.copy_(_data_aligned_weight(conv, args[0], g))

    hooks = [
        m.register_forward_pre_hook(redraw)
        for m in core.modules()
        if isinstance(m, torch.nn.Conv2d)
    ]
    threads = torch.get_num_threads()
    # LAPACK's eigh on these small matrices runs 4x slower on 2 threads than
    # on 1 (measured, 2 shared cores)
    torch.set_num_threads(1)
    try:
        update_bn(batch, core)
    finally:
        torch.set_num_threads(threads)
        for h in hooks:
            h.remove()
    update_bn(batch, core)
    return detector.eval()


@torch.no_grad()
def reestimate_batchnorm_(
    model: torch.nn.Module, inputs: Sequence[torch.Tensor]
) -> torch.nn.Module:
    """BatchNorm running statistics recomputed from real inputs, everything else unchanged: one
    train-mode pass over `inputs` concatenated into one batch, with momentum=None (the plain
    average; torch.optim.swa_utils.update_bn). After randomize_ the statistics are random numbers
    unrelated to the activations that reach each BatchNorm; re-estimated on real images (a training
    split) they give activation ranges of the kind a trained network has, which is what fusion,
    export and int8 calibration then see. One batch because maps of 1x1 cells need more than one
    value per channel in train mode. Returns the model in eval mode."""
    update_bn([torch.cat(list(inputs))], model)
    return model.eval()


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
