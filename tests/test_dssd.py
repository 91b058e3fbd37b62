"""DSSD's two modules (deconvolution module, residual prediction module) and dssd320_resnet50, on
real images. No trained DSSD weights exist: these check structure and math, not accuracy."""

import pytest
import torch
from torch import nn

from ssdmobile.data import CocoDataset
from ssdmobile.models import create_model, get_entry
from ssdmobile.models.dssd import DeconvModule, PredictionModule
from ssdmobile.models.ssd_resnet50 import default_boxes

from conftest import COCO128, randomize_
from random_checkpoints import reestimate_batchnorm_


@pytest.fixture(scope="module")
def model():
    det = randomize_(create_model("dssd320_resnet50"), seed=0)
    # enough values per channel on the 1x1 map (2 images: x1e4 outputs)
    train = CocoDataset(COCO128, "train2017", max_images=16)
    reestimate_batchnorm_(det.core, [det.preprocess([s.image]) for s in train])
    return det.eval()


@pytest.fixture(scope="module")
def image():
    return CocoDataset(COCO128, "val2017", max_images=1)[0].image


@torch.no_grad()
def test_deconv_module_is_the_papers():
    dm = randomize_(DeconvModule(64, 32, 16, deep_size=5, skip_size=10), seed=1).eval()
    deconv, conv, bn = dm.deep
    assert (
        isinstance(deconv, nn.ConvTranspose2d)
        and deconv.kernel_size == (2, 2)
        and deconv.stride == (2, 2)
    )
    assert conv.kernel_size == (3, 3) and isinstance(bn, nn.BatchNorm2d)
    assert [type(m).__name__ for m in dm.skip[0]] == ["Conv2d", "BatchNorm2d", "ReLU"]
    assert [type(m).__name__ for m in dm.skip[1:]] == ["Conv2d", "BatchNorm2d"]
    deep, skip = torch.randn(2, 64, 5, 5), torch.randn(2, 32, 10, 10)
    expected = torch.relu(bn(conv(deconv(deep))) * dm.skip(skip))  # element-wise product, then ReLU
    assert torch.allclose(dm(deep, skip), expected)
    # where the skip map is not twice the deeper one (1 -> 3, 3 -> 5 cells): k x k stride 1
    top = DeconvModule(8, 8, 8, deep_size=1, skip_size=3)
    assert top.deep[0].kernel_size == (3, 3) and top.deep[0].stride == (1, 1)
    assert top(torch.randn(1, 8, 1, 1), torch.randn(1, 8, 3, 3)).shape == (1, 8, 3, 3)
    with pytest.raises(ValueError, match="cannot deconvolve"):
        DeconvModule(8, 8, 8, deep_size=3, skip_size=3)


@torch.no_grad()
def test_prediction_module_is_residual():
    pm = randomize_(PredictionModule(32, 8, 16), seed=2).eval()
    x = torch.randn(2, 32, 6, 6)
    assert [m[0].kernel_size for m in pm.body] == [(1, 1)] * 3 and pm.shortcut[0].kernel_size == (
        1,
        1,
    )
    assert torch.allclose(pm(x), pm.body(x) + pm.shortcut(x))  # 1x1 conv on the skip path, summed


@torch.no_grad()
@pytest.mark.slow
def test_dssd320_on_resnet50_features(model, image):
    core = model.core
    x = model.preprocess([image])
    assert x.shape[-2:] == (320, 320) and get_entry("dssd320_resnet50").input_size == (320, 320)
    maps = core.features(x)
    assert [m.shape[-1] for m in maps] == [40, 20, 10, 5, 3, 1]
    assert [(d.deep[0].kernel_size[0], d.deep[0].stride[0]) for d in core.deconv] == [
        (2, 2),
        (2, 2),
        (2, 2),
        (3, 1),
        (3, 1),
    ]
    box, cls = core(x)
    n = sum(s * s * a for s, a in zip([40, 20, 10, 5, 3, 1], [4, 6, 6, 6, 4, 4]))
    assert box.shape == (1, n, 4) and cls.shape == (1, n, 81) and model.anchors.shape == (n, 4)
    # NVIDIA's relative scales and ratios on the 320 grid: centers (j + 0.5) / cells
    assert torch.allclose(
        model.anchors,
        atol=1e-6,
        other=default_boxes(
            320,
            [40, 20, 10, 5, 3, 1],
            [8, 16, 32, 64, 320 / 3, 320],
            [
                21 * 320 / 300,
                45 * 320 / 300,
                99 * 320 / 300,
                153 * 320 / 300,
                207 * 320 / 300,
                261 * 320 / 300,
                315 * 320 / 300,
            ],
            [[2], [2, 3], [2, 3], [2, 3], [2], [2]],
        ),
    )
    # BatchNorm statistics from real images keep the product of two paths in range
    assert box.abs().max() < 100 and torch.softmax(cls, -1)[..., 1:].max() > 0.05


def test_every_level_but_the_deepest_reads_the_deconvolution_path():
    core = create_model("dssd320_resnet50", width=128).core
    # 256: the 1x1 SSD map
    assert [pm.shortcut[0].in_channels for pm in core.predict] == [128] * 5 + [256]
    assert [d.skip[0][0].in_channels for d in core.deconv] == [1024, 512, 512, 256, 256]
    assert core.deconv[-1].deep[0].in_channels == 256 and core.deconv[0].deep[0].in_channels == 128
