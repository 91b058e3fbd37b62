"""Deliberately wrong Core ML packages, made by editing a saved package's spec (the exporter is
not involved): the wrong-export tests check that the ML Program reference evaluator's drift
catches each one. `edit_package(src, dst, edit)` writes the edited copy with a sidecar that
describes it (name, sha256), so only the program is wrong."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ssdmobile.fileio import sha256_file


def edit_package(src: Path, dst_dir: Path, name: str, edit) -> Path:
    import coremltools as ct

    spec = ct.utils.load_spec(str(src))
    edit(spec)
    dst = dst_dir / f"{src.name.removesuffix('.mlpackage')}_{name}.mlpackage"
    weights = src / "Data" / "com.apple.CoreML" / "weights"
    ct.models.MLModel(spec, weights_dir=str(weights), skip_model_load=True).save(str(dst))
    sidecar = json.loads(src.with_suffix(".json").read_text())
    sidecar.update(artifact=dst.name, artifact_sha256=sha256_file(dst))
    dst.with_suffix(".json").write_text(json.dumps(sidecar))
    return dst


def programs(spec):
    kind = spec.WhichOneof("Type")
    if kind == "pipeline":
        return [p for m in spec.pipeline.models for p in programs(m)]
    return [spec] if kind == "mlProgram" else []


def nms_model(spec):
    (m,) = [m for m in spec.pipeline.models if m.WhichOneof("Type") == "nonMaximumSuppression"]
    return m.nonMaximumSuppression


def operations(spec):
    fn = programs(spec)[0].mlProgram.functions["main"]
    return fn.block_specializations[fn.opset].operations


def const_value(spec, name: str):
    """The const op producing `name`: (its Value message, the values as numpy)."""
    for op in operations(spec):
        if op.type == "const" and op.outputs[0].name == name:
            v = op.attributes["val"]
            t = v.immediateValue.tensor
            if t.WhichOneof("value") == "bytes":
                return v, np.frombuffer(t.bytes.values, dtype=np.float16).copy()
            return v, np.array(t.floats.values, dtype=np.float32)
    raise KeyError(name)


def set_const(value, array: np.ndarray) -> None:
    t = value.immediateValue.tensor
    if t.WhichOneof("value") == "bytes":
        t.bytes.values = array.astype(np.float16).tobytes()
    else:
        del t.floats.values[:]
        t.floats.values.extend(array.astype(np.float32).tolist())


def first_op_on_image(spec, op_type: str, image: str = "image"):
    """The first `op_type` op downstream of the image input (following the ops in order)."""
    reached = {image}
    for op in operations(spec):
        args = [b.name for a in op.inputs.values() for b in a.arguments]
        if any(a in reached for a in args):
            if op.type == op_type:
                return op
            reached.update(o.name for o in op.outputs)
    raise KeyError(op_type)


# -- the wrong exports ------------------------------------------------------------------------


def channels_bgr(spec):
    """The image input declared BGR: the program sees its planes in the other order."""
    import coremltools as ct

    bgr = ct.proto.FeatureTypes_pb2.ImageFeatureType.BGR
    for s in [spec, *programs(spec)]:
        for f in s.description.input:
            if f.type.WhichOneof("Type") == "imageType":
                f.type.imageType.colorSpace = bgr


def scale_off(spec):
    """The image's pixel scale 1/255 -> 1/250 (2% brighter)."""
    op = first_op_on_image(spec, "mul")
    name = op.inputs["y"].arguments[0].name
    value, v = const_value(spec, name)
    set_const(value, v * (255.0 / 250.0))


def bias_off(spec):
    """The normalization's mean shifted by 0.02 (about 5 levels of 255)."""
    op = first_op_on_image(spec, "sub")
    value, v = const_value(spec, op.inputs["y"].arguments[0].name)
    set_const(value, v + 0.02)


def class_order_shifted(class_names):
    """The NMS model's labels off by one (class_names[:-1], the background kept, the last class
    dropped: column i named as class i, not i + 1)."""

    def edit(spec):
        labels = nms_model(spec).stringClassLabels.vector
        del labels[:]
        labels.extend(class_names[:-1])

    return edit


def nms_iou_changed(spec):
    """The NMS IoU threshold 0.6 -> 0.3 (default; the run-time input is not given)."""
    nms_model(spec).iouThreshold = 0.3


def op_renamed(spec, old: str = "conv", new: str = "erf"):
    """One op's type replaced by one outside the evaluator's set."""
    for op in operations(spec):
        if op.type == old:
            op.type = new
            return
    raise KeyError(old)


def anchors_xy_swapped(package: Path, anchors: np.ndarray):
    """The NMS pipeline decoder's anchor centers x and y swapped (anchors [A, 4] cx, cy, w, h):
    the program's fp32 consts equal to anchors[:, 0] and anchors[:, 1] (read from the saved
    package by the evaluator, wherever they are stored) are rewritten as immediate values, each
    holding the other's."""
    from ssdmobile.mlprogram import load_package

    (program,) = [p for kind, _spec, p in load_package(package).models if kind == "mlProgram"]
    found = {}
    for name, value in program.consts.items():
        v = np.asarray(value)
        if v.dtype == np.float32 and v.size == len(anchors):
            for j in (0, 1):
                if np.allclose(v.reshape(-1), anchors[:, j], atol=1e-6):
                    found[j] = name
    if set(found) != {0, 1}:
        raise KeyError(f"anchor centers not found as consts ({found})")

    def edit(spec):
        for op in operations(spec):
            for j, name in found.items():
                if op.type == "const" and op.outputs[0].name == name:
                    t = op.attributes["val"]
                    t.ClearField("blobFileValue")
                    floats = t.immediateValue.tensor.floats
                    del floats.values[:]
                    floats.values.extend(anchors[:, 1 - j].astype(np.float32).tolist())

    return edit
