"""int8 for SSDlite320 MobileNetV3 on real images: qnnpack (eager torch.ao, TorchScript lite
interpreter) against float and against ExecuTorch int8, the sensitivity ranking, and float
fallback through each int8 tool. No trained MobileNetV3 weights exist here: the checkpoints are
random with realistic BatchNorm statistics and data-aligned filters (realistic_random_ on 8
train2017 images), so the tests compare int8 with float, never with ground truth."""

import pytest
import torch
from torch import nn
from torchvision.ops import box_iou

from ssdmobile.data import CocoDataset
from ssdmobile.models import create_model
from ssdmobile.quant.eager import quantize_core_eager, quantize_detector_eager
from ssdmobile.quant.ptq import (
    Calibration,
    QuantizationError,
    calibration_inputs,
    quantize_detector_pt2e,
)
from ssdmobile.quant.sensitivity import sqnr_db
from ssdmobile.sidecar import load_sidecar
from ssdmobile.targets.artifacts import load_predictor, load_runner
from ssdmobile.targets.pipeline import export, export_quantized

from conftest import COCO128
from random_checkpoints import realistic_random_

BN_IMAGES, CALIB_IMAGES = 8, 4
# calibration here is min-max: the histogram observers (the default) take minutes in eager mode
# one unit of each MobileNetV3 kind, in Small: hardswish conv, squeeze-excite fc1 / fc2, ReLU6 extra
# block, the heads' depthwise conv and prediction conv
SMALL_UNITS = [
    "backbone.features.0.4.block.0",
    "backbone.features.0.4.block.2.fc1",
    "backbone.features.0.4.block.2.fc2",
    "backbone.extra.0.1",
    "head.classification_head.module_list.0.0",
    "head.regression_head.module_list.1.1",
]


def _model(name, **kwargs):
    det = create_model(name, None, **kwargs)
    train = calibration_inputs(det, COCO128, "train2017", BN_IMAGES + CALIB_IMAGES)
    realistic_random_(det, train[:BN_IMAGES], seed=0)
    return det, train[BN_IMAGES:]


@pytest.fixture(scope="module")
def small():
    return _model("ssdlite320_mobilenet_v3_small")


@pytest.fixture(scope="module")
def large():
    return _model("ssdlite320_mobilenet_v3_large")


@pytest.fixture(scope="module")
def val_images():
    return [s.image for s in CocoDataset(COCO128, "val2017", max_images=2)]


def _lite_artifact(qdet, record, out):
    """The int8 detector exported by the target table's TorchScript
    exporter: its lite interpreter file."""
    _pt, ptl = (a.path for a in export_quantized(qdet, "torchscript", out, record))
    assert ptl.suffix == ".ptl"
    return ptl


def assert_overlaps_float(det, predictor, images):
    """Never zero detections, and float's 10 best each have an int8 counterpart (same label, IoU >
    0.5) among int8's 100 best."""
    with torch.no_grad():
        float_dets, int8_dets = det(images), predictor(images)
    for f, q in zip(float_dets, int8_dets):
        assert len(q["scores"]) > 0
        iou = box_iou(f["boxes"][:10], q["boxes"][:100]) * (
            f["labels"][:10, None] == q["labels"][None, :100]
        )
        assert (iou.max(1).values > 0.5).all()


@pytest.mark.slow
@pytest.mark.parametrize("which", ["small", "large"])
def test_qnnpack_lite_matches_float_on_real_images(which, request, val_images, tmp_path):
    det, calib = request.getfixturevalue(which)
    ptl = _lite_artifact(*quantize_detector_eager(det, calib, "minmax", progress=False), tmp_path)
    runner = load_runner(ptl, threads=2)
    xs = [det.preprocess([im]) for im in val_images]
    with torch.no_grad():
        ref, got = [det.core(x) for x in xs], [runner.run(x) for x in xs]
    # randomized checkpoints; the real person detector's int8 gets ~25 dB
    sqnr = sqnr_db([t for r in ref for t in r], [t for g in got for t in g])
    assert sqnr > 12, sqnr
    assert_overlaps_float(det, load_predictor(ptl, threads=2), val_images)


