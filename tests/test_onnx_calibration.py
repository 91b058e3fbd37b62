"""ONNX int8 calibration streams its images in chunks (ssdmobile.quant.onnx_int8: onnxruntime's one
pass keeps every observed tensor of every image, 16.5 GB for the person detector at 128 images) and
still writes the very file onnxruntime's one pass writes: same histograms, same ranges, same bytes,
for each observer, with a last chunk that is not full."""

import pytest

import ssdmobile.quant.onnx_int8 as onnx_int8
from ssdmobile.data import CocoDataset
from ssdmobile.targets.pipeline import export

from conftest import COCO128
from export_fixtures import tiny_detector

pytestmark = pytest.mark.slow  # an ONNX export and six calibrations


@pytest.fixture(scope="module")
def fp32_and_inputs(tmp_path_factory):
    det = tiny_detector()
    path = export(det, "onnx", "fp32", tmp_path_factory.mktemp("fp32"), progress=False)[0].path
    images = CocoDataset(COCO128, "train2017", max_images=7)
    return path, [det.preprocess([s.image]) for s in images]


@pytest.mark.parametrize("observer", ["histogram", "minmax"])
def test_streamed_calibration_writes_the_one_pass_file(
    observer, fp32_and_inputs, tmp_path, monkeypatch
):
    fp32, inputs = fp32_and_inputs
    written = {}
    for label, chunk in (("one pass", 10**9), ("streamed", 3)):  # 7 images: 3 + 3 + 1
        monkeypatch.setattr(onnx_int8, "CALIBRATION_CHUNK", chunk)
        written[label] = tmp_path / f"{label.replace(' ', '_')}.onnx"
        onnx_int8.quantize_onnx_file(fp32, written[label], inputs, observer)
    one, streamed = (p.read_bytes() for p in written.values())
    assert b"QuantizeLinear" in one and one == streamed


def test_chunks_really_stream(fp32_and_inputs, tmp_path, monkeypatch):
    """The calibrator is fed no more than a chunk of images per collect_data call."""
    from onnxruntime.quantization.calibrate import HistogramCalibrater

    fp32, inputs = fp32_and_inputs
    seen = []
    inner = HistogramCalibrater.collect_data

    def counting(self, reader):
        items = list(iter(reader.get_next, None))
        seen.append(len(items))
        return inner(self, onnx_int8._Reader(items))

    monkeypatch.setattr(HistogramCalibrater, "collect_data", counting)
    monkeypatch.setattr(onnx_int8, "CALIBRATION_CHUNK", 3)
    onnx_int8.quantize_onnx_file(fp32, tmp_path / "x.onnx", inputs, "histogram")
    assert seen == [3, 3, 1]
