"""What every exporter shares: the request it gets, the artifacts it returns, naming, atomic
writes, the traced modules (raw core, or core + decode for a native NMS) and the sidecar."""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from ..errors import ExportError
from ..fileio import (
    discard,
    fsync_path,
    replace_path,
    sha256_file as artifact_sha256,  # files and .mlpackage directories
    write_fault,
)
from ..ops.boxes import class_scores, decode_boxes
from ..sidecar import Input, Sidecar, build_sidecar, sidecar_path, write_sidecar


@dataclass(frozen=True)
class ExportRequest:
    """What an exporter is asked for. `detector` may already be quantized (its core converted by
    ssdmobile.quant); `quantization` is then the record its sidecar carries."""

    precision: str
    out_dir: Path
    nms: bool = False
    tag: str = ""  # appended to the file stem of a variant: "_qat", "_fallback3"
    quantization: dict | None = None
    # camera bytes in (export/_pixels.py): the detector's core takes pixels; what was folded
    pixel_input: dict | None = None


@dataclass(frozen=True)
class Artifact:
    """One file (or .mlpackage directory) an export wrote, with its sidecar beside it."""

    path: Path
    target: str
    precision: str
    nms: bool
    runtime: str  # what runs it: "executorch.runtime (XNNPACK delegate)", "lite interpreter"...

    @property
    def sidecar(self) -> Path:
        return sidecar_path(self.path)

    @property
    def label(self) -> str:
        kind = "_lite" if self.path.suffix == ".ptl" else ""
        return f"{self.target}{kind}{' +nms' if self.nms else ''} {self.precision}"


def artifact_stem(model_name: str, target: str, req: ExportRequest) -> str:
    # the target is part of the name: sidecars are <stem>.json and targets share a directory
    return f"{model_name}_{target}_{req.precision}{'_nms' if req.nms else ''}{req.tag}"


class Pending:
    """The temporary path an exporter writes to, and the sidecar it means to write beside it."""

    def __init__(self, path: Path):
        self.path = path
        self.sidecar: Sidecar | None = None


@contextlib.contextmanager
def atomic_output(final: Path):
    """Yield a Pending whose `.path` is a temporary name beside `final` (same suffix, so writers
    that check the extension are happy). On success the artifact replaces `final`, then its sidecar
    is written; on any error the temporary is removed. A crash never leaves a half written file or
    directory under the final name."""
    try:
        fd, tmp = tempfile.mkstemp(
            prefix=f".{final.stem}.", suffix=f".tmp{final.suffix}", dir=final.parent
        )
    except OSError as e:
        raise (write_fault(e, final) or e) from None
    os.close(fd)
    pending = Pending(Path(tmp))
    pending.path.unlink()  # writers create it themselves (a file, or a directory for .mlpackage)
    try:
        yield pending
        tmp = pending.path
        if not tmp.exists():
            raise ExportError(f"exporter wrote nothing for {final.name}")
        if tmp.is_file():
            fsync_path(tmp)
        replace_path(tmp, final)
    except BaseException as e:
        discard(pending.path)
        fault = write_fault(e, final)  # a full disk, a folder gone read-only: one line
        if fault is not None:
            raise fault from None
        raise
    if pending.sidecar is not None:
        try:
            write_sidecar(sidecar_path(final), pending.sidecar)
        except BaseException:
            discard(final)  # an artifact without its sidecar is not complete
            raise


# -- what gets traced -----------------------------------------------------------------------------


class RawCore(nn.Module):
    """image tensor -> (box_encodings [N, A, 4], class_logits [N, A, C]): the detector's core."""

    def __init__(self, detector):
        super().__init__()
        self.core = detector.core

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        box_encodings, class_logits = self.core(x)
        return box_encodings, class_logits


class DecodedBoxes(nn.Module):
    """image tensor -> (boxes [N, A, 4] normalized xyxy clamped to [0, 1], scores [N, A, C-1]
    foreground only): what a native NMS consumes. Same decode as Detector.decode + nms_per_class."""

    def __init__(self, detector):
        super().__init__()
        self.core = detector.core
        self.register_buffer("anchors", detector.anchors.clone())
        self.coder = detector.spec.box_coder
        self.score = detector.spec.postprocess.score

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        box_encodings, class_logits = self.core(x)
        boxes = decode_boxes(box_encodings, self.anchors, self.coder).clamp(0.0, 1.0)
        return boxes, class_scores(class_logits, self.score)[..., 1:]


def raw_outputs(num_anchors: int, num_classes: int, batch: int = 1) -> list[dict]:
    return [
        {
            "name": "box_encodings",
            "shape": [batch, num_anchors, 4],
            "dtype": "float32",
            "meaning": "box regression per anchor, decode with decode.anchors and decode.box_coder",
        },
        {
            "name": "class_logits",
            "shape": [batch, num_anchors, num_classes],
            "dtype": "float32",
            "meaning": (
                "class logits per anchor (column 0 background); scores = decode.score of these"
            ),
        },
    ]


def nms_outputs(max_detections: int, batch: int = 1, labels_dtype: str = "int64") -> list[dict]:
    return [
        {
            "name": "boxes",
            "shape": [batch, max_detections, 4],
            "dtype": "float32",
            "meaning": "x1, y1, x2, y2 normalized to [0, 1]; rows >= num_detections are padding",
        },
        {
            "name": "scores",
            "shape": [batch, max_detections],
            "dtype": "float32",
            "meaning": "descending; rows >= num_detections are padding",
        },
        {
            "name": "labels",
            "shape": [batch, max_detections],
            "dtype": labels_dtype,
            "meaning": "index into class_names (never 0, the background)",
        },
        {
            "name": "num_detections",
            "shape": [batch],
            "dtype": labels_dtype,
            "meaning": "number of valid rows",
        },
    ]


def declared_outputs(detector, nms: bool) -> list[dict]:
    """The sidecar's "outputs": fixed-size detections with NMS in the
    graph, else the raw core outputs."""
    spec = detector.spec
    return (
        nms_outputs(spec.postprocess.max_detections)
        if nms
        else raw_outputs(detector.anchors.shape[0], spec.num_classes)
    )


def example_input(detector, batch: int = 1) -> Tensor:
    h, w = detector.spec.preprocess.size
    g = torch.Generator().manual_seed(0)
    return torch.rand(batch, 3, h, w, generator=g) * 2 - 1


def checkpoint_info(detector) -> dict | None:
    return detector.weights.to_dict() if detector.weights is not None else None


def make_sidecar(
    detector,
    pending: Pending,
    final: Path,
    req: ExportRequest,
    *,
    target: str,
    input_name: str,
    input_shape,
    outputs: list[dict],
    input_layout: str = "NCHW",
    input_dtype: str = "float32",
    extra: dict | None = None,
) -> Sidecar:
    """The sidecar of the artifact written at `pending.path` (final name `final`); atomic_output
    writes it beside the final name once the artifact is in place."""
    pending.sidecar = build_sidecar(
        detector.spec,
        detector.anchors,
        target=target,
        precision=req.precision,
        artifact=final.name,
        input=Input(
            name=input_name,
            shape=list(input_shape),
            layout=input_layout,
            dtype=input_dtype,
            color="RGB",
        ),
        outputs=outputs,
        nms_in_graph=req.nms,
        quantization=req.quantization,
        checkpoint=checkpoint_info(detector),
        extra={"artifact_sha256": artifact_sha256(pending.path), **(extra or {})},
    )
    return pending.sidecar
