"""The target table: every deployment target, declared once.

A Target says what it is (name, artifact suffixes, precisions and the default one, how NMS goes
into its graph), how it is made (its exporter in ssdmobile/export/, and for int8 the quantization
method of ssdmobile/quant/ that serves it), and how it is run (its runner in ssdmobile/runtime/,
the check that a file is what its suffix says, whether it runs on this machine, and what checks
it where it cannot run). Commands, validate, benchmarks and the README read this table; adding a
target is one exporter file, one runner file and one entry below (README, "Adding a target").

This package: the table and the checks on a request (here; imports no torch, so every command's
argument parser reads it and the CLI answers at once), the int8-then-export pipeline
(`targets.pipeline`), and loading and evaluating a written artifact (`targets.artifacts`).
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import platform
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ArtifactError, ExportError, PrecisionNotAvailable, QuantizationError
from ..quant.coreml_int8 import (
    CORE_FORMATS as COREML_CORE_FORMATS,
    DEFAULT_FORMAT as COREML_INT8_DEFAULT,
    FORMATS as COREML_INT8_FORMATS,
)
from ..quant.onnx_int8 import DEFAULT_FORMAT as ONNX_INT8_DEFAULT, FORMATS as ONNX_INT8_FORMATS

if TYPE_CHECKING:
    from ..quant import Calibration

PRECISIONS = ("fp32", "fp16", "int8")


def _lazy(module: str, name: str) -> Callable:
    """`module.name`, imported on its first call: the exporters, runtimes and quantizers import
    torch and their runtime, which a command's --help or argument check must not wait for."""

    def call(*args, **kwargs):
        return getattr(importlib.import_module(module), name)(*args, **kwargs)

    call.__name__ = call.__qualname__ = f"{module}.{name}"
    return call


def _export(name: str) -> Callable:
    return _lazy(f"ssdmobile.export.{name}", "export")


def _runtime(name: str, function: str) -> Callable:
    return _lazy(f"ssdmobile.runtime.{name}", function)


@dataclass(frozen=True)
class Int8Method:
    """How a target gets int8. `stage`: "model" quantizes the detector's core, then the target's
    exporter writes it (`quantize(detector, inputs, observer, float_modules, progress) -> (detector,
    record)`); "file" exports fp32, then quantizes the written file (`quantize_file(src, dst,
    inputs, observer, nms, float_modules, fmt) -> record`); "exporter": the exporter does it itself,
    with no calibration. float_fallback: it can keep named core modules (`ssdmobile sensitivity`'s
    names) in float. `formats`: named variants of the method a user picks with int8_format (name ->
    one line), for methods that have more than one; `default_format` is the
    one used when none is named. `format_stages`: formats made at another stage than `stage`
    (Core ML: w8a16 is the exporter's, w8a8 quantizes the core, calibrated, like "model")."""

    description: str
    stage: str
    quantize: Callable | None = None
    quantize_file: Callable | None = None
    float_fallback: bool = False
    formats: dict[str, str] = dataclasses.field(default_factory=dict)
    default_format: str | None = None
    format_stages: dict[str, str] = dataclasses.field(default_factory=dict)

    def stage_of(self, int8_format: str | None = None) -> str:
        return self.format_stages.get(int8_format or self.default_format, self.stage)

    @property
    def calibrated(self) -> bool:
        """Its default format calibrates."""
        return self.calibrated_for(None)

    def calibrated_for(self, int8_format: str | None) -> bool:
        return self.stage_of(int8_format) != "exporter"


@dataclass(frozen=True)
class Target:
    name: str
    suffixes: tuple[str, ...]  # first: the main artifact
    precisions: tuple[str, ...]
    default_precision: str
    nms: str  # how NMS is put in the graph
    exporter: Callable  # (Detector, ExportRequest) -> list[Artifact]
    check_file: Callable[[Path], None]
    load: Callable  # (Path, Sidecar, threads: int | None) -> Runner
    runs_here: Callable[[], bool]
    int8: Int8Method | None = None
    verify: Callable[[Path], dict] | None = None  # checks an artifact where it cannot run
    # for file-stage int8, which quantizes the exporter's main file (suffixes[0]) after export:
    # sidecar fields the exporter measures on its file, measured again on the quantized one
    file_fields: Callable[[Path], dict] | None = None
    # ... and the files the exporter converts from its main one (Artifact -> list[Artifact]),
    # converted again from the quantized one (ONNX: the .ort file)
    companions: Callable | None = None