@pytest.mark.slow
def test_torchscript_int8_through_the_target_table(small, val_images, tmp_path):
    """`ssdmobile export/quantize --target torchscript --precision int8` on MobileNetV3 Small, with
    one unit kept in float: both files written, the sidecar records the float module, the lite file
    runs and finds what float finds."""
    det, _ = small
    keep = ["backbone.features.0.4.block.2.fc1"]
    pt, ptl = (
        a.path
        for a in export(
            det,
            "torchscript",
            "int8",
            tmp_path,
            progress=False,
            float_modules=keep,
            calibration=Calibration(str(COCO128), "train2017", 2, "minmax"),
        )
    )
    assert "quantized::hardswish" in str(torch.jit.load(str(pt)).inlined_graph)
    quantization = load_sidecar(ptl).to_dict()["quantization"]
    assert quantization["engine"] == "qnnpack" and quantization["float_modules"] == keep
    assert_overlaps_float(det, load_predictor(ptl, threads=2), val_images)


def test_hardswish_hardsigmoid_and_se_run_quantized(small):
    """The converted module computes hardswish, hardsigmoid, the SE average pool and multiply and
    the residual adds on quantized tensors; the only dequantizations are the 12
    at the prediction convs."""
    from torch.ao.nn.quantized import Hardswish as QuantizedHardswish

    det, calib = small
    qcore = quantize_core_eager(det.core, calib[:1], observer="minmax", progress=False)
    assert sum(isinstance(m, QuantizedHardswish) for m in qcore.modules()) > 10
    quantized_in_out = {}

    def record(m, args, out):
        quantized_in_out.setdefault(type(m).__name__, set()).add(
            (args[0].is_quantized, out.is_quantized)
        )

    for m in qcore.modules():
        if isinstance(m, (nn.Hardsigmoid, QuantizedHardswish, nn.AdaptiveAvgPool2d)):
            m.register_forward_hook(record)
    with torch.no_grad():
        qcore(calib[0])
        ops = [
            n.kind()
            for n in torch.jit.trace(qcore, calib[0], check_trace=False).inlined_graph.nodes()
        ]
    assert quantized_in_out == {
        "Hardsigmoid": {(True, True)},
        "Hardswish": {(True, True)},
        "AdaptiveAvgPool2d": {(True, True)},
    }
    assert (
        ops.count("quantized::hardswish") > 10
        and "quantized::mul" in ops
        and "quantized::add" in ops
    )
    assert ops.count("aten::dequantize") == 12 and ops.count("aten::quantize_per_tensor") == 1


def test_quantizable_copy_keeps_torchvision_keys(small):
    """The quantizable model is a copy rebuilt from torchvision's quantizable blocks with the float
    model's state_dict loaded into it; the float model is untouched."""
    from torchvision.models.quantization.mobilenetv3 import QuantizableInvertedResidual

    from ssdmobile.quant.eager_mobilenet_v3 import quantizable_twin

    det, _ = small
    before = {k: v.clone() for k, v in det.core.state_dict().items()}
    twin = quantizable_twin(det.core, det.spec.name)
    assert any(isinstance(m, QuantizableInvertedResidual) for m in twin.modules())
    assert twin.state_dict().keys() == before.keys()
    assert all(torch.equal(twin.state_dict()[k], v) for k, v in before.items())
    assert all(torch.equal(det.core.state_dict()[k], v) for k, v in before.items())


@pytest.mark.parametrize("kwargs", [{"width_mult": 0.75}, {"reduced_tail": False}])
@pytest.mark.slow
def test_width_and_tail_variants_quantize(kwargs, small):
    _, calib = small  # preprocessed train2017 images: every variant takes 320x320
    det = create_model("ssdlite320_mobilenet_v3_large", None, **kwargs)
    qcore = quantize_core_eager(det.core, calib[:1], observer="minmax", progress=False)
    with torch.no_grad():
        ref, got = det.core(calib[1]), qcore(calib[1])
    assert [t.shape for t in got] == [t.shape for t in ref]


def test_unknown_core_is_one_clear_error():
    from ssdmobile.quant.eager import make_quantizable

    with pytest.raises(QuantizationError, match=r"cannot do mystery_net: .*Sequential"):
        make_quantizable(nn.Sequential(nn.Conv2d(3, 8, 3)), name="mystery_net")


