"""DSSD (Fu et al., "DSSD: Deconvolutional Single Shot Detector", 2017) as a head option for an SSD
feature pyramid: a deconvolution path from the deepest map back up to the first, and a residual
prediction module before every box / class predictor. Written from the paper:

- deconvolution module (paper Fig. 3, "DM"): the deeper map goes through a learned deconvolution,
  a 3x3 conv and BatchNorm; the same-size SSD map through 3x3 conv, BatchNorm, ReLU, 3x3 conv,
  BatchNorm; the two are multiplied element-wise (the paper's best "Eltw Product"), then ReLU.
  The deconvolution is 2x2 stride 2 where the skip map is twice the size, and kxk stride 1 with
  k = skip - deep + 1 where it is not (1 -> 3 and 3 -> 5 cells at the top of the pyramid);
- prediction module (paper Fig. 2(c), the variant the paper found best): a residual block of three
  1x1 convs (our reading: each with BatchNorm, ReLU after the first two) plus a 1x1 conv + BatchNorm
  on the skip path, summed; the box and class 3x3 convs read its output.
The element-wise product and the sum go through FloatFunctional, so an eager int8 copy quantizes
them without rewriting the module (in float they are plain mul / add).

`dssd320_resnet50`: on NVIDIA's ResNet-50 SSD features (ssd_resnet50.py) at 320x320, a size that
suits phones (maps 40, 20, 10, 5, 3, 1; the paper's DSSD321 uses ResNet-101 at 321). Module
width 256 (the paper: 512), prediction module 128 -> 128 -> 256, both chosen for mobile cost.
Default boxes: NVIDIA's relative scales and aspect ratios on the 320 grid, box coder and NMS as
NVIDIA's SSD. NO TRAINED DSSD WEIGHTS EXIST: every number measured on it (latency, size, raw
output drift of an export or int8 copy) is on randomized weights; its AP means nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.ao.nn.quantized import FloatFunctional
from torchvision.ops.misc import Conv2dNormActivation

from ..detector import Detector
from ..spec import ModelSpec
from .registry import register_model
from .ssd_resnet50 import (
    ASPECT_RATIOS,
    BOX_CODER,
    COCO_80_CLASSES,
    POSTPROCESS,
    PREPROCESS,
    SCALES,
    ResNetSSDFeatures,
    _flatten_heads,
    boxes_per_location,
    default_boxes,
)

SIZE = 320


def _conv_bn(cin: int, cout: int, kernel: int, relu: bool) -> Conv2dNormActivation:
    return Conv2dNormActivation(cin, cout, kernel, activation_layer=nn.ReLU if relu else None)


class DeconvModule(nn.Module):
    def __init__(
        self, deep_channels: int, skip_channels: int, channels: int, deep_size: int, skip_size: int
    ):
        super().__init__()
        if skip_size == 2 * deep_size:
            kernel, stride = 2, 2
        elif skip_size > deep_size:
            kernel, stride = skip_size - deep_size + 1, 1
        else:
            raise ValueError(f"cannot deconvolve {deep_size} cells up to {skip_size}")
        self.deep = nn.Sequential(
            nn.ConvTranspose2d(deep_channels, channels, kernel, stride),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
        )
        self.skip = nn.Sequential(
            _conv_bn(skip_channels, channels, 3, relu=True),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
        )
        self.product = FloatFunctional()
        self.relu = nn.ReLU()

    def forward(self, deep: Tensor, skip: Tensor) -> Tensor:
        return self.relu(self.product.mul(self.deep(deep), self.skip(skip)))


class PredictionModule(nn.Module):
    def __init__(self, cin: int, mid: int, cout: int):
        super().__init__()
        self.body = nn.Sequential(
            _conv_bn(cin, mid, 1, relu=True),
            _conv_bn(mid, mid, 1, relu=True),
            _conv_bn(mid, cout, 1, relu=False),
        )
        self.shortcut = _conv_bn(cin, cout, 1, relu=False)
        self.add = FloatFunctional()

    def forward(self, x: Tensor) -> Tensor:
        return self.add.add(self.body(x), self.shortcut(x))


class DSSDCore(nn.Module):
    """features (x -> list of maps, shallow to deep) -> deconvolution path -> prediction modules ->
    (box_encodings [N, A, 4], class_logits [N, A, C]) in NVIDIA's box-major order per map."""

    def __init__(
        self,
        features: nn.Module,
        channels: Sequence[int],
        sizes: Sequence[int],
        aspect_ratios: Sequence[Sequence[float]],
        num_classes: int,
        width: int = 256,
    ):
        super().__init__()
        self.features = features
        self.num_classes = num_classes
        # deconv[i] makes the map at level i from the map at level i + 1 (deepest first at run time)
        self.deconv = nn.ModuleList(
            DeconvModule(
                channels[-1] if i == len(sizes) - 2 else width,
                channels[i],
                width,
                sizes[i + 1],
                sizes[i],
            )
            for i in range(len(sizes) - 1)
        )
        # the deepest level is predicted from the SSD map itself, every
        # other from a deconvolution output
        self.predict = nn.ModuleList(
            PredictionModule(channels[-1] if i == len(sizes) - 1 else width, width // 2, width)
            for i in range(len(sizes))
        )
        nd = boxes_per_location(aspect_ratios)
        self.loc = nn.ModuleList(nn.Conv2d(width, n * 4, 3, padding=1) for n in nd)
        self.conf = nn.ModuleList(nn.Conv2d(width, n * num_classes, 3, padding=1) for n in nd)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        maps = self.features(x)
        decoded = [maps[-1]]
        for i in range(len(maps) - 2, -1, -1):
            decoded.insert(0, self.deconv[i](decoded[0], maps[i]))
        predicted = [pm(d) for pm, d in zip(self.predict, decoded)]
        return _flatten_heads(predicted, self.loc, self.conf, self.num_classes)


def dssd_detector(
    name: str, features: nn.Module, size: int, class_names: Sequence[str], width: int = 256
) -> Detector:
    """A DSSD head on `features` (x -> list of maps) at a square input `size`, with NVIDIA's
    relative default-box scales and aspect ratios on whatever grid the features give."""
    with torch.no_grad():
        maps = features.eval()(torch.zeros(1, 3, size, size))
    channels, sizes = [m.shape[1] for m in maps], [m.shape[-1] for m in maps]
    core = DSSDCore(features, channels, sizes, ASPECT_RATIOS, len(class_names), width).eval()
    rel_scales = [s / 300 for s in SCALES]  # NVIDIA's scales are pixels of a 300x300 input
    anchors = default_boxes(1.0, sizes, [1.0 / f for f in sizes], rel_scales, ASPECT_RATIOS)
    spec = ModelSpec(
        name=name,
        preprocess=dataclasses.replace(PREPROCESS, size=(size, size)),
        class_names=tuple(class_names),
        box_coder=BOX_CODER,
        postprocess=POSTPROCESS,
    )
    return Detector(core, anchors, spec)


@register_model(
    "dssd320_resnet50",
    input_size=(SIZE, SIZE),
    num_params=32_860_214,
    description="DSSD head (deconvolution + residual prediction modules) on NVIDIA's ResNet-50 SSD "
    "features, "
    "320x320, 81 classes; NO trained weights exist: latency, size and raw-output drift only",
)
def dssd320_resnet50(num_classes: int = 81, width: int = 256) -> Detector:
    names = (
        COCO_80_CLASSES
        if num_classes == 81
        else ("background", *(f"class{i}" for i in range(1, num_classes)))
    )
    return dssd_detector("dssd320_resnet50", ResNetSSDFeatures(), SIZE, names, width)