def _always() -> bool:
    return True


def _on_macos() -> bool:
    return platform.system() == "Darwin"


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target(
            "coreml",
            (".mlpackage",),
            ("fp16", "fp32", "int8"),
            "fp16",
            nms="pipeline ending in Core ML's NonMaximumSuppression model (Vision object detector)",
            exporter=_export("coreml"),
            check_file=_runtime("coreml", "check_file"),
            load=_runtime("coreml", "load"),
            runs_here=_on_macos,
            verify=_runtime("coreml", "check_spec"),
            int8=Int8Method(
                "coremltools.optimize: int8 weights (w8a16), or weights and activations (w8a8)",
                "exporter",
                quantize=_lazy("ssdmobile.quant.coreml_w8a8", "quantize_detector_w8a8"),
                formats=COREML_INT8_FORMATS,
                default_format=COREML_INT8_DEFAULT,
                format_stages=dict.fromkeys(COREML_CORE_FORMATS, "model"),
            ),
        ),
        Target(
            "executorch",
            (".pte",),
            ("fp32", "int8"),
            "fp32",
            nms="fixed-shape tensor NMS in the program",
            exporter=_export("executorch"),
            check_file=_runtime("executorch", "check_file"),
            load=_runtime("executorch", "load"),
            runs_here=_always,
            int8=Int8Method(
                "PT2E post-training, XNNPACKQuantizer",
                "model",
                quantize=_lazy("ssdmobile.quant.ptq", "quantize_detector_pt2e"),
                float_fallback=True,
            ),
        ),
        Target(
            "onnx",
            (".onnx", ".ort"),
            ("fp32", "int8"),
            "fp32",
            nms="ONNX NonMaxSuppression + TopK in the graph",
            exporter=_export("onnx"),
            check_file=_runtime("onnx", "check_file"),
            load=_runtime("onnx", "load"),
            runs_here=_always,
            file_fields=_lazy("ssdmobile.export.onnx", "file_fields"),
            companions=_lazy("ssdmobile.export.onnx", "companions"),
            int8=Int8Method(
                "onnxruntime quantize_static on the exported file",
                "file",
                quantize_file=_lazy("ssdmobile.quant.onnx_int8", "quantize_exported_file"),
                float_fallback=True,
                formats={k: f.summary for k, f in ONNX_INT8_FORMATS.items()},
                default_format=ONNX_INT8_DEFAULT,
            ),
        ),
        Target(
            "torchscript",
            (".pt", ".ptl"),
            ("fp32", "int8"),
            "fp32",
            nms="fixed-shape tensor NMS traced into the graph",
            exporter=_export("torchscript"),
            check_file=_runtime("torchscript", "check_file"),
            load=_runtime("torchscript", "load"),
            runs_here=_always,
            int8=Int8Method(
                "eager torch.ao.quantization post-training (qnnpack)",
                "model",
                quantize=_lazy("ssdmobile.quant.eager_family", "quantize_for_torchscript"),
                float_fallback=True,
            ),
        ),
    )
}


def get_target(name: str) -> Target:
    if name not in TARGETS:
        raise ExportError(f"unknown target {name!r}; choose one of {', '.join(TARGETS)}")
    return TARGETS[name]


def check_precision(target: Target, precision: str) -> None:
    if precision not in PRECISIONS:
        raise ExportError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if precision not in target.precisions:
        raise PrecisionNotAvailable(
            f"{target.name} exports {', '.join(target.precisions)}, not {precision}"
        )


def int8_format_targets() -> list[str]:
    """Targets whose int8 method comes in named formats."""
    return [n for n, t in TARGETS.items() if t.int8 and t.int8.formats]


