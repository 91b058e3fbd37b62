"""NVIDIA's SSD300 v1.1 (ResNet-50), written here to be exactly equivalent to NVIDIA's published
PyTorch code: github.com/NVIDIA/DeepLearningExamples, PyTorch/Detection/SSD, read at release 24.03
(commit 729963dd). Which NVIDIA file each piece mirrors is said beside it:

- ssd/model.py `ResNet`: torchvision resnet50 children up to layer3 (conv5_x, avgpool, fc dropped),
  layer3's first block at stride 1 (conv1, conv2 and the downsample conv), so the first map is
  38x38 with 1024 channels -> `ResNetSSDFeatures` (with the additional blocks below);
- ssd/model.py `SSD300._build_additional_features`: five blocks of 1x1 conv + BN + ReLU, 3x3 conv
  + BN + ReLU (stride 2 padding 1 for the first three, no padding for the last two), convs without
  bias -> 19, 10, 5, 3, 1;
- ssd/model.py `SSD300.loc / .conf / bbox_view`: one plain 3x3 conv (with bias, NO BatchNorm) per
  map for boxes and one for the 81 classes, reshaped (N, 4, -1) / (N, 81, -1) and concatenated.
  NVIDIA's README says the heads have "additional BatchNorm layers after each convolution"; the
  code (and so its checkpoints) has BatchNorm in the additional blocks only -> `SSD300ResNet50Core`,
  which returns the usual ssdmobile layout [N, 8732, 4] / [N, 8732, 81] (a transpose of NVIDIA's);
- ssd/utils.py `DefaultBoxes` / `dboxes300_coco`: default boxes, box-major within each map (for each
  box shape, for each row, column), clamped to [0, 1] in (cx, cy, w, h) -> `default_boxes`;
- ssd/utils.py `Encoder.scale_back_batch`: scale_xy 0.1 / scale_wh 0.2, no clamp before exp ->
  BoxCoder weights (10, 10, 5, 5), clamp None; softmax scores;
- ssd/utils.py `Encoder.decode_single` + ssd/evaluate.py: per class, score > 0.05, the 200 best,
  greedy NMS at IoU 0.5 (evaluation's criteria), the 200 best overall -> Postprocess;
- ssd/utils.py `SSDTransformer` (validation) and README: 300x300 resize, ImageNet mean / std.
  NVIDIA resizes with PIL (antialiased when shrinking); ssdmobile's resize is bilinear without
  antialiasing (what the apps do), a small difference on large images;
- ssd/entrypoints.py `nvidia_ssd` / `unwrap_distributed`: the published checkpoint is a dict whose
  "model" entry is the state_dict, keys possibly prefixed "module." (DistributedDataParallel) or
  "module.1." -> `SSD300ResNet50Core.adapt_checkpoint` (load_state_dict_file takes the "model"
  entry).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torchvision.models import resnet50

from ..detector import Detector
from ..spec import COCO_91_CLASSES, BoxCoder, ModelSpec, Postprocess, Preprocess
from .registry import register_model
from .weights import Weights

# ssd/utils.py dboxes300_coco
FIG_SIZE = 300
FEATURE_MAPS = (38, 19, 10, 5, 3, 1)
STEPS = (8, 16, 32, 64, 100, 300)
SCALES = (21, 45, 99, 153, 207, 261, 315)  # pixels of the 300x300 input
ASPECT_RATIOS = ((2,), (2, 3), (2, 3), (2, 3), (2,), (2,))
OUT_CHANNELS = (1024, 512, 512, 256, 256, 256)  # ssd/model.py ResNet, resnet50 branch
# 0 is background, then COCO's 80 categories in id order (ssd/utils.py COCODetection.label_map)
COCO_80_CLASSES = ("background", *(n for n in COCO_91_CLASSES[1:] if n != "N/A"))

PREPROCESS = Preprocess(
    size=(FIG_SIZE, FIG_SIZE),
    resize="bilinear",
    mean=(0.485, 0.456, 0.406),
    std=(0.229, 0.224, 0.225),
)
BOX_CODER = BoxCoder(weights=(10.0, 10.0, 5.0, 5.0), order="xywh", clamp=None)
POSTPROCESS = Postprocess(
    score="softmax", score_thresh=0.05, iou_thresh=0.5, topk_candidates=200, max_detections=200
)


def default_boxes(
    fig_size: float,
    feat_size: Sequence[int],
    steps: Sequence[float],
    scales: Sequence[float],
    aspect_ratios: Sequence[Sequence[float]],
) -> Tensor:
    """ssd/utils.py DefaultBoxes: [A, 4] normalized (cx, cy, w, h), clamped to [0, 1] as NVIDIA does
    (centers too: at 10 cells with step 32 the last center is 9.5 / 9.375 > 1). Computed in float64
    like NVIDIA's Python floats, then rounded once to float32."""
    per_map = []
    for k, f in enumerate(feat_size):
        fk = fig_size / steps[k]
        s1, s2 = scales[k] / fig_size, scales[k + 1] / fig_size
        sizes = [(s1, s1), (math.sqrt(s1 * s2),) * 2]
        for a in aspect_ratios[k]:
            w, h = s1 * math.sqrt(a), s1 / math.sqrt(a)
            sizes += [(w, h), (h, w)]
        centers = (torch.arange(f, dtype=torch.float64) + 0.5) / fk
        # row i, column j
        cy, cx = (g.reshape(-1) for g in torch.meshgrid(centers, centers, indexing="ij"))
        for w, h in sizes:  # box shape outermost, then row, then column
            per_map.append(
                torch.stack([cx, cy, torch.full_like(cx, w), torch.full_like(cx, h)], -1)
            )
    return torch.cat(per_map).float().clamp_(0, 1)


