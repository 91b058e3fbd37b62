"""The cross-language test vectors (tests/vectors/*.json, see its README.md) run through the Python
reference: every case of every section, named by (file, section, case). The Kotlin (VectorsTest in
android_demo/postprocess) and Swift (VectorsTests in ios_demo/SSDMobileKit)
runners check the same files.

The `compute_*` functions take a case as plain JSON data and return what the reference computes in
the case's expected fields; tests/vectors/make_vectors.py uses them to fill those fields in."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from ssdmobile.bench import median_p90
from ssdmobile.drift import raw_difference, verdict
from ssdmobile.ops.boxes import class_scores, decode_boxes, nms_per_class
from ssdmobile.schema.vectors import TestVectors
from ssdmobile.spec import BoxCoder, Postprocess
from ssdmobile.validate import detections_match
from ssdmobile.visualize import preview_box

VECTORS = Path(__file__).resolve().parent / "vectors"
SECTIONS = tuple(s for s in TestVectors.model_fields if s not in ("format", "version"))
NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


# -- the reference, on one case as JSON data ------------------------------------------------------


def _f32(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32)


def compute_decode(case: dict) -> dict:
    c = case["box_coder"]
    coder = BoxCoder(weights=tuple(c["weights"]), order=c["order"], clamp=c["clamp"])
    boxes = decode_boxes(_f32(case["box_encodings"])[None], _f32(case["anchors"]), coder)[0]
    scores = class_scores(_f32(case["class_logits"]), case["score"])
    return {"expected_boxes": boxes.double().tolist(), "expected_scores": scores.double().tolist()}


def compute_nms(case: dict) -> dict:
    c = case["config"]
    cfg = Postprocess(
        score_thresh=c["score_thresh"],
        iou_thresh=c["iou_thresh"],
        topk_candidates=c["topk_candidates"],
        max_per_class=c["max_per_class"],
        max_detections=c["max_detections"],
    )
    boxes, scores, labels = nms_per_class(
        _f32(case["boxes"]).reshape(-1, 4), _f32(case["scores"]), cfg
    )
    return {
        "expected": [
            {"box": b, "score": s, "label": k}
            for b, s, k in zip(boxes.double().tolist(), scores.double().tolist(), labels.tolist())
        ]
    }


def _detections(dets: list[dict]) -> dict:
    return {
        "boxes": _f32([d["box"] for d in dets]).reshape(-1, 4),
        "scores": _f32([d["score"] for d in dets]),
        "labels": torch.tensor([d["label"] for d in dets], dtype=torch.long),
    }


def compute_match(case: dict) -> dict:
    return {
        "expected": detections_match(
            _detections(case["reference"]),
            _detections(case["candidate"]),
            case["max_detections"],
            case["box_tol_px"],
            case["score_tol"],
        )
    }


def compute_drift(case: dict) -> dict:
    """ssdmobile.drift.compare's rule, on outputs given as values (device outputs as float32, as the
    apps hold them, with the case's NaN/inf put in) and each image's detection verdict given."""
    images = case["images"]
    raw = {im["float_outputs"] is not None for im in images}
    if len(raw) != 1:
        raise ValueError(
            "either every image of a case has float_outputs or none has (NMS in the graph)"
        )
    raw = raw.pop()
    max_diff, within, non_finite, matched = 0.0, True, 0, 0
    for im in images:
        device = [np.asarray(o, dtype=np.float32) for o in im["device_outputs"]]
        for nf in im.get("non_finite", []):
            device[nf["output"]][nf["index"]] = NON_FINITE[nf["value"]]
        bad = sum(int((~np.isfinite(o)).sum()) for o in device)
        non_finite += bad
        if raw:
            if len(im["float_outputs"]) != len(device):
                raise ValueError(
                    f"{len(device)} device outputs for {len(im['float_outputs'])} float outputs"
                )
            for want, got in zip(im["float_outputs"], device):
                if len(want) != got.size:
                    raise ValueError(
                        f"a device output has {got.size} values, the float one {len(want)}"
                    )
                diff, ok = raw_difference(
                    np.asarray(want, dtype=np.float32), got, case["rtol"], case["atol"]
                )
                max_diff, within = max(max_diff, diff), within and ok
        matched += bad == 0 and im["detections_match"]
    raw_ok = within if raw else None
    return {
        "expected": {
            "max_abs_diff_raw": max_diff if raw else None,
            "raw_within_tolerance": raw_ok,
            "non_finite": non_finite,
            "detections_matched": matched,
            "passed": verdict(non_finite, raw_ok, matched, case["min_images_matched"]),
        }
    }


def compute_preview(case: dict) -> dict:
    return {
        "expected": list(
            preview_box(
                case["box"],
                case["src_width"],
                case["src_height"],
                case["view_width"],
                case["view_height"],
                case["mode"],
                case["mirror"],
            )
        )
    }


def compute_latency(case: dict) -> dict:
    """ssdmobile.bench's median and p90 of the timed runs."""
    median, p90 = median_p90(case["times_ms"])
    return {"expected_median": median, "expected_p90": p90}


