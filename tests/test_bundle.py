"""`ssdmobile bundle`: artifact + sidecar into an app's asset directory, with one clear error for
each way the input can be wrong. Artifacts here are small stand-ins with real sidecars
(build_sidecar), so the test is fast; the sha256 and target checks are what
tie an artifact to its sidecar."""

import hashlib
import json
from pathlib import Path

import pytest

from ssdmobile.bundle import APPS, BundleError, bundle, default_destination
from ssdmobile.cli import main
from ssdmobile.errors import ArtifactError
from ssdmobile.fileio import write_json_atomic
from ssdmobile.models import create_model
from ssdmobile.sidecar import Input, SidecarError, build_sidecar


@pytest.fixture(scope="module")
def detector():
    return create_model("ssdlite320_mobilenet_v3_small")


def _sidecar(detector, target, name, nms, sha=None):
    d = build_sidecar(
        detector.spec,
        detector.anchors,
        target=target,
        precision="fp32",
        artifact=name,
        input=Input(
            name="input", shape=[1, 3, 320, 320], layout="NCHW", dtype="float32", color="RGB"
        ),
        outputs=[],
        nms_in_graph=nms,
    ).to_dict()
    if sha:
        d["artifact_sha256"] = sha
    return d


def make_pte(
    detector, d: Path, name="m_executorch_fp32.pte", nms=False, payload=b"\0\0\0\0ET12" + b"x" * 100
):
    p = d / name
    p.write_bytes(payload)
    write_json_atomic(
        p.with_suffix(".json"),
        _sidecar(detector, "executorch", name, nms, hashlib.sha256(payload).hexdigest()),
    )
    return p


def make_mlpackage(detector, d: Path, name="m_coreml_fp16_nms.mlpackage", nms=True):
    p = d / name
    (p / "Data").mkdir(parents=True)
    (p / "Manifest.json").write_text("{}")
    (p / "Data" / "model.mlmodel").write_bytes(b"spec")
    write_json_atomic(p.with_suffix(".json"), _sidecar(detector, "coreml", name, nms))
    return p


def test_android_bundle_copies_artifact_and_sidecar(detector, tmp_path):
    pte = make_pte(detector, tmp_path)
    dest = tmp_path / "assets"
    art, js = bundle("android", pte, dest)
    assert art.read_bytes() == pte.read_bytes()
    assert json.loads(js.read_text())["artifact"] == pte.name
    assert sorted(p.name for p in dest.iterdir()) == sorted(
        [pte.name, pte.with_suffix(".json").name]
    )
    # a fresh export replaces the old one in place, nothing left behind
    (tmp_path / "v2").mkdir()
    pte2 = make_pte(detector, tmp_path / "v2", payload=b"\0\0\0\0ET12new")
    bundle("android", pte2, dest)
    assert (dest / pte.name).read_bytes() == b"\0\0\0\0ET12new"
    assert len(list(dest.iterdir())) == 2


def test_ios_bundle_copies_package_directory(detector, tmp_path):
    pkg = make_mlpackage(detector, tmp_path)
    dest = tmp_path / "Models"
    bundle("ios", pkg, dest)
    (pkg / "Data" / "model.mlmodel").write_bytes(b"spec v2")
    art, _ = bundle("ios", pkg, dest)  # replacing a directory
    assert (art / "Data" / "model.mlmodel").read_bytes() == b"spec v2"
    assert sorted(p.name for p in dest.iterdir()) == sorted(
        [pkg.name, pkg.with_suffix(".json").name]
    )


def test_default_destinations_are_git_ignored():
    root = Path(__file__).resolve().parents[1]
    ignore = (root / ".gitignore").read_text()
    assert "android_demo/app/src/main/assets/" in ignore and "ios_demo/**/Models/" in ignore
    assert default_destination("android") == root / APPS["android"].assets
    assert default_destination("ios").name == "Models"


@pytest.mark.parametrize(
    "case,message",
    [
        ("missing artifact", "artifact not found"),
        ("missing sidecar", "sidecar not found"),
        ("wrong type", "loads .pte artifacts"),
        ("not a pte", "not an ExecuTorch program"),
        ("sidecar of another artifact", "was written for m_executorch_fp32.pte, not this file"),
        ("changed after export", "sha256"),
        ("ios without nms", "export with --target coreml --nms"),
        ("mlpackage without manifest", "not a Core ML package"),
    ],
)
def test_clear_errors(detector, tmp_path, case, message):
    app = "android"
    if case == "missing artifact":
        art = tmp_path / "nope.pte"
    elif case == "missing sidecar":
        art = make_pte(detector, tmp_path)
        art.with_suffix(".json").unlink()
    elif case == "wrong type":
        art = make_mlpackage(detector, tmp_path)
    elif case == "not a pte":
        art = make_pte(detector, tmp_path, payload=b"PK\x03\x04 a zip, not a program")
    elif case == "sidecar of another artifact":
        art = make_pte(detector, tmp_path)
        art = art.rename(tmp_path / "other.pte")
        art.with_suffix(".json").write_text((tmp_path / "m_executorch_fp32.json").read_text())
    elif case == "changed after export":
        art = make_pte(detector, tmp_path)
        art.write_bytes(b"\0\0\0\0ET12 different")
    elif case == "ios without nms":
        app, art = "ios", make_mlpackage(detector, tmp_path, nms=False)
    else:
        app, art = "ios", make_mlpackage(detector, tmp_path)
        (art / "Manifest.json").unlink()
    dest = tmp_path / "assets"
    with pytest.raises((BundleError, SidecarError, ArtifactError), match=message):
        bundle(app, art, dest)
    assert not dest.exists() or not any(dest.iterdir())


def test_cli_one_line_error(tmp_path, capsys):
    assert (
        main(
            [
                "bundle",
                "--app",
                "android",
                "--artifact",
                str(tmp_path / "x.pte"),
                "--dest",
                str(tmp_path),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "argument --artifact: not found" in err


def test_cli_bundles(detector, tmp_path, capsys):
    pte = make_pte(detector, tmp_path)
    assert (
        main(["bundle", "--app", "android", "--artifact", str(pte), "--dest", str(tmp_path / "a")])
        == 0
    )
    assert "bundled m_executorch_fp32.pte" in capsys.readouterr().out
