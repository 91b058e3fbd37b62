"""ExecuTorch: torch.export, then `to_edge_transform_and_lower` with the XnnpackPartitioner, saved
as a `.pte` that `executorch.runtime` (and the Android app) runs. With nms, the fixed-shape tensor
NMS of _tensor_nms.py is in the program (ExecuTorch has no NMS kernel); the ops XNNPACK does
not take run on ExecuTorch's portable kernels. How much of the program XNNPACK took is measured
(ExecuTorch's devtools) and recorded in the sidecar ("executorch.delegation")."""

from __future__ import annotations

import torch

from ._common import (
    Artifact,
    ExportError,
    ExportRequest,
    artifact_stem,
    atomic_output,
    declared_outputs,
    example_input,
    make_sidecar,
)
from ._pixels import PixelsNHWC
from ._tensor_nms import traceable

TARGET = "executorch"
SUFFIX = ".pte"
RUNTIME = "executorch.runtime (XNNPACK delegate)"


def delegation_summary(edge_program) -> dict:
    """Ops delegated to XNNPACK vs left to ExecuTorch's portable kernels (`getitem`, which only
    unpacks a delegate's outputs, is not an op)."""
    # lazy: heavy optional runtime
    from executorch.devtools.backend_debug import get_delegation_info

    info = get_delegation_info(edge_program.exported_program().graph_module)
    outside = {
        op: b.non_delegated
        for op, b in info.delegation_by_operator.items()
        if b.non_delegated and op != "getitem"
    }
    return {
        "delegated_ops": info.num_delegated_nodes,
        "non_delegated_ops": sum(outside.values()),
        "delegated_subgraphs": info.num_delegated_subgraphs,
        "non_delegated_by_op": dict(sorted(outside.items())),
    }


def lower(module: torch.nn.Module, inputs: tuple, **kwargs):
    """torch.export (non-strict), then ExecuTorch's edge program with the XNNPACK partitioner: what
    every .pte here is made of (`kwargs` go to to_edge_transform_and_lower,
    e.g. generate_etrecord)."""
    # lazy: heavy optional runtime
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner

    # lazy: heavy optional runtime (executorch)
    from executorch.exir import to_edge_transform_and_lower

    with torch.no_grad():
        exported = torch.export.export(module, inputs, strict=False)
    return to_edge_transform_and_lower(exported, partitioner=[XnnpackPartitioner()], **kwargs)


def export(detector, req: ExportRequest) -> list[Artifact]:
    module = traceable(detector, req.nms)
    x = example_input(detector)
    layout, dtype, extra = "NCHW", "float32", {}
    if req.pixel_input is not None:  # the detector's core takes pixels (export/_pixels.py)
        module = PixelsNHWC(module).eval()
        h, w = detector.spec.preprocess.size
        g = torch.Generator().manual_seed(0)
        x = torch.randint(0, 256, (1, h, w, 3), generator=g, dtype=torch.uint8)
        layout, dtype, extra = "NHWC", "uint8", {"pixel_input": req.pixel_input}
    try:
        edge = lower(module, (x,))
        delegation = delegation_summary(edge)
        program = edge.to_executorch()
    except Exception as e:  # the lowering's own errors are long; keep the first line
        raise ExportError(
            f"ExecuTorch lowering failed: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
        ) from e
    final = req.out_dir / f"{artifact_stem(detector.spec.name, TARGET, req)}{SUFFIX}"
    with atomic_output(final) as pending:
        with open(pending.path, "wb") as f:
            program.write_to_file(f)
        make_sidecar(
            detector,
            pending,
            final,
            req,
            target=TARGET,
            input_name="input",
            input_shape=list(x.shape),
            input_layout=layout,
            input_dtype=dtype,
            outputs=declared_outputs(detector, req.nms),
            extra={"runtime": RUNTIME, "executorch": {"delegation": delegation, **extra}},
        )
    return [Artifact(final, TARGET, req.precision, req.nms, RUNTIME)]
