"""Bad input to export: one typed error each, and a failing export
leaves nothing under the final name."""

import os

import pytest

from ssdmobile.cli import main
from ssdmobile.errors import ExportError, PrecisionNotAvailable, SSDMobileError
from ssdmobile.export import onnx as onnx_target
from ssdmobile.export._common import atomic_output
from ssdmobile.fileio import OutputPathError, WriteFault
from ssdmobile.targets import TARGETS
from ssdmobile.targets.pipeline import export

from export_fixtures import tiny_detector


@pytest.fixture(scope="module")
def detector():
    return tiny_detector()


def test_registry_lists_every_target():
    assert set(TARGETS) == {"torchscript", "onnx", "coreml", "executorch"}
    for name, t in TARGETS.items():
        assert (
            t.name == name and t.default_precision in t.precisions and t.suffixes[0].startswith(".")
        )
        assert t.runs_here() or t.verify is not None  # what cannot run here is checked another way


def test_unknown_target_and_precision(detector, tmp_path):
    with pytest.raises(ExportError, match="unknown target 'tflite'"):
        export(detector, "tflite", "fp32", tmp_path)
    with pytest.raises(ExportError, match="unknown precision 'fp8'"):
        export(detector, "onnx", "fp8", tmp_path)
    with pytest.raises(
        SSDMobileError, match="int8 for executorch needs calibration images: pass --calib-data"
    ):
        export(detector, "executorch", "int8", tmp_path)
    with pytest.raises(PrecisionNotAvailable, match="onnx exports fp32, int8, not fp16"):
        export(detector, "onnx", "fp16", tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_unwritable_output_directory(detector, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(OutputPathError, match="not writable"):
            export(detector, "onnx", "fp32", ro)
    finally:
        ro.chmod(0o700)


def test_output_path_that_is_a_file(detector, tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(OutputPathError, match=r"not a directory|cannot create"):
        export(detector, "onnx", "fp32", f)


def test_failing_export_leaves_no_file_under_the_final_name(detector, tmp_path, monkeypatch):
    def half_written_then_crash(model, path):
        with open(path, "wb") as fh:
            fh.write(b"\x08\x07partial onnx bytes")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("onnx.save_model", half_written_then_crash)
    # one line naming the final file and the cause (fileio.WriteFault), nothing left behind
    with pytest.raises(WriteFault, match=r"cannot write .*\.onnx: no space left on the device"):
        export(detector, "onnx", "fp32", tmp_path)
    assert list(tmp_path.iterdir()) == []  # no artifact, no sidecar, no temporary


def test_failing_export_keeps_the_previous_artifact_intact(detector, tmp_path, monkeypatch):
    good, _ort = (a.path for a in export(detector, "onnx", "fp32", tmp_path))
    before = good.read_bytes(), good.with_suffix(".json").read_text()
    monkeypatch.setattr(
        onnx_target, "_torch_export", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom"))
    )
    with pytest.raises(RuntimeError, match="boom"):
        export(detector, "onnx", "fp32", tmp_path)
    assert (good.read_bytes(), good.with_suffix(".json").read_text()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [good.name, good.with_suffix(".json").name, _ort.name, _ort.with_suffix(".json").name]
    )


def test_atomic_directory_replace(tmp_path):
    final = tmp_path / "m.mlpackage"
    for content in ("old", "new"):
        with atomic_output(final) as pending:
            pending.path.mkdir()
            (pending.path / "Manifest.json").write_text(content)
    assert (final / "Manifest.json").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["m.mlpackage"]
    with pytest.raises(ValueError), atomic_output(final) as pending:
        pending.path.mkdir()
        raise ValueError("crash while writing")
    assert (final / "Manifest.json").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["m.mlpackage"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--target", "tflite"], "unknown target 'tflite'"),
        (["--target", "onnx", "--precision", "int8"], "needs calibration images"),
        (["--target", "onnx", "--precision", "bf16"], "unknown precision"),
    ],
)
def test_cli_bad_input_is_one_line(argv, message, tmp_path, capsys):
    code = main(["export", *argv, "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert message in err and "\n" not in err and "Traceback" not in err


def test_cli_output_directory_not_writable(tmp_path, capsys):
    f = tmp_path / "a_file"
    f.write_text("")
    code = main(["export", "--target", "onnx", "--out", str(f / "sub")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "output directory" in err and "\n" not in err
