"""Put an exported artifact and its sidecar where a sample app loads them from.

  android: a `.pte` (target executorch)            -> android_demo/app/src/main/assets/
  ios:     a `.mlpackage` (target coreml, --nms)   -> ios_demo/SSDMobileDemo/Models/

Both locations are git-ignored. The artifact is checked against its sidecar (target, file name,
sha256 when the sidecar records one) before anything is copied; the copy goes to a temporary name
in the destination and is renamed into place, the artifact first and the sidecar last, so an
app never finds a sidecar whose artifact is missing or half written.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .errors import SSDMobileError
from .models.weights import sha256_file
from .sidecar import read_sidecar, sidecar_path
from .fileio import write_json_atomic

REPO_ROOT = Path(__file__).resolve().parents[1]


class BundleError(SSDMobileError):
    pass


@dataclass(frozen=True)
class App:
    name: str
    suffix: str
    target: str
    assets: str  # relative to the repository root
    needs_nms: bool  # the iOS app uses Vision's object-detection pipeline: NMS must be in the model


APPS = {
    "android": App("android", ".pte", "executorch", "android_demo/app/src/main/assets", needs_nms=False),
    "ios": App("ios", ".mlpackage", "coreml", "ios_demo/SSDMobileDemo/Models", needs_nms=True),
}


def default_destination(app: str) -> Path:
    return REPO_ROOT / _app(app).assets


def _app(name: str) -> App:
    if name not in APPS:
        raise BundleError(f"unknown app {name!r}; choose one of {', '.join(APPS)}")
    return APPS[name]


def check_artifact(app: str, artifact: str | os.PathLike) -> dict:
    """Everything that can be wrong before copying; returns the sidecar."""
    spec = _app(app)
    path = Path(artifact)
    if not path.exists():
        raise BundleError(f"artifact not found: {path}")
    if path.suffix != spec.suffix:
        other = [a.name for a in APPS.values() if a.suffix == path.suffix]
        hint = f" (a {path.suffix} is for --app {other[0]})" if other else ""
        raise BundleError(f"the {app} app loads {spec.suffix} artifacts from `ssdmobile export --target "
                          f"{spec.target}`, not {path.name}{hint}")
    if spec.suffix == ".mlpackage":
        if not path.is_dir() or not (path / "Manifest.json").is_file():
            raise BundleError(f"{path} is not an .mlpackage (a directory with Manifest.json)")
    else:
        if not path.is_file():
            raise BundleError(f"{path} is not a file")
        with open(path, "rb") as f:
            head = f.read(8)
        if len(head) < 8 or head[4:6] != b"ET":  # ExecuTorch flatbuffer identifier "ET.." at offset 4
            raise BundleError(f"{path} is not an ExecuTorch program (no ET file identifier); re-export it")
    sidecar = read_sidecar(path)  # SidecarError (an SSDMobileError) when missing or incomplete
    where = sidecar_path(path)
    if sidecar["target"] != spec.target:
        raise BundleError(f"{where} says target {sidecar['target']!r}; the {app} app needs {spec.target!r}")
    if sidecar["artifact"] != path.name:
        raise BundleError(f"{where} describes {sidecar['artifact']!r}, not {path.name}: artifact and sidecar do "
                          "not belong together; re-export")
    if spec.needs_nms and not sidecar["nms"]["in_graph"]:
        raise BundleError(f"{path.name} has no NMS pipeline; the {app} app needs one (Vision returns "
                          f"VNRecognizedObjectObservation only then): export with --target {spec.target} --nms")
    recorded = sidecar.get("artifact_sha256")
    if recorded and sha256_file(path) != recorded:
        raise BundleError(f"{path} does not match the sha256 its sidecar records: the artifact changed after "
                          "export, or the sidecar is stale; re-export")
    return sidecar


def _copy_atomic(src: Path, dst: Path) -> None:
    tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent))
    staged = tmp / dst.name
    try:
        if src.is_dir():
            shutil.copytree(src, staged)
        else:
            shutil.copy2(src, staged)
        if dst.is_dir() and not dst.is_symlink():
            # a directory cannot be replaced by rename in one step: move the old one aside first
            old = tmp / (dst.name + ".old")
            os.replace(dst, old)
        os.replace(staged, dst)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def bundle(app: str, artifact: str | os.PathLike, dest: str | os.PathLike | None = None) -> list[Path]:
    """Copy artifact + sidecar into the app's asset directory; returns the two destination paths."""
    sidecar = check_artifact(app, artifact)
    src = Path(artifact)
    out = Path(dest) if dest is not None else default_destination(app)
    if dest is None and not out.parent.is_dir():
        raise BundleError(f"{out.parent} not found: run from a source checkout of ssdmobile, or pass --dest")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BundleError(f"cannot create {out}: {e.strerror}") from None
    if not os.access(out, os.W_OK):
        raise BundleError(f"{out} is not writable")
    target, target_json = out / src.name, sidecar_path(out / src.name)
    try:
        _copy_atomic(src, target)
        write_json_atomic(target_json, sidecar)
    except OSError as e:
        raise BundleError(f"copying into {out} failed: {e}") from None
    return [target, target_json]
