"""SSD training loss on a detector's raw outputs, and distillation from a float teacher.

- Matching (SSD / TF Object Detection API argmax matcher): each anchor takes the ground-truth box
  it overlaps most if IoU >= `iou_thresh`; each ground-truth box also takes its best anchor, so
  no object goes unmatched.
- Localization: smooth L1 on the box encodings of matched anchors, encoded with the detector's own
  box coder (the inverse of ssdmobile.ops.boxes.decode_boxes: same weights, same channel order).
- Classification: per-anchor cross-entropy (softmax detectors) or sigmoid cross-entropy over all
  columns including background (sigmoid detectors, as TF trains SSDLite), with hard negative mining
  keeping `neg_pos_ratio` (3) negatives per positive, the highest-loss ones; or sigmoid focal loss
  over every anchor (`focal=True`, no mining).
- Normalized by the number of matched anchors.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import box_iou, sigmoid_focal_loss

from ..spec import BoxCoder


def cxcywh_to_xyxy(b: Tensor) -> Tensor:
    cx, cy, w, h = b.unbind(-1)
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)


def encode_boxes(boxes_xyxy: Tensor, anchors: Tensor, coder: BoxCoder) -> Tensor:
    """[A, 4] normalized xyxy (matched ground truth per anchor) -> [A, 4]
    encodings in the core's order."""
    wx, wy, ww, wh = coder.weights
    w = (boxes_xyxy[:, 2] - boxes_xyxy[:, 0]).clamp(min=1e-6)
    h = (boxes_xyxy[:, 3] - boxes_xyxy[:, 1]).clamp(min=1e-6)
    cx = boxes_xyxy[:, 0] + w / 2
    cy = boxes_xyxy[:, 1] + h / 2
    dx = wx * (cx - anchors[:, 0]) / anchors[:, 2]
    dy = wy * (cy - anchors[:, 1]) / anchors[:, 3]
    dw = ww * torch.log(w / anchors[:, 2])
    dh = wh * torch.log(h / anchors[:, 3])
    enc = torch.stack([dx, dy, dw, dh], -1)
    return enc[:, [1, 0, 3, 2]] if coder.order == "yxhw" else enc


@dataclass
class SSDLossConfig:
    iou_thresh: float = 0.5
    neg_pos_ratio: float = 3.0
    focal: bool = False
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0
    loc_weight: float = 1.0


def match(anchors: Tensor, gt_boxes: Tensor, iou_thresh: float) -> Tensor:
    """-> [A] index of the matched ground-truth box, -1 for background."""
    a = anchors.shape[0]
    if gt_boxes.numel() == 0:
        return torch.full((a,), -1, dtype=torch.long, device=anchors.device)
    iou = box_iou(gt_boxes, cxcywh_to_xyxy(anchors))  # [G, A]
    best_iou, best_gt = iou.max(0)
    matched = torch.where(best_iou >= iou_thresh, best_gt, torch.full_like(best_gt, -1))
    # force-match each gt
    matched[iou.argmax(1)] = torch.arange(gt_boxes.shape[0], device=anchors.device)
    return matched


def ssd_loss(
    box_encodings: Tensor,
    class_logits: Tensor,
    targets: list[dict],
    anchors: Tensor,
    coder: BoxCoder,
    score: str,
    cfg: SSDLossConfig = SSDLossConfig(),  # noqa: B008 (read here, never mutated)
) -> tuple[Tensor, dict]:
    """targets: per image {"boxes": [G, 4] normalized xyxy,
    "labels": [G] model label ids (>= 1)}."""
    n, a, c = class_logits.shape
    loc_losses, cls_losses, num_pos = [], [], 0
    for i in range(n):
        gt_boxes, gt_labels = targets[i]["boxes"], targets[i]["labels"]
        m = match(anchors, gt_boxes, cfg.iou_thresh)
        pos = m >= 0
        labels = torch.zeros(a, dtype=torch.long, device=class_logits.device)
        labels[pos] = gt_labels[m[pos]]
        num_pos += int(pos.sum())
        if pos.any():
            target_enc = encode_boxes(gt_boxes[m[pos]], anchors[pos], coder)
            loc_losses.append(
                F.smooth_l1_loss(box_encodings[i][pos], target_enc, reduction="sum", beta=1.0)
            )
        logits = class_logits[i]
        if score == "sigmoid":
            onehot = F.one_hot(labels, c).to(logits.dtype)
            if cfg.focal:
                cls_losses.append(
                    sigmoid_focal_loss(
                        logits, onehot, cfg.focal_alpha, cfg.focal_gamma, reduction="sum"
                    )
                )
                continue
            per_anchor = F.binary_cross_entropy_with_logits(logits, onehot, reduction="none").sum(
                -1
            )
        else:
            if cfg.focal:
                ce = F.cross_entropy(logits, labels, reduction="none")
                p = torch.exp(-ce)
                cls_losses.append(((1 - p) ** cfg.focal_gamma * ce).sum())
                continue
            per_anchor = F.cross_entropy(logits, labels, reduction="none")
        # hard negative mining: all positives, the neg_pos_ratio x num_pos hardest negatives
        k = int(min(max(int(pos.sum()), 1) * cfg.neg_pos_ratio, int((~pos).sum())))
        neg_loss = per_anchor.detach().masked_fill(pos, -1.0)
        hard = neg_loss.topk(k).indices
        cls_losses.append(per_anchor[pos].sum() + per_anchor[hard].sum())
    denom = max(num_pos, 1)
    loc = torch.stack(loc_losses).sum() / denom if loc_losses else box_encodings.sum() * 0
    cls = torch.stack(cls_losses).sum() / denom
    total = cfg.loc_weight * loc + cls
    return total, {"loc": float(loc), "cls": float(cls), "num_pos": num_pos}


