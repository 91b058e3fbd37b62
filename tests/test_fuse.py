"""BatchNorm folding (ssdmobile.fuse) on both detector families, on real images.

The fold is checked in float64, where it is exact arithmetic (to 1e-5 max abs, in practice ~1e-10):
with randomized weights and BatchNorm statistics a 50-layer float32 network carries rounding noise
of its own far above 1e-5 (the unfused float32 model differs from its float64 copy by more than
the fold changes anything), so float32 is checked on the real person detector instead."""

import pytest
import torch
from torchvision.ops import box_iou

from ssdmobile.data import CocoDataset
from ssdmobile.fuse import FusionError, count_batchnorms, fuse_detector
from ssdmobile.models import create_model

from conftest import COCO128, PERSON_GRAPH, randomize_

NUM_IMAGES = 2


@pytest.fixture(scope="module")
def images():
    ds = CocoDataset(COCO128, "val2017", max_images=NUM_IMAGES)
    return [s.image for s in ds]


@pytest.mark.parametrize(
    "name,pairs", [("ssdlite_mobilenet_v2_person", 76), ("ssdlite320_mobilenet_v3_large", 70)]
)
@torch.no_grad()
def test_fold_is_exact_on_real_images(name, pairs, images):
    det = randomize_(create_model(name, None), seed=1).double()
    fused, report = fuse_detector(det)
    assert len(report.fused) == pairs and not report.unfused_batchnorms
    assert count_batchnorms(fused) == 0 and count_batchnorms(det) == pairs
    x = det.preprocess(images[:1]).double()  # float64 convs are slow on CPU: one image
    for ref, got in zip(det.core(x), fused.core(x)):
        assert ref.abs().max() > 1.0  # randomized: far from trivial
        assert (ref - got).abs().max() < 1e-5
    assert not any("running_mean" in k for k in fused.state_dict())


@torch.no_grad()
def test_fold_keeps_activations_next_to_conv():
    fused, _ = fuse_detector(create_model("ssdlite320_mobilenet_v3_large", None))
    # Conv2dNormActivation: [Conv2d, Identity (was BN), activation], still fusable by index
    block = fused.core.backbone.features[0][0]
    assert [type(m).__name__ for m in block] == ["Conv2d", "Identity", "Hardswish"]
    assert block[0].bias is not None


def test_training_mode_is_refused():
    det = create_model("ssdlite_mobilenet_v2_person", None).train()
    with pytest.raises(FusionError, match="eval"):
        from ssdmobile.fuse import fuse_batchnorm_

        fuse_batchnorm_(det)


@pytest.mark.slow
@torch.no_grad()
def test_real_person_detector_float32(images):
    det = create_model("ssdlite_mobilenet_v2_person", weights=PERSON_GRAPH)
    fused, _ = fuse_detector(det)
    x = det.preprocess(images)
    for ref, got in zip(det.core(x), fused.core(x)):
        assert (ref - got).abs().max() < 5e-4
    n = 0
    for a, b in zip(det(images), fused(images)):
        for box, score, label in zip(a["boxes"], a["scores"], a["labels"]):
            if score < 0.02:
                continue
            n += 1
            iou = box_iou(box[None], b["boxes"])[0]
            assert (
                (iou > 0.999) & (b["labels"] == label) & ((b["scores"] - score).abs() < 1e-4)
            ).any()
    assert n > 0


def test_fuse_command(tmp_path, capsys):
    from ssdmobile.cli import main

    out = tmp_path / "fused.pth"
    assert (
        main(
            [
                "fuse",
                "--model",
                "ssdlite_mobilenet_v2_person",
                "--weights",
                str(PERSON_GRAPH),
                "--data",
                str(COCO128),
                "--split",
                "val2017",
                "--num-images",
                "2",
                "--runs",
                "0",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "folded 76 Conv2d+BatchNorm2d pairs" in text and out.is_file()
