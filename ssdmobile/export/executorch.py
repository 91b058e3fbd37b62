"""ExecuTorch: torch.export, then `to_edge_transform_and_lower` with the XnnpackPartitioner, saved
as a `.pte` that `executorch.runtime` (and the Android app) runs. With nms, the fixed-shape tensor
NMS of _tensor_nms.py is in the program (ExecuTorch has no NMS kernel); the ops XNNPACK does
not take run on ExecuTorch's portable kernels."""
from __future__ import annotations

from pathlib import Path

import torch

from ._common import ExportError, artifact_stem, atomic_output, declared_outputs, example_input, make_sidecar
from ._tensor_nms import traceable

TARGET = "executorch"
SUFFIX = ".pte"
PRECISIONS = ("fp32",)
DEFAULT_PRECISION = "fp32"


def export(detector, precision: str, out_dir: Path, nms: bool = False) -> Path:
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    spec = detector.spec
    module = traceable(detector, nms)
    x = example_input(detector)
    try:
        with torch.no_grad():
            exported = torch.export.export(module, (x,), strict=False)
        program = to_edge_transform_and_lower(exported, partitioner=[XnnpackPartitioner()]).to_executorch()
    except Exception as e:  # the lowering's own errors are long; keep the first line
        raise ExportError(f"ExecuTorch lowering failed: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from e
    outputs = declared_outputs(detector, nms)
    final = out_dir / f"{artifact_stem(spec.name, TARGET, precision, nms)}{SUFFIX}"
    with atomic_output(final) as pending:
        with open(pending.path, "wb") as f:
            program.write_to_file(f)
        make_sidecar(detector, pending, final, target=TARGET, precision=precision, input_name="input",
                     input_shape=list(x.shape), outputs=outputs, nms_in_graph=nms,
                     extra={"runtime": "executorch.runtime (XNNPACK delegate)"})
    return final
