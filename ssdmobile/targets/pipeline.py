"""Where quantization and export meet: `export(..., precision="int8")` calibrates, quantizes with
the target's method and exports, in the order the method needs (the core before export, the file
after export, or inside the exporter)."""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ..errors import QuantizationError
from ..export._common import Artifact, ExportRequest, artifact_stem, atomic_output
from ..export._pixels import pixel_detector
from ..fileio import prepare_out_dir, sha256_file
from ..quant import Calibration
from ..quant.ptq import calibration_set
from ..sidecar import load_sidecar
from . import Target, check_export, check_input_dtype, get_target


def export(
    detector,
    target: str,
    precision: str | None = None,
    out_dir: str | os.PathLike = ".",
    *,
    nms: bool = False,
    calibration: Calibration | None = None,
    float_modules: Sequence[str] = (),
    tag: str = "",
    progress: bool = True,
    int8_format: str | None = None,
    input_dtype: str = "float32",
) -> list[Artifact]:
    """Every artifact written (TorchScript writes two: .pt and the lite interpreter's .ptl), each
    with its sidecar. int8 needs `calibration` for targets whose method calibrates. `int8_format`:
    one of the target's int8 formats (TARGETS[target].int8.formats; None: its default); a format
    other than the default is part of the file name, so formats can share a directory.
    `input_dtype` "uint8": the program takes camera bytes (export/_pixels.py), calibrated on
    them."""
    t, precision = check_export(target, precision, calibration, float_modules, int8_format)
    check_input_dtype(t.name, input_dtype)
    if int8_format is not None and int8_format != t.int8.default_format:
        tag = f"{tag}_{int8_format}"
    req = ExportRequest(precision, prepare_out_dir(out_dir), nms, tag)
    detector = detector.eval()
    if input_dtype == "uint8":
        detector, record = pixel_detector(detector)
        req = dataclasses.replace(req, tag=f"{tag}_u8", pixel_input=record)
    if precision != "int8" or not t.int8.calibrated_for(int8_format):
        return t.exporter(detector, req)
    inputs, record = calibration_set(detector, calibration)
    if t.int8.stage_of(int8_format) == "model":
        qdet, method = t.int8.quantize(
            detector, inputs, calibration.observer, float_modules, progress
        )
        # the method's record has the last word on what it did (Core ML W8A8 names the observer
        # coremltools used, which has no histogram one)
        return t.exporter(qdet, dataclasses.replace(req, quantization={**record, **method}))
    return _quantize_files(
        t,
        detector,
        req,
        inputs,
        calibration.observer,
        record,
        float_modules,
        int8_format or t.int8.default_format,
    )


def export_quantized(
    qdetector, target: str, out_dir, record: dict, *, nms: bool = False, tag: str = ""
) -> list[Artifact]:
    """Export a detector whose core is already int8 (a QAT model converted by PT2E, say) with the
    target's exporter; `record` says how it was quantized."""
    t = get_target(target)
    if t.int8 is None or t.int8.stage != "model":
        raise QuantizationError(
            f"{t.name} quantizes its exported file, not a converted core; export the float "
            f"weights with --precision int8 instead"
        )
    return t.exporter(
        qdetector.eval(), ExportRequest("int8", prepare_out_dir(out_dir), nms, tag, record)
    )


def _quantize_files(
    t: Target,
    detector,
    req: ExportRequest,
    inputs,
    observer: str,
    record: dict,
    float_modules: Sequence[str],
    int8_format: str | None,
) -> list[Artifact]:
    """Export fp32 into a private directory, then quantize each written file into its int8 name."""
    written = []
    with tempfile.TemporaryDirectory(dir=req.out_dir, prefix=".int8-") as tmp:
        for fp32 in t.exporter(
            detector, dataclasses.replace(req, precision="fp32", out_dir=Path(tmp))
        ):
            if fp32.path.suffix != t.suffixes[0] and t.companions:
                continue  # converted from the main file: converted again from the quantized one
            final = req.out_dir / (
                artifact_stem(detector.spec.name, t.name, req) + fp32.path.suffix
            )
            sidecar = load_sidecar(fp32.path)
            with atomic_output(final) as pending:
                method = t.int8.quantize_file(
                    fp32.path, pending.path, inputs, observer, req.nms, float_modules, int8_format
                )
                pending.sidecar = sidecar.replaced(
                    precision="int8",
                    artifact=final.name,
                    artifact_sha256=sha256_file(pending.path),
                    quantization={**method, **record},
                    **(t.file_fields(pending.path) if t.file_fields else {}),
                )
            written.append(dataclasses.replace(fp32, path=final, precision="int8"))
            if t.companions:
                written += t.companions(written[-1])
    return written
