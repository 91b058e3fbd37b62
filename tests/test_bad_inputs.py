"""A corpus of user mistakes, every command: each must end with exit code 2, exactly one line on
stderr, no traceback, and nothing written (the working directory and every folder the case
points at are the same before and after). Commands run in-process from a scratch working
directory, so default output folders (./artifacts, runs/...) are checked too."""

import json
import shutil

import pytest

from ssdmobile.cli import main

from conftest import COCO128, PERSON_GRAPH, VAL_IMAGES
from device_results import result_json

IMAGES = sorted(VAL_IMAGES.glob("*.jpg"))[:2]


def snapshot(root):
    return sorted((str(p.relative_to(root)), p.is_dir()) for p in root.rglob("*"))


def coco_dir(root, name, annotations=None, images=None, categories=None):
    """A COCO-layout dataset of 2 real images with the given (possibly broken) records."""
    d = root / name
    (d / "images" / "val2017").mkdir(parents=True)
    (d / "annotations").mkdir()
    for p in IMAGES:
        shutil.copy(p, d / "images" / "val2017" / p.name)
    data = {
        "images": images
        if images is not None
        else [{"id": i + 1, "file_name": p.name} for i, p in enumerate(IMAGES)],
        "annotations": annotations
        if annotations is not None
        else [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 50, 80]}],
        "categories": categories if categories is not None else [{"id": 1, "name": "person"}],
    }
    (d / "annotations" / "instances_val2017.json").write_text(json.dumps(data))
    return d


def voc_dir(
    root,
    name,
    size="<width>640</width><height>480</height>",
    box="<xmin>1</xmin><ymin>2</ymin><xmax>30</xmax><ymax>40</ymax>",
):
    d = root / name
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (d / sub).mkdir(parents=True)
    shutil.copy(IMAGES[0], d / "JPEGImages" / "a.jpg")
    (d / "Annotations" / "a.xml").write_text(
        f"<annotation><filename>a.jpg</filename><size>{size}<depth>3</depth></size>"
        "<object><name>person</name>"
        f"<difficult>0</difficult><bndbox>{box}</bndbox></object></annotation>"
    )
    (d / "ImageSets" / "Main" / "val2017.txt").write_text("a\n")
    return d


def _setup(tmp):
    """Inputs the cases point at, made before the snapshot."""
    (tmp / "a_file").write_text("x")
    (tmp / "garbage.pte").write_bytes(b"\0\0\0\0ET12 not a program at all")
    (tmp / "garbage.pte").with_suffix(".json").write_text("{}")
    (tmp / "garbage.pb").write_bytes(b"\x08\x01garbage")
    (tmp / "garbage.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    (tmp / "bad.pth").write_bytes(b"PK\x03\x04 not a checkpoint")
    (tmp / "recipe.bin").write_bytes(bytes(range(256)))
    (tmp / "adir").mkdir()
    coco_dir(
        tmp,
        "bbox_text",
        annotations=[{"id": 1, "image_id": 1, "category_id": 1, "bbox": ["a", 1, 2, 3]}],
    )
    coco_dir(
        tmp,
        "bbox_short",
        annotations=[{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3]}],
    )
    coco_dir(tmp, "id_text", images=[{"id": "one", "file_name": IMAGES[0].name}])
    coco_dir(
        tmp,
        "cat_unknown",
        annotations=[{"id": 1, "image_id": 1, "category_id": 7, "bbox": [1, 2, 3, 4]}],
    )
    coco_dir(
        tmp,
        "dup_image",
        images=[{"id": 1, "file_name": IMAGES[0].name}, {"id": 1, "file_name": IMAGES[1].name}],
    )
    coco_dir(
        tmp,
        "nan_box",
        annotations=[{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 1e999, 4]}],
    )
    coco_dir(
        tmp, "width_zero", images=[{"id": 1, "file_name": IMAGES[0].name, "width": 0, "height": 10}]
    )
    timing = {"median_ms": 1.0, "p90_ms": 1.0, "runs": 50, "threads": 2}
    (tmp / "report.json").write_text(
        json.dumps(
            {
                "rows": [],
                "eager": {"ap": 0.0, "ap50": 0.0, "latency": timing, "latency_nms": timing},
                "meta": {},
            }
        )
    )
    # an app's result for no row of report.json
    (tmp / "result.json").write_text(result_json("0" * 64))
    voc_dir(tmp, "voc_size", size="<width>six hundred</width><height>480</height>")
    voc_dir(tmp, "voc_box", box="<xmin>1</xmin><ymin>two</ymin><xmax>30</xmax><ymax>40</ymax>")


