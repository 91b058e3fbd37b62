"""The on-device loop, host side: pictures of what an artifact detects (ssdmobile predict, the
validate gallery), golden data for the apps' drift check (export --golden, BundledProgram), and
device results merged into the validate report (ssdmobile device-report)."""

import json
import shutil

import jsonschema
import numpy as np
import pytest
import torch
from PIL import Image

from ssdmobile.bundle import bundle
from ssdmobile.cli import main
from ssdmobile.data import CocoDataset, load_image
from ssdmobile.drift import (
    GoldenError,
    attach_golden,
    compare,
    read_golden,
    read_inputs,
    run_on_host,
    verify_bundled_program,
    write_bundled_program,
)
from ssdmobile.report import write_report
from ssdmobile.schema import DEVICE_RESULT_SCHEMA_FILE, GOLDEN_SCHEMA_FILE, stale_files
from ssdmobile.sidecar import golden_path, load_sidecar
from ssdmobile.targets.artifacts import load_runner
from ssdmobile.targets.pipeline import export
from ssdmobile.validate import ValidateOptions, validate
from ssdmobile.visualize import (
    ARTIFACT_ONLY,
    FLOAT_ONLY,
    MATCHED,
    compare_picture,
    diff_boxes,
    draw_pair,
)

from conftest import COCO128, PERSON_GRAPH, VAL_IMAGES
from device_results import logcat, result as device_result, result_file_name, result_json
from export_fixtures import tiny_detector

IMAGES = sorted(VAL_IMAGES.glob("*.jpg"))


def rgb(hex_color: str) -> list[int]:
    return [int(hex_color[i : i + 2], 16) for i in (1, 3, 5)]


def dets(boxes, scores, labels):
    return {
        "boxes": torch.tensor(boxes, dtype=torch.float32),
        "scores": torch.tensor(scores),
        "labels": torch.tensor(labels),
    }


# -- pictures -------------------------------------------------------------------------------------


def test_boxes_that_differ_are_drawn_apart():
    image = torch.full((3, 200, 300), 90, dtype=torch.uint8)
    ref = dets(
        [[10, 10, 60, 80], [150, 20, 250, 120], [20, 150, 40, 190]], [0.9, 0.8, 0.3], [1, 1, 1]
    )
    # one kept, one lost, one new
    got = dets([[12, 11, 61, 82], [100, 100, 140, 180]], [0.85, 0.7], [1, 1])
    d = diff_boxes(ref, got)
    assert d.float_matched.tolist() == [True, False, False] and d.artifact_matched.tolist() == [
        True,
        False,
    ]
    left, right, d = draw_pair(image, ref, got, ["bg", "person"], score_thresh=0.5)
    # the 0.3 box is below the threshold
    assert (d.matched, d.float_only, d.artifact_only) == (1, 1, 1)
    px = lambda im, x, y: im[:, y, x].tolist()  # noqa: E731
    assert px(left, 150, 70) == rgb(FLOAT_ONLY)  # left edge of the float-only box
    assert px(right, 100, 150) == rgb(ARTIFACT_ONLY)
    assert px(left, 10, 50) == rgb(MATCHED) and px(right, 12, 50) == rgb(MATCHED)
    assert px(left, 20, 170) == [90, 90, 90]  # not drawn: below the threshold
    assert px(right, 150, 70) == [90, 90, 90]  # the lost box is not on the artifact's side
    # another class at the same place is not the same box
    assert diff_boxes(ref, {**ref, "labels": torch.tensor([2, 1, 1])}).float_only == 1
    picture, d = compare_picture(
        image, ref, ref, ["bg", "person"], ref_title="float", got_title="x"
    )
    assert d.same and picture.shape[2] == 2 * 300 + 6 and picture.shape[1] > 200


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory):
    """A validate run of a small detector on 3 real images (ONNX),
    its report with a gallery of 2."""
    out = tmp_path_factory.mktemp("report")
    det = tiny_detector(name="tiny_ssd")
    result = validate(
        det,
        CocoDataset(COCO128, "val2017", max_images=3),
        out,
        ValidateOptions(
            targets=["onnx"],
            precisions=["fp32"],
            nms_modes=(False, True),
            runs=50,
            warmup=1,
            progress=False,
            gallery=2,
        ),
    )
    paths = write_report(result, out)
    return out, result, paths


