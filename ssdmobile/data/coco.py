"""COCO-format detection datasets: images + instances JSON."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from pycocotools.coco import COCO

from ..errors import DatasetError
from ..fileio import sha256_file
from .checks import check_coco
from .images import load_image

log = logging.getLogger(__name__)


@dataclass
class Sample:
    image_id: int
    path: Path
    image: torch.Tensor  # uint8 [3, H, W] RGB


class CocoDataset:
    """`root/images/<split>/*` and `root/annotations/instances_<split>.json` (the layout of COCO and
    coco128); or give `images_dir` and `annotation_file` explicitly."""

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        split: str = "val2017",
        *,
        images_dir: str | os.PathLike | None = None,
        annotation_file: str | os.PathLike | None = None,
        max_images: int | None = None,
        _data: dict | None = None,
    ):
        if max_images is not None and max_images < 1:
            raise DatasetError(f"the number of images must be at least 1, got {max_images}")
        root = Path(root) if root is not None else None
        self.images_dir = Path(images_dir) if images_dir else root / "images" / split
        self.annotation_file = (
            Path(annotation_file)
            if annotation_file
            else root / "annotations" / f"instances_{split}.json"
        )
        data = _data if _data is not None else _load_coco(self.annotation_file)
        self.skipped_boxes = skip_degenerate(
            data, check_coco(data, self.annotation_file), self.annotation_file
        )
        self.coco = _index(data)
        ids = sorted(self.coco.getImgIds())
        if not ids:
            raise DatasetError(f"{self.annotation_file}: the dataset has no images")
        self.image_ids = ids[:max_images] if max_images else ids
        missing = [
            self.coco.imgs[i]["file_name"]
            for i in self.image_ids
            if not (self.images_dir / self.coco.imgs[i]["file_name"]).is_file()
        ]
        if missing:
            raise DatasetError(
                f"{self.annotation_file} references {len(missing)} images missing from "
                f"{self.images_dir} (e.g. {missing[0]})"
            )
        self.category_ids_by_name = {
            c["name"]: c["id"] for c in self.coco.loadCats(self.coco.getCatIds())
        }

    def __len__(self) -> int:
        return len(self.image_ids)

    def path(self, image_id: int) -> Path:
        return self.images_dir / self.coco.imgs[image_id]["file_name"]

    def __getitem__(self, index: int) -> Sample:
        image_id = self.image_ids[index]
        info = self.coco.imgs[image_id]
        size = (info["width"], info["height"]) if "width" in info and "height" in info else None
        return Sample(image_id, self.path(image_id), load_image(self.path(image_id), size))

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def targets(self, image_id: int) -> dict:
        """Ground truth in xyxy pixels with COCO category ids (crowd
        boxes excluded), for training."""
        anns = [a for a in self.coco.imgToAnns[image_id] if not a.get("iscrowd", 0)]
        boxes = torch.tensor(
            [
                [
                    a["bbox"][0],
                    a["bbox"][1],
                    a["bbox"][0] + a["bbox"][2],
                    a["bbox"][1] + a["bbox"][3],
                ]
                for a in anns
            ],
            dtype=torch.float32,
        ).reshape(-1, 4)
        return {
            "boxes": boxes,
            "category_ids": torch.tensor([a["category_id"] for a in anns], dtype=torch.int64),
        }


def _load_coco(path: Path) -> dict:
    if not path.is_file():
        raise DatasetError(f"annotation file not found: {path}")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DatasetError(f"{path}: not valid JSON ({str(e)[:120]})") from None
    return data


def skip_degenerate(data: dict, degenerate: list[int], source) -> int:
    """Drop the annotations `check_coco` found degenerate; one log line says how many."""
    if degenerate:
        first = data["annotations"][degenerate[0]]
        log.warning(
            f"{source}: skipped {len(degenerate)} annotation(s) with zero or negative box width or "
            f"height (e.g. annotations[{degenerate[0]}], bbox {first['bbox']})"
        )
        drop = set(degenerate)
        data["annotations"] = [a for i, a in enumerate(data["annotations"]) if i not in drop]
    return len(degenerate)


def _index(data: dict):
    data.setdefault("annotations", [])
    for i, a in enumerate(data["annotations"], 1):  # pycocotools' evaluation needs these
        a.setdefault("iscrowd", 0)
        a.setdefault("area", float(a["bbox"][2] * a["bbox"][3]))
        a.setdefault("id", i)
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def image_digests(dataset: CocoDataset) -> dict[str, Path]:
    """sha256 of each image file's bytes -> its path: the identity of an image set, whatever the
    folder or split it is filed under."""
    return {sha256_file(dataset.path(i)): dataset.path(i) for i in dataset.image_ids}


def refuse_shared_images(
    calibration: CocoDataset, evaluation: CocoDataset, what: str = "calibration"
) -> None:
    """Calibrating (or training) on the images that are scored makes the score meaningless."""
    shared = image_digests(calibration).keys() & image_digests(evaluation).keys()
    if shared:
        raise DatasetError(
            f"the {what} images include {len(shared)} of the {len(evaluation)} evaluation images "
            f"({calibration.images_dir} and {evaluation.images_dir}): {what} on other images"
        )
