"""Put an exported artifact and its sidecar where a sample app loads them from.

  android: a `.pte` (target executorch)            -> android_demo/app/src/main/assets/
  ios:     a `.mlpackage` (target coreml, --nms)   -> ios_demo/SSDMobileDemo/Models/

Both locations are git-ignored. The artifact is checked against its sidecar (target, file name,
sha256 when the sidecar records one) before anything is copied; the copy goes to a temporary name
in the destination and is renamed into place, the artifact first and the sidecar last, so an
app never finds a sidecar whose artifact is missing or half written. Golden data for the apps'
drift check (`<stem>.golden/`, from `ssdmobile export --golden N`) goes with it when it exists.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import SSDMobileError
from .fileio import prepare_out_dir
from .targets import get_target

if TYPE_CHECKING:
    from .sidecar import Sidecar

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
    golden_suffix: (
        str  # what <stem>.golden/ is called in the app: Xcode copies a .bundle folder whole
    )


APPS = {
    "android": App(
        "android",
        ".pte",
        "executorch",
        "android_demo/app/src/main/assets",
        needs_nms=False,
        golden_suffix=".golden",
    ),
    "ios": App(
        "ios",
        ".mlpackage",
        "coreml",
        "ios_demo/SSDMobileDemo/Models",
        needs_nms=True,
        golden_suffix=".golden.bundle",
    ),
}


def default_destination(app: str) -> Path:
    return REPO_ROOT / _app(app).assets


def _app(name: str) -> App:
    if name not in APPS:
        raise BundleError(f"unknown app {name!r}; choose one of {', '.join(APPS)}")
    return APPS[name]


def check_artifact(app: str, artifact: str | os.PathLike) -> Sidecar:
    """Everything that can be wrong before copying, with the target table's own checks (the file is
    what its suffix says, the sidecar describes this very file); returns the sidecar."""
    # lazy: `ssdmobile bundle --help` reads APPS and must not wait for torch
    from .runtime import check_sidecar
    from .sidecar import load_sidecar

    spec = _app(app)
    path = Path(artifact)
    if not path.exists():
        raise BundleError(f"artifact not found: {path}")
    target = get_target(spec.target)
    if path.suffix not in target.suffixes:
        other = [a.name for a in APPS.values() if a.suffix == path.suffix]
        hint = f" (a {path.suffix} is for --app {other[0]})" if other else ""
        raise BundleError(
            f"the {app} app loads {spec.suffix} artifacts from `ssdmobile export --target "
            f"{spec.target}`, not {path.name}{hint}"
        )
    target.check_file(path)
    sidecar = load_sidecar(path)  # SidecarError (an SSDMobileError) when missing or incomplete
    check_sidecar(path, sidecar, target.name)
    if spec.needs_nms and not sidecar.nms.in_graph:
        raise BundleError(
            f"{path.name} has no NMS pipeline; the {app} app needs one (Vision returns "
            f"VNRecognizedObjectObservation only then): export with --target {spec.target} --nms"
        )
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


def bundle(
    app: str, artifact: str | os.PathLike, dest: str | os.PathLike | None = None
) -> list[Path]:
    """Copy artifact + sidecar (+ its golden data) into the app's asset directory; returns the
    destination paths."""
    # lazy: as in check_artifact
    from .sidecar import golden_path, sidecar_path, write_sidecar

    sidecar = check_artifact(app, artifact)
    src = Path(artifact)
    out = Path(dest) if dest is not None else default_destination(app)
    if dest is None and not out.parent.is_dir():
        raise BundleError(
            f"{out.parent} not found: run from a source checkout of ssdmobile, or pass --dest"
        )
    prepare_out_dir(out)
    target, target_json = out / src.name, sidecar_path(out / src.name)
    golden, target_golden = (
        golden_path(src),
        out / (src.name.split(".")[0] + _app(app).golden_suffix),
    )
    try:
        if golden.is_dir():
            _copy_atomic(golden, target_golden)
        elif (
            target_golden.exists()
        ):  # an earlier bundle's golden data would check the wrong program
            shutil.rmtree(target_golden)
        _copy_atomic(src, target)
        write_sidecar(target_json, sidecar)
    except OSError as e:
        raise BundleError(f"copying into {out} failed: {e}") from None
    return [target, target_json] + ([target_golden] if golden.is_dir() else [])
