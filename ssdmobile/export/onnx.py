"""ONNX: the torch.onnx exporter, checked with onnx.checker, run with onnxruntime.

Every export writes two artifacts, each with its sidecar: the .onnx file and the .ort file ORT
Mobile loads, converted from it (export/_ort_mobile.py), both carrying ONNX Runtime's mobile
usability verdict (NNAPI, Core ML EPs). The .ort is an output of this target, not a target of its
own: it is the same graph in another container, made from the written (for int8: quantized) .onnx
file, run by the same runtime and runner; a target of its own would repeat the exporter, the
quantizer and the runner.

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

from ..fileio import sha256_file
from ..sidecar import load_sidecar, sidecar_path, to_sidecar
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
from ._ort_mobile import ORT_RUNTIME, ORT_SUFFIX, usability, write_ort
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
    return _mobile_ops(model)


def _mobile_ops(model):
    """Rewrite the ops ORT Mobile's execution providers lack into ops they take, in place (ONNX
    Runtime's mobile usability checker: NNAPI has no HardSigmoid, so MobileNetV3's 8 squeeze-excite
    gates and 20 hard-swishes, which onnxruntime expands into HardSigmoid, split its graph into 29
    partitions; Core ML NeuralNetwork has no ReduceMean either). By the ONNX definitions:
    HardSigmoid(x) = Clip(x * alpha + beta, 0, 1), HardSwish(x) = x * HardSigmoid(x) (alpha 1/6,
    beta 1/2), ReduceMean over H, W of an NCHW tensor, keeping them = GlobalAveragePool. Written by
    hand: onnx has no pass for it, and onnxruntime's optimizer fuses the other way."""
    import onnx  # lazy: heavy optional runtime (onnx), only when this target is exported
    from onnx import helper, numpy_helper

    g = model.graph
    inferred = onnx.shape_inference.infer_shapes(model)
    rank = {
        v.name: len(v.type.tensor_type.shape.dim)
        for v in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]
        if v.type.tensor_type.HasField("shape")
    }
    initializers = {i.name: i for i in g.initializer}
    consts: dict[float, str] = {}

    def const(value: float) -> str:
        if value not in consts:
            consts[value] = f"mobile_const_{len(consts)}"
            g.initializer.append(
                numpy_helper.from_array(np.asarray(value, dtype=np.float32), consts[value])
            )
        return consts[value]

    nodes = []

    def emit(node, like):
        # the replaced node's metadata (torch.onnx's module scope): int8 quantizes the core's nodes
        # and keeps named modules in float by it (quant/onnx_int8.py)
        node.metadata_props.extend(like.metadata_props)
        nodes.append(node)

    for n in g.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        p = n.name or n.output[0]
        if n.domain in ("", "ai.onnx") and n.op_type in ("HardSigmoid", "HardSwish"):
            sigmoid = n.op_type == "HardSigmoid"
            alpha = float(attrs.get("alpha", 0.2)) if sigmoid else 1.0 / 6.0
            beta = float(attrs.get("beta", 0.5)) if sigmoid else 0.5
            x, y = n.input[0], n.output[0]
            gate = y if sigmoid else f"{p}_gate"
            emit(helper.make_node("Mul", [x, const(alpha)], [f"{p}_scaled"], name=f"{p}_mul"), n)
            emit(
                helper.make_node(
                    "Add", [f"{p}_scaled", const(beta)], [f"{p}_shifted"], name=f"{p}_add"
                ),
                n,
            )
            emit(
                helper.make_node(
                    "Clip", [f"{p}_shifted", const(0.0), const(1.0)], [gate], name=f"{p}_clip"
                ),
                n,
            )
            if not sigmoid:
                emit(helper.make_node("Mul", [x, gate], [y], name=f"{p}_swish"), n)
            continue
        if (
            n.domain in ("", "ai.onnx")
            and n.op_type == "ReduceMean"
            and len(n.input) == 2
            and n.input[1] in initializers
            and attrs.get("keepdims", 1) == 1
            and rank.get(n.input[0]) == 4
            and sorted(int(a) % 4 for a in numpy_helper.to_array(initializers[n.input[1]]))
            == [2, 3]
        ):
            emit(helper.make_node("GlobalAveragePool", [n.input[0]], [n.output[0]], name=p), n)
            continue
        nodes.append(n)
    del g.node[:]
    g.node.extend(nodes)
    used = {i for n in g.node for i in n.input}
    unused = [i for i in g.initializer if i.name not in used]
    for i in unused:
        g.initializer.remove(i)
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
            extra={"runtime": RUNTIME, "opset": OPSET, **file_fields(pending.path)},
        )
    onnx_artifact = Artifact(final, TARGET, req.precision, req.nms, RUNTIME)
    return [onnx_artifact, *companions(onnx_artifact)]


def file_fields(path) -> dict:
    """Sidecar fields measured on a written ONNX file: ONNX Runtime's mobile usability verdict
    (export/_ort_mobile.py). The int8 pipeline measures its quantized file again."""
    return {"ort_mobile": usability(path)}


def ort_path(onnx_path):
    """The ORT Mobile file of an .onnx artifact: `<stem>_mobile.ort` (its own stem, so its sidecar
    does not overwrite the .onnx one's)."""
    return onnx_path.with_name(f"{onnx_path.stem}_mobile{ORT_SUFFIX}")


def companions(onnx_artifact: Artifact) -> list[Artifact]:
    """The .ort file ORT Mobile loads, converted from a written .onnx artifact, with its sidecar:
    the .onnx one's (same graph, inputs, outputs, quantization, mobile verdict), renamed."""
    src, final = onnx_artifact.path, ort_path(onnx_artifact.path)
    sidecar = load_sidecar(src).to_dict()
    with atomic_output(final) as pending:
        saved = write_ort(src, pending.path)
        runtime = ORT_RUNTIME + (
            "" if saved else ", no saved runtime optimizations (onnxruntime could not save them)"
        )
        pending.sidecar = to_sidecar(
            {
                **sidecar,
                "artifact": final.name,
                "artifact_sha256": sha256_file(pending.path),
                "runtime": runtime,
            },
            str(sidecar_path(final)),
        )
    return [Artifact(final, TARGET, onnx_artifact.precision, onnx_artifact.nms, runtime)]
