"""TorchScript int8 (eager torch.ao.quantization, qnnpack) for the SSD family beyond SSDLite:
SSD300 VGG16 and its VOC configurations, NVIDIA's SSD300 ResNet-50 and DSSD. Same scheme and stubs
as quant/eager.py (int8 per-channel symmetric weights, uint8 per-tensor activations, a QuantStub at
the input, a DeQuantStub after every prediction conv so the reshapes stay float). What each core
needs to become quantizable, without changing its float math:

- every Conv2d (+ BatchNorm) (+ ReLU) run of a Sequential is fused by torch.ao's fuse_modules
  (VGG's conv/ReLU pairs, NVIDIA's additional blocks, DSSD's Conv2dNormActivation blocks);
- ResNet-50: the backbone is rebuilt from torchvision's quantizable ResNet-50
  (torchvision.models.quantization.resnet: QuantizableBottleneck, whose residual add + ReLU is a
  FloatFunctional, and its own `fuse_model`), holding the float core's weights (same keys);
- VGG16: conv4_3's L2 normalization (`scale_weight * F.normalize(x)`) has no quantized kernel: it
  runs in float between a DeQuantStub and a QuantStub (the rest of the extractor is unchanged);
- DSSD: its product and sum already go through FloatFunctional; its ConvTranspose2d gets per-tensor
  weights (torch.ao's quantized transposed convolution takes no per-channel weights).

The hook that routes these cores here is in ssdmobile.targets (`_torchscript_int8`); quant/eager.py
itself is untouched.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.ao.nn.intrinsic import _FusedModule
from torch.ao.quantization import DeQuantStub, QConfig, QuantStub, convert, fuse_modules, prepare
from torch.ao.quantization.observer import MinMaxObserver
from torchvision.models.quantization import resnet50 as quantizable_resnet50
from torchvision.models.quantization.resnet import QuantizableBottleneck

from ..errors import QuantizationError
from ..models.dssd import DSSDCore
from ..models.ssd_resnet50 import ResNetBackbone, ResNetSSDFeatures, SSD300ResNet50Core
from ..models.ssd_vgg16 import SSDCore
from . import SCHEME
from .eager import ENGINE, QuantizableCore, qconfig, quantize_detector_eager
from .ptq import calibrate, with_core

CORES = (SSDCore, SSD300ResNet50Core, DSSDCore)


def supports(core: nn.Module) -> bool:
    return isinstance(core, CORES)


class _VGGExtractorFloatL2(nn.Module):
    """torchvision's SSDFeatureExtractorVGG.forward with the L2 normalization in float."""

    def __init__(self, extractor: nn.Module):
        super().__init__()
        self.features, self.extra, self.scale_weight = (
            extractor.features,
            extractor.extra,
            extractor.scale_weight,
        )
        self.dequant, self.quant = DeQuantStub(), QuantStub()

    def forward(self, x: Tensor) -> OrderedDict[str, Tensor]:
        x = self.features(x)
        rescaled = self.quant(self.scale_weight.view(1, -1, 1, 1) * F.normalize(self.dequant(x)))
        output = [rescaled]
        for block in self.extra:
            x = block(x)
            output.append(x)
        return OrderedDict((str(i), v) for i, v in enumerate(output))


def _fuse_sequentials(module: nn.Module) -> None:
    """fuse_modules on every Conv2d [+ BatchNorm2d] [+ ReLU] run inside a Sequential."""
    # fused modules (ConvReLU2d...) are Sequentials too: never fuse one again
    for seq in [
        m
        for m in module.modules()
        if isinstance(m, nn.Sequential) and not isinstance(m, _FusedModule)
    ]:
        names = list(seq._modules)
        i = 0
        while i < len(names):
            kinds = [type(seq._modules[n]) for n in names[i : i + 3]]
            group = []
            if kinds[:1] == [nn.Conv2d]:
                group = names[i : i + 1]
                if kinds[1:2] == [nn.BatchNorm2d]:
                    group = names[i : i + 2]
                if len(kinds) > len(group) and kinds[len(group)] is nn.ReLU:
                    group = names[i : i + len(group) + 1]
            if len(group) > 1:
                fuse_modules(seq, [group], inplace=True)
            i += max(len(group), 1)


