"""Export a Detector to a deployable artifact plus its sidecar JSON.

    from ssdmobile.export import export
    path = export(detector, "onnx", "fp32", "out/", nms=False)

One module per target in this package (torchscript.py, onnx.py, coreml.py, executorch.py), each with
TARGET, SUFFIX, PRECISIONS, DEFAULT_PRECISION and
`export(detector, precision, out_dir, nms=False) -> Path`; they are discovered, so a new target is
one new file here and one in ssdmobile/runtime/. Modules starting with "_" are shared helpers.

Every export writes to a temporary name and renames when complete, then writes `<stem>.json`.
Graph input: the preprocessed float NCHW tensor (resize and normalization stay in the host / app,
as the sidecar's "preprocess" describes), except Core ML, whose input is an image (see coreml.py).
Outputs: (box_encodings, class_logits) raw, or (boxes, scores, labels, num_detections) with nms.
"""
from __future__ import annotations

import importlib
import os
import pkgutil
from pathlib import Path
from types import ModuleType

from ._common import PRECISIONS, ExportError, PrecisionNotAvailable, check_precision, prepare_out_dir


def _discover() -> dict[str, ModuleType]:
    found = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"{__name__}.{info.name}")
        found[mod.TARGET] = mod
    return dict(sorted(found.items()))


TARGETS: dict[str, ModuleType] = _discover()


def get_target(target: str) -> ModuleType:
    if target not in TARGETS:
        raise ExportError(f"unknown target {target!r}; choose one of {', '.join(TARGETS)}")
    return TARGETS[target]


def export(detector, target: str, precision: str | None = None, out_dir: str | os.PathLike = ".",
           nms: bool = False, calibration: dict | None = None) -> Path:
    """-> path of the artifact (its sidecar is the same path with .json). int8 goes through
    ssdmobile.quant.export_int8 with `calibration` = {calib_data, split, num_images, observer}."""
    mod = get_target(target)
    precision = precision or mod.DEFAULT_PRECISION
    check_precision(target, precision, mod.PRECISIONS)
    out = prepare_out_dir(out_dir)
    detector = detector.eval()
    if precision == "int8":
        from ..quant import export_int8

        return export_int8(detector, target, out, nms=nms, **(calibration or {}))
    return mod.export(detector, precision, out, nms=nms)


__all__ = ["TARGETS", "PRECISIONS", "ExportError", "PrecisionNotAvailable", "export", "get_target"]
