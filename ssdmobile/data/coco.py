"""COCO-format detection datasets: images + instances JSON."""
from __future__ import annotations

import contextlib
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from pycocotools.coco import COCO

from ..errors import DatasetError
from .images import load_image


@dataclass
class Sample:
    image_id: int
    path: Path
    image: torch.Tensor  # uint8 [3, H, W] RGB


class CocoDataset:
    """`root/images/<split>/*` and `root/annotations/instances_<split>.json` (the layout of COCO and
    coco128); or give `images_dir` and `annotation_file` explicitly."""

    def __init__(self, root: str | os.PathLike | None = None, split: str = "val2017", *,
                 images_dir: str | os.PathLike | None = None, annotation_file: str | os.PathLike | None = None,
                 max_images: int | None = None, _data: dict | None = None):
        root = Path(root) if root is not None else None
        self.images_dir = Path(images_dir) if images_dir else root / "images" / split
        self.annotation_file = Path(annotation_file) if annotation_file else \
            root / "annotations" / f"instances_{split}.json"
        self.coco = _index(_data) if _data is not None else _load_coco(self.annotation_file)
        ids = sorted(self.coco.getImgIds())
        if not ids:
            raise DatasetError(f"{self.annotation_file}: the dataset has no images")
        self.image_ids = ids[:max_images] if max_images else ids
        missing = [self.coco.imgs[i]["file_name"] for i in self.image_ids
                   if not (self.images_dir / self.coco.imgs[i]["file_name"]).is_file()]
        if missing:
            raise DatasetError(f"{self.annotation_file} references {len(missing)} images missing from "
                               f"{self.images_dir} (e.g. {missing[0]})")
        self.category_ids_by_name = {c["name"]: c["id"] for c in self.coco.loadCats(self.coco.getCatIds())}

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
        """Ground truth in xyxy pixels with COCO category ids (crowd boxes excluded), for training."""
        anns = [a for a in self.coco.imgToAnns[image_id] if not a.get("iscrowd", 0)]
        boxes = torch.tensor([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
                              for a in anns], dtype=torch.float32).reshape(-1, 4)
        return {"boxes": boxes, "category_ids": torch.tensor([a["category_id"] for a in anns], dtype=torch.int64)}


def _load_coco(path: Path):
    if not path.is_file():
        raise DatasetError(f"annotation file not found: {path}")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DatasetError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) \
            or not isinstance(data.get("annotations", []), list) or not isinstance(data.get("categories"), list):
        raise DatasetError(f"{path}: not a COCO instances file (needs lists \"images\", \"annotations\", \"categories\")")
    for key, fields in (("images", ("id", "file_name")), ("annotations", ("image_id", "category_id", "bbox")),
                        ("categories", ("id", "name"))):
        for item in data.get(key, []):
            if not isinstance(item, dict) or any(f not in item for f in fields):
                raise DatasetError(f"{path}: an entry of \"{key}\" lacks one of {fields}: {str(item)[:80]}")
    known = {im["id"] for im in data["images"]}
    orphans = [a["image_id"] for a in data.get("annotations", []) if a["image_id"] not in known]
    if orphans:
        raise DatasetError(f"{path}: annotations reference image ids not in \"images\" (e.g. {orphans[0]})")
    data.setdefault("annotations", [])
    return _index(data)


def _index(data: dict):
    for i, a in enumerate(data["annotations"], 1):  # pycocotools' evaluation needs these
        a.setdefault("iscrowd", 0)
        a.setdefault("area", float(a["bbox"][2] * a["bbox"][3]))
        a.setdefault("id", i)
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco
