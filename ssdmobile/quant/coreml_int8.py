"""Core ML int8: an ML Program's weights linearly quantized to int8 (per-channel symmetric) by
`coremltools.optimize.coreml.linear_quantize_weights`; activations stay fp16 (W8A16). W8A8
(`linear_quantize_activations`) calibrates by running the model, which needs the Core ML runtime:
macOS only, so it is not produced here. On Linux the result is spec-checked only
(`check_int8_spec`)."""

from __future__ import annotations

from pathlib import Path

from ..errors import QuantizationError

INT8_RECORD = {
    "dtype": "int8",
    "weights": "per-channel symmetric (Core ML linear)",
    "activations": "fp16 (W8A16; W8A8 needs macOS to calibrate)",
    "method": "coremltools.optimize.coreml.linear_quantize_weights",
}


def quantize_weights(mlmodel):
    """An ML Program (fp16) -> the same program with int8 weights."""
    import coremltools.optimize.coreml as cto  # lazy: heavy optional runtime (coremltools)

    config = cto.OptimizationConfig(
        global_config=cto.OpLinearQuantizerConfig(
            mode="linear_symmetric", dtype="int8", granularity="per_channel", weight_threshold=512
        )
    )
    return cto.linear_quantize_weights(mlmodel, config=config)


def check_int8_spec(path) -> dict:
    """The package's ML Program stores its conv weights as int8 constexpr ops (runs on Linux)."""
    import coremltools as ct  # lazy: heavy optional runtime (coremltools)

    spec = ct.utils.load_spec(str(path))
    programs = (
        [spec]
        if spec.WhichOneof("Type") == "mlProgram"
        else [m for m in spec.pipeline.models if m.WhichOneof("Type") == "mlProgram"]
    )
    if not programs:
        raise QuantizationError(f"{Path(path).name}: no ML Program inside")
    text = str(programs[0].mlProgram)
    n_quant = text.count("constexpr_blockwise_shift_scale") + text.count(
        "constexpr_affine_dequantize"
    )
    if n_quant == 0 or "INT8" not in text:
        raise QuantizationError(f"{Path(path).name}: no int8 weights in the program")
    md = dict(spec.description.metadata.userDefined)
    if md.get("ssdmobile.precision") != "int8":
        raise QuantizationError(
            f"{Path(path).name}: metadata precision is {md.get('ssdmobile.precision')!r}, not int8"
        )
    return {
        "int8_weight_ops": n_quant,
        "inputs": [i.name for i in spec.description.input],
        "outputs": [o.name for o in spec.description.output],
    }
