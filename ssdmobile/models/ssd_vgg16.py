"""SSD300 VGG16 as torchvision builds it (`torchvision.models.detection.ssd300_vgg16`), from
torchvision's own modules: vgg16's conv layers (`torchvision.models.vgg.make_layers(cfgs["D"])`),
`_vgg_extractor` (SSDFeatureExtractorVGG: conv4_3 L2-normalized and rescaled by a learned
per-channel `scale_weight`, the dilated fc6/fc7 and four extra blocks), `SSDHead` and
`DefaultBoxGenerator`. State_dict keys are torchvision's, so its official COCO
checkpoint loads unchanged.

Pascal VOC configurations of the same network (21 classes, ssdmobile.data.voc.VOC_CLASSES):
- `ssd300_vgg16_voc`: torchvision's layout, 21-class head;
- `ssd300_vgg16_voc37`: feature maps 37, 18, 18, 9, 5, 2, the sizes a public VGG-SSD VOC2007
  write-up uses, expressed as a configuration of torchvision's extractor (see `_voc37_layout_`).
No trained VOC weights exist here: random initialization, or your own checkpoint.
"""

from __future__ import annotations

from types import SimpleNamespace

import torch
from torch import Tensor, nn
from torchvision.models.detection import _utils as det_utils
from torchvision.models.detection.anchor_utils import DefaultBoxGenerator
from torchvision.models.detection.ssd import SSDHead, _vgg_extractor, _xavier_init
from torchvision.models.vgg import cfgs, make_layers

from ..data.voc import VOC_CLASSES
from ..detector import Detector
from ..spec import COCO_91_CLASSES, BoxCoder, ModelSpec, Postprocess, Preprocess
from .registry import register_model
from .weights import Weights

SIZE = (300, 300)
VOC_CLASS_NAMES = ("__background__", *VOC_CLASSES)

# torchvision's ssd300_vgg16: image_mean / image_std on 0..1 pixels (the VGG weights were trained on
# 0..255 minus the mean), fixed 300x300 resize, and SSD's defaults (score_thresh 0.01, nms_thresh
# 0.45, topk_candidates 400, detections_per_img 200); torchvision's SSD box coder: weights 10, 10,
# 5, 5 with exp clamped at log(1000/16)
PREPROCESS = Preprocess(
    size=SIZE,
    resize="bilinear",
    mean=(0.48235, 0.45882, 0.40784),
    std=(1.0 / 255.0, 1.0 / 255.0, 1.0 / 255.0),
)
POSTPROCESS = Postprocess(
    score="softmax", score_thresh=0.01, iou_thresh=0.45, topk_candidates=400, max_detections=200
)


class SSDCore(nn.Module):
    """backbone + head -> (box_encodings [N, A, 4], class_logits [N, A, C]); keys backbone.*, head.*
    as torchvision's SSD (its anchor generator and transform hold no weights)."""

    def __init__(self, backbone: nn.Module, head: SSDHead):
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        features = list(self.backbone(x).values())
        return self.head.regression_head(features), self.head.classification_head(features)


def _conv_relu(cin: int, cout: int, kernel: int, **kw) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, kernel, **kw), nn.ReLU(inplace=True)]


def _voc37_layout_(extractor: nn.Module) -> None:
    """torchvision's extractor rewired to six maps of 37, 18, 18, 9, 5, 2 cells (the VOC write-up's
    sizes): maxpool3 without ceil_mode (conv4_3 at 37), conv5_3 as a source of its own (18), a
    plain 3x3 fc6 + 1x1 fc7 (18), then three extra blocks down to 9, 5 and 2 (the last 3x3 stride 2
    without padding). conv4_3 keeps torchvision's L2 normalization."""
    features = extractor.features
    pools = [i for i, m in enumerate(features) if isinstance(m, nn.MaxPool2d)]
    features[pools[2]].ceil_mode = False  # 75 -> 37 (torchvision: ceil, 75 -> 38)
    conv5 = extractor.extra[0][:-1]  # maxpool4, conv5_1..3 with their ReLUs (fc block dropped)
    extra = nn.ModuleList(
        [
            conv5,
            # fc6, fc7
            nn.Sequential(*_conv_relu(512, 1024, 3, padding=1), *_conv_relu(1024, 1024, 1)),
            nn.Sequential(*_conv_relu(1024, 256, 1), *_conv_relu(256, 512, 3, padding=1, stride=2)),
            nn.Sequential(*_conv_relu(512, 128, 1), *_conv_relu(128, 256, 3, padding=1, stride=2)),
            nn.Sequential(*_conv_relu(256, 128, 1), *_conv_relu(128, 256, 3, stride=2)),
        ]
    )
    _xavier_init(extra[1:])
    extractor.extra = extra