SMALL = ["--model", "ssdlite320_mobilenet_v3_small"]
DATA = ["--data", str(COCO128)]

CASES = {
    # counts, threads, numbers
    "bench threads 0": ["bench", *SMALL, "--threads", "0"],
    "bench threads negative": ["bench", *SMALL, "--threads", "-2"],
    "bench runs below 50": ["bench", *SMALL, "--runs", "10"],
    "bench runs negative": ["bench", *SMALL, "--runs", "-5"],
    "bench warmup negative": ["bench", *SMALL, "--warmup", "-1"],
    "eval max-images 0": ["eval", *SMALL, *DATA, "--max-images", "0"],
    "eval max-images text": ["eval", *SMALL, *DATA, "--max-images", "all"],
    "eval batch-size 0": ["eval", *SMALL, *DATA, "--batch-size", "0"],
    "export num-images 0": [
        "export",
        "--target",
        "onnx",
        "--precision",
        "int8",
        "--calib-data",
        str(COCO128),
        "--num-images",
        "0",
    ],
    "fuse threads 0": ["fuse", *SMALL, "--threads", "0"],
    "fuse runs negative": ["fuse", *SMALL, "--runs", "-1"],
    "fuse num-images 0": ["fuse", *SMALL, *DATA, "--num-images", "0"],
    "golden num-images 0": [
        "golden",
        *SMALL,
        "--random-seed",
        "0",
        *DATA,
        "--num-images",
        "0",
        "--out",
        "{tmp}/g",
    ],
    "golden logit-scale 0": [
        "golden",
        *SMALL,
        "--random-seed",
        "0",
        *DATA,
        "--logit-scale",
        "0",
        "--out",
        "{tmp}/g",
    ],
    "quantize num-images 0": [
        "quantize",
        *SMALL,
        "--calib-data",
        str(COCO128),
        "--num-images",
        "0",
    ],
    "sensitivity top 0": ["sensitivity", *SMALL, "--calib-data", str(COCO128), "--top", "0"],
    "sensitivity fallback negative": [
        "sensitivity",
        *SMALL,
        "--calib-data",
        str(COCO128),
        "--float-fallback",
        "-1",
    ],
    "validate threads 0": ["validate", *SMALL, *DATA, "--threads", "0"],
    "validate runs 5": ["validate", *SMALL, *DATA, "--runs", "5"],
    "validate max-images 0": ["validate", *SMALL, *DATA, "--max-images", "0"],
    "validate max-drift negative": ["validate", *SMALL, *DATA, "--max-drift", "-0.1"],
    "validate calib-images 0": ["validate", *SMALL, *DATA, "--calib-images", "0"],
    # names and choices
    "export unknown target": ["export", "--target", "tflite"],
    "export unknown precision": ["export", "--target", "onnx", "--precision", "bf16"],
    "export int8 without calibration": ["export", "--target", "onnx", "--precision", "int8"],
    "export calib-data for fp32": ["export", "--target", "onnx", "--calib-data", str(COCO128)],
    "export float fallback for fp32": [
        "quantize",
        *SMALL,
        "--calib-data",
        str(COCO128),
        "--target",
        "onnx",
        "--float-modules",
        "backbone.0",
    ],
    "export unknown int8 format": [
        "export",
        "--target",
        "onnx",
        "--precision",
        "int8",
        "--calib-data",
        str(COCO128),
        "--int8-format",
        "qdq8",
    ],
    "export int8 format for fp32": ["export", "--target", "onnx", "--int8-format", "qdq"],
    "export int8 format for a single-format target": [
        "export",
        "--target",
        "executorch",
        "--precision",
        "int8",
        "--calib-data",
        str(COCO128),
        "--int8-format",
        "qdq",
    ],
    "validate int8 formats without int8": [
        "validate",
        *SMALL,
        *DATA,
        "--targets",
        "onnx",
        "--int8-formats",
        "qdq",
    ],
    "eval unknown model": ["eval", "--model", "ssd9000", *DATA],
    "validate unknown target": ["validate", *SMALL, *DATA, "--targets", "tflite"],
    "validate unknown precision": ["validate", *SMALL, *DATA, "--precisions", "fp8"],
    "bundle unknown app": ["bundle", "--app", "windows", "--artifact", "{tmp}/garbage.pte"],
    "models extra argument": ["models", "--all"],
    "no command": [],
    "golden bad override": [
        "golden",
        *SMALL,
        "--random-seed",
        "0",
        *DATA,
        "--override",
        "postprocess.nope=1",
        "--out",
        "{tmp}/g",
    ],
    "golden no weights": ["golden", *SMALL, *DATA, "--out", "{tmp}/g"],
    "train bad override": [
        "train",
        "--recipe",
        "recipes/qat_ssdlite_person_coco128.yaml",
        "train.stepz=2",
    ],
    "train bad value": [
        "train",
        "--recipe",
        "recipes/qat_ssdlite_person_coco128.yaml",
        "train.steps=two",
    ],
    "train bad component": [
        "train",
        "--recipe",
        "recipes/qat_ssdlite_person_coco128.yaml",
        "optimizer.lrr=1",
    ],
    # inputs that are missing, empty or not what they say
    "eval data missing": ["eval", *SMALL, "--data", "{tmp}/nope"],
    "eval data is a file": ["eval", *SMALL, "--data", "{tmp}/a_file"],
    "eval weights missing": ["eval", *SMALL, *DATA, "--weights", "{tmp}/nope.pth"],
    "eval weights corrupt": [
        "eval",
        *SMALL,
        *DATA,
        "--weights",
        "{tmp}/bad.pth",
        "--max-images",
        "1",
    ],
    "eval artifact garbage": ["eval", "--artifact", "{tmp}/garbage.pte", *DATA],
    "bench artifact missing": ["bench", "--artifact", "{tmp}/nope.onnx"],
    "bench artifact garbage": ["bench", "--artifact", "{tmp}/garbage.pte"],
    "bench image missing": ["bench", *SMALL, "--image", "{tmp}/nope.jpg"],
    "bench image garbage": ["bench", *SMALL, "--image", "{tmp}/garbage.jpg"],
    "import-tf graph missing": ["import-tf", "{tmp}/nope.pb", "--out", "{tmp}/imp"],
    "import-tf graph garbage": ["import-tf", "{tmp}/garbage.pb", "--out", "{tmp}/imp"],
    "train recipe missing": ["train", "--recipe", "{tmp}/nope.yaml"],
    "train recipe binary": ["train", "--recipe", "{tmp}/recipe.bin"],
    "validate artifacts missing": ["validate", *SMALL, *DATA, "--artifacts", "{tmp}/nope.pte"],
    "bundle artifact garbage": [
        "bundle",
        "--app",
        "android",
        "--artifact",
        "{tmp}/garbage.pte",
        "--dest",
        "{tmp}/dest",
    ],
    "quantize calib-data missing": ["quantize", *SMALL, "--calib-data", "{tmp}/nope"],
    "export calib-data missing": [
        "export",
        "--target",
        "onnx",
        "--precision",
        "int8",
        "--calib-data",
        "{tmp}/nope",
    ],
    # annotation records
    "bbox with text": ["eval", *SMALL, "--data", "{tmp}/bbox_text"],
    "bbox of three numbers": ["eval", *SMALL, "--data", "{tmp}/bbox_short"],
    "image id as text": ["eval", *SMALL, "--data", "{tmp}/id_text"],
    "unknown category": ["eval", *SMALL, "--data", "{tmp}/cat_unknown"],
    "duplicate image id": ["eval", *SMALL, "--data", "{tmp}/dup_image"],
    "infinite box": ["eval", *SMALL, "--data", "{tmp}/nan_box"],
    "image width 0": ["eval", *SMALL, "--data", "{tmp}/width_zero"],
    "voc size not a number": ["eval", *SMALL, "--data", "{tmp}/voc_size"],
    "voc coordinate not a number": ["eval", *SMALL, "--data", "{tmp}/voc_box"],
    # outputs that cannot be written
    "eval out is a directory": ["eval", *SMALL, *DATA, "--out", "{tmp}/adir"],
    "eval out under a file": ["eval", *SMALL, *DATA, "--out", "{tmp}/a_file/r.json"],
    "fuse out is a directory": ["fuse", *SMALL, "--out", "{tmp}/adir"],
    "bench json is a directory": ["bench", *SMALL, "--json", "{tmp}/adir"],
    "bench json under a file": ["bench", *SMALL, "--json", "{tmp}/a_file/t.json"],
    "import-tf out under a file": ["import-tf", "{tmp}/garbage.pb", "--out", "{tmp}/a_file/x"],
    "export out under a file": ["export", "--target", "onnx", "--out", "{tmp}/a_file/x"],
    "validate out under a file": ["validate", *SMALL, *DATA, "--out", "{tmp}/a_file/x"],
    "golden out under a file": [
        "golden",
        *SMALL,
        "--random-seed",
        "0",
        *DATA,
        "--out",
        "{tmp}/a_file/g",
    ],
    "bundle dest under a file": [
        "bundle",
        "--app",
        "android",
        "--artifact",
        "{tmp}/garbage.pte",
        "--dest",
        "{tmp}/a_file/d",
    ],
    # predict
    "predict image missing": ["predict", "{tmp}/nope.jpg"],
    "predict folder without images": ["predict", "{tmp}/adir"],
    "predict image garbage": ["predict", "{tmp}/garbage.jpg", "--weights", str(PERSON_GRAPH)],
    "predict compare without artifact": ["predict", str(IMAGES[0]), "--compare"],
    "predict weights with artifact": [
        "predict",
        str(IMAGES[0]),
        "--artifact",
        "{tmp}/garbage.pte",
        "--weights",
        "w",
    ],
    "predict artifact garbage": ["predict", str(IMAGES[0]), "--artifact", "{tmp}/garbage.pte"],
    "predict score-thresh above 1": ["predict", str(IMAGES[0]), "--score-thresh", "2"],
    "predict score-thresh negative": ["predict", str(IMAGES[0]), "--score-thresh", "-0.5"],
    "predict unknown model": ["predict", str(IMAGES[0]), "--model", "ssd9000"],
    "predict out under a file": ["predict", str(IMAGES[0]), "--out", "{tmp}/a_file/p"],
    # export --golden
    "export golden 0": ["export", "--target", "onnx", "--golden", "0"],
    "export golden-data without golden": [
        "export",
        "--target",
        "onnx",
        "--golden-data",
        str(COCO128),
    ],
    "export golden-data missing": [
        "export",
        "--target",
        "onnx",
        "--golden",
        "2",
        "--golden-data",
        "{tmp}/nope",
    ],
    "export golden-data without images": [
        "export",
        "--target",
        "onnx",
        "--golden",
        "2",
        "--golden-data",
        "{tmp}/adir",
    ],
    # device-report
    "device-report result missing": [
        "device-report",
        "{tmp}/nope.json",
        "--report",
        "{tmp}/report.json",
    ],
    "device-report report missing": [
        "device-report",
        "{tmp}/result.json",
        "--report",
        "{tmp}/nope.json",
    ],
    "device-report report garbage": [
        "device-report",
        "{tmp}/result.json",
        "--report",
        "{tmp}/a_file",
    ],
    "device-report not a result": [
        "device-report",
        "{tmp}/a_file",
        "--report",
        "{tmp}/report.json",
    ],
    "device-report result of no row": [
        "device-report",
        "{tmp}/result.json",
        "--report",
        "{tmp}/report.json",
    ],
    # calibrating on the very images that are scored, by content, whatever the split is called
    "validate calibrates on the scored images": [
        "validate",
        *SMALL,
        *DATA,
        "--precisions",
        "int8",
        "--calib-split",
        "val2017",
        "--max-images",
        "4",
    ],
    "quantize evaluates on the calibration images": [
        "quantize",
        *SMALL,
        "--calib-data",
        str(COCO128),
        "--split",
        "val2017",
        "--eval-data",
        str(COCO128),
    ],
}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bad_inputs")
    _setup(tmp)
    return tmp


