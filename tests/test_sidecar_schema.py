"""The typed sidecar and its published JSON Schema (ssdmobile/schema/sidecar.schema.json).

The committed schema is what the pydantic models generate; every sidecar that every exporter
writes (fp32 with and without NMS, int8 per target, the lite interpreter file, golden files, the
metrics `validate` records) validates against the committed file with the `jsonschema` library,
an implementation independent of the models; and Python refuses a bad sidecar on read and on
write with one line naming the file and the field.
"""

import json
from pathlib import Path

import jsonschema
import pytest

from ssdmobile.schema import SCHEMA_FILE, SCHEMA_ID, is_stale
from ssdmobile.sidecar import (
    REQUIRED_FIELDS,
    SCHEMA_VERSION,
    Input,
    Sidecar,
    SidecarError,
    build_sidecar,
    load_sidecar,
    write_sidecar,
)

from conftest import COCO128
from export_fixtures import tiny_detector


@pytest.fixture(scope="module")
def validator():
    schema = json.loads(SCHEMA_FILE.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.fixture(scope="module")
def detector():
    return tiny_detector()


@pytest.fixture(scope="module")
def calibration():
    from ssdmobile.quant.ptq import Calibration

    return Calibration(str(COCO128), "train2017", 2, "minmax")


def schema_errors(validator, d: dict) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '<top>'}: {e.message[:120]}"
        for e in validator.iter_errors(d)
    ]


def check_written(validator, directory: Path, expected: int, pattern: str = "*.json") -> list[dict]:
    """Every sidecar in `directory` passes the committed schema, and
    Python reads back what was written."""
    paths = sorted(directory.glob(pattern))
    assert len(paths) == expected, [p.name for p in paths]
    out = []
    for path in paths:
        d = json.loads(path.read_text())
        errors = schema_errors(validator, d)
        assert not errors, f"{path.name} fails the committed schema: " + "; ".join(errors[:5])
        assert (
            load_sidecar(path).to_dict() == d
        )  # nothing added, dropped or coerced on the way back
        out.append(d)
    return out


def test_committed_schema_is_current():
    assert not is_stale(), f"{SCHEMA_FILE} is stale: run `python -m ssdmobile.schema` and commit it"


def test_schema_is_published_with_id_and_version():
    schema = json.loads(SCHEMA_FILE.read_text())
    assert schema["$id"] == SCHEMA_ID and str(SCHEMA_VERSION) in SCHEMA_ID
    assert schema["version"] == SCHEMA_VERSION
    assert schema["properties"]["schema_version"]["const"] == SCHEMA_VERSION
    assert schema["additionalProperties"] is False


# -- every exporter --------------------------------------------------------------------------------

FAST = [
    ("torchscript", "fp32", False),
    ("torchscript", "fp32", True),
    ("onnx", "fp32", False),
    ("onnx", "fp32", True),
    ("coreml", "fp32", False),
    ("coreml", "fp16", True),
    ("executorch", "fp32", False),
]
SLOW = [("executorch", "fp32", True)]


@pytest.mark.parametrize(
    "target,precision,nms", FAST + [pytest.param(*c, marks=pytest.mark.slow) for c in SLOW]
)
@pytest.mark.slow
def test_every_export_sidecar_passes_the_schema(
    validator, detector, tmp_path, target, precision, nms
):
    from ssdmobile.targets.pipeline import export

    export(detector, target, precision, tmp_path, nms=nms)
    # TorchScript writes the .pt and the lite interpreter's _lite.ptl, ONNX the .onnx and ORT
    # Mobile's _mobile.ort, each with its sidecar
    sidecars = check_written(validator, tmp_path, 2 if target in ("torchscript", "onnx") else 1)
    for d in sidecars:
        assert (d["target"], d["precision"], d["nms"]["in_graph"]) == (target, precision, nms)
        assert len(d["artifact_sha256"]) == 64 and d["runtime"]
        assert ("opset" in d) == (target == "onnx") and ("coreml" in d) == (target == "coreml")


