"""NVIDIA's SSD300 v1.1 (ResNet-50) as ssdmobile builds it, checked against what NVIDIA publishes
(DeepLearningExamples/PyTorch/Detection/SSD): the default-box formula computed here independently,
the layout of their heads, their decoding and NMS written out from their description, and
checkpoints written in their layout."""

import itertools
import math

import pytest
import torch
from torch import nn
from torchvision.ops import box_iou

from ssdmobile.data import CocoDataset
from ssdmobile.errors import WeightsError
from ssdmobile.models import create_model, get_entry
from ssdmobile.models.ssd_resnet50 import COCO_80_CLASSES

from conftest import COCO128, randomize_
from random_checkpoints import reestimate_batchnorm_


@pytest.fixture(scope="module")
def images():
    return [s.image for s in CocoDataset(COCO128, "val2017", max_images=2)]


@pytest.fixture(scope="module")
def model():
    """Randomized, BatchNorm statistics re-estimated on 4 real train2017 images (plain randomized
    statistics make a 50-layer residual network's outputs explode)."""
    det = randomize_(create_model("ssd300_resnet50_v1_1"), seed=0)
    train = CocoDataset(COCO128, "train2017", max_images=4)
    reestimate_batchnorm_(det.core, [det.preprocess([s.image]) for s in train])
    return det.eval()


def published_dboxes():
    """The SSD paper's default boxes with dboxes300_coco's numbers (fig 300, maps 38/19/10/5/3/1,
    steps 8/16/32/64/100/300, scales 21/45/99/153/207/261/315 px, ratios [2], [2, 3] x3, [2], [2]),
    enumerated as NVIDIA does: per map, per box shape (s_k, s'_k, then w/h and h/w per ratio), per
    row i, per column j; (cx, cy, w, h) clamped to [0, 1]. Plain Python, one box at a time."""
    fig, maps, steps = 300, [38, 19, 10, 5, 3, 1], [8, 16, 32, 64, 100, 300]
    scales, ratios = [21, 45, 99, 153, 207, 261, 315], [[2], [2, 3], [2, 3], [2, 3], [2], [2]]
    out = []
    for k, f in enumerate(maps):
        sk, sk1 = scales[k] / fig, scales[k + 1] / fig
        shapes = [(sk, sk), (math.sqrt(sk * sk1), math.sqrt(sk * sk1))]
        for a in ratios[k]:
            shapes += [
                (sk * math.sqrt(a), sk / math.sqrt(a)),
                (sk / math.sqrt(a), sk * math.sqrt(a)),
            ]
        for w, h in shapes:
            for i, j in itertools.product(range(f), repeat=2):
                box = [(j + 0.5) * steps[k] / fig, (i + 0.5) * steps[k] / fig, w, h]
                out.append([min(max(v, 0.0), 1.0) for v in box])
    return torch.tensor(out, dtype=torch.float32)


def test_default_boxes_match_published_formula():
    det = create_model("ssd300_resnet50_v1_1")
    expected = published_dboxes()
    assert det.anchors.shape == expected.shape == (8732, 4)
    assert (det.anchors - expected).abs().max() < 1e-6
    assert det.anchors.max() == 1.0  # NVIDIA clamps: the largest boxes and the last centers hit 1


def test_architecture_is_nvidias():
    core = create_model("ssd300_resnet50_v1_1").core
    block = core.feature_extractor.feature_extractor[6][0]  # layer3's first block: stride 1
    assert block.conv1.stride == block.conv2.stride == block.downsample[0].stride == (1, 1)
    assert len(core.feature_extractor.feature_extractor) == 7  # conv5_x, avgpool, fc removed
    with torch.no_grad():
        maps = core.feature_maps(torch.zeros(1, 3, 300, 300))
    assert [m.shape[1:] for m in maps] == [
        (1024, 38, 38),
        (512, 19, 19),
        (512, 10, 10),
        (256, 5, 5),
        (256, 3, 3),
        (256, 1, 1),
    ]
    # heads: one plain conv each (bias, no BatchNorm); BatchNorm only in
    # backbone and additional blocks
    for head in (*core.loc, *core.conf):
        assert type(head) is nn.Conv2d and head.kernel_size == (3, 3) and head.bias is not None
    bns = [n for n, m in core.named_modules() if isinstance(m, nn.BatchNorm2d)]
    assert sum(n.startswith("additional_blocks.") for n in bns) == 10
    assert not [n for n in bns if n.startswith(("loc", "conf"))]
    assert [c.out_channels for c in core.conf] == [n * 81 for n in (4, 6, 6, 6, 4, 4)]
    assert (
        create_model("ssd300_resnet50_v1_1").spec.class_names == COCO_80_CLASSES
        and len(COCO_80_CLASSES) == 81
    )


