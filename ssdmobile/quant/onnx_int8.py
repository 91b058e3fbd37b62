"""ONNX int8: onnxruntime's static quantizer (QDQ format) on the fp32 ONNX export, calibrated on
the same preprocessed images as every other target. Same scheme: int8 weights per-channel
symmetric, int8 activations per-tensor asymmetric. onnxruntime fuses the QDQ pairs around
Conv into int8 kernels when it loads the model."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Sequence

from torch import Tensor

from .ptq import SCHEME, QuantizationError

# ssdmobile observer name -> onnxruntime CalibrationMethod name
ORT_CALIBRATION = {"minmax": "MinMax", "histogram": "Percentile", "entropy": "Entropy", "percentile": "Percentile"}


class _Reader:
    """onnxruntime CalibrationDataReader over preprocessed tensors."""

    def __init__(self, inputs: Sequence[Tensor], name: str):
        self._items = iter([{name: x.numpy()} for x in inputs])

    def get_next(self):
        return next(self._items, None)

    def rewind(self):  # pragma: no cover - onnxruntime calls it for some methods only
        pass


def _scopes(node) -> set[str]:
    """Module names in a torch.onnx node's "namespace" metadata (the module scope of each node),
    relative to the network core (the exporters' wrappers hold it as `.core`): e.g. {"", "backbone",
    "backbone.features.0", ...}; empty for nodes outside the core (decode, NMS)."""
    namespace = next((p.value for p in node.metadata_props if p.key == "namespace"), "")
    scopes = {seg.split(": ")[0] for seg in namespace.split("/")}
    return {s[len("core."):] if s != "core" else "" for s in scopes if s == "core" or s.startswith("core.")}


def core_node_names(model) -> list[str]:
    """Names of the nodes the network core produced. Decode and NMS nodes are not among them."""
    return [node.name for node in model.graph.node if _scopes(node)]


def nodes_for_modules(model, names: Sequence[str]) -> list[str]:
    """Names of the ONNX nodes that the named core modules (as `ssdmobile sensitivity` ranks them)
    produced: what quantize_static's nodes_to_exclude keeps in float."""
    wanted, found, hit = set(names), [], set()
    for node in model.graph.node:
        match = _scopes(node) & wanted
        if match:
            found.append(node.name)
            hit |= match
    missing = [n for n in names if n not in hit]
    if missing:
        raise QuantizationError(f"cannot keep in float, no ONNX node carries the module scope of {', '.join(missing)} "
                                "(not a module of this core, or exported without torch.onnx's metadata)")
    return found


def quantize_onnx_file(fp32_path: Path, int8_path: Path, inputs: Sequence[Tensor], observer: str = "histogram",
                       float_modules: Sequence[str] = (), core_only: bool = False) -> dict:
    """core_only: quantize the network core's nodes only, keeping box decoding, scores and NMS in
    float (quantize_static would otherwise put the decoded boxes and the output scores on 256 levels).
    float_modules: core modules whose nodes stay float (mixed precision)."""
    # lazy: heavy optional runtime (onnxruntime), only for ONNX int8
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process  # lazy: heavy optional runtime

    if observer not in ORT_CALIBRATION:
        raise QuantizationError(f"unknown observer {observer!r} for onnx; choose one of {', '.join(ORT_CALIBRATION)}")
    method = ORT_CALIBRATION[observer]
    reader = type("Reader", (_Reader, CalibrationDataReader), {})(inputs, "input")
    only, exclude = None, []
    if core_only or float_modules:
        import onnx  # lazy: heavy optional runtime (onnx)

        model = onnx.load(str(fp32_path))
        exclude = nodes_for_modules(model, float_modules) if float_modules else []
    if core_only:
        only = core_node_names(model)
        if not only:
            raise QuantizationError(f"{fp32_path}: no node carries the core's scope metadata, so the decode "
                                    "and NMS nodes cannot be kept in float")
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
        extra = {"ActivationSymmetric": False, "WeightSymmetric": True}
        if method == "Percentile":
            extra["CalibPercentile"] = 99.999
        quantize_static(str(pre), str(int8_path), reader, quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                        calibrate_method=getattr(CalibrationMethod, method), nodes_to_exclude=exclude,
                        nodes_to_quantize=only,
                        extra_options=extra)
    return {**SCHEME, "method": "onnxruntime quantize_static (QDQ)" + (", core only (decode and NMS float)"
                                                                       if core_only else ""), "observer": observer,
            "ort_calibrate_method": method, "float_modules": list(float_modules), "float_nodes": exclude}