def _int8(name, detector, calibration, out, nms):
    from ssdmobile.models import create_model
    from ssdmobile.targets.pipeline import export

    if (
        name == "torchscript"
    ):  # eager qnnpack int8 needs a registered architecture, not the tiny core
        detector = create_model("ssdlite_mobilenet_v2_person", weights=None).eval()
    return export(detector, name, "int8", out, nms=nms, calibration=calibration, progress=False)


@pytest.mark.parametrize(
    "target,nms",
    [
        ("onnx", False),
        ("onnx", True),
        ("coreml", False),
        pytest.param("executorch", False, marks=pytest.mark.slow),
        pytest.param("executorch", True, marks=pytest.mark.slow),
        pytest.param("torchscript", False, marks=pytest.mark.slow),
    ],
)
def test_every_int8_sidecar_passes_the_schema(
    validator, detector, calibration, tmp_path, target, nms
):
    _int8(target, detector, calibration, tmp_path, nms)
    for d in check_written(validator, tmp_path, 2 if target in ("torchscript", "onnx") else 1):
        q = d["quantization"]
        assert d["precision"] == "int8" and q["dtype"] == "int8" and q["method"]
        if target != "coreml":  # Core ML int8 is weights only: no calibration images
            assert q["calibration"] == {"data": str(COCO128), "split": "train2017", "num_images": 2}


def test_golden_sidecar_passes_the_schema(validator, detector, tmp_path, val_image_paths):
    from ssdmobile.golden import write_golden

    write_golden(detector, val_image_paths[:1], tmp_path, weights="random(seed=0)")
    (d,) = check_written(validator, tmp_path, 1, "sidecar.json")  # beside golden.json, the manifest
    assert d["target"] == "reference" and d["checkpoint"] == {"weights": "random(seed=0)"}


def test_validate_metrics_pass_the_schema(validator, detector, tmp_path):
    from ssdmobile.data import CocoDataset
    from ssdmobile.validate import ValidateOptions, validate

    validate(
        detector,
        CocoDataset(COCO128, "val2017", max_images=2),
        tmp_path,
        ValidateOptions(
            targets=["onnx"],
            precisions=["fp32"],
            nms_modes=(False,),
            runs=3,
            warmup=1,
            progress=False,
        ),
    )
    for d in check_written(validator, tmp_path / "artifacts", 2):  # .onnx and .ort
        m = d["metrics"]
        assert m["images"] == 2 and m["latency_ms"]["runs"] == 3
        assert m["detections_match"] == "2/2" and d["ort_mobile"]["nnapi"]["verdict"] == "YES"


# -- Python reads and writes only valid sidecars ---------------------------------------------------


def _sidecar(detector, **changes) -> dict:
    h, w = detector.spec.preprocess.size
    return build_sidecar(
        detector.spec,
        detector.anchors,
        target="executorch",
        precision="fp32",
        artifact="m.pte",
        input=Input(name="input", shape=[1, 3, h, w], layout="NCHW", dtype="float32", color="RGB"),
        outputs=[
            {"name": "box_encodings", "shape": [1, 128, 4], "dtype": "float32", "meaning": "x"}
        ],
        nms_in_graph=False,
        **changes,
    ).to_dict()


def test_build_sidecar_returns_the_validated_dict(validator, detector):
    d = _sidecar(detector, extra={"runtime": "executorch.runtime"})
    assert not schema_errors(validator, d)
    assert d["nms"]["max_per_class"] is None and "max_per_class" in d["nms"]  # null, never absent
    # optional fields only where written
    assert "opset" not in d and d["runtime"] == "executorch.runtime"
    # the JSON, not ModelSpec's tuples; stored once
    assert d["preprocess"]["size"] == [64, 64] and "spec" not in d
    assert "nms.max_per_class" in REQUIRED_FIELDS and "artifact_sha256" not in REQUIRED_FIELDS


