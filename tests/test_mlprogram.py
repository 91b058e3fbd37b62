"""The ML Program reference evaluator (ssdmobile.mlprogram): its weight-file reader against
coremltools' own, its ops against numpy/torch on a program built with coremltools' MIL builder,
Core ML's NMS model as its spec documents it, and an op outside its set refused in one line
(exit 2 from the CLI)."""

import numpy as np
import pytest
import torch
from PIL import Image

from ssdmobile.cli import main
from ssdmobile.mlprogram import UnsupportedOpError, load_package
from ssdmobile.mlprogram.nms import pick_top
from ssdmobile.mlprogram.reader import PackageFiles
from ssdmobile.targets.pipeline import export

from export_fixtures import tiny_detector
from mlprogram_edits import edit_package, op_renamed


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    d = tmp_path_factory.mktemp("mlprogram")
    det = tiny_detector()
    return det, export(det, "coreml", "fp16", d)[0].path, d


def _program(tmp_path, build, name="p"):
    """A MIL program (coremltools' builder) saved as an fp32 .mlpackage, loaded back."""
    import coremltools as ct

    model = ct.convert(
        build(),
        convert_to="mlprogram",
        compute_precision=ct.precision.FLOAT32,
        minimum_deployment_target=ct.target.iOS15,
    )
    path = tmp_path / f"{name}.mlpackage"
    model.save(str(path))
    return load_package(path)


def test_weight_file_reads_as_coremltools_reads_it(tmp_path):
    from coremltools.converters.mil import Builder as mb
    from coremltools.libmilstoragepython import _BlobStorageReader  # the oracle only

    from ssdmobile.mlprogram.reader import read_value

    weights = np.random.default_rng(1).standard_normal((6, 3, 3, 3)).astype(np.float32)

    def build():
        @mb.program(input_specs=[mb.TensorSpec(shape=(1, 3, 8, 8))])
        def prog(x):
            x = mb.conv(x=x, weight=weights, pad_type="valid")
            return mb.conv(x=x, weight=weights.reshape(3, 6, 3, 3) * 2, pad_type="valid")

        return prog

    pkg = _program(tmp_path, build)
    files = PackageFiles(pkg.files.path)
    oracle = _BlobStorageReader(str(files.model_dir / "weights" / "weight.bin"))
    fn = files.spec.mlProgram.functions["main"]
    blobs = [
        op.attributes["val"]
        for op in fn.block_specializations[fn.opset].operations
        if op.type == "const" and op.attributes["val"].WhichOneof("value") == "blobFileValue"
    ]
    assert len(blobs) == 2
    for v in blobs:
        theirs = np.asarray(oracle.read_float_data(v.blobFileValue.offset))
        np.testing.assert_array_equal(read_value(v, files).ravel(), theirs)


def test_an_op_outside_the_set_is_refused_by_name(tmp_path):
    from coremltools.converters.mil import Builder as mb

    def build():
        @mb.program(input_specs=[mb.TensorSpec(shape=(1, 4))])
        def prog(x):
            return mb.erf(x=mb.relu(x=x))

        return prog

    with pytest.raises(UnsupportedOpError, match="'erf' is not in the reference evaluator's set"):
        _program(tmp_path, build)


