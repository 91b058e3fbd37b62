"""One check, two models: an ssdmobile model against torchvision's own (same randomized state_dict)
on real images. Used by test_parity_torchvision.py (SSDlite320 MobileNetV3)
and test_ssd_vgg16.py."""

import torch
from torchvision.io import ImageReadMode, decode_image, read_file

from ssdmobile.models import create_model
from ssdmobile.models.weights import randomize_


def twins(torchvision_builder, name: str):
    """torchvision's model, randomized, and ours named `name` holding the same state_dict."""
    tv = randomize_(torchvision_builder(weights=None, weights_backbone=None)).eval()
    ours = create_model(name)
    ours.core.load_state_dict(tv.state_dict())
    return tv, ours.eval()


def rgb_images(paths) -> list[torch.Tensor]:
    return [decode_image(read_file(str(p)), mode=ImageReadMode.RGB).float() / 255 for p in paths]


@torch.no_grad()
def assert_raw_outputs_match(tv, ours, images, atol: float = 1e-5):
    batch, _ = tv.transform(images)  # torchvision's own transform
    head = tv.head(list(tv.backbone(batch.tensors).values()))
    box_encodings, class_logits = ours.forward_core(batch.tensors)
    assert (box_encodings - head["bbox_regression"]).abs().max() < atol
    assert (class_logits - head["cls_logits"]).abs().max() < atol
    # our preprocessing: same input
    assert (ours.preprocess(images) - batch.tensors).abs().max() < atol
    # randomized weights: scores far from uniform
    assert torch.softmax(class_logits, -1).max() > 0.5


@torch.no_grad()
def assert_detections_one_to_one(tv, ours, images, min_per_image: int = 10):
    """Every torchvision detection has its own partner in ours: same label, score within 1e-5, box
    within 1e-3 px (matching instead of sorting, so near-equal scores cannot swap partners)."""
    expected, got = tv(images), ours(images)
    total = 0
    for e, g in zip(expected, got):
        assert len(e["scores"]) == len(g["scores"]) > 0
        total += len(e["scores"])
        unused = torch.ones(len(g["scores"]), dtype=torch.bool)
        for box, score, label in zip(e["boxes"], e["scores"], e["labels"]):
            ok = (
                unused
                & (g["labels"] == label)
                & ((g["scores"] - score).abs() < 1e-5)
                & ((g["boxes"] - box).abs().amax(-1) < 1e-3)
            )
            assert ok.any(), f"no match for label {label} score {score} box {box.tolist()}"
            unused[ok.nonzero()[0, 0]] = False
    assert total > len(images) * min_per_image
