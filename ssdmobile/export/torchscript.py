"""TorchScript: a traced module, saved as full TorchScript (`.pt`, torch.jit.load) and for the
lite interpreter (`_lite.ptl`, PyTorch Mobile): two artifacts, each with its sidecar. With nms,
the fixed-shape tensor NMS of _tensor_nms.py is traced into the graph (TorchScript has no native
detection NMS op that the lite interpreter runs on every platform)."""

from __future__ import annotations

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
    for final, runtime, save in (
        (req.out_dir / f"{stem}{SUFFIX}", RUNTIME, traced.save),
        (
            req.out_dir / f"{stem}_lite{LITE_SUFFIX}",
            LITE_RUNTIME,
            traced._save_for_lite_interpreter,
        ),
    ):
        with atomic_output(final) as pending:
            save(str(pending.path))
            make_sidecar(detector, pending, final, req, **common, extra={"runtime": runtime})
        written.append(Artifact(final, TARGET, req.precision, req.nms, runtime))
    return written