def check_int8_format(t: Target, int8_format: str) -> str:
    """A format name the target's int8 method knows (for a target with formats)."""
    if not (t.int8 and t.int8.formats):
        raise QuantizationError(
            f"{t.name} int8 has a single format; int8 formats exist for "
            f"{', '.join(int8_format_targets())}"
        )
    if int8_format not in t.int8.formats:
        raise QuantizationError(
            f"unknown {t.name} int8 format {int8_format!r}; choose one of "
            f"{', '.join(t.int8.formats)}"
        )
    return int8_format


def int8_formats_for(
    targets: Sequence[str], int8_formats: Sequence[str]
) -> dict[str, list[str | None]]:
    """For commands that export several targets: target -> the int8 formats to export it in (the
    given ones that the target has; [None], its only or default one, where it has none of them:
    `--int8-formats w8a8 qdq-u8s8` gives Core ML w8a8 and ONNX qdq-u8s8, `w8a8` alone Core ML
    w8a8 and ONNX its default). A format that no given target takes is an error, not silently
    dropped."""
    ts = [get_target(n) for n in targets]
    with_formats = [t for t in ts if t.int8 and t.int8.formats]
    if int8_formats and not with_formats:
        raise QuantizationError(
            f"int8 formats are for {', '.join(int8_format_targets())}, not {', '.join(targets)}"
        )
    for f in int8_formats:
        if not any(f in t.int8.formats for t in with_formats):
            known = [f"{t.name}: {', '.join(t.int8.formats)}" for t in with_formats]
            raise QuantizationError(f"unknown int8 format {f!r}; choose from {'; '.join(known)}")
    return {
        t.name: [f for f in int8_formats if t in with_formats and f in t.int8.formats] or [None]
        for t in ts
    }


def check_export(
    target: str,
    precision: str | None = None,
    calibration: Calibration | None = None,
    float_modules: Sequence[str] = (),
    int8_format: str | None = None,
) -> tuple[Target, str]:
    """Everything about an export request that can be wrong before a model is loaded:
    -> (the target, the precision to export)."""
    t = get_target(target)
    precision = precision or t.default_precision
    check_precision(t, precision)
    if int8_format is not None:
        if precision != "int8":
            raise QuantizationError(f"an int8 format is for int8 exports, not {t.name} {precision}")
        check_int8_format(t, int8_format)
    if float_modules and not (precision == "int8" and t.int8.float_fallback):
        raise QuantizationError(
            f"keeping modules in float needs --precision int8 on a target that supports it "
            f"({', '.join(n for n, x in TARGETS.items() if x.int8 and x.int8.float_fallback)})"
        )
    if precision == "int8" and t.int8.calibrated_for(int8_format) and calibration is None:
        raise QuantizationError(
            f"int8 for {t.name}{f' {int8_format}' if int8_format else ''} needs calibration "
            "images: pass --calib-data DIR"
        )
    return t, precision


# programs that take camera bytes (export/_pixels.py): which input dtypes, which targets
INPUT_DTYPES = ("float32", "uint8")
PIXEL_TARGETS = ("executorch",)


def check_input_dtype(target: str, input_dtype: str) -> None:
    """ExportError unless the target can export a program with this input dtype."""
    if input_dtype not in INPUT_DTYPES:
        raise ExportError(f"unknown input dtype {input_dtype!r}; choose float32 or uint8")
    if input_dtype == "uint8" and target not in PIXEL_TARGETS:
        raise ExportError(
            f"--input uint8 (camera bytes in) is for {', '.join(PIXEL_TARGETS)}, not {target}"
            + (" (its image input already takes pixels)" if target == "coreml" else "")
        )


def target_for_path(path: str | os.PathLike) -> Target:
    path = Path(path)
    for t in TARGETS.values():
        if path.suffix in t.suffixes:
            return t
    known = sorted(s for t in TARGETS.values() for s in t.suffixes)
    raise ArtifactError(
        f"{path}: unknown artifact type {path.suffix or '(no extension)'!r}; "
        f"ssdmobile runs {', '.join(known)}"
    )
