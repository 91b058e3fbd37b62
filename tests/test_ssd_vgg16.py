"""ssdmobile's SSD300 VGG16 against torchvision's own model on real images, its official checkpoint
layout, and the two Pascal VOC configurations."""

import pytest
import torch
import torchvision
from torchvision.models.detection.image_list import ImageList

from ssdmobile.errors import WeightsError
from ssdmobile.models import create_model, get_entry
from ssdmobile.models.ssd_vgg16 import VOC_CLASS_NAMES

from torchvision_twins import (
    assert_detections_one_to_one,
    assert_raw_outputs_match,
    rgb_images,
    twins,
)

NUM_IMAGES = 2  # VGG16 at 300x300 is ~35 GMACs an image: a few real images, not 16


@pytest.fixture(scope="module")
def models():
    return twins(torchvision.models.detection.ssd300_vgg16, "ssd300_vgg16")


@pytest.fixture(scope="module")
def images(val_image_paths):
    return rgb_images(val_image_paths[:NUM_IMAGES])


@pytest.mark.slow
def test_same_state_dict_keys_and_shapes(models):
    tv, ours = models
    assert [(k, v.shape) for k, v in tv.state_dict().items()] == [
        (k, v.shape) for k, v in ours.core.state_dict().items()
    ]
    assert "backbone.scale_weight" in ours.core.state_dict()  # conv4_3's L2-normalization scale


def test_spec_is_torchvisions(models):
    tv, ours = models
    pp, pre = ours.spec.postprocess, ours.spec.preprocess
    assert (pp.score_thresh, pp.iou_thresh, pp.topk_candidates, pp.max_detections) == (
        tv.score_thresh,
        tv.nms_thresh,
        tv.topk_candidates,
        tv.detections_per_img,
    )
    assert list(pre.mean) == tv.transform.image_mean and list(pre.std) == tv.transform.image_std
    assert pre.size == tuple(tv.transform.fixed_size) == (300, 300)
    assert ours.spec.box_coder.weights == tv.box_coder.weights
    assert ours.spec.box_coder.clamp == tv.box_coder.bbox_xform_clip


@torch.no_grad()
def test_anchors_are_torchvisions(models):
    tv, ours = models
    x = torch.zeros(1, 3, 300, 300)
    features = list(tv.backbone(x).values())
    expected = tv.anchor_generator(ImageList(x, [(300, 300)]), features)[0]  # pixels, x1y1x2y2
    cx, cy, w, h = ours.anchors.unbind(-1)
    got = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1) * 300
    assert ours.anchors.shape == (8732, 4)
    assert (got - expected).abs().max() < 1e-4


def test_raw_head_outputs_match(models, images):
    assert_raw_outputs_match(*models, images)


@pytest.mark.slow
def test_detections_match_one_to_one(models, images):
    assert_detections_one_to_one(*models, images)


@pytest.mark.slow
def test_official_checkpoint_layout_loads(models, tmp_path, monkeypatch):
    """torchvision's state_dict under the official file name in the hub cache: refused by the
    sha256 prefix torchvision publishes (these are not the official bytes), loaded as a path."""
    tv, _ = models
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    entry = get_entry("ssd300_vgg16")
    assert entry.weights.url.endswith(entry.weights.filename) and entry.weights.sha256 == "b556d3b4"
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.save(tv.state_dict(), cache / entry.weights.filename)
    with pytest.raises(WeightsError, match="sha256"):
        create_model("ssd300_vgg16", weights="default")
    m = create_model("ssd300_vgg16", weights=cache / entry.weights.filename)
    assert torch.equal(
        m.core.state_dict()["backbone.scale_weight"], tv.state_dict()["backbone.scale_weight"]
    )


def test_offline_without_checkpoint_says_where(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))

    def offline(url, dst, *a, **k):
        raise OSError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(WeightsError, match=r"ssd300_vgg16_coco-b556d3b4.pth.*--weights"):
        create_model("ssd300_vgg16", weights="default")


@torch.no_grad()
@pytest.mark.slow
def test_voc_configurations():
    voc = create_model("ssd300_vgg16_voc")
    assert voc.spec.class_names == VOC_CLASS_NAMES and len(VOC_CLASS_NAMES) == 21
    assert voc.anchors.shape == (8732, 4)
    v37 = create_model("ssd300_vgg16_voc37")
    sizes = [f.shape[-1] for f in v37.core.backbone(torch.zeros(1, 3, 300, 300)).values()]
    assert sizes == [37, 18, 18, 9, 5, 2]
    assert v37.anchors.shape == (
        37 * 37 * 4 + 18 * 18 * 6 * 2 + 9 * 9 * 6 + 5 * 5 * 4 + 2 * 2 * 4,
        4,
    )
    # centers at (j + 0.5) / cells, first box of a cell at the map's scale (0.1 on the 37-cell map)
    assert torch.allclose(v37.anchors[0], torch.tensor([0.5 / 37, 0.5 / 37, 0.1, 0.1]))
    box, cls = v37.core(torch.zeros(1, 3, 300, 300))
    assert box.shape == (1, 9966, 4) and cls.shape == (1, 9966, 21)
