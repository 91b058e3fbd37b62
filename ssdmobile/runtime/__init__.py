"""Run an exported artifact in its own runtime.

    runner = load_runner("out/model_onnx_fp32.onnx")       # reads and checks the sidecar
    outputs = runner.run(x)                                # x: [N, 3, H, W] preprocessed float
    detections = Predictor(runner)([uint8_image, ...])     # same API as the eager Detector

One module per target in this package (torchscript.py, onnx.py, coreml.py, executorch.py), each with
TARGET, SUFFIXES, `check_file(path)` (is the file what its extension says) and
`load(path, sidecar, threads) -> Runner`; they are discovered like the exporters.

The Predictor preprocesses exactly as the eager Detector does and decodes raw outputs with the same
code: it builds a Detector around the artifact from the sidecar's spec and anchors, so there is one
implementation of preprocess / decode / NMS, not one per runtime.
"""
from __future__ import annotations

import importlib
import os
import pkgutil
from pathlib import Path
from types import ModuleType
from typing import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from ..detector import Detector
from ..errors import SSDMobileError
from ..sidecar import read_sidecar
from ..spec import ModelSpec


class ArtifactError(SSDMobileError):
    """An artifact is missing, truncated, not what its extension says, or does not match its sidecar."""


class RuntimeUnavailable(SSDMobileError):
    """The artifact's runtime cannot run on this machine (Core ML off macOS)."""


def _discover() -> dict[str, ModuleType]:
    found = {}
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            mod = importlib.import_module(f"{__name__}.{info.name}")
            found[mod.TARGET] = mod
    return found


def _runtime_for(path: Path) -> ModuleType:
    for mod in RUNTIMES.values():
        if path.suffix in mod.SUFFIXES:
            return mod
    known = sorted(s for m in RUNTIMES.values() for s in m.SUFFIXES)
    raise ArtifactError(f"{path}: unknown artifact type {path.suffix or '(no extension)'!r}; "
                        f"ssdmobile runs {', '.join(known)}")


class Runner:
    """One loaded artifact. `run` takes the graph input ([N, 3, H, W] float, numpy or torch) and
    returns the graph outputs as torch tensors, in the sidecar's output order. Exported graphs
    have batch 1; larger batches run image by image and are concatenated."""

    target = "?"

    def __init__(self, path: Path, sidecar: dict):
        self.path = path
        self.sidecar = sidecar
        self.input_shape = tuple(sidecar["input"]["shape"])
        self.output_names = [o["name"] for o in sidecar["outputs"]]
        self.nms_in_graph = bool(sidecar["nms"]["in_graph"])

    def _run_one(self, x: Tensor) -> tuple[Tensor, ...]:
        raise NotImplementedError

    def run(self, x) -> tuple[Tensor, ...]:
        x = torch.as_tensor(np.asarray(x) if not isinstance(x, Tensor) else x).float().contiguous()
        if x.dim() != 4 or tuple(x.shape[1:]) != self.input_shape[1:]:
            raise ArtifactError(f"{self.path.name} takes input [N, {', '.join(map(str, self.input_shape[1:]))}], "
                                f"got {list(x.shape)}")
        b = self.input_shape[0]
        if x.shape[0] == b:
            return self._run_one(x)
        parts = [self._run_one(x[i:i + b]) for i in range(0, x.shape[0], b)]
        return tuple(torch.cat(p) for p in zip(*parts))


def _check_sidecar(path: Path, sidecar: dict, target: str) -> None:
    where = f"{path.name}: its sidecar {path.with_suffix('.json').name}"
    if sidecar["target"] != target:
        raise ArtifactError(f"{where} describes a {sidecar['target']} artifact, but the file is {target}")
    if sidecar["artifact"] != path.name:
        raise ArtifactError(f"{where} was written for {sidecar['artifact']}, not this file")
    expected = sidecar.get("artifact_sha256")
    if expected:
        from ..export._common import artifact_sha256

        if artifact_sha256(path) != expected:
            raise ArtifactError(f"{where} does not match the file (sha256 differs): the artifact was "
                                "replaced, modified or truncated after export; export it again")


