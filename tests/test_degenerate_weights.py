"""int8 on a checkpoint with all-zero and constant output channels (pruned or dead channels), every
target: no NaN, infinity or RuntimeWarning (divide by zero, invalid value in cast) while
quantizing, the quantized weights dequantize to exactly the float weights on those channels, and
the artifact's outputs on the zeroed channels equal float's exactly (0), in its own runtime, on
real images (Core ML: converted and its weights read back, not run: macOS only).

The checkpoint: the real person detector with
- two output channels of the first box predictor zeroed, weights and bias (raw outputs exactly 0);
- one output channel of the first class predictor zeroed, bias kept (a constant output);
- two output channels of an expansion conv zeroed before its BatchNorm (after folding: a zero
  weight channel with a non-zero bias, a constant channel inside the network)."""

import warnings

import numpy as np
import pytest
import torch

from ssdmobile.data import CocoDataset
from ssdmobile.models import create_model
from ssdmobile.quant.ptq import Calibration
from ssdmobile.targets.artifacts import load_runner
from ssdmobile.targets.pipeline import export

from conftest import COCO128, PERSON_GRAPH

pytestmark = pytest.mark.slow  # each test quantizes and exports the real person detector

CALIB = Calibration(str(COCO128), "train2017", 2, "minmax")
OPTIONS = {"calibration": CALIB, "progress": False}
# (module, output channels zeroed, bias zeroed too)
ZEROED = [
    ("box_head.0.1", [0, 5], True),  # 576 -> 12, 1x1
    ("class_head.0.1", [1], False),  # 576 -> 6, 1x1
    ("backbone.4.conv.0.0", [3, 7], False),  # the expansion conv, before its BatchNorm
]


@pytest.fixture(scope="module")
def zeroed():
    det = create_model("ssdlite_mobilenet_v2_person", weights=PERSON_GRAPH)
    with torch.no_grad():
        for name, channels, bias in ZEROED:
            conv = det.core.get_submodule(name)
            conv.weight[channels] = 0
            if bias:
                conv.bias[channels] = 0
    return det.eval()


@pytest.fixture(scope="module")
def inputs(zeroed):
    return torch.cat(
        [zeroed.preprocess([s.image]) for s in CocoDataset(COCO128, "val2017", max_images=2)]
    )


@pytest.fixture(scope="module")
def zero_outputs(zeroed, inputs):
    """Where the float core's box encodings are exactly 0: the two zeroed box channels, on every
    cell of the first feature map (19 x 19) of each image."""
    with torch.no_grad():
        box, _ = zeroed.core(inputs)
    mask = box == 0
    assert int(mask.sum()) == 2 * 19 * 19 * len(inputs)
    return mask


