"""Eager-mode (qnnpack) quantizable copy of an SSDlite320 MobileNetV3 core, built from torchvision's
own quantizable MobileNetV3 pieces (torchvision.models.quantization.mobilenetv3), not rewritten:

- the backbone is rebuilt by torchvision's MobileNetV3 builder with
  `block=QuantizableInvertedResidual` (residual `x + block(x)` through a FloatFunctional; its
  squeeze-excite is QuantizableSqueezeExcitation: Hardsigmoid scale and `scale * x` through a
  FloatFunctional mul), then the float core's state_dict is loaded into it strictly: same
  torchvision key layout, so any checkpoint of the float model fits;
- fusion is torchvision's `QuantizableMobileNetV3.fuse_model` (Conv+BN(+ReLU) in every
  Conv2dNormActivation, fc1+ReLU in every squeeze-excite), applied to the whole core. It walks
  `self.modules()` only, so it works unchanged on the SSDlite extra blocks and heads too;
- SSDlite's own layers (extra blocks and the heads' depthwise convs) use ReLU6, which torch.ao
  does not fuse. As in the MobileNetV2 family (quant/eager.py), each becomes a fused Conv+BN+ReLU
  whose output quantization is fixed to [0, 6] (scale 6/255, zero point 0, eager.relu6_qconfig),
  so the requantization itself is the ReLU6 clamp;
- hardswish (nn.Hardswish -> quantized Hardswish), hardsigmoid (on a quantized tensor it runs
  quantized::hardsigmoid with its fixed output range [0, 1)) and the SE average pool are quantized
  ops; nothing dequantizes inside the network;
- a QuantStub quantizes the input (QuantizableCore) and each of the 12 prediction convs ends in a
  DeQuantStub, so the reshape / concatenation of the head outputs stay in float, each head keeping
  its own scale.
"""

from __future__ import annotations

from torch import nn
from torch.ao.quantization import DeQuantStub, QConfig
from torchvision.models.quantization.mobilenetv3 import (
    QuantizableInvertedResidual,
    QuantizableMobileNetV3,
)
from torchvision.models.quantization.utils import _replace_relu
from torchvision.ops.misc import Conv2dNormActivation

from ..errors import QuantizationError
from ..models.ssdlite_mobilenet_v3 import build_core


def quantizable_twin(core: nn.Module, name: str) -> nn.Module:
    """The float core rebuilt with torchvision's quantizable blocks, holding the same weights."""
    if getattr(core, "config", None) is None:
        raise QuantizationError(
            f"TorchScript int8 (eager qnnpack) cannot do {name}: its SSDLiteCore carries no "
            "CoreConfig (build it with ssdmobile.models.create_model), so it cannot be "
            "rebuilt from quantizable blocks"
        )
    twin = build_core(core.config, block=QuantizableInvertedResidual)
    missing, unexpected = twin.load_state_dict(core.state_dict(), strict=False)
    if missing or unexpected:
        raise QuantizationError(
            f"TorchScript int8 (eager qnnpack) cannot do {name}: its quantizable rebuild does "
            "not match the float "
            f"layers ({len(missing)} missing keys, e.g. {missing[:1]}; {len(unexpected)} "
            f"unexpected, e.g. {unexpected[:1]})"
        )
    return twin.eval()


def make_quantizable_v3(core: nn.Module, relu6: QConfig, name: str) -> nn.Module:
    """Fused, stub-carrying float copy of an SSDLiteCore for eager.make_quantizable. Only the ReLU6
    units get a qconfig here (`relu6`: eager.relu6_qconfig, output fixed to [0, 6]); the caller sets
    the model-wide one."""
    core = quantizable_twin(core, name)
    # torchvision's MobileNetV3 has no ReLU6; its _replace_relu also swaps the in-place ReLUs
    _replace_relu(core.backbone.features)
    for m in core.modules():
        if type(m) is Conv2dNormActivation and len(m) == 3 and type(m[2]) is nn.ReLU6:
            m[2] = nn.ReLU()  # the [0, 6] output range below is the upper clamp
            m.qconfig = relu6
        if isinstance(m, QuantizableInvertedResidual) and not m.use_res_connect:
            m.skip_add.qconfig = None  # never runs: an observer there would stay uncalibrated
    core.eval()  # the fusers want every fused module in one mode (the new ReLUs included)
    QuantizableMobileNetV3.fuse_model(core)  # torchvision's fusion, on every module of the core
    for heads in (core.head.regression_head.module_list, core.head.classification_head.module_list):
        for i, block in enumerate(heads):
            heads[i] = nn.Sequential(*block, DeQuantStub())  # same keys: block.0.*, block.1.*
    return core
