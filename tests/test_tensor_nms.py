"""NMS against its reference on the same boxes and scores, bit for bit: the eager nms_per_class
against torchvision's batched_nms used the plain way, and the in-graph NMS (TensorNMS for
TorchScript and ExecuTorch, the NonMaxSuppression graph ONNX gets) against nms_per_class; on real
person-detector outputs and on a synthetic COCO-scale case (90 classes, 3234 anchors, 300
detections, overlapping boxes, a class with more than topk_candidates candidates). And the
ExecuTorch program keeping its matrix work in the XNNPACK delegate."""

import numpy as np
import pytest
import torch
from torchvision.ops import batched_nms

from ssdmobile.data import load_image
from ssdmobile.export._tensor_nms import TensorNMS
from ssdmobile.export.onnx import _append_nms
from ssdmobile.models import create_model
from ssdmobile.ops.boxes import nms_per_class
from ssdmobile.spec import ModelSpec, Postprocess, Preprocess

from conftest import PERSON_GRAPH, VAL_IMAGES

COCO_PP = Postprocess(
    score="softmax", score_thresh=0.001, iou_thresh=0.55, topk_candidates=300, max_detections=300
)


def coco_like(
    seed: int,
    num_anchors: int = 3234,
    num_classes: int = 91,
    objects: int = 60,
    one_class: bool = False,
):
    """Boxes clustered around `objects` objects (jittered copies overlap at every IoU, which makes
    suppression chains), softmax scores where each object's class stands out of a background
    that dominates. one_class puts every object in class 1: more than 300 candidates there."""
    g = torch.Generator().manual_seed(seed)
    centers = torch.rand(objects, 2, generator=g)
    sizes = torch.rand(objects, 2, generator=g) * 0.4 + 0.05
    obj = torch.arange(num_anchors) % objects
    c = centers[obj] + (torch.rand(num_anchors, 2, generator=g) - 0.5) * 0.2 * sizes[obj]
    wh = sizes[obj] * (0.7 + 0.6 * torch.rand(num_anchors, 2, generator=g))
    boxes = torch.cat([c - wh / 2, c + wh / 2], 1)
    logits = torch.randn(num_anchors, num_classes, generator=g)
    cls = (
        torch.ones(objects, dtype=torch.long)
        if one_class
        else torch.randint(1, num_classes, (objects,), generator=g)
    )
    logits[torch.arange(num_anchors), cls[obj]] += 12 * torch.rand(num_anchors, generator=g)
    logits[:, 0] += 10
    return boxes, torch.softmax(logits, -1)


def reference_nms(boxes, scores, pp):
    """torchvision's SSD postprocessing written plainly: threshold, each class's best
    topk_candidates (stable order), batched_nms, the TF cap per class, the best max_detections."""
    boxes, fg = boxes.clamp(0, 1), scores[:, 1:]
    anchor_idx, cls_idx = (fg > pp.score_thresh).nonzero(as_tuple=True)
    cand_scores = fg[anchor_idx, cls_idx]
    if pp.topk_candidates is not None:
        keep = []
        for c in cls_idx.unique():
            idx = (cls_idx == c).nonzero()[:, 0]
            keep.append(
                idx[torch.argsort(cand_scores[idx], descending=True, stable=True)][
                    : pp.topk_candidates
                ]
            )
        keep = torch.cat(keep).sort().values
        anchor_idx, cls_idx, cand_scores = anchor_idx[keep], cls_idx[keep], cand_scores[keep]
    keep = batched_nms(boxes[anchor_idx], cand_scores, cls_idx, pp.iou_thresh)
    if pp.max_per_class is not None:
        counts = {}
        keep = torch.tensor(
            [
                k
                for k in keep.tolist()
                if counts.setdefault(int(cls_idx[k]), []).append(k)
                or len(counts[int(cls_idx[k])]) <= pp.max_per_class
            ],
            dtype=torch.long,
        )
    keep = keep[: pp.max_detections]
    return boxes[anchor_idx[keep]], cand_scores[keep], cls_idx[keep] + 1