def _build(name: str, class_names: tuple[str, ...], layout: str = "torchvision") -> Detector:
    # vgg16's conv layers, initialized as torchvision's VGG does; its classifier (124M parameters
    # SSD drops) is never built. trainable_layers=5: nothing frozen
    # (torchvision's choice without weights)
    features = make_layers(cfgs["D"])
    for m in features.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(m.bias)
    backbone = _vgg_extractor(SimpleNamespace(features=features), highres=False, trainable_layers=5)
    if layout == "torchvision":
        anchor_generator = DefaultBoxGenerator(
            [[2], [2, 3], [2, 3], [2, 3], [2], [2]],
            scales=[0.07, 0.15, 0.33, 0.51, 0.69, 0.87, 1.05],
            steps=[8, 16, 32, 64, 100, 300],
        )
    elif layout == "voc37":
        _voc37_layout_(backbone)
        # the write-up's scales; centers at (j + 0.5) / cells (no steps) as in its anchors
        anchor_generator = DefaultBoxGenerator(
            [[2], [2, 3], [2, 3], [2, 3], [2], [2]], scales=[0.1, 0.2, 0.37, 0.54, 0.71, 0.88, 1.05]
        )
    else:
        raise ValueError(f"unknown layout {layout!r}; choose torchvision or voc37")
    out_channels = det_utils.retrieve_out_channels(backbone, SIZE)
    head = SSDHead(out_channels, anchor_generator.num_anchors_per_location(), len(class_names))
    core = SSDCore(backbone, head).eval()
    with torch.no_grad():
        grid_sizes = [f.shape[-2:] for f in backbone(torch.zeros(1, 3, *SIZE)).values()]
    # normalized cx, cy, w, h
    anchors = anchor_generator._grid_default_boxes(grid_sizes, list(SIZE))
    spec = ModelSpec(
        name=name,
        preprocess=PREPROCESS,
        class_names=class_names,
        box_coder=BoxCoder(),
        postprocess=POSTPROCESS,
    )
    return Detector(core, anchors, spec)


def _class_names(num_classes: int, default: tuple[str, ...]) -> tuple[str, ...]:
    if num_classes == len(default):
        return default
    return ("__background__", *(f"class{i}" for i in range(1, num_classes)))


@register_model(
    "ssd300_vgg16",
    input_size=SIZE,
    num_params=35_641_826,
    weights=Weights(
        filename="ssd300_vgg16_coco-b556d3b4.pth",
        url="https://download.pytorch.org/models/ssd300_vgg16_coco-b556d3b4.pth",
        # the prefix torchvision publishes (in the file name); torch.hub checks the same
        sha256="b556d3b4",
        source="torchvision COCO checkpoint (path, torch hub cache, or download.pytorch.org)",
        categories=COCO_91_CLASSES,
        metrics={"COCO val2017": {"box_map": 25.1}},
        metrics_by="torchvision",
    ),
    description=(
        "SSD300, VGG16 backbone (L2-normalized conv4_3, dilated fc6), 8732 anchors, "
        "91-id COCO layout"
    ),
)
def ssd300_vgg16(num_classes: int = 91) -> Detector:
    return _build("ssd300_vgg16", _class_names(num_classes, COCO_91_CLASSES))


@register_model(
    "ssd300_vgg16_voc",
    input_size=SIZE,
    num_params=26_285_486,
    description=(
        "SSD300 VGG16 (torchvision's layout), 21 Pascal VOC classes; no published checkpoint"
    ),
)
def ssd300_vgg16_voc(num_classes: int = 21) -> Detector:
    return _build("ssd300_vgg16_voc", _class_names(num_classes, VOC_CLASS_NAMES))


@register_model(
    "ssd300_vgg16_voc37",
    input_size=SIZE,
    num_params=26_303_022,
    description=(
        "SSD300 VGG16 with feature maps 37/18/18/9/5/2 (a VOC2007 write-up's), 9966 anchors, 21 "
        "Pascal VOC classes; no published checkpoint"
    ),
)
def ssd300_vgg16_voc37(num_classes: int = 21) -> Detector:
    return _build("ssd300_vgg16_voc37", _class_names(num_classes, VOC_CLASS_NAMES), layout="voc37")
