"""The sidecar JSON written next to every artifact (`<artifact stem>.json`).

Apps and runtimes read only this file, never hard-coded constants: input shape/layout/dtype,
preprocessing, class names, output names and layout, anchors and box coder (for apps that decode
themselves), whether NMS is in the graph and its thresholds, precision and quantization scheme,
checkpoint provenance, and the measured AP and drift once `validate` has run.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from . import __version__
from .errors import SSDMobileError
from .spec import ModelSpec

FORMAT = "ssdmobile-sidecar"
SCHEMA_VERSION = 1

# What the Android and iOS apps read (tests/test_sidecar_fields.py checks the apps' own lists against
# this); `validate_sidecar` checks these exist. A value may be null (clamp, max_per_class), never absent.
REQUIRED_FIELDS = (
    "format", "schema_version", "model", "target", "precision", "artifact",
    "input.name", "input.shape", "input.layout", "input.dtype",
    "preprocess.size", "preprocess.resize", "preprocess.mean", "preprocess.std", "preprocess.input_range",
    "class_names", "outputs", "decode.anchors", "decode.anchor_format", "decode.box_coder.weights",
    "decode.box_coder.order", "decode.box_coder.clamp", "decode.score",
    "nms.in_graph", "nms.iou_thresh", "nms.score_thresh", "nms.topk_candidates", "nms.max_per_class",
    "nms.max_detections",
)


class SidecarError(SSDMobileError):
    pass


def sidecar_path(artifact: str | os.PathLike) -> Path:
    return Path(artifact).with_suffix(".json")


def build_sidecar(spec: ModelSpec, anchors, *, target: str, precision: str, artifact: str,
                  input_name: str, input_shape, input_layout: str = "NCHW", input_dtype: str = "float32",
                  outputs: list[dict], nms_in_graph: bool, quantization: dict | None = None,
                  checkpoint: dict | None = None, extra: dict | None = None) -> dict:
    """outputs: [{"name", "shape", "dtype", "meaning"}] in the artifact's output order."""
    p, pp, bc = spec.preprocess, spec.postprocess, spec.box_coder
    d = {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "ssdmobile_version": __version__,
        "model": spec.name,
        "target": target,
        "precision": precision,
        "artifact": artifact,
        "input": {"name": input_name, "shape": list(input_shape), "layout": input_layout,
                  "dtype": input_dtype, "color": "RGB"},
        # x = (pixel / 255 - mean) / std, resized to size (H, W) with `resize`
        "preprocess": {"size": list(p.size), "resize": p.resize, "mean": list(p.mean), "std": list(p.std),
                       "input_range": [0, 255], "in_graph": input_dtype == "uint8"},
        "class_names": list(spec.class_names),
        "background_class": 0,
        "outputs": outputs,
        "decode": {
            "anchor_format": "cxcywh_normalized",
            "anchors": [[round(float(v), 7) for v in a] for a in anchors.tolist()],
            "box_coder": {"weights": list(bc.weights), "order": bc.order, "clamp": bc.clamp},
            "box_format": "xyxy_normalized",
            "score": pp.score,
        },
        "nms": {"in_graph": nms_in_graph, "iou_thresh": pp.iou_thresh, "score_thresh": pp.score_thresh,
                "topk_candidates": pp.topk_candidates, "max_per_class": pp.max_per_class,
                "max_detections": pp.max_detections},
        "quantization": quantization,
        "checkpoint": checkpoint,
        "spec": spec.to_dict(),
        "metrics": None,
    }
    if extra:
        d.update(extra)
    return d


def _get(d: dict, dotted: str):
    for part in dotted.split("."):
        if not isinstance(d, dict) or part not in d:
            raise KeyError(dotted)
        d = d[part]
    return d


def validate_sidecar(d: dict, source: str = "sidecar") -> dict:
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise SidecarError(f"{source}: not an ssdmobile sidecar (no \"format\": \"{FORMAT}\")")
    missing = []
    for f in REQUIRED_FIELDS:
        try:
            _get(d, f)
        except KeyError:
            missing.append(f)
    if missing:
        raise SidecarError(f"{source}: sidecar lacks {', '.join(missing)}")
    return d


def read_sidecar(artifact_or_json: str | os.PathLike) -> dict:
    path = Path(artifact_or_json)
    if path.suffix != ".json":
        path = sidecar_path(path)
    if not path.is_file():
        raise SidecarError(f"sidecar not found: {path} (every artifact needs the JSON that export wrote beside it)")
    try:
        d = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SidecarError(f"{path}: not valid JSON ({e})") from None
    return validate_sidecar(d, str(path))
