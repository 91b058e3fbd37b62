"""TorchScript int8: eager-mode torch.ao.quantization with the qnnpack engine (what PyTorch Mobile's
lite interpreter runs), for the TF-compatible SSDLite MobileNetV2 family (below) and SSDlite320
MobileNetV3 (quant/eager_mobilenet_v3.py, built from torchvision's quantizable MobileNetV3 blocks).

The MobileNetV2 family is made quantization-friendly without changing the float math:
- BatchNorm folded into the convs (ssdmobile.fuse); each Conv+ReLU6 becomes a fused ConvReLU2d whose
  output quantization is fixed to scale 6/255, zero point 0: uint8 0..255 then covers exactly
  [0, 6], so the requantization itself is the ReLU6 clamp (same math), and every one of the 256
  levels lands in the range ReLU6 can produce. (torch.ao fuses Conv+ReLU, not ReLU6; leaving ReLU6
  as a separate op after an observed conv output wastes most levels on values it clamps away:
  that version lost 0.07 AP on the person detector);
- the residual `x + conv(x)` of each inverted residual goes through a FloatFunctional, so the sum
  gets its own observer and a quantized add;
- a QuantStub quantizes the input; each of the 12 prediction convs ends in a DeQuantStub, so the
  reshape/permute/concatenate to [N, A, 4] / [N, A, C] stay in float and each head keeps its own
  scale.

Scheme: int8 weights per-channel symmetric, uint8 activations per-tensor asymmetric (eager
quantized kernels take quint8 activations: the same affine scheme shifted by 128).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.ao.nn.quantized import FloatFunctional
from torch.ao.quantization import DeQuantStub, QConfig, QuantStub, convert, fuse_modules, prepare
from torch.ao.quantization.fake_quantize import FixedQParamsFakeQuantize
from torch.ao.quantization.observer import (
    FixedQParamsObserver,
    HistogramObserver,
    MinMaxObserver,
    PerChannelMinMaxObserver,
)
from torchvision.models.mobilenetv2 import InvertedResidual

from ..errors import QuantizationError
from ..fuse import fuse_batchnorm_
from ..models.ssdlite_mobilenet_v2 import FEATURE0_BLOCK, SSDLiteMobileNetV2Core
from ..models.ssdlite_mobilenet_v3 import SSDLiteCore
from . import SCHEME
from .eager_mobilenet_v3 import make_quantizable_v3
from .float_fallback import float_fallback_qconfig
from .ptq import calibrate, with_core

ENGINE = "qnnpack"


class _ResidualAdd(nn.Module):
    """torchvision InvertedResidual with `x + conv(x)` through a FloatFunctional."""

    def __init__(self, block: InvertedResidual):
        super().__init__()
        self.conv = block.conv
        self.use_res_connect = block.use_res_connect
        self.skip_add = FloatFunctional()
        if not self.use_res_connect:
            self.skip_add.qconfig = None  # never runs: an observer there would stay uncalibrated

    def forward(self, x: Tensor) -> Tensor:
        if self.use_res_connect:
            return self.skip_add.add(x, self.conv(x))
        return self.conv(x)


class QuantizableCore(nn.Module):
    def __init__(self, core: nn.Module):
        super().__init__()
        self.quant = QuantStub()
        self.core = core

    def forward(self, x: Tensor):
        return self.core(self.quant(x))


def qconfig(observer: str = "histogram") -> QConfig:
    if observer not in ("histogram", "minmax"):
        raise QuantizationError(f"unknown observer {observer!r}; choose histogram or minmax")
    act = (HistogramObserver if observer == "histogram" else MinMaxObserver).with_args(
        dtype=torch.quint8, qscheme=torch.per_tensor_affine, reduce_range=False
    )
    weight = PerChannelMinMaxObserver.with_args(
        dtype=torch.qint8, qscheme=torch.per_channel_symmetric, quant_min=-127, quant_max=127
    )
    return QConfig(activation=act, weight=weight)


def relu6_qconfig(weight_qconfig: QConfig) -> QConfig:
    """`weight_qconfig`'s weights, output fixed to [0, 6] on 256 uint8 levels (the ReLU6 range). A
    fake quantizer rather than an observer: calibration then already sees the clamped, rounded
    values the int8 model computes (+1.0 dB output SQNR on the person detector, 24.9 -> 25.9)."""
    observer = FixedQParamsObserver.with_args(
        scale=6.0 / 255.0,
        zero_point=0,
        dtype=torch.quint8,
        qscheme=torch.per_tensor_affine,
        quant_min=0,
        quant_max=255,
    )
    return QConfig(
        activation=FixedQParamsFakeQuantize.with_args(observer=observer),
        weight=weight_qconfig.weight,
    )


def _fuse_conv_relu6(core: nn.Module, base: QConfig) -> int:
    """Sequential [.., Conv2d, Identity (folded BN), ReLU6] -> fused
    ConvReLU2d with fixed [0, 6] output."""
    n = 0
    for seq in [m for m in core.modules() if isinstance(m, nn.Sequential)]:
        names = [
            k for k, m in seq.named_children() if not isinstance(m, (nn.ZeroPad2d, nn.Identity))
        ]
        kids = [seq._modules[k] for k in names]
        if len(kids) == 2 and isinstance(kids[0], nn.Conv2d) and isinstance(kids[1], nn.ReLU6):
            seq._modules[names[1]] = nn.ReLU()
            fuse_modules(seq, [names], inplace=True)
            seq._modules[names[0]].qconfig = relu6_qconfig(base)
            n += 1
    return n


def make_quantizable(
    core: nn.Module, qconf: QConfig | None = None, name: str | None = None
) -> QuantizableCore:
    """A float copy of the core, fused, with quant/dequant stubs and quantized adds, for torch.ao
    prepare/convert (qnnpack). The one place that picks the recipe per model family; `name` (the
    model's) goes into the error for a core it cannot do."""
    name = name or type(core).__name__
    qconf = qconf or qconfig()
    if isinstance(core, SSDLiteCore):
        return QuantizableCore(make_quantizable_v3(core, relu6_qconfig(qconf), name))
    if isinstance(core, SSDLiteMobileNetV2Core):
        return _make_quantizable_v2(core, qconf)
    raise QuantizationError(
        f"TorchScript int8 (eager qnnpack) cannot do {name}: it knows the SSDLite MobileNetV2 and "
        f"SSDlite320 MobileNetV3 cores, not {type(core).__name__}; use --target executorch or onnx"
    )


def _make_quantizable_v2(core: nn.Module, qconf: QConfig) -> QuantizableCore:
    """SSDLiteMobileNetV2Core: BN folded, Conv+ReLU6 fused with a fixed [0, 6] output range."""
    core = copy.deepcopy(core).eval()
    fuse_batchnorm_(core)
    for i, layer in enumerate(core.backbone):
        if isinstance(layer, InvertedResidual) and i != FEATURE0_BLOCK:
            core.backbone[i] = _ResidualAdd(layer)
    _fuse_conv_relu6(core, qconf)
    for heads in (core.box_head, core.class_head):
        for i, head in enumerate(heads):
            heads[i] = nn.Sequential(*head, DeQuantStub())
    return QuantizableCore(core)


def quantize_core_eager(
    core: nn.Module,
    inputs: Sequence[Tensor],
    observer: str = "histogram",
    progress: bool = True,
    name: str | None = None,
    float_modules: Sequence[str] = (),
) -> nn.Module:
    """Calibrated, converted int8 module (quantized::conv2d etc. on the qnnpack engine).
    float_modules: names of units inside the core (as `ssdmobile sensitivity` ranks them) kept in
    float."""
    if ENGINE not in torch.backends.quantized.supported_engines:
        raise QuantizationError(f"this PyTorch build has no {ENGINE} quantized engine")
    torch.backends.quantized.engine = ENGINE
    model = make_quantizable(core, qconfig(observer), name)
    model.qconfig = qconfig(observer)
    if float_modules:
        float_fallback_qconfig(model, float_modules)
    prepared = prepare(model)
    calibrate(prepared, inputs, progress)
    return convert(prepared).eval()


def quantize_detector_eager(
    detector,
    inputs: Sequence[Tensor],
    observer: str = "histogram",
    float_modules: Sequence[str] = (),
    progress: bool = True,
):
    """Eager qnnpack PTQ of the core -> (the detector around the converted core, the quantization
    record its sidecar carries). TorchScript's exporter traces it like any core."""
    qcore = quantize_core_eager(
        detector.core, inputs, observer, progress, detector.spec.name, float_modules
    )
    return with_core(detector, qcore), {
        **SCHEME,
        "activations": "per-tensor asymmetric (uint8, zero point 0..255)",
        "method": "eager torch.ao.quantization post-training (qnnpack engine)",
        "observer": observer,
        "engine": ENGINE,
        "float_modules": list(float_modules),
    }
