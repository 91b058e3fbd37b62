"""ssdmobile's SSDlite320 MobileNetV3-Large against torchvision's own model on real images."""
import pytest
import torch
import torchvision
from torchvision.io import ImageReadMode, decode_image, read_file

from conftest import randomize_
from ssdmobile.models import create_model

NUM_IMAGES = 16


@pytest.fixture(scope="module")
def models():
    tv = torchvision.models.detection.ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None)
    randomize_(tv).eval()
    ours = create_model("ssdlite320_mobilenet_v3_large")
    ours.core.load_state_dict(tv.state_dict())
    return tv, ours.eval()


@pytest.fixture(scope="module")
def images(val_image_paths):
    return [decode_image(read_file(str(p)), mode=ImageReadMode.RGB).float() / 255
            for p in val_image_paths[:NUM_IMAGES]]


def test_same_state_dict_keys(models):
    tv, ours = models
    assert list(tv.state_dict()) == list(ours.core.state_dict())


@torch.no_grad()
def test_raw_head_outputs_match(models, images):
    tv, ours = models
    batch, _ = tv.transform(images)  # torchvision's own transform
    head = tv.head(list(tv.backbone(batch.tensors).values()))
    box_encodings, class_logits = ours.forward_core(batch.tensors)
    assert (box_encodings - head["bbox_regression"]).abs().max() < 1e-5
    assert (class_logits - head["cls_logits"]).abs().max() < 1e-5
    # and our own preprocessing gives the same core input
    assert (ours.preprocess(images) - batch.tensors).abs().max() < 1e-5
    # randomized weights: scores are far from uniform
    assert torch.softmax(class_logits, -1).max() > 0.5


@torch.no_grad()
def test_detections_match(models, images):
    tv, ours = models
    expected = tv(images)
    got = ours(images)
    total = 0
    for e, g in zip(expected, got):
        assert len(e["scores"]) == len(g["scores"]) > 0
        total += len(e["scores"])
        # one-to-one: every expected detection has a partner of the same label, score and box
        # (matching instead of sorting, so near-equal scores cannot swap partners)
        unused = torch.ones(len(g["scores"]), dtype=torch.bool)
        for box, score, label in zip(e["boxes"], e["scores"], e["labels"]):
            ok = (unused & (g["labels"] == label) & ((g["scores"] - score).abs() < 1e-5)
                  & ((g["boxes"] - box).abs().amax(-1) < 1e-3))
            assert ok.any(), f"no match for label {label} score {score} box {box.tolist()}"
            unused[ok.nonzero()[0, 0]] = False
    assert total > NUM_IMAGES * 10
