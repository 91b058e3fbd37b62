"""Core ML: an ML Program `.mlpackage` (fp16 by default), converted with
`ct.convert` from the traced model.

Input: an RGB image (`ct.ImageType`) of the model's input size, because Vision feeds images; pixel
/ 255 is done by the image input and (x - mean) / std by the graph. Resizing to the input size is
the caller's: Vision's `imageCropAndScaleOption = .scaleFill` (a plain bilinear resize; models
trained with TF1's resize see slightly different pixels, which the sidecar's
preprocess.resize says).

Outputs without nms: the raw (box_encodings, class_logits), batch 1, as every other target.
With nms: a Pipeline of the decoder (ML Program: confidence [A, C-1] foreground scores,
coordinates [A, 4] normalized center-size boxes) and Core ML's NonMaximumSuppression model with the
class labels, so Vision returns VNRecognizedObjectObservation directly; outputs confidence [K, C-1]
and coordinates [K, 4], K <= max_detections, plus optional iouThreshold / confidenceThreshold
inputs.

Core ML predicts on macOS only: `check_spec` validates the saved package's spec (inputs, outputs,
metadata, NMS parameters, precision) here, and its drift is measured here by the ML Program
reference evaluator (ssdmobile.mlprogram); latency on a Mac or the device.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import warnings

import numpy as np
import torch
from torch import Tensor, nn

from ..ops.boxes import xyxy_to_cxcywh
from ..quant.coreml_int8 import CORE_FORMATS, INT8_RECORD, quantize_weights
from ._common import (
    Artifact,
    DecodedBoxes,
    ExportError,
    ExportRequest,
    RawCore,
    artifact_stem,
    atomic_output,
    example_input,
    make_sidecar,
    raw_outputs,
)

TARGET = "coreml"
SUFFIX = ".mlpackage"
RUNTIME = "Core ML (macOS / iOS only)"
INPUT_NAME = "image"


class _Normalized(nn.Module):
    """x in [0, 1] (the image input divides by 255) -> (x - mean) / std -> the wrapped module."""

    def __init__(self, inner: nn.Module, spec):
        super().__init__()
        self.inner = inner
        p = spec.preprocess
        self.register_buffer("mean", torch.tensor(p.mean).view(1, 3, 1, 1))
        self.register_buffer("inv_std", 1.0 / torch.tensor(p.std).view(1, 3, 1, 1))

    def forward(self, x: Tensor):
        return self.inner((x - self.mean) * self.inv_std)


class _VisionDecoder(DecodedBoxes):
    """-> confidence [A, C-1], coordinates [A, 4] (cx, cy, w, h normalized), as Core ML's NMS and
    Vision expect; boxes clamped to the image like the eager NMS does."""

    def forward(self, x: Tensor):
        boxes, scores = super().forward(x)
        return scores[0], xyxy_to_cxcywh(boxes[0])


def _after_last_conv(op) -> bool:
    """True for an op from which no convolution is reachable: what follows the heads' last
    convolutions (reshapes, concat, the box decode and the scores) and its constants (anchors).
    Computed once per block, walking its ops backwards (they are in topological order)."""
    block = op.enclosing_block
    tails = getattr(block, "_ssdmobile_after_conv", None)
    if tails is None:
        reaches: dict[int, bool] = {}
        for o in reversed(block.operations):
            children = [c for v in o.outputs for c in v.child_ops]
            reaches[id(o)] = any(c.op_type == "conv" or reaches.get(id(c), False) for c in children)
        tails = {i for i, r in reaches.items() if not r}
        block._ssdmobile_after_conv = tails
    return op.op_type != "conv" and id(op) in tails


def _convert(
    module: nn.Module,
    detector,
    precision: str,
    output_names: list[str],
    fp32_decode: bool = False,
    quantized_core: bool = False,
):
    """-> ML Program; int8 = the fp16 program with int8 weights (quant.coreml_int8).

    quantized_core (W8A8): the detector's core was quantized by coremltools.optimize.torch; its
    quantize/dequantize steps become the ML Program's iOS 17 `quantize` / `dequantize` ops (and
    its int8 weights constexpr ops), so the program is converted for iOS 17. Outputs are fp32
    either way (an iOS 16+ fp16 program would otherwise declare fp16 outputs, which Core ML's NMS
    model does not take).

    fp32_decode (the NMS pipeline's decoder): the ops after the last convolution (box decode,
    scores) compute in fp32 while the network stays fp16. In fp16 the normalized boxes and the
    scores near 1 round to steps of ~5e-4, which ties and reorders detections: the pipeline's AP
    then wandered from the raw fp16 program's by a few 1e-3 either way (person detector, ML
    Program reference: 16 val2017 images -0.0037 against the raw program's -0.0005, 32 images
    -0.0004 against -0.0011), and a phone computing the program in fp16 rounds the same. With
    the decode in fp32 the pipeline's AP is the raw fp16 program's (16 and 32 images: equal), so
    its drift is the network's fp16 alone. On device those few ops run on CPU or GPU, beside
    Core ML's NMS, which runs on CPU anyway."""
    # lazy: heavy optional runtime (coremltools), only when this target is exported
    import coremltools as ct

    if precision == "fp32":
        compute_precision = ct.precision.FLOAT32
    elif fp32_decode:
        compute_precision = ct.transform.FP16ComputePrecision(
            op_selector=lambda op: not _after_last_conv(op)
        )
    else:
        compute_precision = ct.precision.FLOAT16

    x = (example_input(detector) + 1) / 2  # the graph sees [0, 1] pixels
    with torch.no_grad():
        traced = torch.jit.trace(module.eval(), x, check_trace=False)
    h, w = detector.spec.preprocess.size
    # coremltools draws progress bars on stderr for every pass: keep the CLI output readable
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        return ct.convert(
            traced,
            inputs=[
                ct.ImageType(
                    name=INPUT_NAME,
                    shape=(1, 3, h, w),
                    scale=1.0 / 255.0,
                    color_layout=ct.colorlayout.RGB,
                )
            ],
            outputs=[ct.TensorType(name=n, dtype=np.float32) for n in output_names],
            convert_to="mlprogram",
            compute_precision=compute_precision,
            minimum_deployment_target=ct.target.iOS17 if quantized_core else ct.target.iOS15,
        )


