"""Files: atomic writes (a temporary name in the same directory, then rename, so a crash never
leaves a half-written file under the final name), output directories proven writable, and file
hashes."""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Callable

from .errors import SSDMobileError


class OutputPathError(SSDMobileError):
    """An output path cannot be written (not a directory, under a file, no permission...)."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, write: Callable[[str], object]) -> Path:
    """write(tmp_path) fills a temporary file (same suffix as `path`, so format-sniffing writers such
    as matplotlib's savefig work), which then replaces `path`; on any failure it is removed."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f".part{path.suffix}")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; results are as readable as any file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json_atomic(path: str | os.PathLike, data: dict) -> Path:
    def write(tmp: str) -> None:
        with open(tmp, "w") as f:
            json.dump(data, f, indent=1)
    return atomic_write(path, write)


def prepare_out_dir(out_dir: str | os.PathLike) -> Path:
    """Create `out_dir` (and parents) and prove it writable by creating a file in it: os.access
    says yes to root on read-only mounts, and a failure after minutes of work loses the work."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise OutputPathError(f"output path {out} exists and is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputPathError(f"cannot create output directory {out}: {e.strerror or e}") from None
    try:
        fd, probe = tempfile.mkstemp(dir=out, prefix=".write-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise OutputPathError(f"output directory {out} is not writable: {e.strerror or e}") from None
    return out


def sha256_file(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes, or of a directory artifact (.mlpackage): its files in sorted
    order, each as relative name then bytes."""
    path = Path(path)
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for f in files:
        if path.is_dir():
            h.update(str(f.relative_to(path)).encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def size_bytes(path: str | os.PathLike) -> int:
    """A file's size, or the total of a directory artifact's files."""
    path = Path(path)
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
