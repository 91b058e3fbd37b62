"""Core ML `.mlpackage`: Core ML's `predict` on macOS; elsewhere the ML Program reference
evaluator (ssdmobile.mlprogram) computes what the saved program says, op by op: not the Core ML
runtime, so no latency. `check_spec` validates the converted spec against its sidecar.

With NMS in the graph (a pipeline ending in Core ML's NonMaximumSuppression model) both runners
turn its outputs into the graph-NMS layout every runner returns (boxes, scores, labels, count):
as Vision and the iOS app read them, a row's label is its best column, named by the NMS model's
class labels and looked up in the sidecar's class_names; rows beyond the sidecar's
max_detections are cut."""

from __future__ import annotations

import platform
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from ..errors import ArtifactError
from ..mlprogram import load_package
from ..sidecar import Sidecar, load_sidecar, to_sidecar
from ._base import Runner


def check_file(path: Path) -> None:
    if not path.is_dir() or not (path / "Manifest.json").is_file():
        raise ArtifactError(
            f"{path}: not a Core ML package (an .mlpackage is a directory with Manifest.json)"
        )


REFERENCE = "ML Program reference (not the Core ML runtime; latency on a Mac or device)"


class CoreMLRunner(Runner):
    reference = False  # True: what runs is not the artifact's own runtime (no latency)

    def __init__(self, path: Path, sidecar: Sidecar, threads: int | None):
        super().__init__(path, sidecar)
        import coremltools as ct  # lazy: heavy optional runtime (coremltools)

        self.model = ct.models.MLModel(str(path), compute_units=ct.ComputeUnit.CPU_ONLY)
        self.class_labels = _nms_labels(ct.utils.load_spec(str(path)))

    def _predict(self, pixels: np.ndarray) -> dict:  # pragma: no cover - macOS only
        image = Image.fromarray(pixels.round().clip(0, 255).astype(np.uint8))  # 8-bit, as Vision
        return self.model.predict({self.sidecar.input.name: image})

    def _run_one(self, x: Tensor) -> tuple[Tensor, ...]:
        # the package takes an image and normalizes in the graph: undo the host normalization
        p = self.sidecar.preprocess
        mean, std = np.array(p.mean).reshape(3, 1, 1), np.array(p.std).reshape(3, 1, 1)
        pixels = ((x[0].numpy() * std + mean) * 255.0).astype(np.float32)
        out = self._predict(np.ascontiguousarray(pixels.transpose(1, 2, 0)))
        if self.nms_in_graph:
            return self._detections(*(np.asarray(out[n]) for n in self.output_names))
        return tuple(torch.from_numpy(np.asarray(out[n])) for n in self.output_names)

    def _detections(self, confidence: np.ndarray, coordinates: np.ndarray):
        """Core ML NMS outputs -> (boxes [1, K, 4] normalized x1y1x2y2, scores, labels, count)."""
        names = self.sidecar.class_names
        missing = [c for c in self.class_labels if c not in names]
        if missing or len(self.class_labels) != confidence.shape[1]:
            raise ArtifactError(
                f"{self.path.name}: the NMS model's class labels {self.class_labels[:4]}... do "
                f"not name {confidence.shape[1]} of the sidecar's class_names"
            )
        # a column's label names its class; where names repeat (torchvision's COCO list has ten
        # 'N/A'), the column's own position in class_names[1:] decides, not the first such name
        index = np.array(
            [
                c + 1 if c + 1 < len(names) and names[c + 1] == label else names.index(label)
                for c, label in enumerate(self.class_labels)
            ],
            dtype=np.int64,
        )
        k = min(len(confidence), self.sidecar.nms.max_detections)
        best = confidence[:k].argmax(axis=1) if k else np.zeros(0, dtype=np.int64)
        labels = index[best]
        scores = confidence[:k].max(axis=1) if k else np.zeros(0, dtype=np.float32)
        c = coordinates[:k].astype(np.float32)
        boxes = np.concatenate([c[:, :2] - c[:, 2:] / 2, c[:, :2] + c[:, 2:] / 2], axis=1)
        return (
            torch.from_numpy(boxes)[None],
            torch.from_numpy(scores.astype(np.float32))[None],
            torch.from_numpy(labels)[None],
            torch.tensor([k]),
        )


class ReferenceRunner(CoreMLRunner):
    """The saved package evaluated by ssdmobile.mlprogram (any OS)."""

    reference = True
    label = REFERENCE

    def __init__(self, path: Path, sidecar: Sidecar, threads: int | None):
        Runner.__init__(self, path, sidecar)
        self.package = load_package(path)
        self.class_labels = [str(c) for c in self.package.class_labels]

    def _predict(self, pixels: np.ndarray) -> dict:
        # the image input gets the very pixels the float model saw, not rounded to 8 bits (which
        # Core ML's image type would do, moving raw outputs by a few 1e-3): the drift measured
        # is the program's own, as for every other target
        return self.package.predict({self.sidecar.input.name: pixels})


def _nms_labels(spec) -> list[str]:  # pragma: no cover - macOS only
    models = spec.pipeline.models if spec.WhichOneof("Type") == "pipeline" else [spec]
    nms = [
        m.nonMaximumSuppression for m in models if m.WhichOneof("Type") == "nonMaximumSuppression"
    ]
    return list(nms[0].stringClassLabels.vector) if nms else []


def load(path: Path, sidecar: Sidecar, threads: int | None = None) -> Runner:
    """Core ML itself on macOS; elsewhere the ML Program reference evaluator."""
    if platform.system() != "Darwin":
        return ReferenceRunner(path, sidecar, threads)
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
