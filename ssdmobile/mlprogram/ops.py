"""The ML Program ops the evaluator knows, each as coremltools' MIL op reference defines it
(coremltools.converters.mil.mil.ops.defs: iOS15 and the later opsets' quantization ops).

Each function takes the op's named inputs (numpy arrays, strs, lists for tuple inputs) and returns
its output(s). The caller rounds every result to the dtype the program declares for it, which is
what makes an fp16 program compute in fp16: elementwise ops run in numpy's float16, and conv and
pooling read their fp16 inputs exactly, accumulate in float32 (torch's reference kernels) and are
rounded to fp16 once, as a single op's result. Parameters the reference does not implement are
refused by name (UnsupportedOpError), never ignored.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from .errors import UnsupportedOpError

OPS: dict[str, Callable] = {}


class Args:
    """An op's inputs by name; `op` for the error messages."""

    def __init__(self, op: str, values: dict):
        self.op, self.values = op, values

    def __getitem__(self, name):
        if name not in self.values:
            raise UnsupportedOpError(f"ML Program op {self.op!r} without its input {name!r}")
        return self.values[name]

    def get(self, name, default=None):
        return self.values.get(name, default)

    def refuse(self, what: str):
        raise UnsupportedOpError(
            f"ML Program op {self.op!r} with {what} is not in the evaluator's set"
        )


def op(*names):
    def register(fn):
        for n in names:
            OPS[n] = fn
        return fn

    return register


def _f32(x) -> np.ndarray:
    return np.array(x, dtype=np.float32)  # a copy: torch.from_numpy wants a writable array


# -- elementwise -------------------------------------------------------------------------------

_BINARY = {
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
    "real_div": np.true_divide,
    "maximum": np.maximum,
    "minimum": np.minimum,
    "pow": np.power,
}


@op(*_BINARY)
def _binary(a: Args):
    # numpy broadcasting is MIL's; both sides have the op's dtype (T), so float16 stays float16
    return _BINARY[a.op](a["x"], a["y"])


_UNARY = {
    "exp": np.exp,
    "sqrt": np.sqrt,
    "abs": np.abs,
    "tanh": np.tanh,
    "log": np.log,
}


@op(*_UNARY)
def _unary(a: Args):
    return _UNARY[a.op](a["x"])


@op("relu")
def _relu(a: Args):
    return np.maximum(a["x"], 0)


@op("sigmoid")
def _sigmoid(a: Args):
    x = a["x"]
    return (1.0 / (1.0 + np.exp(-_f32(x)))).astype(x.dtype)


@op("sigmoid_hard")
def _sigmoid_hard(a: Args):
    x = a["x"]
    alpha, beta = a.get("alpha", 0.2), a.get("beta", 0.5)
    return np.minimum(np.maximum(alpha * x + beta, 0), 1).astype(x.dtype)


@op("thresholded_relu")
def _thresholded_relu(a: Args):
    x = a["x"]
    return np.where(x >= a.get("alpha", 1.0), x, 0).astype(x.dtype)


@op("clip")
def _clip(a: Args):
    return np.minimum(np.maximum(a["x"], a["alpha"]), a["beta"])


@op("softmax")
def _softmax(a: Args):
    x = _f32(a["x"])
    axis = int(a.get("axis", -1))
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


_CASTS = {"fp16": np.float16, "fp32": np.float32, "int32": np.int32, "bool": np.bool_}


@op("cast")
def _cast(a: Args):
    dtype = str(a["dtype"])
    if dtype not in _CASTS:
        a.refuse(f"dtype {dtype!r}")
    return np.asarray(a["x"]).astype(_CASTS[dtype])


# -- reductions --------------------------------------------------------------------------------


def _axes(a: Args):
    axes = a.get("axes")
    return None if axes is None else tuple(int(i) for i in np.atleast_1d(axes))


@op("reduce_mean")
def _reduce_mean(a: Args):
    x = a["x"]
    return _f32(x).mean(axis=_axes(a), keepdims=bool(a.get("keep_dims", False))).astype(x.dtype)


@op("reduce_sum")
def _reduce_sum(a: Args):
    x = a["x"]
    return _f32(x).sum(axis=_axes(a), keepdims=bool(a.get("keep_dims", False))).astype(x.dtype)


@op("reduce_l2_norm")
def _reduce_l2_norm(a: Args):
    x = a["x"]
    keep = bool(a.get("keep_dims", False))
    return np.sqrt((_f32(x) ** 2).sum(axis=_axes(a), keepdims=keep)).astype(x.dtype)


# -- tensor layout -----------------------------------------------------------------------------


