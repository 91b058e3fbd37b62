"""SSDLite MobileNetV2 as the TensorFlow Object Detection API builds it (`ssdlite_mobilenet_v2`,
300x300), so its frozen graphs import weight for weight (see ssdmobile.models.tf_import).

Built from torchvision's MobileNetV2 (same block table, 1280-channel Conv_1) with three changes:
BatchNorm eps 1e-3 as in TF; TF "SAME" padding, which for a stride-2 3x3 conv on an even-sized input
pads only bottom/right (300->150, 150->75, 38->19, 10->5, 2->1): those convs get padding=0 behind an
explicit nn.ZeroPad2d, every other conv keeps torchvision's symmetric padding, which equals SAME
there; and the first feature map is taken inside block 13, after its expansion conv.

Every conv is followed by its own BatchNorm2d module, and Conv2d -> BatchNorm2d (-> ReLU6) are
adjacent children of one nn.Sequential (a ZeroPad2d, where present, comes before the Conv2d), so
torch.ao.quantization.fuse_modules and BN folding find them.
"""

from __future__ import annotations

import math
from functools import partial

import torch
from torch import Tensor, nn
from torchvision.models import mobilenet_v2
from torchvision.models.mobilenetv2 import InvertedResidual
from torchvision.ops.misc import Conv2dNormActivation

from ..detector import Detector
from ..spec import BoxCoder, ModelSpec, Postprocess, Preprocess

INPUT_SIZE = 300
FEATURE_MAP_SIZES = (19, 10, 5, 3, 2, 1)
ANCHORS_PER_LOCATION = (3, 6, 6, 6, 6, 6)
EXTRA_DEPTHS = (512, 256, 256, 128)  # TF layer_depth of the four extra feature maps
# TF's epsilon; momentum as torchvision's SSDlite (only matters when fine-tuning)
BN = partial(nn.BatchNorm2d, eps=1e-3, momentum=0.03)
FEATURE0_BLOCK = 14  # backbone[14] is TF's expanded_conv_13; its expansion output is feature 0


