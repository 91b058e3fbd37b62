"""Datasets, images and AP: decodable images handled correctly, bad input rejected clearly."""

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from ssdmobile.cli import main
from ssdmobile.data import CocoDataset, load_image, open_dataset
from ssdmobile.errors import DatasetError, ImageError
from ssdmobile.evaluate import coco_eval

from conftest import COCO128


@pytest.fixture(scope="module")
def rgb(val_image_paths):
    return np.array(Image.open(val_image_paths[0]).convert("RGB"))


def test_grayscale_cmyk_alpha_are_rgb(tmp_path, rgb):
    Image.fromarray(rgb).convert("L").save(tmp_path / "g.jpg")
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "c.jpg")
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 128, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    for name in ("g.jpg", "c.jpg", "a.png"):
        img = load_image(tmp_path / name)
        assert img.dtype == torch.uint8 and img.shape == (3, *rgb.shape[:2]), name
    gray = load_image(tmp_path / "g.jpg")
    assert torch.equal(gray[0], gray[1]) and torch.equal(gray[1], gray[2])
    # PNG: lossless
    assert torch.equal(load_image(tmp_path / "a.png"), torch.from_numpy(rgb).permute(2, 0, 1))
    assert (
        load_image(tmp_path / "c.jpg").float() - torch.from_numpy(rgb).permute(2, 0, 1)
    ).abs().mean() < 8


def test_exif_rotation(tmp_path, rgb):
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 CW to display
    Image.fromarray(rgb).save(tmp_path / "r.jpg", exif=exif, quality=95)
    h, w = rgb.shape[:2]
    assert load_image(tmp_path / "r.jpg").shape == (3, w, h)  # displayed orientation
    # an annotation made on the stored pixels keeps them
    assert load_image(tmp_path / "r.jpg", expected_size=(w, h)).shape == (3, h, w)


def test_bad_images(tmp_path, val_image_paths):
    with pytest.raises(ImageError, match="not found"):
        load_image(tmp_path / "missing.jpg")
    (tmp_path / "junk.jpg").write_bytes(b"\xff\xd8\xff" + b"\x00" * 100)
    with pytest.raises(ImageError, match="cannot decode"):
        load_image(tmp_path / "junk.jpg")
    data = val_image_paths[0].read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 3])
    with pytest.raises(ImageError, match="cannot decode"):
        load_image(tmp_path / "cut.jpg")


def _mini_coco(tmp_path, n=2):
    src = json.loads((COCO128 / "annotations" / "instances_val2017.json").read_text())
    images = sorted(src["images"], key=lambda i: i["id"])[:n]
    ids = {i["id"] for i in images}
    (tmp_path / "images" / "val").mkdir(parents=True)
    for im in images:
        shutil.copy(COCO128 / "images" / "val2017" / im["file_name"], tmp_path / "images" / "val")
    data = {
        "images": images,
        "annotations": [a for a in src["annotations"] if a["image_id"] in ids],
        "categories": src["categories"],
    }
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "instances_val.json").write_text(json.dumps(data))
    return data


def test_dataset_errors(tmp_path):
    data = _mini_coco(tmp_path)
    ann = tmp_path / "annotations" / "instances_val.json"
    assert len(CocoDataset(tmp_path, "val")) == 2
    ann.write_text("{not json")
    with pytest.raises(DatasetError, match="not valid JSON"):
        CocoDataset(tmp_path, "val")
    ann.write_text(json.dumps({"images": "x"}))
    with pytest.raises(DatasetError, match="not a COCO instances file"):
        CocoDataset(tmp_path, "val")
    ann.write_text(
        json.dumps({**data, "images": data["images"] + [{"id": 7, "file_name": "gone.jpg"}]})
    )
    with pytest.raises(DatasetError, match=r"missing.*gone.jpg"):
        CocoDataset(tmp_path, "val")
    ann.write_text(json.dumps({**data, "images": [], "annotations": []}))
    with pytest.raises(DatasetError, match="no images"):
        CocoDataset(tmp_path, "val")
    with pytest.raises(DatasetError, match="not found"):
        open_dataset(tmp_path / "nope", "val")