@op("reshape")
def _reshape(a: Args):
    x, shape = a["x"], [int(s) for s in a["shape"]]
    # 0 inherits the input's dimension when the ranks agree; -1 is inferred
    if len(shape) == x.ndim:
        shape = [x.shape[i] if s == 0 else s for i, s in enumerate(shape)]
    return x.reshape(shape)


@op("transpose")
def _transpose(a: Args):
    return np.transpose(a["x"], [int(p) for p in a["perm"]])


@op("concat")
def _concat(a: Args):
    if bool(a.get("interleave", False)):
        a.refuse("interleave=True")
    return np.concatenate(a["values"], axis=int(a["axis"]))


@op("stack")
def _stack(a: Args):
    return np.stack(a["values"], axis=int(a["axis"]))


@op("squeeze")
def _squeeze(a: Args):
    x, axes = a["x"], _axes(a)
    return np.squeeze(x) if axes is None else np.squeeze(x, axis=axes)


@op("expand_dims")
def _expand_dims(a: Args):
    return np.expand_dims(a["x"], _axes(a))


@op("tile")
def _tile(a: Args):
    return np.tile(a["x"], [int(r) for r in a["reps"]])


@op("split")
def _split(a: Args):
    x, axis = a["x"], int(a["axis"])
    sizes = a.get("split_sizes")
    if sizes is None:
        return tuple(np.split(x, int(a["num_splits"]), axis=axis))
    return tuple(np.split(x, np.cumsum([int(s) for s in sizes])[:-1], axis=axis))


@op("slice_by_index")
def _slice_by_index(a: Args):
    x = a["x"]
    n = x.ndim
    begin, end = [int(v) for v in a["begin"]], [int(v) for v in a["end"]]
    stride = [int(v) for v in a.get("stride", [1] * n)]
    begin_mask = [bool(v) for v in a.get("begin_mask", [False] * n)]
    end_mask = [bool(v) for v in a.get("end_mask", [False] * n)]
    squeeze = [bool(v) for v in a.get("squeeze_mask", [False] * n)]
    index = []
    for i in range(n):
        if squeeze[i]:
            index.append(begin[i])
            continue
        index.append(
            slice(None if begin_mask[i] else begin[i], None if end_mask[i] else end[i], stride[i])
        )
    return x[tuple(index)]


@op("gather")
def _gather(a: Args):
    if int(a.get("batch_dims", 0)) != 0:
        a.refuse("batch_dims != 0")
    return np.take(a["x"], np.asarray(a["indices"]).astype(np.int64), axis=int(a.get("axis", 0)))


