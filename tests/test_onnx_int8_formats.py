"""ONNX int8 formats (ssdmobile.quant.onnx_int8.FORMATS, `--int8-format`): each one, made from the
real person detector calibrated on 2 train2017 images, loads in onnxruntime, is the format its
name says (QDQ pairs or QLinearConv), finds the people the float model finds on real val2017
images, and its sidecar says which format it is."""

import onnx
import pytest

from ssdmobile.cli import main
from ssdmobile.errors import QuantizationError
from ssdmobile.models import create_model
from ssdmobile.quant.onnx_int8 import DEFAULT_FORMAT, FORMATS, quantize_onnx_file
from ssdmobile.quant.ptq import calibration_set
from ssdmobile.runtime import Predictor, onnx as onnx_runtime
from ssdmobile.sidecar import load_sidecar
from ssdmobile.targets import TARGETS, check_export, int8_formats_for
from ssdmobile.targets.artifacts import load_predictor
from ssdmobile.targets.pipeline import export
from test_quant_ptq import CALIB, assert_overlaps_float, people_images  # noqa: F401  (fixture)

from conftest import COCO128, PERSON_GRAPH


@pytest.fixture(scope="module")
def person():
    return create_model("ssdlite_mobilenet_v2_person", weights=PERSON_GRAPH)


@pytest.fixture(scope="module")
def fp32_onnx(person, tmp_path_factory):
    """The fp32 export and 2 calibration inputs, shared by every
    format (exporting is the slow part)."""
    artifact, _ort = export(person, "onnx", "fp32", tmp_path_factory.mktemp("fp32"))
    inputs, _ = calibration_set(person, CALIB)
    return artifact.path, inputs


@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.slow
def test_each_format_runs_and_matches_float(fp32_onnx, people_images, tmp_path, fmt):  # noqa: F811
    fp32, inputs = fp32_onnx
    int8 = tmp_path / f"{fmt}.onnx"
    record = quantize_onnx_file(fp32, int8, inputs, "minmax", fmt=fmt)
    form = FORMATS[fmt]
    assert record["format"] == fmt and record["reduce_range"] == form.reduce_range
    ops = {n.op_type for n in onnx.load(str(int8)).graph.node}
    if form.quant_format == "QDQ":
        assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops and "QLinearConv" not in ops
    else:
        assert "QLinearConv" in ops and "Conv" not in ops
    # the int8 file has the fp32 file's inputs and outputs, so the fp32 sidecar describes it
    sidecar = load_sidecar(fp32).replaced(
        precision="int8", quantization={**record, "calibration": None}
    )
    runner = onnx_runtime.load(int8, sidecar, threads=2)
    assert_overlaps_float(Predictor(runner), people_images)


@pytest.mark.slow  # a second ONNX export (~40 s on the shared 2 cores)
def test_export_names_the_format_and_the_sidecar_records_it(person, tmp_path):
    artifact, ort_artifact = export(
        person, "onnx", "int8", tmp_path, calibration=CALIB, int8_format="qdq-u8s8"
    )
    # the default format keeps the historical name; another one is part of the file name
    assert artifact.path.name == "ssdlite_mobilenet_v2_person_onnx_int8_qdq-u8s8.onnx"
    # ORT Mobile's file, converted from the quantized one, records the same format
    assert ort_artifact.path.name == "ssdlite_mobilenet_v2_person_onnx_int8_qdq-u8s8_mobile.ort"
    assert load_sidecar(ort_artifact.path).quantization.format == "qdq-u8s8"
    side = load_sidecar(artifact.path).to_dict()
    q = side["quantization"]
    assert q["format"] == "qdq-u8s8" and q["reduce_range"] is True
    assert q["method"].startswith("onnxruntime quantize_static (QDQ, U8S8)")
    assert q["activations"].startswith("uint8") and "reduce_range" in q["weights"]
    load_predictor(artifact.path, threads=2)  # the sidecar describes this very file


def test_format_checked_through_the_target_table():
    assert TARGETS["onnx"].int8.default_format == DEFAULT_FORMAT
    assert set(TARGETS["onnx"].int8.formats) == set(FORMATS)
    with pytest.raises(
        QuantizationError, match="unknown onnx int8 format 'qdq8'; choose one of qdq, "
    ):
        check_export("onnx", "int8", CALIB, int8_format="qdq8")
    with pytest.raises(QuantizationError, match="for int8 exports, not onnx fp32"):
        check_export("onnx", "fp32", int8_format="qdq")
    with pytest.raises(QuantizationError, match="executorch int8 has a single format"):
        check_export("executorch", "int8", CALIB, int8_format="qdq")
    assert int8_formats_for(["onnx", "executorch"], ["qdq", "qoperator-u8s8"]) == {
        "onnx": ["qdq", "qoperator-u8s8"],
        "executorch": [None],
    }
    with pytest.raises(
        QuantizationError, match="int8 formats are for coreml, onnx, not executorch"
    ):
        int8_formats_for(["executorch"], ["qdq"])


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["export", "--target", "onnx", "--precision", "int8", "--int8-format", "u8"],
            "unknown onnx int8 format 'u8'; choose one of qdq, qdq-u8s8, qoperator-u8s8",
        ),
        (
            ["export", "--target", "onnx", "--int8-format", "qdq"],
            "an int8 format is for int8 exports, not onnx fp32",
        ),
        (
            [
                "quantize",
                "--model",
                "ssdlite_mobilenet_v2_person",
                "--target",
                "executorch",
                "--int8-format",
                "qdq",
            ],
            "int8 formats are for coreml, onnx, not executorch",
        ),
        (
            ["validate", "--targets", "onnx", "--int8-formats", "qdq"],
            "int8 formats need int8 among the precisions (--precisions ... int8)",
        ),
    ],
)
def test_bad_format_is_one_line_exit_2(argv, message, tmp_path, capsys):
    data = (
        ["--calib-data", str(COCO128)]
        if argv[0] == "quantize"
        else ["--data", str(COCO128)]
        if argv[0] == "validate"
        else []
    )
    assert main(argv + data + ["--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [f"ssdmobile {argv[0]}: error: {message}"], err
    assert not (tmp_path / "out").exists()  # nothing left behind
