"""Annotation records checked before anything reads them: every value is of the type and in the
range COCO says, and a mistake is one line naming the file, the record and what is wrong.

Degenerate boxes (zero or negative width or height, which no detector can predict and the SSD
loss cannot encode) are skipped, as torchvision's detection references do, and counted: the
dataset reports how many it skipped (`CocoDataset.skipped_boxes`, one log line).
"""

from __future__ import annotations

import math
from pathlib import Path

from ..errors import DatasetError


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


class _Where:
    """Names a record in messages: "instances.json: annotations[12] (id 907)"."""

    def __init__(self, path: Path, key: str, index: int, record):
        rid = record.get("id") if isinstance(record, dict) else None
        self.text = f"{path}: {key}[{index}]" + (f" (id {rid!r})" if rid is not None else "")

    def fail(self, what: str):
        raise DatasetError(f"{self.text}: {what}")


def check_coco(data, path: Path) -> list[int]:
    """Raise DatasetError at the first bad record of a COCO instances dict; -> the indices of
    annotations whose box is degenerate (to be skipped)."""
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("images"), list)
        or not isinstance(data.get("annotations", []), list)
        or not isinstance(data.get("categories"), list)
    ):
        raise DatasetError(
            f'{path}: not a COCO instances file (needs lists "images", "annotations", "categories")'
        )
    image_ids, category_ids = set(), set()
    for i, im in enumerate(data["images"]):
        w = _Where(path, "images", i, im)
        if not isinstance(im, dict):
            w.fail(f"must be an object, got {type(im).__name__}")
        if not _is_int(im.get("id")):
            w.fail(f'"id" must be an integer, got {im.get("id")!r}')
        if im["id"] in image_ids:
            w.fail(f"duplicate image id {im['id']}")
        image_ids.add(im["id"])
        name = im.get("file_name")
        if not isinstance(name, str) or not name.strip():
            w.fail(f'"file_name" must be a non-empty string, got {name!r}')
        for key in ("width", "height"):
            if key in im and not (_is_int(im[key]) and im[key] > 0):
                w.fail(f'"{key}" must be a positive integer, got {im[key]!r}')
    for i, cat in enumerate(data["categories"]):
        w = _Where(path, "categories", i, cat)
        if not isinstance(cat, dict):
            w.fail(f"must be an object, got {type(cat).__name__}")
        if not _is_int(cat.get("id")):
            w.fail(f'"id" must be an integer, got {cat.get("id")!r}')
        if cat["id"] in category_ids:
            w.fail(f"duplicate category id {cat['id']}")
        category_ids.add(cat["id"])
        if not isinstance(cat.get("name"), str) or not cat["name"].strip():
            w.fail(f'"name" must be a non-empty string, got {cat.get("name")!r}')
    degenerate = []
    for i, ann in enumerate(data.get("annotations", [])):
        w = _Where(path, "annotations", i, ann)
        if not isinstance(ann, dict):
            w.fail(f"must be an object, got {type(ann).__name__}")
        for key, known, what in (
            ("image_id", image_ids, "images"),
            ("category_id", category_ids, "categories"),
        ):
            if not _is_int(ann.get(key)):
                w.fail(f'"{key}" must be an integer, got {ann.get(key)!r}')
            if ann[key] not in known:
                w.fail(f'"{key}" {ann[key]} is not in "{what}"')
        box = ann.get("bbox")
        if not isinstance(box, list) or len(box) != 4 or not all(_is_number(v) for v in box):
            w.fail(f'"bbox" must be 4 finite numbers [x, y, width, height], got {str(box)[:60]}')
        if "iscrowd" in ann and ann["iscrowd"] not in (0, 1):
            w.fail(f'"iscrowd" must be 0 or 1, got {ann["iscrowd"]!r}')
        if "area" in ann and not (_is_number(ann["area"]) and ann["area"] >= 0):
            w.fail(f'"area" must be a number >= 0, got {ann["area"]!r}')
        if "id" in ann and not _is_int(ann["id"]):
            w.fail(f'"id" must be an integer, got {ann["id"]!r}')
        if box[2] <= 0 or box[3] <= 0:
            degenerate.append(i)
    return degenerate
