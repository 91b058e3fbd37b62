"""Keep named units of an int8 model in float (mixed precision), for each int8 tool. The names are
module names inside the detector's core, as `ssdmobile sensitivity` ranks them
(quant.sensitivity.quant_units): "backbone.features.0.4.block.2.fc1", "head.regression_head.module_list.0.1".

- ExecuTorch (PT2E): XNNPACKQuantizer leaves the nodes of those modules unannotated
  (ptq.xnnpack_quantizer(float_modules=...), by torch.export's nn_module_stack).
- ONNX: onnxruntime's quantize_static(nodes_to_exclude=onnx_nodes_for_modules(model, names)),
  the nodes found by torch.onnx's "namespace" metadata (the module scope of each node).
- TorchScript (eager qnnpack): float_fallback_qconfig(model, names): qconfig None on those modules,
  wrapped in a dequantize -> float module -> quantize island.
"""
from __future__ import annotations

from typing import Sequence

from torch import Tensor, nn
from torch.ao.quantization import DeQuantStub, QuantStub

from .ptq import QuantizationError


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
        own = next((m.qconfig for m in module.modules() if getattr(m, "qconfig", None) is not None), None)
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
        raise QuantizationError(f"cannot keep in float, no such module in the core: {', '.join(unknown)}")
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = modules[parent_name] if parent_name else model.core
        siblings = list(parent._modules)
        after = siblings[siblings.index(child) + 1] if siblings.index(child) + 1 < len(siblings) else None
        # a head's prediction conv is followed by the DeQuantStub: its float output goes out as it is
        ends_in_float = isinstance(parent, nn.Sequential) and after is not None and \
            isinstance(parent._modules[after], DeQuantStub)
        if ends_in_float:
            parent._modules[after] = nn.Identity()
        parent._modules[child] = FloatIsland(parent._modules[child], requantize=not ends_in_float)
    return model


def _scopes(node) -> set[str]:
    """Module names in a torch.onnx node's "namespace" metadata, relative to the network core
    (the exporters' wrappers hold it as `.core`), e.g. {"backbone", "backbone.features.0", ...}."""
    namespace = next((p.value for p in node.metadata_props if p.key == "namespace"), "")
    scopes = {seg.split(": ")[0] for seg in namespace.split("/")}
    return {s[len("core."):] for s in scopes if s.startswith("core.")}


def onnx_nodes_for_modules(model_proto, names: Sequence[str]) -> list[str]:
    """Names of the ONNX nodes that the named core modules produced (for nodes_to_exclude)."""
    wanted, found, hit = set(names), [], set()
    for node in model_proto.graph.node:
        match = _scopes(node) & wanted
        if match:
            found.append(node.name)
            hit |= match
    missing = [n for n in names if n not in hit]
    if missing:
        raise QuantizationError(f"no ONNX node carries the module scope of {', '.join(missing)} "
                                "(not a module of this core, or exported without torch.onnx's metadata)")
    return found