def test_ops_match_numpy_and_torch(tmp_path):
    from coremltools.converters.mil import Builder as mb

    def build():
        @mb.program(input_specs=[mb.TensorSpec(shape=(1, 3, 7, 9))])
        def prog(x):
            w = np.arange(4 * 3 * 3 * 3, dtype=np.float32).reshape(4, 3, 3, 3) / 50 - 1
            c = mb.conv(x=x, weight=w, strides=[2, 2], pad_type="same", name="conv_same")
            p = mb.max_pool(x=x, kernel_sizes=[2, 2], strides=[2, 2], pad_type="valid")
            p = mb.add(x=p, y=0.0, name="pool")  # a named output of the ceil-less pool
            q = mb.pad(x=x, pad=[1, 2, 0, 3], mode="reflect", name="padded")
            s = mb.slice_by_index(
                x=x, begin=[0, 1, 2, 0], end=[1, 3, 7, 9], stride=[1, 1, 2, 3], name="sliced"
            )
            h = mb.sigmoid_hard(x=x, alpha=0.3, beta=0.4, name="hard")
            t = mb.thresholded_relu(x=x, alpha=0.25, name="thr")
            m = mb.reduce_mean(x=x, axes=[2, 3], keep_dims=True, name="mean")
            sm = mb.softmax(x=x, axis=1, name="soft")
            return c, p, q, s, h, t, m, sm

        return prog

    pkg = _program(tmp_path, build)
    x = np.random.default_rng(0).standard_normal((1, 3, 7, 9)).astype(np.float32)
    (name,) = [f.name for f in pkg.spec.description.input]
    out = pkg.predict({name: x})
    outs = [out[f.name] for f in pkg.spec.description.output]
    xt = torch.from_numpy(x)
    w = torch.arange(4 * 3 * 3 * 3, dtype=torch.float32).reshape(4, 3, 3, 3) / 50 - 1
    # "same" with stride 2 on 7x9: total padding 2 (rows) and 2 (cols), split evenly
    expect = [
        torch.nn.functional.conv2d(torch.nn.functional.pad(xt, (1, 1, 1, 1)), w, stride=2),
        torch.nn.functional.max_pool2d(xt, 2, 2),
        torch.from_numpy(np.pad(x, [(0, 0), (0, 0), (1, 2), (0, 3)], mode="reflect")),
        xt[:, 1:3, 2:7:2, 0:9:3],
        (0.3 * xt + 0.4).clamp(0, 1),
        torch.where(xt >= 0.25, xt, torch.zeros_like(xt)),
        xt.mean(dim=(2, 3), keepdim=True),
        xt.softmax(dim=1),
    ]
    assert len(outs) == len(expect)
    for got, want in zip(outs, expect):
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-5, atol=1e-5)


def test_nms_as_the_spec_documents_it():
    # (cx, cy, w, h): 0 and 1 overlap (IoU 0.6), 2 is apart; 3 overlaps 0 but has another label
    coords = np.array(
        [[0.5, 0.5, 0.2, 0.2], [0.52, 0.5, 0.2, 0.2], [0.1, 0.1, 0.1, 0.1], [0.5, 0.5, 0.2, 0.2]]
    )
    conf = np.array([[0.9, 0.0], [0.8, 0.1], [0.3, 0.0], [0.1, 0.7]])
    assert pick_top(conf, coords, 0.5, 0.0, per_class=True).tolist() == [0, 1 - 1 + 3, 2]
    assert pick_top(conf, coords, 0.5, 0.0, per_class=False).tolist() == [0, 2]
    # IoU of 0 and 1 is 0.18 / 0.22 = 0.818: kept apart at 0.9, suppressed at 0.8
    assert pick_top(conf, coords, 0.9, 0.0, per_class=False).tolist() == [0, 1, 2]
    # below the confidence threshold: gone before suppression
    assert pick_top(conf, coords, 0.5, 0.85, per_class=False).tolist() == [0]
    # 1.0: no suppression by IoU, even of identical boxes
    assert pick_top(conf, coords, 1.0, 0.0, per_class=False).tolist() == [0, 1, 3, 2]


@pytest.mark.slow
def test_unknown_op_is_one_line_exit_2(tiny, tmp_path, capsys):
    _, path, _ = tiny
    wrong = edit_package(path, tmp_path, "erf", op_renamed)
    with pytest.raises(UnsupportedOpError, match="'erf' is not in the reference evaluator's set"):
        load_package(wrong)
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(np.full((40, 50, 3), 128, dtype=np.uint8)).save(photos / "grey.png")
    out = tmp_path / "out"
    assert main(["predict", str(photos), "--artifact", str(wrong), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "'erf'" in err and len(err.splitlines()) == 1
