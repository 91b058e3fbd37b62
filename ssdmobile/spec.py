"""What a detector is, apart from its weights: the constants every stage and every app needs.

A ModelSpec travels with the model (Detector.spec) and into every artifact's sidecar JSON, so the
apps and the runtimes read preprocessing, box decoding and NMS settings from one place.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Preprocess:
    """Image -> core input. x in [0, 1] after dividing uint8 by 255, then (x - mean) / std,
    resized to `size` (H, W) with `resize`:
      "bilinear": half-pixel bilinear (torch align_corners=False), as torchvision's transform;
      "tf1_bilinear": TF1 ResizeBilinear(align_corners=False, half_pixel_centers=False)."""

    size: tuple[int, int]
    resize: str = "bilinear"
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    layout: str = "NCHW"

    def __post_init__(self):
        if self.resize not in ("bilinear", "tf1_bilinear"):
            raise ValueError(f"unknown resize mode {self.resize!r}")


@dataclass(frozen=True)
class BoxCoder:
    """Faster R-CNN box coder. `order` names the four encoding channels as the core emits them:
    "xywh" = (dx, dy, dw, dh) as torchvision, "yxhw" = (ty, tx, th, tw) as TensorFlow.
    `clamp` bounds dw/dh before exp (torchvision: log(1000/16)); None = no clamp (TensorFlow)."""

    weights: tuple[float, float, float, float] = (10.0, 10.0, 5.0, 5.0)
    order: str = "xywh"
    clamp: float | None = math.log(1000.0 / 16)

    def __post_init__(self):
        if self.order not in ("xywh", "yxhw"):
            raise ValueError(f"unknown box encoding order {self.order!r}")


@dataclass(frozen=True)
class Postprocess:
    """Scores and per-class NMS. Class 0 is background and never reported.
    torchvision SSD: score_thresh 0.001, topk_candidates 300 per class, iou 0.55, 300 detections.
    TF Object Detection API: score_thresh 1e-8, iou 0.6, 100 per class, 100 detections."""

    score: str = "softmax"  # "softmax" over classes, or "sigmoid" per class
    score_thresh: float = 0.001
    iou_thresh: float = 0.55
    topk_candidates: int = 300  # per class, before NMS
    max_per_class: int | None = None  # per class, after NMS
    max_detections: int = 300

    def __post_init__(self):
        if self.score not in ("softmax", "sigmoid"):
            raise ValueError(f"unknown score function {self.score!r}")


@dataclass(frozen=True)
class ModelSpec:
    name: str
    preprocess: Preprocess
    class_names: tuple[str, ...]  # index = label id; index 0 is background
    box_coder: BoxCoder = field(default_factory=BoxCoder)
    postprocess: Postprocess = field(default_factory=Postprocess)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ModelSpec:
        return cls(
            name=d["name"],
            preprocess=Preprocess(
                **{
                    **d["preprocess"],
                    "size": tuple(d["preprocess"]["size"]),
                    "mean": tuple(d["preprocess"]["mean"]),
                    "std": tuple(d["preprocess"]["std"]),
                }
            ),
            class_names=tuple(d["class_names"]),
            box_coder=BoxCoder(**{**d["box_coder"], "weights": tuple(d["box_coder"]["weights"])}),
            postprocess=Postprocess(**d["postprocess"]),
        )

    def replace(self, **changes) -> ModelSpec:
        return dataclasses.replace(self, **changes)


# torchvision's 91-id COCO layout: label id == COCO category id, "N/A" for the ids COCO skips.
COCO_91_CLASSES = (
    "__background__",
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "airplane",
    "bus",
    "train",
    "truck",
    "boat",
    "traffic light",
    "fire hydrant",
    "N/A",
    "stop sign",
    "parking meter",
    "bench",
    "bird",
    "cat",
    "dog",
    "horse",
    "sheep",
    "cow",
    "elephant",
    "bear",
    "zebra",
    "giraffe",
    "N/A",
    "backpack",
    "umbrella",
    "N/A",
    "N/A",
    "handbag",
    "tie",
    "suitcase",
    "frisbee",
    "skis",
    "snowboard",
    "sports ball",
    "kite",
    "baseball bat",
    "baseball glove",
    "skateboard",
    "surfboard",
    "tennis racket",
    "bottle",
    "N/A",
    "wine glass",
    "cup",
    "fork",
    "knife",
    "spoon",
    "bowl",
    "banana",
    "apple",
    "sandwich",
    "orange",
    "broccoli",
    "carrot",
    "hot dog",
    "pizza",
    "donut",
    "cake",
    "chair",
    "couch",
    "potted plant",
    "bed",
    "N/A",
    "dining table",
    "N/A",
    "N/A",
    "toilet",
    "N/A",
    "tv",
    "laptop",
    "mouse",
    "remote",
    "keyboard",
    "cell phone",
    "microwave",
    "oven",
    "toaster",
    "sink",
    "refrigerator",
    "N/A",
    "book",
    "clock",
    "vase",
    "scissors",
    "teddy bear",
    "hair drier",
    "toothbrush",
)