@pytest.fixture(scope="module")
def person_outputs():
    """(boxes [A, 4], scores [A, 2]) of the real person detector on 4 val2017 images."""
    det = create_model("ssdlite_mobilenet_v2_person", weights=PERSON_GRAPH)
    out = []
    with torch.no_grad():
        for path in sorted(VAL_IMAGES.glob("*.jpg"))[:4]:
            boxes, scores = det.decode(*det.forward_core(det.preprocess([load_image(path)])))
            out.append((boxes[0], scores[0]))
    return det.spec.postprocess, out


def assert_same(got, pp, boxes, scores, prefix: bool = False):
    """got = (boxes, scores, labels, num_detections) of an in-graph NMS: the eager detections, or
    with prefix=True their first num_detections (a pool too small for this input)."""
    kb, ks, kl = nms_per_class(boxes, scores, pp)
    out_boxes, out_scores, labels, num = (torch.as_tensor(np.asarray(t)) for t in got)
    k = int(num.reshape(-1)[0])
    assert 0 < k <= len(ks) if prefix else k == len(ks) > 0
    assert torch.equal(out_boxes.reshape(-1, 4)[:k], kb[:k])
    assert torch.equal(out_scores.reshape(-1)[:k], ks[:k])
    assert torch.equal(labels.reshape(-1)[:k], kl[:k])
    assert not out_scores.reshape(-1)[k:].any()  # padding
    return k


def tensor_nms(pp, boxes, scores, pool=None):
    with torch.no_grad():
        return TensorNMS(pp, boxes.shape[0], scores.shape[1] - 1, pool=pool)(
            boxes.clamp(0, 1), scores[:, 1:]
        )


def onnx_nms(pp, boxes, scores):
    """Only the NMS that onnx.py appends, on an ONNX graph whose outputs are its inputs."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    a, k = scores.shape[0], scores.shape[1] - 1
    graph = helper.make_graph(
        [
            helper.make_node("Identity", ["b"], ["b_out"]),
            helper.make_node("Identity", ["s"], ["s_out"]),
        ],
        "nms",
        [
            helper.make_tensor_value_info("b", TensorProto.FLOAT, [1, a, 4]),
            helper.make_tensor_value_info("s", TensorProto.FLOAT, [1, a, k]),
        ],
        [
            helper.make_tensor_value_info("b_out", TensorProto.FLOAT, [1, a, 4]),
            helper.make_tensor_value_info("s_out", TensorProto.FLOAT, [1, a, k]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=9)
    spec = ModelSpec(
        name="nms",
        preprocess=Preprocess(size=(8, 8)),
        class_names=("bg",) + ("c",) * k,
        postprocess=pp,
    )
    model = _append_nms(model, spec)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"b": boxes.clamp(0, 1)[None].numpy(), "s": scores[None, :, 1:].numpy()})


@pytest.mark.parametrize("nms", [tensor_nms, onnx_nms])
def test_person_detector_outputs(nms, person_outputs):
    pp, outputs = person_outputs
    for boxes, scores in outputs:
        assert_same(nms(pp, boxes, scores), pp, boxes, scores)


@pytest.mark.parametrize("seed,one_class", [(0, False), (1, False), (2, True)])
def test_coco_scale(seed, one_class):
    """Harder than a detector's output: ~50 anchors of one class on each object, so the 300
    detections lie ~2200 candidates deep. ONNX's NMS sees all candidates; the tensor NMS gives
    the same with a pool that deep, and with the default pool of 512 the same first detections."""
    boxes, scores = coco_like(seed, one_class=one_class)
    candidates = (scores[:, 1:] > COCO_PP.score_thresh).sum(0)
    # COCO scale, and batched_nms's per-class loop (no offset rounding)
    assert candidates.sum() > 1000
    assert (candidates.max() > COCO_PP.topk_candidates) == one_class
    assert_same(onnx_nms(COCO_PP, boxes, scores), COCO_PP, boxes, scores)
    assert_same(tensor_nms(COCO_PP, boxes, scores, pool=2560), COCO_PP, boxes, scores)
    assert assert_same(tensor_nms(COCO_PP, boxes, scores), COCO_PP, boxes, scores, prefix=True) > 50


@pytest.mark.parametrize("case", ["person", "coco", "coco_one_class", "few_candidates"])
def test_host_nms_is_batched_nms(case, person_outputs):
    """nms_per_class's shortcuts (one nms call per class segment, a best-first prefix, one topk per
    class when a class has too many candidates) change nothing: the detections are torchvision's."""
    if case == "person":
        pp, outputs = person_outputs
        cases = outputs
    elif (
        case == "few_candidates"
    ):  # under 1000 candidates: batched_nms's single call on offset boxes
        pp = COCO_PP
        boxes, scores = coco_like(4)
        scores[400:, 1:] = 0  # fewer candidates
        assert 0 < (scores[:, 1:] > pp.score_thresh).sum() < 1000
        cases = [(boxes, scores)]
    else:
        pp = COCO_PP
        cases = [coco_like(5, one_class=case == "coco_one_class")]
    for boxes, scores in cases:
        for got, ref in zip(nms_per_class(boxes, scores, pp), reference_nms(boxes, scores, pp)):
            assert torch.equal(got, ref)