@torch.no_grad()
def test_head_layout_is_nvidias_view(model, images):
    """NVIDIA's bbox_view: conv output [N, nd*4, H, W] viewed as [N, 4, nd*H*W], so box (d, i, j) of
    map k sits at offset_k + d*H*W + i*W + j and its coordinate c in channel c*nd + d."""
    core = model.core
    x = model.preprocess(images[:1])
    box, cls = core(x)
    maps = core.feature_maps(x)
    offset = 0
    for m, loc, conf in zip(maps, core.loc, core.conf):
        lo, co = loc(m), conf(m)
        nd, h, w = lo.shape[1] // 4, lo.shape[2], lo.shape[3]
        for d, i, j in [(0, 0, 0), (nd - 1, h - 1, w - 1), (nd // 2, h // 2, 0)]:
            a = offset + d * h * w + i * w + j
            assert torch.allclose(box[0, a], lo[0, [c * nd + d for c in range(4)], i, j], atol=1e-5)
            assert torch.allclose(
                cls[0, a], co[0, [c * nd + d for c in range(81)], i, j], atol=1e-5
            )
        offset += nd * h * w
    assert offset == 8732


def nvidia_decode(
    box, cls, dboxes, criteria=0.5, max_output=200, max_num=200, thresh=0.05, clip=True
):
    """Encoder.scale_back_batch + decode_single as NVIDIA describe them: xy = 0.1 * t * wh_a + xy_a,
    wh = exp(0.2 * t) * wh_a, softmax; per class: score > 0.05, the 200 best, greedy NMS keeping
    boxes with IoU < criteria; the 200 best overall. Written out box by box.
    clip: the one difference ssdmobile keeps on purpose: boxes are clipped to the image before NMS
    (as torchvision and TF do, and every exporter here); NVIDIA's decode never clips."""
    xy = 0.1 * box[:, :2] * dboxes[:, 2:] + dboxes[:, :2]
    wh = torch.exp(0.2 * box[:, 2:]) * dboxes[:, 2:]
    boxes = torch.cat([xy - wh / 2, xy + wh / 2], 1)
    if clip:
        boxes = boxes.clamp(0, 1)
    prob = torch.softmax(cls, -1)
    out = []
    for label in range(1, prob.shape[1]):
        score = prob[:, label]
        idx = (score > thresh).nonzero()[:, 0]
        idx = idx[score[idx].argsort(descending=True)][:max_num]
        while len(idx):
            best = idx[0]
            out.append((float(score[best]), label, boxes[best]))
            idx = idx[1:][box_iou(boxes[idx[1:]], boxes[best][None])[:, 0] < criteria]
    out.sort(key=lambda t: -t[0])
    return out[:max_output]


@torch.no_grad()
def test_decode_and_nms_match_nvidias(model, images):
    box, cls = model.forward_core(model.preprocess(images[:1]))
    expected = nvidia_decode(box[0], cls[0], model.anchors)
    (got,) = model.nms(*model.decode(box, cls), [(1, 1)])  # boxes stay normalized
    assert len(expected) == len(got["scores"]) > 20
    for (score, label, b), gs, gl, gb in zip(expected, got["scores"], got["labels"], got["boxes"]):
        assert abs(score - float(gs)) < 1e-6 and label == int(gl)
        assert (b - gb).abs().max() < 1e-5


@pytest.mark.parametrize("prefix", ["", "module.", "module.1."])
def test_nvidia_checkpoint_layout_loads(model, tmp_path, prefix):
    """What main.py saves and torch.hub's nvidia_ssd loads: {"model": state_dict, ...} with the
    training state beside it, keys as DistributedDataParallel may prefix them."""
    sd = model.core.state_dict()
    opt = torch.optim.SGD(model.core.parameters(), lr=2.6e-3, momentum=0.9)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[43, 54], gamma=0.1)
    ckpt = tmp_path / "epoch_64.pt"
    torch.save(
        {
            "epoch": 65,
            "iteration": 1000,
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(),
            "label_map": dict(enumerate(COCO_80_CLASSES)),
            "model": {prefix + k: v for k, v in sd.items()},
        },
        ckpt,
    )
    loaded = create_model("ssd300_resnet50_v1_1", weights=ckpt)
    assert all(torch.equal(loaded.core.state_dict()[k], v) for k, v in sd.items())


def test_checkpoint_of_another_model_is_refused(tmp_path):
    ckpt = tmp_path / "vgg.pt"
    torch.save({"model": {"module.backbone.scale_weight": torch.ones(512)}}, ckpt)
    with pytest.raises(WeightsError, match="missing keys"):
        create_model("ssd300_resnet50_v1_1", weights=ckpt)


def test_registered_weights_are_nvidias():
    w = get_entry("ssd300_resnet50_v1_1").weights
    assert w.url.startswith("https://api.ngc.nvidia.com/") and w.url.endswith(w.filename)
    assert w.categories == COCO_80_CLASSES
