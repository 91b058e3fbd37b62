"""Core ML `.mlpackage`: Core ML's `predict` exists only on macOS. Elsewhere loading gives one
typed error; `check_spec` validates the converted spec against its sidecar instead."""

from __future__ import annotations

import platform
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from ..errors import ArtifactError, RuntimeUnavailable
from ..sidecar import Sidecar, load_sidecar, to_sidecar
from ._base import Runner


def check_file(path: Path) -> None:
    if not path.is_dir() or not (path / "Manifest.json").is_file():
        raise ArtifactError(
            f"{path}: not a Core ML package (an .mlpackage is a directory with Manifest.json)"
        )


class CoreMLRunner(Runner):
    def __init__(self, path: Path, sidecar: Sidecar, threads: int | None):
        super().__init__(path, sidecar)
        import coremltools as ct  # lazy: heavy optional runtime (coremltools)

        self.model = ct.models.MLModel(str(path), compute_units=ct.ComputeUnit.CPU_ONLY)

    def _run_one(self, x: Tensor) -> tuple[Tensor, ...]:  # pragma: no cover - macOS only
        # the package takes an image and normalizes in the graph: undo the host normalization
        p = self.sidecar.preprocess
        mean, std = np.array(p.mean).reshape(3, 1, 1), np.array(p.std).reshape(3, 1, 1)
        pixels = ((x[0].numpy() * std + mean) * 255.0).round().clip(0, 255).astype(np.uint8)
        out = self.model.predict(
            {self.sidecar.input.name: Image.fromarray(pixels.transpose(1, 2, 0))}
        )
        return tuple(torch.from_numpy(np.asarray(out[n])) for n in self.output_names)


def load(path: Path, sidecar: Sidecar, threads: int | None = None) -> Runner:
    if platform.system() != "Darwin":
        raise RuntimeUnavailable(
            f"{path.name}: Core ML runs only on macOS/iOS (coremltools' predict needs the Core ML "
            "framework); here its spec is checked instead, and its drift is measured by "
            "`ssdmobile validate` on a Mac"
        )
    return CoreMLRunner(path, sidecar, threads)  # pragma: no cover - macOS only


def check_spec(path: str | Path, sidecar: Sidecar | dict | None = None) -> dict:
    """Validate a saved .mlpackage against its sidecar without running it (works on Linux): what
    validate measures instead of drift where Core ML cannot run. Returns a summary dict; raises
    ArtifactError naming the first thing that is wrong."""
    # lazy: heavy optional runtime (coremltools), only for Core ML packages
    import coremltools as ct

    path = Path(path)
    sidecar = (
        load_sidecar(path) if sidecar is None else to_sidecar(sidecar, f"sidecar of {path.name}")
    )
    spec = ct.utils.load_spec(str(path))
    desc = spec.description
    inputs = {i.name: i for i in desc.input}
    outputs = [o.name for o in desc.output]
    h, w = sidecar.preprocess.size

    def fail(msg):
        raise ArtifactError(f"{path.name}: {msg}")

    name = sidecar.input.name
    if name not in inputs or inputs[name].type.WhichOneof("Type") != "imageType":
        fail(f"no image input named {name!r}")
    img = inputs[name].type.imageType
    if (img.height, img.width) != (h, w):
        fail(f"image input is {img.width}x{img.height}, sidecar says {w}x{h}")
    if img.colorSpace != ct.proto.FeatureTypes_pb2.ImageFeatureType.RGB:
        fail("image input is not RGB")
    expected_out = [o.name for o in sidecar.outputs]
    if outputs != expected_out:
        fail(f"outputs {outputs}, sidecar says {expected_out}")
    md = dict(desc.metadata.userDefined)
    if (
        md.get("ssdmobile.model") != sidecar.model
        or md.get("ssdmobile.precision") != sidecar.precision
    ):
        fail("metadata does not name the sidecar's model and precision")
    kind = spec.WhichOneof("Type")
    programs = (
        [spec]
        if kind == "mlProgram"
        else [m for m in spec.pipeline.models if m.WhichOneof("Type") == "mlProgram"]
    )
    if not programs:
        fail("no ML Program inside")
    summary = {
        "type": kind,
        "inputs": list(inputs),
        "outputs": outputs,
        "image": [w, h],
        "precision": _program_precision(programs[0]),
        "nms": None,
    }
    if summary["precision"] != sidecar.precision:
        fail(f"weights are {summary['precision']}, sidecar says {sidecar.precision}")
    if sidecar.nms.in_graph:
        if kind != "pipeline":
            fail("NMS requested but the model is not a pipeline")
        last = spec.pipeline.models[-1]
        if last.WhichOneof("Type") != "nonMaximumSuppression":
            fail("the pipeline does not end in Core ML's NonMaximumSuppression model")
        nms = last.nonMaximumSuppression
        feeds = {
            o.name: list(o.type.multiArrayType.shape)
            for o in spec.pipeline.models[0].description.output
        }
        num_anchors, num_fg = len(sidecar.decode.anchors), len(sidecar.class_names) - 1
        if feeds.get(nms.confidenceInputFeatureName) != [num_anchors, num_fg] or feeds.get(
            nms.coordinatesInputFeatureName
        ) != [num_anchors, 4]:
            fail(
                f"the decoder feeds NMS {feeds}, expected [{num_anchors}, {num_fg}] scores and "
                f"[{num_anchors}, 4] boxes"
            )
        labels = list(nms.stringClassLabels.vector)
        if labels != sidecar.class_names[1:]:
            fail(f"NMS class labels {labels[:3]}... differ from the sidecar's class_names[1:]")
        if (
            abs(nms.iouThreshold - sidecar.nms.iou_thresh) > 1e-9
            or abs(nms.confidenceThreshold - sidecar.nms.score_thresh) > 1e-9
        ):
            fail("NMS thresholds differ from the sidecar's")
        summary["nms"] = {
            "iou": nms.iouThreshold,
            "confidence": nms.confidenceThreshold,
            "per_class": nms.pickTop.perClass,
            "labels": len(labels),
        }
    return summary


def _program_precision(model_spec) -> str:
    """int8 when conv weights are stored as int8 constexpr (de)quantize ops (coremltools.optimize),
    else fp16 when they are stored as fp16, else fp32."""
    text = str(model_spec.mlProgram)[:2_000_000]
    if "constexpr_blockwise_shift_scale" in text or "constexpr_affine_dequantize" in text:
        return "int8"
    return "fp16" if "FLOAT16" in text else "fp32"
