"""NMS as fixed-shape tensor code, for targets without a native NMS op (TorchScript, ExecuTorch).

Greedy NMS over a fixed pool of candidates: the `pool` best (anchor, class) pairs by score, all
classes at once (boxes of different classes are moved apart by an offset so they never overlap,
the usual batched-NMS trick), computed as Cluster-NMS (Zheng et al., 2020): starting from "keep
every candidate", repeat keep[j] = valid[j] and no kept i < j overlaps j above the threshold. The
fixed point of that iteration is exactly greedy NMS, reached after as many iterations as the
longest chain of "i suppresses j which would have suppressed k"; `iterations` bounds the chain
(real detectors need a handful). Each iteration is one [pool] x [pool, pool] matmul, so there is
no data-dependent control flow and no dynamic shape, which is what tracing and ExecuTorch need
(an unrolled box-by-box greedy loop is exact too, but costs thousands of tiny ops).

Differences from the eager nms_per_class, all in the tail of the list: the pool is global (eager
takes topk_candidates per class), `max_per_class` is not applied (it only matters when it is
smaller than max_detections with several classes), and a chain longer than `iterations`.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ..ops.boxes import class_scores, decode_boxes
from ._common import RawCore


def _pairwise_iou(b: Tensor) -> Tensor:
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    lt = torch.maximum(b[:, None, :2], b[None, :, :2])
    rb = torch.minimum(b[:, None, 2:], b[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    return inter / (area[:, None] + area[None, :] - inter).clamp(min=1e-12)


def traceable(detector, nms: bool) -> nn.Module:
    """What TorchScript and ExecuTorch trace: the raw core, or the core with this tensor NMS."""
    return (TensorNMSDetector(detector) if nms else RawCore(detector)).eval()


class TensorNMSDetector(nn.Module):
    """image tensor [1, 3, H, W] -> (boxes [1, M, 4] normalized xyxy, scores [1, M], labels [1, M],
    num_detections [1]); M = max_detections, rows past num_detections are zero padding."""

    def __init__(self, detector, pool: int | None = None, iterations: int = 32):
        super().__init__()
        pp = detector.spec.postprocess
        self.core = detector.core
        self.register_buffer("anchors", detector.anchors.clone())
        self.coder = detector.spec.box_coder
        self.score = pp.score
        self.score_thresh = float(pp.score_thresh)
        self.iou_thresh = float(pp.iou_thresh)
        self.max_detections = int(pp.max_detections)
        total = detector.anchors.shape[0] * (detector.spec.num_classes - 1)
        # a candidate pool of 8x max_detections reproduced the eager NMS exactly on coco128 images of
        # the person detector (2x did not: suppressed boxes use up the pool); chains were < 24 long
        self.pool = min(total, pool or max(8 * self.max_detections, 800))
        self.iterations = iterations

    def forward(self, x: Tensor):
        box_encodings, class_logits = self.core(x)
        boxes = decode_boxes(box_encodings, self.anchors, self.coder)[0].clamp(0.0, 1.0)  # [A, 4]
        scores = class_scores(class_logits, self.score)[0, :, 1:]  # [A, C-1]
        num_fg = scores.shape[1]
        top_scores, flat_idx = scores.reshape(-1).topk(self.pool)  # descending
        anchor_idx = torch.div(flat_idx, num_fg, rounding_mode="floor")
        cls_idx = flat_idx - anchor_idx * num_fg
        cand = boxes.index_select(0, anchor_idx)
        shifted = cand + (cls_idx.to(cand.dtype) * 2.0)[:, None]  # classes never overlap
        # suppress[i, j]: candidate i (higher score) removes j if i itself is kept
        suppress = ((_pairwise_iou(shifted) > self.iou_thresh).triu(1)).to(cand.dtype)
        valid = top_scores > self.score_thresh
        keep = valid
        for _ in range(self.iterations):
            keep = valid & ((keep.to(cand.dtype)[None] @ suppress)[0] == 0)
        kept_scores = torch.where(keep, top_scores, torch.zeros_like(top_scores))
        m = min(self.max_detections, self.pool)
        out_scores, order = kept_scores.topk(m)  # kept ones first, still by descending score
        valid = keep.index_select(0, order)
        out_boxes = cand.index_select(0, order) * valid[:, None].to(cand.dtype)
        labels = (cls_idx.index_select(0, order) + 1) * valid.to(cls_idx.dtype)
        num = keep.sum().clamp(max=m).reshape(1)
        if m < self.max_detections:  # tiny models: pad to the declared size
            pad = self.max_detections - m
            out_boxes = torch.cat([out_boxes, out_boxes.new_zeros(pad, 4)])
            out_scores = torch.cat([out_scores, out_scores.new_zeros(pad)])
            labels = torch.cat([labels, labels.new_zeros(pad)])
        return out_boxes[None], out_scores[None], labels[None], num
