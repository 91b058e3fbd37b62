"""Every runnable target: export a small detector, load the artifact in its own runtime, and
compare raw outputs and detections with the eager model on real images."""

import pytest
import torch

from ssdmobile.data import load_image
from ssdmobile.runtime import Predictor
from ssdmobile.sidecar import REQUIRED_FIELDS, load_sidecar
from ssdmobile.targets.artifacts import load_runner
from ssdmobile.targets.pipeline import export

from export_fixtures import tiny_detector


@pytest.fixture(scope="module")
def detector():
    return tiny_detector()


@pytest.fixture(scope="module")
def images(val_image_paths):
    return [load_image(p) for p in val_image_paths[:4]]


def _match(a, b, box_tol=0.05, score_tol=1e-4):
    """Same detections regardless of the order of exact ties."""
    assert len(a["scores"]) == len(b["scores"])
    assert len(a["scores"]) > 0
    ka = sorted(zip(a["labels"].tolist(), a["scores"].tolist(), a["boxes"].tolist()))
    kb = sorted(zip(b["labels"].tolist(), b["scores"].tolist(), b["boxes"].tolist()))
    for (la, sa, ba), (lb, sb, bb) in zip(ka, kb):
        assert la == lb and abs(sa - sb) <= score_tol
        assert max(abs(x - y) for x, y in zip(ba, bb)) <= box_tol


@pytest.mark.parametrize("target", ["onnx", "torchscript", "executorch"])
@pytest.mark.slow
def test_raw_outputs_and_detections_match_eager(target, detector, images, tmp_path):
    artifacts = export(detector, target, "fp32", tmp_path)
    # .pt and the lite interpreter's .ptl; .onnx and ORT Mobile's .ort
    assert len(artifacts) == (2 if target in ("torchscript", "onnx") else 1)
    x = detector.preprocess(images)
    with torch.no_grad():
        ref = detector.forward_core(x)
    for artifact in artifacts:
        sc = load_sidecar(artifact.path).to_dict()
        assert (
            sc["target"] == target and sc["nms"]["in_graph"] is False and sc["precision"] == "fp32"
        )
        assert sc["artifact"] == artifact.path.name
        assert [o["name"] for o in sc["outputs"]] == ["box_encodings", "class_logits"]
        runner = load_runner(artifact.path, threads=2)
        out = runner.run(x)  # batch 4 through a batch-1 graph
        for a, b in zip(out, ref):
            assert a.shape == b.shape
            assert (a - b).abs().max() < 1e-4
        for got, want in zip(Predictor(runner)(images), detector(images)):
            _match(got, want)


@pytest.mark.parametrize("target", ["onnx", "torchscript", "executorch"])
@pytest.mark.slow
def test_nms_in_graph_matches_eager_nms(target, detector, images, tmp_path):
    # torchscript: the lite file; onnx: the .ort
    path = export(detector, target, "fp32", tmp_path, nms=True)[-1].path
    sc = load_sidecar(path).to_dict()
    assert sc["nms"]["in_graph"] is True
    assert [o["name"] for o in sc["outputs"]] == ["boxes", "scores", "labels", "num_detections"]
    runner = load_runner(path, threads=2)
    boxes, scores, labels, num = runner.run(detector.preprocess(images[:1]))
    m = detector.spec.postprocess.max_detections
    assert (
        boxes.shape == (1, m, 4)
        and scores.shape == (1, m)
        and labels.shape == (1, m)
        and num.shape == (1,)
    )
    for got, want in zip(Predictor(runner)(images), detector(images)):
        _match(got, want)


def test_torchscript_lite_artifact_is_its_own_artifact(detector, images, tmp_path):
    full, lite = export(detector, "torchscript", "fp32", tmp_path)
    assert (full.path.suffix, lite.path.suffix) == (".pt", ".ptl") and lite.runtime.startswith(
        "lite interpreter"
    )
    assert lite.path.is_file() and load_sidecar(lite.path).artifact == lite.path.name
    assert lite.path.name == full.path.stem + "_lite.ptl"
    lite = lite.path
    x = detector.preprocess(images[:1])
    out = load_runner(lite).run(x)
    assert (out[1] - detector.forward_core(x)[1]).abs().max() < 1e-4


def test_sidecar_has_every_field_the_apps_read(detector, tmp_path):
    sc = load_sidecar(export(detector, "onnx", "fp32", tmp_path)[0].path).to_dict()
    for f in REQUIRED_FIELDS:
        d = sc
        for part in f.split("."):
            d = d[part]
    assert len(sc["decode"]["anchors"]) == detector.anchors.shape[0]
    assert sc["input"]["shape"] == [1, 3, 64, 64]
    assert sc["preprocess"]["resize"] == "bilinear"
