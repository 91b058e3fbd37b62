"""SSDlite320 MobileNetV3 (Large and Small), built from torchvision's own modules so state_dict
keys match torchvision's `ssdlite320_mobilenet_v3_large` and its official COCO checkpoint loads
unchanged."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
from torch import Tensor, nn
from torchvision.models import mobilenet_v3_large, mobilenet_v3_small
from torchvision.models.detection import _utils as det_utils
from torchvision.models.detection.anchor_utils import DefaultBoxGenerator
from torchvision.models.detection.ssdlite import SSDLiteHead, _mobilenet_extractor, _normal_init

from ..detector import Detector
from ..spec import COCO_91_CLASSES, BoxCoder, ModelSpec, Postprocess, Preprocess
from .registry import register_model
from .weights import Weights

SIZE = (320, 320)
ARCHS = {"large": mobilenet_v3_large, "small": mobilenet_v3_small}


@dataclass(frozen=True)
class CoreConfig:
    """How a core was built, so a structural twin can be built again (quant/eager_mobilenet_v3.py
    builds one from torchvision's quantizable blocks and loads this core's state_dict into it)."""

    arch: str  # a key of ARCHS
    num_classes: int
    width_mult: float
    reduced_tail: bool


class SSDLiteCore(nn.Module):
    """backbone + head -> (box_encodings [N, A, 4], class_logits [N, A, C]);
    keys backbone.*, head.*"""

    def __init__(self, backbone: nn.Module, head: nn.Module, config: CoreConfig | None = None):
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.config = config

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        features = list(self.backbone(x).values())
        return self.head.regression_head(features), self.head.classification_head(features)


def _anchor_generator() -> DefaultBoxGenerator:
    return DefaultBoxGenerator([[2, 3] for _ in range(6)], min_ratio=0.2, max_ratio=0.95)


def build_core(config: CoreConfig, block: type[nn.Module] | None = None) -> SSDLiteCore:
    """block: the inverted residual class torchvision's MobileNetV3 builds its blocks with (None:
    its own InvertedResidual); same state_dict keys whichever block is used."""
    # torchvision's choices for SSDlite: BN eps 1e-3 / momentum 0.03, normal init, no dilation
    norm_layer = partial(nn.BatchNorm2d, eps=0.001, momentum=0.03)
    backbone = ARCHS[config.arch](
        weights=None,
        norm_layer=norm_layer,
        reduced_tail=config.reduced_tail,
        width_mult=config.width_mult,
        **({"block": block} if block else {}),
    )
    _normal_init(backbone)
    backbone = _mobilenet_extractor(backbone, trainable_layers=6, norm_layer=norm_layer)
    out_channels = det_utils.retrieve_out_channels(backbone, SIZE)
    head = SSDLiteHead(
        out_channels, _anchor_generator().num_anchors_per_location(), config.num_classes, norm_layer
    )
    return SSDLiteCore(backbone, head, config).eval()


def _build(
    arch: str, num_classes: int, width_mult: float, reduced_tail: bool, name: str
) -> Detector:
    core = build_core(CoreConfig(arch, num_classes, width_mult, reduced_tail))
    backbone, anchor_generator = core.backbone, _anchor_generator()
    with torch.no_grad():
        grid_sizes = [f.shape[-2:] for f in backbone(torch.zeros(1, 3, *SIZE)).values()]
    # normalized cx, cy, w, h
    anchors = anchor_generator._grid_default_boxes(grid_sizes, list(SIZE))
    class_names = (
        COCO_91_CLASSES
        if num_classes == 91
        else ("__background__", *(f"class{i}" for i in range(1, num_classes)))
    )
    spec = ModelSpec(
        name=name,
        preprocess=Preprocess(
            size=SIZE, resize="bilinear", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)
        ),
        class_names=class_names,
        box_coder=BoxCoder(),
        postprocess=Postprocess(
            score="softmax",
            score_thresh=0.001,
            iou_thresh=0.55,
            topk_candidates=300,
            max_detections=300,
        ),
    )
    return Detector(core, anchors, spec)


@register_model(
    "ssdlite320_mobilenet_v3_large",
    input_size=SIZE,
    num_params=3_440_060,
    weights=Weights(
        filename="ssdlite320_mobilenet_v3_large_coco-a79551df.pth",
        url="https://download.pytorch.org/models/ssdlite320_mobilenet_v3_large_coco-a79551df.pth",
        # the prefix torchvision publishes (in the file name); torch.hub checks the same
        sha256="a79551df",
        source="torchvision COCO checkpoint (path, torch hub cache, or download.pytorch.org)",
        categories=COCO_91_CLASSES,
        metrics={"COCO val2017": {"box_map": 21.3}},
        metrics_by="torchvision",
    ),
    description="SSDlite320, MobileNetV3-Large backbone (reduced tail), 91-id COCO layout",
)
def ssdlite320_mobilenet_v3_large(
    num_classes: int = 91, width_mult: float = 1.0, reduced_tail: bool = True
):
    return _build("large", num_classes, width_mult, reduced_tail, "ssdlite320_mobilenet_v3_large")


@register_model(
    "ssdlite320_mobilenet_v3_small",
    input_size=SIZE,
    num_params=1_868_108,
    weights=None,
    description="SSDlite320, MobileNetV3-Small backbone (reduced tail); no published checkpoint",
)
def ssdlite320_mobilenet_v3_small(
    num_classes: int = 91, width_mult: float = 1.0, reduced_tail: bool = True
):
    return _build("small", num_classes, width_mult, reduced_tail, "ssdlite320_mobilenet_v3_small")
