"""ORT Mobile: ONNX Runtime's mobile usability verdict in every ONNX sidecar, the .ort file every
ONNX export writes (run in onnxruntime like the .onnx), and MobileNetV3 graphs that NNAPI takes
whole (HardSigmoid / HardSwish / ReduceMean rewritten, export/onnx.py _mobile_ops). The
SSDlite320 MobileNetV3 checkpoint is random with realistic statistics (realistic_random_), so
every comparison is against eager float, on real coco128 images."""

import logging

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from ssdmobile.data import CocoDataset
from ssdmobile.errors import ArtifactError
from ssdmobile.export._ort_mobile import usability
from ssdmobile.models import create_model
from ssdmobile.quant import Calibration
from ssdmobile.quant.ptq import calibration_inputs
from ssdmobile.quant.sensitivity import sqnr_db
from ssdmobile.sidecar import load_sidecar
from ssdmobile.targets import target_for_path
from ssdmobile.targets.artifacts import load_runner
from ssdmobile.targets.pipeline import export

from conftest import COCO128
from random_checkpoints import realistic_random_

CALIB = Calibration(str(COCO128), "train2017", 4, "minmax")
REWRITTEN = {"HardSigmoid", "HardSwish", "ReduceMean"}


def _exports(name, tmp_path_factory):
    det = create_model(name, None)
    realistic_random_(det, calibration_inputs(det, COCO128, "train2017", 8), seed=0)
    det.eval()
    out = {}
    for precision in ("fp32", "int8"):
        arts = export(
            det,
            "onnx",
            precision,
            tmp_path_factory.mktemp(f"{name}_{precision}"),
            calibration=CALIB if precision == "int8" else None,
            progress=False,
        )
        assert [a.path.suffix for a in arts] == [".onnx", ".ort"]
        out[precision] = [a.path for a in arts]
    return det, out


@pytest.fixture(scope="module")
def mnv3(tmp_path_factory):
    return _exports("ssdlite320_mobilenet_v3_large", tmp_path_factory)


@pytest.fixture(scope="module")
def person(tmp_path_factory):
    return _exports("ssdlite_mobilenet_v2_person", tmp_path_factory)


@pytest.fixture(scope="module")
def val_inputs(mnv3):
    det, _ = mnv3
    return [det.preprocess([s.image]) for s in CocoDataset(COCO128, "val2017", max_images=2)]


def _nnapi(path):
    return load_sidecar(path).ort_mobile.nnapi


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_mobilenet_v3_onnx_takes_nnapi_whole(mnv3, precision):
    _, files = mnv3
    onnx_path, ort_path = files[precision]
    ops = {n.op_type for n in onnx.load(str(onnx_path)).graph.node}
    assert not ops & REWRITTEN
    for path in (onnx_path, ort_path):
        sc = load_sidecar(path)
        e = sc.ort_mobile.nnapi
        assert (e.verdict, e.partitions, e.unsupported_ops) == ("YES", 1, [])
        assert e.supported_nodes == e.nodes
        ml = sc.ort_mobile.coreml_mlprogram
        # Core ML's EP has no QuantizeLinear / DequantizeLinear: QDQ int8 is CPU or NNAPI
        assert (ml.verdict, ml.unsupported_ops) == (
            ("YES", [])
            if precision == "fp32"
            else ("NO", ["ai.onnx:DequantizeLinear", "ai.onnx:QuantizeLinear"])
        )
    # int8: the quantized graph, checked again (its Q/DQ nodes are counted)
    if precision == "int8":
        assert _nnapi(onnx_path).nodes > _nnapi(files["fp32"][0]).nodes
        assert "QuantizeLinear" in ops
        assert load_sidecar(ort_path).quantization == load_sidecar(onnx_path).quantization


@pytest.mark.slow
def test_person_detector_takes_nnapi_whole(person):
    _, files = person
    for precision in ("fp32", "int8"):
        for path in files[precision]:
            e = _nnapi(path)
            assert (e.verdict, e.partitions) == ("YES", 1), (path.name, e)


