"""Evaluate a saved Core ML package: an ML Program, Core ML's NonMaximumSuppression model, or a
pipeline of them, on a dict of features, as `MLModel.predict` takes and returns them.

Image features take uint8 [H, W, 3] RGB pixels (what a `CVPixelBuffer`/PIL image holds; float32
0..255 pixels too, for comparisons with a float model); the
image input's color space decides the channel order the program sees (RGB or BGR planes, as
Core ML feeds them). Scale and bias are ops inside the program, evaluated like any other.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import MLProgramError, UnsupportedOpError
from .nms import class_labels, run_nms_model
from .ops import OPS, Args
from .reader import DTYPES, PackageFiles, numpy_dtype, read_value, tensor_type

_MODEL_KINDS = ("mlProgram", "nonMaximumSuppression", "pipeline")


class Program:
    """One ML Program's main function, its consts read once."""

    def __init__(self, spec, files: PackageFiles):
        self.spec, self.files = spec, files
        functions = spec.mlProgram.functions
        if "main" not in functions:
            raise MLProgramError(f"{files.path.name}: the ML Program has no main function")
        fn = functions["main"]
        self.inputs = {i.name: i for i in fn.inputs}
        self.block = fn.block_specializations[fn.opset]
        unknown = sorted({o.type for o in self.block.operations} - set(OPS) - {"const"})
        if unknown:
            raise UnsupportedOpError(
                f"{files.path.name}: ML Program op {unknown[0]!r} is not in the reference "
                f"evaluator's set ({len(unknown)} unknown: {', '.join(unknown)})"
            )
        for o in self.block.operations:
            if len(o.blocks):
                raise UnsupportedOpError(f"ML Program op {o.type!r} with nested blocks")
        # consts, and the constexpr ops (weights stored compressed, e.g. int8 with a scale): the
        # MIL reference computes those once, at load time, from their constant operands
        self.consts = {}
        for o in self.block.operations:
            if o.type == "const":
                self.consts[o.outputs[0].name] = read_value(o.attributes["val"], files)
            elif o.type.startswith("constexpr_"):
                self._evaluate(o, self.consts)

    def run(self, features: dict) -> dict:
        env = dict(self.consts)
        for name, decl in self.inputs.items():
            if name not in features:
                raise MLProgramError(f"the program's input {name!r} is missing")
            dtype, shape = tensor_type(decl.type)
            env[name] = _conform(np.asarray(features[name]), dtype, shape, f"input {name}")
        for o in self.block.operations:
            if o.type != "const" and not o.type.startswith("constexpr_"):
                self._evaluate(o, env)
        return {name: env[name] for name in self.block.outputs}

    def _evaluate(self, o, env: dict) -> None:
        """Run op `o` on its operands in `env`; its outputs go into `env`. An operand is an
        input bound to a name or a value, or (iOS16/17 constexpr ops: quantized_data, scale,
        zero_point, axis) an attribute holding the value itself."""
        values = {
            key: read_value(value, self.files)
            for key, value in o.attributes.items()
            if key != "name"
        }
        for key, arg in o.inputs.items():
            bound = [
                env[b.name]
                if b.WhichOneof("binding") == "name"
                else read_value(b.value, self.files)
                for b in arg.arguments
            ]
            values[key] = bound if len(bound) != 1 or key == "values" else bound[0]
        result = OPS[o.type](Args(o.type, values))
        results = result if isinstance(result, tuple) else (result,)
        if len(results) != len(o.outputs):
            raise MLProgramError(f"op {o.type!r} gave {len(results)} outputs, not {len(o.outputs)}")
        for out, value in zip(o.outputs, results):
            dtype, shape = tensor_type(out.type)
            env[out.name] = _conform(np.asarray(value), dtype, shape, f"{o.type} -> {out.name}")


def _conform(value: np.ndarray, dtype: str, shape: list, where: str) -> np.ndarray:
    """Round to the declared dtype; a shape that contradicts the declared one is an error (in the
    program or in this evaluator), never carried on."""
    if list(value.shape) != [value.shape[i] if s is None else s for i, s in enumerate(shape)] or (
        len(shape) != value.ndim
    ):
        raise MLProgramError(f"{where}: shape {list(value.shape)}, the program declares {shape}")
    return value.astype(numpy_dtype(dtype), copy=False)


