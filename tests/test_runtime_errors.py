"""Bad artifacts: missing, truncated, not what the extension says, missing or mismatching sidecar,
Core ML off macOS: one clear typed error each (and one line from the CLI)."""

import json
import platform
import shutil

import pytest

from ssdmobile.cli import main
from ssdmobile.errors import ArtifactError
from ssdmobile.mlprogram import MLProgramError
from ssdmobile.sidecar import Input, SidecarError
from ssdmobile.targets.artifacts import load_runner
from ssdmobile.targets.pipeline import export

from export_fixtures import tiny_detector


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    d = tmp_path_factory.mktemp("art")
    det = tiny_detector()
    return {t: export(det, t, None, d)[0].path for t in ("onnx", "torchscript", "executorch")}


def _copy(src, dst_dir, name=None):
    dst = dst_dir / (name or src.name)
    shutil.copy(src, dst)
    sc = json.loads(src.with_suffix(".json").read_text())
    sc["artifact"] = dst.name
    dst.with_suffix(".json").write_text(json.dumps(sc))
    return dst


def test_missing_and_unknown(tmp_path):
    with pytest.raises(ArtifactError, match="not found"):
        load_runner(tmp_path / "nope.onnx")
    (tmp_path / "m.tflite").write_bytes(b"x")
    with pytest.raises(ArtifactError, match=r"unknown artifact type '.tflite'"):
        load_runner(tmp_path / "m.tflite")


@pytest.mark.parametrize("target", ["onnx", "torchscript", "executorch"])
@pytest.mark.slow
def test_truncated(target, artifacts, tmp_path):
    p = _copy(artifacts[target], tmp_path)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtifactError, match=r"truncated|sha256|not a"):
        load_runner(p)
    # without the checksum in the sidecar, the runtime's own loader still refuses it
    sc = json.loads(p.with_suffix(".json").read_text())
    del sc["artifact_sha256"]
    p.with_suffix(".json").write_text(json.dumps(sc))
    with pytest.raises(ArtifactError):
        load_runner(p)


@pytest.mark.parametrize("src, fake", [("onnx", ".pte"), ("executorch", ".onnx"), ("onnx", ".pt")])
def test_content_is_not_what_the_extension_says(src, fake, artifacts, tmp_path):
    p = _copy(artifacts[src], tmp_path, "renamed" + fake)
    with pytest.raises(ArtifactError, match=r"not an? "):
        load_runner(p)


def test_missing_sidecar(artifacts, tmp_path):
    p = tmp_path / artifacts["onnx"].name
    shutil.copy(artifacts["onnx"], p)
    with pytest.raises(SidecarError, match="sidecar not found"):
        load_runner(p)


def test_mismatching_sidecar(artifacts, tmp_path):
    p = _copy(artifacts["onnx"], tmp_path)
    sc_path = p.with_suffix(".json")
    sc = json.loads(sc_path.read_text())
    sc_path.write_text(json.dumps({**sc, "target": "executorch"}))
    with pytest.raises(ArtifactError, match="describes a executorch artifact"):
        load_runner(p)
    sc_path.write_text(json.dumps({**sc, "artifact": "other.onnx"}))
    with pytest.raises(ArtifactError, match=r"written for other.onnx"):
        load_runner(p)
    # another export (different weights) under this name, beside this sidecar
    sc_path.write_text(json.dumps(sc))
    other = export(tiny_detector(seed=1), "onnx", None, tmp_path / "other")[0].path
    shutil.copy(other, p)
    with pytest.raises(ArtifactError, match="sha256 differs"):
        load_runner(p)
    sc_path.write_text("{not json")
    with pytest.raises(SidecarError, match="not valid JSON"):
        load_runner(p)
    sc_path.write_text(json.dumps({"format": "ssdmobile-sidecar"}))
    with pytest.raises(SidecarError, match="lacks"):
        load_runner(p)


@pytest.mark.skipif(platform.system() == "Darwin", reason="Core ML runs on macOS")
def test_coreml_reference_refuses_a_hollow_package(tmp_path):
    pkg = tmp_path / "m.mlpackage"
    pkg.mkdir()
    (pkg / "Manifest.json").write_text("{}")
    det = tiny_detector()
    from ssdmobile.sidecar import build_sidecar

    sc = build_sidecar(
        det.spec,
        det.anchors,
        target="coreml",
        precision="fp16",
        artifact=pkg.name,
        input=Input(
            name="image", shape=[1, 3, 64, 64], layout="NCHW", dtype="float32", color="RGB"
        ),
        outputs=[],
        nms_in_graph=False,
    ).to_dict()
    pkg.with_suffix(".json").write_text(json.dumps(sc))
    # off macOS the ML Program reference evaluator loads it, and says what is wrong in one line
    with pytest.raises(MLProgramError, match="unreadable Manifest"):
        load_runner(pkg)


def test_cli_eval_and_bench_bad_artifact_one_line(artifacts, tmp_path, capsys):
    p = _copy(artifacts["onnx"], tmp_path)
    p.write_bytes(p.read_bytes()[:100])
    for argv in (["bench", "--artifact", str(p)], ["bench", "--artifact", str(tmp_path / "x.pte")]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("ssdmobile bench: error:") and "\n" not in err
