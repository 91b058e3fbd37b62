"""TF scopes to torch modules: weights are mapped by graph structure, not by order. Every Conv2D /
DepthwiseConv2dNative under FeatureExtractor/ and BoxPredictor_*/ is named to a torch module, its
FusedBatchNorm or BiasAdd is found among the ops consuming it, and every constant those ops read
must be used exactly once and fit the model's shape."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import torch
from torch import nn

from ..ssdlite_mobilenet_v2 import (
    ANCHORS_PER_LOCATION,
    FEATURE0_BLOCK,
    SSDLiteMobileNetV2Core,
)
from .graphdef import TFGraph, TFImportError, const_value, node_attrs
from .metadata import graph_metadata

_BACKBONE = "FeatureExtractor/MobilenetV2/"


_CONV_OPS = ("Conv2D", "DepthwiseConv2dNative")


_BN_OPS = ("FusedBatchNorm", "FusedBatchNormV3")


_WEIGHT_OPS = _CONV_OPS + _BN_OPS + ("BiasAdd",)


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


def _to_torch_conv(w: np.ndarray, depthwise: bool) -> np.ndarray:
    # Conv2D filters are HWIO; depthwise filters HWCM with output channel c * M + m
    if depthwise:
        kh, kw, c, mult = w.shape
        return w.reshape(kh, kw, c * mult, 1).transpose(2, 3, 0, 1)
    return w.transpose(3, 2, 0, 1)


def _num_classes_from_graph(g: TFGraph) -> int:
    node = g.nodes.get("BoxPredictor_0/ClassPredictor/Conv2D")
    if node is None or node.op != "Conv2D":
        raise TFImportError(
            "not an SSDLite-MobileNetV2 graph: no BoxPredictor_0/ClassPredictor/Conv2D"
        )
    out_channels = const_value(g.producer(node.input[1])).shape[-1]
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
    g = TFGraph(graph_def)
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
        value = convert(const_value(const))
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
        attrs = node_attrs(node)
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
            eps = node_attrs(follower)["epsilon"].f
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
    return {k: state.get(k, full[k]) for k in full}, graph_metadata(g, found, class_names)


def _check_topology(g: TFGraph, model: SSDLiteMobileNetV2Core, conv_of_unit: dict) -> None:
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