@pytest.mark.slow
def test_validate_report_links_its_gallery(report_dir):
    out, result, paths = report_dir
    md = paths["md"].read_text()
    js = json.loads(paths["json"].read_text())
    assert [g["label"] for g in js["gallery"]] == [r.label for r in result.rows]
    for g in js["gallery"]:
        png = out / g["file"]
        assert f"[{g['file']}]({g['file']})" in md and png.is_file()
        assert g["images"] == result.gallery.names and g["same"] == 2 and g["float_only"] == 0
        with Image.open(png) as im:  # two images, float | artifact, one above the other
            assert im.size[0] == 2 * 400 + 6 and im.size[1] > 2 * 200
    assert "## What each artifact detects" in md
    # the images are the first on which float shows a box (then the first others)
    det = tiny_detector(name="tiny_ssd")
    boxed = [p.name for p in IMAGES[:3] if bool((det([load_image(p)])[0]["scores"] >= 0.5).any())]
    others = [p.name for p in IMAGES[:3] if p.name not in boxed]
    assert result.gallery.names == sorted((boxed + others)[:2])
    assert all(r.sha256 and len(r.sha256) == 64 for r in result.rows)
    assert js["devices"] == []


def test_no_gallery_when_asked_for_none(tmp_path):
    result = validate(
        tiny_detector(name="tiny_ssd"),
        CocoDataset(COCO128, "val2017", max_images=2),
        tmp_path,
        ValidateOptions(
            targets=["onnx"], nms_modes=(False,), runs=50, warmup=1, progress=False, gallery=0
        ),
    )
    paths = write_report(result, tmp_path)
    assert not (tmp_path / "gallery").exists() and "gallery" not in paths["md"].read_text()


# -- device results into the report ---------------------------------------------------------------


def _copy_report(report_dir, tmp_path):
    out, result, _ = report_dir
    dst = tmp_path / "rep"
    shutil.copytree(out, dst, ignore=shutil.ignore_patterns("artifacts"))
    return dst, result


def test_device_report_merges_results_beside_the_host(report_dir, tmp_path, capsys):
    rep, result = _copy_report(report_dir, tmp_path)
    row = result.rows[0]
    android = tmp_path / result_file_name(device_result(row.sha256))
    android.write_text(result_json(row.sha256, artifact=row.artifact.split("/")[-1]))
    ios = tmp_path / "ios.json"
    ios.write_text(
        json.dumps(
            device_result(
                result.rows[1].sha256,
                drift=None,
                app="ios",
                device={"name": "iPhone15,2", "soc": "unknown", "os": "iOS 17.4"},
                runtime={
                    "name": "Core ML",
                    "version": "iOS 17.4",
                    "threads": 0,
                    "backend": "compute units: all",
                },
            ),
            indent=2,
        )
    )
    log = tmp_path / "logcat.txt"
    log.write_text(logcat(result_json(row.sha256, time="2025-01-02T03:09:00.000Z")))
    png_before = (rep / "report.png").read_bytes()
    code = main(
        ["device-report", str(android), str(ios), str(log), "--report", str(rep / "report.json")]
    )
    out = capsys.readouterr().out
    assert (
        code == 0
        and "merged 3 device result(s)" in out
        and "drift check PASS (4/4 images match)" in out
    )
    js = json.loads((rep / "report.json").read_text())
    assert [(d["row"], d["device"]["name"]) for d in js["devices"]] == [
        (0, "Google Pixel 8"),
        (1, "iPhone15,2"),
        (0, "Google Pixel 8"),
    ]
    md = (rep / "report.md").read_text()
    assert (
        "## On device" in md
        and "| onnx fp32" in md
        and "Google Pixel 8 (Tensor G3, Android 14 (API 34))" in md
    )
    assert "12.5 ms" in md and "PASS" in md and "no golden data" in md
    assert "## What each artifact detects" in md  # the gallery stays linked
    assert (rep / "report.png").read_bytes() != png_before
    # the same result again is not a second column
    assert main(["device-report", str(android), "--report", str(rep / "report.json")]) == 0
    assert len(json.loads((rep / "report.json").read_text())["devices"]) == 3


