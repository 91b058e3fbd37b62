"""TorchScript: full `.pt` with torch.jit.load, `.ptl` with the lite interpreter (PyTorch Mobile's
runtime, the one an app links)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import torch
from torch import Tensor
from torch.jit.mobile import _load_for_lite_interpreter

from ..errors import ArtifactError
from ..sidecar import Sidecar
from ._base import Runner


def check_file(path: Path) -> None:
    if not path.is_file() or not zipfile.is_zipfile(path):
        raise ArtifactError(
            f"{path}: not a TorchScript file (TorchScript archives are zip files); "
            "truncated, or not what its extension says"
        )


class TorchScriptRunner(Runner):
    def __init__(self, path: Path, sidecar: Sidecar, threads: int | None):
        super().__init__(path, sidecar)
        self.threads = threads
        # int8 programs carry prepacked weights for the quantized engine they were made for
        # (qnnpack, as on phones); loaded or run under another engine (x86's default fbgemm) they
        # compute something else (measured: QAT person detector AP 0.1509
        # instead of 0.2022 in a fresh process)
        self.engine = self.sidecar.quantization.engine if self.sidecar.quantization else None
        if self.engine:
            if self.engine not in torch.backends.quantized.supported_engines:
                raise ArtifactError(
                    f"{path.name} needs the {self.engine} quantized engine, which this PyTorch "
                    "build does not have"
                )
            torch.backends.quantized.engine = self.engine
        try:
            if path.suffix == ".ptl":
                self.module = _load_for_lite_interpreter(str(path))
            else:
                self.module = torch.jit.load(str(path), map_location="cpu").eval()
        except Exception as e:  # torch raises RuntimeError with a C++ trace for broken archives
            raise ArtifactError(
                f"{path}: cannot be loaded as TorchScript ({str(e).splitlines()[0][:200]})"
            ) from None

    def _run_one(self, x: Tensor) -> tuple[Tensor, ...]:
        if self.threads:
            torch.set_num_threads(self.threads)
        if self.engine:
            torch.backends.quantized.engine = self.engine
        with torch.no_grad():
            out = self.module(x)
        return tuple(out)


def load(path: Path, sidecar: Sidecar, threads: int | None = None) -> Runner:
    return TorchScriptRunner(path, sidecar, threads)
