"""ONNX: the torch.onnx exporter, checked with onnx.checker, run with onnxruntime.

With nms, the graph ends in ONNX's own NonMaxSuppression, appended explicitly after the exported
decode (boxes, foreground scores), followed by a TopK over all classes and padding to a fixed
max_detections rows. It reproduces the eager nms_per_class: a per-class TopK first drops the
candidates that eager's "top-k candidates per class" drops (scores below the class's k-th score
are masked; candidates tied with it all stay), NonMaxSuppression is greedy per class with the same
IoU arithmetic as torchvision's kernel, capped at min(max_per_class, max_detections) per class
(greedy selects in score order, so the cap keeps a class's best), and the final TopK keeps the best
max_detections.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from ._common import (
    Artifact,
    DecodedBoxes,
    ExportError,
    ExportRequest,
    RawCore,
    artifact_stem,
    atomic_output,
    declared_outputs,
    example_input,
    make_sidecar,
)
from ._tensor_nms import float_threshold

TARGET = "onnx"
SUFFIX = ".onnx"
RUNTIME = "onnxruntime"
OPSET = 18


def _torch_export(module, x, output_names):
    import onnx  # lazy: heavy optional runtime (onnx), only when this target is exported

    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            module,
            (x,),
            None,
            input_names=["input"],
            output_names=output_names,
            opset_version=OPSET,
            dynamo=True,
            optimize=True,
            verbose=False,
        )
    model = program.model_proto
    onnx.checker.check_model(model)
    return model


def _append_nms(model, spec):
    """Graph outputs (boxes [1, A, 4], scores [1, A, C-1]) -> (boxes [1, M, 4], scores [1, M],
    labels [1, M] int64, num_detections [1] int64), M = max_detections."""
    import onnx  # lazy: heavy optional runtime (onnx), only when this target is exported
    from onnx import TensorProto, helper, numpy_helper

    pp = spec.postprocess
    m = int(pp.max_detections)
    per_class = min(x for x in (pp.max_per_class, m) if x is not None)
    g = model.graph
    boxes_in, scores_in = g.output[0].name, g.output[1].name
    num_anchors = g.output[0].type.tensor_type.shape.dim[1].dim_value  # 0 if not static
    del g.output[:]

    def const(name, value, dtype):
        g.initializer.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    const("nms_max_per_class", [per_class], np.int64)
    # onnxruntime tests IoU > threshold in float32; torchvision compares with the double threshold
    const("nms_iou", [float_threshold(pp.iou_thresh)], np.float32)
    const("nms_score", [pp.score_thresh], np.float32)
    const("nms_m", [m], np.int64)
    const("nms_zero", [0], np.int64)
    const("nms_one", [1], np.int64)
    const("nms_two", [2], np.int64)
    const("nms_axis0", [0], np.int64)
    # [1, C-1, A]
    nodes = [helper.make_node("Transpose", [scores_in], ["nms_scores_t"], perm=[0, 2, 1])]
    scores_t = "nms_scores_t"
    if pp.topk_candidates is not None and (pp.topk_candidates < num_anchors or not num_anchors):
        # eager keeps each class's best topk_candidates before NMS: where a class has more
        # candidates than that, mask the others below the threshold. A TopK over every class costs
        # more than the network here (10 ms at COCO scale), so it runs
        # only when some class needs it.
        k = int(pp.topk_candidates)
        const("nms_topk", [k], np.int64)
        const("nms_topk_f", k, np.float32)
        const("nms_kth_start", [k - 1], np.int64)
        const("nms_masked", [-np.inf], np.float32)
        mask = helper.make_graph(
            [
                helper.make_node(
                    "TopK",
                    ["nms_scores_t", "nms_topk"],
                    ["nms_class_top", "nms_class_top_idx"],
                    axis=2,
                ),
                helper.make_node(
                    "Slice", ["nms_class_top", "nms_kth_start", "nms_topk", "nms_two"], ["nms_kth"]
                ),
                helper.make_node("GreaterOrEqual", ["nms_scores_t", "nms_kth"], ["nms_in_topk"]),
                helper.make_node(
                    "Where", ["nms_in_topk", "nms_scores_t", "nms_masked"], ["nms_scores_masked"]
                ),
            ],
            "nms_topk_mask",
            [],
            [helper.make_tensor_value_info("nms_scores_masked", TensorProto.FLOAT, None)],
        )
        keep_all = helper.make_graph(
            [helper.make_node("Identity", ["nms_scores_t"], ["nms_scores_same"])],
            "nms_no_mask",
            [],
            [helper.make_tensor_value_info("nms_scores_same", TensorProto.FLOAT, None)],
        )
        scores_t = "nms_scores_topk"
        nodes += [
            helper.make_node("Greater", ["nms_scores_t", "nms_score"], ["nms_above"]),
            helper.make_node("Cast", ["nms_above"], ["nms_above_f"], to=TensorProto.FLOAT),
            helper.make_node(
                "ReduceSum", ["nms_above_f", "nms_two"], ["nms_per_class_count"], keepdims=0
            ),
            helper.make_node("ReduceMax", ["nms_per_class_count"], ["nms_max_count"], keepdims=0),
            helper.make_node("Greater", ["nms_max_count", "nms_topk_f"], ["nms_need_topk"]),
            helper.make_node(
                "If", ["nms_need_topk"], [scores_t], then_branch=mask, else_branch=keep_all
            ),
        ]
    nodes += [
        # selected: [K, 3] = (batch, class, anchor); center_point_box=0
        # takes any diagonal corner pair
        helper.make_node(
            "NonMaxSuppression",
            [boxes_in, scores_t, "nms_max_per_class", "nms_iou", "nms_score"],
            ["nms_selected"],
            center_point_box=0,
        ),
        helper.make_node("GatherND", ["nms_scores_t", "nms_selected"], ["nms_sel_scores"]),  # [K]
        helper.make_node("Shape", ["nms_sel_scores"], ["nms_k_all"]),
        helper.make_node("Min", ["nms_k_all", "nms_m"], ["nms_k"]),
        helper.make_node(
            "TopK",
            ["nms_sel_scores", "nms_k"],
            ["nms_top_scores", "nms_top_idx"],
            axis=0,
            largest=1,
            sorted=1,
        ),
        # [k, 3]
        helper.make_node("Gather", ["nms_selected", "nms_top_idx"], ["nms_top_sel"], axis=0),
        helper.make_node("Slice", ["nms_top_sel", "nms_one", "nms_two", "nms_one"], ["nms_cls2d"]),
        helper.make_node("Slice", ["nms_top_sel", "nms_two", "nms_m", "nms_one"], ["nms_anchor2d"]),
        helper.make_node("Squeeze", ["nms_cls2d", "nms_one"], ["nms_cls"]),
        helper.make_node("Squeeze", ["nms_anchor2d", "nms_one"], ["nms_anchor"]),
        helper.make_node("Add", ["nms_cls", "nms_one"], ["nms_labels_k"]),  # skip background
        helper.make_node("Squeeze", [boxes_in, "nms_axis0"], ["nms_boxes_all"]),  # [A, 4]
        helper.make_node("Gather", ["nms_boxes_all", "nms_anchor"], ["nms_boxes_k"], axis=0),
        helper.make_node("Sub", ["nms_m", "nms_k"], ["nms_pad_n"]),
        # pad rows k..M-1 with zeros: pads = [begin_0, begin_1, end_0, end_1]
        helper.make_node(
            "Concat", ["nms_zero", "nms_zero", "nms_pad_n", "nms_zero"], ["nms_pads2"], axis=0
        ),
        helper.make_node("Concat", ["nms_zero", "nms_pad_n"], ["nms_pads1"], axis=0),
        helper.make_node("Pad", ["nms_boxes_k", "nms_pads2"], ["nms_boxes_m"]),
        helper.make_node("Pad", ["nms_top_scores", "nms_pads1"], ["nms_scores_m"]),
        helper.make_node("Pad", ["nms_labels_k", "nms_pads1"], ["nms_labels_m"]),
        helper.make_node("Unsqueeze", ["nms_boxes_m", "nms_axis0"], ["boxes"]),
        helper.make_node("Unsqueeze", ["nms_scores_m", "nms_axis0"], ["scores"]),
        helper.make_node("Unsqueeze", ["nms_labels_m", "nms_axis0"], ["labels"]),
        helper.make_node("Identity", ["nms_k"], ["num_detections"]),
    ]
    g.node.extend(nodes)
    g.output.extend(
        [
            helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, m, 4]),
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, m]),
            helper.make_tensor_value_info("labels", TensorProto.INT64, [1, m]),
            helper.make_tensor_value_info("num_detections", TensorProto.INT64, [1]),
        ]
    )
    onnx.checker.check_model(model, full_check=True)
    return model


def export(detector, req: ExportRequest) -> list[Artifact]:
    import onnx  # lazy: heavy optional runtime (onnx), only when this target is exported

    spec = detector.spec
    x = example_input(detector)
    try:
        if req.nms:
            model = _append_nms(
                _torch_export(DecodedBoxes(detector).eval(), x, ["nms_boxes_in", "nms_scores_in"]),
                spec,
            )
        else:
            model = _torch_export(RawCore(detector).eval(), x, ["box_encodings", "class_logits"])
    except onnx.checker.ValidationError as e:
        raise ExportError(
            f"the exported ONNX graph does not pass onnx.checker: {str(e).splitlines()[0]}"
        ) from e
    model.doc_string = (
        f"ssdmobile {spec.name} ({'with NonMaxSuppression' if req.nms else 'raw outputs'})"
    )
    final = req.out_dir / f"{artifact_stem(spec.name, TARGET, req)}{SUFFIX}"
    with atomic_output(final) as pending:
        onnx.save_model(model, str(pending.path))
        make_sidecar(
            detector,
            pending,
            final,
            req,
            target=TARGET,
            input_name="input",
            input_shape=list(x.shape),
            outputs=declared_outputs(detector, req.nms),
            extra={"runtime": RUNTIME, "opset": OPSET},
        )
    return [Artifact(final, TARGET, req.precision, req.nms, RUNTIME)]