@pytest.mark.slow
def test_ort_file_runs_in_onnxruntime_like_eager(mnv3, val_inputs):
    """The rewritten fp32 graph keeps parity with eager, in both containers; the int8 .ort is as
    close to float as the int8 .onnx (the same QDQ graph; the .ort replays the CPU EP's int8
    fusions from its saved runtime optimizations, so its rounding differs from the .onnx
    session's: the two differ from each other about as much as each from float)."""
    det, files = mnv3
    with torch.no_grad():
        eager = [det.forward_core(x) for x in val_inputs]
    run = {
        (p, kind): [load_runner(path).run(x) for x in val_inputs]
        for p, paths in files.items()
        for kind, path in zip(("onnx", "ort"), paths)
    }
    for kind in ("onnx", "ort"):
        diff = max(
            float((a - b).abs().max())
            for got, ref in zip(run["fp32", kind], eager)
            for a, b in zip(got, ref)
        )
        assert diff < 1e-3, (kind, diff)
    flat = [t for outs in eager for t in outs]
    int8_onnx = [t for outs in run["int8", "onnx"] for t in outs]
    int8_ort = [t for outs in run["int8", "ort"] for t in outs]
    vs_float = sqnr_db(flat, int8_onnx)
    assert vs_float > 10
    assert abs(sqnr_db(flat, int8_ort) - vs_float) < 1.0


@pytest.mark.slow
def test_ort_artifact_is_an_onnx_target_file(mnv3):
    _, files = mnv3
    onnx_path, ort_path = files["fp32"]
    assert ort_path.name == onnx_path.stem + "_mobile.ort"
    assert target_for_path(ort_path).name == "onnx"
    sc, base = load_sidecar(ort_path), load_sidecar(onnx_path)
    assert sc.artifact == ort_path.name and sc.artifact_sha256 != base.artifact_sha256
    assert "ORT Mobile" in sc.runtime and sc.outputs == base.outputs


def test_truncated_ort_file_is_refused(tmp_path):
    bad = tmp_path / "m_onnx_fp32_mobile.ort"
    bad.write_bytes(b"\x14\x00\x00\x00ONNX and more")
    with pytest.raises(ArtifactError, match="not an ORT format model"):
        target_for_path(bad).check_file(bad)


def _hardsigmoid_model(path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])
    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 4, 1, 1], np.eye(4).ravel().tolist())
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["a"], name="conv0"),
        helper.make_node("HardSigmoid", ["a"], ["b"], name="hsig", alpha=1 / 6, beta=0.5),
        helper.make_node("Conv", ["b", "w"], ["c"], name="conv1"),
        helper.make_node("Relu", ["c"], ["y"], name="relu"),
    ]
    graph = helper.make_graph(nodes, "g", [x], [y], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)
    onnx.save(model, str(path))


def test_verdict_is_the_checker_tools(tmp_path, caplog):
    """usability() reports what `python -m onnxruntime.tools.check_onnx_model_mobile_usability`
    logs for the same file: a HardSigmoid splits NNAPI's graph in two partitions."""
    from onnxruntime.tools.mobile_helpers.usability_checker import analyze_model

    path = tmp_path / "hsig.onnx"
    _hardsigmoid_model(path)
    record = usability(path)
    e = record["nnapi"]
    assert (e["verdict"], e["partitions"], e["supported_nodes"], e["nodes"]) == ("NO", 2, 3, 4)
    assert e["unsupported_ops"] == ["ai.onnx:HardSigmoid"]
    assert record["coreml_mlprogram"]["verdict"] == "YES"
    logger = logging.getLogger("test_ort_mobile_checker")
    logger.setLevel(logging.INFO)
    with caplog.at_level(logging.INFO, logger=logger.name):
        analyze_model(path, logger=logger)
    said = caplog.text
    assert "Model should perform well with NNAPI as is: NO" in said
    assert "2 partitions with a total of 3/4 nodes can be handled by the NNAPI EP" in said
    assert "Model should perform well with CoreML MLProgram as is: YES" in said


def test_ort_without_saved_optimizations_where_onnxruntime_cannot_save_them(tmp_path, monkeypatch):
    """Where the runtime-style conversion fails (onnxruntime could not save the records for a
    float-fallback int8 graph once), the .ort is the BASIC-level graph without them, and says so."""
    import onnxruntime as ort
    from onnxruntime.tools.convert_onnx_models_to_ort import OptimizationStyle

    from ssdmobile.export import _ort_mobile

    src, dst = tmp_path / "hsig.onnx", tmp_path / "hsig.ort"
    _hardsigmoid_model(src)
    assert _ort_mobile.write_ort(src, dst) is True
    convert = _ort_mobile._convert

    def runtime_style_fails(work, style, level):
        if style == OptimizationStyle.Runtime:
            raise RuntimeError("The sum of input arg count is not equal to size of input defs")
        return convert(work, style, level)

    monkeypatch.setattr(_ort_mobile, "_convert", runtime_style_fails)
    assert _ort_mobile.write_ort(src, dst) is False
    x = np.random.default_rng(0).standard_normal((1, 4, 8, 8)).astype(np.float32)
    run = [
        ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
        for p in (src, dst)
    ]
    np.testing.assert_allclose(run[0], run[1], rtol=1e-6, atol=1e-6)