@pytest.mark.parametrize("case", sorted(CASES))
def test_mistake_is_one_line_exit_2_nothing_written(case, workspace, monkeypatch, capsys):
    from conftest import REPO

    argv = [a.replace("{tmp}", str(workspace)) for a in CASES[case]]
    argv = [str(REPO / a) if a.startswith("recipes/") else a for a in argv]
    cwd = workspace / "cwd"
    cwd.mkdir(exist_ok=True)
    monkeypatch.chdir(cwd)
    before = snapshot(workspace)
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, (code, err)
    assert err and "\n" not in err, err
    assert "Traceback" not in err and "error" in err, err
    assert snapshot(workspace) == before, "the failed command left files behind"


# -- property-based: generated malformed annotations and argument values ---------------------------

from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from ssdmobile.data import CocoDataset  # noqa: E402
from ssdmobile.errors import DatasetError  # noqa: E402

anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=4),
    st.lists(st.integers(-3, 3), max_size=5),
)
number = st.one_of(st.integers(-10, 500), st.floats(-10, 500, allow_nan=False), anything)


@st.composite
def coco_records(draw):
    """A COCO instances dict whose every field may be of the wrong type or out of range."""
    images = [
        {
            "id": draw(st.one_of(st.integers(1, 3), anything)),
            "file_name": IMAGES[i % 2].name,
            **({"width": draw(number)} if draw(st.booleans()) else {}),
        }
        for i in range(draw(st.integers(0, 3)))
    ]
    categories = [
        {
            "id": draw(st.one_of(st.integers(1, 2), anything)),
            "name": draw(st.one_of(st.just("person"), anything)),
        }
        for _ in range(draw(st.integers(0, 2)))
    ]
    annotations = [
        {
            "image_id": draw(st.one_of(st.integers(1, 3), anything)),
            "category_id": draw(st.one_of(st.integers(1, 2), anything)),
            "bbox": draw(st.one_of(st.lists(number, min_size=0, max_size=6), anything)),
            **({"iscrowd": draw(anything)} if draw(st.booleans()) else {}),
        }
        for _ in range(draw(st.integers(0, 4)))
    ]
    record = {"images": images, "annotations": annotations, "categories": categories}
    for key in draw(st.lists(st.sampled_from(["images", "annotations", "categories"]), max_size=1)):
        record[key] = draw(anything)  # a whole list replaced by something else
    return record


