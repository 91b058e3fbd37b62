"""Post-training int8 quantization: one scheme (the QNNPACK / XNNPACK one: int8, per-channel
symmetric weights, per-tensor asymmetric activations) for every target, each through the tool its
runtime expects:

- executorch: PT2E (`torch.export` -> `prepare_pt2e` with ExecuTorch's XNNPACKQuantizer -> calibrate
  -> `convert_pt2e`), then the ordinary ExecuTorch exporter lowers the Q/DQ graph to XNNPACK int8.
- onnx: onnxruntime's own static quantizer (QDQ, per-channel) on the fp32 ONNX export, calibrated
  on the same images (see quant/onnx_int8.py).
- torchscript: eager torch.ao.quantization with the qnnpack engine (quant/eager.py).
- coreml: coremltools.optimize int8 weights (quant/coreml_int8.py).

Calibration images come from a training split (never val2017: accuracy is reported there) and go
through the detector's own preprocessing.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable, Sequence

import torch
from torch import Tensor, nn
from tqdm import tqdm

from ..data import open_dataset, refuse_undecodable
from ..errors import QuantizationError
from . import OBSERVERS, SCHEME, Calibration

# -- calibration data ---------------------------------------------------------------------------


def calibration_inputs(
    detector, data: str, split: str = "train2017", num_images: int = 64
) -> list[Tensor]:
    """The first `num_images` images of a COCO-format (or VOC) split, preprocessed exactly as the
    detector does, as [1, 3, H, W] tensors. (Whoever also scores images refuses a calibration set
    that shares any with them: data.refuse_shared_images.)"""
    if num_images < 1:
        raise QuantizationError(f"--num-images must be at least 1, got {num_images}")
    ds = open_dataset(data, split, num_images)
    # the ranges are those of exactly these images (the sidecar records how many): one that cannot
    # be decoded is refused, every such image named, before any calibration runs
    refuse_undecodable(map(ds.path, ds.image_ids), "int8 ranges are calibrated on each of them")
    return [detector.preprocess([s.image]) for s in ds]


def calibration_record(data: str, split: str, inputs: Sequence[Tensor], observer: str) -> dict:
    return {
        "calibration": {"data": str(data), "split": split, "num_images": len(inputs)},
        "observer": observer,
    }


def calibration_set(detector, calib: Calibration) -> tuple[list[Tensor], dict]:
    """(preprocessed calibration inputs, the record a sidecar keeps of them)."""
    inputs = calibration_inputs(detector, calib.data, calib.split, calib.num_images)
    return inputs, calibration_record(calib.data, calib.split, inputs, calib.observer)


# -- PT2E with ExecuTorch's XNNPACK quantizer -----------------------------------------------------


def xnnpack_quantization_config(observer: str = "histogram", qat: bool = False):
    """ExecuTorch's XNNPACK config: int8 per-channel symmetric weights (-127..127), int8 per-tensor
    affine activations. `observer` picks the activation observer: "histogram" (XNNPACK's PTQ
    default, HistogramObserver: the range that minimizes the L2 quantization error, clipping
    outliers) or "minmax" (the full observed range). For QAT (fake quantization) "minmax" is
    torchao's moving-average min/max and "histogram" a FakeQuantize around HistogramObserver, meant
    to be calibrated once and then frozen (quant.qat.calibrate_ranges)."""
    # lazy: heavy optional runtime (executorch / torchao)
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.observer import HistogramObserver, MinMaxObserver

    if observer not in OBSERVERS:
        raise QuantizationError(
            f"unknown observer {observer!r}; choose one of {', '.join(OBSERVERS)}"
        )
    config = get_symmetric_quantization_config(is_per_channel=True, is_qat=qat)
    ctr = None
    if qat and observer == "histogram":
        # lazy: heavy optional runtime (executorch / torchao)
        from torchao.quantization.pt2e.fake_quantize import FakeQuantize

        ctr = FakeQuantize.with_args(observer=HistogramObserver, eps=2**-12)
    elif not qat and observer == "minmax":
        ctr = MinMaxObserver.with_args(eps=2**-12)
    if ctr is not None:
        act = dataclasses.replace(config.input_activation, observer_or_fake_quant_ctr=ctr)
        config = dataclasses.replace(config, input_activation=act, output_activation=act)
    return config


def xnnpack_quantizer(
    observer: str = "histogram", qat: bool = False, float_modules: Iterable[str] = ()
):
    """float_modules: module names (e.g. "backbone.14.conv.0") whose ops
    stay in float (mixed precision)."""
    # lazy: heavy optional runtime (executorch / torchao)
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import XNNPACKQuantizer

    quantizer = XNNPACKQuantizer().set_global(xnnpack_quantization_config(observer, qat))
    float_modules = list(float_modules)
    if float_modules:
        # set_module_name(name, None) asserts "not supported yet" (executorch 1.5.1); the filter
        # function is the quantizer's public way to leave nodes unannotated, i.e. in float
        # lazy: heavy optional runtime (executorch / torchao)
        from torchao.quantization.pt2e.quantizer import get_module_name_filter

        in_float = [get_module_name_filter(name) for name in float_modules]
        quantizer.set_filter_function(lambda node: not any(f(node) for f in in_float))
    return quantizer


def export_for_pt2e(core: nn.Module, example: Tensor):
    """The core as the ATen graph module PT2E annotates (torch.export, non-strict)."""
    with torch.no_grad():
        return torch.export.export(core.eval(), (example,), strict=False).module()


def calibrate(
    model, inputs: Sequence[Tensor], progress: bool = True, desc: str = "calibrate"
) -> None:
    with torch.no_grad():
        for x in tqdm(inputs, desc=desc, unit="img", disable=not progress, leave=False):
            model(x)


def quantize_core_pt2e(
    core: nn.Module,
    inputs: Sequence[Tensor],
    observer: str = "histogram",
    float_modules: Iterable[str] = (),
    progress: bool = True,
):
    """Float core -> converted PT2E graph module (quantize/dequantize around int8 ops) that
    torch.export + the XNNPACK partitioner lower to int8 kernels."""
    # lazy: heavy optional runtime (executorch / torchao)
    from torchao.quantization.pt2e.quantize_pt2e import prepare_pt2e

    if not inputs:
        raise QuantizationError("no calibration images")
    graph = export_for_pt2e(core, inputs[0])
    prepared = prepare_pt2e(graph, xnnpack_quantizer(observer, float_modules=float_modules))
    calibrate(prepared, inputs, progress)
    return convert_for_xnnpack(prepared)


def convert_for_xnnpack(prepared):
    """A calibrated (PTQ) or trained (QAT) PT2E model -> its converted graph (quantize/dequantize
    around int8 ops), checked against what XNNPACK accepts, ready for the exporters."""
    # lazy: heavy optional runtime (torchao)
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e

    converted = convert_pt2e(prepared)
    check_xnnpack_requantization(converted)
    return _evaluable(converted)


# XNNPACK's range for a quantized conv's or linear's requantization scale, input scale x weight
# scale / output scale, per output channel. Outside it XNNPACK refuses the operator only when the
# program is loaded (xnn_status_unsupported_parameter), and ExecuTorch 1.5.1 then aborts the whole
# process (a double free on that error path: seen with a randomized SSDlite320 whose activations
# reach 1e6, a requantization scale of 332). Checked on the converted graph so that export fails
# in one line and writes nothing instead.
XNNPACK_REQUANT_RANGE = (2.0**-32, 256.0)
_PASS_THROUGH = (
    "aten.relu.default",
    "aten.relu_.default",
    "aten.hardtanh.default",
    "aten.hardtanh_.default",
    "aten.clamp.default",
)


def _scale(graph_module, arg) -> Tensor:
    if isinstance(arg, torch.fx.Node):  # a get_attr: per-channel scales
        value = graph_module
        for part in arg.target.split("."):
            value = getattr(value, part)
        return value.detach().double()
    return torch.tensor(float(arg), dtype=torch.float64)


def _module_name(node) -> str:
    stack = node.meta.get("nn_module_stack") or {}
    return list(stack.values())[-1][0] if stack else node.name


def check_xnnpack_requantization(graph_module) -> None:
    """QuantizationError naming the first conv or linear whose requantization scale XNNPACK would
    refuse (XNNPACK_REQUANT_RANGE); its fix is to keep that layer in float (--float-modules)."""
    low, high = XNNPACK_REQUANT_RANGE
    for node in graph_module.graph.nodes:
        if node.op != "call_function" or str(node.target) not in (
            "aten.conv2d.default",
            "aten.linear.default",
        ):
            continue
        x, w = node.args[0], node.args[1]
        if not all(
            isinstance(a, torch.fx.Node) and "dequantize_per" in str(a.target) for a in (x, w)
        ):
            continue  # left in float
        out = node
        while len(out.users) == 1 and str(next(iter(out.users)).target) in _PASS_THROUGH:
            out = next(iter(out.users))  # conv + relu are one XNNPACK operator
        q = [
            u
            for u in out.users
            if "quantize_per_tensor" in str(u.target) and "dequantize" not in str(u.target)
        ]
        if not q:
            continue
        s_in = _scale(graph_module, x.args[1])
        ratio = s_in * _scale(graph_module, w.args[1]) / _scale(graph_module, q[0].args[1])
        top, bottom = float(ratio.max()), float(ratio.min())
        if top >= high or bottom < low:
            bad = top if top >= high else bottom
            name = _module_name(node)
            why = f"its input range spans {float(s_in) * 255:.3g}" + (
                ", far beyond a trained model's activations" if bad >= high else ""
            )
            raise QuantizationError(
                f"int8 for XNNPACK: {name}'s requantization scale (input scale x weight scale "
                "/ output scale) is "
                f"{bad:.3g}, outside the [2^-32, 256) XNNPACK accepts ({why}); "
                f"keep it in float: ssdmobile quantize ... --float-modules {name}"
            )


def _evaluable(graph_module):
    # exporters call .eval() on what they export; an exported graph
    # module refuses that unless allowed
    # lazy: heavy optional runtime (executorch / torchao)
    from torchao.quantization.pt2e import allow_exported_model_train_eval

    allow_exported_model_train_eval(graph_module)
    return graph_module


def with_core(detector, core: nn.Module):
    """The detector with its core replaced (by a converted PT2E graph module, say): same spec,
    anchors, preprocess, decode and NMS, so exporters and evaluation treat it as any detector."""
    q = copy.copy(detector)  # shallow: shares anchors and spec
    q._modules = dict(detector._modules)
    q._modules["core"] = core
    return q


def quantize_detector_pt2e(
    detector,
    inputs: Sequence[Tensor],
    observer: str = "histogram",
    float_modules: Sequence[str] = (),
    progress: bool = True,
):
    """PT2E PTQ of the core -> (the detector around the converted core, the quantization record
    its sidecar carries). ExecuTorch's exporter lowers the Q/DQ graph to XNNPACK int8 kernels."""
    qcore = quantize_core_pt2e(detector.core, inputs, observer, float_modules, progress)
    return with_core(detector, qcore), {
        **SCHEME,
        "method": "PT2E post-training (XNNPACKQuantizer)",
        "observer": observer,
        "float_modules": list(float_modules),
    }
