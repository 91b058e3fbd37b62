"""Core ML int8: an ML Program's weights linearly quantized to int8 (per-channel symmetric) by
`coremltools.optimize.coreml.linear_quantize_weights`; activations stay fp16 (W8A16). W8A8
(`linear_quantize_activations`) calibrates by running the model, which needs the Core ML runtime:
macOS only, so it is not produced here. On Linux the result is spec-checked only
(`check_int8_spec`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import QuantizationError

INT8_RECORD = {
    "dtype": "int8",
    "weights": "per-channel symmetric (Core ML linear)",
    "activations": "fp16 (W8A16; W8A8 needs macOS to calibrate)",
    "method": "coremltools.optimize.coreml.linear_quantize_weights",
}


WEIGHT_THRESHOLD = 512  # weights of at most this many elements stay fp16 (coremltools' threshold)


def quantize_weights(mlmodel):
    """An ML Program (fp16) -> the same program with int8 weights. A weight with an output channel
    whose int8 scale would be 0 (`zero_scale_weights`) stays fp16, exactly as it was."""
    import coremltools.optimize.coreml as cto  # lazy: heavy optional runtime (coremltools)

    config = cto.OptimizationConfig(
        global_config=cto.OpLinearQuantizerConfig(
            mode="linear_symmetric",
            dtype="int8",
            granularity="per_channel",
            weight_threshold=WEIGHT_THRESHOLD,
        ),
        op_name_configs=dict.fromkeys(zero_scale_weights(mlmodel)),  # None: not compressed
    )
    return cto.linear_quantize_weights(mlmodel, config=config)


def zero_scale_weights(mlmodel) -> list[str]:
    """Names of the weights that coremltools' per-channel int8 would divide by a zero scale.

    coremltools 9.0 has no minimum scale (torch.ao's observers clamp theirs to eps, onnxruntime's
    quantizer uses 1.0 below the smallest float): a channel's scale is max|w| / 127 computed in the
    weight's own dtype (fp16 here), so an all-zero output channel (pruned, or dead after BatchNorm
    folding) and one whose max|w| is below ~4e-6 (fp16 underflow; the real person detector has
    three) get scale 0, and weights / 0 then writes NaN cast to int8, with RuntimeWarnings. Such a
    weight is left out of quantization through coremltools' own per-weight config (op_name_configs),
    so it keeps its fp16 values exactly; the rest of the program is int8 as before. (Per-tensor int8
    for those weights was measured 9 to 11 dB below per-channel on the person detector's three.)"""
    import coremltools.optimize.coreml as cto  # lazy: heavy optional runtime (coremltools)

    degenerate = []
    for name, meta in cto.get_weights_metadata(mlmodel, WEIGHT_THRESHOLD).items():
        w = np.abs(meta.val)
        if not np.issubdtype(w.dtype, np.floating):
            continue
        # the output channel axis coremltools picks per consumer: conv_transpose's is 1, other
        # convs' and linear's 0; any other consumer: every axis is checked
        kinds = {op.op_type for op in meta.child_ops}
        axes = [1] if kinds == {"conv_transpose"} else [0] if kinds <= {"conv", "linear"} else []
        axes = axes or list(range(w.ndim))
        for axis in axes:
            others = tuple(a for a in range(w.ndim) if a != axis)
            with np.errstate(under="ignore"):  # the underflow is what is looked for
                scale = w.max(axis=others) / w.dtype.type(127)
            if (scale == 0).any():
                degenerate.append(name)
                break
    return degenerate


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
