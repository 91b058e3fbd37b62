"""Core ML's NonMaximumSuppression model (NonMaximumSuppression.proto), as its spec documents it:

- inputs: confidence [N, C] (per box, each class's confidence) and coordinates [N, 4] (x center,
  y center, width, height); optional run-time overrides of both thresholds;
- boxes whose confidence is below the confidence threshold are discarded first; a box's
  confidence is its row's largest, its label that column (PickTop.perClass: "suppression is only
  done among predictions with the same label (argmax of the confidence)");
- PickTop: sort by descending confidence, keep the top box, suppress the boxes overlapping it by
  more than the IoU threshold, repeat ("1.0 means there will be no suppression based on IoU");
- outputs: the kept boxes' full confidence rows and coordinates, in that order.

Hand-written, in numpy: the algorithm is the spec's own few steps, and a library NMS
(torchvision.ops.nms) takes one score per box and leaves its tie order and the perClass label rule
to us anyway. Ties keep the input order (a stable sort).
"""

from __future__ import annotations

import numpy as np


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one (x1, y1, x2, y2) box with each of `boxes`."""
    lt = np.maximum(box[:2], boxes[:, :2])
    rb = np.minimum(box[2:], boxes[:, 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=1)

    def area(b):
        return np.clip(b[..., 2] - b[..., 0], 0, None) * np.clip(b[..., 3] - b[..., 1], 0, None)

    union = area(box) + area(boxes) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def pick_top(
    confidence: np.ndarray,
    coordinates: np.ndarray,
    iou_threshold: float,
    confidence_threshold: float,
    per_class: bool,
) -> np.ndarray:
    """-> indices of the kept rows, by descending confidence."""
    conf = np.asarray(confidence, dtype=np.float64)
    xywh = np.asarray(coordinates, dtype=np.float64)
    best = conf.max(axis=1) if conf.shape[1] else np.zeros(len(conf))
    label = conf.argmax(axis=1) if conf.shape[1] else np.zeros(len(conf), dtype=np.int64)
    boxes = np.concatenate([xywh[:, :2] - xywh[:, 2:] / 2, xywh[:, :2] + xywh[:, 2:] / 2], axis=1)
    candidates = np.nonzero(best >= confidence_threshold)[0]
    order = candidates[np.argsort(-best[candidates], kind="stable")]
    alive = np.ones(len(order), dtype=bool)
    kept = []
    for i in range(len(order)):
        if not alive[i]:
            continue
        top = order[i]
        kept.append(top)
        rest = order[i + 1 :]
        suppress = _iou(boxes[top], boxes[rest]) > iou_threshold
        if per_class:
            suppress &= label[rest] == label[top]
        alive[i + 1 :] &= ~suppress
    return np.asarray(kept, dtype=np.int64)


def run_nms_model(nms_spec, features: dict) -> dict:
    """One NonMaximumSuppression model (its spec message) on the features it names."""
    iou = nms_spec.iouThreshold
    conf_thr = nms_spec.confidenceThreshold
    if nms_spec.iouThresholdInputFeatureName in features:
        iou = float(np.asarray(features[nms_spec.iouThresholdInputFeatureName]))
    if nms_spec.confidenceThresholdInputFeatureName in features:
        conf_thr = float(np.asarray(features[nms_spec.confidenceThresholdInputFeatureName]))
    confidence = np.asarray(features[nms_spec.confidenceInputFeatureName])
    coordinates = np.asarray(features[nms_spec.coordinatesInputFeatureName])
    per_class = nms_spec.pickTop.perClass
    keep = pick_top(confidence, coordinates, iou, conf_thr, per_class)
    return {
        nms_spec.confidenceOutputFeatureName: confidence[keep],
        nms_spec.coordinatesOutputFeatureName: coordinates[keep],
    }


def class_labels(nms_spec) -> list:
    which = nms_spec.WhichOneof("ClassLabels")
    if which == "stringClassLabels":
        return list(nms_spec.stringClassLabels.vector)
    if which == "int64ClassLabels":
        return list(nms_spec.int64ClassLabels.vector)
    return []
