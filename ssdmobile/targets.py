"""The target table: every deployment target, declared once.

A Target says what it is (name, artifact suffixes, precisions and the default one, how NMS goes
into its graph), how it is made (its exporter in ssdmobile/export/, and for int8 the quantization
method of ssdmobile/quant/ that serves it), and how it is run (its runner in ssdmobile/runtime/,
the check that a file is what its suffix says, whether it runs on this machine, and what checks
it where it cannot run). Commands, validate, benchmarks and the README read this table; adding a
target is one exporter file, one runner file and one entry below (README, "Adding a target").

This module is also the one place where quantization and export meet: `export(...,
precision="int8")` calibrates, quantizes with the target's method and exports, in the order the
method needs (the core before export, the file after export, or inside the exporter).
"""

from __future__ import annotations

import dataclasses
import os
import platform
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .detector import Detector
from .evaluate import EvalResult, coco_eval, predict_dataset
from .export import (
    coreml as coreml_export,
    executorch as executorch_export,
    onnx as onnx_export,
    torchscript as torchscript_export,
)
from .export._common import (
    Artifact,
    ExportError,
    ExportRequest,
    PrecisionNotAvailable,
    artifact_stem,
    atomic_output,
)
from .fileio import prepare_out_dir, sha256_file
from .quant import eager_family
from .quant.eager import quantize_detector_eager
from .quant.onnx_int8 import (
    DEFAULT_FORMAT as ONNX_INT8_DEFAULT,
    FORMATS as ONNX_INT8_FORMATS,
    quantize_onnx_file,
)
from .quant.ptq import Calibration, QuantizationError, calibration_set, quantize_detector_pt2e
from .runtime import (
    Predictor,
    Runner,
    check_sidecar,
    coreml as coreml_runtime,
    executorch as executorch_runtime,
    onnx as onnx_runtime,
    torchscript as torchscript_runtime,
)
from .runtime._base import ArtifactError
from .sidecar import load_sidecar, read_sidecar, sidecar_path

PRECISIONS = ("fp32", "fp16", "int8")


@dataclass(frozen=True)
class Int8Method:
    """How a target gets int8. `stage`: "model" quantizes the detector's core, then the target's
    exporter writes it (`quantize(detector, inputs, observer, float_modules, progress) -> (detector,
    record)`); "file" exports fp32, then quantizes the written file (`quantize_file(src, dst,
    inputs, observer, nms, float_modules, fmt) -> record`); "exporter": the exporter does it itself,
    with no calibration. float_fallback: it can keep named core modules (`ssdmobile sensitivity`'s
    names) in float. `formats`: named variants of the method a user picks with int8_format (name ->
    one line), for methods that have more than one; `default_format` is the
    one used when none is named."""

    description: str
    stage: str
    quantize: Callable | None = None
    quantize_file: Callable | None = None
    float_fallback: bool = False
    formats: dict[str, str] = dataclasses.field(default_factory=dict)
    default_format: str | None = None

    @property
    def calibrated(self) -> bool:
        return self.stage != "exporter"


@dataclass(frozen=True)
class Target:
    name: str
    suffixes: tuple[str, ...]  # first: the main artifact
    precisions: tuple[str, ...]
    default_precision: str
    nms: str  # how NMS is put in the graph
    exporter: Callable[[Detector, ExportRequest], list[Artifact]]
    check_file: Callable[[Path], None]
    load: Callable[[Path, dict, int | None], Runner]
    runs_here: Callable[[], bool]
    int8: Int8Method | None = None
    verify: Callable[[Path], dict] | None = None  # checks an artifact where it cannot run


def _always() -> bool:
    return True


def _on_macos() -> bool:
    return platform.system() == "Darwin"


def _torchscript_int8(detector, inputs, observer, float_modules, progress):
    # SSD300 VGG16, NVIDIA's SSD300 ResNet-50 and DSSD have their own eager recipe, built on
    # quant/eager.py's pieces (quant/eager_family.py imports eager, so
    # eager's own dispatch cannot call it)
    if eager_family.supports(detector.core):
        if float_modules:
            raise QuantizationError(
                "TorchScript int8 float fallback covers the SSDLite families; "
                "use --target executorch or onnx for this model"
            )
        return eager_family.quantize_detector(detector, inputs, observer, progress)
    return quantize_detector_eager(detector, inputs, observer, float_modules, progress)


