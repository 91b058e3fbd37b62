"""The real TF person detector, exported and run in each runtime on real coco128 val2017 images:
raw outputs within 1e-3, the same detections on every image, the same AP (and the in-graph NMS
within 0.002 AP). Bounded to a few images; `ssdmobile validate` measures all 128."""

import pytest
import torch

from ssdmobile.data import CocoDataset
from ssdmobile.evaluate import coco_eval
from ssdmobile.models import create_model
from ssdmobile.runtime import Predictor
from ssdmobile.targets.artifacts import load_runner
from ssdmobile.targets.pipeline import export
from ssdmobile.validate import detections_match

from conftest import COCO128, SHARED

GRAPH = SHARED / "models" / "ssdlite_mobilenet_v2_person" / "frozen_inference_graph.pb"
NUM_IMAGES = 8

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def person():
    return create_model("ssdlite_mobilenet_v2_person", weights=GRAPH)


@pytest.fixture(scope="module")
def data(person):
    ds = CocoDataset(COCO128, "val2017", max_images=NUM_IMAGES)
    samples = list(ds)
    inputs = [person.preprocess([s.image]) for s in samples]
    sizes = [tuple(s.image.shape[-2:]) for s in samples]
    with torch.no_grad():
        raw = [person.forward_core(x) for x in inputs]
    dets = [person.nms(*person.decode(*r), [size])[0] for r, size in zip(raw, sizes)]
    ids = [s.image_id for s in samples]
    ap = coco_eval(ds, dict(zip(ids, dets)), person.spec.class_names).ap
    assert ap > 0.1  # a real detector on real images
    return ds, ids, inputs, sizes, raw, dets, ap


def _run(path, data, person):
    ds, ids, inputs, sizes, raw, dets, ap = data
    runner = load_runner(path, threads=2)
    predictor = Predictor(runner)
    got, max_diff, matched = {}, 0.0, 0
    for i, (x, size) in enumerate(zip(inputs, sizes)):
        out = runner.run(x)
        if not runner.nms_in_graph:
            max_diff = max(max_diff, max(float((a - b).abs().max()) for a, b in zip(out, raw[i])))
        got[ids[i]] = predictor.detections(out, [size])[0]
        matched += detections_match(dets[i], got[ids[i]], person.spec.postprocess.max_detections)
    return coco_eval(ds, got, person.spec.class_names).ap - ap, max_diff, matched


@pytest.mark.parametrize("target", ["onnx", "torchscript", "executorch"])
def test_raw_artifact_matches_eager(target, person, data, tmp_path):
    delta_ap, max_diff, matched = _run(
        export(person, target, "fp32", tmp_path)[0].path, data, person
    )
    assert max_diff < 1e-3
    assert matched == NUM_IMAGES
    assert abs(delta_ap) <= 0.001


@pytest.mark.parametrize(
    "target", ["onnx", "torchscript"]
)  # executorch runs the same traced NMS module
def test_nms_in_graph_ap(target, person, data, tmp_path):
    delta_ap, _, matched = _run(
        export(person, target, "fp32", tmp_path, nms=True)[0].path, data, person
    )
    assert abs(delta_ap) <= 0.002
    assert matched >= NUM_IMAGES - 1  # ONNX's NMS orders exact score ties its own way