COMPUTE = {
    "decode": compute_decode,
    "nms": compute_nms,
    "match": compute_match,
    "drift": compute_drift,
    "preview": compute_preview,
    "latency": compute_latency,
}


# -- the files ------------------------------------------------------------------------------------


def _load() -> tuple[dict[str, TestVectors], dict[str, str]]:
    files, errors = {}, {}
    for path in sorted(VECTORS.glob("*.json")):
        try:
            files[path.name] = TestVectors.model_validate_json(path.read_bytes(), strict=True)
        except ValidationError as e:
            errors[path.name] = str(e)
    return files, errors


FILES, ERRORS = _load()
CASES = [
    (name, section, case)
    for name, vectors in FILES.items()
    for section in SECTIONS
    for case in getattr(vectors, section)
]


@pytest.mark.parametrize("name", sorted([*FILES, *ERRORS]))
def test_file_is_valid(name):
    assert name not in ERRORS, (
        f"tests/vectors/{name} is not a valid TestVectors file:\n{ERRORS[name]}"
    )


def test_every_section_has_cases():
    assert not [s for s in SECTIONS if not any(section == s for _, section, _ in CASES)]


def test_case_names_unique_within_section():
    seen: dict[tuple[str, str], str] = {}
    for file, section, case in CASES:
        assert (section, case.name) not in seen, (
            f"{section} case {case.name!r} is in {seen[section, case.name]} and {file}"
        )
        seen[section, case.name] = file


def _close(got, want, tol: float, where: str):
    """Nested lists of floats equal within tol (absolute)."""
    if isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), f"{where}: {got} != {want}"
        for i, (g, w) in enumerate(zip(got, want)):
            _close(g, w, tol, f"{where}[{i}]")
    else:
        assert abs(got - want) <= tol, f"{where}: {got} != {want} (tolerance {tol})"


def _check_decode(case, got):
    _close(got["expected_boxes"], case.expected_boxes, case.tolerance, "boxes")
    _close(got["expected_scores"], case.expected_scores, case.tolerance, "scores")


def _check_nms(case, got):
    got = got["expected"]
    assert [d["label"] for d in got] == [d.label for d in case.expected], f"labels: got {got}"
    for i, (g, w) in enumerate(zip(got, case.expected)):
        _close(g["box"], w.box, case.tolerance, f"detection {i} box")
        _close(g["score"], w.score, case.tolerance, f"detection {i} score")


def _check_drift(case, got):
    got, want = got["expected"], case.expected.model_dump()
    assert {k: v for k, v in got.items() if k != "max_abs_diff_raw"} == {
        k: v for k, v in want.items() if k != "max_abs_diff_raw"
    }
    if want["max_abs_diff_raw"] is None or got["max_abs_diff_raw"] is None:
        assert got["max_abs_diff_raw"] == want["max_abs_diff_raw"]
    else:  # the same double subtractions of float32 values: exact up to the JSON round trip
        _close(
            got["max_abs_diff_raw"],
            want["max_abs_diff_raw"],
            1e-12 * max(1.0, want["max_abs_diff_raw"]),
            "max_abs_diff_raw",
        )


def _check_preview(case, got):
    _close(got["expected"], case.expected, case.tolerance, "rect")


def _check_exact(case, got):
    for key, value in got.items():
        assert value == getattr(case, key), (
            f"{key}: the reference says {value!r}, the case {getattr(case, key)!r}"
        )


CHECK = {
    "decode": _check_decode,
    "nms": _check_nms,
    "match": _check_exact,
    "drift": _check_drift,
    "preview": _check_preview,
    "latency": _check_exact,
}


@pytest.mark.parametrize("file,section,case", CASES, ids=[f"{f}-{s}-{c.name}" for f, s, c in CASES])
def test_case(file, section, case):
    CHECK[section](case, COMPUTE[section](case.model_dump()))
