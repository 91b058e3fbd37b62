"""Golden files for the apps' own post-processing: the Python reference run on real images.

For each image: the decoded RGB pixels and the core input the reference preprocessing makes of
them, the raw core outputs (box_encodings, class_logits), and the detections that
Detector.decode + ops.boxes.nms_per_class make of those outputs. The Kotlin module in
android_demo/postprocess reads the same sidecar an export writes, recomputes everything from
the raw tensors and must land within 1e-4 of these numbers.

Layout of the output directory (generated, never committed):
  sidecar.json                 build_sidecar(...) for the model, target "reference", NMS not in
                               graph
  reference.json               manifest (ssdmobile.device.ReferenceData): one entry per image,
                               detections inline
  <stem>.rgb.u8                decoded image, uint8 HWC RGB
  <stem>.input.f32             core input [1, 3, H, W] float32 little-endian (the model's layout)
  <stem>.box_encodings.f32     [A, 4] float32 little-endian
  <stem>.class_logits.f32      [A, C] float32 little-endian
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from .config import ConfigError, override_dataclass
from .data.images import load_image
from .device import REFERENCE_FORMAT, REFERENCE_MANIFEST, REFERENCE_VERSION, ReferenceData
from .errors import ImageError
from .fileio import atomic_directory, write_json_atomic
from .ops.boxes import nms_per_class
from .sidecar import Input, build_sidecar, write_sidecar
from .spec import ModelSpec


def apply_overrides(spec: ModelSpec, overrides: list[str]) -> ModelSpec:
    """["postprocess.score=sigmoid", "box_coder.clamp=null", ...] -> a new ModelSpec, in the one
    override syntax of ssdmobile.config. Lets the golden files cover every code path the apps have
    (sigmoid, TF box order, max_per_class, tf1 resize) with a model that runs offline."""
    values = override_dataclass(spec, overrides)
    try:
        return ModelSpec.from_dict(values)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"bad override ({', '.join(overrides)}): {e}") from None


def _write_f32(path: Path, t: torch.Tensor) -> None:
    np.ascontiguousarray(t.detach().cpu().numpy(), dtype="<f4").tofile(path)


def _floats(t: torch.Tensor) -> list:
    # float32 -> Python float is exact, and repr round-trips, so the JSON holds the very values
    return t.detach().cpu().to(torch.float64).tolist()


@torch.no_grad()
def write_golden(
    detector,
    image_paths: list[str | os.PathLike],
    out_dir: str | os.PathLike,
    *,
    weights: str,
    logit_scale: float = 1.0,
) -> Path:
    """Run the reference on each image and write the reference directory; returns reference.json's
    path. logit_scale multiplies the class logits before they are written and scored: random weights
    give logits so large that sigmoid saturates to exactly 1.0 in float32, and then the order among
    tied scores, not the post-processing, decides which boxes make the cut."""
    if not image_paths:
        raise ImageError("no images given for the golden files")
    final = Path(out_dir)
    with atomic_directory(final) as out:  # an image that fails leaves no partial golden folder
        _write_golden(detector, [Path(p) for p in image_paths], out, weights, logit_scale)
    return final / REFERENCE_MANIFEST


def _write_golden(
    detector, image_paths: list[Path], out: Path, weights: str, logit_scale: float
) -> None:
    spec = detector.spec
    h, w = spec.preprocess.size
    num_anchors, num_classes = detector.anchors.shape[0], spec.num_classes
    sidecar = build_sidecar(
        spec,
        detector.anchors,
        target="reference",
        precision="fp32",
        artifact="",
        input=Input(name="image", shape=[1, 3, h, w], layout="NCHW", dtype="float32", color="RGB"),
        outputs=[
            {
                "name": "box_encodings",
                "shape": [1, num_anchors, 4],
                "dtype": "float32",
                "meaning": "box_encodings",
            },
            {
                "name": "class_logits",
                "shape": [1, num_anchors, num_classes],
                "dtype": "float32",
                "meaning": "class_logits",
            },
        ],
        nms_in_graph=False,
        checkpoint={"weights": weights},
    )
    write_sidecar(out / "sidecar.json", sidecar)

    entries = []
    for path in image_paths:
        path = Path(path)
        image = load_image(path)  # uint8 [3, H, W]
        stem = path.stem
        x = detector.preprocess([image])
        box_encodings, class_logits = detector.forward_core(x)
        class_logits = class_logits * logit_scale
        boxes, scores = detector.decode(box_encodings, class_logits)
        kb, ks, kl = nms_per_class(boxes[0], scores[0], spec.postprocess)
        img_h, img_w = image.shape[-2:]
        np.ascontiguousarray(image.permute(1, 2, 0).numpy(), dtype=np.uint8).tofile(
            out / f"{stem}.rgb.u8"
        )
        _write_f32(out / f"{stem}.input.f32", x)
        _write_f32(out / f"{stem}.box_encodings.f32", box_encodings[0])
        _write_f32(out / f"{stem}.class_logits.f32", class_logits[0])
        scale = torch.tensor([img_w, img_h, img_w, img_h], dtype=kb.dtype)
        entries.append(
            {
                "image": path.name,
                "width": int(img_w),
                "height": int(img_h),
                "rgb": {
                    "file": f"{stem}.rgb.u8",
                    "shape": [int(img_h), int(img_w), 3],
                    "dtype": "uint8",
                },
                "input": {"file": f"{stem}.input.f32", "shape": list(x.shape), "dtype": "float32"},
                "box_encodings": {
                    "file": f"{stem}.box_encodings.f32",
                    "shape": [num_anchors, 4],
                    "dtype": "float32",
                },
                "class_logits": {
                    "file": f"{stem}.class_logits.f32",
                    "shape": [num_anchors, num_classes],
                    "dtype": "float32",
                },
                "detections": {
                    "count": int(kb.shape[0]),
                    "boxes": _floats(kb),
                    "scores": _floats(ks),
                    "labels": kl.tolist(),
                    "boxes_pixels": _floats(kb * scale),
                },
            }
        )
    manifest = ReferenceData(
        format=REFERENCE_FORMAT,
        version=REFERENCE_VERSION,
        model=spec.name,
        weights=weights,
        logit_scale=float(logit_scale),
        sidecar="sidecar.json",
        images=entries,
    )
    write_json_atomic(out / REFERENCE_MANIFEST, manifest.to_dict())