def test_voc_dataset(tmp_path, val_image_paths):
    (tmp_path / "Annotations").mkdir()
    (tmp_path / "JPEGImages").mkdir()
    shutil.copy(val_image_paths[0], tmp_path / "JPEGImages" / "a.jpg")
    (tmp_path / "Annotations" / "a.xml").write_text(
        "<annotation><filename>a.jpg</filename><size><width>640</width><height>426</height></size>"
        "<object><name>person</name><difficult>0</difficult><bndbox><xmin>11</xmin><ymin>21</ymin>"
        "<xmax>110</xmax><ymax>220</ymax></bndbox></object>"
        "<object><name>dog</name><difficult>1</difficult><bndbox><xmin>1</xmin><ymin>1</ymin>"
        "<xmax>5</xmax><ymax>5</ymax></bndbox></object></annotation>"
    )
    ds = open_dataset(tmp_path, "test")
    assert len(ds) == 1 and ds[0].image.shape == (3, 426, 640)
    anns = ds.coco.dataset["annotations"]
    # 1-based inclusive -> COCO
    assert len(anns) == 1 and anns[0]["bbox"] == [10.0, 20.0, 100.0, 200.0]
    # perfect detection of the ground truth gives AP 1
    preds = {
        ds.image_ids[0]: {
            "boxes": torch.tensor([[10.0, 20.0, 110.0, 220.0]]),
            "scores": torch.tensor([0.9]),
            "labels": torch.tensor([1]),
        }
    }
    assert coco_eval(ds, preds, ["bg", "person"]).ap == pytest.approx(1.0)


def test_coco_eval_ground_truth_is_perfect_and_shifted_is_not():
    ds = CocoDataset(COCO128, "val2017", max_images=8)
    names = ["__background__", *ds.category_ids_by_name]
    label_of = {cid: names.index(n) for n, cid in ds.category_ids_by_name.items()}
    preds, shifted = {}, {}
    for image_id in ds.image_ids:
        t = ds.targets(image_id)
        labels = torch.tensor([label_of[int(c)] for c in t["category_ids"]], dtype=torch.int64)
        preds[image_id] = {"boxes": t["boxes"], "scores": torch.ones(len(labels)), "labels": labels}
        shifted[image_id] = {**preds[image_id], "boxes": t["boxes"] + 30}
    r = coco_eval(ds, preds, names, ["person"])
    assert r.ap == pytest.approx(1.0) and r.classes == ["person"]
    assert coco_eval(ds, shifted, names, ["person"]).ap < 0.5
    with pytest.raises(DatasetError, match="not in the dataset: unicorn"):
        coco_eval(ds, preds, names, ["unicorn"])


def test_cli_eval_writes_json(tmp_path, capsys):
    from ssdmobile.models import create_model

    ckpt = tmp_path / "m.pth"
    torch.save(create_model("ssdlite320_mobilenet_v3_large").core.state_dict(), ckpt)
    out = tmp_path / "r.json"
    rc = main(
        [
            "eval",
            "--model",
            "ssdlite320_mobilenet_v3_large",
            "--weights",
            str(ckpt),
            "--data",
            str(COCO128),
            "--split",
            "val2017",
            "--classes",
            "person",
            "--max-images",
            "4",
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    assert rc == 0
    result = json.loads(out.read_text())
    assert (
        result["num_images"] == 4 and result["classes"] == ["person"] and len(result["stats"]) == 12
    )
    assert "Average Precision" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["eval", "--model", "nope", "--data", str(COCO128)], "unknown model 'nope'"),
        (
            ["eval", "--model", "ssdlite320_mobilenet_v3_large", "--data", "/nonexistent"],
            "argument --data: directory not found: /nonexistent",
        ),
    ],
)
def test_cli_errors_are_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
