"""A tiny SSD-shaped Detector for export/runtime tests: the same Detector, spec, decode and NMS
code as the real models, with a core small enough that every exporter runs in seconds."""

from __future__ import annotations

import torch
from torch import nn

from ssdmobile.detector import Detector
from ssdmobile.spec import BoxCoder, ModelSpec, Postprocess, Preprocess

SIZE = (64, 64)


class TinyCore(nn.Module):
    def __init__(self, num_classes: int, anchors_per_loc: int = 2):
        super().__init__()
        self.k, self.c = anchors_per_loc, num_classes
        self.body = nn.Sequential(
            nn.Conv2d(3, 16, 3, stride=2, padding=1),
            nn.BatchNorm2d(16),
            nn.ReLU6(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1),
            nn.BatchNorm2d(32),
            nn.ReLU6(),
            nn.Conv2d(32, 32, 3, stride=2, padding=1),
            nn.ReLU6(),
        )
        self.box = nn.Conv2d(32, anchors_per_loc * 4, 3, padding=1)
        self.cls = nn.Conv2d(32, anchors_per_loc * num_classes, 3, padding=1)

    def forward(self, x):
        f = self.body(x)
        n = x.shape[0]
        box = self.box(f).permute(0, 2, 3, 1).reshape(n, -1, 4)
        cls = self.cls(f).permute(0, 2, 3, 1).reshape(n, -1, self.c)
        return box, cls


def grid_anchors(fm: int = 8, scales=(0.25, 0.5)) -> torch.Tensor:
    c = (torch.arange(fm, dtype=torch.float32) + 0.5) / fm
    cy, cx = torch.meshgrid(c, c, indexing="ij")
    per = [
        torch.stack([cx, cy, torch.full_like(cx, s), torch.full_like(cx, s * 0.8)], -1)
        for s in scales
    ]
    return torch.stack(per, 2).reshape(-1, 4)  # (row, column, anchor) as the core emits


def tiny_detector(seed: int = 0, score: str = "sigmoid", name: str = "tiny_ssd") -> Detector:
    torch.manual_seed(seed)
    classes = ("__background__", "person", "car")
    core = TinyCore(len(classes)).eval()
    with torch.no_grad():  # spread the logits so scores and boxes are far from trivial
        core.cls.weight.mul_(4.0)
        core.box.weight.mul_(2.0)
        for m in core.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    spec = ModelSpec(
        name=name,
        preprocess=Preprocess(size=SIZE, resize="bilinear"),
        class_names=classes,
        box_coder=BoxCoder(order="yxhw", clamp=None),
        postprocess=Postprocess(
            score=score,
            score_thresh=0.05,
            iou_thresh=0.5,
            topk_candidates=100,
            max_per_class=None,
            max_detections=20,
        ),
    )
    return Detector(core, grid_anchors(), spec).eval()
