"""What the machine does to a write, for real: a full disk (a 3 MB tmpfs), a file system remounted
read-only between two writes, write permission taken away between two writes. Each ends in one
line naming the path and the cause, a non-zero exit, no temporary left and nothing incomplete under
a final name (ssdmobile/fileio.py: WRITE_FAULTS, write_fault and the atomic writers).

Mounting needs root (CAP_SYS_ADMIN): where it is refused the tests skip and say so. Root also
ignores file modes (CAP_DAC_OVERRIDE), so a chmod-ed folder gives root no EACCES: the permission
test runs its command without that capability (setpriv --bounding-set), as any user runs."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import COCO128, REPO

pytestmark = pytest.mark.slow  # each exports the person model at least once

# Runs an ssdmobile command in-process, and after the first sidecar (a JSON file) lands in FOLDER
# (one artifact complete) takes writing away: `erofs` remounts FOLDER's tmpfs read-only, `eacces`
# makes FOLDER read-only for its owner. What fails next is the command's next write.
DRIVER = r"""
import os, subprocess, sys
from pathlib import Path
from ssdmobile import cli

folder, fault, argv = Path(sys.argv[1]).resolve(), sys.argv[2], sys.argv[3:]
replace, done = os.replace, []

def replace_then_fault(src, dst, *args, **kwargs):
    replace(src, dst, *args, **kwargs)
    dst = Path(dst).resolve()
    if not done and dst.suffix == ".json" and folder in dst.parents:
        done.append(dst)
        print(f"fault after {dst}", flush=True)
        if fault == "erofs":
            subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
        else:
            folder.chmod(0o555)

os.replace = replace_then_fault
sys.exit(cli.main(argv))
"""


def _mount_tmpfs(path: Path, size: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {proc.stderr.strip()}")


@pytest.fixture
def tmpfs(tmp_path):
    """-> a function mounting a tmpfs of a given size under tmp_path; unmounted afterwards."""
    mounted = []

    def mount(size: str) -> Path:
        path = tmp_path / f"disk{len(mounted)}"
        _mount_tmpfs(path, size)
        mounted.append(path)
        return path

    yield mount
    for path in mounted:
        subprocess.run(["umount", str(path)], capture_output=True)


def _ssdmobile(*args, cwd=REPO, prefix=()):
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    return subprocess.run(
        [*prefix, sys.executable, "-m", "ssdmobile", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def _driven(folder: Path, fault: str, *args, prefix=()):
    return subprocess.run(
        [*prefix, sys.executable, "-c", DRIVER, str(folder), fault, *map(str, args)],
        cwd=REPO,
        env={**os.environ, "OMP_NUM_THREADS": "2"},
        capture_output=True,
        text=True,
        timeout=900,
    )


def _one_line(proc, command: str, path_part: str, cause: str) -> str:
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-3000:]
    # validate logs its progress to stderr too: the error is one line, the last
    lines = proc.stderr.strip().splitlines()
    errors = [line for line in lines if ": error: " in line]
    assert len(errors) == 1 and lines[-1] == errors[0], proc.stderr[-3000:]
    line = errors[0]
    assert line.startswith(f"ssdmobile {command}: error: cannot write "), line
    assert path_part in line and cause in line, line
    assert "Traceback" not in proc.stdout + proc.stderr
    return line


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def _complete_pairs(folder: Path) -> None:
    """Every file left is finished: no temporary (dot-named), and every artifact has its sidecar
    that names it with the artifact's own sha256 (what a reader trusts)."""
    import json

    from ssdmobile.fileio import sha256_file

    for p in folder.rglob("*"):
        assert not p.name.startswith("."), f"temporary left: {p}"
    for js in folder.rglob("*.json"):
        meta = json.loads(js.read_text())
        if "artifact" in meta:
            artifact = js.parent / meta["artifact"]
            assert artifact.exists(), f"{js} without its artifact"
            assert sha256_file(artifact) == meta["artifact_sha256"], artifact
    for p in folder.rglob("*"):
        if p.suffix in (".pt", ".ptl", ".onnx", ".pte"):
            assert p.with_suffix(".json").exists(), f"{p} without its sidecar"


@pytest.mark.parametrize("target", ["torchscript", "executorch", "onnx"])
def test_export_onto_a_full_disk_is_one_line(tmpfs, target):
    # the person model's artifacts are about 12 MB; torch's own writer used to abort the process
    # here (std::terminate, exit 134) leaving its temporary behind
    disk = tmpfs("3m")
    proc = _ssdmobile("export", "--target", target, "--out", disk)
    _one_line(proc, "export", str(disk), "no space left on the device (ENOSPC)")
    assert _files(disk) == []


def test_export_when_the_disk_goes_read_only_midway(tmpfs):
    disk = tmpfs("64m")
    proc = _driven(disk, "erofs", "export", "--target", "torchscript", "--out", disk)
    # the full TorchScript file and its sidecar were written; the lite one could not be
    _one_line(proc, "export", "_lite.ptl", "the file system is read-only (EROFS)")
    assert _files(disk) == [
        "ssdlite_mobilenet_v2_person_torchscript_fp32.json",
        "ssdlite_mobilenet_v2_person_torchscript_fp32.pt",
    ]
    _complete_pairs(disk)


def test_export_when_write_permission_goes_midway(tmp_path):
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is not installed: cannot drop CAP_DAC_OVERRIDE")
    out = tmp_path / "out"
    out.mkdir()
    # without CAP_DAC_OVERRIDE root obeys the folder's mode, as any user does
    no_override = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"]
    proc = _driven(
        out, "eacces", "export", "--target", "torchscript", "--out", out, prefix=no_override
    )
    out.chmod(0o755)
    _one_line(proc, "export", "_lite.ptl", "permission denied (EACCES)")
    assert [p for p in _files(out) if not p.endswith((".pt", ".json"))] == []
    _complete_pairs(out)


VALIDATE = (
    "validate",
    "--data",
    COCO128,
    "--split",
    "val2017",
    "--max-images",
    "2",
    "--targets",
    "torchscript",
    "--nms",
    "off",
    "--gallery",
    "0",
    "--no-progress",
)


def test_validate_onto_a_full_disk_is_one_line(tmpfs):
    disk = tmpfs("3m")
    proc = _ssdmobile(*VALIDATE, "--out", disk / "report")
    _one_line(proc, "validate", str(disk / "report"), "no space left on the device (ENOSPC)")
    # a failed run removes the folders it created and left empty
    assert [p for p in _files(disk) if not Path(disk, p).is_dir()] == []


def test_validate_when_the_disk_goes_read_only_midway(tmpfs):
    disk = tmpfs("64m")
    proc = _driven(disk, "erofs", *VALIDATE, "--out", disk / "report")
    line = _one_line(proc, "validate", "_lite.ptl", "the file system is read-only (EROFS)")
    assert str(disk / "report" / "artifacts") in line
    assert not (disk / "report" / "report.md").exists()
    _complete_pairs(disk)


def test_validate_when_write_permission_goes_midway(tmp_path):
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is not installed: cannot drop CAP_DAC_OVERRIDE")
    report = tmp_path / "report"
    arts = report / "artifacts"
    arts.mkdir(parents=True)
    no_override = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"]
    proc = _driven(arts, "eacces", *VALIDATE, "--out", report, prefix=no_override)
    arts.chmod(0o755)
    _one_line(proc, "validate", "_lite.ptl", "permission denied (EACCES)")
    assert not (report / "report.md").exists()
    _complete_pairs(report)
