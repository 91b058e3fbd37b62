"""Device results in the apps' exact format, for tests: a mirror of the Kotlin writer
(android_demo/postprocess BenchResult.kt: keys in its order, snake_case, nulls written, one
compact line) and of the logcat line the Android app prints. test_android_postprocess.py checks
this mirror against a sample the Kotlin writer itself wrote (BenchResultTest), value for value and
key for key, so the fast tests here use what the app writes."""

from __future__ import annotations

import json

# the values of BenchResultTest.sample() (keep the two in step)
SAMPLE = {
    "app": "android",
    "artifact": "ssdlite_mobilenet_v2_person_executorch_fp32.pte",
    "model": "ssdlite_mobilenet_v2_person",
    "precision": "fp32",
    "nms_in_graph": False,
    "device": {"name": "Google Pixel 8", "soc": "Tensor G3", "os": "Android 14 (API 34)"},
    "runtime": {"name": "ExecuTorch", "version": "1.5.1", "threads": 4, "backend": "XNNPACK"},
    "warmup": 5,
    "runs": 50,
    "latency_ms": {
        "forward": {"median": 12.5, "p90": 13.25},
        "postprocess": {"median": 1.75, "p90": 2.0},
        "end_to_end": {"median": 20.125, "p90": 24.5},
    },
    "time": "2025-01-02T03:04:05.678Z",
}
DRIFT = {
    "images": 4,
    "max_abs_diff_raw": 7.62939453125e-05,
    "raw_within_tolerance": True,
    "non_finite": 0,
    "detections_matched": 4,
    "min_images_matched": 4,
    "passed": True,
}


def result(sha256: str, drift: dict | None = DRIFT, **changes) -> dict:
    """The result object, keys in the Kotlin writer's order."""
    values = {**SAMPLE, **changes}
    order = [
        "app",
        "artifact",
        "artifact_sha256",
        "model",
        "precision",
        "nms_in_graph",
        "device",
        "runtime",
        "warmup",
        "runs",
        "latency_ms",
        "drift",
        "time",
    ]
    values.update(artifact_sha256=sha256, drift=drift)
    return {"format": "ssdmobile-device-result", "version": 1, **{k: values[k] for k in order}}


def result_json(sha256: str, drift: dict | None = DRIFT, **changes) -> str:
    """What BenchResult.toJson() writes: one compact line."""
    return json.dumps(result(sha256, drift, **changes), separators=(",", ":"))


def result_file_name(d: dict) -> str:
    """BenchResult.fileName()."""
    stamp = d["time"].split(".")[0].replace("-", "").replace(":", "").removesuffix("Z")
    return f"result_{d['artifact'].split('.')[0]}_{stamp}Z.json"


def logcat(line: str, pid: int = 1234) -> str:
    """`adb logcat -s SSDMobileBench` output (threadtime format) around one result line."""
    return (
        f"--------- beginning of main\n01-02 03:04:05.600  {pid}  1301 I SSDMobileBench: x.pte "
        f"forward: median 12.50 ms, p90 13.25 ms\n01-02 03:04:05.679  {pid}  1301 "
        f"I SSDMobileBench: {line}\n"
    )


def report_for(artifact: str, sha256: str, out_dir) -> dict:
    """A validate report with one ExecuTorch fp32 row for this artifact (report.json, .md, .png in
    out_dir): what `ssdmobile device-report` merges the apps' results into."""
    from ssdmobile.bench import Timing
    from ssdmobile.report import Report, render
    from ssdmobile.validate import EagerSummary, Row, ValidateResult

    t = Timing(40.0, 50.0, 50, 2)
    row = Row(
        "executorch",
        "fp32",
        False,
        artifact=artifact,
        sha256=sha256,
        ap=0.2,
        delta_ap=0.0,
        max_abs_diff=1.5e-4,
        det_match="4/4",
        latency_median_ms=13.8,
        latency_p90_ms=20.6,
        speedup=2.9,
    )
    meta = {
        "model": "ssdlite_mobilenet_v2_person",
        "images": 4,
        "classes": ["person"],
        "threads": 2,
        "runs": 50,
        "warmup": 5,
        "max_drift": None,
        "seconds": 1.0,
        "box_tol_px": 0.5,
        "score_tol": 1e-3,
        "machine": {"cpu": "x", "cores": 2, "system": "Linux", "torch": "2"},
    }
    return render(Report(ValidateResult([row], EagerSummary(0.2, 0.4, t, t), meta)), out_dir)
