"""Post-training int8 (ssdmobile.quant) on the real person detector: every runnable target's
artifact, run in its own runtime, finds the people the float model finds on real val2017 images.
Calibration: 2 train2017 images (min-max), enough for a smoke-sized but real int8 model."""

import json

import pytest
import torch
from torchvision.ops import box_iou

from ssdmobile.data import CocoDataset, open_dataset, refuse_shared_images
from ssdmobile.errors import DatasetError
from ssdmobile.models import create_model
from ssdmobile.quant.ptq import (
    Calibration,
    QuantizationError,
    calibration_inputs,
    quantize_core_pt2e,
    xnnpack_quantization_config,
)
from ssdmobile.targets.artifacts import load_predictor
from ssdmobile.targets.pipeline import export

from conftest import COCO128, PERSON_GRAPH

CALIB_IMAGES = 2


def test_refuses_to_calibrate_on_the_scored_images():
    """Calibration is refused by image content (sha256), not by split name: the scored val2017
    images cannot calibrate, train2017 ones can."""
    val = open_dataset(COCO128, "val2017", 4)
    with pytest.raises(DatasetError, match="include 4 of the 4 evaluation images"):
        refuse_shared_images(open_dataset(COCO128, "val2017", 8), val)
    refuse_shared_images(open_dataset(COCO128, "train2017", 8), val)  # disjoint: no error
    det = create_model("ssdlite_mobilenet_v2_person", None)
    with pytest.raises(QuantizationError, match="at least 1"):
        calibration_inputs(det, COCO128, "train2017", 0)


def test_xnnpack_scheme_and_observers():
    from torchao.quantization.pt2e.observer import HistogramObserver, MinMaxObserver

    for observer, cls in (("histogram", HistogramObserver), ("minmax", MinMaxObserver)):
        c = xnnpack_quantization_config(observer)
        assert c.weight.qscheme == torch.per_channel_symmetric and c.weight.dtype == torch.int8
        assert (c.weight.quant_min, c.weight.quant_max) == (-127, 127)
        assert c.input_activation.qscheme == torch.per_tensor_affine
        assert c.input_activation.observer_or_fake_quant_ctr.p.func is cls
    with pytest.raises(QuantizationError, match="observer"):
        xnnpack_quantization_config("kl")


@pytest.fixture(scope="module")
def person():
    return create_model("ssdlite_mobilenet_v2_person", weights=PERSON_GRAPH)


CALIB = Calibration(str(COCO128), "train2017", CALIB_IMAGES, "minmax")


@pytest.fixture(scope="module")
def people_images(person):
    """3 val2017 images on which the float model is confident
    someone is there, and its detections."""
    ds = CocoDataset(COCO128, "val2017", max_images=16)
    images = [s.image for s in ds]
    with torch.no_grad():
        dets = person(images)
    best = sorted(range(len(images)), key=lambda i: -float(dets[i]["scores"][:1].sum()))[:3]
    assert float(dets[best[-1]]["scores"][0]) > 0.5
    return [images[i] for i in best], [dets[i] for i in best]


def assert_overlaps_float(predict, people_images):
    images, float_dets = people_images
    got = predict(images)
    matched = 0
    for f, q in zip(float_dets, got):
        assert len(q["scores"]) > 0
        for box in f["boxes"][f["scores"] > 0.5]:
            ious = box_iou(box[None], q["boxes"][q["scores"] > 0.2])[0]
            assert ious.numel() and ious.max() > 0.5, (
                "a confident float detection has no int8 counterpart"
            )
            matched += 1
    assert matched >= 3


def check_sidecar(path, target):
    side = json.loads(path.with_suffix(".json").read_text())
    assert side["precision"] == "int8" and side["target"] == target
    q = side["quantization"]
    assert (
        q["calibration"]["num_images"] == CALIB_IMAGES and q["calibration"]["split"] == "train2017"
    )
    assert "per-channel symmetric" in q["weights"]


@pytest.mark.slow
def test_executorch_int8(person, people_images, tmp_path):
    (path,) = (
        a.path
        for a in export(person, "executorch", "int8", tmp_path, calibration=CALIB, progress=False)
    )
    check_sidecar(path, "executorch")
    delegation = json.loads(path.with_suffix(".json").read_text())["executorch"]["delegation"]
    # all XNNPACK
    assert delegation["delegated_ops"] > 100 and delegation["non_delegated_ops"] == 0, delegation
    assert_overlaps_float(load_predictor(path, threads=2), people_images)


@pytest.mark.slow
def test_onnx_int8(person, people_images, tmp_path):
    import onnx

    path, _ort = (a.path for a in export(person, "onnx", "int8", tmp_path, calibration=CALIB))
    check_sidecar(path, "onnx")
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert_overlaps_float(load_predictor(path, threads=2), people_images)


