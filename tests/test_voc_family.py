"""Pascal VOC: a small real VOC-format set written here from coco128 val2017 (the COCO classes that
exist in VOC, as VOC XML + JPEGImages + ImageSets), the VOC configurations of SSD300 VGG16 on it,
and the metric VOC users quote, mAP at IoU 0.5 (ssdmobile.evaluate.voc_map50)."""

import json
import os
import xml.etree.ElementTree as ET

import pytest
import torch

from ssdmobile.data import open_dataset
from ssdmobile.data.voc import VOC_CLASSES
from ssdmobile.evaluate import label_to_category, predict_dataset, voc_map50
from ssdmobile.models import create_model

from conftest import COCO128, randomize_

COCO_TO_VOC = {
    "airplane": "aeroplane",
    "bicycle": "bicycle",
    "bird": "bird",
    "boat": "boat",
    "bottle": "bottle",
    "bus": "bus",
    "car": "car",
    "cat": "cat",
    "chair": "chair",
    "cow": "cow",
    "dining table": "diningtable",
    "dog": "dog",
    "horse": "horse",
    "motorcycle": "motorbike",
    "person": "person",
    "potted plant": "pottedplant",
    "sheep": "sheep",
    "couch": "sofa",
    "train": "train",
    "tv": "tvmonitor",
}
NUM_IMAGES = 12


@pytest.fixture(scope="module")
def voc_root(tmp_path_factory):
    """The first NUM_IMAGES val2017 images with at least one VOC-class object, in VOC layout:
    Annotations/<stem>.xml (1-based inclusive pixel boxes), JPEGImages/ (links),
    ImageSets/Main/test.txt."""
    root = tmp_path_factory.mktemp("VOC2007")
    for d in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (root / d).mkdir(parents=True)
    coco = json.loads((COCO128 / "annotations" / "instances_val2017.json").read_text())
    names = {c["id"]: c["name"] for c in coco["categories"]}
    by_image = {}
    for a in coco["annotations"]:
        if (
            names[a["category_id"]] in COCO_TO_VOC
            and not a.get("iscrowd")
            and a["bbox"][2] >= 1
            and a["bbox"][3] >= 1
        ):
            by_image.setdefault(a["image_id"], []).append(a)
    stems = []
    for im in sorted(coco["images"], key=lambda i: i["file_name"]):
        if im["id"] not in by_image or len(stems) == NUM_IMAGES:
            continue
        stem = im["file_name"].rsplit(".", 1)[0]
        os.symlink(
            COCO128 / "images" / "val2017" / im["file_name"], root / "JPEGImages" / im["file_name"]
        )
        ann = ET.Element("annotation")
        ET.SubElement(ann, "filename").text = im["file_name"]
        size = ET.SubElement(ann, "size")
        for tag, v in (("width", im["width"]), ("height", im["height"]), ("depth", 3)):
            ET.SubElement(size, tag).text = str(v)
        for a in by_image[im["id"]]:
            x, y, w, h = a["bbox"]
            obj = ET.SubElement(ann, "object")
            ET.SubElement(obj, "name").text = COCO_TO_VOC[names[a["category_id"]]]
            ET.SubElement(obj, "difficult").text = "0"
            bb = ET.SubElement(obj, "bndbox")
            for tag, v in (("xmin", x + 1), ("ymin", y + 1), ("xmax", x + w), ("ymax", y + h)):
                ET.SubElement(bb, tag).text = f"{v:.2f}"
        ET.ElementTree(ann).write(root / "Annotations" / f"{stem}.xml")
        stems.append(stem)
    (root / "ImageSets" / "Main" / "test.txt").write_text("\n".join(stems) + "\n")
    return root


@pytest.fixture(scope="module")
def dataset(voc_root):
    return open_dataset(voc_root, "test")


def _ground_truth_as_predictions(dataset, class_names, keep=lambda i: True, shift=0.0):
    index = {n: i for i, n in enumerate(class_names)}
    names = {c["id"]: c["name"] for c in dataset.coco.dataset["categories"]}
    preds = {}
    for image_id in dataset.coco.getImgIds():
        anns = [a for i, a in enumerate(dataset.coco.imgToAnns[image_id]) if keep(i)]
        boxes = torch.tensor(
            [
                [
                    a["bbox"][0] + shift,
                    a["bbox"][1],
                    a["bbox"][0] + a["bbox"][2] + shift,
                    a["bbox"][1] + a["bbox"][3],
                ]
                for a in anns
            ]
        ).reshape(-1, 4)
        preds[image_id] = {
            "boxes": boxes,
            "scores": torch.ones(len(anns)),
            "labels": torch.tensor(
                [index[names[a["category_id"]]] for a in anns], dtype=torch.long
            ),
        }
    return preds


def test_voc_set_is_real_and_complete(dataset, voc_root):
    assert len(dataset) == NUM_IMAGES
    assert [c["name"] for c in dataset.coco.dataset["categories"]] == list(VOC_CLASSES)
    present = {
        dataset.coco.cats[a["category_id"]]["name"] for a in dataset.coco.dataset["annotations"]
    }
    assert "person" in present and len(present) >= 4
    assert dataset[0].image.shape[0] == 3 and dataset[0].image.dtype == torch.uint8


def test_map50_of_ground_truth_is_one_and_of_misses_zero(dataset):
    names = create_model("ssd300_vgg16_voc").spec.class_names
    assert len(label_to_category(names, dataset)) == 20  # every VOC class maps by name
    perfect = voc_map50(dataset, _ground_truth_as_predictions(dataset, names), names)
    assert perfect.map50 == pytest.approx(1.0) and set(perfect.per_class) == set(perfect.classes)
    missed = voc_map50(dataset, _ground_truth_as_predictions(dataset, names, shift=5000.0), names)
    assert missed.map50 == 0.0
    half = voc_map50(
        dataset, _ground_truth_as_predictions(dataset, names, keep=lambda i: i % 2 == 0), names
    )
    assert 0.2 < half.map50 < 0.95
    assert "mAP@0.5" in half.summary and half.to_dict()["mAP@0.5"] == half.map50


@pytest.mark.parametrize("name", ["ssd300_vgg16_voc", "ssd300_vgg16_voc37"])
@torch.no_grad()
def test_voc_models_evaluate_on_voc_data(name, dataset):
    det = randomize_(create_model(name), seed=0)  # no trained VOC weights exist here
    subset = open_dataset(dataset.images_dir.parent, "test", max_images=2)
    preds = predict_dataset(det, subset, batch_size=2, progress=False)
    assert all(len(p["scores"]) > 0 for p in preds.values())
    result = voc_map50(subset, preds, det.spec.class_names)
    # random weights: the value means nothing
    assert 0.0 <= result.map50 <= 1.0 and result.num_images == 2
