"""`ssdmobile golden`: the files the Kotlin post-processing tests read are self-consistent (the raw
tensors written, decoded and NMS'd again, give the detections written) and overrides are checked."""

import json

import numpy as np
import pytest
import torch

from ssdmobile.cli import main
from ssdmobile.errors import SSDMobileError
from ssdmobile.golden import apply_overrides, write_golden
from ssdmobile.models import create_model
from ssdmobile.models.weights import randomize_
from ssdmobile.ops.boxes import class_scores, decode_boxes, nms_per_class
from ssdmobile.sidecar import to_sidecar


def test_golden_files_reproduce_the_reference(tmp_path, val_image_paths):
    det = randomize_(create_model("ssdlite320_mobilenet_v3_small"), seed=3)
    det.spec = apply_overrides(det.spec, ["postprocess.max_per_class=5", "box_coder.order=yxhw"])
    manifest = json.loads(
        write_golden(det, val_image_paths[:1], tmp_path, weights="random").read_text()
    )
    sidecar = to_sidecar(json.loads((tmp_path / "sidecar.json").read_text())).to_dict()
    assert (
        sidecar["nms"]["max_per_class"] == 5 and sidecar["decode"]["box_coder"]["order"] == "yxhw"
    )
    (entry,) = manifest["images"]
    a, c = entry["class_logits"]["shape"]
    enc = torch.from_numpy(
        np.fromfile(tmp_path / entry["box_encodings"]["file"], "<f4").reshape(a, 4)
    )
    logits = torch.from_numpy(
        np.fromfile(tmp_path / entry["class_logits"]["file"], "<f4").reshape(a, c)
    )
    boxes = decode_boxes(enc[None], det.anchors, det.spec.box_coder)[0]
    kb, ks, kl = nms_per_class(
        boxes, class_scores(logits, det.spec.postprocess.score), det.spec.postprocess
    )
    d = entry["detections"]
    assert d["count"] == len(kl) > 0
    assert d["labels"] == kl.tolist()
    assert np.array_equal(np.float32(d["scores"]), ks.numpy())
    assert np.array_equal(np.float32(d["boxes"]), kb.numpy())
    assert (tmp_path / entry["rgb"]["file"]).stat().st_size == entry["height"] * entry["width"] * 3


@pytest.mark.parametrize(
    "bad", ["nope", "postprocess.nope=1", "box_coder.order=xyxy", "spec.name=x"]
)
def test_bad_override_is_one_clear_error(bad):
    with pytest.raises(SSDMobileError, match="bad override"):
        apply_overrides(create_model("ssdlite320_mobilenet_v3_small").spec, [bad])


def test_cli_needs_weights_or_seed(tmp_path, capsys):
    from conftest import COCO128

    assert (
        main(
            [
                "golden",
                "--model",
                "ssdlite320_mobilenet_v3_small",
                "--data",
                str(COCO128),
                "--out",
                str(tmp_path),
            ]
        )
        == 2
    )
    assert "--random-seed" in capsys.readouterr().err