@op("pad")
def _pad(a: Args):
    x, pad = a["x"], [int(p) for p in a["pad"]]
    mode = str(a.get("mode", "constant"))
    # the pad pairs are for the last len(pad) / 2 dimensions
    widths = [(0, 0)] * (x.ndim - len(pad) // 2) + list(zip(pad[::2], pad[1::2]))
    if mode == "constant":
        return np.pad(x, widths, constant_values=a.get("constant_val", 0))
    if mode in ("reflect", "replicate"):
        return np.pad(x, widths, mode="reflect" if mode == "reflect" else "edge")
    a.refuse(f"mode {mode!r}")


# -- convolution and pooling -------------------------------------------------------------------


def _spatial_pads(a: Args, spatial, kernel, strides, dilations) -> list[tuple[int, int]]:
    """(before, after) per spatial dimension for pad_type valid / custom / same / same_lower."""
    pad_type = str(a.get("pad_type", "valid"))
    if pad_type == "valid":
        return [(0, 0)] * len(spatial)
    if pad_type == "custom":
        pad = [int(p) for p in a.get("pad", [0] * 2 * len(spatial))]
        return list(zip(pad[::2], pad[1::2]))
    if pad_type in ("same", "same_lower"):
        pads = []
        for d, k, s, dil in zip(spatial, kernel, strides, dilations):
            total = max((math.ceil(d / s) - 1) * s + (k - 1) * dil + 1 - d, 0)
            small, big = total // 2, total - total // 2
            pads.append((small, big) if pad_type == "same" else (big, small))
        return pads
    a.refuse(f"pad_type {pad_type!r}")
    raise AssertionError  # unreachable: refuse raises


@op("conv")
def _conv(a: Args):
    x, w = a["x"], a["weight"]
    if x.ndim != 4:
        a.refuse(f"a rank-{x.ndim} input (2-D convolution only)")
    strides = [int(s) for s in a.get("strides", [1, 1])]
    dilations = [int(d) for d in a.get("dilations", [1, 1])]
    pads = _spatial_pads(a, x.shape[2:], w.shape[2:], strides, dilations)
    xp = np.pad(_f32(x), [(0, 0), (0, 0), *pads])
    bias = a.get("bias")
    out = F.conv2d(
        torch.from_numpy(xp),
        torch.from_numpy(_f32(w)),
        None if bias is None else torch.from_numpy(_f32(bias)),
        stride=strides,
        dilation=dilations,
        groups=int(a.get("groups", 1)),
    )
    return out.numpy()


@op("max_pool", "avg_pool")
def _pool(a: Args):
    x = a["x"]
    if x.ndim != 4:
        a.refuse(f"a rank-{x.ndim} input (2-D pooling only)")
    kernel = [int(k) for k in a["kernel_sizes"]]
    strides = [int(s) for s in a.get("strides", [1, 1])]
    pads = _spatial_pads(a, x.shape[2:], kernel, strides, [1, 1])
    if a.op == "avg_pool" and any(p != (0, 0) for p in pads):
        a.refuse("padding (exclude_padding_from_average)")
    fill = -np.inf if a.op == "max_pool" else 0.0
    xp = torch.from_numpy(np.pad(_f32(x), [(0, 0), (0, 0), *pads], constant_values=fill))
    ceil = bool(a.get("ceil_mode", False))
    if ceil:
        # MIL: out = ceil((d + pads - k) / s) + 1; extend the end with the fill value so that
        # torch's floor rule gives the same windows (a window may hang over the end)
        extra = []
        for d, k, s in zip(xp.shape[2:], kernel, strides):
            out = math.ceil((d - k) / s) + 1
            extra.append(max((out - 1) * s + k - d, 0))
        xp = F.pad(xp, (0, extra[1], 0, extra[0]), value=fill)
    if a.op == "max_pool":
        out = F.max_pool2d(xp, kernel, strides)
    else:
        if ceil:
            a.refuse("ceil_mode=True")
        out = F.avg_pool2d(xp, kernel, strides)
    return out.numpy()


# -- quantization: weights stored int8 (constexpr ops) and activations quantized (iOS17) --------


def _along(v, axis: int | None, ndim: int):
    """A per-channel vector broadcast along `axis` of a rank-ndim tensor (a scalar as is)."""
    v = np.asarray(v)
    if v.ndim == 0 or axis is None:
        return v
    shape = [1] * ndim
    shape[axis % ndim] = v.size
    return v.reshape(shape)


@op("constexpr_affine_dequantize")
def _constexpr_affine_dequantize(a: Args):
    q = a["quantized_data"]
    axis = int(a["axis"])
    zp, scale = _along(a["zero_point"], axis, q.ndim), _along(a["scale"], axis, q.ndim)
    return ((q.astype(np.float32) - zp.astype(np.float32)) * _f32(scale)).astype(scale.dtype)


@op("constexpr_blockwise_shift_scale")
def _constexpr_blockwise_shift_scale(a: Args):
    data, scale = a["data"], a["scale"]
    offset = a.get("offset")
    if scale.ndim != data.ndim:
        a.refuse("a scale whose rank differs from the data's")
    # each scale (and offset) element covers a block of data.shape[i] / scale.shape[i] values

    def expand(v):
        for i, (d, s) in enumerate(zip(data.shape, v.shape)):
            v = np.repeat(v, d // s, axis=i)
        return v

    x = data.astype(np.float32)
    if offset is not None:
        x = x - expand(offset).astype(np.float32)
    return (x * expand(_f32(scale))).astype(scale.dtype)


@op("quantize")
def _quantize(a: Args):
    x = a["input"]
    axis = a.get("axis")
    axis = None if axis is None else int(axis)
    dtype = {"int8": np.int8, "uint8": np.uint8}.get(str(a["output_dtype"]))
    if dtype is None:
        a.refuse(f"output_dtype {a['output_dtype']!r}")
    scale = _f32(_along(a["scale"], axis, x.ndim))
    zp = _along(a.get("zero_point", 0), axis, x.ndim).astype(np.float32)
    info = np.iinfo(dtype)
    # MIL says round(); ties go to even here (numpy's rint), as in coremltools' own value
    # inference of this op (np.around): one of the places a device may differ by one step
    q = np.rint(_f32(x) / scale) + zp
    return np.clip(q, info.min, info.max).astype(dtype)


@op("dequantize")
def _dequantize(a: Args):
    q = a["input"]
    axis = a.get("axis")
    axis = None if axis is None else int(axis)
    scale = _along(a["scale"], axis, q.ndim)
    zp = _along(a.get("zero_point", 0), axis, q.ndim).astype(np.float32)
    return ((q.astype(np.float32) - zp) * _f32(scale)).astype(np.asarray(scale).dtype)
