"""validate's --max-drift: fp32 rows are gated at the value given, fp16 rows at no less than
FP16_MAX_DRIFT (fp16 rounding alone moves AP by about 1e-3), and the row's status says when the
fp16 gate let a row through that --max-drift alone would have failed."""

import pytest

from ssdmobile.validate import FP16_MAX_DRIFT, Row, _guarded, drift_limit


def gated(precision: str, delta_ap: float, max_drift: float | None) -> Row:
    row = Row("coreml", precision, True, status="ML Program reference")
    with _guarded(row, max_drift):
        row.delta_ap = delta_ap
    return row


def test_limits():
    assert drift_limit("fp32", 0.001) == 0.001
    assert drift_limit("int8", 0.001) == 0.001
    assert drift_limit("fp16", 0.001) == FP16_MAX_DRIFT == 0.002
    assert drift_limit("fp16", 0.005) == 0.005
    assert drift_limit("fp16", None) is None


@pytest.mark.parametrize(
    "precision, delta_ap, failed, says",
    [
        ("fp32", -0.0015, True, "DRIFT |ΔAP| 0.0015 > 0.001"),
        ("fp16", -0.0015, False, "ML Program reference; fp16 gate 0.002 (|ΔAP| 0.0015 > 0.001)"),
        ("fp16", -0.0025, True, "DRIFT |ΔAP| 0.0025 > 0.002"),
        ("fp16", +0.0005, False, "ML Program reference"),
    ],
)
def test_rows(precision, delta_ap, failed, says):
    row = gated(precision, delta_ap, 0.001)
    assert row.failed is failed
    assert row.status == says


def test_no_gate():
    assert gated("fp32", -0.5, None).status == "ML Program reference"
