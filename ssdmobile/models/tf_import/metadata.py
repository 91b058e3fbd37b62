"""What a frozen graph says besides its weights: classes, anchors, box coder, preprocessing and
NMS settings, as the metadata file beside an imported checkpoint."""

from __future__ import annotations

from ..ssdlite_mobilenet_v2 import (
    INPUT_SIZE,
)
from .graphdef import TFGraph, TFImportError, node_attrs

PERSON_CLASS_NAMES = ("background", "person")


# README defaults (TF Object Detection API ssdlite config), used where the graph has no NMS
_DEFAULT_NMS = {
    "iou_threshold": 0.6,
    "score_threshold": 1e-8,
    "max_detections_per_class": 100,
    "max_total_detections": 100,
}


def _short(x) -> float:
    """float32 constants as the decimal they were written as (0.6, not 0.6000000238)."""
    return float(f"{float(x):.7g}")


def graph_metadata(g: TFGraph, num_classes: int, class_names) -> dict:
    if class_names is None:
        class_names = (
            PERSON_CLASS_NAMES
            if num_classes == 2
            else ("background", *(f"class{i}" for i in range(1, num_classes)))
        )
    class_names = list(class_names)
    if len(class_names) != num_classes:
        raise TFImportError(
            f"{len(class_names)} class names given for a graph with {num_classes} classes "
            "(background included, first)"
        )

    size = g.const("Preprocessor/map/while/ResizeImage/stack")
    if size is not None and tuple(int(s) for s in size.reshape(-1)) != (INPUT_SIZE, INPUT_SIZE):
        raise TFImportError(
            f"the graph resizes images to {size.tolist()}, this importer supports "
            f"{INPUT_SIZE}x{INPUT_SIZE} only"
        )
    resize = [
        n
        for n in g.nodes.values()
        if n.op == "ResizeBilinear" and n.name.startswith("Preprocessor/")
    ]
    if resize:
        a = node_attrs(resize[0])
        if a.get("align_corners") and a["align_corners"].b:
            raise TFImportError(
                "the graph resizes with align_corners=True, which ssdmobile does not reproduce"
            )
        if a.get("half_pixel_centers") and a["half_pixel_centers"].b:
            raise TFImportError(
                "the graph resizes with half_pixel_centers=True; only TF1 resizing is supported"
            )
    scale = g.const("Preprocessor/mul/x")
    offset = g.const("Preprocessor/sub/y")
    scale = 2.0 / 255.0 if scale is None else float(scale)
    offset = -1.0 if offset is None else -float(offset)
    std = _short(1.0 / (255.0 * scale))  # x * scale + offset == (x / 255 - mean) / std
    mean = _short(-offset * std)

    factors = [g.const(f"Postprocessor/Decode/truediv{s}") for s in ("", "_1", "_2", "_3")]
    factors = (
        [10.0, 10.0, 5.0, 5.0] if any(f is None for f in factors) else [_short(f) for f in factors]
    )
    logit_scale = g.const("Postprocessor/scale_logits/y")
    if logit_scale is not None and _short(logit_scale) != 1.0:
        raise TFImportError(
            f"the graph divides logits by {float(logit_scale):g}; only logit_scale 1 is supported"
        )
    score = (
        "softmax"
        if any(n.op == "Softmax" and n.name.startswith("Postprocessor/") for n in g.nodes.values())
        else "sigmoid"
    )

    nms = dict(_DEFAULT_NMS)
    for key, suffix in (
        ("iou_threshold", "non_max_suppression/iou_threshold"),
        ("score_threshold", "non_max_suppression/score_threshold"),
        ("max_detections_per_class", "MultiClassNonMaxSuppression/Minimum/x"),
        ("max_total_detections", "MultiClassNonMaxSuppression/Minimum_1/x"),
    ):
        value = g.const(suffix)
        if value is not None:
            nms[key] = int(value) if key.startswith("max") else _short(value)
    clip = any("ClipToWindow" in name for name in g.nodes if name.startswith("Postprocessor/"))

    spec = {  # ssdmobile.spec.ModelSpec.to_dict() layout
        "name": "ssdlite_mobilenet_v2",
        "preprocess": {
            "size": [INPUT_SIZE, INPUT_SIZE],
            "resize": "tf1_bilinear",
            "mean": [mean] * 3,
            "std": [std] * 3,
            "layout": "NCHW",
        },
        "class_names": class_names,
        # TF's scale factors are in encoding order (y, x, h, w); the spec's weights are (x, y, w, h)
        "box_coder": {
            "weights": [factors[1], factors[0], factors[3], factors[2]],
            "order": "yxhw",
            "clamp": None,
        },
        "postprocess": {
            "score": score,
            "score_thresh": nms["score_threshold"],
            "iou_thresh": nms["iou_threshold"],
            "topk_candidates": None,
            "max_per_class": nms["max_detections_per_class"],
            "max_detections": nms["max_total_detections"],
        },
    }
    return {
        "architecture": "ssdlite_mobilenet_v2",
        "num_classes": num_classes,
        "class_names": class_names,
        "input_size": [INPUT_SIZE, INPUT_SIZE],
        "preprocessing": {
            "resize": "tf1_bilinear",
            "align_corners": False,
            "half_pixel_centers": False,
            "input": "RGB uint8",
            "scale": _short(scale),
            "offset": _short(offset),
        },
        "box_coder": {"order": "yxhw", "scale_factors": factors, "clamp": None},
        "score_converter": score,
        # TF runs NMS on unclipped boxes, then clips the survivors to the image and drops empty ones
        "nms": {**nms, "clip_after_nms": clip},
        "spec": spec,
    }