def _nms_model(spec, num_anchors: int):
    """Core ML's NonMaximumSuppression model fed by the decoder's two outputs."""
    import coremltools as ct  # lazy: heavy optional runtime (coremltools)
    from coremltools.proto import FeatureTypes_pb2, Model_pb2

    pp = spec.postprocess
    labels = list(spec.class_names[1:])
    nms_spec = Model_pb2.Model()
    nms_spec.specificationVersion = 5  # iOS 13: Vision's object detector pipeline
    for name, width in (("raw_confidence", len(labels)), ("raw_coordinates", 4)):
        f = nms_spec.description.input.add()
        f.name = name
        f.type.multiArrayType.dataType = FeatureTypes_pb2.ArrayFeatureType.FLOAT32
        f.type.multiArrayType.shape.extend([num_anchors, width])
    for name, width in (("confidence", len(labels)), ("coordinates", 4)):
        f = nms_spec.description.output.add()
        f.name = name
        ma = f.type.multiArrayType
        ma.dataType = FeatureTypes_pb2.ArrayFeatureType.FLOAT32
        r0 = ma.shapeRange.sizeRanges.add()
        r0.lowerBound, r0.upperBound = 0, -1
        r1 = ma.shapeRange.sizeRanges.add()
        r1.lowerBound, r1.upperBound = width, width
    for name, _value in (("iouThreshold", pp.iou_thresh), ("confidenceThreshold", pp.score_thresh)):
        f = nms_spec.description.input.add()
        f.name = name
        f.type.doubleType.MergeFromString(b"")
        f.type.isOptional = True
    nms = nms_spec.nonMaximumSuppression
    nms.confidenceInputFeatureName = "raw_confidence"
    nms.coordinatesInputFeatureName = "raw_coordinates"
    nms.confidenceOutputFeatureName = "confidence"
    nms.coordinatesOutputFeatureName = "coordinates"
    nms.iouThresholdInputFeatureName = "iouThreshold"
    nms.confidenceThresholdInputFeatureName = "confidenceThreshold"
    nms.iouThreshold = float(pp.iou_thresh)
    nms.confidenceThreshold = float(pp.score_thresh)
    nms.pickTop.perClass = True  # per-class NMS, as the eager model
    nms.stringClassLabels.vector.extend(labels)
    return ct.models.MLModel(nms_spec)