def _onnx_int8_file(
    src: Path, dst: Path, inputs, observer: str, nms: bool, float_modules: Sequence[str], fmt: str
) -> dict:
    # with NMS in the graph only the network core is quantized: decoded
    # boxes and output scores stay float
    return quantize_onnx_file(src, dst, inputs, observer, float_modules, core_only=nms, fmt=fmt)


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target(
            "coreml",
            (".mlpackage",),
            ("fp16", "fp32", "int8"),
            "fp16",
            nms="pipeline ending in Core ML's NonMaximumSuppression model (Vision object detector)",
            exporter=coreml_export.export,
            check_file=coreml_runtime.check_file,
            load=coreml_runtime.load,
            runs_here=_on_macos,
            verify=coreml_runtime.check_spec,
            int8=Int8Method("int8 weights, fp16 activations (coremltools.optimize)", "exporter"),
        ),
        Target(
            "executorch",
            (".pte",),
            ("fp32", "int8"),
            "fp32",
            nms="fixed-shape tensor NMS in the program",
            exporter=executorch_export.export,
            check_file=executorch_runtime.check_file,
            load=executorch_runtime.load,
            runs_here=_always,
            int8=Int8Method(
                "PT2E post-training, XNNPACKQuantizer",
                "model",
                quantize=quantize_detector_pt2e,
                float_fallback=True,
            ),
        ),
        Target(
            "onnx",
            (".onnx",),
            ("fp32", "int8"),
            "fp32",
            nms="ONNX NonMaxSuppression + TopK in the graph",
            exporter=onnx_export.export,
            check_file=onnx_runtime.check_file,
            load=onnx_runtime.load,
            runs_here=_always,
            int8=Int8Method(
                "onnxruntime quantize_static on the exported file",
                "file",
                quantize_file=_onnx_int8_file,
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
            exporter=torchscript_export.export,
            check_file=torchscript_runtime.check_file,
            load=torchscript_runtime.load,
            runs_here=_always,
            int8=Int8Method(
                "eager torch.ao.quantization post-training (qnnpack)",
                "model",
                quantize=_torchscript_int8,
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
    given ones where the target has formats; [None], its only or default one, elsewhere). Formats
    that no given target takes are an error, not silently dropped."""
    ts = [get_target(n) for n in targets]
    if int8_formats and not any(t.int8 and t.int8.formats for t in ts):
        raise QuantizationError(
            f"int8 formats are for {', '.join(int8_format_targets())}, not {', '.join(targets)}"
        )
    return {
        t.name: [check_int8_format(t, f) for f in int8_formats]
        if int8_formats and t.int8 and t.int8.formats
        else [None]
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
    if precision == "int8" and t.int8.calibrated and calibration is None:
        raise QuantizationError(
            f"int8 for {t.name} needs calibration images: pass --calib-data DIR"
        )
    return t, precision


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
) -> list[Artifact]:
    """Every artifact written (TorchScript writes two: .pt and the lite interpreter's .ptl), each
    with its sidecar. int8 needs `calibration` for targets whose method calibrates. `int8_format`:
    one of the target's int8 formats (TARGETS[target].int8.formats; None: its default); a format
    other than the default is part of the file name, so formats can share a directory."""
    t, precision = check_export(target, precision, calibration, float_modules, int8_format)
    if int8_format is not None and int8_format != t.int8.default_format:
        tag = f"{tag}_{int8_format}"
    req = ExportRequest(precision, prepare_out_dir(out_dir), nms, tag)
    detector = detector.eval()
    if precision != "int8" or not t.int8.calibrated:
        return t.exporter(detector, req)
    inputs, record = calibration_set(detector, calibration)
    if t.int8.stage == "model":
        qdet, method = t.int8.quantize(
            detector, inputs, calibration.observer, float_modules, progress
        )
        return t.exporter(qdet, dataclasses.replace(req, quantization={**method, **record}))
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
            final = req.out_dir / (
                artifact_stem(detector.spec.name, t.name, req) + fp32.path.suffix
            )
            sidecar = read_sidecar(fp32.path)
            with atomic_output(final) as pending:
                method = t.int8.quantize_file(
                    fp32.path, pending.path, inputs, observer, req.nms, float_modules, int8_format
                )
                pending.sidecar = {
                    **sidecar,
                    "precision": "int8",
                    "artifact": final.name,
                    "artifact_sha256": sha256_file(pending.path),
                    "quantization": {**method, **record},
                }
            written.append(dataclasses.replace(fp32, path=final, precision="int8"))
    return written


# -- running artifacts ----------------------------------------------------------------------------


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


def load_runner(artifact: str | os.PathLike, threads: int | None = None) -> Runner:
    """The artifact loaded in its own runtime, after checking that the file is what its suffix says
    and that its sidecar describes this very file."""
    path = Path(artifact)
    if not path.exists():
        raise ArtifactError(f"artifact not found: {path}")
    t = target_for_path(path)
    t.check_file(path)  # content vs extension, before trusting anything else
    sidecar = load_sidecar(path)
    check_sidecar(path, sidecar, t.name)
    return t.load(path, sidecar, threads)


def load_predictor(artifact: str | os.PathLike, threads: int | None = None) -> Predictor:
    return Predictor(load_runner(artifact, threads))


def evaluate_artifact(
    artifact: str | os.PathLike,
    dataset,
    classes=None,
    threads: int | None = None,
    progress: bool = True,
) -> EvalResult:
    """COCO AP of an artifact run in its own runtime, computed exactly as for the eager model
    (ssdmobile.evaluate on the same dataset, same preprocessing code)."""
    predictor = load_predictor(artifact, threads)
    predictions = predict_dataset(
        predictor, dataset, batch_size=1, progress=progress, desc=Path(artifact).name
    )
    return coco_eval(dataset, predictions, predictor.spec.class_names, classes=classes)


__all__ = [
    "PRECISIONS",
    "TARGETS",
    "Artifact",
    "Calibration",
    "Int8Method",
    "Target",
    "check_export",
    "check_int8_format",
    "check_precision",
    "evaluate_artifact",
    "export",
    "export_quantized",
    "get_target",
    "int8_format_targets",
    "int8_formats_for",
    "load_predictor",
    "load_runner",
    "sidecar_path",
    "target_for_path",
]