def test_load_sidecar_is_typed(detector, tmp_path):
    path = write_sidecar(tmp_path / "m.json", _sidecar(detector))
    sc = load_sidecar(tmp_path / "m.pte")
    assert isinstance(sc, Sidecar)
    assert (
        sc.nms.max_detections == 20 and sc.decode.box_coder.order == "yxhw" and sc.metrics is None
    )
    assert len(sc.decode.anchors) == detector.anchors.shape[0]
    assert sc.to_dict() == json.loads(path.read_text())


def _mutate(d: dict, dotted: str, value=...):
    *parents, last = dotted.split(".")
    for p in parents:
        d = d[int(p)] if isinstance(d, list) else d[p]
    if value is ...:
        del d[last]
    elif isinstance(d, list):
        d[int(last)] = value
    else:
        d[last] = value


BAD = [  # (field, new value or ... to delete, what the error says)
    ("nms.max_per_class", ..., "lacks nms.max_per_class"),
    ("input.shape", [1, 3, 64], "input.shape: list should have at least 4 items"),
    ("decode.box_coder.order", "xyxy", "decode.box_coder.order: input should be 'xywh' or 'yxhw'"),
    ("nms.max_detections", "20", "nms.max_detections: input should be a valid integer"),
    ("decode.anchors.3", [0.5, 0.5, 0.1], "decode.anchors[3]: list should have at least 4 items"),
    ("outputs.0.dtype", "float64", "outputs[0].dtype"),
    ("colour", "red", "unknown field colour"),
    (
        "quantization",
        {"dtype": "int8"},
        "lacks quantization.weights, quantization.activations, quantization.method",
    ),
    ("checkpoint", {"sha256": "abc"}, "checkpoint.sha256: string should match pattern"),
    ("schema_version", 3, "schema_version 3 is newer than this ssdmobile understands"),
    ("schema_version", 1, "schema_version 1 was written by an older ssdmobile"),
    ("format", "other", "not an ssdmobile sidecar"),
]


@pytest.mark.parametrize("field,value,message", BAD, ids=[f"{b[0]}={b[1]!r}"[:40] for b in BAD])
def test_bad_sidecar_is_one_line_naming_file_and_field(
    validator, detector, tmp_path, field, value, message
):
    d = _sidecar(detector)
    _mutate(d, field, value)
    assert schema_errors(validator, d), "the schema accepts what Python refuses"
    path = tmp_path / "m.json"
    path.write_text(json.dumps(d))
    with pytest.raises(SidecarError) as e:
        load_sidecar(path)
    assert (
        str(e.value).startswith(f"{path}: ")
        and message in str(e.value)
        and "\n" not in str(e.value)
    )
    with pytest.raises(SidecarError, match=r"m2.json"):  # and nothing invalid is written
        write_sidecar(tmp_path / "m2.json", d)
    assert not (tmp_path / "m2.json").exists()


@pytest.mark.parametrize(
    "extra,message",
    [
        ({"opset": "17"}, "opset: input should be a valid integer"),
        ({"colour": "red"}, "unknown field colour"),
        ({"coreml": {"input": "image"}}, "lacks coreml.image_resize"),
    ],
)
def test_build_sidecar_refuses_untyped_extras(detector, extra, message):
    with pytest.raises(SidecarError, match=f"^sidecar of m.pte: .*{message}"):
        _sidecar(detector, extra=extra)


def test_unreadable_sidecars(tmp_path):
    with pytest.raises(SidecarError, match="sidecar not found"):
        load_sidecar(tmp_path / "x.pte")
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(SidecarError, match=r"x.json: not valid JSON"):
        load_sidecar(tmp_path / "x.pte")
    (tmp_path / "x.json").write_text(json.dumps({"format": "ssdmobile-sidecar"}))
    with pytest.raises(
        SidecarError, match=r"x.json: sidecar lacks schema_version, ssdmobile_version, model"
    ):
        load_sidecar(tmp_path / "x.json").to_dict()
