"""Float fallback (mixed precision) in eager qnnpack int8 (TorchScript): named units of the core
kept in float. The names are module names inside the detector's core, as `ssdmobile sensitivity`
ranks them (quant.sensitivity.quant_units): "backbone.features.0.4.block.2.fc1",
"head.regression_head.module_list.0.1". The same names serve every int8 tool:
- ExecuTorch (PT2E): XNNPACKQuantizer leaves the nodes of those modules unannotated
  (ptq.xnnpack_quantizer(float_modules=...), by torch.export's nn_module_stack);
- ONNX: onnxruntime's quantize_static(nodes_to_exclude=...), the nodes found by torch.onnx's
  "namespace" metadata (onnx_int8.nodes_for_modules);
- TorchScript (here): qconfig None on those modules, each wrapped in a dequantize -> float module ->
  quantize island.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn
from torch.ao.quantization import DeQuantStub, QuantStub

from ..errors import QuantizationError


class FloatIsland(nn.Module):
    """A unit kept in float inside an eager int8 model: dequantize its input, run it in float,
    quantize its output again (with its own observed range) unless a DeQuantStub came next."""

    def __init__(self, module: nn.Module, requantize: bool = True):
        super().__init__()
        self.dequant = DeQuantStub()
        self.module = module
        self.quant = QuantStub() if requantize else nn.Identity()
        # the only qconfig set inside a unit is the fixed [0, 6] output of a ReLU6 unit (the fused
        # float module is Conv+ReLU: that range is its upper clamp), which the output keeps
        own = next(
            (m.qconfig for m in module.modules() if getattr(m, "qconfig", None) is not None), None
        )
        if own is not None and requantize:
            self.quant.qconfig = own
        for m in module.modules():  # every level: fused children may carry their own qconfig
            m.qconfig = None

    def forward(self, x: Tensor) -> Tensor:
        return self.quant(self.module(self.dequant(x)))


def float_fallback_qconfig(model: nn.Module, names: Sequence[str]) -> nn.Module:
    """`model`: what eager.make_quantizable returned (the core under `.core`), qconfig set, not yet
    prepared. Each named unit becomes a FloatIsland, in place; returns the model."""
    modules = dict(model.core.named_modules())
    unknown = [n for n in names if n not in modules or not n]
    if unknown:
        raise QuantizationError(
            f"cannot keep in float, no such module in the core: {', '.join(unknown)}"
        )
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = modules[parent_name] if parent_name else model.core
        siblings = list(parent._modules)
        after = (
            siblings[siblings.index(child) + 1]
            if siblings.index(child) + 1 < len(siblings)
            else None
        )
        # a head's prediction conv is followed by the DeQuantStub: its
        # float output goes out as it is
        ends_in_float = (
            isinstance(parent, nn.Sequential)
            and after is not None
            and isinstance(parent._modules[after], DeQuantStub)
        )
        if ends_in_float:
            parent._modules[after] = nn.Identity()
        parent._modules[child] = FloatIsland(parent._modules[child], requantize=not ends_in_float)
    return model
