"""Half-bad image folders follow one policy per command (docs/errors.md, each command's --help):
predict draws what decodes and skips the rest with one warning line naming them (a count in its
summary, exit 0); eval and calibration refuse up front, naming every image that cannot be decoded
(their numbers mean "all of these images")."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from ssdmobile.data import refuse_undecodable, undecodable
from ssdmobile.errors import ImageError

from conftest import COCO128, REPO, VAL_IMAGES


def _ssdmobile(*args):
    return subprocess.run(
        [sys.executable, "-m", "ssdmobile", *map(str, args)],
        cwd=REPO,
        env={**os.environ, "OMP_NUM_THREADS": "2"},
        capture_output=True,
        text=True,
        timeout=600,
    )


def _half_bad_dataset(root, split="val2017", good=2):
    """A COCO-layout dataset: the first `good` coco128 images of the split, then one text file and
    one truncated JPEG under image names, all annotated."""
    src = json.loads((COCO128 / "annotations" / f"instances_{split}.json").read_text())
    images = sorted(src["images"], key=lambda i: i["file_name"])[: good + 2]
    (root / "images" / split).mkdir(parents=True)
    (root / "annotations").mkdir()
    for info in images[:good]:
        shutil.copy(COCO128 / "images" / split / info["file_name"], root / "images" / split)
    text, truncated = images[good]["file_name"], images[good + 1]["file_name"]
    (root / "images" / split / text).write_text("not an image\n")
    data = (COCO128 / "images" / split / truncated).read_bytes()
    (root / "images" / split / truncated).write_bytes(data[: len(data) // 3])
    ids = {i["id"] for i in images}
    src["images"] = images
    src["annotations"] = [a for a in src["annotations"] if a["image_id"] in ids]
    (root / "annotations" / f"instances_{split}.json").write_text(json.dumps(src))
    return root, [text, truncated]


def test_undecodable_names_each_bad_image(tmp_path):
    root, bad = _half_bad_dataset(tmp_path / "d")
    paths = sorted((root / "images" / "val2017").iterdir())
    found = undecodable(paths)
    assert sorted(p.name for p in found) == sorted(bad)
    with pytest.raises(ImageError) as e:
        refuse_undecodable(paths, "testing")
    message = str(e.value)
    assert "\n" not in message and message.startswith("2 of 4 images cannot be decoded (testing")
    assert all(name in message for name in bad)


@pytest.mark.slow
def test_predict_skips_what_cannot_be_decoded(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    good = sorted(VAL_IMAGES.glob("*.jpg"))[0]
    shutil.copy(good, folder)
    (folder / "notes.jpg").write_text("a text file named .jpg\n")
    out = tmp_path / "out"
    proc = _ssdmobile("predict", folder, "--out", out)
    assert proc.returncode == 0, proc.stderr
    warning = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(warning) == 1 and warning[0].startswith("skipping 1 images that cannot be decoded")
    assert str(folder / "notes.jpg") in warning[0]
    assert sorted(p.name for p in out.iterdir()) == [good.stem + ".png"]
    assert "drew 1 images" in proc.stdout and "skipped 1 that cannot be decoded" in proc.stdout


@pytest.mark.slow  # a subprocess that imports torch, or a model
def test_predict_refuses_when_nothing_decodes(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    (folder / "a.jpg").write_text("no\n")
    (folder / "b.png").write_bytes(b"\x89PNG\r\n")
    out = tmp_path / "out"
    proc = _ssdmobile("predict", folder, "--out", out)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "no image can be decoded" in lines[0]
    assert "a.jpg" in lines[0] and "b.png" in lines[0]
    assert not out.exists()


@pytest.mark.slow  # a subprocess that imports torch, or a model
def test_eval_refuses_up_front_naming_every_bad_image(tmp_path):
    root, bad = _half_bad_dataset(tmp_path / "d")
    out = tmp_path / "eval.json"
    proc = _ssdmobile(
        "eval", "--model", "ssdlite_mobilenet_v2_person", "--data", root, "--out", out
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "2 of 4 images cannot be decoded" in lines[0], proc.stderr
    assert all(name in lines[0] for name in bad)
    assert proc.stdout == "" and not out.exists()  # nothing ran, nothing written


@pytest.mark.slow  # a subprocess that imports torch, or a model
def test_calibration_refuses_up_front_naming_every_bad_image(tmp_path):
    from ssdmobile.models import create_model
    from ssdmobile.quant.ptq import calibration_inputs

    root, bad = _half_bad_dataset(tmp_path / "d", split="train2017")
    detector = create_model("ssdlite320_mobilenet_v3_small", None)
    with pytest.raises(ImageError) as e:
        calibration_inputs(detector, str(root), "train2017", 4)
    assert "2 of 4 images cannot be decoded (int8 ranges" in str(e.value)
    assert all(name in str(e.value) for name in bad)