def boxes_per_location(aspect_ratios: Sequence[Sequence[float]]) -> list[int]:
    return [2 + 2 * len(r) for r in aspect_ratios]


def _additional_blocks(channels: Sequence[int]) -> nn.ModuleList:
    """ssd/model.py SSD300._build_additional_features (inner widths 256, 256, 128, 128, 128)."""
    blocks = nn.ModuleList()
    for i, (cin, cout, mid) in enumerate(
        zip(channels[:-1], channels[1:], [256, 256, 128, 128, 128])
    ):
        down = dict(padding=1, stride=2) if i < 3 else {}
        blocks.append(
            nn.Sequential(
                nn.Conv2d(cin, mid, kernel_size=1, bias=False),
                nn.BatchNorm2d(mid),
                nn.ReLU(inplace=True),
                nn.Conv2d(mid, cout, kernel_size=3, bias=False, **down),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
            )
        )
    return blocks


class ResNetBackbone(nn.Module):
    """ssd/model.py ResNet('resnet50'): keys feature_extractor.{0..6} (conv1, bn1, relu, maxpool,
    layer1..3). `resnet`: a torchvision ResNet-50 to take them from (default: a fresh one; the
    quantizable ResNet-50 of torchvision.models.quantization has the same keys)."""

    def __init__(self, resnet: nn.Module | None = None):
        super().__init__()
        resnet = resnet if resnet is not None else resnet50(weights=None)
        self.out_channels = list(OUT_CHANNELS)
        self.feature_extractor = nn.Sequential(*list(resnet.children())[:7])
        conv4_block1 = self.feature_extractor[-1][0]
        conv4_block1.conv1.stride = (1, 1)
        conv4_block1.conv2.stride = (1, 1)
        conv4_block1.downsample[0].stride = (1, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.feature_extractor(x)


class ResNetSSDFeatures(nn.Module):
    """Backbone + additional blocks -> the six maps SSD predicts from (ssd/model.py SSD300.forward);
    keys feature_extractor.*, additional_blocks.* as NVIDIA's."""

    def __init__(self, backbone: ResNetBackbone | None = None):
        super().__init__()
        self.feature_extractor = backbone if backbone is not None else ResNetBackbone()
        self.additional_blocks = _additional_blocks(self.feature_extractor.out_channels)

    def feature_maps(self, x: Tensor) -> list[Tensor]:
        x = self.feature_extractor(x)
        maps = [x]
        for block in self.additional_blocks:
            x = block(x)
            maps.append(x)
        return maps

    def forward(self, x: Tensor) -> list[Tensor]:
        return self.feature_maps(x)


def _flatten_heads(
    maps: Sequence[Tensor], loc: nn.ModuleList, conf: nn.ModuleList, num_classes: int
) -> tuple[Tensor, Tensor]:
    """ssd/model.py SSD300.bbox_view: conv output [N, nd*k, H, W] viewed as [N, k, nd*H*W] (box
    shape outermost, as the default boxes), concatenated, then transposed to [N, A, k]."""
    n = maps[0].shape[0]
    locs = torch.cat([head(s).reshape(n, 4, -1) for s, head in zip(maps, loc)], 2)
    confs = torch.cat([c(s).reshape(n, num_classes, -1) for s, c in zip(maps, conf)], 2)
    return locs.permute(0, 2, 1), confs.permute(0, 2, 1)


class SSD300ResNet50Core(ResNetSSDFeatures):
    """ssd/model.py SSD300: keys feature_extractor.*, additional_blocks.*, loc.*, conf.*."""

    def __init__(self, num_classes: int = 81, backbone: ResNetBackbone | None = None):
        super().__init__(backbone)
        self.label_num = num_classes
        self.num_defaults = boxes_per_location(ASPECT_RATIOS)
        channels = self.feature_extractor.out_channels
        self.loc = nn.ModuleList(
            nn.Conv2d(c, nd * 4, 3, padding=1) for nd, c in zip(self.num_defaults, channels)
        )
        self.conf = nn.ModuleList(
            nn.Conv2d(c, nd * num_classes, 3, padding=1)
            for nd, c in zip(self.num_defaults, channels)
        )
        for layer in [*self.additional_blocks, *self.loc, *self.conf]:  # SSD300._init_weights
            for p in layer.parameters():
                if p.dim() > 1:
                    nn.init.xavier_uniform_(p)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return _flatten_heads(self.feature_maps(x), self.loc, self.conf, self.label_num)

    @staticmethod
    def adapt_checkpoint(state_dict: dict) -> dict:
        """ssd/entrypoints.py unwrap_distributed: drop the "module.1." / "module." prefixes a
        DistributedDataParallel-wrapped model saves (NVIDIA replaces them anywhere in the key; no
        key of this model contains them elsewhere)."""
        out = {}
        for k, v in state_dict.items():
            for prefix in ("module.1.", "module."):
                if k.startswith(prefix):
                    k = k[len(prefix) :]
                    break
            out[k] = v
        return out


NVIDIA_WEIGHTS = Weights(
    filename="nvidia_ssdpyt_amp_200703.pt",
    # the checkpoint torch.hub's `nvidia_ssd` entry point downloads (ssd/entrypoints.py)
    url="https://api.ngc.nvidia.com/v2/models/nvidia/ssd_pyt_ckpt_amp/versions/20.06.0/files/nvidia_ssdpyt_amp_200703.pt",
    sha256=None,  # NVIDIA publishes no hash for it
    source="NVIDIA NGC checkpoint ssd_pyt_ckpt_amp 20.06 (torch.hub nvidia_ssd); {'model': "
    "state_dict}",
    categories=COCO_80_CLASSES,
    metrics={"COCO val2017": {"box_map": 26.8}},
    metrics_by="NVIDIA README, mean of 15 AMP trainings; this file not scored",
)


@register_model(
    "ssd300_resnet50_v1_1",
    input_size=(FIG_SIZE, FIG_SIZE),
    num_params=22_894_902,
    weights=NVIDIA_WEIGHTS,
    description=(
        "NVIDIA SSD300 v1.1: ResNet-50 to layer3 (stride 1), BN additional blocks, "
        "8732 boxes, 81 classes"
    ),
)
def ssd300_resnet50_v1_1(num_classes: int = 81) -> Detector:
    names = (
        COCO_80_CLASSES
        if num_classes == 81
        else ("background", *(f"class{i}" for i in range(1, num_classes)))
    )
    core = SSD300ResNet50Core(num_classes).eval()
    anchors = default_boxes(FIG_SIZE, FEATURE_MAPS, STEPS, SCALES, ASPECT_RATIOS)
    spec = ModelSpec(
        name="ssd300_resnet50_v1_1",
        preprocess=PREPROCESS,
        class_names=names,
        box_coder=BOX_CODER,
        postprocess=POSTPROCESS,
    )
    return Detector(core, anchors, spec)
