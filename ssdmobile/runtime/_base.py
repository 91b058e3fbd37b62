"""What every runner shares: the typed errors, the Runner base class and the sidecar check."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..errors import ArtifactError
from ..fileio import sha256_file
from ..sidecar import Sidecar, to_sidecar


class Runner:
    """One loaded artifact. `run` takes the graph input ([N, 3, H, W] float, numpy or torch) and
    returns the graph outputs as torch tensors, in the sidecar's output order. Exported graphs
    have batch 1; larger batches run image by image and are concatenated."""

    def __init__(self, path: Path, sidecar: Sidecar | dict):
        self.path = path
        self.sidecar = to_sidecar(sidecar, f"sidecar of {path.name}")
        self.input_shape = tuple(self.sidecar.input.shape)
        self.output_names = [o.name for o in self.sidecar.outputs]
        self.nms_in_graph = self.sidecar.nms.in_graph
        # camera bytes in (export --input uint8): uint8 [N, H, W, 3] pixels, normalized in the graph
        inp = self.sidecar.input
        self.takes_pixels = inp.dtype == "uint8" and inp.layout == "NHWC"

    def pixels(self, x) -> Tensor:
        """The input of a program that takes pixels: uint8 [H, W, 3] or [N, H, W, 3] as given
        (Detector.pixels makes them from images); the float [N, 3, H, W] every other runner takes
        (the normalized image at the model's size) is turned back into pixels, rounded to the
        nearest integer: the one place callers' float inputs meet such a program."""
        x = torch.as_tensor(np.asarray(x) if not isinstance(x, Tensor) else x)
        if x.dtype == torch.uint8:
            return (x[None] if x.dim() == 3 else x).contiguous()
        if x.dim() != 4 or x.shape[1] != 3:
            raise ArtifactError(
                f"{self.path.name} takes uint8 pixels [N, H, W, 3] (or the float [N, 3, H, W] "
                f"input of the float model), got {x.dtype} {list(x.shape)}"
            )
        p = self.sidecar.preprocess
        mean = torch.tensor(p.mean).view(1, 3, 1, 1)
        std = torch.tensor(p.std).view(1, 3, 1, 1)
        pixels = ((x.float() * std + mean) * 255.0).round().clamp(0, 255).to(torch.uint8)
        return pixels.permute(0, 2, 3, 1).contiguous()

    def _run_one(self, x: Tensor) -> tuple[Tensor, ...]:
        raise NotImplementedError

    def run(self, x) -> tuple[Tensor, ...]:
        if self.takes_pixels:
            x = self.pixels(x)
        else:
            x = torch.as_tensor(np.asarray(x) if not isinstance(x, Tensor) else x)
            x = x.float().contiguous()
        if x.dim() != 4 or tuple(x.shape[1:]) != self.input_shape[1:]:
            raise ArtifactError(
                f"{self.path.name} takes input [N, {', '.join(map(str, self.input_shape[1:]))}], "
                f"got {list(x.shape)}"
            )
        b = self.input_shape[0]
        if x.shape[0] == b:
            return self._run_one(x)
        parts = [self._run_one(x[i : i + b]) for i in range(0, x.shape[0], b)]
        return tuple(torch.cat(p) for p in zip(*parts))


def check_sidecar(path: Path, sidecar: Sidecar | dict, target: str) -> None:
    """The sidecar describes this very file: its target, its name and (when recorded) its sha256."""
    where = f"{path.name}: its sidecar {path.with_suffix('.json').name}"
    sidecar = to_sidecar(sidecar, where)
    if sidecar.target != target:
        raise ArtifactError(
            f"{where} describes a {sidecar.target} artifact, but the file is {target}"
        )
    if sidecar.artifact != path.name:
        raise ArtifactError(f"{where} was written for {sidecar.artifact}, not this file")
    expected = sidecar.artifact_sha256
    if expected and sha256_file(path) != expected:
        raise ArtifactError(
            f"{where} does not match the file (sha256 differs): the artifact was "
            "replaced, modified or truncated after export; export it again"
        )


def _flush_c_stdio() -> None:
    with contextlib.suppress(OSError, AttributeError):  # no C library to ask (not POSIX)
        ctypes.CDLL(None).fflush(None)


@contextlib.contextmanager
def quiet_native_stderr():
    """C++ runtimes write straight to the process's stderr (ExecuTorch: five cpuinfo lines when a
    program's XNNPACK delegate starts, one per threadpool reset). Captured here and shown only when
    what runs inside fails, or with --verbose (the "ssdmobile" logger at DEBUG)."""
    if logging.getLogger("ssdmobile").isEnabledFor(logging.DEBUG):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        failed = False
        try:
            yield
        except BaseException:
            failed = True
            raise
        finally:
            _flush_c_stdio()  # what the C++ side buffered must land in the capture, not later
            os.dup2(saved, 2)
            os.close(saved)
            if failed:
                capture.seek(0)
                sys.stderr.write(capture.read().decode(errors="replace"))