def quantizing(fn):
    """fn(), failing on any RuntimeWarning it raises: numpy's divide by zero, invalid value (NaN,
    a NaN cast to int8) and overflow (underflow stays numpy's default, ignored: tiny weights)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with np.errstate(divide="warn", invalid="warn", over="warn"):
            result = fn()
    bad = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert not bad, bad
    return result


def assert_zeroed_channels_exact(zeroed, weights) -> None:
    """`weights`: every dequantized weight of an artifact (float arrays, output channel first).
    All finite; for each zeroed conv, one weight of its shape is exactly 0 on the zeroed channels
    (BatchNorm folding scales the other channels, so they are matched by shape only)."""
    weights = [np.asarray(w, dtype=np.float64) for w in weights]
    assert weights and all(np.isfinite(w).all() for w in weights)
    for name, channels, _ in ZEROED:
        shape = tuple(zeroed.core.get_submodule(name).weight.shape)
        same = [w for w in weights if w.shape == shape]
        assert any(not w[channels].any() and w.any() for w in same), (name, len(same))


def run_matches_float_on_zeroed(path, inputs, zero_outputs) -> None:
    box, _ = load_runner(path, threads=2).run(inputs)
    assert torch.count_nonzero(box[zero_outputs]) == 0
    assert torch.count_nonzero(box) > box.numel() // 2  # the rest is not trivially zero


def test_executorch_int8(zeroed, inputs, zero_outputs, tmp_path):
    from ssdmobile.quant.ptq import quantize_core_pt2e

    calib = list(inputs.split(1))
    graph = quantizing(lambda: quantize_core_pt2e(zeroed.core, calib, "minmax", progress=False))
    weights = []
    for node in graph.graph.nodes:
        if "dequantize_per_channel" in str(node.target):
            w, scale, zero_point = (getattr(graph, a.target) for a in node.args[:3])
            assert (scale > 0).all() and torch.isfinite(scale).all()
            dequantize = torch.ops.quantized_decomposed.dequantize_per_channel
            weights.append(dequantize(w, scale, zero_point, *node.args[3:]))
    assert_zeroed_channels_exact(zeroed, weights)
    (path,) = (
        a.path
        for a in quantizing(lambda: export(zeroed, "executorch", "int8", tmp_path, **OPTIONS))
    )
    run_matches_float_on_zeroed(path, inputs, zero_outputs)


def test_torchscript_int8(zeroed, inputs, zero_outputs, tmp_path):
    from ssdmobile.quant.eager import quantize_core_eager

    calib = list(inputs.split(1))
    qcore = quantizing(lambda: quantize_core_eager(zeroed.core, calib, "minmax", progress=False))
    weights = []
    for m in qcore.modules():
        if hasattr(m, "weight") and callable(m.weight):  # quantized conv: weight() is int8
            q = m.weight()
            assert (q.q_per_channel_scales() > 0).all()
            weights.append(q.dequantize())
    assert_zeroed_channels_exact(zeroed, weights)
    _, lite = (
        a.path
        for a in quantizing(lambda: export(zeroed, "torchscript", "int8", tmp_path, **OPTIONS))
    )
    run_matches_float_on_zeroed(lite, inputs, zero_outputs)


def _onnx_weights(path) -> list[np.ndarray]:
    """Every per-channel int8 weight in the file, dequantized: QDQ's DequantizeLinear of an
    initializer, QOperator's QLinearConv weight with its scale and zero point."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    init = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    triples = []
    for node in graph.node:
        if node.op_type == "DequantizeLinear" and node.input[0] in init:
            triples.append(node.input[:3])
        elif node.op_type == "QLinearConv":
            triples.append(node.input[3:6])
    out = []
    for w, scale, zero_point in triples:
        w, scale, zp = init[w], init[scale], init[zero_point]
        if w.ndim == 4:
            assert (scale > 0).all() and np.isfinite(scale).all()
            shape = (-1, 1, 1, 1)
            out.append((w.astype(np.float64) - zp.reshape(shape)) * scale.reshape(shape))
    return out


@pytest.mark.parametrize("fmt", ["qdq", "qoperator-u8s8"])
def test_onnx_int8(zeroed, inputs, zero_outputs, tmp_path, fmt):
    path, _ort = (
        a.path
        for a in quantizing(
            lambda: export(zeroed, "onnx", "int8", tmp_path, int8_format=fmt, **OPTIONS)
        )
    )
    assert_zeroed_channels_exact(zeroed, _onnx_weights(path))
    run_matches_float_on_zeroed(path, inputs, zero_outputs)


def test_coreml_int8(zeroed, tmp_path):
    """The weights coremltools would divide by a zero scale stay fp16, exactly; the rest is int8."""
    import coremltools as ct
    import coremltools.optimize.coreml as cto

    from ssdmobile.quant.coreml_int8 import WEIGHT_THRESHOLD, check_int8_spec

    (path,) = (a.path for a in quantizing(lambda: export(zeroed, "coreml", "int8", tmp_path)))
    assert check_int8_spec(path)["int8_weight_ops"] > 50
    model = ct.models.MLModel(str(path), skip_model_load=True)
    kept = [m.val for m in cto.get_weights_metadata(model, WEIGHT_THRESHOLD).values()]
    # the expansion conv (24 -> 144: 3456 weights) and both heads are above the threshold
    assert_zeroed_channels_exact(zeroed, kept)