class Package:
    """A loaded `.mlpackage`; `predict(features) -> outputs` by feature name."""

    def __init__(self, path: str | Path):
        self.files = PackageFiles(path)
        self.spec = self.files.spec
        self.models = []  # (kind, spec, Program | None), in pipeline order
        self._collect(self.spec)

    def _collect(self, spec):
        kind = spec.WhichOneof("Type")
        if kind not in _MODEL_KINDS:
            raise UnsupportedOpError(
                f"{self.files.path.name}: Core ML model type {kind!r} is not in the reference "
                "evaluator's set (ML Program, NonMaximumSuppression, pipelines of them)"
            )
        if kind == "pipeline":
            for m in spec.pipeline.models:
                self._collect(m)
        elif kind == "mlProgram":
            self.models.append((kind, spec, Program(spec, self.files)))
        else:
            self.models.append((kind, spec, None))

    @property
    def class_labels(self) -> list:
        """The NonMaximumSuppression model's class labels (empty without one)."""
        for kind, spec, _ in self.models:
            if kind == "nonMaximumSuppression":
                return class_labels(spec.nonMaximumSuppression)
        return []

    def predict(self, features: dict) -> dict:
        env = dict(features)
        for _kind, spec, program in self.models:
            inputs = {}
            for f in spec.description.input:
                if f.name in env:
                    inputs[f.name] = _feature_in(f, env[f.name])
                elif not f.type.isOptional:
                    raise MLProgramError(f"input feature {f.name!r} is missing")
            out = (
                program.run(inputs)
                if program
                else run_nms_model(spec.nonMaximumSuppression, inputs)
            )
            for f in spec.description.output:
                env[f.name] = _feature_out(f, out[f.name])
        return {f.name: env[f.name] for f in self.spec.description.output}


def _feature_in(feature, value):
    """A model input feature -> what the program's input holds: an image becomes float32
    [1, 3, H, W] pixel values (0..255) in the color space's channel order."""
    t = feature.type
    which = t.WhichOneof("Type")
    if which == "imageType":
        from coremltools.proto import FeatureTypes_pb2  # lazy: heavy optional runtime

        img = t.imageType
        pixels = np.asarray(value)
        # float32 pixels (0..255, not rounded) are for comparisons with a float model: Core ML
        # itself takes 8-bit images
        if pixels.dtype not in (np.uint8, np.float32) or pixels.shape != (img.height, img.width, 3):
            raise MLProgramError(
                f"image {feature.name!r} takes uint8 (or float32) [{img.height}, {img.width}, 3] "
                f"RGB pixels, got {pixels.dtype} {list(pixels.shape)}"
            )
        space = FeatureTypes_pb2.ImageFeatureType.ColorSpace.Name(img.colorSpace)
        if space not in ("RGB", "BGR"):
            raise UnsupportedOpError(f"image color space {space} is not in the evaluator's set")
        planes = pixels.transpose(2, 0, 1)
        if space == "BGR":
            planes = planes[::-1]
        return planes[None].astype(np.float32)
    if which == "multiArrayType":
        return np.asarray(value)
    if which == "doubleType":
        return float(value)
    raise UnsupportedOpError(f"input feature type {which} is not in the evaluator's set")


def _feature_out(feature, value):
    """Multi-array outputs have the dtype the model description declares (the program's fp16
    result reaches the caller as the declared float32, as Core ML hands it over)."""
    t = feature.type
    if t.WhichOneof("Type") != "multiArrayType":
        raise UnsupportedOpError(f"output feature type {t.WhichOneof('Type')}")
    from coremltools.proto import FeatureTypes_pb2  # lazy: heavy optional runtime

    name = FeatureTypes_pb2.ArrayFeatureType.ArrayDataType.Name(t.multiArrayType.dataType)
    dtype = {"FLOAT32": np.float32, "FLOAT16": np.float16, "DOUBLE": np.float64, "INT32": np.int32}
    if name not in dtype:
        raise UnsupportedOpError(f"output multi-array dtype {name}")
    return np.asarray(value).astype(dtype[name])


def load_package(path: str | Path) -> Package:
    return Package(path)


__all__ = ["DTYPES", "Package", "Program", "load_package"]
