"""Pascal VOC datasets (the SSD and DSSD papers' VOC experiments): `root/Annotations/*.xml`,
`root/JPEGImages/*.jpg`, `root/ImageSets/Main/<split>.txt`. Converted to COCO form in memory so
one evaluation path (pycocotools) serves both."""

from __future__ import annotations

import logging
import math
import os
import xml.etree.ElementTree as ET
from pathlib import Path

from ..errors import DatasetError
from .coco import CocoDataset

log = logging.getLogger(__name__)

VOC_CLASSES = (
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)


def _text(node, tag: str, xml: Path) -> str:
    child = node.find(tag)
    if child is None or child.text is None or not child.text.strip():
        raise DatasetError(f"{xml}: missing <{tag}>")
    return child.text.strip()


def _number(node, tag: str, xml: Path, what: str, positive_int: bool = False) -> float:
    text = _text(node, tag, xml)
    try:
        value = int(text) if positive_int else float(text)
    except ValueError:
        raise DatasetError(
            f"{xml}: {what} <{tag}> must be "
            f"{'a positive integer' if positive_int else 'a number'}, got {text!r}"
        ) from None
    if (positive_int and value <= 0) or not math.isfinite(value):
        raise DatasetError(
            f"{xml}: {what} <{tag}> must be {'a positive integer' if positive_int else 'finite'}, "
            f"got {text!r}"
        )
    return value


def voc_to_coco(root: Path, split: str, include_difficult: bool = False) -> dict:
    ids_file = root / "ImageSets" / "Main" / f"{split}.txt"
    if ids_file.is_file():
        stems = [line.split()[0] for line in ids_file.read_text().splitlines() if line.strip()]
    else:
        stems = sorted(p.stem for p in (root / "Annotations").glob("*.xml"))
    categories = [{"id": i + 1, "name": n} for i, n in enumerate(VOC_CLASSES)]
    cat_ids = {c["name"]: c["id"] for c in categories}
    images, annotations, degenerate = [], [], []
    for image_id, stem in enumerate(stems, 1):
        xml = root / "Annotations" / f"{stem}.xml"
        try:
            tree = ET.parse(xml).getroot()
        except (ET.ParseError, OSError) as e:
            raise DatasetError(f"{xml}: cannot read VOC annotation ({e})") from None
        size = tree.find("size")
        file_name = tree.findtext("filename") or f"{stem}.jpg"
        images.append(
            {
                "id": image_id,
                "file_name": file_name,
                "width": int(_number(size, "width", xml, "<size>", True))
                if size is not None
                else None,
                "height": int(_number(size, "height", xml, "<size>", True))
                if size is not None
                else None,
            }
        )
        for k, obj in enumerate(tree.findall("object")):
            name = _text(obj, "name", xml)
            if name not in cat_ids:
                raise DatasetError(f"{xml}: unknown VOC class {name!r}")
            difficult = obj.findtext("difficult", "0").strip() == "1"
            if difficult and not include_difficult:
                continue
            bb = obj.find("bndbox")
            if bb is None:
                raise DatasetError(f"{xml}: object without <bndbox>")
            # VOC pixel coordinates are 1-based and inclusive
            x1, y1, x2, y2 = (
                _number(bb, t, xml, f"object {k} ({name})")
                for t in ("xmin", "ymin", "xmax", "ymax")
            )
            if x2 < x1 or y2 < y1:  # degenerate: skipped and counted, as for COCO (data/checks.py)
                degenerate.append(f"{xml.name} object {k}")
                continue
            annotations.append(
                {
                    "image_id": image_id,
                    "category_id": cat_ids[name],
                    "bbox": [x1 - 1, y1 - 1, x2 - x1 + 1, y2 - y1 + 1],
                    "iscrowd": 0,
                }
            )
    for im in images:
        if im["width"] is None:
            del im["width"], im["height"]
    if degenerate:
        log.warning(
            f"{root}: skipped {len(degenerate)} object(s) whose box has xmax < xmin or ymax < ymin "
            f"(e.g. {degenerate[0]})"
        )
    return {"images": images, "annotations": annotations, "categories": categories}


class VocDataset(CocoDataset):
    def __init__(self, root: str | os.PathLike, split: str = "test", max_images: int | None = None):
        root = Path(root)
        if not (root / "Annotations").is_dir():
            raise DatasetError(f"{root}: not a Pascal VOC directory (no Annotations/)")
        super().__init__(
            images_dir=root / "JPEGImages",
            annotation_file=root / "ImageSets" / "Main" / f"{split}.txt",
            max_images=max_images,
            _data=voc_to_coco(root, split),
        )


def open_dataset(root: str | os.PathLike, split: str, max_images: int | None = None) -> CocoDataset:
    """COCO layout (annotations/instances_<split>.json) or Pascal VOC layout (Annotations/)."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"dataset directory not found: {root}")
    if (root / "Annotations").is_dir():
        return VocDataset(root, split, max_images)
    return CocoDataset(root, split, max_images=max_images)