def _pipeline(decoder, nms_model):
    import coremltools as ct  # lazy: heavy optional runtime (coremltools)

    # rename the decoder outputs onto the NMS inputs, then chain; make_pipeline handles ML Programs
    spec = decoder.get_spec()
    ct.utils.rename_feature(spec, "confidence", "raw_confidence")
    ct.utils.rename_feature(spec, "coordinates", "raw_coordinates")
    decoder = ct.models.MLModel(spec, weights_dir=decoder.weights_dir, skip_model_load=True)
    # the pipeline's inputs: the image, and the NMS model's two optional threshold overrides
    return ct.utils.make_pipeline(decoder, nms_model, compute_units=ct.ComputeUnit.CPU_ONLY)


def _metadata(model, detector, precision: str, nms: bool) -> None:
    spec = detector.spec
    pp = spec.postprocess
    model.short_description = (
        f"ssdmobile {spec.name}, {precision}{', NMS pipeline' if nms else ', raw outputs'}"
    )
    model.author = "ssdmobile"
    md = model.user_defined_metadata
    md["ssdmobile.model"] = spec.name
    md["ssdmobile.precision"] = precision
    md["ssdmobile.nms_in_graph"] = str(nms).lower()
    md["ssdmobile.preprocess"] = json.dumps(
        {
            "size": list(spec.preprocess.size),
            "resize": spec.preprocess.resize,
            "mean": list(spec.preprocess.mean),
            "std": list(spec.preprocess.std),
        }
    )
    md["classes"] = ",".join(spec.class_names[1:])
    md["iou_threshold"] = str(pp.iou_thresh)
    md["confidence_threshold"] = str(pp.score_thresh)
    model.input_description[INPUT_NAME] = (
        f"RGB image {spec.preprocess.size[1]}x{spec.preprocess.size[0]}; normalized in the graph"
    )


def export(detector, req: ExportRequest) -> list[Artifact]:
    spec, precision, nms = detector.spec, req.precision, req.nms
    num_anchors = detector.anchors.shape[0]
    # W8A8: the pipeline quantized the core already (quant.coreml_w8a8.quantize_detector_w8a8);
    # W8A16: the converted program's weights are quantized here
    quantized_core = precision == "int8" and (req.quantization or {}).get("format") in CORE_FORMATS
    weights_only = precision == "int8" and not quantized_core
    try:
        if nms:
            decoder = _convert(
                _Normalized(_VisionDecoder(detector), spec),
                detector,
                precision,
                ["confidence", "coordinates"],
                fp32_decode=True,
                quantized_core=quantized_core,
            )
            if weights_only:  # quantize the decoder's program; Core ML's NMS model has no weights
                decoder = quantize_weights(decoder)
            model = _pipeline(decoder, _nms_model(spec, num_anchors))
            outputs = [
                {
                    "name": "confidence",
                    "shape": [-1, spec.num_classes - 1],
                    "dtype": "float32",
                    "meaning": "per detection, scores of class_names[1:] (background excluded)",
                },
                {
                    "name": "coordinates",
                    "shape": [-1, 4],
                    "dtype": "float32",
                    "meaning": "per detection, cx, cy, w, h normalized to [0, 1]",
                },
            ]
        else:
            model = _convert(
                _Normalized(RawCore(detector), spec),
                detector,
                precision,
                ["box_encodings", "class_logits"],
                quantized_core=quantized_core,
            )
            if weights_only:
                model = quantize_weights(model)
            outputs = raw_outputs(num_anchors, spec.num_classes)
    except ExportError:
        raise
    except Exception as e:
        raise ExportError(
            f"Core ML conversion failed: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
        ) from e
    _metadata(model, detector, precision, nms)
    if precision == "int8" and req.quantization is None:
        req = dataclasses.replace(req, quantization=INT8_RECORD)
    final = req.out_dir / f"{artifact_stem(spec.name, TARGET, req)}{SUFFIX}"
    h, w = spec.preprocess.size
    with atomic_output(final) as pending:
        model.save(str(pending.path))
        make_sidecar(
            detector,
            pending,
            final,
            req,
            target=TARGET,
            input_name=INPUT_NAME,
            input_shape=[1, 3, h, w],
            input_layout="image_RGB",
            input_dtype="uint8",
            outputs=outputs,
            extra={
                "runtime": RUNTIME,
                "coreml": {
                    "input": "image",
                    "image_resize": "caller (Vision: scaleFill)",
                    "normalize_in_graph": True,
                    "pipeline": nms,
                    "nms": {"per_class": True, "max_detections": None} if nms else None,
                },
            },
        )
    return [Artifact(final, TARGET, precision, nms, RUNTIME)]
