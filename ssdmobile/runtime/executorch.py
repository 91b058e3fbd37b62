"""ExecuTorch `.pte` with `executorch.runtime` (the C++ runtime with the XNNPACK delegate)."""

from __future__ import annotations

from pathlib import Path

from torch import Tensor

from ..errors import ArtifactError
from ..sidecar import Sidecar
from ._base import Runner, quiet_native_stderr


def check_file(path: Path) -> None:
    # a .pte is a flatbuffer with the file identifier "ET??" at bytes 4..8
    if not path.is_file():
        raise ArtifactError(f"{path}: not a file")
    with open(path, "rb") as f:
        head = f.read(8)
    if len(head) < 8 or head[4:6] != b"ET":
        raise ArtifactError(
            f"{path}: not an ExecuTorch program (no 'ET' flatbuffer identifier); "
            "not what its extension says"
        )


def _set_threads(threads: int | None) -> None:
    if not threads:
        return
    try:  # XNNPACK uses ExecuTorch's own threadpool, not torch's
        # lazy: heavy optional runtime (executorch), only when a .pte runs
        from executorch.extension.pybindings.portable_lib import (
            _threadpool_get_thread_count,
            _unsafe_reset_threadpool,
        )

        with quiet_native_stderr():  # creating or resetting the pool probes the CPU, loudly
            if _threadpool_get_thread_count() != threads:
                _unsafe_reset_threadpool(threads)
    except ImportError:  # pragma: no cover - older executorch
        pass


class ExecuTorchRunner(Runner):
    def __init__(self, path: Path, sidecar: Sidecar, threads: int | None):
        super().__init__(path, sidecar)
        from executorch.runtime import Runtime  # lazy: heavy optional runtime (executorch)

        _set_threads(threads)
        self.threads = threads
        try:
            with quiet_native_stderr():
                program = Runtime.get().load_program(path)
                self.method = program.load_method("forward")
        except Exception as e:  # truncated files fail here, with a C++ error code
            raise ArtifactError(
                f"{path}: ExecuTorch cannot load it, truncated or corrupt "
                f"({str(e).splitlines()[0][:200]})"
            ) from None

    def _run_one(self, x: Tensor) -> tuple[Tensor, ...]:
        _set_threads(self.threads)
        return tuple(self.method.execute((x,)))


def load(path: Path, sidecar: Sidecar, threads: int | None = None) -> Runner:
    return ExecuTorchRunner(path, sidecar, threads)
