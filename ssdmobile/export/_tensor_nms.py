"""NMS as fixed-shape tensor code, for targets without a native NMS op (TorchScript, ExecuTorch).

It computes what the eager nms_per_class computes (score threshold, top-k candidates per class,
greedy per-class NMS, the best max_detections) on the `pool` best (anchor, class) candidates:

1. Pool. The `pool` best (anchor, class) candidates by score (one topk, over the scores of the
   `pool` anchors whose best class scores highest, which hold them all). Greedy NMS visits
   candidates best first and a candidate's fate depends only on better ones, so greedy NMS on the
   pool keeps exactly the first boxes that greedy NMS on everything keeps; only when fewer than
   max_detections survive inside the pool is the list short at its tail. Measured on coco128 (256
   images): the person detector needs at most 446 candidates for its 100 detections, SSDlite320
   (randomized, trained-like or worst-case scores, see benchmarks/bench_nms.py) at most 401 for
   300; the default pool is 512. A randomized SSDlite320 with realistic BatchNorm statistics and
   fitted trained-like scores needs more (neighbouring boxes suppress each other more): on the 128
   val2017 images the list is short at its tail on 57 (128 to 291 detections of 300), while
   eager's 100 best, all COCO AP counts (maxDets=100), are in it on 124 (README, NMS section).
2. Suppression matrix, S[i, j] > 0 iff candidate i suppresses j: i before j, same class and
   IoU > iou_thresh, with the IoU computed in the order torchvision's kernel uses
   (inter / (area_i + area_j - inter)), so the threshold test is the same float comparison.
3. Cluster-NMS (Zheng et al., 2020): keep = valid, then repeatedly keep[j] = valid[j] and no
   kept i suppresses j. Its fixed point is greedy NMS, reached after as many rounds as the
   longest chain "i suppresses j which would have suppressed k". It runs block by block (`block`
   candidates in score order): a block depends only on earlier blocks, which are final when it
   starts, so only the lower block-triangle of S is built and each round is a [1, B] x [B, B]
   product. Rounds needed on coco128 (256 images): at most 9 per 128-block for the person
   detector, 4 for SSDlite320; `iterations` (default 12) bounds them. A longer chain could keep a
   box that greedy NMS suppresses (never seen here).

Every op on the matrices is one that ExecuTorch's XNNPACK partitioner delegates (maximum, minimum,
sub, mul, div, relu, hardtanh, bmm, slices, views): no comparisons, bools or integer math there.
A suppression is the positive float BIG * relu(IoU - t), so a product with the kept vector is
0 or above 1, and hardtanh(valid - product, 0, 1) is the new kept vector. Only the topk, gathers and
threshold tests on vectors run in ExecuTorch's portable kernels. Hand-written because neither
ExecuTorch nor the TorchScript lite interpreter has a detection NMS op.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..ops.boxes import class_scores, decode_boxes
from ._common import RawCore

DEFAULT_POOL = 512
DEFAULT_BLOCK = 128
DEFAULT_ITERATIONS = 12
# relu(IoU - t) is at least one float32 step of t when positive; BIG lifts that above 1 for any
# t >= 1e-20, and pool * BIG stays far below float32's max
BIG = 2.0**100
TINY = 1e-30


def float_threshold(t: float) -> float:
    """The float32 x such that (float32 v > x) == (v > t in double), as torchvision's kernel
    compares a float IoU with a double threshold."""
    x = np.float32(t)
    return float(np.nextafter(x, np.float32(-np.inf)) if float(x) > t else x)


def default_pool(max_detections: int, block: int = DEFAULT_BLOCK) -> int:
    return max(DEFAULT_POOL, math.ceil(1.5 * max_detections / block) * block)


def traceable(detector, nms: bool) -> nn.Module:
    """What TorchScript and ExecuTorch trace: the raw core, or the core with this tensor NMS."""
    return (TensorNMSDetector(detector) if nms else RawCore(detector)).eval()


class TensorNMS(nn.Module):
    """(boxes [A, 4] normalized xyxy clamped to [0, 1], scores [A, K] foreground) ->
    (boxes [M, 4], scores [M], labels [M] int64 in 1..K, num_detections [1] int64), M =
    max_detections, best first; rows past num_detections are zeros."""

    def __init__(
        self,
        postprocess,
        num_anchors: int,
        num_fg: int,
        pool: int | None = None,
        block: int = DEFAULT_BLOCK,
        iterations: int = DEFAULT_ITERATIONS,
    ):
        super().__init__()
        pp = postprocess
        self.num_fg = num_fg
        self.score_thresh = float(pp.score_thresh)
        self.iou_thresh = float_threshold(pp.iou_thresh)
        self.max_detections = int(pp.max_detections)
        self.pool = min(num_anchors, pool or default_pool(self.max_detections, block))
        self.out_rows = min(self.max_detections, self.pool)
        self.topk_candidates = self.max_per_class = None
        # the per-class limits, where they bind; with one class, the
        # pool and the output are the class
        if num_fg == 1:
            self.pool = min(self.pool, pp.topk_candidates or self.pool)
            self.out_rows = min(self.out_rows, self.pool, pp.max_per_class or self.out_rows)
        else:
            if pp.topk_candidates is not None and pp.topk_candidates < self.pool:
                self.topk_candidates = pp.topk_candidates
            if pp.max_per_class is not None and pp.max_per_class < self.out_rows:
                self.max_per_class = pp.max_per_class
        self.block = min(block, self.pool)
        self.iterations = iterations
        # key = class * 3P + position: "i before j in the same class" <=> 0 < key_j - key_i < 2P
        self.register_buffer(
            "position", torch.arange(self.pool, dtype=torch.float32)[:, None], persistent=False
        )

    def _pairs(self, cols: Tensor, rows: Tensor):
        """cols [1, N, 6] (candidates i), rows [1, 6, B] (candidates j), features x1 y1 x2 y2 area
        key -> (BIG * suppression [1, N, B] >= 0, same class and i before j
        [1, N, B] in {0, >= 1})."""
        # slices, which XNNPACK takes
        x1, y1, x2, y2, area, key = (cols[:, :, i : i + 1] for i in range(6))
        rx1, ry1, rx2, ry2, rarea, rkey = (rows[:, i : i + 1] for i in range(6))
        # torchvision clamps both overlaps at 0; one clamp gives the same decision, as a negative
        # intersection gives a negative IoU
        inter = F.relu(torch.minimum(x2, rx2) - torch.maximum(x1, rx1)) * (
            torch.minimum(y2, ry2) - torch.maximum(y1, ry1)
        )
        iou = inter / ((area + rarea) - inter)
        before = F.relu(rkey - key)
        if self.num_fg > 1:
            before = torch.minimum(before, F.relu((key + 2.0 * self.pool) - rkey))
        return torch.minimum(F.relu(iou - self.iou_thresh), before) * BIG, before

    @staticmethod
    def _count(weights: Tensor, matrix: Tensor) -> Tensor:
        """weights [1, 1, N], matrix [1, N, B] -> [1, 1, B]: sum_i weights[i] * matrix[i, j]."""
        return torch.bmm(weights, matrix)

    def forward(self, boxes: Tensor, scores: Tensor):
        p, bsz = self.pool, self.block
        if self.num_fg > 1:
            # the P best (anchor, class) pairs lie among the P anchors with the best top class, and
            # a topk over those P x K scores costs a fraction of one over all A x K
            best_anchors = scores.amax(dim=1).topk(p).indices
            # best first
            top_scores, flat_idx = scores.index_select(0, best_anchors).reshape(-1).topk(p)
            row = torch.div(flat_idx, self.num_fg, rounding_mode="floor")
            anchor_idx, cls_idx = best_anchors.index_select(0, row), flat_idx - row * self.num_fg
        else:
            top_scores, anchor_idx = scores.reshape(-1).topk(p)  # best first
            cls_idx = torch.zeros_like(anchor_idx)
        cand = boxes.index_select(0, anchor_idx)  # [P, 4]
        valid = (top_scores > self.score_thresh).to(cand.dtype).reshape(1, 1, p)
        # + TINY: the union of two empty boxes is not 0 (0 / 0 never suppresses in torchvision, 0 /
        # TINY does not either); any area above 1e-22 is unchanged by it
        area = (cand[:, 2:3] - cand[:, 0:1]) * (cand[:, 3:4] - cand[:, 1:2]) + TINY
        key = self.position + cls_idx.to(cand.dtype)[:, None] * (3.0 * p)
        cols = torch.cat([cand, area, key], dim=1).reshape(1, p, 6)
        rows = cols.permute(0, 2, 1)  # [1, 6, P]
        ones = torch.ones_like(valid)
        keep = []
        same_before = []
        for start in range(0, p, bsz):
            end = min(p, start + bsz)
            # a slice that takes everything lowers to an alias_copy that ExecuTorch runs outside the
            # delegate, splitting it in two: skip the no-op slices
            sup, before = self._pairs(  # [1, end, B]
                cols if end == p else cols[:, :end],
                rows if (start, end) == (0, p) else rows[:, :, start:end],
            )
            v = valid[:, :, start:end]
            if (
                self.topk_candidates is not None
            ):  # rank inside its class before NMS, as eager's topk
                rank = self._count(ones[:, :, :end], F.hardtanh(before, 0.0, 1.0))
                v = v * F.hardtanh(self.topk_candidates - rank, 0.0, 1.0)
            if self.max_per_class is not None:
                same_before.append(F.hardtanh(before, 0.0, 1.0))
            if start > 0:  # suppressed by a kept box of an earlier, final block
                # XNNPACK concatenates 2 or more
                earlier = torch.cat(keep, dim=2) if len(keep) > 1 else keep[0]
                v = F.hardtanh(v - self._count(earlier, sup[:, :start]), 0.0, 1.0)
            own = sup[:, start:] if start > 0 else sup
            k = v
            for _ in range(self.iterations):
                k = F.hardtanh(v - self._count(k, own), 0.0, 1.0)
            keep.append(k)
        keep = torch.cat(keep, dim=2) if len(keep) > 1 else keep[0]
        if self.max_per_class is not None:  # cap per class after NMS (TF Object Detection API)
            kept_before = torch.cat(
                [self._count(keep[:, :, : m.shape[1]], m) for m in same_before], dim=2
            )
            keep = keep * F.hardtanh(self.max_per_class - kept_before, 0.0, 1.0)
        keep = keep.reshape(p)
        m = self.out_rows
        out_scores, order = (top_scores * keep).topk(m)  # kept ones first, best first
        kept = keep.index_select(0, order)
        out_boxes = cand.index_select(0, order) * kept[:, None]
        labels = (cls_idx.index_select(0, order) + 1) * kept.to(cls_idx.dtype)
        num = keep.sum().to(torch.int64).clamp(max=m).reshape(1)
        if m < self.max_detections:  # tiny models: pad to the declared size
            pad = self.max_detections - m
            out_boxes = torch.cat([out_boxes, out_boxes.new_zeros(pad, 4)])
            out_scores = torch.cat([out_scores, out_scores.new_zeros(pad)])
            labels = torch.cat([labels, labels.new_zeros(pad)])
        return out_boxes, out_scores, labels, num


class TensorNMSDetector(nn.Module):
    """image tensor [1, 3, H, W] -> (boxes [1, M, 4] normalized xyxy, scores [1, M], labels [1, M],
    num_detections [1]); M = max_detections, rows past num_detections are zero padding."""

    def __init__(
        self,
        detector,
        pool: int | None = None,
        block: int = DEFAULT_BLOCK,
        iterations: int = DEFAULT_ITERATIONS,
    ):
        super().__init__()
        pp = detector.spec.postprocess
        self.core = detector.core
        self.register_buffer("anchors", detector.anchors.clone())
        self.coder = detector.spec.box_coder
        self.score = pp.score
        self.nms = TensorNMS(
            pp, detector.anchors.shape[0], detector.spec.num_classes - 1, pool, block, iterations
        )

    def forward(self, x: Tensor):
        box_encodings, class_logits = self.core(x)
        boxes = decode_boxes(box_encodings, self.anchors, self.coder)[0].clamp(0.0, 1.0)  # [A, 4]
        scores = class_scores(class_logits, self.score)[0, :, 1:]  # [A, K]
        out_boxes, out_scores, labels, num = self.nms(boxes, scores)
        return out_boxes[None], out_scores[None], labels[None], num