def test_device_report_refuses_a_result_of_another_artifact(report_dir, tmp_path, capsys):
    rep, result = _copy_report(report_dir, tmp_path)
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(result_json(result.rows[0].sha256))
    bad.write_text(result_json("0" * 64))
    before = {p.name: p.read_bytes() for p in rep.iterdir() if p.is_file()}
    code = main(["device-report", str(good), str(bad), "--report", str(rep / "report.json")])
    err = capsys.readouterr().err.strip()
    assert (
        code == 2
        and "\n" not in err
        and "matches no row of the report" in err
        and "bad.json" in err
    )
    # nothing merged
    assert {p.name: p.read_bytes() for p in rep.iterdir() if p.is_file()} == before


@pytest.mark.parametrize(
    "text, message",
    [
        (lambda s: result_json(s).replace('"app":"android"', '"app":"android","extra":1'), "extra"),
        (lambda s: result_json(s).replace('"runs":50', '"runs":"50"'), "runs"),
        (lambda s: "I SSDMobileBench: x.pte forward: median 1 ms\n", "no ssdmobile device result"),
        (lambda s: result_json(s)[:-5], "not valid JSON"),
    ],
)
def test_a_malformed_result_is_one_line(report_dir, tmp_path, capsys, text, message):
    rep, result = _copy_report(report_dir, tmp_path)
    f = tmp_path / "r.json"
    f.write_text(text(result.rows[0].sha256))
    code = main(["device-report", str(f), "--report", str(rep / "report.json")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and message in err, err


# -- golden data and the drift check --------------------------------------------------------------


def perturbed(det, scale=0.05):
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in det.core.parameters():
            if p.dim() == 4:
                p.mul_(1 + scale * torch.randn(p.shape, generator=g))
    return det


@pytest.fixture(scope="module")
def tiny_pte(tmp_path_factory):
    out = tmp_path_factory.mktemp("golden")
    det = tiny_detector(name="tiny_ssd")
    (pte,) = (a.path for a in export(det, "executorch", "fp32", out, progress=False))
    manifest = attach_golden(det, pte, IMAGES[:3])
    return det, pte, manifest


@pytest.mark.slow
def test_golden_data_beside_the_artifact(tiny_pte):
    det, pte, manifest_path = tiny_pte
    m = json.loads(manifest_path.read_text())
    folder = golden_path(pte)
    assert manifest_path.parent == folder and folder.name == "tiny_ssd_executorch_fp32.golden"
    assert m["artifact"] == pte.name and m["artifact_sha256"] == load_sidecar(pte).artifact_sha256
    assert [e["image"] for e in m["images"]] == [p.name for p in IMAGES[:3]]
    for e in m["images"]:  # every file the manifest lists is there, with the artifact's input shape
        x = np.fromfile(folder / e["input"], dtype="<f4")
        assert x.size == np.prod(m["input"]["shape"])
        assert [np.fromfile(folder / f, dtype="<f4").size for f in e["float_outputs"]] == [
            128 * 4,
            128 * 3,
        ]
    # the input is the model's own preprocessing of the real image, and the float outputs its core's
    image = load_image(IMAGES[0])
    x = det.preprocess([image])
    assert torch.equal(read_inputs(m, folder)[0], x)
    box_encodings, _ = det.forward_core(x)
    assert np.array_equal(
        np.fromfile(folder / m["images"][0]["float_outputs"][0], dtype="<f4"),
        box_encodings.detach().numpy().reshape(-1),
    )
    host = m["host"]
    assert (
        host["passed"] and host["detections_matched"] == 3 and 0 <= host["max_abs_diff_raw"] < 1e-4
    )
    assert (
        m["tolerances"]["min_images_matched"] == 3
        and m["bundled_program"]["file"] == "tiny_ssd_executorch_fp32.bpte"
    )


@pytest.mark.slow
def test_the_check_passes_the_program_and_fails_a_perturbed_one(tiny_pte, tmp_path):
    _det, pte, _ = tiny_pte
    manifest, folder = read_golden(pte)
    sidecar = load_sidecar(pte).to_dict()
    good = compare(manifest, sidecar, run_on_host(pte), folder)
    assert good.passed and good.detections_matched == 3 and good.raw_within_tolerance
    (bad_pte,) = (
        a.path
        for a in export(
            perturbed(tiny_detector(name="tiny_ssd")),
            "executorch",
            "fp32",
            tmp_path,
            progress=False,
        )
    )
    bad_runner = load_runner(bad_pte)
    bad = compare(
        manifest,
        sidecar,
        [[t.numpy().reshape(-1) for t in bad_runner.run(x)] for x in read_inputs(manifest, folder)],
        folder,
    )
    assert not bad.passed and bad.raw_within_tolerance is False and bad.max_abs_diff_raw > 1e-2
    outputs = run_on_host(pte)
    outputs[1][1][7] = np.nan
    broken = compare(manifest, sidecar, outputs, folder)
    assert not broken.passed and broken.non_finite == 1 and broken.detections_matched == 2


@pytest.mark.slow
def test_bundled_program_verified_by_executorch(tiny_pte, tmp_path):
    """The .bpte: ExecuTorch's own runtime runs its test cases and checks them against the float
    outputs with the manifest's tolerances; a program that computes something else fails."""
    _det, pte, manifest_path = tiny_pte
    m = json.loads(manifest_path.read_text())
    bpte = pte.with_suffix(".bpte")
    tol = m["bundled_program"]
    assert verify_bundled_program(bpte, tol["rtol"], tol["atol"]) == [True] * 3
    (bad_pte,) = (
        a.path
        for a in export(
            perturbed(tiny_detector(name="tiny_ssd")),
            "executorch",
            "fp32",
            tmp_path,
            progress=False,
        )
    )
    manifest, folder = read_golden(pte)
    expected = [
        [
            torch.from_numpy(np.fromfile(folder / f, dtype="<f4").reshape(o["shape"]))
            for f, o in zip(e["float_outputs"], manifest["outputs"])
        ]
        for e in manifest["images"]
    ]
    bad_bpte = write_bundled_program(
        bad_pte, read_inputs(manifest, folder), expected, tmp_path / "bad.bpte"
    )
    assert verify_bundled_program(bad_bpte, tol["rtol"], tol["atol"]) == [False] * 3


def test_golden_data_and_results_match_their_published_schemas(tiny_pte, tmp_path):
    """golden.json and the apps' result files are typed (ssdmobile.device) and published as JSON
    Schemas beside the sidecar's; a real manifest and a result in the app's format validate, a
    manifest that is not one is refused in one line."""
    assert stale_files() == [], "run `python -m ssdmobile.schema` and commit the schemas"
    _, _pte, manifest_path = tiny_pte
    jsonschema.validate(
        json.loads(manifest_path.read_text()), json.loads(GOLDEN_SCHEMA_FILE.read_text())
    )
    jsonschema.validate(
        json.loads(result_json("a" * 64)), json.loads(DEVICE_RESULT_SCHEMA_FILE.read_text())
    )
    broken = tmp_path / "x.golden"
    shutil.copytree(manifest_path.parent, broken)
    m = json.loads(manifest_path.read_text())
    m["tolerances"]["atol"] = "0.001"
    (broken / "golden.json").write_text(json.dumps(m))
    with pytest.raises(
        GoldenError, match=r"not golden data of this ssdmobile: tolerances\.atol"
    ) as e:
        read_golden(broken)
    assert "\n" not in str(e.value)


@pytest.mark.slow
def test_golden_data_is_all_or_nothing(tmp_path):
    det = tiny_detector(name="tiny_ssd")
    (pte,) = (a.path for a in export(det, "executorch", "fp32", tmp_path, progress=False))
    garbage = tmp_path / "in" / "garbage.jpg"
    garbage.parent.mkdir()
    garbage.write_bytes(b"\xff\xd8 not a jpeg")
    with pytest.raises(Exception, match="cannot decode image"):
        attach_golden(det, pte, [IMAGES[0], garbage])
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "in",
        pte.with_suffix(".json").name,
        pte.name,
    ]
    with pytest.raises(GoldenError, match="exported from 'tiny_ssd', not 'other'"):
        attach_golden(tiny_detector(name="other"), pte, IMAGES[:1])


def test_bundle_takes_the_golden_data_along(tiny_pte, tmp_path):
    _, pte, _ = tiny_pte
    paths = bundle("android", pte, tmp_path / "assets")
    assert [p.name for p in paths] == [
        pte.name,
        pte.with_suffix(".json").name,
        "tiny_ssd_executorch_fp32.golden",
    ]
    assert (paths[2] / "golden.json").is_file() and not (
        tmp_path / "assets" / "tiny_ssd_executorch_fp32.bpte"
    ).exists()


@pytest.mark.slow
def test_core_ml_golden_data_is_the_image_at_model_size(tmp_path):
    """Core ML takes an image: its golden input is the image already resized to the model's size
    (uint8 RGB), and the float outputs are the float model's on those very pixels."""
    det = tiny_detector(name="tiny_ssd")
    (pkg,) = (a.path for a in export(det, "coreml", "fp16", tmp_path, nms=True, progress=False))
    m = json.loads(attach_golden(det, pkg, IMAGES[:2]).read_text())
    folder = golden_path(pkg)
    e = m["images"][0]
    assert e["input"].endswith(".input.u8") and e["float_outputs"] is None and m["nms_in_graph"]
    pixels = np.fromfile(folder / e["input"], dtype=np.uint8).reshape(64, 64, 3)
    ref = det([torch.from_numpy(pixels).permute(2, 0, 1)])[0]
    assert len(ref["scores"]) == e["detections"]["count"]
    assert (
        m["host"] is None and m["bundled_program"] is None and m["tolerances"]["score_tol"] == 0.02
    )
    paths = bundle("ios", pkg, tmp_path / "Models")
    assert (
        paths[-1].name == "tiny_ssd_coreml_fp16_nms.golden.bundle"
        and (paths[-1] / "golden.json").is_file()
    )


# -- ssdmobile predict on the real person detector -----------------------------------------------


@pytest.fixture(scope="module")
def person_artifact(tmp_path_factory):
    out = tmp_path_factory.mktemp("person")
    assert (
        main(
            ["export", "--target", "torchscript", "--weights", str(PERSON_GRAPH), "--out", str(out)]
        )
        == 0
    )
    return out / "ssdlite_mobilenet_v2_person_torchscript_fp32.pt"


@pytest.mark.slow
def test_predict_draws_and_compares_on_real_images(person_artifact, tmp_path, capsys):
    capsys.readouterr()
    images = [str(p) for p in IMAGES[:2]]
    assert (
        main(["predict", *images, "--weights", str(PERSON_GRAPH), "--out", str(tmp_path / "f")])
        == 0
    )
    assert (
        main(["predict", *images, "--artifact", str(person_artifact), "--out", str(tmp_path / "a")])
        == 0
    )
    assert (
        main(
            [
                "predict",
                str(VAL_IMAGES),
                "--compare",
                "--artifact",
                str(person_artifact),
                "--weights",
                str(PERSON_GRAPH),
                "--out",
                str(tmp_path / "c"),
                "--score-thresh",
                "0.3",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    for p in IMAGES[:2]:
        w, h = Image.open(p).size
        for sub in ("f", "a"):
            with Image.open(tmp_path / sub / f"{p.stem}.png") as im:
                assert im.size[0] == w and im.size[1] > h
        with Image.open(tmp_path / "c" / f"{p.stem}.png") as im:  # float | artifact
            assert im.size[0] == 2 * w + 6
    assert len(list((tmp_path / "c").glob("*.png"))) == len(IMAGES)
    # an fp32 TorchScript artifact draws what float draws
    assert out.count("same boxes") + out.count("no box >= 0.3 in either") == len(IMAGES)
    assert out.count("same boxes") > 0 and "float only" not in out
