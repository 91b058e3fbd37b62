"""Core ML int8: the fp16 ML Program with its weights linearly quantized to int8 (per-channel
symmetric) by `coremltools.optimize.coreml.linear_quantize_weights`; activations stay fp16
(W8A16). W8A8 (`linear_quantize_activations`) calibrates by running the model, which needs the
Core ML runtime: macOS only, so it is not produced here. On Linux the result is spec-checked only
(`check_int8_spec`)."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

from .ptq import QuantizationError


def _quantize_weights(mlmodel):
    import coremltools.optimize.coreml as cto

    config = cto.OptimizationConfig(global_config=cto.OpLinearQuantizerConfig(
        mode="linear_symmetric", dtype="int8", granularity="per_channel", weight_threshold=512))
    return cto.linear_quantize_weights(mlmodel, config=config)


def export_coreml_int8(detector, out_dir, *, record: dict | None = None, tag: str = "") -> Path:
    import coremltools as ct

    from ..export import coreml as coreml_export
    from ..export._common import artifact_sha256, artifact_stem, atomic_output, prepare_out_dir
    from ..sidecar import sidecar_path

    out = prepare_out_dir(out_dir)
    with tempfile.TemporaryDirectory() as tmp:
        fp16 = coreml_export.export(detector, "fp16", Path(tmp), nms=False)
        sidecar = json.loads(sidecar_path(fp16).read_text())
        mlmodel = ct.models.MLModel(str(fp16), skip_model_load=True)
        q = _quantize_weights(mlmodel)
        meta = q.user_defined_metadata
        meta["ssdmobile.precision"] = "int8"
        final = out / f"{artifact_stem(detector.spec.name, 'coreml', 'int8', False)}{tag}.mlpackage"
        with atomic_output(final) as pending:
            q.save(str(pending.path))
            pending.sidecar = {**sidecar, "precision": "int8", "artifact": final.name,
                               "artifact_sha256": artifact_sha256(pending.path),
                               "quantization": {"dtype": "int8", "weights": "per-channel symmetric (Core ML linear)",
                                                "activations": "fp16 (W8A16; W8A8 needs macOS to calibrate)",
                                                "method": "coremltools.optimize.coreml.linear_quantize_weights",
                                                **(record or {})}}
    check_int8_spec(final)
    return final


def check_int8_spec(path) -> dict:
    """The package's ML Program stores its conv weights as int8 constexpr ops (runs on Linux)."""
    import coremltools as ct

    spec = ct.utils.load_spec(str(path))
    if spec.WhichOneof("Type") != "mlProgram":
        raise QuantizationError(f"{Path(path).name}: not an ML Program")
    text = str(spec.mlProgram)
    n_quant = text.count("constexpr_blockwise_shift_scale") + text.count("constexpr_affine_dequantize")
    if n_quant == 0 or "INT8" not in text:
        raise QuantizationError(f"{Path(path).name}: no int8 weights in the program")
    md = dict(spec.description.metadata.userDefined)
    if md.get("ssdmobile.precision") != "int8":
        raise QuantizationError(f"{Path(path).name}: metadata precision is {md.get('ssdmobile.precision')!r}, not int8")
    return {"int8_weight_ops": n_quant, "inputs": [i.name for i in spec.description.input],
            "outputs": [o.name for o in spec.description.output]}
