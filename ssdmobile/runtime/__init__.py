"""Run an exported artifact in its own runtime.

One module per runtime in this package (torchscript.py, onnx.py, coreml.py, executorch.py), each
with `check_file(path)` (is the file what its extension says) and `load(path, sidecar, threads) ->
Runner`; ssdmobile.targets lists them in the target table and picks one by suffix
(`ssdmobile.targets.artifacts.load_runner`).

The Predictor preprocesses exactly as the eager Detector does and decodes raw outputs with the same
code: it builds a Detector around the artifact from the sidecar's spec and anchors, so there is one
implementation of preprocess / decode / NMS, not one per runtime.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..detector import Detector
from ..errors import ArtifactError, RuntimeUnavailable
from ..spec import ModelSpec
from ._base import Runner, check_sidecar


class _ArtifactCore(nn.Module):
    def __init__(self, runner: Runner):
        super().__init__()
        self.runner = runner

    def forward(self, x: Tensor):
        return self.runner.run(x)


class Predictor:
    """uint8 [3, H, W] images -> torchvision-style detections, through the artifact: the same
    preprocessing, decode and NMS code as the eager Detector (which it is, around the artifact).
    With NMS in the graph, the graph's fixed-size detections are cut at num_detections and scaled
    to each image's pixels instead."""

    def __init__(self, runner: Runner):
        self.runner = runner
        anchors = torch.tensor(runner.sidecar.decode.anchors, dtype=torch.float32)
        self.detector = Detector(_ArtifactCore(runner), anchors, runner.sidecar.model_spec()).eval()

    @property
    def spec(self) -> ModelSpec:
        return self.detector.spec

    def preprocess(self, images: Sequence[Tensor]) -> Tensor:
        """The artifact's input: the float model's, or for a program that takes camera bytes the
        pixels exactly as the apps make them (Detector.pixels)."""
        if self.runner.takes_pixels:
            return self.detector.pixels(images)
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
            results.append(
                {
                    "boxes": boxes[i, :k].float() * scale,
                    "scores": scores[i, :k].float(),
                    "labels": labels[i, :k].long(),
                }
            )
        return results


__all__ = [
    "ArtifactError",
    "Predictor",
    "Runner",
    "RuntimeUnavailable",
    "check_sidecar",
]