def load_runner(artifact: str | os.PathLike, threads: int | None = None) -> Runner:
    path = Path(artifact)
    if not path.exists():
        raise ArtifactError(f"artifact not found: {path}")
    mod = _runtime_for(path)
    mod.check_file(path)  # content vs extension, before trusting anything else
    sidecar = read_sidecar(path)
    _check_sidecar(path, sidecar, mod.TARGET)
    return mod.load(path, sidecar, threads)


class _ArtifactCore(nn.Module):
    def __init__(self, runner: Runner):
        super().__init__()
        self.runner = runner

    def forward(self, x: Tensor):
        return self.runner.run(x)


def spec_from_sidecar(sidecar: dict) -> ModelSpec:
    return ModelSpec.from_dict(sidecar["spec"])


class Predictor:
    """uint8 [3, H, W] images -> torchvision-style detections, through the artifact: the same
    preprocessing, decode and NMS code as the eager Detector (which it is, around the artifact).
    With NMS in the graph, the graph's fixed-size detections are cut at num_detections and scaled
    to each image's pixels instead."""

    def __init__(self, runner: Runner):
        self.runner = runner
        anchors = torch.tensor(runner.sidecar["decode"]["anchors"], dtype=torch.float32)
        self.detector = Detector(_ArtifactCore(runner), anchors, spec_from_sidecar(runner.sidecar)).eval()

    @property
    def spec(self) -> ModelSpec:
        return self.detector.spec

    def preprocess(self, images: Sequence[Tensor]) -> Tensor:
        return self.detector.preprocess(images)

    @torch.no_grad()
    def __call__(self, images: Sequence[Tensor]) -> list[dict]:
        sizes = [tuple(img.shape[-2:]) for img in images]
        return self.detections(self.runner.run(self.preprocess(images)), sizes)

    @torch.no_grad()
    def detections(self, outputs: Sequence[Tensor], sizes: Sequence[tuple[int, int]]) -> list[dict]:
        """The artifact's outputs -> detections in each original image's pixels (sizes are (H, W)):
        decode + NMS exactly as the eager Detector for raw outputs; with NMS in the graph, the
        fixed-size rows are cut at num_detections and scaled."""
        if not self.runner.nms_in_graph:
            return self.detector.nms(*self.detector.decode(*outputs), sizes)
        boxes, scores, labels, num = outputs
        results = []
        for i, (h, w) in enumerate(sizes):
            k = int(num[i])
            scale = torch.tensor([w, h, w, h], dtype=torch.float32)
            results.append({"boxes": boxes[i, :k].float() * scale, "scores": scores[i, :k].float(),
                            "labels": labels[i, :k].long()})
        return results


def load_predictor(artifact: str | os.PathLike, threads: int | None = None) -> Predictor:
    return Predictor(load_runner(artifact, threads))


def evaluate_artifact(artifact: str | os.PathLike, dataset, classes=None, threads: int | None = None,
                      progress: bool = True):
    """COCO AP of an artifact run in its own runtime, computed exactly as for the eager model
    (ssdmobile.evaluate on the same dataset, same preprocessing code). For `ssdmobile eval --artifact`."""
    from ..evaluate import coco_eval, predict_dataset

    predictor = load_predictor(artifact, threads)
    predictions = predict_dataset(predictor, dataset, batch_size=1, progress=progress)
    return coco_eval(dataset, predictions, predictor.spec.class_names, classes=classes)


# after the definitions above, which the runtime modules import
RUNTIMES: dict[str, ModuleType] = _discover()

__all__ = ["ArtifactError", "RuntimeUnavailable", "Runner", "Predictor", "RUNTIMES", "load_runner",
           "load_predictor", "evaluate_artifact", "spec_from_sidecar"]
