"""Training data: images of a split with their boxes and labels in the model's label ids, and
batches with horizontal flips."""

from __future__ import annotations

import random

import torch

from ..data import open_dataset
from ..evaluate import label_to_category


def training_samples(detector, data: str, split: str, num_images: int | None = None) -> list[tuple]:
    """[(uint8 image, {"boxes": normalized xyxy, "labels": model label ids})] of a training split;
    boxes of classes the model does not predict are dropped."""
    ds = open_dataset(data, split, num_images)
    cat_to_label = {
        c: label for label, c in label_to_category(detector.spec.class_names, ds).items()
    }
    samples = []
    for i in range(len(ds)):
        s = ds[i]
        t = ds.targets(s.image_id)
        keep = torch.tensor([int(c) in cat_to_label for c in t["category_ids"]], dtype=torch.bool)
        h, w = s.image.shape[-2:]
        boxes = t["boxes"][keep] / torch.tensor([w, h, w, h], dtype=torch.float32)
        labels = torch.tensor(
            [cat_to_label[int(c)] for c in t["category_ids"][keep]], dtype=torch.long
        )
        samples.append((s.image, {"boxes": boxes.clamp(0, 1), "labels": labels}))
    return samples


def make_batch(detector, samples, hflip: bool, rng: random.Random):
    """-> (preprocessed images [N, 3, H, W], targets), each image flipped with probability 0.5."""
    images, targets = [], []
    for img, t in samples:
        boxes = t["boxes"]
        if hflip and rng.random() < 0.5:
            img = img.flip(-1)
            boxes = torch.stack([1 - boxes[:, 2], boxes[:, 1], 1 - boxes[:, 0], boxes[:, 3]], -1)
        images.append(img)
        targets.append({"boxes": boxes, "labels": t["labels"]})
    return detector.preprocess(images), targets
