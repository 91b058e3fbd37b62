"""Box coding and NMS as plain tensor code: anchors are a constant (cx, cy, w, h) buffer in
normalized image coordinates, decoded boxes are normalized (x1, y1, x2, y2)."""
from __future__ import annotations

import torch
from torch import Tensor
from torchvision.ops import batched_nms

from ..spec import BoxCoder, Postprocess


def xyxy_to_cxcywh(boxes: Tensor) -> Tensor:
    x1, y1, x2, y2 = boxes.unbind(-1)
    return torch.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], dim=-1)


def decode_boxes(box_encodings: Tensor, anchors: Tensor, coder: BoxCoder) -> Tensor:
    """[N, A, 4] encodings + [A, 4] anchors (cx, cy, w, h) -> [N, A, 4] boxes (x1, y1, x2, y2)."""
    if coder.order == "yxhw":
        box_encodings = box_encodings[..., [1, 0, 3, 2]]
    wx, wy, ww, wh = coder.weights
    dx = box_encodings[..., 0] / wx
    dy = box_encodings[..., 1] / wy
    dw = box_encodings[..., 2] / ww
    dh = box_encodings[..., 3] / wh
    if coder.clamp is not None:
        dw = dw.clamp(max=coder.clamp)
        dh = dh.clamp(max=coder.clamp)
    cx = dx * anchors[:, 2] + anchors[:, 0]
    cy = dy * anchors[:, 3] + anchors[:, 1]
    half_w = 0.5 * torch.exp(dw) * anchors[:, 2]
    half_h = 0.5 * torch.exp(dh) * anchors[:, 3]
    return torch.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], dim=-1)


def class_scores(class_logits: Tensor, score: str) -> Tensor:
    return torch.softmax(class_logits, dim=-1) if score == "softmax" else torch.sigmoid(class_logits)


def _rank_within_group(groups: Tensor) -> Tensor:
    """For a 1-D tensor sorted so equal groups are contiguous, the 0-based position of each
    element inside its group."""
    pos = torch.arange(groups.numel(), device=groups.device)
    first = torch.searchsorted(groups, groups)
    return pos - first


def nms_per_class(boxes: Tensor, scores: Tensor, cfg: Postprocess) -> tuple[Tensor, Tensor, Tensor]:
    """One image: boxes [A, 4] normalized xyxy, scores [A, C] (column 0 background).
    Same algorithm as torchvision's SSD.postprocess_detections (score threshold, top-k per class,
    per-class NMS, keep the best `max_detections`), vectorized over classes instead of a Python
    loop; `max_per_class` additionally caps each class after NMS (TF Object Detection API).
    Returns (boxes [K, 4], scores [K], labels [K]) sorted by descending score."""
    boxes = boxes.clamp(0.0, 1.0)
    fg = scores[:, 1:]
    anchor_idx, cls_idx = (fg > cfg.score_thresh).nonzero(as_tuple=True)
    cand_scores = fg[anchor_idx, cls_idx]
    if cfg.topk_candidates is not None:
        # order by (class, descending score) and keep each class's best topk_candidates
        order = torch.argsort(cand_scores, descending=True, stable=True)
        order = order[torch.argsort(cls_idx[order], stable=True)]
        keep = order[_rank_within_group(cls_idx[order]) < cfg.topk_candidates]
        anchor_idx, cls_idx, cand_scores = anchor_idx[keep], cls_idx[keep], cand_scores[keep]
    cand_boxes = boxes[anchor_idx]
    keep = batched_nms(cand_boxes, cand_scores, cls_idx, cfg.iou_thresh)  # descending score
    if cfg.max_per_class is not None:
        by_class = torch.argsort(cls_idx[keep], stable=True)
        rank = torch.empty_like(keep)
        rank[by_class] = _rank_within_group(cls_idx[keep][by_class])
        keep = keep[rank < cfg.max_per_class]
    keep = keep[: cfg.max_detections]
    return cand_boxes[keep], cand_scores[keep], cls_idx[keep] + 1
