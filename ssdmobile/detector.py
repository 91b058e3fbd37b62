"""Detector = preprocess -> core -> decode -> NMS, split where every mobile runtime can follow.

The core (backbone + SSD head) has a fixed input shape and returns raw
(box_encodings [N, A, 4], class_logits [N, A, C]); this is what exporters trace and quantization
touches. Anchors are a constant buffer computed once at build time. Checkpoints hold the core's
state_dict (`detector.core`), so they keep the keys of the architecture they come from
(torchvision's for SSDlite320 MobileNetV3, for example); `detector.weights` records which file
was loaded (path, sha256, its registered metadata), or None for random initialization.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .ops.boxes import class_scores, decode_boxes, nms_per_class
from .ops.preprocess import resize_tf1_bilinear
from .spec import ModelSpec


def resize_image(x: Tensor, size: tuple[int, int], mode: str) -> Tensor:
    """x: [N, C, H, W] float."""
    if mode == "tf1_bilinear":
        return resize_tf1_bilinear(x, size)
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class Detector(nn.Module):
    def __init__(self, core: nn.Module, anchors: Tensor, spec: ModelSpec):
        super().__init__()
        self.core = core
        self.spec = spec
        self.weights = None  # models.weights.LoadedWeights once a checkpoint is loaded
        # Not persistent: derived from the architecture, so checkpoints hold only core weights.
        self.register_buffer("anchors", anchors.float().contiguous(), persistent=False)

    # -- stages ---------------------------------------------------------------------------------
    def preprocess(self, images: Sequence[Tensor]) -> Tensor:
        """images: [3, H, W] tensors, uint8 (0..255) or float (0..1), any size -> core input."""
        p = self.spec.preprocess
        mean = torch.tensor(p.mean).view(1, 3, 1, 1)
        std = torch.tensor(p.std).view(1, 3, 1, 1)
        batch = []
        for img in images:
            x = img.float() / 255.0 if img.dtype == torch.uint8 else img.float()
            x = (x[None] - mean) / std
            batch.append(resize_image(x, p.size, p.resize))
        return torch.cat(batch).to(self.anchors.device)

    def pixels(self, images: Sequence[Tensor]) -> Tensor:
        """The host step before a program that takes camera bytes (uint8 NHWC input): each image
        (uint8 [3, H, W]) resized to the model's size in float32 with the model's resize, rounded
        to the nearest integer (ties to even) and clamped to 0..255 -> uint8 [N, H, W, 3]. The
        apps do the same; then normalization is the program's."""
        p = self.spec.preprocess
        batch = []
        for img in images:
            x = img.float() if img.dtype == torch.uint8 else img.float() * 255.0
            x = resize_image(x[None], p.size, p.resize).round().clamp(0, 255)
            batch.append(x.to(torch.uint8).permute(0, 2, 3, 1))
        return torch.cat(batch).contiguous()

    def forward_core(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.core(x)

    def decode(self, box_encodings: Tensor, class_logits: Tensor) -> tuple[Tensor, Tensor]:
        """-> boxes [N, A, 4] normalized (x1, y1, x2, y2), scores [N, A, C]."""
        boxes = decode_boxes(box_encodings, self.anchors, self.spec.box_coder)
        return boxes, class_scores(class_logits, self.spec.postprocess.score)

    def nms(
        self, boxes: Tensor, scores: Tensor, image_sizes: Sequence[tuple[int, int]]
    ) -> list[dict]:
        """Per image NMS; boxes scaled to each original image's pixels (sizes are (H, W))."""
        results = []
        for b, s, (h, w) in zip(boxes, scores, image_sizes):
            kb, ks, kl = nms_per_class(b, s, self.spec.postprocess)
            scale = torch.tensor([w, h, w, h], dtype=kb.dtype, device=kb.device)
            results.append({"boxes": kb * scale, "scores": ks, "labels": kl})
        return results

    @torch.no_grad()
    def forward(self, images: Sequence[Tensor]) -> list[dict]:
        """torchvision-style: a list of [3, H, W] images -> a list of
        {"boxes": [K, 4] x1y1x2y2 in original pixels, "scores": [K], "labels": [K]}."""
        sizes = [tuple(img.shape[-2:]) for img in images]
        box_encodings, class_logits = self.forward_core(self.preprocess(images))
        boxes, scores = self.decode(box_encodings, class_logits)
        return self.nms(boxes, scores, sizes)
