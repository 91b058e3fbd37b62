"""ONNX and ORT format (ORT Mobile's .ort) with onnxruntime (CPU execution provider)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..errors import ArtifactError
from ..sidecar import Sidecar
from ._base import Runner


def check_file(path: Path) -> None:
    import onnx  # lazy: heavy optional runtime (onnx), only for .onnx files

    if not path.is_file():
        raise ArtifactError(f"{path}: not a file")
    if path.suffix == ".ort":
        # an ORT format file is a flatbuffer whose file identifier, bytes 4-8, is "ORTM"
        # (onnxruntime/core/flatbuffers/schema/ort.fbs)
        with path.open("rb") as f:
            head = f.read(8)
        if head[4:8] != b"ORTM":
            raise ArtifactError(
                f"{path}: not an ORT format model (no ORTM identifier); truncated, or not what its "
                f"extension says"
            )
        return
    try:
        model = onnx.load_model(str(path), load_external_data=False)
    except Exception as e:  # protobuf DecodeError and friends
        raise ArtifactError(
            f"{path}: not an ONNX model, or truncated ({type(e).__name__})"
        ) from None
    if not model.graph.node:
        raise ArtifactError(
            f"{path}: not an ONNX model (no graph); truncated, or not what its extension says"
        )


class OnnxRunner(Runner):
    def __init__(self, path: Path, sidecar: Sidecar, threads: int | None):
        super().__init__(path, sidecar)
        import onnxruntime as ort  # lazy: heavy optional runtime (onnxruntime)

        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        # no busy-waiting between runs: spinning pool threads steal the cores from whatever runs
        # next (another runtime in the same process during validate, the app's UI thread on a phone)
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if path.suffix == ".ort":
            # ssdmobile's .ort files carry the CPU EP's int8 fusions as saved runtime optimizations
            # (export/_ort_mobile.py); onnxruntime replays them only when asked. load_runner has
            # checked that the file is the one its sidecar was written for.
            opts.add_session_config_entry("session.enable_saved_runtime_optimizations", "1")
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as e:
            raise ArtifactError(
                f"{path}: onnxruntime cannot load it ({str(e).splitlines()[0][:200]})"
            ) from None
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        shape = list(inp.shape)
        if len(shape) != len(self.input_shape) or any(
            isinstance(a, int) and a != b for a, b in zip(shape, self.input_shape)
        ):
            raise ArtifactError(
                f"{path.name}: graph input {shape} does not match its sidecar's "
                f"{list(self.input_shape)}"
            )
        names = [o.name for o in self.session.get_outputs()]
        if names != self.output_names:
            raise ArtifactError(
                f"{path.name}: graph outputs {names} do not match its sidecar's {self.output_names}"
            )

    def _run_one(self, x: Tensor) -> tuple[Tensor, ...]:
        out = self.session.run(None, {self.input_name: x.numpy().astype(np.float32, copy=False)})
        return tuple(torch.from_numpy(np.ascontiguousarray(o)) for o in out)


def load(path: Path, sidecar: Sidecar, threads: int | None = None) -> Runner:
    return OnnxRunner(path, sidecar, threads)
