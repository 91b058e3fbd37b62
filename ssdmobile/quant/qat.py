"""The quantization half of quantization-aware training in the XNNPACK int8 scheme (PT2E QAT): the
BatchNorm eps fold PT2E needs, `prepare_qat` (torch.export in training mode, `prepare_qat_pt2e` with
ExecuTorch's XNNPACKQuantizer, Conv+BN kept unfolded), calibrating the ranges as PTQ does, freezing
BatchNorm and observers, converting to int8, and the trained float weights under the model's own
keys. The training loop is a recipe a user reads top to bottom (recipes/qat.py); its data, loss and
checkpoints are ssdmobile.training's.
"""

from __future__ import annotations

import contextlib
import copy

import torch
from torch import nn

from .ptq import calibrate, convert_for_xnnpack, with_core, xnnpack_quantizer

# torchao's PT2E QAT rewrites every Conv+BatchNorm with eps fixed at 1e-5 (torchao 0.18,
# quantization/pt2e/qat_utils.py: "TODO: allow setting eps"), and move_exported_model_to_eval /
# _train swap BatchNorm nodes for a pattern whose eps is 1e-5 too. TF's SSDLite and torchvision's
# MobileNetV3 use eps 1e-3: left alone, the prepared model is a different network (max abs output
# change 5.3 and person AP 0.1985 -> 0.153 on coco128 val2017 with fake quantization *off*).
PT2E_BN_EPS = 1e-5


def _bn_eps_shifts(core: nn.Module) -> dict[str, float]:
    """{BatchNorm module name: eps - 1e-5} for every BatchNorm whose eps is not PT2E's."""
    return {
        name: m.eps - PT2E_BN_EPS
        for name, m in core.named_modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.eps != PT2E_BN_EPS
    }


def bn_eps_to_pt2e(core: nn.Module) -> nn.Module:
    """In place: eps -> 1e-5 with the difference folded into running_var, so that
    sqrt(running_var' + 1e-5) == sqrt(running_var + eps): the same network in eval mode, in the
    form PT2E QAT keeps intact. (In training mode batch statistics would see eps 1e-5; ssdmobile's
    recipes freeze BatchNorm statistics.) `float_state_dict` undoes the shift."""
    modules = dict(core.named_modules())
    for name, shift in _bn_eps_shifts(core).items():
        bn = modules[name]
        with torch.no_grad():
            bn.running_var.add_(shift)
        bn.eps = PT2E_BN_EPS
    return core


def prepare_qat(core: nn.Module, example: torch.Tensor, observer: str = "minmax"):
    """A copy of the float core, prepared for PT2E QAT (fake quantization in the XNNPACK scheme).
    `observer` picks the activation ranges' observer: "minmax" (moving-average min/max, torchao's
    QAT default) or "histogram" (PTQ's; see `calibrate_ranges`)."""
    # lazy: heavy optional (torchao)
    from torchao.quantization.pt2e.quantize_pt2e import prepare_qat_pt2e

    core = bn_eps_to_pt2e(copy.deepcopy(core))
    # batch >= 2 in training mode (BatchNorm on the 1x1 map needs two values), dynamic so the
    # converted model still takes the single image the exporters trace with
    example = example.expand(2, -1, -1, -1).contiguous() if example.shape[0] < 2 else example
    batch = torch.export.Dim("batch", min=1, max=1024)
    graph = torch.export.export(
        core.train(), (example,), dynamic_shapes=({0: batch},), strict=False
    ).module()
    return prepare_qat_pt2e(graph, xnnpack_quantizer(observer, qat=True))


def calibrate_ranges(prepared, inputs, progress: bool = True) -> None:
    """Set the quantization ranges as PTQ would, before any training: BatchNorm in eval mode, fake
    quantization off, observers on, run the calibration images, then fake quantization back on.
    With observers frozen afterwards, step 0 of QAT is the PTQ model."""
    # lazy: heavy optional (torchao)
    from torchao.quantization.pt2e import disable_fake_quant, enable_fake_quant, enable_observer

    set_bn_frozen(prepared, True)
    prepared.apply(disable_fake_quant)
    prepared.apply(enable_observer)
    with _observe_only(prepared):
        calibrate(prepared, inputs, progress, desc="calibrate QAT ranges")
    prepared.apply(enable_fake_quant)


@contextlib.contextmanager
def _observe_only(prepared):
    """A FakeQuantize with its observer on recomputes scale and zero point after every image; only
    the last computation counts, and for the histogram observer each one is a search over its bins
    (most of a calibration pass's time). Inside: activation FakeQuantizes only feed their observer;
    on the way out each that saw an image sets its scale and zero point once, as its own forward
    would have after the last image (the same values)."""
    # lazy: heavy optional (torchao)
    from torchao.quantization.pt2e.fake_quantize import FakeQuantize

    fakes = [m for m in prepared.modules() if type(m) is FakeQuantize and m.observer_enabled[0]]
    seen = set()

    def observe(m, args):
        m.activation_post_process(args[0].detach())
        seen.add(m)

    hooks = [m.register_forward_pre_hook(observe) for m in fakes]
    for m in fakes:
        m.disable_observer()
    try:
        yield
    finally:
        for h in hooks:
            h.remove()
        for m in fakes:
            m.enable_observer()
    for m in fakes:
        if m in seen:
            scale, zero_point = m.calculate_qparams()
            m.scale.resize_(scale.shape).copy_(scale.to(m.scale.device))
            m.zero_point.resize_(zero_point.shape).copy_(zero_point.to(m.zero_point.device))


def set_bn_frozen(prepared, frozen: bool) -> None:
    """BatchNorm statistics frozen (eval pattern) or training; a graph rewrite, so call it only
    when the mode changes."""
    # lazy: heavy optional (torchao)
    from torchao.quantization.pt2e import move_exported_model_to_eval, move_exported_model_to_train

    (move_exported_model_to_eval if frozen else move_exported_model_to_train)(prepared)


def freeze_observers(prepared) -> None:
    from torchao.quantization.pt2e import disable_observer  # lazy: heavy optional (torchao)

    prepared.apply(disable_observer)


def convert_qat(prepared, detector):
    """The trained QAT model -> the detector around its int8 core (quantize/dequantize around int8
    ops), ready for a target's exporter (ssdmobile.targets.pipeline.export_quantized)."""
    set_bn_frozen(prepared, True)
    return with_core(detector, convert_for_xnnpack(prepared))


def float_state_dict(prepared, core: nn.Module) -> dict:
    """The trained float weights under the core's own keys (what create_model / PTQ of any target
    loads): the prepared graph keeps parameter and BatchNorm buffer names; the eps shift that
    `bn_eps_to_pt2e` folded into running_var is taken back out."""
    own = core.state_dict()
    sd = prepared.state_dict()
    out = {k: sd[k].detach().clone() for k in own if k in sd}
    for name, shift in _bn_eps_shifts(core).items():
        key = f"{name}.running_var"
        if (
            key in out
        ):  # statistics trained in QAT saw eps 1e-5: a variance below the shift clamps to 0
            out[key] = (out[key] - shift).clamp(min=0)
    return out
