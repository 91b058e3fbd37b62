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
from typing import Iterable, Sequence

import torch
from torch import Tensor, nn
from tqdm import tqdm

from ..errors import SSDMobileError

OBSERVERS = ("histogram", "minmax")


class QuantizationError(SSDMobileError):
    """Quantization cannot be done as asked (bad observer, calibration on val, empty data...)."""


# -- calibration data ---------------------------------------------------------------------------

def calibration_inputs(detector, data: str, split: str = "train2017", num_images: int = 64,
                       allow_eval_split: bool = False) -> list[Tensor]:
    """The first `num_images` images of a COCO-format (or VOC) split, preprocessed exactly as the
    detector does, as [1, 3, H, W] tensors."""
    from ..data import open_dataset

    if split.startswith("val") and not allow_eval_split:
        raise QuantizationError(
            f"refusing to calibrate on {split!r}: accuracy is measured there; calibrate on a training split "
            "(e.g. --split train2017)")
    if num_images < 1:
        raise QuantizationError(f"--num-images must be at least 1, got {num_images}")
    ds = open_dataset(data, split, num_images)
    return [detector.preprocess([s.image]) for s in ds]


def calibration_record(data: str, split: str, inputs: Sequence[Tensor], observer: str) -> dict:
    return {"calibration": {"data": str(data), "split": split, "num_images": len(inputs)}, "observer": observer}


# -- PT2E with ExecuTorch's XNNPACK quantizer -----------------------------------------------------

def xnnpack_quantization_config(observer: str = "histogram", qat: bool = False):
    """ExecuTorch's XNNPACK config: int8 per-channel symmetric weights (-127..127), int8 per-tensor
    affine activations. `observer` picks the activation observer: "histogram" (XNNPACK's PTQ
    default, HistogramObserver: the range that minimizes the L2 quantization error, clipping
    outliers) or "minmax" (the full observed range). For QAT (fake quantization) "minmax" is
    torchao's moving-average min/max and "histogram" a FakeQuantize around HistogramObserver, meant
    to be calibrated once and then frozen (quant.qat.calibrate_ranges)."""
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import get_symmetric_quantization_config
    from torchao.quantization.pt2e.observer import HistogramObserver, MinMaxObserver

    if observer not in OBSERVERS:
        raise QuantizationError(f"unknown observer {observer!r}; choose one of {', '.join(OBSERVERS)}")
    config = get_symmetric_quantization_config(is_per_channel=True, is_qat=qat)
    ctr = None
    if qat and observer == "histogram":
        from torchao.quantization.pt2e.fake_quantize import FakeQuantize

        ctr = FakeQuantize.with_args(observer=HistogramObserver, eps=2 ** -12)
    elif not qat and observer == "minmax":
        ctr = MinMaxObserver.with_args(eps=2 ** -12)
    if ctr is not None:
        act = dataclasses.replace(config.input_activation, observer_or_fake_quant_ctr=ctr)
        config = dataclasses.replace(config, input_activation=act, output_activation=act)
    return config


def xnnpack_quantizer(observer: str = "histogram", qat: bool = False, float_modules: Iterable[str] = ()):
    """float_modules: module names (e.g. "backbone.14.conv.0") whose ops stay in float (mixed precision)."""
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import XNNPACKQuantizer

    quantizer = XNNPACKQuantizer().set_global(xnnpack_quantization_config(observer, qat))
    float_modules = list(float_modules)
    if float_modules:
        # set_module_name(name, None) asserts "not supported yet" (executorch 1.5.1); the filter
        # function is the quantizer's public way to leave nodes unannotated, i.e. in float
        from torchao.quantization.pt2e.quantizer import get_module_name_filter

        in_float = [get_module_name_filter(name) for name in float_modules]
        quantizer.set_filter_function(lambda node: not any(f(node) for f in in_float))
    return quantizer


def export_for_pt2e(core: nn.Module, example: Tensor):
    """The core as the ATen graph module PT2E annotates (torch.export, non-strict)."""
    with torch.no_grad():
        return torch.export.export(core.eval(), (example,), strict=False).module()


def calibrate(model, inputs: Sequence[Tensor], progress: bool = True, desc: str = "calibrate") -> None:
    with torch.no_grad():
        for x in tqdm(inputs, desc=desc, unit="img", disable=not progress, leave=False):
            model(x)


def quantize_core_pt2e(core: nn.Module, inputs: Sequence[Tensor], observer: str = "histogram",
                       float_modules: Iterable[str] = (), progress: bool = True):
    """Float core -> converted PT2E graph module (quantize/dequantize around int8 ops) that
    torch.export + the XNNPACK partitioner lower to int8 kernels."""
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    if not inputs:
        raise QuantizationError("no calibration images")
    graph = export_for_pt2e(core, inputs[0])
    prepared = prepare_pt2e(graph, xnnpack_quantizer(observer, float_modules=float_modules))
    calibrate(prepared, inputs, progress)
    return _evaluable(convert_pt2e(prepared))


def _evaluable(graph_module):
    # exporters call .eval() on what they export; an exported graph module refuses that unless allowed
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


def set_sidecar_quantization(artifact, quantization: dict) -> None:
    """Record the scheme and calibration in an exported artifact's sidecar ("quantization" field)."""
    import json

    from ..sidecar import sidecar_path, write_sidecar

    path = sidecar_path(artifact)
    d = json.loads(path.read_text())
    d["quantization"] = quantization
    write_sidecar(path, d)


SCHEME = {"dtype": "int8", "weights": "per-channel symmetric (-127..127)",
          "activations": "per-tensor asymmetric (-128..127)"}


def export_executorch_int8(detector, inputs: Sequence[Tensor], out_dir, *, observer: str = "histogram",
                           float_modules: Sequence[str] = (), nms: bool = False, record: dict | None = None,
                           tag: str = "", progress: bool = True):
    """PT2E PTQ of the core, lowered to XNNPACK, written as `<model>_executorch_int8<tag>.pte` + sidecar."""
    from ..export import executorch as et_export
    from ..export._common import prepare_out_dir

    out = prepare_out_dir(out_dir)
    qcore = quantize_core_pt2e(detector.core, inputs, observer, float_modules, progress)
    qdet = with_core(detector, qcore)
    return _write(et_export, qdet, out, nms, tag, {
        **SCHEME, "method": "PT2E post-training (XNNPACKQuantizer)", "observer": observer,
        "float_modules": list(float_modules), **(record or {})})


def _write(target_module, qdet, out, nms: bool, tag: str, quantization: dict):
    """Run a target's exporter on an already-quantized detector, then rename for the tag and record
    the quantization in the sidecar. A tagged export is staged in a private directory, so it never
    replaces an untagged artifact of the same model that is already in `out`."""
    import json
    import os
    import shutil
    import tempfile
    from pathlib import Path

    from ..sidecar import sidecar_path, write_sidecar

    if not tag:
        path = target_module.export(qdet, "int8", out, nms=nms)
        set_sidecar_quantization(path, quantization)
        return path
    stage = Path(tempfile.mkdtemp(prefix=".stage-", dir=out))
    try:
        staged = target_module.export(qdet, "int8", stage, nms=nms)
        d = json.loads(sidecar_path(staged).read_text())
        tagged = Path(out) / (staged.stem + tag + staged.suffix)
        d["artifact"] = tagged.name
        d["quantization"] = quantization
        os.replace(staged, tagged)
        write_sidecar(sidecar_path(tagged), d)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return tagged
