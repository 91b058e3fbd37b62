"""Core ML `.mlpackage`: Core ML's `predict` exists only on macOS. Elsewhere loading gives one
typed error; `ssdmobile.export.coreml.check_spec` validates the converted spec instead."""
from __future__ import annotations

import platform
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from . import ArtifactError, Runner, RuntimeUnavailable

TARGET = "coreml"
SUFFIXES = (".mlpackage",)


def check_file(path: Path) -> None:
    if not path.is_dir() or not (path / "Manifest.json").is_file():
        raise ArtifactError(f"{path}: not a Core ML package (an .mlpackage is a directory with Manifest.json)")


class CoreMLRunner(Runner):
    target = TARGET

    def __init__(self, path: Path, sidecar: dict, threads: int | None):
        super().__init__(path, sidecar)
        import coremltools as ct

        self.model = ct.models.MLModel(str(path), compute_units=ct.ComputeUnit.CPU_ONLY)

    def _run_one(self, x: Tensor) -> tuple[Tensor, ...]:  # pragma: no cover - macOS only
        from PIL import Image

        # the package takes an image and normalizes in the graph: undo the host normalization
        p = self.sidecar["preprocess"]
        mean, std = np.array(p["mean"]).reshape(3, 1, 1), np.array(p["std"]).reshape(3, 1, 1)
        pixels = ((x[0].numpy() * std + mean) * 255.0).round().clip(0, 255).astype(np.uint8)
        out = self.model.predict({self.sidecar["input"]["name"]: Image.fromarray(pixels.transpose(1, 2, 0))})
        return tuple(torch.from_numpy(np.asarray(out[n])) for n in self.output_names)


def load(path: Path, sidecar: dict, threads: int | None = None) -> Runner:
    if platform.system() != "Darwin":
        raise RuntimeUnavailable(
            f"{path.name}: Core ML runs only on macOS/iOS (coremltools' predict needs the Core ML "
            "framework); here its spec is checked instead, and its drift is measured by "
            "`ssdmobile validate` on a Mac")
    return CoreMLRunner(path, sidecar, threads)  # pragma: no cover - macOS only