def _same_pad(in_size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TF "SAME": output ceil(in / stride); the odd pixel of padding goes after (bottom/right)."""
    out = math.ceil(in_size / stride)
    total = max((out - 1) * stride + kernel - in_size, 0)
    return total // 2, total - total // 2


def _conv_bn_relu6(
    cin: int, cout: int, kernel: int, stride: int, in_size: int, groups: int = 1
) -> nn.Sequential:
    before, after = _same_pad(in_size, kernel, stride)
    if before == after:
        return Conv2dNormActivation(
            cin,
            cout,
            kernel,
            stride,
            padding=before,
            groups=groups,
            norm_layer=BN,
            activation_layer=nn.ReLU6,
        )
    block = Conv2dNormActivation(
        cin,
        cout,
        kernel,
        stride,
        padding=0,
        groups=groups,
        norm_layer=BN,
        activation_layer=nn.ReLU6,
    )
    block.insert(0, nn.ZeroPad2d((before, after, before, after)))
    return block


def _tf_same_backbone() -> nn.Sequential:
    """torchvision MobileNetV2 `.features` (Conv, 17 inverted residuals, Conv_1) with TF padding.
    torchvision's InvertedResidual cannot take a padding, so where TF pads asymmetrically its
    depthwise Conv2dNormActivation is swapped for one led by a ZeroPad2d; the block's forward
    (plain `x + conv(x)` residual) is unchanged."""
    features = mobilenet_v2(weights=None, norm_layer=BN).features
    size = INPUT_SIZE
    for i, layer in enumerate(features):
        if isinstance(layer, InvertedResidual):
            dw_index = len(layer.conv) - 3  # [expand,] depthwise, project conv, project BN
            dw = layer.conv[dw_index][0]
            if _same_pad(size, 3, layer.stride) != (1, 1):
                layer.conv[dw_index] = _conv_bn_relu6(
                    dw.in_channels, dw.out_channels, 3, layer.stride, size, groups=dw.groups
                )
            size = math.ceil(size / layer.stride)
        elif i == 0:  # the first conv, 3x3 stride 2
            conv = layer[0]
            features[i] = _conv_bn_relu6(conv.in_channels, conv.out_channels, 3, 2, size)
            size = math.ceil(size / 2)
    assert size == FEATURE_MAP_SIZES[1]
    assert not features[FEATURE0_BLOCK].use_res_connect  # forward_features bypasses its forward
    return features


def _extra_block(cin: int, cout: int, in_size: int) -> nn.Sequential:
    """TF layer_19_{1,2}_Conv2d_*: 1x1 to cout/2, 3x3 depthwise stride 2, 1x1 to cout."""
    mid = cout // 2
    return nn.Sequential(
        _conv_bn_relu6(cin, mid, 1, 1, in_size),
        _conv_bn_relu6(mid, mid, 3, 2, in_size, groups=mid),
        _conv_bn_relu6(mid, cout, 1, 1, math.ceil(in_size / 2)),
    )


def _predictor(cin: int, cout: int, size: int) -> nn.Sequential:
    """SSDLite box predictor: 3x3 depthwise + BN + ReLU6, then a 1x1 conv with bias (torchvision's
    ssdlite `_prediction_block` layout)."""
    return nn.Sequential(_conv_bn_relu6(cin, cin, 3, 1, size, groups=cin), nn.Conv2d(cin, cout, 1))


class SSDLiteMobileNetV2Core(nn.Module):
    """Preprocessed [N, 3, 300, 300] in [-1, 1] -> (box_encodings [N, 1917, 4] as TF's (ty, tx, th,
    tw), class_logits [N, 1917, num_classes], column 0 background), anchors in TF's order (feature
    map, then row, column, anchor)."""

    def __init__(self, num_classes: int):
        super().__init__()
        self.num_classes = num_classes
        self.backbone = _tf_same_backbone()
        channels = [
            self.backbone[FEATURE0_BLOCK].conv[0].out_channels,
            self.backbone[-1].out_channels,
        ]
        self.extras = nn.ModuleList()
        for depth, size in zip(EXTRA_DEPTHS, FEATURE_MAP_SIZES[1:]):
            self.extras.append(_extra_block(channels[-1], depth, size))
            channels.append(depth)
        self.box_head = nn.ModuleList(
            _predictor(c, a * 4, s)
            for c, a, s in zip(channels, ANCHORS_PER_LOCATION, FEATURE_MAP_SIZES)
        )
        self.class_head = nn.ModuleList(
            _predictor(c, a * num_classes, s)
            for c, a, s in zip(channels, ANCHORS_PER_LOCATION, FEATURE_MAP_SIZES)
        )

    def forward_features(self, x: Tensor) -> list[Tensor]:
        """The six NCHW maps TF feeds to BoxPredictor_0..5."""
        features = []
        for i, layer in enumerate(self.backbone):
            if i == FEATURE0_BLOCK:
                x = layer.conv[0](x)
                features.append(x)
                for sub in layer.conv[1:]:
                    x = sub(x)
            else:
                x = layer(x)
        features.append(x)
        for extra in self.extras:
            x = extra(x)
            features.append(x)
        return features

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        features = self.forward_features(x)
        n = x.shape[0]
        # NCHW [N, A*k, H, W] -> [N, H*W*A, k]: TF's NHWC reshape order (row, column, anchor)
        box_encodings = torch.cat(
            [
                head(f).permute(0, 2, 3, 1).reshape(n, -1, 4)
                for head, f in zip(self.box_head, features)
            ],
            dim=1,
        )
        class_logits = torch.cat(
            [
                head(f).permute(0, 2, 3, 1).reshape(n, -1, self.num_classes)
                for head, f in zip(self.class_head, features)
            ],
            dim=1,
        )
        return box_encodings, class_logits


def tf_ssd_anchors(
    feature_map_sizes=FEATURE_MAP_SIZES,
    min_scale: float = 0.2,
    max_scale: float = 0.95,
    aspect_ratios=(1.0, 2.0, 0.5, 3.0, 0.3333),
) -> Tensor:
    """TF Object Detection API `create_ssd_anchors` (reduce_boxes_in_lowest_layer, interpolated
    1:1 box, base size 1, no clipping) -> [A, 4] normalized (cx, cy, w, h).

    The last ratio really is 0.3333 in TF's ssdlite configs, not 1/3: the fixture's anchors are
    not symmetric in x and y. Computed in float32 with TF's operation order, so the (ymin, xmin,
    ymax, xmax) corners match TF's to float rounding."""
    n = len(feature_map_sizes)
    scales = [min_scale + (max_scale - min_scale) * i / (n - 1) for i in range(n)] + [1.0]
    per_layer = []
    for layer, size in enumerate(feature_map_sizes):
        if layer == 0:
            specs = [(0.1, 1.0), (scales[0], 2.0), (scales[0], 0.5)]
        else:
            specs = [(scales[layer], r) for r in aspect_ratios]
            specs.append((math.sqrt(scales[layer] * scales[layer + 1]), 1.0))
        scale = torch.tensor([s for s, _ in specs], dtype=torch.float32)
        ratio_sqrt = torch.sqrt(torch.tensor([r for _, r in specs], dtype=torch.float32))
        heights, widths = scale / ratio_sqrt, scale * ratio_sqrt
        stride = 1.0 / torch.tensor(float(size), dtype=torch.float32)
        centers = torch.arange(size, dtype=torch.float32) * stride + 0.5 * stride
        cy, cx = (g[..., None] for g in torch.meshgrid(centers, centers, indexing="ij"))
        h, w = heights.expand(size, size, -1), widths.expand(size, size, -1)
        # TF stores corners; round-trip through them so centers and sizes carry TF's rounding
        ymin, xmin, ymax, xmax = cy - 0.5 * h, cx - 0.5 * w, cy + 0.5 * h, cx + 0.5 * w
        cxcywh = torch.stack([(xmin + xmax) / 2, (ymin + ymax) / 2, xmax - xmin, ymax - ymin], -1)
        per_layer.append(cxcywh.reshape(-1, 4))
    return torch.cat(per_layer)


