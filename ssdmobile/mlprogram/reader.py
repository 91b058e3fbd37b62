"""Reading a saved `.mlpackage`: its Model spec (coremltools' public proto classes), the values
of an ML Program (immediate values and weight-file blobs) and the types it declares.

The weight file is read here from its documented layout (coremltools' MILBlob StorageFormat.hpp:
a 64-byte storage_header, then per blob a 64-byte blob_metadata {sentinel 0xDEADBEEF, dtype,
size, data offset} and the data). Hand-written because coremltools' only reader for it is a
private binding (`libmilstoragepython._BlobStorageReader`), which the tests use as the oracle.
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path

import numpy as np

from .errors import MLProgramError, UnsupportedOpError

# MIL DataType names (coremltools.proto.MIL_pb2.DataType) -> numpy dtypes
DTYPES = {
    "BOOL": np.bool_,
    "FLOAT16": np.float16,
    "FLOAT32": np.float32,
    "FLOAT64": np.float64,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
}
# MILBlob BlobDataType (BlobDataType.hpp) -> numpy dtypes
_BLOB_DTYPES = {
    1: np.float16,
    2: np.float32,
    3: np.uint8,
    4: np.int8,
    6: np.int16,
    7: np.uint16,
    14: np.int32,
    15: np.uint32,
}
_SENTINEL = 0xDEADBEEF
_STRING_NAMES = {"STRING": str}


def _proto():
    from coremltools.proto import MIL_pb2  # lazy: heavy optional runtime (coremltools)

    return MIL_pb2


class PackageFiles:
    """A `.mlpackage` directory: its root model file (Manifest.json's rootModelIdentifier) and
    the folder `@model_path` means in blob file names."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        manifest = self.path / "Manifest.json"
        if not manifest.is_file():
            raise MLProgramError(f"{self.path}: not a Core ML package (no Manifest.json)")
        try:
            info = json.loads(manifest.read_text())
            entry = info["itemInfoEntries"][info["rootModelIdentifier"]]
        except (ValueError, KeyError, TypeError) as e:
            raise MLProgramError(f"{self.path}: unreadable Manifest.json ({e})") from None
        self.model_file = self.path / "Data" / entry["path"]
        self.model_dir = self.model_file.parent
        self._weights: dict[Path, WeightFile] = {}

    @cached_property
    def spec(self):
        from coremltools.proto import Model_pb2  # lazy: heavy optional runtime (coremltools)

        spec = Model_pb2.Model()
        try:
            spec.ParseFromString(self.model_file.read_bytes())
        except Exception as e:  # protobuf DecodeError, a missing file
            raise MLProgramError(f"{self.path}: cannot read its model spec ({e})") from None
        return spec

    def weights(self, file_name: str) -> WeightFile:
        if not file_name.startswith("@model_path/"):
            raise MLProgramError(f"{self.path}: weight file {file_name!r} is not in the package")
        path = self.model_dir / file_name.removeprefix("@model_path/")
        if path not in self._weights:
            self._weights[path] = WeightFile(path)
        return self._weights[path]


class WeightFile:
    """A MILBlob storage file (version 2), memory-mapped."""

    def __init__(self, path: Path):
        if not path.is_file():
            raise MLProgramError(f"weight file missing: {path}")
        self.path = path
        self.data = np.memmap(path, dtype=np.uint8, mode="r")
        _count, version = self.data[:8].view(np.uint32)
        if version != 2:
            raise MLProgramError(f"{path.name}: blob storage version {version}, expected 2")

    def blob(self, offset: int, dtype, shape) -> np.ndarray:
        meta = self.data[offset : offset + 64]
        if len(meta) < 64:
            raise MLProgramError(f"{self.path.name}: no blob at offset {offset} (truncated?)")
        sentinel, blob_dtype = meta[:8].view(np.uint32)
        size, start = meta[8:24].view(np.uint64)
        if sentinel != _SENTINEL:
            raise MLProgramError(f"{self.path.name}: no blob metadata at offset {offset}")
        if _BLOB_DTYPES.get(int(blob_dtype)) != dtype:
            raise UnsupportedOpError(
                f"{self.path.name}: blob at {offset} stores dtype code {int(blob_dtype)}, the "
                f"program declares {np.dtype(dtype).name}"
            )
        raw = self.data[int(start) : int(start) + int(size)]
        if len(raw) != int(size):
            raise MLProgramError(f"{self.path.name}: blob at {offset} is truncated")
        out = np.frombuffer(raw.tobytes(), dtype=dtype)
        if out.size != int(np.prod(shape)):
            raise MLProgramError(
                f"{self.path.name}: blob at {offset} holds {out.size} values, its type {shape}"
            )
        return out.reshape(shape)


def tensor_type(value_type) -> tuple[str, list[int | None]]:
    """A ValueType's tensorType -> (dtype name, shape with None for unknown dimensions)."""
    which = value_type.WhichOneof("type")
    if which != "tensorType":
        raise UnsupportedOpError(f"values of type {which} are not in the evaluator's set")
    t = value_type.tensorType
    dtype = _proto().DataType.Name(t.dataType)
    dims = [
        d.constant.size if d.WhichOneof("dimension") == "constant" else None for d in t.dimensions
    ]
    return dtype, dims


def numpy_dtype(name: str):
    if name in _STRING_NAMES:
        return str
    if name not in DTYPES:
        raise UnsupportedOpError(f"MIL dtype {name} is not in the evaluator's set")
    return DTYPES[name]


def read_value(value, files: PackageFiles):
    """A MIL Value (immediate or blob file) -> numpy array (str for strings; a list for tuples)."""
    kind = value.WhichOneof("value")
    if kind == "blobFileValue":
        dtype, shape = tensor_type(value.type)
        if None in shape:
            raise MLProgramError(f"a weight of unknown shape {shape}")
        blob = value.blobFileValue
        return files.weights(blob.fileName).blob(blob.offset, numpy_dtype(dtype), shape)
    if kind != "immediateValue":
        raise MLProgramError(f"a value with no content ({kind})")
    imm = value.immediateValue
    which = imm.WhichOneof("value")
    if which == "tuple":
        return [read_value(v, files) for v in imm.tuple.values]
    if which != "tensor":
        raise UnsupportedOpError(f"immediate values of kind {which} are not in the evaluator's set")
    dtype, shape = tensor_type(value.type)
    t = imm.tensor
    field = t.WhichOneof("value")
    if dtype == "STRING":
        strings = list(t.strings.values)
        return strings[0] if not shape and len(strings) == 1 else np.array(strings)
    np_dtype = numpy_dtype(dtype)
    if field == "bytes":
        arr = np.frombuffer(t.bytes.values, dtype=np_dtype)
    elif field in ("floats", "ints", "bools", "longInts", "doubles"):
        arr = np.array(list(getattr(t, field).values)).astype(np_dtype)
    else:
        raise UnsupportedOpError(f"immediate {dtype} values stored as {field}")
    if None in shape:
        raise MLProgramError(f"an immediate value of unknown shape {shape}")
    return arr.reshape(shape)
