"""Exporters: one module per target (torchscript.py, onnx.py, coreml.py, executorch.py), each with
`export(detector, request: ExportRequest) -> list[Artifact]`. The target table
(ssdmobile.targets) lists them and is what callers use (`ssdmobile.targets.pipeline.export`).

Every export writes to a temporary name and renames when complete, then writes `<stem>.json`.
Graph input: the preprocessed float NCHW tensor (resize and normalization stay in the host / app,
as the sidecar's "preprocess" describes), except Core ML, whose input is an image (see coreml.py).
Outputs: (box_encodings, class_logits) raw, or (boxes, scores, labels, num_detections) with nms.
Modules starting with "_" are shared helpers.
"""

from ..errors import ExportError, PrecisionNotAvailable
from ._common import Artifact, ExportRequest

__all__ = ["Artifact", "ExportError", "ExportRequest", "PrecisionNotAvailable"]
