"""COCO AP with pycocotools, the same code for the eager model and for every artifact's runtime.

Label ids are mapped explicitly: a model's class names (index = label id) are matched by name to
the dataset's categories, so torchvision's 91-id layout, a 2-class person model and a VOC dataset
all evaluate through one path."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from tqdm import tqdm

from .data import CocoDataset
from .errors import DatasetError

STAT_NAMES = (
    "AP",
    "AP50",
    "AP75",
    "AP_small",
    "AP_medium",
    "AP_large",
    "AR1",
    "AR10",
    "AR100",
    "AR_small",
    "AR_medium",
    "AR_large",
)

PredictFn = Callable[[Sequence[torch.Tensor]], list[dict]]


@dataclass
class EvalResult:
    stats: dict[str, float]
    per_class: dict[str, float]
    num_images: int
    classes: list[str]
    summary: str  # pycocotools' printed summary
    extra: dict = field(default_factory=dict)

    @property
    def ap(self) -> float:
        return self.stats["AP"]

    @property
    def ap50(self) -> float:
        return self.stats["AP50"]

    def to_dict(self) -> dict:
        return {
            "ap": self.ap,
            "ap50": self.ap50,
            "stats": self.stats,
            "per_class": self.per_class,
            "num_images": self.num_images,
            "classes": self.classes,
            **self.extra,
        }


@dataclass
class VocResult:
    map50: float  # "mAP@0.5": mean over classes of AP at IoU 0.5
    per_class: dict[str, float]
    num_images: int
    classes: list[str]

    @property
    def summary(self) -> str:
        return (
            f"mAP@0.5 (COCOeval at IoU 0.5, 101-point interpolation) = {self.map50:.4f} on "
            f"{self.num_images} images"
        )

    def to_dict(self) -> dict:
        return {
            "mAP@0.5": self.map50,
            "per_class_AP@0.5": self.per_class,
            "num_images": self.num_images,
            "classes": self.classes,
            "interpolation": "101-point (COCOeval)",
        }


def label_to_category(class_names: Sequence[str], dataset: CocoDataset) -> dict[int, int]:
    """model label id -> dataset category id, by class name
    (background and unknown names dropped)."""
    return {
        label: dataset.category_ids_by_name[name]
        for label, name in enumerate(class_names)
        if label > 0 and name in dataset.category_ids_by_name
    }


def predict_dataset(
    predict_fn: PredictFn,
    dataset: CocoDataset,
    batch_size: int = 1,
    progress: bool = True,
    desc: str = "predict",
) -> dict[int, dict]:
    """Run `predict_fn` (uint8 [3, H, W] images -> torchvision-style detections) over a dataset."""
    out: dict[int, dict] = {}
    indices = range(0, len(dataset), batch_size)
    for start in tqdm(
        indices,
        desc=desc,
        unit="batch" if batch_size > 1 else "img",
        disable=not progress,
        leave=False,
    ):
        samples = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
        for s, det in zip(samples, predict_fn([s.image for s in samples])):
            out[s.image_id] = {k: v.detach().cpu() for k, v in det.items()}
    return out


def to_coco_results(predictions: dict[int, dict], label_map: dict[int, int]) -> list[dict]:
    results = []
    for image_id, det in predictions.items():
        boxes = det["boxes"].double().numpy()
        for (x1, y1, x2, y2), score, label in zip(
            boxes, det["scores"].tolist(), det["labels"].tolist()
        ):
            if label in label_map:
                results.append(
                    {
                        "image_id": image_id,
                        "category_id": label_map[label],
                        "bbox": [x1, y1, x2 - x1, y2 - y1],
                        "score": score,
                    }
                )
    return results


def _scored_classes(
    dataset: CocoDataset, class_names: Sequence[str], classes: Sequence[str] | None
) -> tuple[dict[int, int], list[str], list[int]]:
    """(label -> category id, the class names scored, their category ids)."""
    label_map = label_to_category(class_names, dataset)
    shared = [class_names[label] for label in sorted(label_map)]
    if classes:
        unknown = [c for c in classes if c not in dataset.category_ids_by_name]
        if unknown:
            raise DatasetError(
                f"classes not in the dataset: {', '.join(unknown)} "
                f"(it has: {', '.join(sorted(dataset.category_ids_by_name))})"
            )
        not_predicted = [c for c in classes if c not in shared]
        if not_predicted:
            raise DatasetError(f"the model does not predict: {', '.join(not_predicted)}")
        shared = list(classes)
    if not shared:
        raise DatasetError("the model's classes and the dataset's categories share no name")
    return label_map, shared, [dataset.category_ids_by_name[c] for c in shared]


def coco_eval(
    dataset: CocoDataset,
    predictions: dict[int, dict],
    class_names: Sequence[str],
    classes: Sequence[str] | None = None,
) -> EvalResult:
    """AP over `classes` (names), default: every class both the model and the dataset know."""
    label_map, shared, cat_ids = _scored_classes(dataset, class_names, classes)
    results = to_coco_results(predictions, label_map)
    results = [r for r in results if r["category_id"] in cat_ids]
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        coco_dt = dataset.coco.loadRes(results) if results else _empty_results(dataset)
        ev = COCOeval(dataset.coco, coco_dt, "bbox")
        ev.params.imgIds = sorted(predictions)
        ev.params.catIds = cat_ids
        ev.evaluate()
        ev.accumulate()
    summary = io.StringIO()
    with contextlib.redirect_stdout(summary):
        ev.summarize()
    precision = ev.eval["precision"]  # [T, R, K, A, M]; area "all" = 0, maxDets 100 = last
    per_class = {}
    for k, name in enumerate(shared):
        p = precision[:, :, k, 0, -1]
        per_class[name] = float(np.mean(p[p > -1])) if (p > -1).any() else float("nan")
    return EvalResult(
        stats={n: float(v) for n, v in zip(STAT_NAMES, ev.stats)},
        per_class=per_class,
        num_images=len(predictions),
        classes=shared,
        summary=summary.getvalue().rstrip(),
    )


def voc_map50(
    dataset: CocoDataset,
    predictions: dict[int, dict],
    class_names: Sequence[str],
    classes: Sequence[str] | None = None,
) -> VocResult:
    """mAP at IoU 0.5, the metric Pascal VOC users quote, overall and per class:
    pycocotools' COCOeval restricted to IoU 0.5, all areas, no cap on detections per image.
    Precision is interpolated at COCO's 101 recall points: pycocotools offers neither VOC2007's
    11-point interpolation nor the VOC2010+ devkit's all-point area, so numbers can differ from the
    devkit's in the third decimal. Objects marked difficult are dropped when VOC XML is read
    (data/voc.py), where the devkit ignores detections on them."""
    label_map, shared, cat_ids = _scored_classes(dataset, class_names, classes)
    results = [r for r in to_coco_results(predictions, label_map) if r["category_id"] in cat_ids]
    with contextlib.redirect_stdout(io.StringIO()):
        coco_dt = dataset.coco.loadRes(results) if results else _empty_results(dataset)
        ev = COCOeval(dataset.coco, coco_dt, "bbox")
        ev.params.imgIds = sorted(predictions)
        ev.params.catIds = cat_ids
        ev.params.iouThrs = np.array([0.5])
        ev.params.maxDets = [max([len(d["scores"]) for d in predictions.values()] + [1])]
        ev.evaluate()
        ev.accumulate()
    precision = ev.eval["precision"][0, :, :, 0, -1]  # [R, K] at IoU 0.5, area all
    per_class = {
        name: float(np.mean(p[p > -1])) if (p > -1).any() else float("nan")
        for name, p in zip(shared, precision.T)
    }
    scored = [v for v in per_class.values() if not np.isnan(v)]
    m = float(np.mean(scored)) if scored else float("nan")
    return VocResult(m, per_class, len(predictions), shared)


def _empty_results(dataset: CocoDataset):
    coco = COCO()
    coco.dataset = {
        "images": dataset.coco.dataset["images"],
        "annotations": [],
        "categories": dataset.coco.dataset["categories"],
    }
    coco.createIndex()
    return coco


def evaluate_model(
    detector,
    dataset: CocoDataset,
    classes: Sequence[str] | None = None,
    batch_size: int = 8,
    progress: bool = True,
) -> EvalResult:
    """AP of an eager Detector."""
    detector.eval()
    preds = predict_dataset(
        detector, dataset, batch_size=batch_size, progress=progress, desc="eval eager"
    )
    return coco_eval(dataset, preds, detector.spec.class_names, classes)
