"""Core ML: converts here; Core ML itself runs only on macOS. The spec is checked: image input,
outputs, metadata, NMS pipeline with class labels and thresholds, fp16 weights; off macOS the ML
Program reference evaluator runs the saved package (tests/test_mlprogram.py)."""

import argparse
import platform

import pytest
import torch

from ssdmobile.commands import bench as bench_command
from ssdmobile.errors import ArtifactError, RuntimeUnavailable
from ssdmobile.runtime.coreml import check_spec
from ssdmobile.sidecar import load_sidecar
from ssdmobile.targets.artifacts import load_runner
from ssdmobile.targets.pipeline import export

from export_fixtures import tiny_detector


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    d = tmp_path_factory.mktemp("coreml")
    det = tiny_detector()
    return (
        det,
        export(det, "coreml", None, d)[0].path,
        export(det, "coreml", None, d, nms=True)[0].path,
    )


@pytest.mark.slow
def test_raw_mlpackage_spec(exported):
    _det, raw, _ = exported
    assert raw.suffix == ".mlpackage" and raw.is_dir() and (raw / "Manifest.json").is_file()
    sc = load_sidecar(raw).to_dict()
    assert (
        sc["precision"] == "fp16"
        and sc["input"]["name"] == "image"
        and sc["nms"]["in_graph"] is False
    )
    s = check_spec(raw)
    assert s["type"] == "mlProgram" and s["precision"] == "fp16"
    assert s["inputs"] == ["image"] and s["image"] == [64, 64]
    assert s["outputs"] == ["box_encodings", "class_logits"]


def test_nms_pipeline_spec_is_vision_ready(exported):
    import coremltools as ct

    det, _, piped = exported
    s = check_spec(piped)
    assert s["type"] == "pipeline" and s["precision"] == "fp16"
    assert s["outputs"] == ["confidence", "coordinates"]
    assert s["inputs"][0] == "image" and set(s["inputs"][1:]) == {
        "iouThreshold",
        "confidenceThreshold",
    }
    pp = det.spec.postprocess
    assert s["nms"] == {
        "iou": pp.iou_thresh,
        "confidence": pp.score_thresh,
        "per_class": True,
        "labels": 2,
    }
    spec = ct.utils.load_spec(str(piped))
    first, last = spec.pipeline.models
    assert first.WhichOneof("Type") == "mlProgram"
    assert list(last.nonMaximumSuppression.stringClassLabels.vector) == ["person", "car"]
    md = dict(spec.description.metadata.userDefined)
    assert md["ssdmobile.model"] == "tiny_ssd" and md["classes"] == "person,car"


def test_fp32(tmp_path):
    det = tiny_detector()
    assert check_spec(export(det, "coreml", "fp32", tmp_path)[0].path)["precision"] == "fp32"


def test_check_spec_catches_a_mismatching_sidecar(exported, tmp_path):
    _, _, piped = exported
    sc = load_sidecar(piped).to_dict()
    with pytest.raises(ArtifactError, match="thresholds"):
        check_spec(piped, {**sc, "nms": {**sc["nms"], "iou_thresh": 0.9}})
    with pytest.raises(ArtifactError, match="class labels"):
        check_spec(piped, {**sc, "class_names": ["bg", "dog", "cat"]})
    with pytest.raises(ArtifactError, match="precision"):
        check_spec(piped, {**sc, "precision": "fp32"})


@pytest.mark.skipif(platform.system() == "Darwin", reason="runs on macOS")
def test_off_macos_the_reference_evaluator_runs_it(exported):
    """Off macOS the saved program is evaluated by ssdmobile.mlprogram: its fp16 raw outputs
    follow the float model's, and bench refuses to time it."""
    det, raw, _ = exported
    runner = load_runner(raw)
    assert runner.reference and "not the Core ML runtime" in runner.label
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        ref = det.forward_core(x)
    for got, want in zip(runner.run(x), ref):
        assert got.shape == want.shape
        assert float((got - want).abs().max()) < 0.05 * float(want.abs().max())
    with pytest.raises(RuntimeUnavailable, match="reference evaluator"):
        bench_command.run(argparse.Namespace(artifact=str(raw), threads=1, image=None))
