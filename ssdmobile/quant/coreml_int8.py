"""Core ML int8, in two formats (`FORMATS`, picked with --int8-format):

- w8a16 (default): the converted ML Program's weights linearly quantized to int8 (per-channel
  symmetric) by `coremltools.optimize.coreml.linear_quantize_weights`; activations stay fp16. No
  calibration.
- w8a8: weights and activations int8, by coremltools' own PyTorch quantizer
  (`coremltools.optimize.torch.quantization.LinearQuantizer`, in quant.coreml_w8a8): the core is
  prepared, calibration images run through it in PyTorch, `finalize()` gives a core with
  quantize/dequantize steps, and `ct.convert(..., minimum_deployment_target=iOS17)` writes them
  as the ML Program's `quantize` / `dequantize` ops. (coremltools' other route,
  `coreml.experimental.linear_quantize_activations`, calibrates by running the Core ML model:
  macOS only.)

On Linux the result is spec-checked (`check_int8_spec`) and evaluated by ssdmobile.mlprogram.
"""

from __future__ import annotations

import contextlib
import io
from collections import Counter
from pathlib import Path

from ..errors import QuantizationError

INT8_RECORD = {
    "dtype": "int8",
    "weights": "per-channel symmetric (Core ML linear)",
    "activations": "fp16 (W8A16)",
    "method": "coremltools.optimize.coreml.linear_quantize_weights",
    "format": "w8a16",
}

# coremltools' "Quantization / Performance" page (docs-guides/source/opt-quantization-perf.html):
# "In newer hardware with A17 Pro or M4 chips, such as iPhone 15 Pro, there is increased throughput
# possible for int8-int8 compute on Neural Engine", and activation quantization is recommended
# "only when your model is fully or mostly running on the Neural Engine" (CPU and GPU decompress)
W8A8_DEVICES = (
    "int8 x int8 compute on the Neural Engine of A17 Pro / M4 and newer (iPhone 15 Pro on); "
    "older Neural Engines, CPU and GPU dequantize and compute in fp16 (coremltools docs, "
    "Quantization: Performance)"
)

FORMATS = {
    "w8a16": "int8 weights, fp16 activations (linear_quantize_weights, no calibration)",
    "w8a8": "int8 weights and activations (coremltools.optimize.torch LinearQuantizer, "
    "calibrated; iOS 17; int8 x int8 on A17 Pro / M4 Neural Engines)",
}
DEFAULT_FORMAT = "w8a16"
# the formats that quantize the core (calibrated) before the exporter converts it
CORE_FORMATS = ("w8a8",)

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
    # coremltools draws a progress bar on stderr for every MIL pass: keep the CLI output readable
    # (warnings still reach the user: a divide-by-zero here would be a bug, see above)
    with contextlib.redirect_stderr(io.StringIO()):
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
    import numpy as np  # lazy: the target table reads FORMATS here at every command's start

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
    """The package's ML Program stores its conv weights as int8 constexpr ops; W8A8 programs also
    quantize activations (iOS 17 `quantize` ops, each followed by a `dequantize`). Runs on Linux.
    -> counts of both, and which format the program is."""
    import coremltools as ct  # lazy: heavy optional runtime (coremltools)

    spec = ct.utils.load_spec(str(path))
    programs = (
        [spec]
        if spec.WhichOneof("Type") == "mlProgram"
        else [m for m in spec.pipeline.models if m.WhichOneof("Type") == "mlProgram"]
    )
    if not programs:
        raise QuantizationError(f"{Path(path).name}: no ML Program inside")
    fn = programs[0].mlProgram.functions["main"]
    block = fn.block_specializations[fn.opset].operations
    ops = Counter(o.type for o in block)
    n_quant = ops["constexpr_blockwise_shift_scale"] + ops["constexpr_affine_dequantize"]
    if n_quant == 0 or "INT8" not in str(programs[0].mlProgram):
        raise QuantizationError(f"{Path(path).name}: no int8 weights in the program")
    # each quantized activation is read back by dequantize ops (one or more, where it fans out)
    quantized = {o.outputs[0].name for o in block if o.type == "quantize"}
    read = {a.name for o in block if o.type == "dequantize" for a in o.inputs["input"].arguments}
    if quantized - read:
        raise QuantizationError(
            f"{Path(path).name}: {len(quantized - read)} quantized activations are never "
            "dequantized"
        )
    md = dict(spec.description.metadata.userDefined)
    if md.get("ssdmobile.precision") != "int8":
        raise QuantizationError(
            f"{Path(path).name}: metadata precision is {md.get('ssdmobile.precision')!r}, not int8"
        )
    return {
        "int8_weight_ops": n_quant,
        "int8_activation_ops": ops["quantize"],
        "format": "w8a8" if ops["quantize"] else "w8a16",
        "inputs": [i.name for i in spec.description.input],
        "outputs": [o.name for o in spec.description.output],
    }