@pytest.mark.slow
def test_onnx_int8_with_nms_keeps_decode_in_float(person, people_images, tmp_path):
    """With NMS in the graph, only the core is quantized: the decoded boxes and the scores that
    NonMaxSuppression and the app see stay float (quantize_static put them on 256 levels: AP
    -0.0050 against -0.0010 without NMS, and no image's detections matched float)."""
    import onnx

    path, _ort = (
        a.path for a in export(person, "onnx", "int8", tmp_path, nms=True, calibration=CALIB)
    )
    graph = onnx.load(str(path)).graph
    quantized = {i for n in graph.node if n.op_type == "QuantizeLinear" for i in n.input}
    assert len(quantized) > 50  # the core is int8
    producers = {o: n for n in graph.node for o in n.output}
    for name in ("nms_boxes_in", "nms_scores_in", "boxes", "scores"):
        assert name not in quantized and producers[name].op_type != "DequantizeLinear", name
    assert json.loads(path.with_suffix(".json").read_text())["quantization"]["method"].endswith(
        "(decode and NMS float)"
    )
    assert_overlaps_float(load_predictor(path, threads=2), people_images)


@pytest.mark.slow
def test_torchscript_int8_lite(person, people_images, tmp_path):
    path, lite = (
        a.path
        for a in export(person, "torchscript", "int8", tmp_path, calibration=CALIB, progress=False)
    )
    assert lite.name == path.stem + "_lite.ptl"
    check_sidecar(path, "torchscript")
    check_sidecar(lite, "torchscript")
    # real int8 kernels, not fake quantization
    assert "quantized::conv2d" in str(torch.jit.load(str(path)).inlined_graph)
    assert_overlaps_float(load_predictor(lite, threads=2), people_images)


@pytest.mark.slow
def test_coreml_int8_weights_spec(person, tmp_path):
    from ssdmobile.quant.coreml_int8 import check_int8_spec

    (path,) = (a.path for a in export(person, "coreml", "int8", tmp_path))
    summary = check_int8_spec(path)
    assert summary["int8_weight_ops"] > 50 and summary["outputs"] == [
        "box_encodings",
        "class_logits",
    ]
    fp16_bytes = 4.5e6  # the fp16 package is ~9 MB: int8 weights halve it
    assert sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) < fp16_bytes


@pytest.mark.slow
def test_tagged_export_keeps_the_untagged_one(tmp_path):
    """sensitivity --float-fallback writes the all-int8 artifact and then a tagged one into the same
    directory: the tagged export must not move the first one away (it did, before staging)."""
    from ssdmobile.sidecar import load_sidecar

    from export_fixtures import tiny_detector

    det = tiny_detector()
    out = tmp_path / "out"
    (plain,) = (
        a.path for a in export(det, "executorch", "int8", out, calibration=CALIB, progress=False)
    )
    (tagged,) = (
        a.path
        for a in export(
            det,
            "executorch",
            "int8",
            out,
            calibration=CALIB,
            float_modules=["cls"],
            tag="_fallback1",
            progress=False,
        )
    )
    assert plain.is_file() and tagged.is_file() and plain != tagged
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [plain.name, tagged.name, plain.with_suffix(".json").name, tagged.with_suffix(".json").name]
    )
    sc = load_sidecar(tagged).to_dict()
    assert sc["artifact"] == tagged.name and sc["quantization"]["float_modules"] == ["cls"]
    assert load_sidecar(plain).quantization.float_modules == []


class _Cancelling(torch.nn.Module):
    """A conv whose two input channels are equal and whose weights are +1 and -1: its output is 0
    whatever the (large) input, so its output scale is the observer's floor and the requantization
    scale (input scale x weight scale / output scale) is far above the 256 XNNPACK accepts."""

    def __init__(self, cancel: bool):
        super().__init__()
        self.conv = torch.nn.Conv2d(2, 2, 1)
        with torch.no_grad():
            self.conv.weight.copy_(
                torch.tensor([[1.0, -1.0], [0.5, -0.5]]).reshape(2, 2, 1, 1)
                if cancel
                else torch.tensor([[1.0, 0.2], [0.5, 0.3]]).reshape(2, 2, 1, 1)
            )
            self.conv.bias.zero_()

    def forward(self, x):
        return self.conv(x.repeat(1, 2, 1, 1))


@pytest.mark.slow
def test_a_requantization_scale_xnnpack_refuses_fails_at_export_in_one_line():
    """ExecuTorch 1.5.1 aborts the whole process (XNNPACK's unsupported_parameter, then a double
    free) when it loads such a program: quantize_core_pt2e must refuse it first, naming the layer
    and the float fallback that avoids it; the fallback then quantizes, and
    an ordinary conv passes."""
    # activations a trained model never has
    inputs = [torch.rand(1, 1, 8, 8) * 1e4 for _ in range(4)]
    with pytest.raises(QuantizationError) as e:
        quantize_core_pt2e(_Cancelling(True), inputs, progress=False)
    msg = str(e.value)
    assert (
        "\n" not in msg and "requantization scale" in msg and msg.endswith("--float-modules conv")
    ), msg
    quantize_core_pt2e(_Cancelling(True), inputs, float_modules=["conv"], progress=False)
    quantize_core_pt2e(_Cancelling(False), inputs, progress=False)
