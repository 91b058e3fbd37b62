"""Box coding and NMS as plain tensor code: anchors are a constant (cx, cy, w, h) buffer in
normalized image coordinates, decoded boxes are normalized (x1, y1, x2, y2)."""

from __future__ import annotations

import torch
from torch import Tensor
from torchvision.ops import batched_nms, nms

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
    return (
        torch.softmax(class_logits, dim=-1) if score == "softmax" else torch.sigmoid(class_logits)
    )


def _rank_within_group(groups: Tensor) -> Tensor:
    """For a 1-D tensor sorted so equal groups are contiguous, the 0-based position of each
    element inside its group."""
    pos = torch.arange(groups.numel(), device=groups.device)
    first = torch.searchsorted(groups, groups)
    return pos - first


def _candidates(fg: Tensor, cfg: Postprocess) -> tuple[Tensor, Tensor, Tensor]:
    """(anchor, class, score) of the candidates above the score threshold, grouped by class
    (ascending), best first inside a class with ties in anchor order, at most topk_candidates per
    class: torchvision's "threshold, then top-k per class" with the order its stable sorts give."""
    anchor_idx, cls_idx = (fg > cfg.score_thresh).nonzero(as_tuple=True)  # anchor-major
    k = cfg.topk_candidates
    if k is not None and len(cls_idx) > k and int(torch.bincount(cls_idx).max()) > k:
        # a class has more than k candidates (untrained weights: every score passes): one topk per
        # class rather than sorting them all. Unlike a stable sort, topk may choose other anchors
        # among candidates tied with the k-th score.
        vals, anchors = fg.t().topk(k, dim=1)  # [K, k]
        anchors, by_anchor = anchors.sort(dim=1)
        vals = vals.gather(1, by_anchor)
        order = vals.argsort(dim=1, descending=True, stable=True)
        vals, anchors = vals.gather(1, order), anchors.gather(1, order)
        above = vals > cfg.score_thresh
        cls_idx = torch.arange(fg.shape[1], device=fg.device)[:, None].expand_as(anchors)
        return anchors[above], cls_idx[above], vals[above]
    cand_scores = fg[anchor_idx, cls_idx]
    order = torch.argsort(cand_scores, descending=True, stable=True)
    order = order[torch.argsort(cls_idx[order], stable=True)]
    return anchor_idx[order], cls_idx[order], cand_scores[order]


def _nms_by_class(boxes: Tensor, scores: Tensor, cls_idx: Tensor, cfg: Postprocess) -> Tensor:
    """Candidates grouped by class, best first -> indices kept, best first: torchvision's
    batched_nms loop over classes (torchvision.ops.nms on each class's own boxes), one call per
    class segment instead of a torch.where per class.

    It runs on the best candidates only: greedy NMS keeps the same first boxes on any best-first
    prefix, so once a prefix holds max_detections kept boxes the rest cannot change the result. The
    prefix starts at 4 x max_detections candidates and doubles while too few survive (the person
    detector's 1917 candidates need at most ~450 for its 100 detections on coco128)."""
    by_score = torch.argsort(scores, descending=True, stable=True)
    n = 4 * cfg.max_detections
    while True:
        sel = by_score[:n].sort().values  # candidate order again: by class, best first
        keep, start = [], 0
        for count in torch.bincount(cls_idx[sel]).tolist():
            if count:
                seg = sel[start : start + count]
                keep.append(seg[nms(boxes[seg], scores[seg], cfg.iou_thresh)[: cfg.max_per_class]])
            start += count
        keep = torch.cat(keep)
        if len(keep) >= cfg.max_detections or n >= len(scores):
            return keep[torch.argsort(scores[keep], descending=True, stable=True)]
        n *= 2


def nms_per_class(boxes: Tensor, scores: Tensor, cfg: Postprocess) -> tuple[Tensor, Tensor, Tensor]:
    """One image: boxes [A, 4] normalized xyxy, scores [A, C] (column 0 background).
    Same algorithm as torchvision's SSD.postprocess_detections (score threshold, top-k per class,
    batched_nms, keep the best `max_detections`); `max_per_class` additionally caps each class
    after NMS (TF Object Detection API). Returns (boxes [K, 4], scores [K], labels [K]) sorted by
    descending score."""
    boxes = boxes.clamp(0.0, 1.0)
    anchor_idx, cls_idx, cand_scores = _candidates(scores[:, 1:], cfg)
    cand_boxes = boxes[anchor_idx]
    if (
        len(cand_scores) > 1000
    ):  # where batched_nms loops over classes (4000 box coordinates on CPU)
        keep = _nms_by_class(cand_boxes, cand_scores, cls_idx, cfg)
    else:  # batched_nms itself: one torchvision.ops.nms call on class-offset boxes
        keep = batched_nms(cand_boxes, cand_scores, cls_idx, cfg.iou_thresh)
        if cfg.max_per_class is not None:
            by_class = torch.argsort(cls_idx[keep], stable=True)
            rank = torch.empty_like(keep)
            rank[by_class] = _rank_within_group(cls_idx[keep][by_class])
            keep = keep[rank < cfg.max_per_class]
    keep = keep[: cfg.max_detections]
    return cand_boxes[keep], cand_scores[keep], cls_idx[keep] + 1