def _quantizable_resnet(backbone: ResNetBackbone) -> ResNetBackbone:
    """The same backbone on torchvision's quantizable ResNet-50 blocks, same weights, fused."""
    twin = ResNetBackbone(quantizable_resnet50(weights=None, quantize=False))
    twin.load_state_dict(backbone.state_dict())
    twin.eval()
    for m in twin.modules():
        if isinstance(m, QuantizableBottleneck):
            m.fuse_model()
    _fuse_sequentials(twin)  # the stem: conv1, bn1, relu
    return twin


def _dequant_after(convs: nn.ModuleList) -> None:
    for i, conv in enumerate(convs):
        convs[i] = nn.Sequential(conv, DeQuantStub())


def make_quantizable(core: nn.Module, qconf: QConfig) -> QuantizableCore:
    """A float copy of the core, fused, with the stubs above; ready for torch.ao prepare/convert."""
    if not supports(core):
        raise QuantizationError(
            f"eager qnnpack int8 of the SSD family does not know {type(core).__name__}"
        )
    core = copy.deepcopy(core).eval()
    if isinstance(core, SSDCore):
        _fuse_sequentials(core.backbone)
        core.backbone = _VGGExtractorFloatL2(core.backbone)
        _dequant_after(core.head.regression_head.module_list)
        _dequant_after(core.head.classification_head.module_list)
        return QuantizableCore(core)
    features = core.features if isinstance(core, DSSDCore) else core
    if isinstance(features, ResNetSSDFeatures):
        features.feature_extractor = _quantizable_resnet(features.feature_extractor)
        _fuse_sequentials(features.additional_blocks)
    else:
        raise QuantizationError(
            "eager qnnpack int8 of DSSD needs ResNet-50 SSD features, not "
            f"{type(features).__name__}"
        )
    if isinstance(core, DSSDCore):
        _fuse_sequentials(core.deconv)
        _fuse_sequentials(core.predict)
        per_tensor = MinMaxObserver.with_args(
            dtype=torch.qint8, qscheme=torch.per_tensor_symmetric, quant_min=-127, quant_max=127
        )
        for m in core.deconv.modules():
            if isinstance(m, nn.ConvTranspose2d):
                m.qconfig = QConfig(activation=qconf.activation, weight=per_tensor)
    _dequant_after(core.loc)
    _dequant_after(core.conf)
    return QuantizableCore(core)


def quantize_detector(
    detector, inputs: Sequence[Tensor], observer: str = "histogram", progress: bool = True
):
    """Eager qnnpack PTQ of the core -> (the detector around the converted core, the quantization
    record its sidecar carries), as quant/eager.py's quantize_detector_eager."""
    if ENGINE not in torch.backends.quantized.supported_engines:
        raise QuantizationError(f"this PyTorch build has no {ENGINE} quantized engine")
    torch.backends.quantized.engine = ENGINE
    model = make_quantizable(detector.core, qconfig(observer))
    model.qconfig = qconfig(observer)
    prepared = prepare(model)
    calibrate(prepared, inputs, progress)
    qdet = with_core(detector, convert(prepared).eval())
    return qdet, {
        **SCHEME,
        "activations": "per-tensor asymmetric (uint8, zero point 0..255)",
        "method": "eager torch.ao.quantization post-training (qnnpack engine)",
        "observer": observer,
        "engine": ENGINE,
    }


def quantize_for_torchscript(detector, inputs, observer, float_modules, progress):
    """TorchScript's int8: SSD300 VGG16, NVIDIA's SSD300 ResNet-50 and DSSD take this module's
    recipe; the SSDLite families take eager.py's (this module imports eager, so eager's own
    dispatch cannot call here)."""
    if supports(detector.core):
        if float_modules:
            raise QuantizationError(
                "TorchScript int8 float fallback covers the SSDLite families; "
                "use --target executorch or onnx for this model"
            )
        return quantize_detector(detector, inputs, observer, progress)
    return quantize_detector_eager(detector, inputs, observer, float_modules, progress)
