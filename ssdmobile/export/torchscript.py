"""TorchScript: a traced module, saved as full TorchScript (`.pt`, torch.jit.load) and for the
lite interpreter (`_lite.ptl`, PyTorch Mobile): two artifacts, each with its sidecar. With nms,
the fixed-shape tensor NMS of _tensor_nms.py is traced into the graph (TorchScript has no native
detection NMS op that the lite interpreter runs on every platform)."""

from __future__ import annotations

import io

import torch

from ._common import (
    Artifact,
    ExportRequest,
    artifact_stem,
    atomic_output,
    declared_outputs,
    example_input,
    make_sidecar,
)
from ._tensor_nms import traceable

TARGET = "torchscript"
SUFFIX = ".pt"
LITE_SUFFIX = ".ptl"
RUNTIME = "torch.jit.load"
LITE_RUNTIME = "lite interpreter (torch.jit.mobile)"


def export(detector, req: ExportRequest) -> list[Artifact]:
    module = traceable(detector, req.nms)
    x = example_input(detector)
    with torch.no_grad():
        traced = torch.jit.trace(module, x, check_trace=False)
        traced = torch.jit.freeze(traced.eval())
    stem = artifact_stem(detector.spec.name, TARGET, req)
    common = dict(
        target=TARGET,
        input_name="input",
        input_shape=list(x.shape),
        outputs=declared_outputs(detector, req.nms),
    )
    written = []
    # serialized in memory, written by Python: torch's file writer aborts the process on a full
    # disk (see fileio.atomic_write_bytes), Python's write raises an error ssdmobile can tell
    for final, runtime, serialize in (
        (req.out_dir / f"{stem}{SUFFIX}", RUNTIME, lambda: _jit_bytes(traced)),
        (
            req.out_dir / f"{stem}_lite{LITE_SUFFIX}",
            LITE_RUNTIME,
            traced._save_to_buffer_for_lite_interpreter,
        ),
    ):
        with atomic_output(final) as pending:
            pending.path.write_bytes(serialize())
            make_sidecar(detector, pending, final, req, **common, extra={"runtime": runtime})
        written.append(Artifact(final, TARGET, req.precision, req.nms, runtime))
    return written


def _jit_bytes(module) -> bytes:
    buffer = io.BytesIO()
    torch.jit.save(module, buffer)
    return buffer.getvalue()
