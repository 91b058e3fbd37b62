"""int8 for every target, in one scheme (int8, per-channel symmetric weights, per-tensor asymmetric
activations: QNNPACK / XNNPACK): post-training (ptq.py and one module per target), sensitivity
ranking (sensitivity.py), quantization-aware training (qat.py, loss.py).

    from ssdmobile.quant import export_int8
    path = export_int8(detector, "executorch", "out/", calib_data="../shared/data/coco128",
                       split="train2017", num_images=128)
"""
from __future__ import annotations

INT8_TARGETS = ("executorch", "onnx", "torchscript", "coreml")


def export_int8(detector, target: str, out_dir, *, calib_data: str | None = None, split: str = "train2017",
                num_images: int = 128, observer: str = "histogram", nms: bool = False, progress: bool = True):
    """Calibrate on `num_images` of `split` and write the int8 artifact (+ sidecar with the
    quantization record) of `target`. Core ML needs no calibration (int8 weights)."""
    from .ptq import QuantizationError, calibration_inputs, calibration_record

    if target not in INT8_TARGETS:
        raise QuantizationError(f"no int8 for target {target!r}; int8 targets: {', '.join(INT8_TARGETS)}")
    if target == "coreml":
        from .coreml_int8 import export_coreml_int8

        return export_coreml_int8(detector, out_dir)
    if calib_data is None:
        raise QuantizationError(f"int8 for {target} needs calibration images: pass --calib-data DIR")
    inputs = calibration_inputs(detector, calib_data, split, num_images)
    record = calibration_record(calib_data, split, inputs, observer)
    if target == "executorch":
        from .ptq import export_executorch_int8

        return export_executorch_int8(detector, inputs, out_dir, observer=observer, nms=nms, record=record,
                                      progress=progress)
    if target == "onnx":
        from .onnx_int8 import export_onnx_int8

        return export_onnx_int8(detector, inputs, out_dir, observer=observer, nms=nms, record=record)
    from .eager import export_torchscript_int8

    return export_torchscript_int8(detector, inputs, out_dir, observer=observer, nms=nms, record=record,
                                   progress=progress)
