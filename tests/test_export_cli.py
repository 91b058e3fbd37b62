"""The export and bench commands end to end on a registered model
with a checkpoint the test writes."""

import json

import pytest
import torch

from ssdmobile.cli import main
from ssdmobile.models import create_model


@pytest.mark.slow
def test_export_then_bench(tmp_path, capsys):
    ckpt = tmp_path / "small.pth"
    torch.save(create_model("ssdlite320_mobilenet_v3_small").core.state_dict(), ckpt)
    out = tmp_path / "art"
    assert (
        main(
            [
                "export",
                "--target",
                "onnx",
                "--model",
                "ssdlite320_mobilenet_v3_small",
                "--weights",
                str(ckpt),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    art = out / "ssdlite320_mobilenet_v3_small_onnx_fp32.onnx"
    assert art.is_file() and f"wrote {art}" in capsys.readouterr().out
    sc = json.loads(art.with_suffix(".json").read_text())
    assert sc["checkpoint"]["path"] == str(ckpt) and len(sc["checkpoint"]["sha256"]) == 64
    assert (
        main(
            [
                "bench",
                "--artifact",
                str(art),
                "--runs",
                "50",
                "--warmup",
                "2",
                "--threads",
                "2",
                "--json",
                str(tmp_path / "b.json"),
            ]
        )
        == 0
    )
    b = json.loads((tmp_path / "b.json").read_text())
    assert b["runs"] == 50 and b["threads"] == 2 and 0 < b["median_ms"] <= b["p90_ms"]
    assert "machine" in b and b["machine"]["cores"]
