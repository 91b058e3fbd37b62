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


def core_node_names(model) -> list[str]:
    """Names of the nodes the network core produced (torch.onnx records each node's module scope in
    its "namespace" metadata; the exporters' wrappers hold the network as `.core`). Decode and NMS
    nodes are not among them."""
    names = []
    for node in model.graph.node:
        scope = next((p.value for p in node.metadata_props if p.key == "namespace"), "")
        if "/core:" in scope:
            names.append(node.name)
    return names


def quantize_onnx_file(fp32_path: Path, int8_path: Path, inputs: Sequence[Tensor], observer: str = "histogram",
                       exclude_nodes: Sequence[str] = (), core_only: bool = False) -> dict:
    """core_only: quantize the network core's nodes only, keeping box decoding, scores and NMS in
    float (quantize_static would otherwise put the decoded boxes and the output scores on 256 levels)."""
    # lazy: heavy optional runtime (onnxruntime), only for ONNX int8
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process  # lazy: heavy optional runtime

    if observer not in ORT_CALIBRATION:
        raise QuantizationError(f"unknown observer {observer!r} for onnx; choose one of {', '.join(ORT_CALIBRATION)}")
    method = ORT_CALIBRATION[observer]
    reader = type("Reader", (_Reader, CalibrationDataReader), {})(inputs, "input")
    only = None
    if core_only:
        import onnx  # lazy: heavy optional runtime (onnx)

        only = core_node_names(onnx.load(str(fp32_path)))
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
                        calibrate_method=getattr(CalibrationMethod, method), nodes_to_exclude=list(exclude_nodes),
                        nodes_to_quantize=only,
                        extra_options=extra)
    return {**SCHEME, "method": "onnxruntime quantize_static (QDQ)" + (", core only (decode and NMS float)"
                                                                       if core_only else ""), "observer": observer,
            "ort_calibrate_method": method, "float_nodes": list(exclude_nodes)}