def test_max_per_class_and_small_pool():
    """The TF-style cap per class after NMS, and a model with fewer candidates than the pool."""
    pp = Postprocess(
        score="sigmoid",
        score_thresh=0.05,
        iou_thresh=0.5,
        topk_candidates=None,
        max_per_class=3,
        max_detections=20,
    )
    boxes, scores = coco_like(3, num_anchors=200, num_classes=4, objects=8)
    for nms in (tensor_nms, onnx_nms):
        assert_same(nms(pp, boxes, scores), pp, boxes, scores)


@pytest.mark.slow
def test_executorch_keeps_the_matrix_work_in_xnnpack():
    """Lowered with the XnnpackPartitioner as export/executorch.py does: every op on the candidate
    matrices is delegated, ExecuTorch's portable kernels only see vectors (topk, gathers, the score
    threshold), and the program gives the eager detections. A pool of two blocks keeps it quick."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.devtools.backend_debug import get_delegation_info
    from executorch.exir import to_edge_transform_and_lower
    from executorch.runtime import Runtime

    boxes, scores = coco_like(0)
    module = TensorNMS(COCO_PP, boxes.shape[0], scores.shape[1] - 1, pool=256).eval()
    inputs = (boxes.clamp(0, 1), scores[:, 1:].contiguous())
    edge = to_edge_transform_and_lower(
        torch.export.export(module, inputs, strict=False), partitioner=[XnnpackPartitioner()]
    )
    graph = edge.exported_program().graph_module
    info = get_delegation_info(graph)
    df = info.get_operator_delegation_dataframe().set_index("op_type")
    for op in (
        "aten_bmm_default",
        "aten_div_tensor",
        "aten_minimum_default",
        "aten_maximum_default",
        "aten_relu_default",
        "aten_hardtanh_default",
    ):
        assert df.loc[op, "occurrences_in_non_delegated_graphs"] == 0, op
        assert df.loc[op, "occurrences_in_delegated_graphs"] > 0, op
    outside = [
        n
        for n in graph.graph.nodes
        if n.op == "call_function" and isinstance(n.meta.get("val"), torch.Tensor)
    ]
    # vectors, [P, 4] boxes, and the one gather of the pool anchors' class scores [P, K]
    small = [n for n in outside if n.meta["val"].dim() <= 1 or n.meta["val"].shape[-1] <= 4]
    gathers = [n for n in outside if n not in small]
    assert small and [tuple(n.meta["val"].shape) for n in gathers] == [
        (module.pool, scores.shape[1] - 1)
    ]
    assert all("index_select" in str(n.target) for n in gathers)
    assert info.num_delegated_subgraphs <= 4
    program = Runtime.get().load_program(edge.to_executorch().buffer)
    assert (
        assert_same(
            program.load_method("forward").execute(inputs), COCO_PP, boxes, scores, prefix=True
        )
        > 50
    )


@pytest.mark.slow
def test_every_person_val_image():
    """Both in-graph NMS give the eager detections on all 128 val2017
    images of the person detector."""
    det = create_model("ssdlite_mobilenet_v2_person", weights=PERSON_GRAPH)
    pp = det.spec.postprocess
    paths = sorted(VAL_IMAGES.glob("*.jpg"))
    assert len(paths) == 128
    with torch.no_grad():
        for path in paths:
            boxes, scores = det.decode(*det.forward_core(det.preprocess([load_image(path)])))
            for nms in (tensor_nms, onnx_nms):
                assert_same(nms(pp, boxes[0], scores[0]), pp, boxes[0], scores[0])
