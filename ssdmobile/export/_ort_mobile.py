"""ORT Mobile: ONNX Runtime's own mobile usability verdict of an ONNX graph, and the `.ort` file.

`usability(path)` is what `python -m onnxruntime.tools.check_onnx_model_mobile_usability` checks,
called through its library (onnxruntime.tools.mobile_helpers.usability_checker) so the findings
come back as data, not log lines: the graph optimized to ONNX Runtime's BASIC level as the tool
does, shapes inferred, then the partitions the NNAPI and the two Core ML execution providers
would get from their supported-op lists, and the tool's "should perform well with <EP> as is"
verdict (PartitioningInfo.suitability). ssdmobile's graphs have fixed shapes, so the tool's
second pass ("if modified to have fixed input shapes") never applies and is not run.

`write_ort(src, dst)` converts with onnxruntime.tools.convert_onnx_models_to_ort (its Python API),
in the "runtime" optimization style ONNX Runtime recommends for the NNAPI and Core ML execution
providers: the file keeps the graph at the BASIC level (execution-provider independent: the ONNX
ops NNAPI / Core ML take, the graph the verdict above was computed on) and carries the CPU EP's
further optimizations (the QDQ -> QLinearConv fusions of int8) as saved records, replayed at load
on the nodes the CPU EP gets. The "fixed" style would bake CPU-only fused contrib ops (FusedConv,
QLinearConv from QDQ) into the file, which the mobile EPs refuse; BASIC without the records runs
int8 QDQ in float on the CPU EP (measured: 12.9 dB SQNR against the .onnx session's int8 here).
onnxruntime >= 1.31 replays the records only with the session option
`session.enable_saved_runtime_optimizations` = 1 ("only for trusted models"): runtime/onnx.py sets
it for .ort files, the apps must too.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import pathlib
import shutil
import tempfile
from pathlib import Path

from ..errors import ExportError

ORT_SUFFIX = ".ort"
ORT_RUNTIME = "onnxruntime (ORT format: ORT Mobile)"
# the converter's documented knob for the optimization level
# (onnxruntime/tools/convert_onnx_models_to_ort.py)
_LEVEL_ENV = "ORT_CONVERT_ONNX_MODELS_TO_ORT_OPTIMIZATION_LEVEL"

# sidecar key -> (the checker's EP name, its supported-op list in onnxruntime/tools/mobile_helpers)
_EPS = {
    "nnapi": None,
    "coreml_neuralnetwork": "coreml_supported_neuralnetwork_ops.md",
    "coreml_mlprogram": "coreml_supported_mlprogram_ops.md",
}


def _ep_record(info) -> dict:
    return {
        "verdict": info.suitability().name,
        "partitions": int(info.num_partitions),
        "supported_nodes": int(info.num_supported_nodes),
        "nodes": int(info.num_nodes),
        "partition_sizes": [len(g) for g in info.supported_groups],
        "unsupported_ops": sorted(info.unsupported_ops),
        "unsupported_rank_ops": sorted(info.ops_with_unsupported_rank),
    }


def usability(path: str | os.PathLike) -> dict:
    """The sidecar's `ort_mobile` record of the ONNX file at `path`."""
    import onnxruntime as ort  # lazy: heavy optional runtime, only for ONNX artifacts
    from onnxruntime.tools.mobile_helpers import usability_checker as uc
    from onnxruntime.tools.onnx_model_utils import ModelProtoWithShapeInfo, optimize_model

    path = Path(path)
    with tempfile.TemporaryDirectory(prefix="ssdmobile-ort-mobile-") as tmp:
        basic = pathlib.Path(tmp) / "basic.onnx"
        optimize_model(path, basic, use_external_initializers=True)
        model = ModelProtoWithShapeInfo(basic).model_with_shape_info
        record = {"checker": f"onnxruntime {ort.__version__} check_onnx_model_mobile_usability"}
        for key, config in _EPS.items():
            info = (
                uc.check_nnapi_partitions(model, require_fixed_input_sizes=True)
                if config is None
                else uc.check_coreml_partitions(model, True, config)
            )
            record[key] = _ep_record(info)
    return record


def _convert(work: Path, style, level: str | None) -> list[Path]:
    """convert_onnx_models_to_ort on work/model.onnx -> the .ort files it wrote in work/out."""
    # lazy: heavy optional runtime (onnxruntime), only for ONNX artifacts
    from onnxruntime.tools.convert_onnx_models_to_ort import convert_onnx_models_to_ort

    out = work / "out"
    shutil.rmtree(out, ignore_errors=True)
    old = os.environ.get(_LEVEL_ENV)
    if level is not None:
        os.environ[_LEVEL_ENV] = level
    # the converter prints its progress on stdout (ssdmobile's stdout is for results) and logs an
    # INFO line per file through its own logger (onnxruntime/tools/logger.py)
    quiet = logging.getLogger("ort_format_model.utils")
    was = quiet.level
    quiet.setLevel(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            convert_onnx_models_to_ort(
                work / "model.onnx",
                output_dir=out,
                optimization_styles=[style],
                target_platform="arm",
            )
    finally:
        quiet.setLevel(was)
        if old is None:
            os.environ.pop(_LEVEL_ENV, None)
        else:
            os.environ[_LEVEL_ENV] = old
    return sorted(out.glob(f"*{ORT_SUFFIX}"))


def write_ort(src: str | os.PathLike, dst: str | os.PathLike) -> bool:
    """Convert the ONNX file `src` into the ORT-format file `dst` (see the module docstring).
    -> whether the file carries saved runtime optimizations: where onnxruntime cannot save them
    for a graph (seen on a float-fallback int8 graph: "The sum of input arg count is not equal to
    size of input defs in node ..._bias_dq"), the file is the BASIC-level graph without them (the
    "fixed" style at BASIC: valid for every execution provider; the CPU EP then runs QDQ int8 in
    float)."""
    # lazy: heavy optional runtime (onnxruntime), only for ONNX artifacts
    from onnxruntime.tools.convert_onnx_models_to_ort import OptimizationStyle

    src, dst = Path(src), Path(dst)
    with tempfile.TemporaryDirectory(prefix="ssdmobile-ort-") as tmp:
        work = Path(tmp)
        shutil.copyfile(src, work / "model.onnx")
        saved = True
        try:
            written = _convert(work, OptimizationStyle.Runtime, None)
        except Exception:  # onnxruntime's own errors (Fail, RuntimeError): try without the records
            saved = False
            try:
                written = _convert(work, OptimizationStyle.Fixed, "basic")
            except Exception as e:
                raise ExportError(
                    f"onnxruntime cannot convert {src.name} to ORT format "
                    f"({str(e).splitlines()[0][:200] if str(e) else type(e).__name__})"
                ) from None
        if len(written) != 1:
            raise ExportError(
                f"onnxruntime's ORT converter wrote {len(written)} .ort files for {src.name}, "
                "expected 1"
            )
        shutil.copyfile(written[0], dst)
    return saved