@pytest.mark.slow
def test_qnnpack_sqnr_within_3db_of_executorch(small, tmp_path):
    """Both int8 artifacts of one checkpoint, calibrated on the same images, each in its own
    runtime (lite interpreter; ExecuTorch with XNNPACK) on the same val2017 images."""
    det, calib = small
    xs = [det.preprocess([s.image]) for s in CocoDataset(COCO128, "val2017", max_images=3)]
    lite = load_runner(
        _lite_artifact(*quantize_detector_eager(det, calib, "minmax", progress=False), tmp_path),
        threads=2,
    )
    qdet, record = quantize_detector_pt2e(det, calib, "minmax", progress=False)
    (pte,) = (a.path for a in export_quantized(qdet, "executorch", tmp_path, record))
    pte = load_runner(pte, threads=2)
    with torch.no_grad():
        ref = [t for x in xs for t in det.core(x)]
        qnnpack = sqnr_db(ref, [t for x in xs for t in lite.run(x)])
        executorch = sqnr_db(ref, [t for x in xs for t in pte.run(x)])
    assert executorch > 10 and qnnpack > executorch - 3, (qnnpack, executorch)


def test_sensitivity_ranks_mobilenet_v3_units(small):
    from ssdmobile.quant.sensitivity import quant_units, rank_layers

    det, calib = small
    units = quant_units(det.core)
    assert len(units) == sum(isinstance(m, nn.Conv2d) for m in det.core.modules())
    assert set(SMALL_UNITS) <= set(units)
    ranked = rank_layers(det, calib[:1], progress=False, only=SMALL_UNITS)
    kinds = {u.name: u.kind for u in ranked}
    assert kinds["backbone.features.0.4.block.0"].endswith("+ hardswish")
    assert kinds["backbone.features.0.4.block.2.fc1"].startswith("SE fc1")
    assert kinds["head.classification_head.module_list.0.0"] == "Conv2d 3x3 dw 288->288 + relu6"
    sq = [u.sqnr_db for u in ranked]
    assert sq == sorted(sq) and all(15 < s < 90 for s in sq)


def test_float_fallback_eager_qnnpack(small, tmp_path):
    from torch.ao.nn.quantized import Quantize

    from ssdmobile.quant.float_fallback import FloatIsland

    det, calib = small
    qcore = quantize_core_eager(
        det.core, calib[:2], observer="minmax", progress=False, float_modules=SMALL_UNITS
    )
    modules = dict(qcore.core.named_modules())
    for name in SMALL_UNITS:
        island = modules[name]
        assert isinstance(island, FloatIsland)
        assert any(
            type(m) in (nn.Conv2d, torch.ao.nn.intrinsic.ConvReLU2d)
            for m in island.module.modules()
        )
        assert not any(
            type(m).__module__.startswith("torch.ao.nn.quantized") for m in island.module.modules()
        )
    # the ReLU6 unit's float output keeps its [0, 6] clamp; the
    # prediction conv's output leaves in float
    assert isinstance(modules["backbone.extra.0.1"].quant, Quantize)
    assert abs(float(modules["backbone.extra.0.1"].quant.scale) - 6 / 255) < 1e-7
    assert isinstance(modules["head.regression_head.module_list.1.1"].quant, nn.Identity)
    # the rest is int8
    assert sum(isinstance(m, torch.ao.nn.quantized.Conv2d) for m in qcore.modules()) > 20
    with torch.no_grad():
        assert sqnr_db(det.core(calib[3]), qcore(calib[3])) > 12


@pytest.mark.slow
def test_float_fallback_executorch(small):
    from ssdmobile.quant.ptq import quantize_core_pt2e

    det, calib = small
    keep = ["backbone.features.0.4.block.2.fc1", "head.regression_head.module_list.1.1"]
    gm = quantize_core_pt2e(det.core, calib[:1], "minmax", float_modules=keep, progress=False)
    float_convs, int8_convs = set(), set()
    for n in gm.graph.nodes:
        if n.op == "call_function" and "conv2d" in str(n.target):
            module = list(n.meta["nn_module_stack"].values())[-1][0]
            (int8_convs if "dequantize" in str(n.args[1].target) else float_convs).add(module)
    assert any(m.startswith(keep[0]) for m in float_convs) and any(
        m.startswith(keep[1]) for m in float_convs
    )
    assert not any(m.startswith(tuple(keep)) for m in int8_convs) and len(int8_convs) > 40


