"""Every sidecar field the sample apps read is promised by ssdmobile.sidecar.REQUIRED_FIELDS and is
present in what build_sidecar writes and, for each target, in what a real export writes.

The apps' lists are read from their sources (Sidecar.kt FIELDS_READ, Sidecar.swift fieldsRead), so
a new field read in an app without a matching REQUIRED_FIELDS entry fails here."""
import importlib.util
import re
from pathlib import Path

import pytest

from ssdmobile.models import create_model
from ssdmobile.sidecar import REQUIRED_FIELDS, _get, build_sidecar, read_sidecar, validate_sidecar

REPO = Path(__file__).resolve().parents[1]
KOTLIN = REPO / "android_demo/postprocess/src/main/kotlin/org/ssdmobile/postprocess/Sidecar.kt"
SWIFT = REPO / "ios_demo/SSDMobileDemo/Sidecar.swift"


def _string_list(path: Path, start: str, end: str) -> list[str]:
    text = path.read_text()
    i = text.index(start)
    block = text[i:text.index(end, i)]
    return re.findall(r'"([a-z_.]+)"', block)


def android_fields():
    return _string_list(KOTLIN, "val FIELDS_READ = listOf(", ")")


def ios_fields():
    return _string_list(SWIFT, "static let fieldsRead = [", "]")


@pytest.mark.parametrize("app", ["android", "ios"])
def test_app_fields_are_required(app):
    fields = android_fields() if app == "android" else ios_fields()
    assert len(fields) > 10, f"could not read the {app} app's field list"
    missing = sorted(set(fields) - set(REQUIRED_FIELDS))
    assert not missing, f"the {app} app reads {missing}, which REQUIRED_FIELDS does not promise"


@pytest.fixture(scope="module")
def detector():
    return create_model("ssdlite320_mobilenet_v3_small")


def _check_app_fields(sidecar: dict):
    validate_sidecar(sidecar)
    for f in set(android_fields()) | set(ios_fields()):
        _get(sidecar, f)  # KeyError names the field


@pytest.mark.parametrize("nms", [False, True])
def test_build_sidecar_has_every_app_field(detector, nms):
    h, w = detector.spec.preprocess.size
    a = detector.anchors.shape[0]
    d = build_sidecar(detector.spec, detector.anchors, target="executorch", precision="fp32", artifact="m.pte",
                      input_name="input", input_shape=[1, 3, h, w],
                      outputs=[{"name": "box_encodings", "shape": [1, a, 4], "dtype": "float32", "meaning": ""}],
                      nms_in_graph=nms)
    _check_app_fields(d)
    assert len(d["decode"]["anchors"]) == a


def test_missing_field_is_named(detector):
    d = build_sidecar(detector.spec, detector.anchors, target="executorch", precision="fp32", artifact="m.pte",
                      input_name="input", input_shape=[1, 3, 320, 320], outputs=[], nms_in_graph=False)
    del d["nms"]["max_per_class"]
    with pytest.raises(Exception, match="nms.max_per_class"):
        validate_sidecar(d)


# -- real exports: one per target the apps load; skipped until ssdmobile.export exists ---------------
HAS_EXPORT = importlib.util.find_spec("ssdmobile.export") is not None


@pytest.mark.slow
@pytest.mark.skipif(not HAS_EXPORT, reason="ssdmobile.export not available yet")
@pytest.mark.parametrize("target,nms", [("executorch", False), ("executorch", True), ("coreml", True),
                                        ("onnx", False), ("torchscript", False)])
def test_export_sidecar_has_every_app_field(detector, tmp_path, target, nms):
    from ssdmobile.targets import TARGETS, export

    if target not in TARGETS:
        pytest.skip(f"target {target} not available")
    try:
        path = export(detector, target, None, tmp_path, nms=nms)[0].path
    except ImportError as e:  # a runtime package missing on this machine
        pytest.skip(f"{target} export needs {e.name}")
    sidecar = read_sidecar(path)
    _check_app_fields(sidecar)
    names = [o["name"] for o in sidecar["outputs"]]
    if target == "coreml":
        return  # Vision reads the pipeline's outputs itself
    # the output names the Android post-processing looks up (Sidecar.Outputs in Sidecar.kt)
    expected = ["boxes", "scores", "labels", "num_detections"] if nms else ["box_encodings", "class_logits"]
    assert names == expected
