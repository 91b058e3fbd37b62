"""Files: atomic writes (a temporary name in the same directory, then rename, so a crash never
leaves a half-written file under the final name), output directories proven writable, and file
hashes."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from .errors import SSDMobileError


class OutputPathError(SSDMobileError):
    """An output path cannot be written (not a directory, under a file, no permission...)."""


# What the machine, not the user, does to a write: the one place these errnos become a sentence
# (the atomic writers below raise it naming the final path; cli.py says any other such OSError the
# same way, naming the file the OS names)
WRITE_FAULTS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EFBIG: "file too large for the file system",
}


class WriteFault(OutputPathError):
    """Writing an output failed because of the machine: disk full, quota, read-only file system,
    permission lost mid-run. Nothing incomplete is left under the final name."""


def write_fault(e: BaseException, path: str | os.PathLike | None) -> WriteFault | None:
    """The one-line error for an OSError that is one of WRITE_FAULTS (None for anything else)."""
    if not isinstance(e, OSError) or e.errno not in WRITE_FAULTS:
        return None
    where = path if path is not None else (e.filename or "the output")
    return WriteFault(f"cannot write {where}: {WRITE_FAULTS[e.errno]} ({errno.errorcode[e.errno]})")


def discard(tmp: str | os.PathLike) -> None:
    """Remove a temporary after a failure; where that fails too (a read-only file system) the
    first error is the one to tell."""
    with contextlib.suppress(OSError):
        remove_path(Path(tmp))


def fsync_path(path: str | os.PathLike) -> None:
    """Flush a written file (or a directory's entries) to the disk: an atomic rename is only as
    durable as what it renames."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as e:  # a file system that cannot sync (some network and FUSE mounts)
        if e.errno not in (errno.EINVAL, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, write: Callable[[str], object]) -> Path:
    """write(tmp_path) fills a temporary file (same suffix as `path`, so format-sniffing writers
    such as matplotlib's savefig work), which then replaces `path`; on any failure it is removed."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name}.", suffix=f".part{path.suffix}"
        )
    except OSError as e:
        raise (write_fault(e, path) or e) from None
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; results are as readable as any file
        fsync_path(tmp)
        os.replace(tmp, path)
        fsync_path(path.parent)
    except BaseException as e:
        discard(tmp)
        fault = write_fault(e, path)
        if fault is not None:
            raise fault from None
        raise
    return path


def atomic_write_bytes(path: str | os.PathLike, save: Callable[[io.BytesIO], object]) -> Path:
    """save(buffer) serializes into memory, then the bytes are written atomically. For torch.save
    and torch.jit.save: torch's own file writer (PyTorchStreamWriter) aborts the whole process when
    a write fails (a full disk: "unexpected pos ... vs ...", then std::terminate, the temporary
    left behind), so torch never writes to a file itself."""
    buffer = io.BytesIO()
    save(buffer)
    data = buffer.getbuffer()
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def remove_path(path: Path) -> None:
    """A file, a link or a whole directory, if it exists."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink(missing_ok=True)


def replace_path(tmp: Path, final: Path) -> None:
    """Move a finished file or directory `tmp` onto `final`. os.replace cannot replace a non-empty
    directory, so an old directory is moved aside first and removed after."""
    if not tmp.is_dir():
        os.replace(tmp, final)
        return
    old = final.with_name(f".{final.name}.old")
    remove_path(old)
    if final.exists() and (not final.is_dir() or any(final.iterdir())):
        os.replace(final, old)
    os.replace(tmp, final)
    remove_path(old)


@contextlib.contextmanager
def atomic_directory(final: str | os.PathLike):
    """Yield a temporary directory beside `final` to fill; on success it replaces `final` whole,
    on any failure it is removed: a crash never leaves a half-filled folder under the final name."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".part", dir=final.parent))
    except OSError as e:
        raise (write_fault(e, final) or e) from None
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700
        replace_path(tmp, final)
    except BaseException as e:
        discard(tmp)
        fault = write_fault(e, final)
        if fault is not None:
            raise fault from None
        raise


def write_json_atomic(path: str | os.PathLike, data: dict) -> Path:
    def write(tmp: str) -> None:
        with open(tmp, "w") as f:
            json.dump(data, f, indent=1)

    return atomic_write(path, write)


# directories prepare_out_dir created in this process, parents first: a failed command removes the
# ones it left empty (remove_created_dirs), so a failed run leaves no empty folders behind
_created: list[Path] = []


def read_tagged_json(
    text: str, source: str, fmt: str, kind: str, error: type[SSDMobileError]
) -> dict:
    """The JSON object in `text` whose "format" is `fmt` (the tag every file the apps and ssdmobile
    exchange carries), or `error` in one line naming `source` and saying it is not a `kind`."""
    try:
        d = json.loads(text)
    except json.JSONDecodeError as e:
        raise error(f"{source}: not valid JSON ({e})") from None
    if not isinstance(d, dict) or d.get("format") != fmt:
        raise error(f'{source}: not an ssdmobile {kind} (no "format": "{fmt}")')
    return d


def prepare_out_dir(out_dir: str | os.PathLike) -> Path:
    """Create `out_dir` (and parents) and prove it writable by creating a file in it: os.access
    says yes to root on read-only mounts, and a failure after minutes of work loses the work."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise OutputPathError(f"output path {out} exists and is not a directory")
    missing = [d for d in (out, *out.parents) if not d.exists()][::-1]
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputPathError(f"cannot create output directory {out}: {e.strerror or e}") from None
    _created.extend(d.resolve() for d in missing)
    try:
        fd, probe = tempfile.mkstemp(dir=out, prefix=".write-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise OutputPathError(
            f"output directory {out} is not writable: {e.strerror or e}"
        ) from None
    return out


def remove_created_dirs() -> None:
    """Remove the directories prepare_out_dir created that are still empty (deepest first)."""
    for d in reversed(_created):
        with contextlib.suppress(OSError):
            d.rmdir()  # only succeeds when empty
    _created.clear()


def forget_created_dirs() -> None:
    """After a successful command: what it created stays."""
    _created.clear()


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
    return (
        path.stat().st_size
        if path.is_file()
        else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    )
