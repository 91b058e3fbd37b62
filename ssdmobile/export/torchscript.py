"""TorchScript: a traced module, saved as full TorchScript (`.pt`, torch.jit.load) and for the
lite interpreter (`_lite.ptl`, PyTorch Mobile). With nms, the fixed-shape tensor NMS of
_tensor_nms.py is traced into the graph (TorchScript has no native detection NMS op that the lite
interpreter runs on every platform)."""
from __future__ import annotations

from pathlib import Path

import torch

from ._common import artifact_stem, atomic_output, declared_outputs, example_input, make_sidecar
from ._tensor_nms import traceable

TARGET = "torchscript"
SUFFIX = ".pt"
LITE_SUFFIX = ".ptl"
PRECISIONS = ("fp32",)
DEFAULT_PRECISION = "fp32"


def export(detector, precision: str, out_dir: Path, nms: bool = False) -> Path:
    spec = detector.spec
    module = traceable(detector, nms)
    x = example_input(detector)
    with torch.no_grad():
        traced = torch.jit.trace(module, x, check_trace=False)
        traced = torch.jit.freeze(traced.eval()) if not nms else traced
    outputs = declared_outputs(detector, nms)
    stem = artifact_stem(spec.name, TARGET, precision, nms)
    final = out_dir / f"{stem}{SUFFIX}"
    lite_final = out_dir / f"{stem}_lite{LITE_SUFFIX}"
    common = dict(target=TARGET, precision=precision, input_name="input", input_shape=list(x.shape),
                  outputs=outputs, nms_in_graph=nms)
    with atomic_output(final) as pending:
        traced.save(str(pending.path))
        make_sidecar(detector, pending, final, **common, extra={"runtime": "torch.jit.load"})
    with atomic_output(lite_final) as pending:
        traced._save_for_lite_interpreter(str(pending.path))
        make_sidecar(detector, pending, lite_final, **common,
                     extra={"runtime": "lite interpreter (torch.jit.mobile)"})
    return final
