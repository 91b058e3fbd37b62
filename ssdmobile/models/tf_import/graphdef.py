"""Reading a TensorFlow frozen graph (`frozen_inference_graph.pb`) without TensorFlow.

The GraphDef is parsed with a minimal protobuf schema built at runtime (field numbers from
tensorflow/core/framework/*.proto, only the fields we read; everything else is kept as unknown
fields), so neither tensorflow nor protoc is needed: nothing on PyPI short of tensorflow itself
ships these message classes.
"""

from __future__ import annotations

import functools
import os
from collections import defaultdict
from pathlib import Path

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

from ...errors import SSDMobileError


class TFImportError(SSDMobileError):
    """A TensorFlow graph cannot be read, or is not a graph this importer supports."""


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


def node_attrs(node) -> dict:
    return {a.key: a.value for a in node.attr}


_DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 9: np.int64}


def const_value(node) -> np.ndarray:
    tensor = node_attrs(node)["value"].tensor
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


class TFGraph:
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
        return const_value(hits[0]) if len(hits) == 1 else None