def distillation_loss(
    student: tuple[Tensor, Tensor], teacher: tuple[Tensor, Tensor], score: str
) -> Tensor:
    """Match the float teacher's raw outputs (works on unlabeled images): classification by
    cross-entropy against the teacher's probabilities, boxes by smooth L1 weighted by how sure the
    teacher is that an anchor holds an object (background anchors' boxes are noise)."""
    s_box, s_cls = student
    t_box, t_cls = (t.detach() for t in teacher)
    if score == "sigmoid":
        t_prob = torch.sigmoid(t_cls)
        cls = F.binary_cross_entropy_with_logits(s_cls, t_prob, reduction="none").sum(-1)
        fg = t_prob[..., 1:].max(-1).values
    else:
        t_prob = torch.softmax(t_cls, -1)
        cls = -(t_prob * torch.log_softmax(s_cls, -1)).sum(-1)
        fg = 1 - t_prob[..., 0]
    box = F.smooth_l1_loss(s_box, t_box, reduction="none", beta=1.0).sum(-1)
    weight = fg / fg.sum(-1, keepdim=True).clamp(min=1e-6)
    return cls.mean(-1).mean() + (box * weight).sum(-1).mean()


class DetectionLoss(nn.Module):
    """What a QAT recipe optimizes, as one component (`loss._component_` in a recipe):
    `ssd_weight` x the SSD loss on the labels + `distill_weight` x distillation from the float
    teacher's raw outputs. ssd_weight 0 needs no labels (the person recipe: recover the float model
    under quantization, do not re-train it); focal swaps hard-negative mining for focal loss.
    Called as loss(student_outputs, teacher_outputs, targets) -> (loss, {part: value})."""

    def __init__(
        self,
        anchors: Tensor,
        box_coder: BoxCoder,
        score: str,
        ssd_weight: float = 1.0,
        distill_weight: float = 1.0,
        iou_thresh: float = 0.5,
        neg_pos_ratio: float = 3.0,
        focal: bool = False,
    ):
        super().__init__()
        if ssd_weight < 0 or distill_weight < 0 or ssd_weight + distill_weight <= 0:
            raise ValueError(
                "loss: ssd_weight and distill_weight must be >= 0, and one of them > 0"
            )
        self.register_buffer("anchors", anchors, persistent=False)
        self.box_coder, self.score = box_coder, score
        self.ssd_weight, self.distill_weight = float(ssd_weight), float(distill_weight)
        self.cfg = SSDLossConfig(iou_thresh=iou_thresh, neg_pos_ratio=neg_pos_ratio, focal=focal)

    def forward(
        self,
        student: tuple[Tensor, Tensor],
        teacher: tuple[Tensor, Tensor] | None,
        targets: list[dict],
    ) -> tuple[Tensor, dict]:
        loss, parts = student[0].sum() * 0, {}
        if self.ssd_weight > 0:
            sup, parts = ssd_loss(
                *student, targets, self.anchors, self.box_coder, self.score, self.cfg
            )
            loss = loss + self.ssd_weight * sup
        if self.distill_weight > 0:
            kd = distillation_loss(student, teacher, self.score)
            loss = loss + self.distill_weight * kd
            parts["distill"] = float(kd)
        return loss, parts