@pytest.mark.slow
def test_float_fallback_onnx(small, tmp_path):
    import onnx

    from ssdmobile.quant.onnx_int8 import nodes_for_modules, quantize_onnx_file

    det, calib = small
    fp32, _ort = (a.path for a in export(det, "onnx", "fp32", tmp_path))
    keep = ["backbone.features.0.4.block.0", "backbone.features.0.4.block.2.fc1"]
    excluded = nodes_for_modules(onnx.load(str(fp32)), keep)
    # hard-swish as ORT Mobile's execution providers take it (export/onnx.py _mobile_ops)
    assert {"Conv", "Clip", "Mul"} <= {
        n.op_type for n in onnx.load(str(fp32)).graph.node if n.name in excluded
    }
    int8 = tmp_path / "int8.onnx"
    record = quantize_onnx_file(fp32, int8, calib[:1], "minmax", float_modules=keep)
    assert record["float_nodes"] == excluded
    graph = onnx.load(str(int8)).graph
    producer = {o: n.op_type for n in graph.node for o in n.output}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    weight_is_int8 = {n.name: producer.get(n.input[1]) == "DequantizeLinear" for n in convs}
    assert not any(weight_is_int8[n] for n in excluded if n in weight_is_int8)
    assert sum(weight_is_int8.values()) > 40
    with pytest.raises(QuantizationError, match=r"backbone.nope"):
        nodes_for_modules(onnx.load(str(fp32)), ["backbone.nope"])


@pytest.mark.slow
def test_onnx_int8_with_nms_histogram_calibration(large, val_images, tmp_path):
    """The default observer (histogram) on the ONNX graph with NMS at COCO scale: onnxruntime's
    calibrator observed the NMS section too, whose shapes change per image, and failed
    ("inhomogeneous shape"); only the core's tensors are observed now, decode and NMS stay float."""
    import onnx

    det, _calib = large
    art, _ort = export(
        det,
        "onnx",
        "int8",
        tmp_path,
        nms=True,
        calibration=Calibration(str(COCO128), "train2017", CALIB_IMAGES, "histogram"),
        progress=False,
    )
    graph = onnx.load(str(art.path)).graph
    assert sum(n.op_type == "QuantizeLinear" for n in graph.node) > 50
    assert "NonMaxSuppression" in {n.op_type for n in graph.node}
    assert load_sidecar(art.path).quantization.observer == "histogram"
    with torch.no_grad():
        float_dets, int8_dets = det(val_images), load_predictor(art.path)(val_images)
    for f, q in zip(
        float_dets, int8_dets
    ):  # float's 10 best: at least 8 found again (same label, IoU > 0.5)
        assert len(q["scores"]) > 0
        iou = box_iou(f["boxes"][:10], q["boxes"][:100]) * (
            f["labels"][:10, None] == q["labels"][None, :100]
        )
        assert int((iou.max(1).values > 0.5).sum()) >= 8


# onnx and executorch export twice each (minutes on 2 shared cores): slow
@pytest.mark.parametrize(
    "target",
    [
        "torchscript",
        pytest.param("onnx", marks=pytest.mark.slow),
        pytest.param("executorch", marks=pytest.mark.slow),
    ],
)
@pytest.mark.slow
def test_sensitivity_float_fallback_command(target, small, tmp_path, capsys):
    """`ssdmobile sensitivity --model ssdlite320_mobilenet_v3_small --float-fallback 2 --target T`
    ranks every unit and writes the all-int8 and the fallback artifacts of T, the fallback one
    recording the two most sensitive units as float."""
    import json

    from ssdmobile.cli import main

    det, _ = small
    ckpt = tmp_path / "small_random.pth"
    torch.save(det.core.state_dict(), ckpt)
    out = tmp_path / "out"
    assert main(
        [
            "sensitivity",
            "--model",
            det.spec.name,
            "--weights",
            str(ckpt),
            "--calib-data",
            str(COCO128),
            "--num-images",
            "1",
            "--calib-images",
            "1",
            "--observer",
            "minmax",
            "--float-fallback",
            "2",
            "--target",
            target,
            "--out",
            str(out),
            "--no-progress",
        ]
    ) in (None, 0)
    ranking = json.loads((out / f"{det.spec.name}_sensitivity.json").read_text())["ranking"]
    assert len(ranking) == sum(isinstance(m, nn.Conv2d) for m in det.core.modules())
    fallback = [p for p in out.iterdir() if "_fallback2" in p.name and p.suffix != ".json"]
    assert fallback, sorted(p.name for p in out.iterdir())
    sidecar = load_sidecar(sorted(fallback)[-1]).to_dict()
    assert sidecar["quantization"]["float_modules"] == [u["name"] for u in ranking[:2]]