@settings(max_examples=200, deadline=None)
@given(coco_records())
def test_generated_annotations_load_or_fail_in_one_line(record):
    try:
        ds = CocoDataset(
            images_dir=VAL_IMAGES, annotation_file=VAL_IMAGES / "generated.json", _data=record
        )
    except DatasetError as e:
        assert "\n" not in str(e) and str(e)
        return
    for (
        image_id
    ) in ds.image_ids:  # what loads is usable: boxes are 4 finite numbers with positive size
        boxes = ds.targets(image_id)["boxes"]
        assert boxes.shape[-1] == 4 and bool(((boxes[:, 2:] - boxes[:, :2]) > 0).all())


BAD_COUNTS = [
    ("bench", ["--model", "ssdlite320_mobilenet_v3_small"], "--threads", 1),
    ("bench", ["--model", "ssdlite320_mobilenet_v3_small"], "--runs", 50),
    (
        "eval",
        ["--model", "ssdlite320_mobilenet_v3_small", "--data", str(COCO128)],
        "--max-images",
        1,
    ),
    (
        "eval",
        ["--model", "ssdlite320_mobilenet_v3_small", "--data", str(COCO128)],
        "--batch-size",
        1,
    ),
    ("validate", ["--data", str(COCO128)], "--threads", 1),
    ("validate", ["--data", str(COCO128)], "--max-images", 1),
    ("fuse", ["--model", "ssdlite320_mobilenet_v3_small"], "--num-images", 1),
]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.sampled_from(BAD_COUNTS),
    st.one_of(
        st.integers(max_value=-1),
        st.integers(0, 49),
        st.text(max_size=6),
        st.floats(allow_nan=True),
    ),
)
def test_generated_bad_counts_are_one_line(tmp_path, monkeypatch, capsys, case, value):
    command, args, flag, minimum = case
    text = str(value)
    try:
        if int(text) >= minimum:
            return  # a valid count: not what this test throws
    except ValueError:
        pass
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    code = main([command, *args, flag, text])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err and "\n" not in err and "Traceback" not in err, (code, err)
    assert snapshot(tmp_path) == before