# -- the TF pipeline around the core ---------------------------------------------------------------


def tf_od_api_spec(name: str, class_names) -> ModelSpec:
    """The TF Object Detection API ssdlite_mobilenet_v2 pipeline: TF1 bilinear resize and
    x * 2/255 - 1, (ty, tx, th, tw) encodings with scale factors 10, 10, 5, 5 and no clamp, sigmoid
    scores, per-class NMS at IoU 0.6, score threshold 1e-8, 100 per class and 100 in all."""
    return ModelSpec(
        name=name,
        preprocess=Preprocess(
            size=(INPUT_SIZE, INPUT_SIZE),
            resize="tf1_bilinear",
            mean=(0.5, 0.5, 0.5),
            std=(0.5, 0.5, 0.5),
        ),
        class_names=tuple(class_names),
        box_coder=BoxCoder(weights=(10.0, 10.0, 5.0, 5.0), order="yxhw", clamp=None),
        postprocess=Postprocess(
            score="sigmoid",
            score_thresh=1e-8,
            iou_thresh=0.6,
            topk_candidates=None,
            max_per_class=100,
            max_detections=100,
        ),
    )


def ssdlite_mobilenet_v2_tf(name: str, class_names) -> Detector:
    """A TF Object Detection API SSDLite-MobileNetV2 (random weights) predicting `class_names`
    (background first)."""
    return Detector(
        SSDLiteMobileNetV2Core(len(class_names)),
        tf_ssd_anchors(),
        tf_od_api_spec(name, class_names),
    )
