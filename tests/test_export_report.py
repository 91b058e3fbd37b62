"""validate's gate and report: the table, JSON and chart, and a non-zero exit on drift."""

import json

import pytest

from ssdmobile.cli import main
from ssdmobile.data import CocoDataset
from ssdmobile.report import HEADERS, write_report
from ssdmobile.validate import ValidateOptions, detections_match, validate

from conftest import COCO128
from export_fixtures import tiny_detector


@pytest.fixture(scope="module")
def dataset():
    return CocoDataset(COCO128, "val2017", max_images=3)


def test_validate_measures_and_reports(dataset, tmp_path):
    det = tiny_detector(name="tiny_ssd")
    det.spec = det.spec.replace(class_names=("__background__", "person", "car"))
    result = validate(
        det,
        dataset,
        tmp_path,
        ValidateOptions(
            targets=["onnx"],
            precisions=["fp32", "fp16"],
            nms_modes=(False,),
            runs=50,
            warmup=2,
            max_drift=0.01,
            progress=False,
        ),
    )
    onnx_row, ort_row, fp16_row = result.rows
    for row in (onnx_row, ort_row):
        assert row.status == "ok" and row.delta_ap == 0.0 and row.max_abs_diff < 1e-4
        assert row.det_match == "3/3" and row.latency_p90_ms >= row.latency_median_ms > 0
        # ONNX Runtime's mobile usability verdict, from the sidecar
        assert (row.mobile["nnapi"]["verdict"], row.mobile["nnapi"]["partitions"]) == ("YES", 1)
    assert ort_row.variant == "ort" and ort_row.artifact.endswith("_mobile.ort")
    assert fp16_row.status == "not available: onnx exports fp32, int8, not fp16"
    paths = write_report(result, tmp_path)
    md = paths["md"].read_text()
    assert all(h in md for h in HEADERS) and "| onnx " in md
    assert "| fp32 (ort) " in md and md.count("NNAPI YES (1 part., 100%)") == 2
    js = json.loads(paths["json"].read_text())
    assert js["rows"][0]["ap"] == onnx_row.ap and js["meta"]["images"] == 3
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    sc = json.loads(paths["md"].parent.joinpath("artifacts", "tiny_ssd_onnx_fp32.json").read_text())
    assert sc["metrics"]["delta_ap"] == 0.0 and sc["metrics"]["images"] == 3


@pytest.mark.slow
def test_validate_gate_flags_drift(dataset, tmp_path, monkeypatch):
    import ssdmobile.validate as v
    from ssdmobile.runtime import Predictor

    original = Predictor.detections

    def drop_half(self, outputs, sizes):  # a runtime that silently loses boxes
        return [{k: v[: len(v) // 2] for k, v in d.items()} for d in original(self, outputs, sizes)]

    real_eval = v.coco_eval
    calls = []

    def eval_with_ap_loss(*args, **kwargs):  # a random tiny model has AP ~0: make the loss visible
        r = real_eval(*args, **kwargs)
        calls.append(r)
        if len(calls) > 1:
            r.stats["AP"] -= 0.05
        return r

    monkeypatch.setattr(Predictor, "detections", drop_half)
    monkeypatch.setattr(v, "coco_eval", eval_with_ap_loss)
    result = validate(
        tiny_detector(),
        dataset,
        tmp_path,
        ValidateOptions(
            targets=["onnx"],
            precisions=["fp32"],
            nms_modes=(False,),
            runs=50,
            warmup=1,
            max_drift=0.0,
            progress=False,
        ),
    )
    for row in result.rows:  # .onnx and .ort
        assert row.status.startswith("DRIFT") and row.det_match == "0/3"


def test_detections_match_tolerates_only_ties_at_the_cut():
    import torch

    ref = {
        "boxes": torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30]]),
        "scores": torch.tensor([0.9, 0.5]),
        "labels": torch.tensor([1, 1]),
    }
    assert detections_match(ref, ref, max_detections=100)
    moved = {**ref, "boxes": ref["boxes"] + torch.tensor([[0.0, 0, 0, 0], [2, 0, 0, 0]])}
    assert not detections_match(ref, moved, max_detections=100)
    swapped = {k: v.flip(0) for k, v in ref.items()}
    assert detections_match(ref, swapped, max_detections=100)
    relabeled = {**ref, "labels": torch.tensor([1, 2])}
    assert not detections_match(ref, relabeled, max_detections=100)
    # tail at the cut
    assert detections_match(ref, {k: v[:1] for k, v in ref.items()}, max_detections=2)
    assert not detections_match(ref, {k: v[:1] for k, v in ref.items()}, max_detections=100)


def test_cli_validate_bad_target_is_one_line(capsys):
    code = main(["validate", "--data", str(COCO128), "--targets", "tflite"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "unknown target 'tflite'" in err and "\n" not in err


def test_validate_measures_given_artifacts(dataset, tmp_path):
    """--artifacts: an artifact exported earlier (a QAT .pte, say) is measured in the same run and
    table; one from another model is refused before any work."""
    from ssdmobile.errors import SSDMobileError
    from ssdmobile.targets.pipeline import export

    det = tiny_detector(name="tiny_ssd")
    path, _ort = (a.path for a in export(det, "onnx", "fp32", tmp_path / "given", nms=False))
    result = validate(
        det,
        dataset,
        tmp_path / "v",
        ValidateOptions(targets=[], artifacts=[path], runs=50, warmup=1, progress=False),
    )
    (row,) = result.rows
    assert (row.target, row.precision, row.nms, row.variant) == ("onnx", "fp32", False, "given")
    assert (
        row.status == "ok"
        and row.delta_ap == 0.0
        and row.det_match == "3/3"
        and row.latency_median_ms > 0
    )
    other = tiny_detector(name="another_ssd")
    with pytest.raises(SSDMobileError, match="exported from 'tiny_ssd', not from 'another_ssd'"):
        validate(
            other,
            dataset,
            tmp_path / "w",
            ValidateOptions(targets=[], artifacts=[path], progress=False),
        )
    with pytest.raises(SSDMobileError, match="artifact not found"):
        validate(
            det,
            dataset,
            tmp_path / "w",
            ValidateOptions(targets=[], artifacts=[tmp_path / "nope.pte"], progress=False),
        )
