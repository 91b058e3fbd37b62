"""Core ML W8A8: the detector's core quantized (weights and activations) in PyTorch by
coremltools.optimize.torch's LinearQuantizer, calibrated as every PTQ here (ptq.calibrate); the
Core ML exporter converts the finalized core into iOS 17 quantize / dequantize ops. Apart from
quant.coreml_int8 (the formats' table and the W8A16 weight quantization), which the target table
reads without torch."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..errors import QuantizationError
from .coreml_int8 import W8A8_DEVICES
from .ptq import calibrate, with_core

# coremltools.optimize.torch's activation observers are min_max, moving_average_min_max and
# ema_min_max; it has no histogram one. On the person detector (128 train2017 calibration images,
# 32 val2017 images scored by the reference evaluator) min_max drifted AP by -0.0067 and
# moving_average_min_max by -0.0136, so W8A8 calibrates with min_max whatever --observer says, and
# its record says so (observer "minmax").
W8A8_OBSERVER = "min_max"


def quantize_detector_w8a8(
    detector,
    inputs: Sequence,
    observer: str = "histogram",
    float_modules: Sequence[str] = (),
    progress: bool = True,
):
    """W8A8 post-training quantization of the core with coremltools' LinearQuantizer -> (the
    detector around the finalized core, the quantization record). `observer` is the target
    table's common argument; W8A8 always observes min/max (W8A8_OBSERVER). Weights int8 per-channel
    symmetric, activations int8 per-tensor symmetric (coremltools' "symmetric" scheme, which its
    docs give as the one for the Neural Engine); observers see float activations during
    calibration, as PTQ does, and finalize() freezes the ranges they saw."""
    import coremltools.optimize.torch.quantization as cq  # lazy: heavy optional runtime

    if float_modules:
        raise QuantizationError("Core ML W8A8 keeps no modules in float")
    config = cq.LinearQuantizerConfig.from_dict(
        {
            "global_config": {
                "quantization_scheme": "symmetric",
                "weight_dtype": "qint8",
                "weight_per_channel": True,
                "activation_dtype": "quint8",
                "activation_observer": W8A8_OBSERVER,
                # step 0: observers on, BatchNorm statistics frozen; -1 (coremltools: "not
                # used"): fake quantization never on, so observers see float activations
                "milestones": [0, -1, -1, 0],
            }
        }
    )
    quantizer = cq.LinearQuantizer(detector.core.eval(), config)
    prepared = quantizer.prepare(example_inputs=(inputs[0],), inplace=False)
    quantizer.step()
    calibrate(prepared.eval(), inputs, progress, desc="calibrate (Core ML W8A8)")
    with torch.no_grad():
        core = quantizer.finalize(inplace=False).eval()
    return with_core(detector, core), {
        "dtype": "int8",
        "weights": "per-channel symmetric int8 (-128..127, torch.ao's symmetric qint8)",
        "activations": "per-tensor symmetric int8 (W8A8: iOS 17 quantize/dequantize ops)",
        "method": "coremltools.optimize.torch LinearQuantizer, post-training calibration "
        f"({W8A8_OBSERVER} observer: coremltools has no histogram one)",
        "observer": "minmax",
        "format": "w8a8",
        "notes": W8A8_DEVICES,
    }
